/**
 * The head kinds, by name: one file per kind, one line per kind here. A task names its kind
 * (`task.kind`); {@linkcode kindOf} binds it to the task. Adding a kind is a new file
 * implementing {@linkcode HeadKind} plus its line in {@linkcode KINDS} (README "Adding a head
 * kind").
 *
 * @example
 * ```ts
 * import { kindOf } from "./mod.ts";
 * import { getTask } from "../mod.ts";
 * const k = kindOf(getTask("squad"));
 * console.assert(k.readout === "token" && k.outputs === 2 && k.defaultMaxSeqLength === 384);
 * ```
 * @module
 */
import type { HeadKind, TaskKind } from "./types.ts";
import type { TaskBase } from "../types.ts";
import { classification } from "./classification.ts";
import { regression } from "./regression.ts";
import { span } from "./span.ts";
import { multilabel } from "./multilabel.ts";

export type { EvalRows, HeadKind, Scored, TaskKind } from "./types.ts";

/** Every head kind by the name tasks use. */
export const KINDS: Record<string, HeadKind> = {
  classification,
  regression,
  span,
  multilabel,
};

/** The names of {@linkcode KINDS}. */
export const KIND_NAMES: readonly string[] = Object.keys(KINDS);

/** The head kind called `name`; a clear error listing the kinds otherwise. */
export function headKind(name: string): HeadKind {
  const k = KINDS[name];
  if (!k) throw new Error(`unknown head kind "${name}" (kinds: ${KIND_NAMES.join(" ")})`);
  return k;
}

const bound = new WeakMap<TaskBase, TaskKind>();

/** The task's head kind, bound to the task (once per task). */
export function kindOf(task: TaskBase): TaskKind {
  let k = bound.get(task);
  if (!k) bound.set(task, k = headKind(task.kind).forTask(task));
  return k;
}
