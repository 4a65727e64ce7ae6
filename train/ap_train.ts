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
 * @module
 */
import {
  BvHead,
  describeConfig,
  type HeadConfig,
  headParamCount,
  loadHead,
  type ParamReport,
  type Pooling,
  resolveHeadConfig,
  saveHead,
} from "../model/heads.ts";
import { AdamW } from "../model/optim.ts";
import { BertModel } from "../model/bert.ts";
import { loadBertCheckpoint, resolveModel } from "../model/checkpoint.ts";
import { add, scale } from "../model/ops.ts";
import { backward, initGpu, keep, noGrad, scope, Tensor } from "../model/tensor.ts";
import type { StoreReader } from "../data/h5_store.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { acquireLock } from "../data/output/mod.ts";
import { InputError } from "../data/errors.ts";
import { linearSchedule, seededSubset, subsetPass } from "../data/batches.ts";
import { encodeNpy } from "../data/npy.ts";
import { Progress } from "../data/progress.ts";
import {
  checkDevSplits,
  type EvalRows,
  kindOf,
  resolveTask,
  type Task,
  type TaskKind,
} from "../tasks/mod.ts";
import { HEAD_DEFAULTS } from "./defaults.ts";
import {
  describeSettings,
  type ResolvedSettings,
  resolveSettings,
  type TrainSettings,
} from "./presets.ts";
import { loadRows, rowNotes, rowsOfStore, type SplitRows } from "./rows.ts";
import { limitsOf, type RowTensor, type Split, splitBatch, type StagePlan } from "./plan.ts";
import { type ActivationSource, type SourceShape, StoreSource, StreamSource } from "./sources.ts";
import {
  batchesPerEpoch,
  checkDevice,
  EarlyStopping,
  type EarlyStopState,
  enterStage,
  JsonLog,
  type LogEntry,
  LossWindow,
  mainMetric,
  stageError,
  stepsFor,
  stepsSince,
  Throughput,
} from "./loop.ts";
import { settingsDiff, writeJsonAtomic } from "../data/output/mod.ts";

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
export function checkStore(reader: StoreReader, e: StoreExpectations): void {
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
  if (!reader.complete || reader.rowsComplete < s.n) {
    throw new Error(
      `${file} is incomplete: ${reader.rowsComplete} of ${s.n} rows captured and no completion ` +
        `marker (an interrupted capture? rerun it to finish)`,
    );
  }
}

/** Throws unless two stores hold activations of the same shape and weights (when recorded). */
export function checkSameCapture(train: StoreReader, dev: StoreReader): void {
  const t = train.shape, d = dev.shape;
  for (const k of ["layers", "tokens", "hidden", "layout"] as const) {
    if (t[k] !== d[k]) {
      throw new Error(
        `HDF5 file ${dev.path} has ${k} ${d[k]} but the training file ${train.path} has ${t[k]}; ` +
          `capture both with the same model and settings`,
      );
    }
  }
  // The weights themselves, not a directory name: two checkpoints in folders of the same name
  // are different models.
  const wt = train.attrs.weights_hash, wd = dev.attrs.weights_hash;
  if (wt !== undefined && wd !== undefined && wt !== wd) {
    throw new Error(
      `HDF5 file ${dev.path} was captured from other weights (weights_hash ${wd}, model ` +
        `${dev.attrs.model_id}) than the training file ${train.path} (${wt}, model ` +
        `${train.attrs.model_id}); capture both from the same checkpoint`,
    );
  }
}

