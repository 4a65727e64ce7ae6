/**
 * Which layers carry the task: a linear probe per stored layer (L+1 of them, layer 0 = the
 * embeddings), all trained from one pass over the store, then the dev metric per layer as a
 * table and a curve (report/layers.ts) with BERT's and the BERTVision head's dev metrics as lines.
 *
 * - A probe on layer k is a BERTVision head with average pooling over one layer (model/heads.ts
 *   "avg", L = 1): a Linear on that layer's features, the task's head kind giving its read-out,
 *   outputs and loss (classification, regression, multi-label: one vector per row; span: one per
 *   token). Features per row: the [CLS] vector (`pool: "cls"`, the default), the mean over the
 *   real tokens (`"mean"`, attention mask; needs the full layout), or every token (span tasks).
 *   Pooling is done on the host as rows are read (train/heads/probe_source.ts), or, with
 *   `stream` (no store: a frozen BERT over the split's rows), on the GPU after each batch's one
 *   BERT forward, in the same float32 operations: the same probes bit for bit.
 * - One pass (as train/heads/pass.ts `trainHeads` feeds the fractions): each batch is read from
 *   the store once, pooled, uploaded once, and every layer's probe trains on its layer's slice
 *   (a GPU gather). Every probe walks the same seeded data order with the same steps, so each
 *   equals the head trained alone on a store holding only its layer (weights and dev logits bit
 *   for bit, train/heads/probe_test.ts), and the store is read once per epoch.
 * - One output directory per layer, `OUT/layer-K/` (head, log, dev logits, `results.json` last),
 *   locked, refused or resumed as every head's (train/heads/output.ts); the curve in
 *   `OUT/probe.json`, `probe.md` and `probe.svg`. `shard` trains a contiguous share of the
 *   layers (array jobs); the same command without it then finds them finished and draws.
 * - `precision` (`--precision`, train/precision.ts): the head-training preset (f16-mixed on a
 *   hardware GPU with shader-f16, float32 on software adapters), or the probes' found here; under
 *   f16-mixed each probe's matmul takes f16 operands and its loss is scaled (train/heads/run.ts),
 *   recorded in each probe's settings, so a rerun with the other precision is refused.
 * - `overwrite` (unsharded) replaces the whole output by data/output/overwrite.ts's steps:
 *   `OUT/.overwriting` written first, then the curve and every probe's files removed (each
 *   `results.json` first), the marker removed once the new curve is written; a rerun after a
 *   kill continues the overwrite. A shard's `overwrite` replaces only its probes.
 * @module
 */
import {
  acquireLock,
  acquireLocks,
  finishOverwrite,
  readMarker,
  removePaths,
  resumeOverwrite,
  startOverwrite,
} from "../../data/output/mod.ts";
import { InputError } from "../../data/errors.ts";
import { seededSubset, subsetPass } from "../../data/batches.ts";
import { Progress } from "../../data/progress.ts";
import { type Shard, shardRange } from "../../data/shard.ts";
import { initGpu, scope } from "../../model/tensor.ts";
import { headParamCount, resolveHeadConfig } from "../../model/heads.ts";
import type { ReferenceLine } from "../../report/curve.ts";
import { type LayerPoint, type ProbeCurve, writeProbe } from "../../report/layers.ts";
import { devMetricKeys, kindOf, mergeDevMetrics, resolveTask } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { type PrecisionChoice, resumePrecision } from "../precision.ts";
import { limitsOf, splitBatch } from "../plan.ts";
import { batchesPerEpoch, stageError, stepsFor, stepsSince } from "../loop.ts";
import { type ActivationSource, StoreSource, type StreamSource } from "../sources.ts";
import { headConfigFor, headRowTensors, headSettings } from "./config.ts";
import { openSources } from "./open.ts";
import { checkHeadOutput, removeHeadFiles, resumedHead } from "./output.ts";
import type { TrainApOptions, TrainApResult } from "./options.ts";
import { type HeadPlan, HeadRun, type PassContext, type PassOptions } from "./run.ts";
import { plottedKeys } from "./fractions.ts";
import {
  LayerView,
  PooledSource,
  type ProbePool,
  selectLayer,
  StreamPooled,
} from "./probe_source.ts";

export type { ProbePool } from "./probe_source.ts";

