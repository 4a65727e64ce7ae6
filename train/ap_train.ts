/**
 * Training and evaluating a BERTVision model (AP / LP / AvgP, {@linkcode BvHead}) from an HDF5
 * activation store (data/h5_store.ts), streaming: each step reads only its shuffled batch with
 * `H5Reader.readIndices`, evaluation reads consecutive blocks with `readRows`; never the whole
 * file.
 *
 * - Data order: a seeded shuffle per epoch of the (seeded, `trainFraction`) training subset,
 *   cut into batches (the last batch of an epoch may be smaller), as data/batches.ts defines.
 *   Fractional `epochs` run ceil(epochs · batches per epoch) steps.
 * - AdamW (weight decay `l2` on weights, not on biases / LP scalars), linear warmup for
 *   `warmupProportion` of the steps then linear decay to 0.
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
 * `results.json`.
 * @module
 */
import {
  BvHead,
  describeConfig,
  type HeadConfig,
  type ParamReport,
  type Pooling,
  saveHead,
} from "../model/heads.ts";
import { AdamW } from "../model/optim.ts";
import { backward, initGpu, keep, noGrad, scope, Tensor } from "../model/tensor.ts";
import { H5Reader } from "../data/h5_store.ts";
import { linearSchedule, seededSubset, shuffledIndices } from "../data/batches.ts";
import { encodeNpy } from "../data/npy.ts";
import { Progress } from "../data/progress.ts";
import { type EvalRows, kindOf, resolveTask, type Task, type TaskKind } from "../tasks/mod.ts";
import { HEAD_DEFAULTS } from "./defaults.ts";
import {
  batchesPerEpoch,
  JsonLog,
  type LogEntry,
  LossWindow,
  stepsFor,
  Throughput,
} from "./loop.ts";

export type { LogEntry } from "./loop.ts";

/** What the flags say the store must be (any field left out is not checked). */
export interface StoreExpectations {
  /** The task the head is for (the store's `task` attribute must match when present). */
  task: Task;
  /** `--layout`: "full" (every token) or "cls". */
  layout?: "full" | "cls";
  /** `--model`/BERT id the activations must come from (`model_id` attribute). */
  modelId?: string;
  /** "train" or "dev": a store whose `split` attribute says otherwise is refused. */
  role?: "train" | "dev";
}

/**
 * Checks an opened store against the flags, throwing a message that names the file, what it
 * holds and the flag that disagrees, e.g. "HDF5 file X was captured with layout full but
 * --layout cls was given".
 */
export function checkStore(reader: H5Reader, e: StoreExpectations): void {
  const file = `HDF5 file ${reader.path}`;
  const a = reader.attrs;
  const s = reader.shape;
  if (e.layout && s.layout !== e.layout) {
    throw new Error(
      `${file} was captured with layout ${s.layout} but --layout ${e.layout} was given`,
    );
  }
  if (typeof a.task === "string" && a.task.toLowerCase() !== e.task.name) {
    throw new Error(`${file} was captured for task ${a.task} but --task ${e.task.name} was given`);
  }
  if (e.modelId !== undefined && a.model_id !== undefined && String(a.model_id) !== e.modelId) {
    throw new Error(
      `${file} was captured with model ${a.model_id} but --model ${e.modelId} was given`,
    );
  }
  if (e.role && typeof a.split === "string") {
    const isTrain = a.split.startsWith("train");
    if (e.role === "train" && !isTrain) {
      throw new Error(`${file} holds the ${a.split} split but was given as the training file`);
    }
    if (e.role === "dev" && (isTrain || a.split.startsWith("test"))) {
      throw new Error(`${file} holds the ${a.split} split but was given as the dev file`);
    }
  }
  const kind = kindOf(e.task);
  if (kind.readout === "token" && s.layout !== "full") {
    throw new Error(
      `${file} has layout cls; ${kind.name} task ${e.task.name} needs every token (full)`,
    );
  }
  if (reader.labelWidth !== kind.labelWidth) {
    throw new Error(
      `${file} has ${reader.labelWidth} ${reader.labelWidth === 1 ? "label" : "labels"} per ` +
        `row; ${kind.name} task ${e.task.name} needs ${kind.labelWidth}`,
    );
  }
  const lt = a.label_type;
  if (typeof lt === "string" && lt !== kind.labelType) {
    throw new Error(
      `${file} stores ${lt} labels; task ${e.task.name} (${kind.name}) needs ${kind.labelType}`,
    );
  }
  if (reader.rowsComplete < s.n) {
    throw new Error(
      `${file} is incomplete: ${reader.rowsComplete} of ${s.n} rows captured (an interrupted ` +
        `capture? rerun it to finish)`,
    );
  }
}

