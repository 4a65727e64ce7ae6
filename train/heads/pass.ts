/**
 * Training and evaluating a BERTVision model (AP / LP / AvgP, {@linkcode BvHead}) from an HDF5
 * activation store (data/h5_store.ts), streaming: each step reads only its shuffled batch with
 * `H5Reader.readIndices`, evaluation reads consecutive blocks with `readRows`; never the whole
 * file.
 *
 * - Data order: a seeded shuffle per epoch of the whole training split, restricted to the
 *   (seeded, `trainFraction`) subset and cut into batches (the last batch of an epoch may be
 *   smaller), as data/batches.ts `subsetPass` defines. Fractional `epochs` run
 *   ceil(epochs · batches per epoch) steps. Heads on different fractions' (nested) subsets train
 *   together from one pass ({@linkcode trainHeads}), each on the batches it would have alone.
 * - AdamW (weight decay `l2` on weights, not on biases / LP scalars), linear warmup for
 *   `warmupProportion` of the steps then linear decay to 0 (data/batches.ts `linearSchedule`,
 *   Hugging Face's schedule as the seed ran it).
 * - Settings not given come from `HEAD_DEFAULTS`, or with `preset` from the seed's AP command
 *   for the task (train/presets.ts; the adapter size then = the token count).
 * - Early stopping (`patience` > 0 with a dev source): the first dev split is evaluated after
 *   every epoch; a head stops after `patience` epochs without improving its main metric and
 *   keeps its best epoch's weights (`results.json` `earlyStop`).
 * - The head's read-out, width and loss come from the task's head kind (tasks/kinds/).
 * - Every `logEvery` steps the pending losses are read back (the only readback while training):
 *   one JSON line per window to the log, the progress bar's loss, and a NaN/∞ check that names
 *   the exact step (train/loop.ts).
 * - Before anything runs, the store's attributes are checked against the flags (layout, task,
 *   model id, split, label type/width, complete rows), and a dev store against the train store.
 *
 * Outputs in `outDir`: `head.safetensors` (weights + config), `train_log.jsonl`, and with a dev
 * store `dev_logits.npy` (the kind's saved layout: [N, numLabels], or span [N, T, 2] with
 * [..., 0] start and [..., 1] end), `dev_idx.npy` (the rows' example / feature indices) and
 * `results.json`; SQuAD scored with its questions (`devFile`, a stream, `devRows`) also writes
 * `predictions.json` and `na_probs.json`, the official evaluator's inputs. Several dev splits (MNLI's matched and mismatched: a store each, or both
 * streamed) are each evaluated, their files named by the split (`dev_matched_logits.npy`, ...).
 *
 * The pass is here; a head's own training, evaluation and saving are train/heads/run.ts
 * (`HeadRun`), its sources train/heads/open.ts, its directory's refusal or resumption
 * train/heads/output.ts, the store checks train/heads/checks.ts and evaluation
 * train/heads/evaluate.ts.
 * @module
 */
import { describeConfig } from "../../model/heads.ts";
import { initGpu, scope } from "../../model/tensor.ts";
import { acquireLocks } from "../../data/output/mod.ts";
import { seededSubset, subsetPass } from "../../data/batches.ts";
import { Progress } from "../../data/progress.ts";
import { kindOf, resolveTask } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { limitsOf, splitBatch } from "../plan.ts";
import { batchesPerEpoch, enterStage, stageError, stepsFor, stepsSince } from "../loop.ts";
import {
  adapterDimFor,
  headConfigFor,
  headPrecisionLine,
  headRowTensors,
  headSettings,
} from "./config.ts";
import { openSources } from "./open.ts";
import { checkHeadOutput, foundHead, resumedHead } from "./output.ts";
import type { HeadVariant, TrainApOptions, TrainApResult } from "./options.ts";
import {
  type HeadPlan,
  HeadRun,
  layerMeansBytes,
  type PassContext,
  type PassOptions,
} from "./run.ts";
import { resumePrecision } from "../precision.ts";
import { StreamSource } from "../sources.ts";