/** Options of {@linkcode trainProbes}: a head's training settings, the pooling and the lines. */
export interface ProbeOptions extends
  Omit<
    TrainApOptions,
    | "model"
    | "adapterDim"
    | "shared"
    | "skip"
    | "trainFraction"
    | "noDev"
    | "preset"
    | "evalAt"
    | "onEval"
    | "log"
  > {
  /** Features of a row per layer: "cls" ([CLS], default) or "mean" (over real tokens). */
  pool?: "cls" | "mean";
  /** BERT's dev score on the main metric (`--bert-score`), drawn as a line. */
  bertScore?: number;
  /** The BERTVision head's dev score on the main metric (`--ap-score`), drawn as a line. */
  apScore?: number;
  /** A trained head's directory (`--ap-head`): its `results.json` dev metrics drawn as a line. */
  apHead?: string;
  /** More lines, as the caller knows them (reproduce: BERT's checkpoint and its head). */
  references?: ReferenceLine[];
  /** Train only this shard's layers (`--shard I/N`, a contiguous share). */
  shard?: Shard;
}

/** What {@linkcode trainProbes} returns. */
export interface ProbeResult {
  /** One probe per layer trained (or resumed), in increasing layer order (caller disposes). */
  probes: TrainApResult[];
  /** Their layers. */
  layers: number[];
  curve: ProbeCurve;
  /** `probe.json`, `probe.md`, `probe.svg` (none for a shard). */
  files: string[];
}

/** A probe's directory in `out`. */
export function probeDir(out: string, layer: number): string {
  return `${out}/layer-${layer}`;
}

/**
 * A probe output's old contents, for an overwrite: the curve (`probe.json` first), then every
 * `layer-K` probe's files (its `results.json` first; the directories and their locks stay).
 */
async function removeProbe(dir: string): Promise<void> {
  await removePaths(["json", "md", "svg"].map((x) => `${dir}/probe.${x}`));
  const layers: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && /^layer-\d+$/.test(e.name)) layers.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const l of layers.sort()) await removeHeadFiles(l);
}

/**
 * The settings of a probe finished in `out` (the first `layer-K/results.json` of `layers`
 * layers that reads), for {@linkcode resumePrecision}; null when there is none.
 */
async function foundProbe(
  out: string,
  layers: number,
): Promise<{ what: string; settings: Record<string, unknown> } | null> {
  for (let k = 0; k < layers; k++) {
    const r = await readMarker<Record<string, unknown>>(probeDir(out, k), "results.json")
      .catch(() => null); // unreadable: that probe's own check says why, naming the file
    const settings = r?.settings;
    if (typeof settings === "object" && settings !== null && !Array.isArray(settings)) {
      return { what: `the probes in ${out}`, settings: settings as Record<string, unknown> };
    }
  }
  return null;
}

/** The plan's precision line: what f16-mixed changes for a probe. */
const precisionLine = (p: PrecisionChoice) =>
  `precision ${p.precision} (${p.why})` +
  (p.precision === "f16-mixed" ? ": each probe's matmul in f16, loss scaling" : "");

/** A head directory's dev metrics as a reference line ("BERTVision (AP)" ...). */
async function headLine(
  dir: string,
  task: ReturnType<typeof resolveTask>,
): Promise<ReferenceLine> {
  const r = await readMarker<Record<string, unknown>>(dir, "results.json").catch(() => null);
  if (!r || typeof r.devMetrics !== "object" || !r.devMetrics) {
    throw new InputError(
      `--ap-head ${dir}: no finished head there (results.json with devMetrics); give the ` +
        `directory of a trained head, or its score with --ap-score`,
      { file: `${dir}/results.json` },
    );
  }
  const splits = r.devSplits as Record<string, Record<string, number>> | undefined;
  const metrics = splits
    ? mergeDevMetrics(task, Object.entries(splits))
    : mergeDevMetrics(task, [["dev", r.devMetrics as Record<string, number>]]);
  const pooling = (r.head as { pooling?: string } | undefined)?.pooling ?? "ap";
  return { label: `BERTVision (${pooling.toUpperCase()})`, metrics };
}

/**
 * Trains a linear probe on every stored layer from one pass over the training store and writes
 * the dev metric per layer to `outDir` (`probe.json`, `.md`, `.svg`). Needs a dev store. A rerun
 * keeps the layers already finished with the same settings.
 *
 * @example
 * ```ts ignore
 * const r = await trainProbes({ task: "sst2", trainH5: "train.h5", devH5: "dev.h5",
 *   outDir: "runs/sst2-probe", epochs: 2 });
 * console.log(r.curve.points.map((p) => [p.layer, p.metrics.accuracy]));
 * for (const p of r.probes) p.head.dispose();
 * ```
 */
