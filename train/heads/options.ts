/**
 * The options and results of head training ({@linkcode ./pass.ts}): where a head trains from,
 * its settings, what it returns, and what may differ between heads trained together.
 * @module
 */
import type { BvHead, ParamReport, Pooling } from "../../model/heads.ts";
import type { EvalRows, Task } from "../../tasks/mod.ts";
import type { DeviceOptions, OutputOptions, RowSourceOptions } from "../options.ts";
import type { EarlyStopState, LogEntry } from "../loop.ts";
import type { Split } from "../plan.ts";
import type { TrainSettings } from "../presets.ts";
import type { ResolvedSquadSettings } from "../squad_settings.ts";
import type { RowsCache } from "../rows.ts";
import type { Precision, PrecisionChoice } from "../precision.ts";

/**
 * Where a head trains from: a store (`trainH5`) or a stream from a BERT checkpoint over the rows
 * of the task's splits (the row source's `limit` is the training split's).
 */
export interface StreamOptions extends RowSourceOptions {
  /** The frozen BERT: a Hugging Face directory or hub id (usually a fine-tuned checkpoint). */
  model: string;
  /** Split files read instead of the ones under `dataDir` (`devFile` replaces `devSplits`). */
  trainFile?: string;
  devFile?: string;
  /** Dev splits evaluated, by name; default every dev split of the task (MNLI: both). */
  devSplits?: string[];
  /** Default "full". */
  layout?: "full" | "cls";
  /** The dev splits' first N examples (`limit` is the training split's). */
  devLimit?: number;
  /**
   * The run's rows (train/rows.ts): a command that tokenized the splits already (reproduce)
   * hands them over, so the stream reads them instead of tokenizing again.
   */
  rows?: RowsCache;
}

/**
 * Options of {@linkcode trainAp}; defaults in train/defaults.ts `HEAD_DEFAULTS`. With the output
 * group: `overwrite` replaces a head in `outDir` trained with other settings instead of refusing.
 */
export interface TrainApOptions extends OutputOptions, DeviceOptions {
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
   * Fill the training settings not given (batch size, epochs, lr, l2, warmup, seed, patience,
   * early stop, the optimizer's bias correction, eps, clipping, decay) from the seed's AP command for the task (train/presets.ts), and the AP adapter size, when not
   * given, from the token count (the seed's `adapter_dim = max_seq_length`), as `glue`, `squad`
   * and `reproduce` do; otherwise from `HEAD_DEFAULTS`.
   */
  preset?: boolean;
  /**
   * SQuAD: the answer rule of dev scoring (and, streamed, the question length), resolved once
   * (train/squad_settings.ts); absent: the seed's with `preset`, else run_squad.py's.
   */
  squad?: ResolvedSquadSettings;
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
  /** AdamW bias correction (false: transformers' `correct_bias=False`, the seed's). */
  biasCorrection?: boolean;
  /** AdamW epsilon. */
  adamEps?: number;
  /** Decay every parameter (the seed's heads), not only the Linear weights; by name. */
  decayBiases?: boolean;
  /** Early stopping watches the dev loss or the main dev metric (`--early-stop`). */
  earlyStop?: "loss" | "metric";
  /**
   * `--precision`: f16-mixed (autocast matmuls, loss scaling) or f32; default the preset
   * (train/precision.ts: f16-mixed on a hardware GPU with shader-f16, else f32); or a choice the
   * caller resolved (reproduce, search), with the reason its plan line gives.
   */
  precision?: Precision | PrecisionChoice;
  /** Seeds initialisation, and subset and data order unless `dataSeed` is given. */
  seed?: number;
  /**
   * Seeds the training subset and the data order (`--data-seed`) [`seed`]. Heads trained from
   * one pass ({@linkcode trainHeads}: fractions, a search's trials, layer probes) share one data
   * order, the pass's; each records it (`results.json` `dataSeed`), so a head whose own `seed`
   * differs trains again alone, exactly, with `seed` and this.
   */
  dataSeed?: number;
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
  /**
   * The dev split's rows as `loadRows` (train/rows.ts) makes them, when the caller has them:
   * SQuAD's questions and windows, so span logits are scored by the official EM/F1 instead of
   * token accuracies. Must be the rows the dev store holds, in order. (Stream mode has them.)
   */
  devRows?: EvalRows;
  /** Computes dev metrics from the saved-layout logits instead of the head kind's scoring. */
  metrics?: MetricsFn;
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
