/**
 * Scores predictions for one task and prints the metrics as one JSON object.
 *
 *   deno task evaluate --task T --data FILE --pred FILE [--na-prob FILE]
 *
 * GLUE (cola sst2 mrpc stsb qqp mnli qnli rte wnli): FILE is the dev TSV, predictions one per
 * line in file order; prints `accuracy`, `f1`, `matthews`, `pearson`, `spearman` (fractions) as
 * the task reports them. SQuAD (squad): the dataset JSON and {id: answer text} predictions, as
 * the official evaluate-v2.0.py; prints its keys (percentages). Costs seconds.
 * @module
 */

import { evaluateFiles } from "../tasks/evaluate.ts";
import { parseCommand, runMain } from "./_cli.ts";

if (import.meta.main) {
  await runMain("evaluate", async () => {
    const { values: v } = parseCommand("evaluate", Deno.args);
    const metrics = await evaluateFiles({
      task: v.task as string,
      data: v.data as string,
      pred: v.pred as string,
      naProb: v["na-prob"] as string | undefined,
    });
    console.log(JSON.stringify(metrics, null, 2));
  });
}
