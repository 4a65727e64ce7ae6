/**
 * Every command-line flag of every command, in one table: its value type and range, what it
 * does, the modes that use it and the default each shows (taken from train/defaults.ts, the
 * values the library itself fills in). Parsing, help texts and the README's flag section are all
 * generated from it (scripts/_flag_parse.ts, scripts/_flag_docs.ts), so they cannot disagree; a flag given to a mode that would ignore it is an
 * error saying which modes use it. New flags are added here.
 *
 * Modes: `glue:bert` (fine-tune BERT), `glue:head` (train a BERTVision head on stored
 * activations), `glue:stream` (the same with hidden states computed on the fly by a BERT
 * checkpoint, no store), `capture`, `reproduce`, `evaluate`, `ensemble`, `fetch-data`,
 * `make-tiny-bert`, `demo`, `report` (which also takes a positional argument, see
 * {@linkcode POSITIONALS}), `merge-shards` (the shard files as positional arguments), `probe`
 * (layer probes on stores) and `probe:stream` (`--activations stream`: on hidden states computed
 * now), `ablate`.
 * `deno task squad` is `glue` with the task fixed to SQuAD.
 *
 * Checked by scripts/flags_test.ts (parsing, refusals, the seed's `--dataset` values, and the
 * README section being the generated one).
 * @module
 */
import {
  CAPTURE_DEFAULTS,
  FINETUNE_DEFAULTS,
  HEAD_DEFAULTS,
  SEARCH_DEFAULTS,
  SQUAD_DEFAULTS,
} from "../train/defaults.ts";
import { SEED_DEFAULTS } from "../train/presets.ts";
import { SQUAD_SEED_SETTINGS } from "../train/squad_settings.ts";
import { TASK_NAMES } from "../tasks/mod.ts";

/** A command-line error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** Every mode a command runs in. */
export const MODES = [
  "glue:bert",
  "glue:head",
  "glue:stream",
  "search:head",
  "search:stream",
  "search:bert",
  "capture",
  "reproduce",
  "evaluate",
  "ensemble",
  "fetch-data",
  "make-tiny-bert",
  "demo",
  "report",
  "merge-shards",
  "probe",
  "probe:stream",
  "ablate",
] as const;

/** One of {@linkcode MODES}. */
export type Mode = typeof MODES[number];

/** What a mode does, for help texts and refusals. */
export const MODE_TITLES: Record<Mode, string> = {
  "glue:bert": "glue/squad --model bert (fine-tune BERT)",
  "glue:head": "glue/squad --model ap|lp|avg (train a BERTVision head on stored activations)",
  "glue:stream": "glue/squad --model ap|lp|avg --activations stream (hidden states computed now)",
  "search:head": "search --model ap|lp|avg (head trials on stored activations)",
  "search:stream":
    "search --model ap|lp|avg --activations stream (head trials, hidden states computed now)",
  "search:bert": "search --model bert (fine-tuning trials)",
  capture: "capture",
  reproduce: "reproduce",
  evaluate: "evaluate",
  ensemble: "ensemble",
  "fetch-data": "fetch-data",
  "make-tiny-bert": "make-tiny-bert",
  demo: "demo",
  report: "report",
  "merge-shards": "merge-shards",
  probe: "probe (a linear probe per stored layer)",
  "probe:stream":
    "probe --activations stream (a linear probe per layer, hidden states computed now)",
  ablate: "ablate (a head's dev metric with each layer replaced by its training mean)",
};

/**
 * A flag's value: what it parses to. "files" takes one or more paths, as `--logits A B C` (the
 * words up to the next flag) or repeated (`--logits A --logits B`).
 */
export type FlagValue = "int" | "number" | "numbers" | "string" | "files" | "boolean" | "choice";

/** One flag. */
export interface Flag {
  /** Without the dashes, e.g. "batch-size". */
  name: string;
  value: FlagValue;
  /** Placeholder in help texts, e.g. "N" or "DIR". */
  arg?: string;
  /** One line: what it does. */
  help: string;
  /**
   * The modes that use it, each with the default it shows there: a value, `null` for none (the
   * flag is optional and absent means "not used"), or `"required"`.
   */
  in: Partial<Record<Mode, string | number | boolean | null>>;
  /** Allowed values of a "choice". */
  choices?: readonly string[];
  /** Lowest (and highest) allowed value of a number; ints must be integers. */
  min?: number;
  max?: number;
  /** Left out of help texts (test hooks). */
  hidden?: boolean;
}

const H = HEAD_DEFAULTS, C = CAPTURE_DEFAULTS, F = FINETUNE_DEFAULTS;
const MAX_SEQ = "128 (squad 384)";
/** With the preset: the seed's token counts (train/presets.ts). */
const SEED_SEQ = "the task's preset: the seed's BERT pads single sentences to 64, pairs to 512, " +
  "squad 384";
/**
 * The training commands fill settings not given from the task's preset: the seed's own command
 * for it (train/presets.ts). The values every preset shares are shown as numbers (S); the
 * per-task ones as this.
 */
const S = SEED_DEFAULTS;
const PRESET = "the task's preset";
/** Search: a hyperparameter of the space, fixed to the value given. */
const SEARCHED = "searched; given: fixed";
const SD = SEARCH_DEFAULTS;
/**
 * SQuAD's settings (train/squad_settings.ts): every command's default is the seed's value,
 * shown with that origin.
 */
