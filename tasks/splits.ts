/**
 * Dev splits: which splits of a task can be evaluated (`--dev-split`), and how the metrics of
 * several evaluated side by side become one row of report columns. MNLI evaluates
 * `dev_matched` and `dev_mismatched` by default and reports them as `MNLI-m` and `MNLI-mm` (the
 * seed's "Dev. Matched" and "Dev. Mismatched"); MRPC can be evaluated on `msr_test` as well as
 * GLUE's `dev`. One split's metrics keep their plain names (`accuracy`), so a single-split run
 * reports as it always did.
 *
 * @example
 * ```ts
 * import { devMetricKeys, mergeDevMetrics } from "./splits.ts";
 * import { mnli } from "./mnli.ts";
 * const both = [["dev_matched", { accuracy: 0.83 }], ["dev_mismatched", { accuracy: 0.84 }]] as const;
 * console.assert(mergeDevMetrics(mnli, both)["MNLI-mm"] === 0.84);
 * console.assert(devMetricKeys(mnli, ["dev_matched", "dev_mismatched"]).join() === "MNLI-m,MNLI-mm");
 * ```
 * @module
 */
import { InputError } from "../data/errors.ts";
import type { TaskBase } from "./types.ts";

/**
 * The labelled splits of a task other than its training splits (`train`, and `*_train` such as
 * MRPC's `msr_train`): what `--dev-split` accepts.
 */
export function evalSplits(task: TaskBase): string[] {
  return task.splits.filter((s) => s !== "train" && !s.endsWith("_train") && !s.startsWith("test"));
}

/**
 * Checks split names asked for as dev splits (`--dev-split`): each must be a labelled split of
 * the task, none twice. Returns them; an {@linkcode InputError} naming the flag and the choices
 * otherwise.
 */
export function checkDevSplits(
  task: TaskBase,
  splits: readonly string[],
  flag = "--dev-split",
): string[] {
  const ok = evalSplits(task);
  if (!splits.length) {
    throw new InputError(`${flag}: no split given (${task.name}: ${ok.join(", ")})`);
  }
  for (const s of splits) {
    if (!ok.includes(s)) {
      throw new InputError(
        `${flag} ${s}: ${task.name} has no labelled split "${s}" (choose from ${ok.join(", ")})`,
      );
    }
  }
  const twice = splits.find((s, i) => splits.indexOf(s) !== i);
  if (twice !== undefined) throw new InputError(`${flag}: ${twice} is given twice`);
  return [...splits];
}

/**
 * The dev splits a run evaluates, in report order: `only` alone when given (a split named
 * outright, or the one a `--dev-file` stands for), else those asked for (`--dev-split`), else
 * the seed's (`--preset`: MRPC's msr_test), else the task's, checked by
 * {@linkcode checkDevSplits}.
 */
export function pickDevSplits(
  task: TaskBase,
  o: { only?: string; asked?: readonly string[]; seed?: readonly string[] },
): string[] {
  if (o.only !== undefined) return [o.only];
  if (o.asked !== undefined) return checkDevSplits(task, o.asked);
  if (o.seed !== undefined) return checkDevSplits(task, o.seed);
  return [...task.devSplits];
}

/** How reports name a dev split shown beside others (MNLI `dev_matched` → `MNLI-m`). */
export function devLabel(task: TaskBase, split: string): string {
  return (Object.hasOwn(task.devLabels ?? {}, split) ? task.devLabels![split] : split);
}

/** The report column of metric `key` of `split` when `several` splits are reported together. */
function columnOf(task: TaskBase, split: string, key: string, several: boolean): string {
  if (!several) return key;
  const label = devLabel(task, split);
  return task.reportMetrics.length === 1 && key === task.reportMetrics[0]
    ? label
    : `${label} ${key}`;
}

/**
 * The metrics of the dev splits evaluated in one run as one set of report columns, in split
 * order. One split: its metrics as they are. Several: each key prefixed by its split's label
 * (`MRPC dev accuracy`, `MSRP test f1`), and the only metric of a one-metric task named by the
 * label alone (MNLI: `{ "MNLI-m": 0.83, "MNLI-mm": 0.84 }`).
 */
export function mergeDevMetrics(
  task: TaskBase,
  bySplit: readonly (readonly [string, Record<string, number>])[],
): Record<string, number> {
  const several = bySplit.length > 1;
  const out: Record<string, number> = {};
  for (const [split, metrics] of bySplit) {
    for (const [k, v] of Object.entries(metrics)) out[columnOf(task, split, k, several)] = v;
  }
  return out;
}

/**
 * The report's metric columns for these dev splits, in order: the task's report metrics, per
 * split when there are several (the keys {@linkcode mergeDevMetrics} writes).
 */
export function devMetricKeys(task: TaskBase, splits: readonly string[]): string[] {
  const several = splits.length > 1;
  return splits.flatMap((s) => task.reportMetrics.map((k) => columnOf(task, s, k, several)));
}