/**
 * Trains a BERTVision head on a task split's hidden states — stored (`trainH5`) or streamed from
 * a BERT checkpoint (`stream`) — and, with a dev split, evaluates it. A batch too large for the
 * device runs as micro-batches with accumulated gradients (train/plan.ts).
 *
 * @example
 * ```ts ignore
 * const r = await trainAp({ trainH5: "acts/sst2_train.h5", devH5: "acts/sst2_dev.h5",
 *   task: "sst2", model: "ap", adapterDim: 8, batchSize: 16, epochs: 1, lr: 1e-3, seed: 42,
 *   outDir: "results/sst2/ap" });
 * console.log(r.devMetrics, r.params);
 * r.head.dispose();
 * ```
 */
export async function trainAp(opts: TrainApOptions): Promise<TrainApResult> {
  return (await trainHeads(opts, [{}]))[0];
}

/**
 * Trains several heads from the same batches: each batch's hidden states (read or streamed
 * once) feed every head. `variants` override `opts` per head (the data order and subsets follow
 * `opts.dataSeed`, default `opts.seed`; each head initialises from its own seed and records the
 * pass's data seed in its results.json, so it trains again alone with `seed` and `dataSeed`).
 * Returns one result per variant.
 *
 * Variants may train on different fractions (`trainFraction`, the less-data sweep): one pass
 * over the largest fraction's rows feeds them all (data/batches.ts `subsetPass`), each head
 * gathering its own rows into the batches it would have alone, so each equals the head trained
 * alone with its `trainFraction` (train/heads/fractions_test.ts).
 */
