/**
 * The paper's less-data experiment as one run: a BERTVision head per training fraction
 * (`--train-fractions 0.1,0.2,...,1`), all trained from one pass over the data, then a table and a
 * curve of the dev metric against the fraction with BERT's dev score as a line.
 *
 * - Subsets are nested: each fraction's rows are a seeded prefix of one permutation
 *   (data/batches.ts `seededSubset`), so every fraction's rows contain the smaller fractions'.
 * - One pass (train/heads/pass.ts `trainHeads`, data/batches.ts `subsetPass`): each read of a
 *   store, or each BERT forward of a stream, of up to a batch of the largest fraction's rows
 *   feeds every head whose subset holds some of them. A head's batches are the whole split's
 *   shuffle of each epoch restricted to its subset, cut into batches, so its steps, epochs and
 *   order are those it has when trained alone with `--train-fraction F`: it equals that head
 *   (weights, logits, metrics; train/heads/fractions_test.ts).
 * - One output directory per fraction, `OUT/fraction-F/` (head, log, dev logits, `results.json`
 *   written last), the unit of work a rerun skips when finished with the same settings; the
 *   curve in `OUT/fractions.json`, `fractions.md` and `fractions.svg` (report/curve.ts).
 * - BERT's line: given (`bert`, e.g. `--bert-score`), else the dev metrics that the checkpoint
 *   computing the hidden states recorded (a `glue --model bert` checkpoint directory:
 *   `complete.json` and `dev_metrics.json`, or `<split>_metrics.json` per dev split), else none.
 * @module
 */
import { openStore } from "../../data/shard_set.ts";
import { acquireLock, hasMarker } from "../../data/output/mod.ts";
import { InputError } from "../../data/errors.ts";
import { regularFileExists } from "../../data/files.ts";
import { checkFractions, fractionDir } from "../../data/batches.ts";
import { type Shard, shardRange } from "../../data/shard.ts";
import {
  type CurvePoint,
  type FractionCurve,
  type ReferenceLine,
  writeCurve,
} from "../../report/curve.ts";
import { devMetricKeys, mergeDevMetrics, resolveTask, type Task } from "../../tasks/mod.ts";
import type { TrainApOptions, TrainApResult } from "./options.ts";
import { planHeads } from "./plan.ts";
import { trainHeads } from "./pass.ts";
import type { StagePlan } from "../plan.ts";

/** Options of {@linkcode trainFractions}: a head's options, and the fractions. */
export interface FractionSweepOptions extends Omit<TrainApOptions, "trainFraction"> {
  /** Shares of the training rows, each in (0, 1], e.g. [0.1, 0.2, 0.5, 1]. */
  fractions: number[];
  /**
   * BERT's dev scores, drawn as horizontal lines (the same columns as the heads' metrics).
   * Default: read from the checkpoint the hidden states come from, when it recorded them.
   */
  bert?: ReferenceLine[];
  /** BERT's dev score on the first plotted column (`--bert-score`), instead of `bert`. */
  bertScore?: number;
  /**
   * Train only this shard's fractions (`--shard I/N`: a contiguous share of the sorted list, see
   * data/shard.ts `shardRange`), for array jobs. Each fraction is its own directory; a sharded
   * run writes no curve: the same command without `--shard` afterwards finds every fraction
   * finished (resumed, nothing trained) and draws it.
   */
  shard?: Shard;
}

/** What {@linkcode trainFractions} returns. */
export interface FractionSweepResult {
  /** One head per fraction, in increasing order (the caller disposes `head`). */
  heads: TrainApResult[];
  curve: FractionCurve;
  /** `fractions.json`, `fractions.md`, `fractions.svg` (none for a shard). */
  files: string[];
}

/** The report columns plotted: the task's main metric, per dev split when there are several. */
export function plottedKeys(task: Task, splits: readonly string[]): string[] {
  return Object.keys(
    mergeDevMetrics(task, splits.map((s) => [s, { [task.primaryMetric]: 0 }] as const)),
  );
}

/**
 * BERT's dev metrics as recorded by a fine-tuning checkpoint directory (`glue --model bert`):
 * `complete.json` present, and for each dev split `<split>_metrics.json` (or, for one split,
 * `dev_metrics.json`). Null when the directory has no such record (a hub id, a plain model).
 */
export async function checkpointDevMetrics(
  task: Task,
  dir: string,
  splits: readonly string[],
): Promise<ReferenceLine | null> {
  const read = async (path: string) => {
    regularFileExists(path); // a FIFO there would block the read below
    try {
      return JSON.parse(await Deno.readTextFile(path)) as Record<string, number>;
    } catch {
      return null;
    }
  };
  if (!(await hasMarker(dir))) return null;
  const bySplit: [string, Record<string, number>][] = [];
  for (const s of splits) {
    const m = (await read(`${dir}/${s}_metrics.json`)) ??
      (splits.length === 1 ? await read(`${dir}/dev_metrics.json`) : null);
    if (!m) return null;
    bySplit.push([s, m]);
  }
  const name = dir.replace(/\/+$/, "").split("/").pop();
  return { label: `BERT (${name})`, metrics: mergeDevMetrics(task, bySplit) };
}

/**
 * The checkpoint directory the hidden states come from: the stream's (`--bert`), or the train
 * store's `model_id` when that names a directory (from the working directory, as capture was
 * given it).
 */
async function sourceCheckpoint(o: FractionSweepOptions): Promise<string | undefined> {
  if (o.stream) return o.stream.model;
  if (!o.trainH5) return undefined;
  const r = await openStore(o.trainH5);
  let id: unknown;
  try {
    id = r.attrs.model_id;
  } finally {
    r.close();
  }
  if (typeof id !== "string") return undefined;
  const st = await Deno.stat(id).catch(() => null);
  return st?.isDirectory ? id : undefined;
}

