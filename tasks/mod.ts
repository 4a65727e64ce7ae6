/**
 * The benchmark tasks, by command-line name: all nine GLUE tasks and SQuAD 2.0, in one registry.
 * A new task is one module plus its line in {@linkcode TASKS} (README "Adding a task"); the
 * names on every command line, in help texts and in `fetch-data` come from here.
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
import type { GlueTask } from "./types.ts";
import { type FetchOptions, fetchSources } from "../data/fetch.ts";
import { InputError } from "../data/errors.ts";

export * from "./types.ts";
export * from "./metrics.ts";
export * from "./splits.ts";
export { glueTask, parseGlueTsv } from "./glue.ts";
export * from "./squad.ts";
export * from "./squad_eval.ts";
export { headKind, KIND_NAMES, kindOf, KINDS } from "./kinds/mod.ts";
export type { EvalRows, HeadKind, Scored, TaskKind } from "./kinds/mod.ts";

/** Any task module. */
export type Task = GlueTask | SquadTask;

/** Every task by its command-line name, in the order help texts list them. */
export const TASKS = {
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

/** A registered task's name. */
export type TaskName = keyof typeof TASKS;

/** The task names accepted on every command line. */
export const TASK_NAMES: readonly string[] = Object.keys(TASKS);

/** The task called `name` (one of {@linkcode TASK_NAMES}); a clear error listing them otherwise. */
export function getTask<N extends TaskName>(name: N): (typeof TASKS)[N];
export function getTask(name: string): Task;
export function getTask(name: string): Task {
  const key = name.toLowerCase();
  // hasOwn: "constructor" or "toString" name no task (they are Object.prototype's).
  const t = Object.hasOwn(TASKS, key) ? (TASKS as Record<string, Task>)[key] : undefined;
  if (!t) throw new InputError(`unknown task "${name}" (tasks: ${TASK_NAMES.join(" ")})`);
  return t;
}

/** A task given by name, or the task itself (a module of the caller's, e.g. in a test). */
export function resolveTask(task: string | Task): Task {
  return typeof task === "string" ? getTask(task) : task;
}

/** Whether a task reads GLUE-format TSV files (narrows the type). */
export function isGlueTask(t: Task): t is GlueTask {
  return t.format === "glue-tsv";
}

/**
 * Downloads one task's files (or `all` tasks') into `outDir` in the GLUE distribution layout:
 * the logic of `deno task fetch-data`. Returns the paths written.
 */
export async function fetchTasks(
  task: string,
  outDir: string,
  opts: FetchOptions = {},
): Promise<string[]> {
  const names = task === "all" ? TASK_NAMES : [task];
  const tasks = TASKS as Record<string, Task>;
  for (const n of names) {
    if (!Object.hasOwn(tasks, n)) {
      throw new InputError(
        `fetch-data: unknown task "${n}" (tasks: ${TASK_NAMES.join(" ")} or all)`,
      );
    }
  }
  return await fetchSources(names.map((n) => ({ name: n, source: tasks[n].source })), outDir, opts);
}
