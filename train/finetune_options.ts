/**
 * The options and results of BERT fine-tuning (train/finetune.ts `fineTune`), on their own so
 * that the planner, the search and reproduce can name them without the training loop.
 * @module
 */
import type { Task } from "../tasks/mod.ts";
import type { EarlyStopState } from "./loop.ts";
import type { DeviceOptions, OutputOptions, RowSourceOptions } from "./options.ts";
import type { Split } from "./plan.ts";
import type { Precision, PrecisionChoice } from "./precision.ts";
import type { ResolvedSettings, TrainSettings } from "./presets.ts";
import type { RowsCache } from "./rows.ts";
/**
 * Options of {@linkcode fineTune}; defaults in train/defaults.ts `FINETUNE_DEFAULTS`, or with
 * `preset` the task's seed preset (train/presets.ts) for the training settings.
 */
export interface FineTuneOptions extends OutputOptions, RowSourceOptions, DeviceOptions {
  /**
   * Fill the training settings not given (batch size, epochs, lr, l2, warmup, seed, patience)
   * from the seed's command for the task (train/presets.ts), as `glue`, `squad` and `reproduce`
   * do, instead of `FINETUNE_DEFAULTS`.
   */
  preset?: boolean;
  /**
   * The training settings already resolved (the command's, e.g. reproduce's): used as they are,
   * instead of resolving the seven settings above and `preset` again.
   */
  settings?: ResolvedSettings;
  /** The run's rows (the command's {@linkcode RowsCache}): each split tokenized once per run. */
  rows?: RowsCache;
  /** Where a given `maxSeqLength` came from, for the plan (default "--max-seq-length"). */
  maxSeqLengthFrom?: string;
  /** Local Hugging Face model directory (config.json, model.safetensors, vocab). */
  modelDir: string;
  /** A task name, or a task module of the caller's. */
  task: string | Task;
  /** GLUE/SQuAD distribution root (SST-2/train.tsv, squad/...). */
  dataDir: string;
  /** Where checkpoints, logs and dev logits go. */
  outDir: string;
  batchSize?: number;
  /** Fractional epochs allowed (0.3 = three tenths of one). */
  epochs?: number;
  lr?: number;
  /** AdamW weight decay (not on biases and LayerNorm). */
  l2?: number;
  warmupProportion?: number;
  seed?: number;
  /**
   * Early stopping (`--patience N`): stop once N checkpoint evaluations in a row did not improve
   * the first dev split's main metric (loop.ts `EarlyStopping`); 0 never stops early. Not one
   * of the run's settings: a rerun with more patience continues a stopped run where it stopped.
   */
  patience?: number;
  /** Checkpoints at these epochs (default: at the end). */
  saveAt?: number[];
  dropout?: number;
  /** Clip the global gradient norm to this (0: never clips). */
  maxGradNorm?: number;
  /** AdamW bias correction (false: transformers' `correct_bias=False`, the seed's). */
  biasCorrection?: boolean;
  /** AdamW epsilon. */
  adamEps?: number;
  /** Decay biases and LayerNorm weights too (by parameter name). */
  decayBiases?: boolean;
  /** Early stopping watches the dev loss or the main dev metric (`--early-stop`). */
  earlyStop?: "loss" | "metric";
  /** Evaluate on the first N dev examples. */
  devLimit?: number;
  /** One dev split, or a file path, evaluated instead of `devSplits`. */
  devSplit?: string;
  /**
   * Dev splits evaluated at each checkpoint, by name (`--dev-split`); default every dev split of
   * the task (MNLI: dev_matched and dev_mismatched). With several, each split's files in a
   * checkpoint are named by it (`dev_matched_logits.npy`, ...); with one, `dev_logits.npy`.
   */
  devSplits?: string[];
  /** Training split (default "train"), or a file path. */
  trainSplit?: string;
  /** Skip dev evaluation at checkpoints. */
  noEval?: boolean;
  /** Read the losses back every N steps (progress, log, NaN check). */
  logEvery?: number;
  /** Stop (as if killed) after this many steps in this process: tests of resume. */
  stopAfterSteps?: number;
  /**
   * `--precision`: f16-mixed (autocast matmuls, loss scaling) or f32; default the preset
   * (train/precision.ts: f16-mixed on a hardware GPU with shader-f16, else f32); or a choice the
   * caller resolved (reproduce, search), with the reason its plan line gives.
   */
  precision?: Precision | PrecisionChoice;
}

/** What {@linkcode fineTune} returns. */
export interface FineTuneResult {
  steps: number;
  /** Checkpoint directories by epoch label, e.g. {"0.3": ".../checkpoint-0.3"}. */
  checkpoints: Record<string, string>;
  /** Dev metrics per checkpoint label (of the first dev split, when several are evaluated). */
  dev: Record<string, Record<string, number>>;
  /** Every dev split's results per checkpoint label, in the order evaluated. */
  devBySplit: Record<string, CheckpointDev[]>;
  /** Mean loss of each logged window, at its last step. */
  losses: { step: number; loss: number }[];
  wallSeconds: number;
  bertParams: number;
  /** Whether this call resumed from a checkpoint. */
  resumed: boolean;
  /** Steps this call ran (0 when a finished run was found). */
  stepsRun: number;
  /** Set when stopAfterSteps cut the run short. */
  stopped?: boolean;
  /** How the planner split each step's batch into micro-batches. */
  split: Split;
  /** The effective training settings (given, or from the preset or the defaults). */
  settings: TrainSettings;
  /**
   * With patience and dev evaluation: every checkpoint's main dev metric, the best checkpoint
   * (`best.at`) and, when training stopped early, the checkpoint after which it stopped
   * (`stoppedAt`; the later checkpoints were not trained).
   */
  earlyStop?: EarlyStopState;
}

/** One dev split's results at one checkpoint. */
export interface CheckpointDev {
  /** The split's name (or the file given as `devSplit`). */
  split: string;
  metrics: Record<string, number>;
  /** Its dev logits: `dev_logits.npy`, or `<split>_logits.npy` when several are evaluated. */
  logits: string;
}