/** The head config a source's shape, the task's head kind and the options imply. */
export function headConfigFor(
  shape: Pick<SourceShape, "layers" | "tokens" | "hidden" | "layout">,
  kind: TaskKind,
  o: { model?: Pooling; adapterDim?: number; shared?: boolean; skip?: boolean },
): HeadConfig {
  const s = shape;
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

/** Per-row GPU bytes of a head's own tensors (beyond its input), for the planner. */
function headRowTensors(c: Required<HeadConfig>): RowTensor[] {
  const { layers: L, tokens: T, features: F, adapterDim: D } = c;
  return c.pooling === "ap"
    ? [{ what: `adapter activations [${T}×${D}×${L}]`, bytesPerRow: 4 * T * D * L }]
    : [{
      what: `pooled features [${T}×${F}]`,
      bytesPerRow: 4 * T * F * (c.pooling === "lp" ? L : 1),
    }];
}

/** Where a head trains from: a store (`trainH5`) or a stream from a BERT checkpoint. */
export interface StreamOptions {
  /** The frozen BERT: a Hugging Face directory or hub id (usually a fine-tuned checkpoint). */
  model: string;
  /** Root of the GLUE distribution layout. */
  dataDir?: string;
  /** Split files read instead of the ones under `dataDir` (`devFile` replaces `devSplits`). */
  trainFile?: string;
  devFile?: string;
  /** Dev splits evaluated, by name; default every dev split of the task (MNLI: both). */
  devSplits?: string[];
  /** SQuAD: overlap in tokens between consecutive windows (`--doc-stride`, train/rows.ts). */
  docStride?: number;
  /** Default: the task's head kind's. */
  maxSeqLength?: number;
  /** Default "full". */
  layout?: "full" | "cls";
  /** The splits' first N examples. */
  limit?: number;
  devLimit?: number;
  /** Parallel tokenization workers. */
  numWorkers?: number;
}

/** Options of {@linkcode trainAp}; defaults in train/defaults.ts `HEAD_DEFAULTS`. */
export interface TrainApOptions {
  /**
   * HDF5 activation store of the training split (store mode), or the shards of a sharded
   * capture read as one store: a glob or a `.txt` manifest (data/shard_set.ts).
   */
  trainH5?: string;
  /**
   * HDF5 store of a dev split to evaluate on after training, or one store per dev split (MNLI:
   * matched and mismatched), each evaluated and reported under the split its store holds; each
   * may be a shard set, as `trainH5`.
   */
  devH5?: string | string[];
  /**
   * Store mode: the split file the (first) dev store was captured from. Its rows are recomputed
   * and checked against the store's `input_ids` (train/rows.ts `rowsOfStore`), so SQuAD spans
   * become answers: scored by the official EM/F1, written to `predictions.json` and
   * `na_probs.json`.
   */
  devFile?: string;
  /**
   * With `devFile`: the model whose tokenizer re-featurizes it (`--bert`); default the store's
   * `model_id` when that is a local directory or a downloaded hub model.
   */
  devModel?: string;
  /**
   * Stream mode (no store, no disk): the hidden states computed by this BERT over the splits
   * every epoch; the dev split is evaluated unless `noDev`.
   */
  stream?: StreamOptions;
  /** Stream mode: skip dev evaluation. */
  noDev?: boolean;
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
  /**
   * Fill the training settings not given (batch size, epochs, lr, l2, warmup, seed, patience)
   * from the seed's AP command for the task (train/presets.ts), and the AP adapter size, when not
   * given, from the token count (the seed's `adapter_dim = max_seq_length`), as `glue`, `squad`
   * and `reproduce` do; otherwise from `HEAD_DEFAULTS`.
   */
  preset?: boolean;
  /**
   * Early stopping (`--patience N`): with a dev source, the first dev split is evaluated after
   * every epoch, and a head stops training once N epochs in a row did not improve its main
   * metric (the seed's per-epoch counter, train/loop.ts `EarlyStopping`); the best epoch's
   * weights are kept (`head.safetensors`, the returned head, the dev results). 0 never stops.
   */
  patience?: number;
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
   * token accuracies. Must be the rows the dev store holds, in order. (Stream mode has them.)
   */
  devRows?: EvalRows;
  /** Computes dev metrics from the saved-layout logits instead of the head kind's scoring. */
  metrics?: MetricsFn;
  /** A lower limit in MiB for the tensors the planner splits (see train/plan.ts). */
  maxBindingMiB?: number;
  /** Take the output's lock even from a live holder (`--break-lock`). */
  breakLock?: boolean;
  /** Replace a head in `outDir` trained with other settings instead of refusing (`--overwrite`). */
  overwrite?: boolean;
  /**
   * Keep a head whose directory already holds its `results.json` with the same settings instead
   * of training it again (its result is read back, `resumed`): a rerun of a sweep trains only
   * the heads it did not finish.
   */
  resume?: boolean;
  /**
   * Extra evaluations of the first dev split at these epochs (fractional allowed, below
   * `epochs`; two that fall on the same step count once), for every head still training; then
   * `onEval` says which heads go on (train/search/study.ts: successive halving's rungs). Needs a dev
   * source. Not part of a head's settings: the head trained is the same either way.
   */
  evalAt?: number[];
  /**
   * Called after the `evalAt` evaluations of a read (heads on the same rows reach an evaluation
   * point together): per head, the entry of `evalAt` (`index`), its step, epoch and dev
   * metrics, or null for a head not evaluated now. Returns, per head, whether it goes on; a head
   * told to stop keeps its weights of that step and trains no more (its results are written as
   * usual, `steps` saying where it stopped). Without it every head goes on.
   */
  onEval?: (
    evals:
      ({ index: number; step: number; epoch: number; metrics: Record<string, number> } | null)[],
  ) => boolean[] | Promise<boolean[]>;
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
  /** Rows of the training data used (the `trainFraction` subset, increasing). */
  trainRows: Int32Array;
  /** Saved head. */
  headPath: string;
  /** Dev metrics (the head kind's scores, or `metrics`'). */
  devMetrics?: Record<string, number>;
  /** Saved dev logits (.npy). */
  devLogitsPath?: string;
  /**
   * Every dev split's metrics and logits, in order (the first is `devMetrics` and
   * `devLogitsPath`); one entry with a single dev split.
   */
  devBySplit?: HeadDev[];
  /** The split into micro-batches the planner chose. */
  split: Split;
  /** Wall time of training (and evaluation). */
  wallSeconds: number;
  /** The effective training settings (given, or from the preset or the defaults). */
  settings: TrainSettings;
  /**
   * With patience and a dev source: each epoch's main dev metric, the best epoch (`best.at`,
   * whose weights the head holds) and, when it stopped early, the epoch after which it stopped.
   */
  earlyStop?: EarlyStopState;
  /**
   * Found finished in its directory with the same settings and kept (`resume`): nothing was
   * trained; the results are those saved.
   */
  resumed?: boolean;
}

/** One dev split's results of a head. */
export interface HeadDev {
  /** The split (a store's `split` attribute, else its file name; a stream's split or file). */
  split: string;
  metrics: Record<string, number>;
  /** Its saved logits: `dev_logits.npy`, or `<split>_logits.npy` with several dev splits. */
  logitsPath?: string;
  /** SQuAD scored with its questions: `predictions.json` and `na_probs.json` (evaluateHead). */
  predictionsPath?: string;
  naProbsPath?: string;
}

/** A dev source of a head: the split it holds and the prefix of its files in `outDir`. */
interface DevSource {
  split: string;
  prefix: string;
  source: ActivationSource;
  /** The rows to score it with (stream mode; in store mode `devRows` for the first). */
  rows?: EvalRows;
}

/** The dev sources' prefixes: `dev` for one, else each split's name (made unique). */
function prefixed(devs: Omit<DevSource, "prefix">[]): DevSource[] {
  return devs.map((d, i) => ({
    ...d,
    prefix: devs.length === 1
      ? "dev"
      : devs.findIndex((e) => e.split === d.split) === i
      ? d.split
      : `${d.split}_${i}`,
  }));
}

/** The training and dev sources of a run, checked against the task and the flags. */
async function openSources(
  task: Task,
  o: TrainApOptions,
): Promise<{
  train: ActivationSource;
  dev: ActivationSource | null;
  devRows?: EvalRows;
  devs: DevSource[];
  /** What the plan says about the rows (SQuAD's windows). */
  notes?: string[];
}> {
  const devH5s = o.devH5 === undefined ? [] : [o.devH5].flat();
  if (o.stream) {
    if (o.trainH5 || devH5s.length) {
      throw new Error(`give stored activations (--h5, --dev-h5) or a stream (--bert), not both`);
    }
    const kind = kindOf(task);
    const s = o.stream;
    const dir = await resolveModel(s.model, { silent: o.silent });
    const ck = await loadBertCheckpoint(dir);
    const maxSeqLength = s.maxSeqLength ?? kind.defaultMaxSeqLength;
    const layout = s.layout ?? o.layout ?? "full";
    if (kind.readout === "token" && layout !== "full") {
      throw new Error(`${kind.name} task ${task.name} needs every token: --layout full`);
    }
    const tokenizer = await loadTokenizer(dir);
    const workers = { modelDir: dir, count: s.numWorkers ?? 0 };
    const rows = (split: string, file: string | undefined, limit: number | undefined) =>
      loadRows(task, {
        split,
        dataDir: s.dataDir,
        dataFile: file,
        tokenizer,
        maxSeqLength,
        limit,
        workers,
        training: split === "train",
        docStride: s.docStride,
      });
    const trainRows = await rows("train", s.trainFile, s.limit);
    const devSplits = o.noDev
      ? []
      : s.devFile !== undefined
      ? [task.devSplits[0]]
      : s.devSplits !== undefined
      ? checkDevSplits(task, s.devSplits)
      : task.devSplits;
    const devRowsList: SplitRows[] = [];
    for (const split of devSplits) devRowsList.push(await rows(split, s.devFile, s.devLimit));
    const model = BertModel.fromHost(ck.config, ck.weights);
    const src = { layout, modelName: ck.modelId, weightsHash: ck.weightsHash };
    const devs = prefixed(devRowsList.map((r) => ({
      split: r.split,
      source: new StreamSource(model, r, kind, src),
      rows: r,
    })));
    return {
      train: new StreamSource(model, trainRows, kind, { ...src, ownsModel: true }),
      dev: devs[0]?.source ?? null,
      devRows: devRowsList[0],
      devs,
      notes: rowNotes(trainRows),
    };
  }
  if (!o.trainH5) throw new Error(`no training activations: give --h5 (or --bert for a stream)`);
  const train = await StoreSource.open(o.trainH5);
  const opened: StoreSource[] = [];
  let fileRows: EvalRows | undefined;
  try {
    checkStore(train.reader, { task, layout: o.layout, modelId: o.modelId, role: "train" });
    for (const path of devH5s) {
      const dev = await StoreSource.open(path);
      opened.push(dev);
      checkStore(dev.reader, { task, layout: o.layout, modelId: o.modelId, role: "dev" });
      checkSameCapture(train.reader, dev.reader);
    }
    // --dev-file: the dev store's rows recomputed from its file (SQuAD: answers, EM/F1).
    if (o.devFile !== undefined && !o.devRows) {
      if (!opened.length) {
        throw new InputError(`--dev-file ${o.devFile} is the file of a dev store: give --dev-h5`);
      }
      fileRows = await rowsOfStore(task, opened[0].reader, {
        dataFile: o.devFile,
        model: o.devModel,
      });
    }
  } catch (e) {
    train.close();
    for (const d of opened) d.close();
    throw e;
  }
  const devs = prefixed(opened.map((d, i) => ({
    split: typeof d.reader.attrs.split === "string"
      ? d.reader.attrs.split
      : devH5s[i].slice(devH5s[i].lastIndexOf("/") + 1).replace(/\.h5$/, ""),
    source: d,
    rows: i === 0 ? o.devRows ?? fileRows : undefined,
  })));
  return { train, dev: devs[0]?.source ?? null, devRows: o.devRows ?? fileRows, devs };
}

/** A head run's training settings: given, else the task's AP preset, else `HEAD_DEFAULTS`. */
function headSettings(task: Task, opts: TrainApOptions): ResolvedSettings {
  return resolveSettings(
    task.name,
    "ap",
    {
      batchSize: opts.batchSize,
      epochs: opts.epochs,
      lr: opts.lr,
      l2: opts.l2,
      warmupProportion: opts.warmupProportion,
      seed: opts.seed,
      patience: opts.patience,
    },
    !!opts.preset,
    HEAD_DEFAULTS,
  );
}

/**
 * The AP adapter size asked for: given, else with the preset the token count (the seed's
 * `if args.adapter_dim == 0: args.adapter_dim = args.max_seq_length`), else undefined (the
 * head's default, model/heads.ts).
 */
function adapterDimFor(opts: TrainApOptions, shape: SourceShape): number | undefined {
  return opts.adapterDim ?? (opts.preset ? shape.tokens : undefined);
}

/**
 * The plan of a head-training run (`--dry-run`): rows, micro-batches, peak GPU bytes, and with
 * `time` seconds estimated from one measured training micro-batch (the stream's BERT forward
 * included). Opens the stores or loads the stream's model and data; writes nothing.
 */
export async function planHeads(opts: TrainApOptions, time = true): Promise<StagePlan[]> {
  const gpu = await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const resolved = headSettings(task, opts);
  const o = {
    ...HEAD_DEFAULTS,
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    ...resolved.values,
  } as typeof HEAD_DEFAULTS & TrainApOptions;
  const { train, devs, notes: rowsNotes } = await openSources(task, o);
  try {
    const config = resolveHeadConfig(
      headConfigFor(train.shape, kind, { ...o, adapterDim: adapterDimFor(opts, train.shape) }),
    );
    const adapter = config.pooling !== "ap" ? [] : [
      `adapter ${config.adapterDim} (${
        opts.adapterDim !== undefined
          ? "--adapter-dim"
          : opts.preset
          ? "= --max-seq-length, preset"
          : kind.readout === "token"
          ? "= the token count, default"
          : "default"
      })`,
    ];
    const limits = limitsOf(gpu, o.maxBindingMiB);
    const stage = `train ${task.name} head`;
    const rowTensors = [...train.rowTensors(), ...headRowTensors(config)];
    const headRowBytes = headRowTensors(config).reduce((a, t) => a + t.bytesPerRow, 0);
    const split = splitBatch(stage, o.batchSize, rowTensors, limits, {
      fixed: 16 * headParamCount(config) + train.peakBytes(0),
      perRow: train.peakBytes(1) - train.peakBytes(0) + 3 * headRowBytes,
    });
    const n = Math.max(1, Math.round(train.shape.n * o.trainFraction));
    const steps = stepsFor(o.epochs, batchesPerEpoch(n, o.batchSize));
    const perRow = rowTensors.reduce((a, t) => a + t.bytesPerRow, 0);
    const fixed = 4 * 4 * headParamCount(config);
    const plan: StagePlan[] = [{
      stage: `${stage} ${describeConfig(config)}`,
      rows: n,
      split,
      peakBytes: fixed + 3 * perRow * split.micro,
      notes: [
        `from ${train.name}` +
        (train instanceof StreamSource
          ? ` (stream: one BERT forward per batch, every epoch; nothing written)`
          : ""),
        `${steps} steps`,
        ...describeSettings(resolved, {}, adapter),
        ...(rowsNotes ?? []),
      ],
    }];
    for (const { source: dev } of devs) {
      plan.push({
        stage: `evaluate ${task.name} head`,
        rows: dev.shape.n,
        split: splitBatch(stage, o.evalBatchSize, rowTensors, limits, {
          fixed: 16 * headParamCount(config) + dev.peakBytes(0),
          perRow: dev.peakBytes(1) - dev.peakBytes(0) + 2 * headRowBytes,
        }),
        peakBytes: fixed + 2 * perRow * Math.min(o.evalBatchSize, split.micro),
        notes: [`from ${dev.name}`],
      });
    }
    if (time) {
      const head = BvHead.create(config, o.seed);
      const rows = Int32Array.from({ length: Math.min(split.micro, train.shape.n) }, (_, i) => i);
      const once = async () => {
        scope(() => {
          const data = train.take(rows);
          backward(kind.loss(head.forward(data.x), data.labels, (i) => `row ${i}`));
        });
        for (const p of head.parameters()) {
          p.grad?.dispose();
          p.grad = null;
        }
        await gpu.sync();
      };
      try {
        await once();
        const t0 = performance.now();
        await once();
        const sec = (performance.now() - t0) / 1000 * (split.micro / rows.length);
        plan[0].seconds = sec * split.parts * steps;
        devs.forEach((d, i) => {
          plan[1 + i].seconds = sec / 2 * Math.ceil(d.source.shape.n / split.micro);
        });
      } finally {
        head.dispose();
      }
    }
    return plan;
  } finally {
    train.close();
    for (const d of devs) d.source.close();
  }
}

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
 * `evalAt` epochs as a head's steps (to their entry of `evalAt`; the first of entries on the
 * same step), before its last step.
 */