/** Throws unless two stores hold activations of the same shape (and model, when recorded). */
export function checkSameCapture(train: H5Reader, dev: H5Reader): void {
  const t = train.shape, d = dev.shape;
  for (const k of ["layers", "tokens", "hidden", "layout"] as const) {
    if (t[k] !== d[k]) {
      throw new Error(
        `HDF5 file ${dev.path} has ${k} ${d[k]} but the training file ${train.path} has ${t[k]}; ` +
          `capture both with the same model and settings`,
      );
    }
  }
  const mt = train.attrs.model_id, md = dev.attrs.model_id;
  if (mt !== undefined && md !== undefined && mt !== md) {
    throw new Error(
      `HDF5 file ${dev.path} was captured with model ${md} but the training file ${train.path} ` +
        `with ${mt}`,
    );
  }
}

/** The head config a store, the task's head kind and the options imply. */
export function headConfigFor(
  reader: H5Reader,
  kind: TaskKind,
  o: { model?: Pooling; adapterDim?: number; shared?: boolean; skip?: boolean },
): HeadConfig {
  const s = reader.shape;
  return {
    pooling: o.model ?? HEAD_DEFAULTS.model,
    readout: kind.readout,
    outputs: kind.outputs,
    layers: s.layers,
    tokens: s.layout === "full" ? s.tokens : 1,
    features: s.hidden,
    adapterDim: o.adapterDim, // default: model/heads.ts (the token count for token read-outs)
    shared: o.shared,
    skip: o.skip,
  };
}

function inputShape(reader: H5Reader, rows: number): number[] {
  const s = reader.shape;
  return s.layout === "full" ? [rows, s.layers, s.tokens, s.hidden] : [rows, s.layers, s.hidden];
}

/** Options of {@linkcode trainAp}; defaults in train/defaults.ts `HEAD_DEFAULTS`. */
export interface TrainApOptions {
  /** HDF5 activation store of the training split. */
  trainH5: string;
  /** HDF5 store of a dev split to evaluate on after training. */
  devH5?: string;
  /** Task name or module (kind, labels, metrics). */
  task: string | Task;
  /** "ap" adapter-pooler, "lp" learned pooling, "avg" average pooling. */
  model?: Pooling;
  /** AP adapter size (token read-outs, i.e. SQuAD: the token count). */
  adapterDim?: number;
  /** AP weights shared across layers. */
  shared?: boolean;
  /** Span skip connection. */
  skip?: boolean;
  /** Examples per step. */
  batchSize?: number;
  /** Passes over the (subset of the) training data; fractional allowed. */
  epochs?: number;
  /** Peak learning rate. */
  lr?: number;
  /** AdamW weight decay on weights. */
  l2?: number;
  /** Share of steps spent warming up linearly. */
  warmupProportion?: number;
  /** Clip the global gradient norm (0 = off). */
  maxGradNorm?: number;
  /** Seeds initialisation, subset and data order. */
  seed?: number;
  /** Train on a seeded subset of this share of the rows, in (0, 1]. */
  trainFraction?: number;
  /** Where the head, log, logits and results go (created). */
  outDir: string;
  /** JSON-lines log path [`outDir/train_log.jsonl`]. */
  log?: string;
  /** Steps between loss readbacks / log lines. */
  logEvery?: number;
  /** Expected layout (`--layout`); checked against the store. */
  layout?: "full" | "cls";
  /** Expected BERT model id; checked against the store's `model_id`. */
  modelId?: string;
  /** BERT's parameter count, for the head's share in the results. */
  bertParams?: number;
  /** Rows per evaluation forward. */
  evalBatchSize?: number;
  /** Draw no progress bar. */
  silent?: boolean;
  /**
   * The dev split's rows as `loadRows` (train/rows.ts) makes them, when the caller has them:
   * SQuAD's questions and windows, so span logits are scored by the official EM/F1 instead of
   * token accuracies. Must be the rows the dev store holds, in order.
   */
  devRows?: EvalRows;
  /** Computes dev metrics from the saved-layout logits instead of the head kind's scoring. */
  metrics?: MetricsFn;
}

