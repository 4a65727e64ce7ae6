/**
 * The defaults of every stage, in one place: the library functions fill missing options from
 * here, and the command-line flag table (scripts/_flags.ts) shows these same values in help
 * texts and the README. `max_seq_length` has no entry: it defaults per head kind
 * (`kindOf(task).defaultMaxSeqLength`: 128 for GLUE, 384 for SQuAD).
 *
 * The training settings (batch size, epochs, learning rate, weight decay, warmup, seed,
 * patience) of the commands `glue`, `squad` and `reproduce` are the task's preset instead: the
 * seed's own values (train/presets.ts, README "The seed's settings"). The values here are what
 * the library uses when called without `preset: true` (tests, the demo).
 * @module
 */
import { DEFAULT_ADAPTER_DIM } from "../model/heads.ts";
import { SQUAD_DOC_STRIDE, SQUAD_MAX_QUERY_LENGTH } from "../tasks/squad.ts";

/** Fine-tuning BERT (`glue --model bert`, `reproduce`). */
export const FINETUNE_DEFAULTS = {
  /** Examples per optimizer step. */
  batchSize: 16,
  /** Passes over the training data; fractional allowed. */
  epochs: 1,
  /** Peak learning rate. */
  lr: 2e-5,
  /** AdamW weight decay (not on biases and LayerNorm). */
  l2: 0.01,
  /** Share of the steps spent warming the learning rate up linearly. */
  warmupProportion: 0.1,
  /** Seeds data order, dropout and the head's initialisation. */
  seed: 42,
  /** Checkpoint evaluations without improvement before training stops (0: never stops early). */
  patience: 0,
  /** Dropout on hidden states, attention probabilities and the pooled output. */
  dropout: 0.1,
  /** Global gradient-norm clipping (0 = off). */
  maxGradNorm: 1,
  /** Early stopping watches the main dev metric ("loss": the dev loss). */
  earlyStop: "metric" as "loss" | "metric",
  /** AdamW with bias correction (torch.optim.AdamW); the seed's preset turns it off. */
  biasCorrection: true as boolean,
  /** AdamW epsilon (BERT's 1e-8; the seed's transformers.AdamW: 1e-6). */
  adamEps: 1e-8,
  /** Weight decay on biases and LayerNorm weights too (by parameter name). */
  decayBiases: false as boolean,
  /** Steps between loss readbacks (log line, progress bar, NaN check). */
  logEvery: 10,
} as const;

/** Training a BERTVision head on activations (`glue --model ap|lp|avg`, `reproduce`). */
export const HEAD_DEFAULTS = {
  /** Pooling: the adapter-pooler. */
  model: "ap",
  /**
   * AP adapter size for pooled read-outs; token read-outs (SQuAD) default to the token count
   * (as do all heads with `preset`, the commands: the seed's `adapter_dim = max_seq_length`).
   */
  adapterDim: DEFAULT_ADAPTER_DIM,
  /** One adapter shared by every layer (the paper's best). */
  shared: true,
  /** Span heads: add a Linear of the last layer. */
  skip: false,
  batchSize: 16,
  epochs: 1,
  lr: 1e-3,
  l2: 0,
  warmupProportion: 0.1,
  maxGradNorm: 0,
  /** Early stopping watches the main dev metric ("loss": the dev loss). */
  earlyStop: "metric" as "loss" | "metric",
  /** AdamW with bias correction (torch.optim.AdamW); the seed's preset turns it off. */
  biasCorrection: true as boolean,
  /** AdamW epsilon. */
  adamEps: 1e-6,
  /**
   * Weight decay on biases (and LP's layer logits and scale) too, by parameter name; the seed's
   * heads decay every parameter (their preset turns it on).
   */
  decayBiases: false as boolean,
  seed: 42,
  /**
   * Epochs whose dev evaluation did not improve before training stops; with a dev source and
   * patience > 0, the dev split is evaluated after every epoch (0: never stops early).
   */
  patience: 0,
  /** Train on a seeded subset of this share of the rows. */
  trainFraction: 1,
  logEvery: 20,
  /** Rows per evaluation forward. */
  evalBatchSize: 64,
} as const;

/** Capturing hidden states (`capture`, `reproduce`). */
export const CAPTURE_DEFAULTS = {
  /** "full": every token (BERTVision's layout); "cls": the [CLS] token only. */
  layout: "full" as "full" | "cls",
  /** "f32", or "f16" (half the bytes). */
  dtype: "f32" as "f32" | "f16",
  batchSize: 16,
};

/** SQuAD windows (every stage reading SQuAD: fine-tuning, capture, streams, `reproduce`). */
export const SQUAD_DEFAULTS = {
  /**
   * Overlap in tokens between consecutive windows of a context (`--doc-stride`; the seed's
   * Hugging Face `stride=128`); where it leaves no room to advance (a short `max_seq_length`),
   * half the context room instead (data/features.ts).
   */
  docStride: SQUAD_DOC_STRIDE,
  /**
   * Question pieces kept per window when the library is called without `preset`
   * (run_squad.py's `max_query_length`; the seed's, and the commands', is 0: the whole
   * question; train/squad_settings.ts).
   */
  maxQuestionLength: SQUAD_MAX_QUERY_LENGTH,
} as const;

/** Hyperparameter search (`deno task search`, train/search/study.ts). */
export const SEARCH_DEFAULTS = {
  /** Trials the study runs in all, when neither `--trials` nor `--minutes` is given. */
  trials: 20,
  /** "tpe" (hyperopt's Tree-structured Parzen Estimator, as the seed searched) or "random". */
  sampler: "tpe" as "tpe" | "random",
  /** Random trials before TPE starts (hyperopt's `n_startup_jobs`). */
  startup: 20,
  /** Seeds the sampler. */
  samplerSeed: 1,
  /** Successive halving keeps the best 1/eta of the trials at each rung. */
  eta: 3,
  /** Dev evaluations per trial, at epochs E/eta^(rungs−1), ..., E (1: no early stopping). */
  rungs: 3,
  /** Head trials trained from one pass over a stream (one BERT forward per batch for all). */
  streamTrialsPerPass: 4,
};