/** The variants of a sweep: one head per fraction, each in `outDir/fraction-F`. */
function sweepVariants(o: FractionSweepOptions) {
  const fractions = checkFractions(o.fractions);
  return fractions.map((f) => ({ trainFraction: f, outDir: `${o.outDir}/${fractionDir(f)}` }));
}

/**
 * Trains one head per training fraction from one pass over the data (store or stream) and writes
 * the less-data table and curve to `outDir`. A rerun keeps the fractions already finished with
 * the same settings and trains the others. Needs a dev source (`devH5`, or a stream without
 * `noDev`): the curve is of the dev metric.
 *
 * @example
 * ```ts ignore
 * const s = await trainFractions({ trainH5: "train.h5", devH5: "dev.h5", task: "sst2",
 *   fractions: [0.1, 0.3, 1], outDir: "runs/sst2-fractions", preset: true });
 * console.log(s.curve.points.map((p) => [p.fraction, p.metrics.accuracy]));
 * for (const h of s.heads) h.head.dispose();
 * ```
 */
export async function trainFractions(o: FractionSweepOptions): Promise<FractionSweepResult> {
  const task = resolveTask(o.task);
  const variants = sweepVariants(o);
  const hasDev = o.stream ? !o.noDev : [o.devH5 ?? []].flat().length > 0;
  if (!hasDev) {
    throw new InputError(
      `--train-fractions draws the dev metric against the fraction: give a dev source ` +
        `(--dev-h5 with stored activations)`,
    );
  }
  if (o.shard) {
    const { start, end } = shardRange(variants.length, o.shard);
    if (start === end) {
      throw new InputError(
        `--shard ${o.shard.index}/${o.shard.count}: ${variants.length} fractions leave shard ` +
          `${o.shard.index} nothing to train; use at most ${variants.length} shards`,
      );
    }
    variants.splice(end);
    variants.splice(0, start);
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  // The sweep's directory (its curve) is locked by an unsharded run only: array tasks share it,
  // each head directory being locked by its trainer.
  const lock = o.shard ? null : acquireLock(o.outDir, "dir", { breakLock: o.breakLock });
  if (lock?.tookOver && !o.silent) console.error(lock.tookOver);
  try {
    const { fractions: _, bert, bertScore, shard, ...head } = o;
    const heads = await trainHeads({ ...head, task, resume: true }, variants);
    const splits = heads[0].devBySplit?.map((d) => d.split) ?? [];
    const points: CurvePoint[] = heads.map((r, i) => ({
      fraction: variants[i].trainFraction,
      rows: r.trainRows.length,
      steps: r.steps,
      metrics: mergeDevMetrics(task, (r.devBySplit ?? []).map((d) => [d.split, d.metrics])),
      dir: variants[i].outDir,
      ...(r.resumed ? { resumed: true } : {}),
    }));
    const plotted = plottedKeys(task, splits);
    let references = bertScore !== undefined
      ? [{ label: "BERT (--bert-score)", metrics: { [plotted[0]]: bertScore } }]
      : bert ?? [];
    if (!bert && bertScore === undefined) {
      const ck = await sourceCheckpoint(o);
      const line = ck === undefined ? null : await checkpointDevMetrics(task, ck, splits);
      if (line) references = [line];
    }
    const model = heads[0].head.config.pooling.toUpperCase();
    const curve: FractionCurve = {
      task: task.name,
      model: `BERTVision (${model})`,
      metricKeys: devMetricKeys(task, splits),
      plotted,
      points,
      references,
      settings: {
        ...heads[0].settings,
        adapterDim: heads[0].head.config.adapterDim,
        pooling: heads[0].head.config.pooling,
        fractions: variants.map((v) => v.trainFraction),
        source: o.stream ? { stream: o.stream.model } : { trainH5: o.trainH5, devH5: o.devH5 },
      },
      finished: new Date().toISOString(),
    };
    if (shard) {
      if (!o.silent) {
        console.error(
          `shard ${shard.index}/${shard.count}: trained fractions ${
            variants.map((v) => v.trainFraction).join(", ")
          }; once every shard is done, the same command without --shard draws the curve`,
        );
      }
      return { heads, curve, files: [] };
    }
    const files = await writeCurve(o.outDir, curve);
    return { heads, curve, files };
  } finally {
    lock?.release();
  }
}

/**
 * The plan of a sweep (`--dry-run`): the head training plan of the largest fraction (the rows the
 * pass reads), with a note of the heads trained from it and their steps.
 */
export async function planFractions(o: FractionSweepOptions, time = true): Promise<StagePlan[]> {
  const variants = sweepVariants(o);
  const fs = variants.map((v) => v.trainFraction);
  const { fractions: _, bert: __, bertScore: ___, ...head } = o;
  const plan = await planHeads({ ...head, trainFraction: fs.at(-1)! }, time);
  const share = fs.reduce((a, f) => a + f, 0) / fs.at(-1)!;
  plan[0].notes = [
    ...(plan[0].notes ?? []),
    `${fs.length} heads, one per fraction ${fs.join(", ")} (${o.outDir}/fraction-F), from one ` +
    `pass over the largest fraction's rows: each read (stream: BERT forward) once, the heads' ` +
    `work ${share.toFixed(2)}× one head's (the time shown is one head's)`,
    `each head evaluated on dev after training: ${fs.length}× the evaluation below`,
  ];
  return plan;
}