function evalStepsOf(
  evalAt: number[] | undefined,
  perEpoch: number,
  total: number,
): Map<number, number> {
  const steps = new Map<number, number>();
  (evalAt ?? []).forEach((e, index) => {
    const s = stepsFor(e, perEpoch);
    if (s < total && !steps.has(s)) steps.set(s, index);
  });
  return steps;
}

/** What may differ between heads trained together ({@linkcode trainHeads}). */
export type HeadVariant = Partial<
  Pick<
    TrainApOptions,
    | "model"
    | "adapterDim"
    | "shared"
    | "skip"
    | "lr"
    | "l2"
    | "seed"
    | "outDir"
    | "log"
    | "trainFraction"
  >
>;

/**
 * Trains several heads from the same batches: each batch's hidden states (read or streamed
 * once) feed every head. `variants` override `opts` per head (the data order follows
 * `opts.seed`; each head initialises from its own seed). Returns one result per variant.
 *
 * Variants may train on different fractions (`trainFraction`, the less-data sweep): one pass
 * over the largest fraction's rows feeds them all (data/batches.ts `subsetPass`), each head
 * gathering its own rows into the batches it would have alone, so each equals the head trained
 * alone with its `trainFraction` (train/fractions_test.ts).
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
  const o = { ...HEAD_DEFAULTS, ...given, ...resolved.values } as
    & typeof HEAD_DEFAULTS
    & TrainApOptions;
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
  // One writer per head directory, taken before anything is written.
  const locks = variants.map((v) =>
    acquireLock(v.outDir ?? o.outDir, "dir", { breakLock: o.breakLock })
  );
  for (const l of locks) if (l.tookOver && !o.silent) console.error(l.tookOver);
  let sources: Awaited<ReturnType<typeof openSources>>;
  try {
    sources = await openSources(task, o);
  } catch (e) {
    for (const l of locks) l.release();
    throw e;
  }
  const { train, dev, devs } = sources;
  let at = 0, clean = 0, total = 0; // the step being run and the steps proven clean, for errors
  const heads: {
    v: Required<Pick<TrainApOptions, "lr" | "l2" | "seed" | "outDir">> & HeadVariant;
    settings: Record<string, unknown>;
    head: BvHead;
    opt: AdamW;
    window: LossWindow;
    log: JsonLog;
    history: LogEntry[];
    /** With patience and a dev source: the per-epoch counter, and the best epoch's weights. */
    early: EarlyStopping | null;
    best: Map<string, { shape: number[]; data: Float32Array }> | null;
    /** Steps trained (fewer than `total` when it stopped early). */
    steps: number;
    /** Its training rows (its fraction's subset), steps per epoch and steps to train. */
    rows: Int32Array;
    perEpoch: number;
    total: number;
    /** Its examples per second, between log entries. */
    speed: Throughput;
    /** The learning rate of its last step. */
    lr: number;
    /** The loss of the batch being accumulated (its micro-batches' weighted sum). */
    loss: Tensor | null;
    /**
     * Its batches being gathered from reads that also feed other heads: the hidden states of
     * each micro-batch (copied on the GPU), labels and example indices, `filled` rows of `len`.
     */
    queue: {
      len: number;
      filled: number;
      parts: Tensor[];
      labels: Float64Array;
      idx: Float64Array;
    }[];
    /** Its `evalAt` steps (to the entry of `evalAt`), the evaluation awaiting `onEval`, and
     * the step at which `onEval` stopped it. */
    evalAt: Map<number, number>;
    pending?: { index: number; step: number; epoch: number; metrics: Record<string, number> };
    halted?: number;
  }[] = [];
  try {
    const shape = train.shape;
    // Each head's rows: the seeded subset of its training fraction (nested across fractions,
    // data/batches.ts `seededSubset`), its own steps per epoch and steps.
    const subsets = new Map<number, Int32Array>();
    const subsetOf = (f: number) => {
      let r = subsets.get(f);
      if (!r) subsets.set(f, r = seededSubset(shape.n, f, o.seed));
      return r;
    };
    const planned = variants.map((variant) => {
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
        seed: v.seed,
        trainFraction: v.trainFraction,
        // Only when it can change the head (the best epoch's weights are kept).
        ...(o.patience > 0 && dev ? { patience: o.patience } : {}),
      };
      return { v, config, settings, rows, perEpoch, total: stepsFor(epochs, perEpoch) };
    });
    const found: (Record<string, unknown> | null)[] = [];
    for (const p of planned) found.push(await checkHeadOutput(p.v.outDir, p.settings, o.overwrite));
    // `resume`: a head whose directory holds its results with these settings is done.
    const todo = planned.filter((_, i) => !(o.resume && found[i]));
    for (const { v, config, settings, rows, perEpoch, total } of todo) {
      const head = BvHead.create(config, v.seed);
      heads.push({
        v,
        settings,
        head,
        opt: new AdamW(head.paramGroups(v.l2), { lr: v.lr, maxGradNorm: o.maxGradNorm }),
        window: new LossWindow(Math.max(1, o.logEvery)),
        log:
          (await Deno.mkdir(v.outDir, { recursive: true }),
            new JsonLog(v.log ?? `${v.outDir}/train_log.jsonl`, { truncate: true })),
        history: [],
        early: o.patience > 0 && dev ? new EarlyStopping(task.primaryMetric, o.patience) : null,
        best: null,
        steps: 0,
        rows,
        perEpoch,
        total,
        speed: new Throughput(),
        lr: 0,
        loss: null,
        queue: [],
        evalAt: evalStepsOf(o.evalAt, perEpoch, total),
      });
    }
    if (heads.some((h) => h.evalAt.size) && !dev) {
      throw new Error(`evalAt needs a dev source (--dev-h5, or a stream)`);
    }
    const limits = limitsOf(gpu, o.maxBindingMiB);
    const stage = `train ${task.name} head${heads.length > 1 ? "s" : ""}`;
    const rowTensors = [
      ...train.rowTensors(),
      ...heads.flatMap((h) => headRowTensors(h.head.config)),
    ];
    const fixed = heads.reduce((a, h) => a + 16 * h.head.numParams, 0); // weights, grads, m, v
    const headRows = heads.reduce(
      (a, h) => a + headRowTensors(h.head.config).reduce((x, t) => x + t.bytesPerRow, 0),
      0,
    );
    // Heads on different subsets gather their batches' hidden states across reads: up to a
    // batch each (data/batches.ts `subsetPass`).
    const gathering = new Set(heads.map((h) => h.rows)).size > 1;
    const inputRow = train.rowTensors()[0].bytesPerRow;
    const gathered = gathering ? heads.length * batchSize * inputRow : 0;
    const split = heads.length === 0 ? null : splitBatch(stage, batchSize, rowTensors, limits, {
      fixed: fixed + gathered + train.peakBytes(0),
      perRow: train.peakBytes(1) - train.peakBytes(0) + 3 * headRows,
    });
    const micro = split?.micro ?? batchSize;
    const pass = heads.map((h) => ({ rows: h.rows, steps: h.total }));
    let reads = 0;
    for (const c of subsetPass(shape.n, o.seed, batchSize, pass)) reads += c.rows.length;
    if (split) {
      enterStage(
        fixed + gathered + train.peakBytes(micro) + 3 * headRows * micro,
        fixed + gathered,
      );
    }
    const bar = new Progress({
      label: heads.length > 1
        ? `train ${task.name} ${heads.length} heads`
        : `train ${task.name} ${heads.length ? describeConfig(heads[0].head.config) : "head"}`,
      total: reads,
      unit: "ex",
      silent: o.silent || !heads.length,
    });
    type Head = typeof heads[number];
    /** Rows in a head's batch `step` (0-based): a batch, or the rest of its epoch. */
    const batchLen = (h: Head, step: number) =>
      Math.min(batchSize, h.rows.length - (step % h.perEpoch) * batchSize);
    /** Reads a head's loss window back into its log (and the bar, for the first head). */
    const flush = async (h: Head) => {
      const timing = h.speed.entry();
      const loss = await h.window.mean({
        total: h.total,
        perEpoch: h.perEpoch,
        what: `training ${task.name} on ${train.name}`,
        hint: () => `lower --lr (${h.v.lr}) or check the activations for NaN/∞`,
      });
      if (Number.isNaN(loss)) return;
      const entry: LogEntry = {
        step: h.steps,
        epoch: h.steps / h.perEpoch,
        loss,
        lr: h.lr,
        ...timing,
        gpuBytes: gpu.heldBytes,
      };
      h.history.push(entry);
      await h.log.write(entry);
      if (h === heads[0]) bar.tick(0, { loss: entry.loss, lr: h.lr });
    };
    /**
     * A head's forward and backward on one micro-batch of its batch (`rows` of `len`), its loss
     * weighted by its share of the rows and summed into the batch's.
     */
    const accumulate = (
      h: Head,
      x: Tensor,
      labels: ArrayLike<number>,
      idx: ArrayLike<number>,
      len: number,
    ) => {
      const step = h.steps;
      const where = (i: number) => `${train.name} (step ${step + 1}): row with idx ${idx[i]}`;
      const lp = kind.loss(h.head.forward(x), labels, where);
      const weight = x.shape[0] / len;
      const weighted = weight === 1 ? lp : scale(lp, weight);
      backward(weighted);
      const prev = h.loss;
      h.loss = keep(prev ? noGrad(() => add(prev, weighted)) : weighted);
      prev?.dispose();
    };
    /** The optimizer step of a head's batch, its log, and early stopping at its epoch ends. */
    const finishStep = async (h: Head, len: number) => {
      at = h.steps;
      total = h.total;
      h.lr = h.v.lr * linearSchedule(h.steps, h.total, o.warmupProportion);
      h.opt.step(h.lr);
      h.window.push(h.steps, h.loss!);
      h.loss = null;
      h.steps++;
      h.speed.add(len);
      await checkDevice();
      if (h.window.full) {
        await flush(h);
        clean = h.steps;
      }
      // `evalAt`: the first dev split, for `onEval` once every head has had this read.
      const evalIndex = h.evalAt.get(h.steps);
      if (evalIndex !== undefined) {
        await flush(h);
        clean = h.steps;
        const ev = await evaluateHead(h.head, devs[0].source, task, {
          batchSize: Math.min(o.evalBatchSize, micro),
          rows: devs[0].rows,
          metrics: o.metrics,
          silent: true,
        });
        const epoch = h.steps / h.perEpoch;
        await h.log.write({ step: h.steps, epoch, dev: ev.metrics });
        h.pending = { index: evalIndex, step: h.steps, epoch, metrics: ev.metrics };
      }
      // Early stopping: the first dev split after every epoch (and at the end) while the head
      // trains; a run of one epoch or less has a single evaluation, the final one.
      const epochEnd = h.steps % h.perEpoch === 0 || h.steps === h.total;
      if (!epochEnd || h.total <= h.perEpoch || !h.early || h.early.stop) return;
      await flush(h);
      clean = h.steps;
      const label = String(Math.round(h.steps / h.perEpoch * 1e6) / 1e6);
      const ev = await evaluateHead(h.head, devs[0].source, task, {
        batchSize: Math.min(o.evalBatchSize, micro),
        rows: devs[0].rows,
        metrics: o.metrics,
        silent: true,
      });
      const m = mainMetric(ev.metrics, task.primaryMetric);
      h.early.state.metric = m.key;
      if (h.early.add(label, m.value)) h.best = await h.head.toHost();
      await h.log.write({ step: h.steps, epoch: h.steps / h.perEpoch, dev: ev.metrics });
      if (h.early.stop && !o.silent) {
        const s = h.early.state;
        console.error(
          `${h.v.outDir}: stopped early after epoch ${label}: ${s.patience} epoch(s) without ` +
            `improving ${s.metric}; keeping epoch ${s.best!.at} (${s.metric} ${s.best!.value})`,
        );
      }
    };
    const labelWidth = train.labelWidth;
    const dropQueue = (h: Head) => {
      for (const b of h.queue) for (const x of b.parts) x.dispose();
      h.queue = [];
    };

    // One pass: each read (store) or forward (stream) of up to a batch of rows feeds every head
    // that takes some of them. A chunk that is exactly a head's batch trains it at once, micro-
    // batch by micro-batch, as a head alone does; otherwise the head's rows are copied (on the
    // GPU) into its batch, which trains once whole, in the same micro-batches: the same values
    // in the same order, so each head's steps are those it takes alone.
    const chunks = subsetPass(
      shape.n,
      o.seed,
      batchSize,
      pass,
      (j) => !heads[j].early?.stop && !heads[j].halted,
    );
    for (const chunk of chunks) {
      const direct = heads.map((h, j) =>
        h.queue.length === 0 && chunk.takes[j].length === chunk.rows.length &&
        chunk.rows.length === batchLen(h, h.steps)
      );
      const cursor = heads.map(() => 0); // next entry of each head's takes
      for (let r0 = 0; r0 < chunk.rows.length; r0 += micro) {
        const part = chunk.rows.subarray(r0, r0 + micro);
        scope(() => {
          const data = train.take(part);
          const rowShape = data.x.shape.slice(1);
          const rowBytes = 4 * rowShape.reduce((a, b) => a * b, 1);
          heads.forEach((h, j) => {
            if (direct[j]) return accumulate(h, data.x, data.labels, data.idx, chunk.rows.length);
            const takes = chunk.takes[j];
            for (; cursor[j] < takes.length && takes[cursor[j]] < r0 + part.length; cursor[j]++) {
              const local = takes[cursor[j]] - r0;
              let b = h.queue.at(-1);
              if (!b || b.filled === b.len) {
                const len = batchLen(h, h.steps + h.queue.length);
                b = {
                  len,
                  filled: 0,
                  parts: [],
                  labels: new Float64Array(len * labelWidth),
                  idx: new Float64Array(len),
                };
                h.queue.push(b);
              }
              const q = Math.floor(b.filled / micro), off = b.filled % micro;
              if (!b.parts[q]) {
                b.parts[q] = keep(
                  Tensor.empty([Math.min(micro, b.len - q * micro), ...rowShape], "f32", "x"),
                );
              }
              gpu.copy(
                data.x.buffer,
                local * rowBytes,
                b.parts[q].buffer,
                off * rowBytes,
                rowBytes,
              );
              for (let k = 0; k < labelWidth; k++) {
                b.labels[b.filled * labelWidth + k] = data.labels[local * labelWidth + k];
              }
              b.idx[b.filled] = data.idx[local];
              b.filled++;
            }
          });
        });
      }
      for (const [j, h] of heads.entries()) {
        if (direct[j]) await finishStep(h, chunk.rows.length);
        while (
          h.queue.length && h.queue[0].filled === h.queue[0].len && !h.early?.stop && !h.halted
        ) {
          const b = h.queue.shift()!;
          try {
            b.parts.forEach((x, q) =>
              scope(() =>
                accumulate(
                  h,
                  x,
                  b.labels.subarray(q * micro * labelWidth, (q * micro + x.shape[0]) * labelWidth),
                  b.idx.subarray(q * micro, q * micro + x.shape[0]),
                  b.len,
                )
              )
            );
          } finally {
            for (const x of b.parts) x.dispose();
          }
          await finishStep(h, b.len);
        }
        if (h.early?.stop || h.halted) dropQueue(h); // stopped: the rows it gathered go unused
      }
      if (heads.some((h) => h.pending)) {
        const evals = heads.map((h) => h.pending ?? null);
        const go = o.onEval ? await o.onEval(evals) : evals.map(() => true);
        heads.forEach((h, j) => {
          if (h.pending && go[j] === false) {
            h.halted = h.pending.step;
            dropQueue(h);
          }
          h.pending = undefined;
        });
      }
      bar.tick(chunk.rows.length);
    }
    for (const h of heads) {
      if (h.queue.length || (h.steps !== h.total && !h.early?.stop && !h.halted)) {
        throw new Error(`${h.v.outDir}: trained ${h.steps} of ${h.total} steps (a bug)`);
      }
      await flush(h);
    }
    bar.done();

    const results: TrainApResult[] = [];
    for (const [i, p] of planned.entries()) {
      const h = heads.find((x) => x.v.outDir === p.v.outDir);
      if (!h) {
        results.push(
          await resumedHead(p.v.outDir, found[i]!, {
            log: p.v.log,
            devs,
            rows: p.rows,
            batchSize,
            inputRow: train.rowTensors()[0],
            settings: { ...resolved.values, lr: p.v.lr, l2: p.v.l2, seed: p.v.seed },
          }),
        );
        continue;
      }
      h.window.dispose();
      h.opt.dispose();
      // Early stopping keeps the best epoch's weights (as the seed keeps its best snapshot).
      const early = h.early?.state;
      if (h.best && early?.best && early.best.at !== early.evaluations.at(-1)?.at) {
        const config = h.head.config;
        h.head.dispose();
        h.head = BvHead.fromHost(config, h.best);
      }
      h.best = null;
      const headPath = `${h.v.outDir}/head.safetensors`;
      await saveHead(headPath, h.head, {
        task: task.name,
        train: train.name,
        seed: String(h.v.seed),
      });
      const result: TrainApResult = {
        head: h.head,
        params: h.head.numParams,
        paramReport: o.bertParams ? h.head.report(o.bertParams) : undefined,
        history: h.history,
        steps: h.steps,
        examples: h.speed.entry().examples,
        trainRows: h.rows,
        headPath,
        split: split!,
        wallSeconds: 0,
        settings: { ...resolved.values, lr: h.v.lr, l2: h.v.l2, seed: h.v.seed },
        earlyStop: early,
      };
      for (const d of devs) {
        const ev = await evaluateHead(h.head, d.source, task, {
          batchSize: Math.min(o.evalBatchSize, micro),
          outDir: h.v.outDir,
          prefix: d.prefix,
          rows: d.rows,
          metrics: o.metrics,
          silent: o.silent,
        });
        (result.devBySplit ??= []).push({
          split: d.split,
          metrics: ev.metrics,
          logitsPath: ev.logitsPath,
          predictionsPath: ev.predictionsPath,
          naProbsPath: ev.naProbsPath,
        });
      }
      result.devMetrics = result.devBySplit?.[0].metrics;
      result.devLogitsPath = result.devBySplit?.[0].logitsPath;
      result.wallSeconds = (performance.now() - t0) / 1000;
      // Written last (atomically): a head directory with results.json is complete.
      await writeJsonAtomic(`${h.v.outDir}/results.json`, {
        task: task.name,
        head: h.head.config,
        params: result.params,
        paramReport: result.paramReport,
        settings: h.settings,
        sources: { train: train.name, dev: dev?.name, stream: o.stream },
        microBatch: micro,
        trainRows: h.rows.length,
        steps: h.steps,
        examples: result.examples,
        finalLoss: h.history.at(-1)?.loss,
        devMetrics: result.devMetrics,
        ...(devs.length > 1
          ? {
            devSplits: Object.fromEntries(
              result.devBySplit!.map((d) => [d.split, d.metrics]),
            ),
          }
          : {}),
        ...(early ? { earlyStop: early } : {}),
        wallSeconds: result.wallSeconds,
      });
      results.push(result);
    }
    return results;
  } catch (e) {
    for (const h of heads) {
      h.window.dispose();
      h.opt.dispose();
      h.head.dispose(); // the caller never sees them
      h.loss?.dispose();
      for (const b of h.queue) for (const x of b.parts) x.dispose();
    }
    throw stageError(e, {
      stage: `train ${task.name} head${heads.length > 1 ? "s" : ""}`,
      batch: stepsSince(clean, at, total),
      batchSize,
    });
  } finally {
    train.close();
    for (const d of devs) d.source.close();
    for (const l of locks) l.release();
  }
}

