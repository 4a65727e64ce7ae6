/**
 * A head's output directory before training: refused when it holds a head of other settings,
 * kept as it is when it holds this head finished (`resume`).
 * @module
 */
import { loadHead, type ParamReport } from "../../model/heads.ts";
import { InputError } from "../../data/errors.ts";
import { regularFileExists } from "../../data/files.ts";
import {
  markerPathOf,
  readMarker,
  removePaths,
  settingsDiff,
  settingsMismatch,
} from "../../data/output/mod.ts";

/** A head's completion marker: its results, written last (train/heads/run.ts). */
export const HEAD_MARKER = "results.json";
import type { EarlyStopState, LogEntry } from "../loop.ts";
import type { RowTensor } from "../plan.ts";
import type { TrainSettings } from "../presets.ts";
import type { HeadDev, TrainApResult } from "./options.ts";
import type { DevSource } from "./open.ts";
import { PRECISION_DEFAULTS, precisionFix } from "../precision.ts";

/**
 * The settings of the first head found finished in `dirs` (their `results.json`), for
 * train/precision.ts `resumePrecision`: heads trained together share one precision, so a rerun
 * without `--precision` resumes theirs. Null when none is there (or none is readable: that
 * head's own check says why, naming the file).
 */
export async function foundHead(
  dirs: readonly string[],
): Promise<{ what: string; settings: Record<string, unknown> } | null> {
  for (const dir of dirs) {
    const r = await readMarker<Record<string, unknown>>(dir, HEAD_MARKER).catch(() => null);
    const settings = r?.settings;
    if (typeof settings === "object" && settings !== null && !Array.isArray(settings)) {
      return { what: `the head in ${dir}`, settings: settings as Record<string, unknown> };
    }
  }
  return null;
}

/**
 * Refuses a head directory whose `results.json` records other settings, naming them, unless
 * `overwrite`. Returns the `results.json` of a head finished with the same settings (which a
 * rerun trains again to the same head, or with `resume` keeps), else null.
 */
export async function checkHeadOutput(
  dir: string,
  settings: Record<string, unknown>,
  overwrite = false,
): Promise<Record<string, unknown> | null> {
  const path = markerPathOf(dir, HEAD_MARKER);
  let record: Record<string, unknown> | null;
  try {
    record = await readMarker<Record<string, unknown>>(dir, HEAD_MARKER);
  } catch (e) {
    if (overwrite) return null;
    throw e;
  }
  if (!record) return null;
  const diff = settingsDiff(
    (record.settings as Record<string, unknown>) ?? {},
    settings,
    undefined,
    PRECISION_DEFAULTS,
  );
  if (diff.length && !overwrite) {
    throw settingsMismatch(
      `${dir} (a head, ${path})`,
      diff,
      precisionFix(diff, "choose another --out, or --overwrite to replace it"),
    );
  }
  return diff.length ? null : record;
}

/**
 * The result of a head found finished in `dir` (`resume`): its weights, log and dev results as
 * that run saved them (`results.json`, `train_log.jsonl`, the dev logits files); nothing is
 * trained or evaluated again.
 */
export async function resumedHead(
  dir: string,
  record: Record<string, unknown>,
  o: {
    log?: string;
    devs: DevSource[];
    rows: Int32Array;
    batchSize: number;
    inputRow: RowTensor;
    settings: TrainSettings;
  },
): Promise<TrainApResult> {
  const headPath = `${dir}/head.safetensors`;
  const logPath = o.log ?? `${dir}/train_log.jsonl`;
  const history: LogEntry[] = [];
  regularFileExists(logPath, { what: "training log" }); // a FIFO there would block the read
  const text = await Deno.readTextFile(logPath).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return "";
    throw e;
  });
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line);
      if (typeof entry.loss === "number") history.push(entry);
    } catch (e) {
      throw new InputError(`${logPath}: not JSON lines (${e}); rerun with --overwrite`, {
        file: logPath,
        cause: e,
      });
    }
  }
  const exists = (path: string) =>
    Deno.stat(path).then(() => path, (e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
  const bySplit = record.devSplits as Record<string, Record<string, number>> | undefined;
  const devBySplit: HeadDev[] = [];
  for (const d of o.devs) {
    const p = d.prefix === "dev" ? "" : `${d.prefix}_`;
    devBySplit.push({
      split: d.split,
      metrics: (o.devs.length > 1
        ? bySplit?.[d.split]
        : record.devMetrics as Record<string, number> | undefined) ?? {},
      logitsPath: await exists(`${dir}/${d.prefix}_logits.npy`),
      predictionsPath: await exists(`${dir}/${p}predictions.json`),
      naProbsPath: await exists(`${dir}/${p}na_probs.json`),
    });
  }
  const micro = Number(record.microBatch) || o.batchSize;
  return {
    head: await loadHead(headPath),
    params: Number(record.params),
    paramReport: record.paramReport as ParamReport | undefined,
    history,
    steps: Number(record.steps),
    examples: Number(record.examples),
    trainRows: o.rows,
    headPath,
    devMetrics: devBySplit[0]?.metrics,
    devLogitsPath: devBySplit[0]?.logitsPath,
    devBySplit: devBySplit.length ? devBySplit : undefined,
    split: {
      batch: o.batchSize,
      micro,
      parts: Math.ceil(o.batchSize / micro),
      largest: o.inputRow,
    },
    wallSeconds: Number(record.wallSeconds),
    settings: o.settings,
    earlyStop: record.earlyStop as EarlyStopState | undefined,
    resumed: true,
  };
}

/**
 * Removes a head's files from its directory, its completion marker (`results.json`) first (an
 * overwrite's removal step, data/output/overwrite.ts): the weights, layer means, log, dev logits
 * and their rows records, predictions and metrics. Other files (a lock) stay; a missing
 * directory is fine.
 */
export async function removeHeadFiles(dir: string): Promise<void> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (
        e.isFile &&
        /^(head\.safetensors|layer_means\.safetensors|train_log\.jsonl|.*_logits\.npy|.*_idx\.npy|.*_logits\.rows\.json|.*predictions\.json|.*na_probs\.json|.*metrics\.json)$/
          .test(e.name)
      ) names.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await removePaths([`${dir}/${HEAD_MARKER}`, ...names.sort()]);
}