/** Custom dev metrics from saved-layout logits (shape as the kind saves them) and row indices. */
export type MetricsFn = (
  logits: Float32Array,
  shape: number[],
  idx: Float64Array,
) => Record<string, number> | Promise<Record<string, number>>;

/** What {@linkcode trainAp} returns. */
export interface TrainApResult {
  /** The trained head (on the GPU; the caller disposes it). */
  head: BvHead;
  /** Its parameter count. */
  params: number;
  /** Parameter count and share of BERT's (when `bertParams` was given). */
  paramReport?: ParamReport;
  /** The log entries. */
  history: LogEntry[];
  /** Steps and examples trained. */
  steps: number;
  examples: number;
  /** Rows of the training store used (the `trainFraction` subset, increasing). */
  trainRows: Int32Array;
  /** Saved head. */
  headPath: string;
  /** Dev metrics (the head kind's scores, or `metrics`'). */
  devMetrics?: Record<string, number>;
  /** Saved dev logits (.npy). */
  devLogitsPath?: string;
  /** Wall time of training (and evaluation). */
  wallSeconds: number;
}

/**
 * Trains a BERTVision head on an HDF5 activation store and, with `devH5`, evaluates it.
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
  const t0 = performance.now();
  await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o = { ...HEAD_DEFAULTS, ...given } as typeof HEAD_DEFAULTS & TrainApOptions;
  const { batchSize, epochs, lr, seed } = o;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }
  if (!(epochs > 0)) throw new RangeError(`epochs must be > 0, got ${epochs}`);
  const reader = await H5Reader.open(o.trainH5);
  let dev: H5Reader | null = null;
  try {
    checkStore(reader, { task, layout: o.layout, modelId: o.modelId, role: "train" });
    if (o.devH5) {
      dev = await H5Reader.open(o.devH5);
      checkStore(dev, { task, layout: o.layout, modelId: o.modelId, role: "dev" });
      checkSameCapture(reader, dev);
    }
    await Deno.mkdir(o.outDir, { recursive: true });
    const log = new JsonLog(o.log ?? `${o.outDir}/train_log.jsonl`, { truncate: true });

    const config = headConfigFor(reader, kind, { ...o, adapterDim: opts.adapterDim });
    const head = BvHead.create(config, seed);
    const rows = seededSubset(reader.shape.n, o.trainFraction, seed);
    const n = rows.length;
    const perEpoch = batchesPerEpoch(n, batchSize);
    const total = stepsFor(epochs, perEpoch);
    const opt = new AdamW(head.paramGroups(o.l2), { lr, maxGradNorm: o.maxGradNorm });
    const bar = new Progress({
      label: `train ${task.name} ${describeConfig(head.config)}`,
      total: Math.floor(total / perEpoch) * n + Math.min(n, (total % perEpoch) * batchSize),
      unit: "ex",
      silent: o.silent,
    });
    const history: LogEntry[] = [];
    const window = new LossWindow(Math.max(1, o.logEvery));
    const speed = new Throughput();
    let order: Int32Array | null = null, orderEpoch = -1, lastLr = 0;
    const divergence = {
      total,
      perEpoch,
      what: `training ${task.name} on ${o.trainH5}`,
      hint: () => `lower --lr (${lr}) or check the activations for NaN/∞`,
    };
    const flush = async (done: number) => {
      const loss = await window.mean(divergence);
      if (Number.isNaN(loss)) return;
      const entry: LogEntry = {
        step: done,
        epoch: done / perEpoch,
        loss,
        lr: lastLr,
        ...speed.entry(),
      };
      history.push(entry);
      await log.write(entry);
      bar.tick(0, { loss: entry.loss, lr: lastLr });
    };

    try {
      for (let step = 0; step < total; step++) {
        const epoch = Math.floor(step / perEpoch);
        if (epoch !== orderEpoch) {
          order = shuffledIndices(n, seed, epoch);
          orderEpoch = epoch;
        }
        const k = step % perEpoch;
        const pos = order!.subarray(k * batchSize, Math.min(n, (k + 1) * batchSize));
        const batchIdx = Int32Array.from(pos, (p) => rows[p]);
        const data = reader.readIndices(batchIdx);
        lastLr = lr * linearSchedule(step, total, o.warmupProportion);
        const where = (i: number) =>
          `HDF5 file ${o.trainH5} (step ${step + 1}): row with idx ${data.idx[i]}`;
        const loss = scope(() => {
          const x = Tensor.from(data.embeds, inputShape(reader, batchIdx.length), { name: "x" });
          const l = kind.loss(head.forward(x), data.labels, where);
          backward(l);
          opt.step(lastLr);
          return keep(l);
        });
        window.push(step, loss);
        speed.add(batchIdx.length);
        bar.tick(batchIdx.length);
        if (window.full) await flush(step + 1);
      }
      await flush(total);
      bar.done();
    } catch (e) {
      window.dispose();
      opt.dispose();
      head.dispose();
      throw e;
    }
    window.dispose();
    opt.dispose();

    const headPath = `${o.outDir}/head.safetensors`;
    await saveHead(headPath, head, { task: task.name, train_h5: o.trainH5, seed: String(seed) });
    const result: TrainApResult = {
      head,
      params: head.numParams,
      paramReport: o.bertParams ? head.report(o.bertParams) : undefined,
      history,
      steps: total,
      examples: speed.entry().examples,
      trainRows: rows,
      headPath,
      wallSeconds: 0,
    };
    if (dev) {
      try {
        const ev = await evaluateAp(head, dev, task, {
          batchSize: o.evalBatchSize,
          outDir: o.outDir,
          rows: o.devRows,
          metrics: o.metrics,
          silent: o.silent,
        });
        result.devMetrics = ev.metrics;
        result.devLogitsPath = ev.logitsPath;
      } catch (e) {
        head.dispose(); // the caller never sees it; the trained weights are in headPath
        throw e;
      }
    }
    result.wallSeconds = (performance.now() - t0) / 1000;
    await Deno.writeTextFile(
      `${o.outDir}/results.json`,
      JSON.stringify(
        {
          task: task.name,
          head: head.config,
          params: result.params,
          paramReport: result.paramReport,
          settings: {
            trainH5: o.trainH5,
            devH5: o.devH5,
            batchSize,
            epochs,
            lr,
            l2: o.l2,
            warmupProportion: o.warmupProportion,
            maxGradNorm: o.maxGradNorm,
            seed,
            trainFraction: o.trainFraction,
          },
          trainRows: n,
          steps: total,
          examples: result.examples,
          finalLoss: history.at(-1)?.loss,
          devMetrics: result.devMetrics,
          wallSeconds: result.wallSeconds,
        },
        null,
        2,
      ) + "\n",
    );
    return result;
  } finally {
    reader.close();
    dev?.close();
  }
}

/** Options of {@linkcode evaluateAp}. */
export interface EvaluateApOptions {
  /** Rows per forward [64]. */
  batchSize?: number;
  /** Write `dev_logits.npy` and `dev_idx.npy` here (or `prefix`_logits.npy ...). */
  outDir?: string;
  /** File name prefix in outDir ["dev"]. */
  prefix?: string;
  /** The store's rows as `loadRows` makes them (SQuAD: scored by EM/F1); see TrainApOptions. */
  rows?: EvalRows;
  /** Custom metrics instead of the head kind's scoring. */
  metrics?: MetricsFn;
  /** Check the store against these first (task is taken from the `task` argument). */
  expect?: Omit<StoreExpectations, "task">;
  /** No progress bar. */
  silent?: boolean;
}