/**
 * Refuses a head directory whose `results.json` records other settings, naming them, unless
 * `overwrite`. Returns the `results.json` of a head finished with the same settings (which a
 * rerun trains again to the same head, or with `resume` keeps), else null.
 */
async function checkHeadOutput(
  dir: string,
  settings: Record<string, unknown>,
  overwrite = false,
): Promise<Record<string, unknown> | null> {
  const path = `${dir}/results.json`;
  let record: Record<string, unknown>;
  let there: Record<string, unknown> | undefined;
  try {
    record = JSON.parse(await Deno.readTextFile(path));
    there = record.settings as Record<string, unknown> | undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    if (overwrite) return null;
    throw new InputError(`${path}: unreadable (${e}); choose another --out, or --overwrite`, {
      file: path,
      cause: e,
    });
  }
  const diff = settingsDiff(there ?? {}, settings);
  if (diff.length && !overwrite) {
    throw new InputError(
      `${dir} holds a head trained with other settings (${path}): ${diff.join("; ")}; ` +
        `choose another --out, or --overwrite to replace it`,
      { file: path },
    );
  }
  return diff.length ? null : record;
}

/**
 * The result of a head found finished in `dir` (`resume`): its weights, log and dev results as
 * that run saved them (`results.json`, `train_log.jsonl`, the dev logits files); nothing is
 * trained or evaluated again.
 */