export async function trainHeads(
  opts: TrainApOptions,
  variants: HeadVariant[],
): Promise<TrainApResult[]> {
  const t0 = performance.now();
  const gpu = await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const resolved = headSettings(task, opts);
  const o = { ...HEAD_DEFAULTS, ...given, ...resolved.values } as PassOptions;
  const { batchSize, epochs } = o;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!(epochs > 0)) throw new RangeError(`epochs must be > 0, got ${epochs}`);
  if (!variants.length) throw new RangeError(`trainHeads: no heads to train`);
  const dirs = variants.map((v) => v.outDir ?? o.outDir);
  if (new Set(dirs).size < dirs.length) {
    throw new Error(`heads trained together need an output directory each, got ${dirs.join(", ")}`);
  }
  // Given (or the caller's choice), else that of a head found finished here (float32 for one
  // trained before `--precision` existed), so a rerun without the flag resumes as made; else the
  // preset.
  const precision = typeof opts.precision === "object"
    ? opts.precision
    : resumePrecision(gpu, opts.precision, o.overwrite ? null : await foundHead(dirs));
  // One writer per head directory, taken before anything is written: all or none (a refused
  // one releases those already taken).
  const locks = acquireLocks(dirs.map((d) => ({ output: d, kind: "dir" as const })), {
    breakLock: o.breakLock,
  });
  for (const l of locks) if (l.tookOver && !o.silent) console.error(l.tookOver);
  let sources: Awaited<ReturnType<typeof openSources>>;
  try {
    sources = await openSources(task, o);
  } catch (e) {
    for (const l of locks) l.release();
    throw e;
  }
  const { train, dev, devs } = sources;
  // The plan's precision line, whichever the precision (as fine-tuning's printed plan).
  if (!o.silent) console.error(headPrecisionLine(precision, train instanceof StreamSource));
  const ctx: PassContext = {
    gpu,
    task,
    kind,
    train,
    devs,
    o,
    micro: batchSize,
    marks: { at: 0, clean: 0, total: 0 },
    precision: precision.precision,
  };
  const runs: HeadRun[] = [];
  // One data order (and subset) for every head of the pass.
  const dataSeed = o.dataSeed ?? o.seed;
  try {
    const shape = train.shape;
    // Each head's rows: the seeded subset of its training fraction (nested across fractions,
    // data/batches.ts `seededSubset`), its own steps per epoch and steps.
    const subsets = new Map<number, Int32Array>();
    const subsetOf = (f: number) => {
      let r = subsets.get(f);
      if (!r) subsets.set(f, r = seededSubset(shape.n, f, dataSeed));
      return r;
    };
    const planned: HeadPlan[] = variants.map((variant) => {
      const v = {
        ...o,
        ...Object.fromEntries(Object.entries(variant).filter(([, x]) => x !== undefined)),
      };
      const rows = subsetOf(v.trainFraction);
      const perEpoch = batchesPerEpoch(rows.length, batchSize);
      const config = headConfigFor(shape, kind, {
        ...v,
        adapterDim: variant.adapterDim ?? adapterDimFor(opts, shape),
      });
      // What the head's results depend on: compared with an earlier run in the same directory.
      const settings = {
        task: task.name,
        head: config,
        train: train.fingerprint,
        dev: devs.length > 1 ? devs.map((d) => d.source.fingerprint) : dev?.fingerprint ?? null,
        batchSize,
        epochs,
        lr: v.lr,
        l2: v.l2,
        warmupProportion: o.warmupProportion,
        maxGradNorm: o.maxGradNorm,
        // The optimizer's switches, only where they differ from torch's AdamW on the Linear
        // weights (heads trained before they existed keep their settings).
        ...(o.biasCorrection ? {} : { biasCorrection: false }),
        ...(o.adamEps !== 1e-6 ? { adamEps: o.adamEps } : {}),
        ...(o.decayBiases ? { decayBiases: true } : {}),
        seed: v.seed,
        // Only when it differs from the head's seed (earlier heads' settings stay the same).
        ...(dataSeed !== v.seed ? { dataSeed } : {}),
        trainFraction: v.trainFraction,
        // Only when mixed (heads trained before `--precision` existed are float32).
        ...(precision.precision === "f16-mixed" ? { precision: precision.precision } : {}),
        // Only when it can change the head (the best epoch's weights are kept).
        ...(o.patience > 0 && dev ? { patience: o.patience } : {}),
        ...(o.patience > 0 && dev && o.earlyStop !== "metric" ? { earlyStop: o.earlyStop } : {}),
      };
      return { v, config, settings, rows, perEpoch, total: stepsFor(epochs, perEpoch), dataSeed };
    });
    const found: (Record<string, unknown> | null)[] = [];
    for (const p of planned) found.push(await checkHeadOutput(p.v.outDir, p.settings, o.overwrite));
    // `resume`: a head whose directory holds its results with these settings is done.
    for (const p of planned.filter((_, i) => !(o.resume && found[i]))) {
      runs.push(await HeadRun.create(p, ctx, runs.length === 0));
    }
    if (runs.some((h) => h.evalAt.size) && !dev) {
      throw new Error(`evalAt needs a dev source (--dev-h5, or a stream)`);
    }
    const limits = limitsOf(gpu, o.maxBindingMiB);
    const stage = `train ${task.name} head${runs.length > 1 ? "s" : ""}`;
    const rowTensors = [
      ...train.rowTensors(),
      ...runs.flatMap((h) => headRowTensors(h.head.config)),
    ];
    // Weights, grads, m, v; and the sum of its first epoch's rows (its layer means) per head.
    const fixed = runs.reduce(
      (a, h) =>
        a + 16 * h.head.numParams + (h.plan.layerMeans === false ? 0 : layerMeansBytes(shape)),
      0,
    );
    const headRows = runs.reduce(
      (a, h) => a + headRowTensors(h.head.config).reduce((x, t) => x + t.bytesPerRow, 0),
      0,
    );
    // Heads on different subsets gather their batches' hidden states across reads: up to a
    // batch each (data/batches.ts `subsetPass`).
    const gathering = new Set(runs.map((h) => h.plan.rows)).size > 1;
    const inputRow = train.rowTensors()[0].bytesPerRow;
    const gathered = gathering ? runs.length * batchSize * inputRow : 0;
    const split = runs.length === 0 ? null : splitBatch(stage, batchSize, rowTensors, limits, {
      fixed: fixed + gathered + train.peakBytes(0),
      perRow: train.peakBytes(1) - train.peakBytes(0) + 3 * headRows,
    });
    const micro = ctx.micro = split?.micro ?? batchSize;
    const pass = runs.map((h) => ({ rows: h.plan.rows, steps: h.plan.total }));
    let reads = 0;
    for (const c of subsetPass(shape.n, dataSeed, batchSize, pass)) reads += c.rows.length;
    if (split) {
      enterStage(
        fixed + gathered + train.peakBytes(micro) + 3 * headRows * micro,
        fixed + gathered,
      );
    }
    const bar = ctx.bar = new Progress({
      label: runs.length > 1
        ? `train ${task.name} ${runs.length} heads`
        : `train ${task.name} ${runs.length ? describeConfig(runs[0].head.config) : "head"}`,
      total: reads,
      unit: "ex",
      silent: o.silent || !runs.length,
    });

    // One pass: each read (store) or forward (stream) of up to a batch of rows feeds every head
    // that takes some of them. A chunk that is exactly a head's batch trains it at once, micro-
    // batch by micro-batch, as a head alone does; otherwise the head's rows are copied (on the
    // GPU) into its batch, which trains once whole, in the same micro-batches: the same values
    // in the same order, so each head's steps are those it takes alone.
    const chunks = subsetPass(shape.n, dataSeed, batchSize, pass, (j) => runs[j].training);
    for (const chunk of chunks) {
      const direct = runs.map((h, j) =>
        h.queue.length === 0 && chunk.takes[j].length === chunk.rows.length &&
        chunk.rows.length === h.batchLen(h.steps)
      );
      const cursor = runs.map(() => 0); // next entry of each head's takes
      for (let r0 = 0; r0 < chunk.rows.length; r0 += micro) {
        const part = chunk.rows.subarray(r0, r0 + micro);
        scope(() => {
          const data = train.take(part);
          const rowShape = data.x.shape.slice(1);
          const rowBytes = 4 * rowShape.reduce((a, b) => a * b, 1);
          runs.forEach((h, j) => {
            if (direct[j]) return h.accumulate(data.x, data.labels, data.idx, chunk.rows.length);
            const takes = chunk.takes[j];
            for (; cursor[j] < takes.length && takes[cursor[j]] < r0 + part.length; cursor[j]++) {
              h.gather(data, takes[cursor[j]] - r0, rowShape, rowBytes);
            }
          });
        });
      }
      for (const [j, h] of runs.entries()) {
        if (direct[j]) await h.finishStep(chunk.rows.length);
        await h.trainQueued();
      }
      // `evalAt`: heads on the same rows reach an evaluation point together; `onEval` says
      // which go on.
      if (runs.some((h) => h.pending)) {
        const evals = runs.map((h) => h.pending ?? null);
        const go = o.onEval ? await o.onEval(evals) : evals.map(() => true);
        runs.forEach((h, j) => {
          if (h.pending && go[j] === false) {
            h.halted = h.pending.step;
            h.dropQueue();
          }
          h.pending = undefined;
        });
      }
      bar.tick(chunk.rows.length);
    }
    for (const h of runs) await h.endPass();
    bar.done();

    const results: TrainApResult[] = [];
    for (const [i, p] of planned.entries()) {
      const h = runs.find((x) => x.outDir === p.v.outDir);
      results.push(
        h ? await h.finish(t0, split!, resolved) : await resumedHead(p.v.outDir, found[i]!, {
          log: p.v.log,
          devs,
          rows: p.rows,
          batchSize,
          inputRow: train.rowTensors()[0],
          settings: { ...resolved.values, lr: p.v.lr, l2: p.v.l2, seed: p.v.seed },
        }),
      );
    }
    return results;
  } catch (e) {
    for (const h of runs) h.dispose();
    const { at, clean, total } = ctx.marks;
    throw stageError(e, {
      stage: `train ${task.name} head${runs.length > 1 ? "s" : ""}`,
      batch: stepsSince(clean, at, total),
      batchSize,
    });
  } finally {
    train.close();
    for (const d of devs) d.source.close();
    for (const l of locks) l.release();
  }
}
