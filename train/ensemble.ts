/**
 * Ensembling two models' dev predictions, as the BERTVision paper does (BERT with the
 * adapter-pooler, or BERT at two checkpoints): the task's head kind combines the two saved
 * logits (the element-wise maximum of their probability distributions) and scores the result
 * with the task's metrics. Checked by tasks/kinds/ensemble_test.ts (the kinds' arithmetic) and
 * train/reproduce_test.ts (end to end).
 * @module
 */
import { type EvalRows, kindOf, type Scored, type Task } from "../tasks/mod.ts";

/**
 * Scores the ensemble of two models' saved-layout dev logits `a` and `b` of the same rows
 * (`rows` gives their labels and, for SQuAD, the windows). Logits of different rows are an error.
 */
export function ensembleScores(
  task: Task,
  a: Float32Array,
  b: Float32Array,
  rows: EvalRows,
): Scored {
  const kind = kindOf(task);
  const want = kind.logitsShape(rows.n, rows.seq).reduce((x, y) => x * y, 1);
  if (a.length !== want || b.length !== want) {
    throw new Error(
      `ensemble: ${task.name} dev logits of ${a.length} and ${b.length} values, but the ` +
        `${rows.n} dev rows need ${want}; were both made from the same dev split and --dev-limit?`,
    );
  }
  return kind.score(kind.ensemble(a, b, rows.n, rows.seq), rows);
}
