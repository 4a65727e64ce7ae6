/**
 * The benchmark tasks: all nine GLUE tasks and SQuAD 2.0, by command-line name.
 *
 * @example
 * ```ts
 * import { getTask, TASK_NAMES } from "./mod.ts";
 * console.assert(TASK_NAMES.length === 10);
 * const t = getTask("stsb");
 * console.assert(t.kind === "regression" && t.loss === "mse" && t.numLabels === 1);
 * ```
 * @module
 */

import { cola } from "./cola.ts";
import { sst2 } from "./sst2.ts";
import { mrpc } from "./mrpc.ts";
import { stsb } from "./stsb.ts";
import { qqp } from "./qqp.ts";
import { mnli } from "./mnli.ts";
import { qnli } from "./qnli.ts";
import { rte } from "./rte.ts";
import { wnli } from "./wnli.ts";
import { squad, type SquadTask } from "./squad.ts";
import { type GlueTask, TASK_NAMES, type TaskName } from "./types.ts";

export * from "./types.ts";
export * from "./metrics.ts";
export { glueTask, parseGlueTsv } from "./glue.ts";
export * from "./squad.ts";
export * from "./squad_eval.ts";

/** Any task module. */
export type Task = GlueTask | SquadTask;

const REGISTRY: Record<TaskName, Task> = {
  cola,
  sst2,
  mrpc,
  stsb,
  qqp,
  mnli,
  qnli,
  rte,
  wnli,
  squad,
};

/** The task called `name` (one of {@linkcode TASK_NAMES}); a clear error listing them otherwise. */
export function getTask(name: "squad"): SquadTask;
export function getTask(name: Exclude<TaskName, "squad">): GlueTask;
export function getTask(name: string): Task;
export function getTask(name: string): Task {
  const t = (REGISTRY as Record<string, Task>)[name.toLowerCase()];
  if (!t) throw new Error(`unknown task "${name}" (tasks: ${TASK_NAMES.join(" ")})`);
  return t;
}

/** Whether a task is a GLUE task (narrows the type). */
export function isGlueTask(t: Task): t is GlueTask {
  return t.kind !== "span";
}