const SQ = SQUAD_SEED_SETTINGS;
const seedValue = (v: string | number) => `${v}, the seed's`;
/** The modes that turn SQuAD logits into answers, each showing `shown` as the default. */
const squadScoring = (shown: string): Flag["in"] => ({
  "glue:bert": shown,
  "glue:head": shown,
  "glue:stream": shown,
  reproduce: shown,
  ensemble: shown,
  "search:head": shown,
  "search:stream": shown,
  "search:bert": shown,
});

/** The table. Order is the order of help texts. */
export const FLAGS: Flag[] = [
  // ---- what to run on
  {
    name: "task",
    value: "string",
    arg: "T",
    help: `the task: ${TASK_NAMES.join(" ")}`,
    in: {
      "glue:bert": "required",
      "glue:head": "required",
      "glue:stream": "required",
      capture: "required",
      reproduce: "required",
      evaluate: "required",
      ensemble: "required",
      "fetch-data": "required",
      "search:head": "required",
      "search:stream": "required",
      "search:bert": "required",
      probe: "required",
      "probe:stream": "required",
      ablate: "required",
    },
  },
  {
    name: "dataset",
    value: "string",
    arg: "D",
    help: "the seed's name for the task: SST MSR QQPairs STSB COLA RTE qnli MNLI SQuAD WNLI; " +
      "with H5 appended (SSTH5, SQuADH5, ...) it selects head training",
    in: { "glue:bert": null, "glue:head": null, "glue:stream": null, reproduce: null },
  },
  {
    name: "model",
    value: "choice",
    choices: ["bert", "ap", "lp", "avg"],
    help: "glue/squad: what to train: BERT, or the adapter-pooler (ap), learned (lp) or " +
      "average pooling (avg) on BERT's hidden states",
    in: { "glue:bert": "bert", "glue:head": "bert", "glue:stream": "bert" },
  },
  {
    name: "model",
    value: "choice",
    choices: ["bert", "ap", "lp", "avg"],
    help: "search: what each trial trains: a BERTVision head (ap, lp, avg) or BERT (bert)",
    in: { "search:head": "ap", "search:stream": "ap", "search:bert": "ap" },
  },
  {
    name: "bert",
    value: "string",
    arg: "M",
    help: "the BERT to fine-tune (stream: the frozen checkpoint computing the hidden states): " +
      "a Hugging Face directory or hub id",
    in: {
      "glue:stream": "required",
      "probe:stream": "required",
      "glue:bert": "bert-base-uncased",
      "search:stream": "required",
      "search:bert": "bert-base-uncased",
    },
  },
  {
    name: "bert",
    value: "string",
    arg: "M",
    help: "with --dev-file: the BERT (directory or hub id) whose tokenizer re-featurizes it",
    in: { "glue:head": "the store's model_id", "search:head": "the store's model_id" },
  },
  {
    name: "model",
    value: "string",
    arg: "M",
    help: "the BERT: a Hugging Face directory or hub id (ensemble: whose tokenizer made the " +
      "SQuAD windows, e.g. the fine-tuned checkpoint)",
    in: { capture: "required", reproduce: "bert-base-uncased", ensemble: "required for squad" },
  },
  {
    name: "data-dir",
    value: "string",
    arg: "DIR",
    help: "root of the GLUE distribution layout (DIR/SST-2/dev.tsv, DIR/squad/dev-v2.0.json)",
    in: {
      "glue:stream": "required",
      "probe:stream": "required",
      "glue:bert": "required",
      capture: "required unless --data-file",
      reproduce: "required",
      "search:stream": "required",
      "search:bert": "required",
    },
  },
  {
    name: "train-file",
    value: "string",
    arg: "FILE",
    help: "training split file read instead of the one under --data-dir",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": null,
      reproduce: null,
      "search:stream": null,
      "search:bert": null,
    },
  },
  {
    name: "dev-file",
    value: "string",
    arg: "FILE",
    help: "dev split file read instead of the one under --data-dir",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": null,
      reproduce: null,
      "search:stream": null,
      "search:bert": null,
    },
  },
  {
    name: "dev-file",
    value: "string",
    arg: "FILE",
    help: "the file the (first) --dev-h5 store was captured from, re-featurized and checked " +
      "against the store's input_ids: SQuAD is then scored by the official EM/F1 and " +
      "predictions.json, na_probs.json are written (required for squad with --dev-h5; probe: " +
      "without it span probes report token accuracies)",
    in: { "glue:head": null, "search:head": null, probe: null },
  },
  {
    name: "dev-split",
    value: "string",
    arg: "S[,S]",
    help: "the dev splits evaluated, by name, separated by commas (default every dev split of " +
      "the task: mnli dev_matched,dev_mismatched, reported as two columns); mrpc msr_test is " +
      "the labelled MSR paraphrase test file the seed evaluated MSR on",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": null,
      reproduce: null,
      "search:stream": null,
      "search:bert": null,
    },
  },
  {
    name: "split",
    value: "string",
    arg: "S",
    help: "the split to capture (train, dev, dev_matched, dev_mismatched, msr_test, test, ...)",
    in: { capture: "required" },
  },
  {
    name: "data-file",
    value: "string",
    arg: "FILE",
    help: "the split file read instead of the one under --data-dir",
    in: { capture: null },
  },
  {
    name: "shard",
    value: "string",
    arg: "I/N",
    help: "run only shard I of N (0-based): capture, a contiguous run of the split's rows cut " +
      "at example boundaries, to its own resumable file ({shard} in --out becomes I); a " +
      "--train-fractions sweep, a contiguous share of the fractions; search, the worker " +
      "shard-I of a shared study. auto/N reads I from SLURM_ARRAY_TASK_ID or " +
      'JOB_COMPLETION_INDEX (README "On a cluster")',
    in: {
      capture: null,
      "glue:head": null,
      "glue:stream": null,
      "search:head": null,
      "search:stream": null,
      "search:bert": null,
      probe: null,
      "probe:stream": null,
    },
  },
  {
    name: "h5",
    value: "string",
    arg: "FILE",
    help: "activation store of the training split (written by capture), or its shards: a " +
      "quoted glob ('acts/train-*.h5') or a .txt manifest listing them, read as one file; or " +
      "the seed's TASK_bert_embeds.h5, with its labels and idx files beside it",
    in: {
      "glue:head": "required",
      "search:head": "required",
      probe: "required",
      ablate: "needed by heads without layer_means.safetensors",
    },
  },
  {
    name: "dev-h5",
    value: "files",
    arg: "FILE [FILE]",
    help: "activation store of the dev split, evaluated after training; one per dev split for " +
      "several (mnli: the dev_matched and dev_mismatched stores, reported as two columns); " +
      "each may be a shard set, as --h5",
    in: { "glue:head": null, "search:head": "required", probe: "required", ablate: "required" },
  },
  // ---- outputs
  {
    name: "out",
    value: "string",
    arg: "DIR",
    help: "where results go (capture: the HDF5 file, {shard} replaced by --shard's index; " +
      "merge-shards: the merged HDF5 file; report: report.md, report.svg and report.html)",
    in: {
      "glue:bert": "runs/<task>-bert",
      "glue:head": "runs/<task>-<model>",
      "glue:stream": "runs/<task>-<model>",
      capture: "required",
      reproduce: "results",
      "fetch-data": "required",
      "make-tiny-bert": "required",
      demo: "results/demo",
      report: "RESULTS_DIR",
      "merge-shards": "required unless --dry-run",
      "search:head": "results/<task>/search-<model>",
      "search:stream": "results/<task>/search-<model>",
      "search:bert": "results/<task>/search-<model>",
      probe: "required",
      "probe:stream": "required",
      ablate: "the --head directory",
    },
  },
  // ---- training
  {
    name: "batch-size",
    value: "int",
    arg: "N",
    min: 1,
    help: "examples per step (capture: rows per forward; reproduce: BERT and the head)",
    in: {
      "glue:bert": S.batchSize,
      "glue:head": S.batchSize,
      "glue:stream": S.batchSize,
      capture: C.batchSize,
      reproduce: S.batchSize,
      "search:head": S.batchSize,
      "search:stream": S.batchSize,
      "search:bert": S.batchSize,
      probe: H.batchSize,
      "probe:stream": H.batchSize,
    },
  },
  {
    name: "epochs",
    value: "number",
    arg: "E",
    min: 1e-6,
    help: "passes over the training data; fractions allowed (0.3)",
    in: {
      "glue:bert": S.epochs,
      "glue:head": S.epochs,
      "glue:stream": S.epochs,
      reproduce: S.epochs,
      "search:head": S.epochs,
      "search:stream": S.epochs,
      "search:bert": S.epochs,
      probe: H.epochs,
      "probe:stream": H.epochs,
    },
  },
  {
    name: "lr",
    value: "number",
    arg: "LR",
    min: 0,
    help: "peak learning rate (linear warmup, then linear decay to 0, as Hugging Face's " +
      "get_linear_schedule_with_warmup); default: the seed's for the task (README \"The seed's " +
      'settings": squad 2e-5, mrpc and wnli 3e-5, the other GLUE tasks 1e-5)',
    in: {
      "glue:bert": PRESET,
      "glue:head": PRESET,
      "glue:stream": PRESET,
      reproduce: PRESET,
      "search:head": SEARCHED,
      "search:stream": SEARCHED,
      "search:bert": SEARCHED,
      probe: H.lr,
      "probe:stream": H.lr,
    },
  },
  {
    name: "l2",
    value: "number",
    arg: "W",
    min: 0,
    help:
      "AdamW weight decay (which parameters: --decay-biases); default: the seed's for the task " +
      "(squad, mrpc, mnli 1.0; the other tasks 0.01)",
    in: {
      "glue:bert": PRESET,
      "glue:head": PRESET,
      "glue:stream": PRESET,
      reproduce: PRESET,
      "search:head": PRESET,
      "search:stream": PRESET,
      "search:bert": PRESET,
      probe: H.l2,
      "probe:stream": H.l2,
    },
  },
  {
    name: "warmup-proportion",
    value: "number",
    arg: "P",
    min: 0,
    max: 1,
    help: "share of the steps spent warming the learning rate up (the seed's float " +
      "warmup steps: proportion × steps; reproduce: BERT and the head)",
    in: {
      "glue:bert": S.warmupProportion,
      "glue:head": S.warmupProportion,
      "glue:stream": S.warmupProportion,
      reproduce: S.warmupProportion,
      "search:head": S.warmupProportion,
      "search:stream": S.warmupProportion,
      "search:bert": S.warmupProportion,
    },
  },
  {
    name: "patience",
    value: "int",
    arg: "N",
    min: 0,
    help: "early stopping: stop after N dev evaluations in a row without improving the main " +
      "metric (BERT: at the --save-at checkpoints; heads: after every epoch, keeping the best " +
      "epoch's weights); 0 never stops (reproduce: BERT and the head)",
    in: {
      "glue:bert": S.patience,
      "glue:head": S.patience,
      "glue:stream": S.patience,
      reproduce: S.patience,
    },
  },
  {
    name: "early-stop",
    value: "choice",
    choices: ["loss", "metric"],
    help: "what --patience watches: the main dev metric, or the dev loss (the task's training " +
      "loss on the dev rows); the seed's trainers compare dev F1, its CoLA head the dev loss " +
      "(reproduce: BERT and the head)",
    in: {
      "glue:bert": PRESET,
      "glue:head": PRESET,
      "glue:stream": PRESET,
      reproduce: PRESET,
    },
  },
  {
    name: "bias-correction",
    value: "choice",
    choices: ["on", "off"],
    help: "AdamW's bias correction: on is torch.optim.AdamW; off is the seed's " +
      "transformers.AdamW(correct_bias=False): no correction, and the weight decay applied " +
      "after the Adam update (reproduce: BERT and the head)",
    in: {
      "glue:bert": `off (the seed's; library default on)`,
      "glue:head": `off (the seed's; library default on)`,
      "glue:stream": `off (the seed's; library default on)`,
      reproduce: `off (the seed's; library default on)`,
    },
  },
  {
    name: "adam-eps",
    value: "number",
    arg: "E",
    min: 0,
    help: "AdamW's epsilon (reproduce: BERT and the head)",
    in: {
      "glue:bert":
        `${S.adamEps.toExponential()} (the seed's; library default ${F.adamEps.toExponential()})`,
      "glue:head": S.adamEps,
      "glue:stream": S.adamEps,
      reproduce: S.adamEps,
    },
  },
  {
    name: "max-grad-norm",
    value: "number",
    arg: "N",
    min: 0,
    help: "clip the global gradient norm to N; 0 never clips, as the seed (reproduce: BERT " +
      "and the head)",
    in: {
      "glue:bert": `${S.maxGradNorm} (the seed's; library default ${F.maxGradNorm})`,
      "glue:head": S.maxGradNorm,
      "glue:stream": S.maxGradNorm,
      reproduce: S.maxGradNorm,
    },
  },
  {
    name: "decay-biases",
    value: "choice",
    choices: ["on", "off"],
    help: "weight decay (--l2) on every parameter (on), or not on biases and LayerNorm weights " +
      "(off), chosen by parameter name; the seed's BERT off, its heads on " +
      "(reproduce: BERT and the head)",
    in: {
      "glue:bert": "off (the seed's)",
      "glue:head": "on (the seed's; library default off)",
      "glue:stream": "on (the seed's; library default off)",
      reproduce: "BERT off, the head on (the seed's)",
    },
  },
  {
    name: "seed",
    value: "int",
    arg: "S",
    help: "seeds data order, dropout, initialisation and subsets",
    in: {
      "glue:bert": S.seed,
      "glue:head": S.seed,
      "glue:stream": S.seed,
      reproduce: S.seed,
      "make-tiny-bert": 0,
      "search:head": SEARCHED,
      "search:stream": SEARCHED,
      "search:bert": SEARCHED,
      probe: H.seed,
      "probe:stream": H.seed,
    },
  },
  {
    name: "precision",
    value: "choice",
    choices: ["f32", "f16-mixed"],
    help: "f16-mixed: matmul operands in f16 with float32 accumulation (the seed's autocast); " +
      "training adds dynamic loss scaling (its GradScaler); weights, LayerNorm, softmax (and " +
      "in training the optimizer state and losses) stay float32. Left out, an output resumes " +
      "in the precision it was made with",
    in: {
      "glue:bert": "f16-mixed on a hardware GPU with shader-f16, else f32; or the resumed run's",
      "glue:head": "as glue:bert, or the resumed head's",
      "glue:stream": "as glue:head",
      capture: "f32 (the seed's); or the resumed store's",
      reproduce: "as glue:bert, or the resumed run's",
      "search:head": "as glue:bert, or the resumed study's",
      "search:stream":
        "f16-mixed on a hardware GPU with shader-f16, else f32; a resumed study's own",
      "search:bert": "as glue:bert, or the resumed study's",
      probe: "as glue:head, or the resumed probes'",
      "probe:stream": "as glue:head, or the resumed probes'",
    },
  },
  {
    name: "data-seed",
    value: "int",
    arg: "S",
    help: "seeds the head's data order and training subset apart from its initialisation " +
      "(--seed): heads trained from one pass share one data order, each recording it " +
      "(results.json dataSeed; a search trial's flags carry it), so one trains again alone exactly",
    in: {
      "glue:head": "the --seed",
      "glue:stream": "the --seed",
      probe: "the --seed",
      "probe:stream": "the --seed",
    },
  },
  {
    name: "max-seq-length",
    value: "int",
    arg: "T",
    min: 8,
    help: "tokens per row (padded or truncated; SQuAD: per window); reproduce: BERT's and, " +
      "unless --ap-max-seq-length, the head's",
    in: {
      "glue:stream": "the task's preset: the seed's head length (qnli, mnli 100; stsb 70; ...)",
      "probe:stream": MAX_SEQ,
      "glue:bert": SEED_SEQ,
      capture: MAX_SEQ,
      reproduce: SEED_SEQ,
      "search:stream": MAX_SEQ,
      "search:bert": MAX_SEQ,
    },
  },
  {
    name: "ap-max-seq-length",
    value: "int",
    arg: "T",
    min: 8,
    help: "the head's tokens per row: capture (or the stream) tokenizes the rows again at this " +
      "length, from the BERT fine-tuned at --max-seq-length (the seed's heads read fewer " +
      "tokens than its BERT for qnli, mnli (100) and stsb (70))",
    in: { reproduce: "--max-seq-length if given, else the task's preset" },
  },
  {
    name: "doc-stride",
    value: "int",
    arg: "N",
    min: 0,
    help: "SQuAD: tokens of overlap between consecutive windows of a context (the seed's " +
      "tokenizer stride; not the step between window starts); where the default leaves no " +
      "room to advance (a short --max-seq-length), half the context room",
    in: {
      "glue:stream": SQUAD_DEFAULTS.docStride,
      "probe:stream": SQUAD_DEFAULTS.docStride,
      "glue:bert": SQUAD_DEFAULTS.docStride,
      capture: SQUAD_DEFAULTS.docStride,
      reproduce: SQUAD_DEFAULTS.docStride,
      ensemble: SQUAD_DEFAULTS.docStride,
      "search:stream": SQUAD_DEFAULTS.docStride,
      "search:bert": SQUAD_DEFAULTS.docStride,
    },
  },
  {
    name: "max-question-length",
    value: "int",
    arg: "N",
    min: 0,
    help: "SQuAD: question tokens kept per window; 0: the whole question, as the seed " +
      "(run_squad.py: 64)",
    in: {
      "glue:bert": seedValue(SQ.maxQuestionLength),
      "glue:stream": seedValue(SQ.maxQuestionLength),
      "probe:stream": seedValue(SQ.maxQuestionLength),
      capture: seedValue(SQ.maxQuestionLength),
      reproduce: seedValue(SQ.maxQuestionLength),
      ensemble: seedValue(SQ.maxQuestionLength),
      "search:stream": seedValue(SQ.maxQuestionLength),
      "search:bert": seedValue(SQ.maxQuestionLength),
    },
  },
  {
    name: "squad-null",
    value: "choice",
    choices: ["max", "min"],
    help: "SQuAD: a question's null score is the max (the seed's) or the min (run_squad.py's) " +
      "of start[CLS]+end[CLS] over its windows",
    in: squadScoring(seedValue(SQ.nullScore)),
  },
  {
    name: "max-context",
    value: "choice",
    choices: ["on", "off"],
    help: "SQuAD: on: an answer must start in the window giving its token the most context " +
      "(run_squad.py); off: in any window holding it (the seed)",
    in: squadScoring(seedValue(SQ.maxContext ? "on" : "off")),
  },
  {
    name: "squad-ensemble",
    value: "choice",
    choices: ["seed", "ours"],
    help: "SQuAD ensembles: seed: start and end argmax each on its own, the window with the " +
      "largest product of the maxima (the seed's notebook); ours: post-processed as one " +
      "model's logits (--squad-null, --max-context)",
    in: { reproduce: seedValue(SQ.ensemble), ensemble: seedValue(SQ.ensemble) },
  },
  {
    name: "save-at",
    value: "numbers",
    arg: "E,E",
    help: "checkpoints (with dev metrics and logits) at these epochs, e.g. 0.3,1",
    in: { "glue:bert": "--epochs" },
  },
  {
    name: "capture-at",
    value: "number",
    arg: "E",
    min: 1e-6,
    help: "capture from the checkpoint at E epochs (the paper's 3/10 epoch: 0.3)",
    in: { reproduce: "--epochs" },
  },
  {
    name: "limit",
    value: "int",
    arg: "N",
    min: 1,
    help: "use the first N training examples (capture: of the split)",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": null,
      capture: null,
      reproduce: null,
      "search:stream": null,
      "search:bert": null,
    },
  },
  {
    name: "dev-limit",
    value: "int",
    arg: "N",
    min: 1,
    help: "evaluate on the first N dev examples",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": null,
      reproduce: null,
      ensemble: null,
      "search:stream": null,
      "search:bert": null,
    },
  },
  {
    name: "num-workers",
    value: "int",
    arg: "N",
    min: 0,
    help: "parallel tokenization workers (the seed's --num-workers; a head on stores: " +
      "accepted, said unused)",
    in: {
      "glue:stream": null,
      "probe:stream": null,
      "glue:bert": 0,
      "glue:head": null,
      capture: 0,
      reproduce: 0,
      "search:stream": null,
      "search:bert": 0,
    },
  },
  // ---- activations and heads
  {
    name: "layout",
    value: "choice",
    choices: ["full", "cls"],
    help: "activations of every token (full, BERTVision's) or of [CLS] only",
    in: {
      "glue:head": null,
      "glue:stream": null,
      capture: C.layout,
      reproduce: C.layout,
      "search:head": null,
      "search:stream": null,
    },
  },
  {
    name: "dtype",
    value: "choice",
    choices: ["f32", "f16"],
    help: "stored activations in float32 or float16 (half the bytes)",
    in: { capture: C.dtype, reproduce: C.dtype },
  },
  {
    name: "activations",
    value: "choice",
    choices: ["store", "stream"],
    help: "heads train on hidden states stored on disk by capture (store) or computed on the " +
      "fly by the BERT checkpoint every epoch, nothing written (stream)",
    in: {
      "glue:head": "store",
      "glue:stream": "stream",
      probe: "store",
      "probe:stream": "stream",
      reproduce: "store, or stream when the store would not fit on the disk",
      "search:head": "store",
      "search:stream": "stream",
    },
  },
  {
    name: "dry-run",
    value: "boolean",
    help: "print the plan (rows, micro-batches, peak GPU bytes, bytes written, free disk, time " +
      "from a short measured warm-up) and exit, writing nothing (merge-shards: each shard's " +
      "state and the array indices to submit again; exit 1 until the set is complete)",
    in: {
      "glue:bert": false,
      "glue:head": false,
      "glue:stream": false,
      capture: false,
      reproduce: false,
      "merge-shards": false,
    },
  },
  {
    name: "overwrite",
    value: "boolean",
    help: "replace an output made with other settings (without it the command refuses and " +
      "names the differences); an output made with the same settings is resumed either way",
    in: {
      "glue:bert": false,
      "glue:head": false,
      "glue:stream": false,
      capture: false,
      reproduce: false,
      "make-tiny-bert": false,
      "merge-shards": false,
      probe: false,
      "probe:stream": false,
      ablate: false,
    },
  },
  {
    name: "ignore-disk-space",
    value: "boolean",
    help: "start even when the free space of --out's folder is less than the store still " +
      "needs (the plan says NOT ENOUGH); without it that stops the capture before it writes",
    in: { capture: false },
  },
  {
    name: "break-lock",
    value: "boolean",
    help: "take the output's lock even when its holder looks alive (it died on another " +
      "machine, say); a dead holder's lock on this machine is taken over by itself",
    in: {
      "glue:bert": false,
      "glue:head": false,
      "glue:stream": false,
      capture: false,
      reproduce: false,
      "merge-shards": false,
      "search:head": false,
      "search:stream": false,
      "search:bert": false,
      probe: false,
      "probe:stream": false,
      ablate: false,
    },
  },
  {
    name: "ap-model",
    value: "choice",
    choices: ["ap", "lp", "avg"],
    help: "the BERTVision head: adapter-pooler, learned or average pooling",
    in: { reproduce: H.model },
  },
  {
    name: "adapter-dim",
    value: "int",
    arg: "D",
    min: 1,
    help: "adapter size of the adapter-pooler; default the token count (the seed's " +
      "adapter_dim = max_seq_length)",
    in: {
      "glue:head": "the store's token count",
      "glue:stream": "--max-seq-length",
      reproduce: "--max-seq-length",
      "search:head": SEARCHED,
      "search:stream": SEARCHED,
    },
  },
  {
    name: "no-shared",
    value: "boolean",
    help: "one adapter per layer instead of one shared by every layer",
    in: {
      "glue:head": false,
      "glue:stream": false,
      reproduce: false,
      "search:head": false,
      "search:stream": false,
    },
  },
  {
    name: "skip",
    value: "boolean",
    help: "span heads: add a Linear of the last layer (AP_SQuAD's skip connection)",
    in: {
      "glue:head": false,
      "glue:stream": false,
      reproduce: false,
      "search:head": false,
      "search:stream": false,
    },
  },
  {
    name: "train-fraction",
    value: "number",
    arg: "F",
    min: 1e-9,
    max: 1,
    help: "train the head on a seeded subset of this share of the rows",
    in: {
      "glue:head": H.trainFraction,
      "glue:stream": H.trainFraction,
      reproduce: H.trainFraction,
      "search:head": H.trainFraction,
      "search:stream": H.trainFraction,
    },
  },
  {
    name: "train-fractions",
    value: "numbers",
    arg: "F,F",
    max: 1,
    help: "the less-data curve: one head per share of the rows (nested seeded subsets, each " +
      "head in OUT/fraction-F, all from one pass over the data), a table and an SVG of the dev " +
      "metric against the share (fractions.md, fractions.svg); a rerun skips finished fractions",
    in: { "glue:head": null, "glue:stream": null, reproduce: null },
  },
  {
    name: "bert-score",
    value: "number",
    arg: "X",
    help: "with --train-fractions: BERT's dev score on the plotted metric, drawn as a line " +
      "(default: the dev metrics the BERT checkpoint recorded, when it is a glue --model bert " +
      "checkpoint: --bert, or the store's model_id)",
    in: { "glue:head": null, "glue:stream": null, probe: null, "probe:stream": null },
  },
  {
    name: "ap-epochs",
    value: "number",
    arg: "E",
    min: 1e-6,
    help: "epochs of head training",
    in: { reproduce: S.epochs },
  },
  {
    name: "ap-lr",
    value: "number",
    arg: "LR",
    min: 0,
    help: "learning rate of head training; default: the seed's AP command for the task (the " +
      "same as its BERT command's)",
    in: { reproduce: PRESET },
  },
  {
    name: "ap-l2",
    value: "number",
    arg: "W",
    min: 0,
    help: "AdamW weight decay of head training (not on biases); default: the seed's AP command " +
      "for the task (the same as its BERT command's)",
    in: { reproduce: PRESET },
  },
  // ---- search
  {
    name: "trials",
    value: "int",
    arg: "N",
    min: 1,
    help: "trials the study runs in all, every worker's counted (a rerun with a larger N goes " +
      "on); default 20 unless --minutes is given",
    in: { "search:head": SD.trials, "search:stream": SD.trials, "search:bert": SD.trials },
  },
  {
    name: "minutes",
    value: "number",
    arg: "M",
    min: 1e-6,
    help: "start no new trial after M minutes of this run (the seed's time budget); with " +
      "--trials, whichever comes first",
    in: { "search:head": null, "search:stream": null, "search:bert": null },
  },
  {
    name: "space",
    value: "string",
    arg: "NAME|FILE",
    help: "the seed's search seed-ap-glue, seed-ap-hypersearch or seed-bert (which also sets " +
      "--trials and --train-fraction when not given), or a JSON space file (README " +
      '"Hyperparameter search"); a training flag given (--lr, --seed, --adapter-dim, ...) fixes it',
    in: {
      "search:head": "seed-ap-glue",
      "search:stream": "seed-ap-glue",
      "search:bert": "seed-bert",
    },
  },
  {
    name: "sampler",
    value: "choice",
    choices: ["tpe", "random"],
    help: "hyperopt's Tree-structured Parzen Estimator (the seed's) or random search",
    in: { "search:head": SD.sampler, "search:stream": SD.sampler, "search:bert": SD.sampler },
  },
  {
    name: "startup-trials",
    value: "int",
    arg: "N",
    min: 0,
    help: "random trials before TPE starts (hyperopt's n_startup_jobs)",
    in: { "search:head": SD.startup, "search:stream": SD.startup, "search:bert": SD.startup },
  },
  {
    name: "sampler-seed",
    value: "int",
    arg: "S",
    help: "seeds the sampler's draws (each trial's from its id)",
    in: {
      "search:head": SD.samplerSeed,
      "search:stream": SD.samplerSeed,
      "search:bert": SD.samplerSeed,
    },
  },
  {
    name: "eta",
    value: "int",
    arg: "N",
    min: 2,
    help: "successive halving: a trial goes on past a rung only among the best 1/N of the " +
      "study's scores there",
    in: { "search:head": SD.eta, "search:stream": SD.eta, "search:bert": SD.eta },
  },
  {
    name: "rungs",
    value: "int",
    arg: "R",
    min: 1,
    help: "dev evaluations per trial, at epochs E/eta^(R-1), ..., E/eta, E (E: --epochs); 1 " +
      "stops no trial early",
    in: { "search:head": SD.rungs, "search:stream": SD.rungs, "search:bert": SD.rungs },
  },
  {
    name: "trials-per-pass",
    value: "int",
    arg: "K",
    min: 1,
    help: "head trials trained together from one pass over the data (stream: one BERT forward " +
      "per batch for all); their data order follows the first one's seed",
    in: { "search:head": 1, "search:stream": SD.streamTrialsPerPass },
  },
  {
    name: "worker",
    value: "string",
    arg: "NAME",
    help: "this worker's name: its log is OUT/trials-NAME.jsonl (several workers share a study, " +
      "one log each); default the host name (held by a live run: an error; give another worker " +
      "its own --worker NAME)",
    in: {
      "search:head": "the host name",
      "search:stream": "the host name",
      "search:bert": "the host name",
    },
  },
  // ---- evaluate
  {
    name: "data",
    value: "string",
    arg: "FILE",
    help: "the labelled file: a GLUE dev TSV, or SQuAD's JSON (ensemble: the file the logits " +
      "were computed on)",
    in: { evaluate: "required", ensemble: "required" },
  },
  {
    name: "pred",
    value: "string",
    arg: "FILE",
    help: "predictions: one per line in file order (GLUE), or {id: answer} JSON (SQuAD)",
    in: { evaluate: "required" },
  },
  {
    name: "na-prob",
    value: "string",
    arg: "FILE",
    help: "SQuAD: {id: probability of no answer} JSON",
    in: { evaluate: null },
  },
  // ---- ensemble
  {
    name: "logits",
    value: "files",
    arg: "A.npy B.npy ...",
    help: "two or more saved dev logits of the same rows (dev_logits.npy of BERT checkpoints " +
      "and heads; SQuAD [N, T, 2]): the element-wise max of their softmax distributions is scored; " +
      "runs whose rows records (dev_logits.rows.json beside each) differ are refused",
    in: { ensemble: "required" },
  },
  {
    name: "probe",
    value: "boolean",
    help: "which layers carry the task: a linear probe per stored layer on the captured stores " +
      "(OUT/<task>/probe: probe.md, probe.svg) and the head's layer ablation (ablate.md, " +
      "ablate.svg in its directory); their summaries join the results' notes",
    in: { reproduce: false },
  },
  // ---- probe, ablate
  {
    name: "pool",
    value: "choice",
    choices: ["cls", "mean"],
    help: "a probe's features of a row per layer: the [CLS] vector, or the mean over the real " +
      "tokens (needs a full-layout store); span tasks probe every token",
    in: { probe: "cls", "probe:stream": "cls" },
  },
  {
    name: "ap-score",
    value: "number",
    arg: "X",
    help: "the BERTVision head's dev score on the plotted metric, drawn as a line",
    in: { probe: null, "probe:stream": null },
  },
  {
    name: "ap-head",
    value: "string",
    arg: "DIR",
    help: "a trained head's directory: its results.json dev metrics drawn as a line (instead " +
      "of --ap-score)",
    in: { probe: null, "probe:stream": null },
  },
  {
    name: "head",
    value: "string",
    arg: "DIR",
    help: "the trained AP/LP/AvgP head's directory (head.safetensors, results.json)",
    in: { ablate: "required" },
  },
  // ---- fetch-data
  {
    name: "base-url",
    value: "string",
    arg: "URL",
    help: "a mirror instead of the canonical hosts (or BERTVISION_DATA_URL); it must serve the " +
      "same bytes: SQuAD is checked against its published sha256, the GLUE zips and MSR files " +
      "(no published hash) against the sha256 of their first download, recorded in " +
      "OUT/.downloads/hashes.json",
    in: { "fetch-data": null },
  },
  // ---- make-tiny-bert
  ...(
    [
      ["layers", 2, "encoder layers"],
      ["hidden", 64, "hidden size"],
      ["heads", 2, "attention heads"],
      ["intermediate", 128, "feed-forward size"],
      ["max-positions", 512, "position embeddings"],
    ] as const
  ).map(([name, d, help]): Flag => ({
    name,
    value: "int",
    arg: "N",
    min: 1,
    help,
    in: { "make-tiny-bert": d },
  })),
  {
    name: "vocab",
    value: "string",
    arg: "FILE",
    help: "a WordPiece vocab.txt (default: a built-in vocabulary)",
    in: { "make-tiny-bert": null },
  },
  // ---- everywhere
  {
    name: "quiet",
    value: "boolean",
    help: "no progress bars",
    in: {
      "glue:bert": false,
      "glue:head": false,
      "glue:stream": false,
      capture: false,
      reproduce: false,
      "fetch-data": false,
      demo: false,
      "merge-shards": false,
      "search:head": false,
      "search:stream": false,
      "search:bert": false,
      probe: false,
      "probe:stream": false,
      ablate: false,
    },
  },
  {
    name: "stop-after-batches",
    value: "int",
    min: 1,
    help: "exit abruptly after N batches, the store left open (tests of resume)",
    in: { capture: null },
    hidden: true,
  },
  {
    name: "hang-after-batches",
    value: "int",
    min: 1,
    help: "wait forever after N batches, the store flushed (tests that kill a task mid-run)",
    in: { capture: null },
    hidden: true,
  },
];