/** What {@linkcode evaluateAp} returns. */
export interface EvaluateApResult {
  /** Row-major logits in the kind's saved layout: [N, numLabels], or span [N, T, 2]. */
  logits: Float32Array;
  /** Shape of `logits`. */
  shape: number[];
  /** The kind's per-row predictions (classes, values, 0/1 per label, start/end tokens). */
  preds: Float64Array;
  /** Labels as stored. */
  golds: Int32Array | Float32Array;
  /** Example / feature index per row. */
  idx: Float64Array;
  /** Metrics (the head kind's, or `metrics`'); empty for unlabelled rows. */
  metrics: Record<string, number>;
  /** SQuAD with `rows`: answers per question id. */
  answers?: Record<string, string>;
  /** Saved logits path (.npy) when `outDir` was given. */
  logitsPath?: string;
}

/**
 * Runs a head over every row of a store (consecutive blocks, no gradients) and scores it.
 * `store` is a path or an open reader (left open).
 */
export async function evaluateAp(
  head: BvHead,
  store: string | H5Reader,
  taskOrName: string | Task,
  o: EvaluateApOptions = {},
): Promise<EvaluateApResult> {
  await initGpu();
  const task = resolveTask(taskOrName);
  const kind = kindOf(task);
  const reader = typeof store === "string" ? await H5Reader.open(store) : store;
  try {
    checkStore(reader, { task, ...o.expect });
    const c = head.config;
    const s = reader.shape;
    const T = s.layout === "full" ? s.tokens : 1;
    if (c.layers !== s.layers || c.tokens !== T || c.features !== s.hidden) {
      throw new Error(
        `HDF5 file ${reader.path} holds [L=${s.layers}, T=${T}, F=${s.hidden}] but the head ` +
          `was built for ${describeConfig(c)}`,
      );
    }
    const N = s.n, bs = o.batchSize ?? HEAD_DEFAULTS.evalBatchSize;
    const shape = kind.logitsShape(N, T);
    const width = shape.slice(1).reduce((a, b) => a * b, 1);
    const logits = new Float32Array(N * width);
    const golds = new (kind.labelType === "float32" ? Float32Array : Int32Array)(
      N * reader.labelWidth,
    );
    const idx = new Float64Array(N);
    const bar = new Progress({
      label: `eval ${task.name}`,
      total: N,
      unit: "ex",
      silent: o.silent,
    });
    for (let start = 0; start < N; start += bs) {
      const count = Math.min(bs, N - start);
      const data = reader.readRows(start, count);
      const out = await noGrad(() =>
        scope(async () => {
          const x = Tensor.from(data.embeds, inputShape(reader, count), { name: "x" });
          return await head.forward(x).readF32();
        })
      );
      logits.set(kind.toSaved(out, count, T), start * width);
      golds.set(data.labels, start * reader.labelWidth);
      idx.set(data.idx, start);
      bar.tick(count);
    }
    bar.done();

    if (o.rows && o.rows.n !== N) {
      throw new Error(
        `HDF5 file ${reader.path} holds ${N} rows but the dev rows given to score it have ` +
          `${o.rows.n} (captured from another file or --dev-limit?)`,
      );
    }
    const rows: EvalRows = o.rows ?? { n: N, seq: T, labels: golds };
    const scored = o.metrics
      ? { metrics: await o.metrics(logits, shape, idx) }
      : kind.score(logits, rows);
    const res: EvaluateApResult = {
      logits,
      shape,
      preds: kind.predict(logits, N),
      golds,
      idx,
      metrics: scored.metrics,
      answers: "answers" in scored ? scored.answers : undefined,
    };
    if (o.outDir) {
      await Deno.mkdir(o.outDir, { recursive: true });
      const prefix = o.prefix ?? "dev";
      res.logitsPath = `${o.outDir}/${prefix}_logits.npy`;
      await Deno.writeFile(res.logitsPath, encodeNpy(logits, res.shape));
      await Deno.writeFile(
        `${o.outDir}/${prefix}_idx.npy`,
        encodeNpy(Int32Array.from(idx), [N]),
      );
    }
    return res;
  } finally {
    if (typeof store === "string") reader.close();
  }
}