async function resumedHead(
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
  /** SQuAD with `rows`: null score − best span score per question id (the na-prob file). */
  naProbs?: Record<string, number>;
  /** Saved logits path (.npy) when `outDir` was given. */
  logitsPath?: string;
  /**
   * SQuAD with `rows` and `outDir`: `predictions.json` ({id: answer}) and `na_probs.json` ({id:
   * no-answer score}), the official evaluator's inputs (`deno task evaluate --pred ... --na-prob
   * ...` scores them to `metrics`); `<prefix>_predictions.json` ... for a prefix other than "dev".
   */
  predictionsPath?: string;
  naProbsPath?: string;
}

/**
 * Runs a head over every row of a store (consecutive blocks, no gradients) and scores it.
 * `store` is a path or an open reader (left open).
 */
export async function evaluateAp(
  head: BvHead,
  store: string | StoreReader,
  taskOrName: string | Task,
  o: EvaluateApOptions = {},
): Promise<EvaluateApResult> {
  await initGpu();
  const task = resolveTask(taskOrName);
  const source = typeof store === "string" ? await StoreSource.open(store) : StoreSource.of(store);
  try {
    checkStore(source.reader, { task, ...o.expect });
    return await evaluateHead(head, source, task, o);
  } finally {
    if (typeof store === "string") source.close();
  }
}

