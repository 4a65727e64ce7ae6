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

import { parseArgs } from "node:util";
import { evaluateFiles } from "../tasks/evaluate.ts";
import { TASK_NAMES } from "../tasks/types.ts";

const USAGE = `usage: deno task evaluate --task T --data FILE --pred FILE [--na-prob FILE]
  T: ${TASK_NAMES.join(" ")}`;

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        task: { type: "string" },
        data: { type: "string" },
        pred: { type: "string" },
        "na-prob": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!values.task || !values.data || !values.pred) throw new Error(`missing flags\n${USAGE}`);
    const metrics = await evaluateFiles({
      task: values.task,
      data: values.data,
      pred: values.pred,
      naProb: values["na-prob"],
    });
    console.log(JSON.stringify(metrics, null, 2));
  } catch (e) {
    console.error(`evaluate: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