export async function trainProbes(opts: ProbeOptions): Promise<ProbeResult> {
  const t0 = performance.now();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  if (!opts.trainH5 && !opts.stream) {
    throw new InputError(
      `probe: give the training split's stored activations with --h5, or a stream ` +
        `(--activations stream --bert CKPT --data-dir D)`,
    );
  }
  if (!opts.stream && [opts.devH5 ?? []].flat().length === 0) {
    throw new InputError(
      `probe draws the dev metric per layer: give the dev split's activations with --dev-h5`,
    );
  }
  const gpu = await initGpu();
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const resolved = headSettings(task, { ...opts, model: "avg" });
  const o = { ...HEAD_DEFAULTS, ...given, ...resolved.values, model: "avg" } as PassOptions;
  const { batchSize, epochs } = o;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!(epochs > 0)) throw new RangeError(`epochs must be > 0, got ${epochs}`);
  const pool: ProbePool = kind.readout === "token" ? "token" : opts.pool ?? "cls";
  if (kind.readout === "token" && opts.pool === "mean") {
    throw new InputError(
      `--pool mean: ${task.name}'s ${kind.name} probes read every token (one logit pair per ` +
        `token); leave --pool out`,
    );
  }
  // A stream computes the layout the pooling reads: [CLS] only for "cls", every token else.
  if (o.stream) {
    if (o.stream.layout !== undefined || o.layout !== undefined) {
      throw new InputError(
        `probe --activations stream: the stream's layout follows --pool (cls: [CLS] only; ` +
          `mean and span tasks: every token); leave --layout out`,
      );
    }
    o.stream = { ...o.stream, layout: pool === "cls" ? "cls" : "full" };
  }
  const { train, devs } = await openSources(task, o);
  const closeAll = () => {
    train.close();
    for (const d of devs) d.source.close();
  };
  if (pool === "mean" && train.shape.layout !== "full") {
    closeAll();
    throw new InputError(
      `--pool mean averages each layer over the real tokens, but ${opts.trainH5} holds only the ` +
        `[CLS] vectors (layout cls); capture the store again with --layout full, or probe the ` +
        `[CLS] vectors with --pool cls`,
      { file: opts.trainH5 },
    );
  }
  // Pooled as read (a store, on the host) or as computed (a stream, on the GPU).
  const pooled = (s: ActivationSource, cache: boolean): PooledSource | StreamPooled =>
    s instanceof StoreSource
      ? new PooledSource(s, pool, cache)
      : new StreamPooled(s as StreamSource, pool, cache);
  const ptrain = pooled(train, false);
  const pdevs = devs.map((d) => ({ ...d, source: pooled(d.source, true) }));
  const L = train.shape.layers;
  let layers = Array.from({ length: L }, (_, k) => k);
  if (opts.shard) {
    const { start, end } = shardRange(L, opts.shard);
    if (start === end) {
      closeAll();
      throw new InputError(
        `--shard ${opts.shard.index}/${opts.shard.count}: ${L} layers leave shard ` +
          `${opts.shard.index} nothing to probe; use at most ${L} shards`,
      );
    }
    layers = layers.slice(start, end);
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  const dirs = layers.map((k) => probeDir(o.outDir, k));
  // The curve's directory is locked by an unsharded run; each probe's directory by its trainer.
  let outLock: ReturnType<typeof acquireLock> | null = null;
  let locks: ReturnType<typeof acquireLocks> = [];
  try {
    outLock = opts.shard ? null : acquireLock(o.outDir, "dir", { breakLock: o.breakLock });
    locks = acquireLocks(dirs.map((d) => ({ output: d, kind: "dir" as const })), {
      breakLock: o.breakLock,
    });
  } catch (e) {
    outLock?.release();
    closeAll();
    throw e;
  }
  for (const l of [outLock, ...locks]) if (l?.tookOver && !o.silent) console.error(l.tookOver);
  // Unsharded, --overwrite marks the old curve invalid before removing it, and a rerun continues
  // an overwrite a kill interrupted (data/output/overwrite.ts); a shard (array tasks share the
  // folder) replaces only its own probes, as a fractions sweep's shards do.
  let overwriting = false;
  if (!opts.shard) {
    try {
      const remove = () => removeProbe(o.outDir);
      if (o.overwrite) await startOverwrite(o.outDir, "probe --overwrite", remove);
      overwriting = o.overwrite || (await resumeOverwrite(o.outDir, remove)) !== null;
    } catch (e) {
      for (const l of locks) l.release();
      outLock?.release();
      closeAll();
      throw e;
    }
    // Probes the interrupted overwrite finished with these settings are kept; others replaced.
    if (overwriting) o.overwrite = true;
  }
  // The probes' precision: given, else that of the probes found here (any layer's: a shard
  // resumes its siblings'; float32 for probes made before `--precision` existed), else the
  // preset. A probe found with the other one is refused below, by its settings diff.
  const precision = typeof opts.precision === "object"
    ? opts.precision
    : resumePrecision(gpu, opts.precision, o.overwrite ? null : await foundProbe(o.outDir, L));
  if (!o.silent) console.error(`probes: ${precisionLine(precision)}`);
  const dataSeed = o.dataSeed ?? o.seed;
  const runs: HeadRun[] = [];
  const runLayer: number[] = [];
  const ctx: PassContext = {
    gpu,
    task,
    kind,
    train: ptrain,
    devs: pdevs,
    o,
    micro: batchSize,
    marks: { at: 0, clean: 0, total: 0 },
    precision: precision.precision,
  };
  try {
    const shape = ptrain.shape;
    const rows = seededSubset(shape.n, 1, dataSeed);
    const perEpoch = batchesPerEpoch(rows.length, batchSize);
    const total = stepsFor(epochs, perEpoch);
    const config = headConfigFor({ ...shape, layers: 1 }, kind, { model: "avg" });
    const planned: HeadPlan[] = layers.map((k, i) => ({
      v: { lr: o.lr, l2: o.l2, seed: o.seed, outDir: dirs[i] },
      config,
      settings: {
        task: task.name,
        probe: { layer: k, pool },
        head: config,
        train: train.fingerprint,
        dev: devs.length > 1 ? devs.map((d) => d.source.fingerprint) : devs[0].source.fingerprint,
        batchSize,
        epochs,
        lr: o.lr,
        l2: o.l2,
        warmupProportion: o.warmupProportion,
        maxGradNorm: o.maxGradNorm,
        seed: o.seed,
        ...(dataSeed !== o.seed ? { dataSeed } : {}),
        trainFraction: 1,
        // Only when mixed (probes made before `--precision` existed are float32).
        ...(precision.precision === "f16-mixed" ? { precision: precision.precision } : {}),
        ...(o.patience > 0 ? { patience: o.patience } : {}),
      },
      rows,
      perEpoch,
      total,
      dataSeed,
      // One layer each: no layer means (ablate takes heads on every layer).
      layerMeans: false,
    }));
    const found: (Record<string, unknown> | null)[] = [];
    for (const p of planned) found.push(await checkHeadOutput(p.v.outDir, p.settings, o.overwrite));
    const todo = planned.map((p, i) => ({ p, i })).filter(({ i }) => !found[i]);

    // The plan: the pooled batch once (a stream: BERT's forward too), every probe's parameters
    // and features.
    const limits = limitsOf(gpu, o.maxBindingMiB);
    const stage = `train ${task.name} layer probes`;
    const rowTensors = ptrain.rowTensors();
    const inputRow = rowTensors[0];
    const headRows = headRowTensors(resolveHeadConfig(config)).reduce(
      (a, t) => a + t.bytesPerRow,
      0,
    ) * todo.length;
    const fixed = 16 * headParamCount(config) * todo.length;
    const split = splitBatch(stage, batchSize, rowTensors, limits, {
      fixed: fixed + ptrain.peakBytes(0),
      perRow: ptrain.peakBytes(1) - ptrain.peakBytes(0) + 3 * headRows,
    });
    const micro = ctx.micro = split.micro;
    const bar = ctx.bar = new Progress({
      label: `probe ${task.name} ${todo.length} layers`,
      total: todo.length ? Math.ceil(total / perEpoch) * rows.length : 0,
      unit: "ex",
      silent: o.silent || !todo.length,
    });
    for (const { p, i } of todo) {
      const k = layers[i];
      // Each probe evaluates (and names its source) on its own layer's view.
      const own: PassContext = Object.create(ctx);
      own.train = new LayerView(ptrain, k);
      own.devs = pdevs.map((d) => ({ ...d, source: new LayerView(d.source, k) }));
      runs.push(await HeadRun.create(p, own, runs.length === 0));
      runLayer.push(k);
    }
    const pass = runs.map((h) => ({ rows: h.plan.rows, steps: h.plan.total }));
    for (const chunk of subsetPass(shape.n, dataSeed, batchSize, pass, (j) => runs[j].training)) {
      const takes = runs.map((_, j) => chunk.takes[j].length);
      if (takes.some((t) => t !== 0 && t !== chunk.rows.length)) {
        throw new Error(`probe pass: a probe takes part of a batch (a bug)`);
      }
      for (let r0 = 0; r0 < chunk.rows.length; r0 += micro) {
        const part = chunk.rows.subarray(r0, r0 + micro);
        scope(() => {
          const data = ptrain.take(part);
          runs.forEach((h, j) => {
            if (!takes[j]) return;
            h.accumulate(
              selectLayer(data.x, runLayer[j]),
              data.labels,
              data.idx,
              chunk.rows.length,
            );
          });
        });
      }
      for (const [j, h] of runs.entries()) if (takes[j]) await h.finishStep(chunk.rows.length);
      bar.tick(chunk.rows.length);
    }
    for (const h of runs) await h.endPass();
    bar.done();
    // A stream's dev rows: computed and pooled once for the L+1 evaluations.
    if (runs.length) {
      for (const d of pdevs) if (d.source instanceof StreamPooled) await d.source.prepare();
    }
    const probes: TrainApResult[] = [];
    for (const [i, p] of planned.entries()) {
      const j = runs.findIndex((h) => h.outDir === p.v.outDir);
      probes.push(
        j >= 0
          ? await runs[j].finish(t0, split, resolved)
          : await resumedHead(p.v.outDir, found[i]!, {
            devs: pdevs,
            rows,
            batchSize,
            inputRow,
            settings: { ...resolved.values, lr: o.lr, l2: o.l2, seed: o.seed },
          }),
      );
    }
    const splits = probes[0].devBySplit?.map((d) => d.split) ?? [];
    const points: LayerPoint[] = probes.map((r, i) => ({
      layer: layers[i],
      metrics: mergeDevMetrics(task, (r.devBySplit ?? []).map((d) => [d.split, d.metrics])),
      dir: dirs[i],
      ...(r.resumed ? { resumed: true } : {}),
    }));
    let plotted = plottedKeys(task, splits), metricKeys = devMetricKeys(task, splits);
    // Scored by the head kind without the task's own metric (SQuAD without its questions: token
    // accuracies): the metrics the probes have.
    const have = (k: string) => points.some((p) => Number.isFinite(p.metrics[k]));
    if (!plotted.some(have)) {
      plotted = metricKeys = [...new Set(points.flatMap((p) => Object.keys(p.metrics)))];
    }
    const references: ReferenceLine[] = [...opts.references ?? []];
    if (opts.bertScore !== undefined) {
      references.push({ label: "BERT", metrics: { [plotted[0]]: opts.bertScore } });
    }
    if (opts.apScore !== undefined) {
      references.push({ label: "BERTVision head", metrics: { [plotted[0]]: opts.apScore } });
    } else if (opts.apHead !== undefined) references.push(await headLine(opts.apHead, task));
    const curve: ProbeCurve = {
      task: task.name,
      pool,
      layers: L,
      metricKeys,
      plotted,
      points,
      references,
      settings: {
        ...probes[0].settings,
        pool,
        ...(precision.precision === "f16-mixed" ? { precision: precision.precision } : {}),
        source: opts.stream
          ? { stream: opts.stream.model }
          : { trainH5: opts.trainH5, devH5: opts.devH5 },
      },
      finished: new Date().toISOString(),
    };
    if (opts.shard) {
      if (!o.silent) {
        console.error(
          `shard ${opts.shard.index}/${opts.shard.count}: probed layers ${layers.join(", ")}; ` +
            `once every shard is done, the same command without --shard draws the curve`,
        );
      }
      return { probes, layers, curve, files: [] };
    }
    const files = await writeProbe(o.outDir, curve);
    if (overwriting) await finishOverwrite(o.outDir);
    return { probes, layers, curve, files };
  } catch (e) {
    for (const h of runs) h.dispose();
    const { at, clean, total } = ctx.marks;
    throw stageError(e, {
      stage: `train ${task.name} layer probes`,
      batch: stepsSince(clean, at, total),
      batchSize,
    });
  } finally {
    closeAll();
    for (const l of locks) l.release();
    outLock?.release();
  }
}