/** {@linkcode evaluateAp} on any activation source (a store, or a stream from BERT). */
export async function evaluateHead(
  head: BvHead,
  source: ActivationSource,
  taskOrName: string | Task,
  o: EvaluateApOptions = {},
): Promise<EvaluateApResult> {
  await initGpu();
  const task = resolveTask(taskOrName);
  const kind = kindOf(task);
  const c = head.config;
  const s = source.shape;
  const T = s.layout === "full" ? s.tokens : 1;
  if (c.layers !== s.layers || c.tokens !== T || c.features !== s.hidden) {
    throw new Error(
      `${source.name} holds [L=${s.layers}, T=${T}, F=${s.hidden}] but the head was built for ` +
        describeConfig(c),
    );
  }
  const N = s.n, bs = o.batchSize ?? HEAD_DEFAULTS.evalBatchSize;
  const shape = kind.logitsShape(N, T);
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  const logits = new Float32Array(N * width);
  const golds = new (kind.labelType === "float32" ? Float32Array : Int32Array)(
    N * source.labelWidth,
  );
  const idx = new Float64Array(N);
  const bar = new Progress({ label: `eval ${task.name}`, total: N, unit: "ex", silent: o.silent });
  for (let start = 0; start < N; start += bs) {
    const count = Math.min(bs, N - start);
    const { out, labels, rowIdx } = await noGrad(() =>
      scope(async () => {
        const data = source.range(start, count);
        return {
          out: await head.forward(data.x).readF32(),
          labels: data.labels,
          rowIdx: data.idx,
        };
      })
    ).catch((e) => {
      throw stageError(e, {
        stage: `evaluate ${task.name} head on ${source.name}`,
        batch: `rows ${start}–${start + count - 1}`,
        batchSize: bs,
      });
    });
    logits.set(kind.toSaved(out, count, T), start * width);
    golds.set(labels, start * source.labelWidth);
    idx.set(rowIdx, start);
    bar.tick(count);
  }
  bar.done();

  if (o.rows && o.rows.n !== N) {
    throw new Error(
      `${source.name} holds ${N} rows but the dev rows given to score it have ` +
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
    naProbs: "naProbs" in scored ? scored.naProbs : undefined,
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
    if (res.answers && res.naProbs) {
      // The official evaluator's file names (the dev split's files keep them unprefixed).
      const p = prefix === "dev" ? "" : `${prefix}_`;
      res.predictionsPath = `${o.outDir}/${p}predictions.json`;
      res.naProbsPath = `${o.outDir}/${p}na_probs.json`;
      await Deno.writeTextFile(res.predictionsPath, JSON.stringify(res.answers, null, 2) + "\n");
      await Deno.writeTextFile(res.naProbsPath, JSON.stringify(res.naProbs, null, 2) + "\n");
    }
  }
  return res;
}
