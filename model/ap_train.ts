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
 * - Loss by task kind: cross-entropy, MSE (STS-B), or span cross-entropy (start and end
 *   averaged).
 * - Every `logEvery` steps the pending losses are read back (the only readback while training):
 *   one JSON line per window to the log, the progress bar's loss, and a NaN/∞ check that names
 *   the exact step.
 * - Before anything runs, the store's attributes are checked against the flags (layout, task,
 *   model id, split, label type/width, complete rows), and a dev store against the train store.
 *
 * Outputs in `outDir`: `head.safetensors` (weights + config), `train_log.jsonl`, and with a dev
 * store `dev_logits.npy` ([N, numLabels], or span [N, T, 2] with [..., 0] start and [..., 1]
 * end), `dev_idx.npy` (the rows' example / feature indices) and `results.json`.
 * @module
 */
import {
  BvHead,
  describeConfig,
  type HeadConfig,
  type ParamReport,
  type Pooling,
  saveHead,
} from "./heads.ts";
import { AdamW } from "./optim.ts";
import { crossEntropy, mse } from "./ops.ts";
import { backward, initGpu, keep, noGrad, scope, Tensor } from "./tensor.ts";
import { H5Reader, type H5ReadRows } from "../data/h5_store.ts";
import { linearSchedule, seededSubset, shuffledIndices } from "../data/batches.ts";
import { encodeNpy } from "../data/npy.ts";
import { Progress } from "../data/progress.ts";
import { getTask, isGlueTask, type Task } from "../tasks/mod.ts";

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
  const kind = e.task.kind;
  if (kind === "span") {
    if (s.layout !== "full") {
      throw new Error(`${file} has layout cls; span task ${e.task.name} needs every token (full)`);
    }
    if (reader.labelWidth !== 2) {
      throw new Error(
        `${file} has ${reader.labelWidth} label(s) per row; span task ${e.task.name} needs 2 ` +
          `(start, end)`,
      );
    }
  } else if (reader.labelWidth !== 1) {
    throw new Error(`${file} has ${reader.labelWidth} labels per row; ${kind} needs 1`);
  }
  const lt = a.label_type;
  if (typeof lt === "string") {
    const want = kind === "regression" ? "float32" : "int64";
    if (lt !== want) {
      throw new Error(`${file} stores ${lt} labels; task ${e.task.name} (${kind}) needs ${want}`);
    }
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

/** The head config a store and options imply. */
export function headConfigFor(
  reader: H5Reader,
  task: Task,
  o: { model?: Pooling; adapterDim?: number; shared?: boolean; skip?: boolean },
): HeadConfig {
  const s = reader.shape;
  return {
    pooling: o.model ?? "ap",
    kind: task.kind,
    numLabels: task.numLabels,
    layers: s.layers,
    tokens: s.layout === "full" ? s.tokens : 1,
    features: s.hidden,
    adapterDim: o.adapterDim,
    shared: o.shared,
    skip: o.skip,
  };
}

function inputShape(reader: H5Reader, rows: number): number[] {
  const s = reader.shape;
  return s.layout === "full" ? [rows, s.layers, s.tokens, s.hidden] : [rows, s.layers, s.hidden];
}

/** The loss of `logits` for a batch's labels, by task kind. */
function lossFor(task: Task, logits: Tensor, rows: H5ReadRows, where: () => string): Tensor {
  const labels = rows.labels;
  if (task.kind === "regression") {
    for (let i = 0; i < labels.length; i++) {
      if (!Number.isFinite(labels[i])) {
        throw new Error(`${where()}: row ${rows.idx[i]} has no regression target (${labels[i]})`);
      }
    }
    const target = Tensor.from(Float32Array.from(labels), [labels.length]);
    return mse(logits, target);
  }
  const lab = labels instanceof Int32Array ? labels : Int32Array.from(labels);
  const C = task.kind === "span" ? logits.shape[2] : task.numLabels;
  for (let i = 0; i < lab.length; i++) {
    if (!(lab[i] >= 0 && lab[i] < C)) {
      const row = rows.idx[task.kind === "span" ? i >> 1 : i];
      throw new Error(
        `${where()}: row with idx ${row} has label ${lab[i]} outside [0, ${C})` +
          (lab[i] < 0 ? " (an unlabelled test split?)" : ""),
      );
    }
  }
  // Span logits [B, 2, T] as 2B rows; labels [B, 2] row-major = [s0, e0, s1, e1, ...], so the
  // mean over rows is (CE(start) + CE(end)) / 2.
  return crossEntropy(task.kind === "span" ? logits.reshape([-1, C]) : logits, lab);
}

/** One JSON line of the training log. */
export interface LogEntry {
  /** Optimizer steps done. */
  step: number;
  /** Epochs done (fractional). */
  epoch: number;
  /** Training examples seen. */
  examples: number;
  /** Mean loss over the steps since the previous entry. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Training throughput since the start. */
  examplesPerSecond: number;
  /** Seconds since the start. */
  elapsed: number;
}

/** Options of {@linkcode trainAp}; defaults in brackets. */
export interface TrainApOptions {
  /** HDF5 activation store of the training split. */
  trainH5: string;
  /** HDF5 store of a dev split to evaluate on after training. */
  devH5?: string;
  /** Task name or module (kind, labels, metrics). */
  task: string | Task;
  /** "ap" adapter-pooler ["ap"], "lp" learned pooling, "avg" average pooling. */
  model?: Pooling;
  /** AP adapter size [span: tokens; else 8]. */
  adapterDim?: number;
  /** AP weights shared across layers [true]. */
  shared?: boolean;
  /** Span skip connection [false]. */
  skip?: boolean;
  /** Examples per step [16]. */
  batchSize?: number;
  /** Passes over the (subset of the) training data; fractional allowed [1]. */
  epochs?: number;
  /** Peak learning rate [1e-3]. */
  lr?: number;
  /** AdamW weight decay on weights [0]. */
  l2?: number;
  /** Share of steps spent warming up linearly [0.1]. */
  warmupProportion?: number;
  /** Clip the global gradient norm (0 = off) [0]. */
  maxGradNorm?: number;
  /** Seeds initialisation, subset and data order [42]. */
  seed?: number;
  /** Train on a seeded subset of this share of the rows, in (0, 1] [1]. */
  trainFraction?: number;
  /** Where the head, log, logits and results go (created). */
  outDir: string;
  /** JSON-lines log path [`outDir/train_log.jsonl`]. */
  log?: string;
  /** Steps between loss readbacks / log lines [20]. */
  logEvery?: number;
  /** Expected layout (`--layout`); checked against the store. */
  layout?: "full" | "cls";
  /** Expected BERT model id; checked against the store's `model_id`. */
  modelId?: string;
  /** BERT's parameter count, for the head's share in the results. */
  bertParams?: number;
  /** Rows per evaluation forward [64]. */
  evalBatchSize?: number;
  /** Draw no progress bar [false]. */
  silent?: boolean;
  /** Span tasks: metrics from the dev logits (e.g. SQuAD EM/F1 via squadPostprocess). */
  spanMetrics?: SpanMetricsFn;
}

/** Computes metrics of span logits (SQuAD EM/F1 need the features, which the caller has). */
export type SpanMetricsFn = (
  spans: { start: Float32Array[]; end: Float32Array[]; idx: Float64Array },
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
  /** Dev metrics (GLUE: the task's; span: `spanMetrics`' or token-level accuracies). */
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
export async function trainAp(o: TrainApOptions): Promise<TrainApResult> {
  const t0 = performance.now();
  await initGpu();
  const task = typeof o.task === "string" ? getTask(o.task) : o.task;
  const batchSize = o.batchSize ?? 16, epochs = o.epochs ?? 1, lr = o.lr ?? 1e-3;
  const seed = o.seed ?? 42, logEvery = Math.max(1, o.logEvery ?? 20);
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
    const logPath = o.log ?? `${o.outDir}/train_log.jsonl`;
    await Deno.writeTextFile(logPath, "");

    const config = headConfigFor(reader, task, o);
    const head = BvHead.create(config, seed);
    const rows = seededSubset(reader.shape.n, o.trainFraction ?? 1, seed);
    const n = rows.length;
    const perEpoch = Math.ceil(n / batchSize);
    const total = Math.ceil(epochs * perEpoch);
    const opt = new AdamW(head.paramGroups(o.l2 ?? 0), { lr, maxGradNorm: o.maxGradNorm ?? 0 });
    const bar = new Progress({
      label: `train ${task.name} ${describeConfig(head.config)}`,
      total: Math.floor(total / perEpoch) * n + Math.min(n, (total % perEpoch) * batchSize),
      unit: "ex",
      silent: o.silent,
    });
    const history: LogEntry[] = [];
    const pending: { step: number; loss: Tensor }[] = [];
    let examples = 0, order: Int32Array | null = null, orderEpoch = -1, lastLr = 0;

    const flush = async (done: number) => {
      let sum = 0;
      try {
        for (const p of pending) {
          const v = await p.loss.item();
          if (!Number.isFinite(v)) {
            throw new Error(
              `training ${task.name} on ${o.trainH5} diverged: loss is ${v} at step ${
                p.step + 1
              } ` +
                `of ${total} (epoch ${(p.step / perEpoch).toFixed(2)}); lower --lr (${lr}) or ` +
                `check the activations for NaN/∞`,
            );
          }
          sum += v;
        }
      } finally {
        for (const p of pending) p.loss.dispose();
      }
      const count = pending.length;
      pending.length = 0;
      if (!count) return;
      const elapsed = (performance.now() - t0) / 1000;
      const entry: LogEntry = {
        step: done,
        epoch: done / perEpoch,
        examples,
        loss: sum / count,
        lr: lastLr,
        examplesPerSecond: examples / elapsed,
        elapsed,
      };
      history.push(entry);
      await Deno.writeTextFile(logPath, JSON.stringify(entry) + "\n", { append: true });
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
        lastLr = lr * linearSchedule(step, total, o.warmupProportion ?? 0.1);
        const loss = scope(() => {
          const x = Tensor.from(data.embeds, inputShape(reader, batchIdx.length), { name: "x" });
          const l = lossFor(
            task,
            head.forward(x),
            data,
            () => `HDF5 file ${o.trainH5} (step ${step + 1})`,
          );
          backward(l);
          opt.step(lastLr);
          return keep(l);
        });
        pending.push({ step, loss });
        examples += batchIdx.length;
        bar.tick(batchIdx.length);
        if (pending.length >= logEvery) await flush(step + 1);
      }
      await flush(total);
      bar.done();
    } catch (e) {
      for (const p of pending) p.loss.dispose();
      opt.dispose();
      head.dispose();
      throw e;
    }
    opt.dispose();

    const headPath = `${o.outDir}/head.safetensors`;
    await saveHead(headPath, head, { task: task.name, train_h5: o.trainH5, seed: String(seed) });
    const result: TrainApResult = {
      head,
      params: head.numParams,
      paramReport: o.bertParams ? head.report(o.bertParams) : undefined,
      history,
      steps: total,
      examples,
      trainRows: rows,
      headPath,
      wallSeconds: 0,
    };
    if (dev) {
      try {
        const ev = await evaluateAp(head, dev, task, {
          batchSize: o.evalBatchSize,
          outDir: o.outDir,
          spanMetrics: o.spanMetrics,
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
            l2: o.l2 ?? 0,
            warmupProportion: o.warmupProportion ?? 0.1,
            maxGradNorm: o.maxGradNorm ?? 0,
            seed,
            trainFraction: o.trainFraction ?? 1,
          },
          trainRows: n,
          steps: total,
          examples,
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
  /** Span tasks: metrics from the logits. */
  spanMetrics?: SpanMetricsFn;
  /** Check the store against these first (task is taken from the `task` argument). */
  expect?: Omit<StoreExpectations, "task">;
  /** No progress bar. */
  silent?: boolean;
}

/** What {@linkcode evaluateAp} returns. */
export interface EvaluateApResult {
  /** Row-major logits: [N, numLabels], or span [N, T, 2] (start at [..., 0], end at [..., 1]). */
  logits: Float32Array;
  /** Shape of `logits`. */
  shape: number[];
  /** GLUE: argmax class (Int32Array) or regression value (Float32Array); span: undefined. */
  preds?: Int32Array | Float32Array;
  /** Labels as stored. */
  golds: Int32Array | Float32Array;
  /** Example / feature index per row. */
  idx: Float64Array;
  /** Metrics (GLUE: the task's; span: `spanMetrics`, else token-level start/end accuracy). */
  metrics: Record<string, number>;
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
  const task = typeof taskOrName === "string" ? getTask(taskOrName) : taskOrName;
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
    const N = s.n, bs = o.batchSize ?? 64;
    const span = task.kind === "span";
    const width = span ? 2 * T : c.numLabels;
    const logits = new Float32Array(N * width);
    const golds = new (task.kind === "regression" ? Float32Array : Int32Array)(
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
      if (span) {
        // [b, 2, T] → [b, T, 2]
        for (let b = 0; b < count; b++) {
          for (let t = 0; t < T; t++) {
            logits[((start + b) * T + t) * 2] = out[(b * 2) * T + t];
            logits[((start + b) * T + t) * 2 + 1] = out[(b * 2 + 1) * T + t];
          }
        }
      } else logits.set(out, start * width);
      golds.set(data.labels, start * reader.labelWidth);
      idx.set(data.idx, start);
      bar.tick(count);
    }
    bar.done();

    const res: EvaluateApResult = {
      logits,
      shape: span ? [N, T, 2] : [N, c.numLabels],
      golds,
      idx,
      metrics: {},
    };
    if (span) {
      const { start, end } = splitSpanLogits(logits, N, T);
      if (o.spanMetrics) res.metrics = await o.spanMetrics({ start, end, idx });
      else {
        let sOk = 0, eOk = 0, both = 0;
        for (let i = 0; i < N; i++) {
          const s1 = argmax(start[i]) === golds[2 * i], e1 = argmax(end[i]) === golds[2 * i + 1];
          sOk += +s1;
          eOk += +e1;
          both += +(s1 && e1);
        }
        res.metrics = { start_accuracy: sOk / N, end_accuracy: eOk / N, span_accuracy: both / N };
      }
    } else if (isGlueTask(task)) {
      const preds = task.kind === "regression"
        ? Float32Array.from(logits)
        : argmaxRows(logits, N, c.numLabels);
      res.preds = preds;
      // Unlabelled rows (test splits: -1 / NaN) cannot be scored.
      const labelled = golds.every((g) => task.kind === "regression" ? Number.isFinite(g) : g >= 0);
      if (labelled) res.metrics = task.metrics(preds, golds);
    }
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

/** Splits span logits [N, T, 2] into per-row start and end arrays (squadPostprocess's input). */
export function splitSpanLogits(
  logits: Float32Array,
  n: number,
  tokens: number,
): { start: Float32Array[]; end: Float32Array[] } {
  if (logits.length !== n * tokens * 2) {
    throw new RangeError(`splitSpanLogits: ${logits.length} values for [${n}, ${tokens}, 2]`);
  }
  const start: Float32Array[] = [], end: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Float32Array(tokens), e = new Float32Array(tokens);
    for (let t = 0; t < tokens; t++) {
      s[t] = logits[(i * tokens + t) * 2];
      e[t] = logits[(i * tokens + t) * 2 + 1];
    }
    start.push(s);
    end.push(e);
  }
  return { start, end };
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Row-wise argmax of a row-major [n, c] array (first maximum wins). */
export function argmaxRows(a: ArrayLike<number>, n: number, c: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (a[i * c + j] > a[i * c + best]) best = j;
    out[i] = best;
  }
  return out;
}
