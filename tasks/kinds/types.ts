/**
 * The interface every head kind implements (one file per kind under `tasks/kinds/`, listed once
 * in `tasks/kinds/mod.ts`). A kind owns everything that differs between classification,
 * regression, SQuAD spans, multi-label classification, ...: how labels are parsed and stored,
 * the default sequence length, which BERT and BERTVision heads it needs, its loss, how logits
 * become predictions and scores, how two models' logits are ensembled and how dev logits are
 * saved. Fine-tuning, capture, head training, ensembling and the reproduction ask the kind and
 * never branch on it.
 * @module
 */
import type { Tensor } from "../../model/tensor.ts";
import type { Readout } from "../../model/heads.ts";
import type { SquadFeature } from "../../data/features.ts";
import type { TaskBase } from "../types.ts";

/** Rows of an evaluation split, as much as scoring needs of them. */
export interface EvalRows {
  /** Number of rows (examples, or SQuAD windows). */
  n: number;
  /** Tokens per row. */
  seq: number;
  /** (n, labelWidth) gold labels; NaN (or -1 for integer labels) where a row has none. */
  labels: ArrayLike<number>;
  /**
   * SQuAD: the questions and their windows (post-processing needs the offsets), and the answer
   * rule (absent: run_squad.py's, tasks/squad_postprocess.ts `HF_ANSWER_RULE`).
   */
  squad?: {
    examples: readonly import("../squad.ts").SquadExample[];
    features: readonly SquadFeature[];
    rule?: Readonly<import("../squad_postprocess.ts").SquadAnswerRule>;
  };
}

/** What scoring gives: metrics, and the predictions in a form a person can read when there is one. */
export interface Scored {
  /** The task's metrics (empty when the rows have no labels, e.g. a test split). */
  metrics: Record<string, number>;
  /** SQuAD: {question id: answer text}. */
  answers?: Record<string, string>;
  /** SQuAD: {question id: null score − best span score} (the official `--na-prob-file`). */
  naProbs?: Record<string, number>;
}

/** A head kind bound to one task: everything the loops need, with no branching of their own. */
export interface TaskKind {
  /** The kind's registry name, e.g. "classification". */
  readonly name: string;
  /** The task it is bound to. */
  readonly task: TaskBase;
  /** The loss's name, for messages and plans (e.g. "cross_entropy"). */
  readonly lossName: string;
  /** Units the heads output: per row ("pooled" readout) or per token ("token" readout). */
  readonly outputs: number;
  /** "pooled": one output vector per row; "token": one per token (logits [B, outputs, T]). */
  readonly readout: Readout;
  /** Labels per row, in rows and in the activation store (`labels` [N] or [N, width]). */
  readonly labelWidth: number;
  /** How the store keeps labels: "int64" (classes, token positions, 0/1) or "float32" (scores). */
  readonly labelType: "int64" | "float32";
  /** max_seq_length when none is given (BERTVision: 128 for GLUE, 384 for SQuAD). */
  readonly defaultMaxSeqLength: number;
  /** Hugging Face names of the BERT head's weight and bias (`classifier.*`, `qa_outputs.*`). */
  readonly bertHeadNames: readonly [string, string];
  /** Extra fields for a fine-tuned checkpoint's config.json (e.g. `problem_type`). */
  readonly hfConfig: Record<string, unknown>;
  /** Parses a label cell of a text file into `labelWidth` numbers; `where` names file:line. */
  parseLabel(raw: string, where: string): number[];
  /** Writes one row's prediction as the task's files write labels. */
  formatPrediction(pred: ArrayLike<number>): string;
  /** Parses one prediction as written in a predictions file into `labelWidth` numbers. */
  parsePrediction(value: string, where: string): number[];
  /**
   * The training loss of a batch: `logits` as the heads give them ([B, outputs] or
   * [B, outputs, T]), `labels` (B·labelWidth) on the host; `where(i)` names row i in errors.
   */
  loss(logits: Tensor, labels: ArrayLike<number>, where: (row: number) => string): Tensor;
  /**
   * The mean training loss of `n` rows from saved-layout logits and their labels, on the host in
   * float64 (early stopping on the dev loss, `--early-stop loss`); NaN when a row is unlabelled.
   */
  meanLoss(logits: ArrayLike<number>, labels: ArrayLike<number>, n: number, tokens: number): number;
  /** Shape of the saved dev logits of `n` rows of `tokens` tokens, e.g. [n, C] or [n, T, 2]. */
  logitsShape(n: number, tokens: number): number[];
  /** Head output of `rows` rows (row-major, as the heads give it) in the saved layout. */
  toSaved(out: Float32Array, rows: number, tokens: number): Float32Array;
  /** Predictions (n × labelWidth) from saved logits, where the kind has per-row predictions. */
  predict(logits: ArrayLike<number>, n: number): Float64Array;
  /** Scores saved-layout logits of evaluation rows with the task's metrics. */
  score(logits: ArrayLike<number>, rows: EvalRows): Scored;
  /**
   * Ensembles the saved logits of any number of models (runs) on the same rows as the paper
   * does (the element-wise maximum of their probability distributions; two runs are the paper's
   * BERT + AP). The result is logits-like, in the saved layout, so {@linkcode TaskKind.score}
   * scores it.
   */
  ensemble(runs: readonly ArrayLike<number>[], n: number, tokens: number): Float64Array;
  /**
   * Scores what {@linkcode TaskKind.ensemble} returned, where a kind scores an ensemble
   * otherwise than one model's logits (SQuAD with the seed's ensemble rule); absent:
   * {@linkcode TaskKind.score}.
   */
  scoreEnsemble?(ensembled: ArrayLike<number>, rows: EvalRows): Scored;
  /**
   * Metrics only this kind defines (e.g. multi-label `micro_f1`), by the name a task lists in
   * its metrics; each takes predictions and golds of n × labelWidth values.
   */
  metricFns?: Record<string, (preds: ArrayLike<number>, golds: ArrayLike<number>) => number>;
}

/** A head kind: its name and how it binds to a task. */
export interface HeadKind {
  /** Registry name, as tasks name their kind. */
  readonly name: string;
  /** One line for help texts and the README. */
  readonly description: string;
  /** The kind bound to `task` (checks that the task fits the kind, e.g. ≥ 2 labels). */
  forTask(task: TaskBase): TaskKind;
}

/**
 * Mean cross-entropy of `rows` rows of `width` logits, row r read at `at(r, j)`, against class
 * `label(r)` (float64, log-sum-exp stabilised); NaN when a label is not a class index.
 */
export function meanCrossEntropy(
  rows: number,
  width: number,
  at: (r: number, j: number) => number,
  label: (r: number) => number,
): number {
  let sum = 0;
  for (let r = 0; r < rows; r++) {
    const y = label(r);
    if (!(Number.isInteger(y) && y >= 0 && y < width)) return NaN;
    let m = -Infinity;
    for (let j = 0; j < width; j++) m = Math.max(m, at(r, j));
    let z = 0;
    for (let j = 0; j < width; j++) z += Math.exp(at(r, j) - m);
    sum += m + Math.log(z) - at(r, y);
  }
  return sum / Math.max(1, rows);
}