/** The commands and their modes. */
export const COMMANDS: Record<string, Mode[]> = {
  glue: ["glue:bert", "glue:head", "glue:stream"],
  squad: ["glue:bert", "glue:head", "glue:stream"],
  capture: ["capture"],
  reproduce: ["reproduce"],
  evaluate: ["evaluate"],
  ensemble: ["ensemble"],
  "fetch-data": ["fetch-data"],
  "make-tiny-bert": ["make-tiny-bert"],
  demo: ["demo"],
  search: ["search:head", "search:stream", "search:bert"],
  report: ["report"],
  "merge-shards": ["merge-shards"],
  probe: ["probe", "probe:stream"],
  ablate: ["ablate"],
};

/**
 * Commands that take one positional argument besides their flags (`deno task report
 * RESULTS_DIR`): its placeholder and what it is. Every other command refuses positionals.
 */
export const POSITIONALS: Partial<
  Record<
    string,
    { arg: string; help: string; /** One or more (else exactly one). */ many?: boolean }
  >
> = {
  report: {
    arg: "RESULTS_DIR",
    help: "the --out directory of deno task reproduce (holding <task>/results.json)",
  },
  "merge-shards": {
    arg: "SHARDS...",
    help: "the shard files of one capture --shard I/N (files, quoted globs or .txt manifests)",
    many: true,
  },
};

/** Flags of which a mode needs at least one (named by the first when none is given). */
export const ONE_OF: Partial<Record<Mode, string[][]>> = {
  capture: [["data-dir", "data-file"]],
};

/** The seed's `--dataset` values (BERTVision's `code/torch`) and the task each names. */
export const SEED_DATASETS: Record<string, string> = {
  SST: "sst2",
  MSR: "mrpc",
  QQPairs: "qqp",
  STSB: "stsb",
  COLA: "cola",
  RTE: "rte",
  qnli: "qnli",
  MNLI: "mnli",
  SQuAD: "squad",
  WNLI: "wnli",
};

// The parser and the generators live apart from the table; importers of this file get them too.
export { defaultFor, parseCommand, type Parsed } from "./_flag_parse.ts";
export { flagsMarkdown, usage } from "./_flag_docs.ts";
