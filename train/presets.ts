/**
 * The seed's settings as presets: for each task, every value BERTVision's own run used, each with
 * where it is in the seed's code (`code/torch/` at {@linkcode SEED_COMMIT}, the last commit of the
 * published era, 2021-02-11): its README commands' `--lr`, `--l2`, `--batch-size 16 --epochs 1`
 * ("To replicate our results"), its defaults for every flag those commands leave out
 * (`models/args.py`, each model's `args.py`), its optimizer (`transformers.AdamW(...,
 * correct_bias=False)`, eps 1e-6, no clipping; BERT decays no bias or LayerNorm weight, the AP heads
 * every parameter), its trainers' early stopping (dev F1; the CoLA head: dev loss), BERT's and each
 * head's token counts, and MRPC's files (the MSR training and test files).
 *
 * `glue`, `squad` and `reproduce` fill every setting not given on the command line from the
 * task's preset (the library does so with `preset: true`; without it, the generic defaults of
 * train/defaults.ts apply); `--dry-run` and the plan every run prints first show each effective
 * value and where it came from ({@linkcode describeSettings}): a flag, the preset (with its
 * `file@commit`), or the library's default. tests/seed_settings_test.ts holds every task's dry
 * run against a table written from the seed's code, not from this file.
 *
 * A command's fixed values are entries of {@linkcode SeedCommand.values}, each a
 * {@linkcode Seeded} value with its origin; a setting another part of the pipeline needs (SQuAD's
 * question length, its null rule) is one more key of {@linkcode SeedValues} and one more entry.
 * @module
 */

/** What early stopping watches: the dev loss (lower is better) or the main dev metric. */
export type EarlyStopOn = "loss" | "metric";

/** The optimizer settings of one training command (BERT fine-tuning or a head). */
export interface TrainSettings {
  /** Examples per optimizer step. */
  batchSize: number;
  /** Passes over the training data. */
  epochs: number;
  /** Peak learning rate. */
  lr: number;
  /** AdamW weight decay. */
  l2: number;
  /** Share of the steps spent warming the learning rate up. */
  warmupProportion: number;
  /** Seeds data order, dropout and initialisation. */
  seed: number;
  /** Evaluations without improvement before training stops (0: never stops early). */
  patience: number;
  /** What early stopping watches: the dev loss or the main dev metric. */
  earlyStop: EarlyStopOn;
  /**
   * AdamW's bias correction: true torch.optim.AdamW; false transformers.AdamW(correct_bias=False)
   * (no correction, weight decay applied after the update), the seed's.
   */
  biasCorrection: boolean;
  /** AdamW's epsilon. */
  adamEps: number;
  /** Clip the global gradient norm to this (0: never clips). */
  maxGradNorm: number;
  /**
   * Weight decay on every parameter (true), or not on biases and LayerNorm weights (false),
   * chosen by parameter name.
   */
  decayBiases: boolean;
}

/** The keys of {@linkcode TrainSettings}, in the order plans show them. */
export const SETTING_KEYS: readonly (keyof TrainSettings)[] = [
  "lr",
  "l2",
  "batchSize",
  "epochs",
  "warmupProportion",
  "seed",
  "patience",
  "earlyStop",
  "biasCorrection",
  "adamEps",
  "maxGradNorm",
  "decayBiases",
];

/** The commit of the seed's code every value here is read from (README results, 2021-02-11). */
export const SEED_COMMIT = "0c7e25c";

/** `file@commit` of the seed's `code/torch/` at {@linkcode SEED_COMMIT}. */
const at = (file: string) => `${file}@${SEED_COMMIT}`;

/**
 * The seed's values every command of its shares, unless its command or module says otherwise:
 * `code/torch/models/args.py` (`--epochs 1 --batch-size 16 --lr 3e-5 --l2 0.01 --seed 1
 * --patience 3`), each model's `args.py` (`--warmup-proportion 0.1`), and its optimizer
 * (`transformers.AdamW(..., correct_bias=False)` with transformers' default eps 1e-6, no
 * gradient clipping in any trainer).
 */
export const SEED_DEFAULTS: Readonly<TrainSettings> = {
  batchSize: 16, // models/args.py: --batch-size, default 16
  epochs: 1, // models/args.py: --epochs, default 1
  lr: 3e-5, // models/args.py: --lr, default 3e-5 (every README command gives its own)
  l2: 0.01, // models/args.py: --l2, default 0.01
  warmupProportion: 0.1, // models/<task>/args.py: --warmup-proportion, default 0.1
  seed: 1, // models/args.py: --seed, default 1
  patience: 3, // models/args.py: --patience, default 3
  earlyStop: "metric", // common/trainers/*: `if dev_f1 > self.best_dev_f1` (ap_cola: dev loss)
  biasCorrection: false, // models/*/__main__.py: AdamW(..., correct_bias=False)
  adamEps: 1e-6, // no eps given: transformers.AdamW's default, 1e-6
  maxGradNorm: 0, // no clip_grad_norm_ in common/trainers/*
  decayBiases: false, // BERT: no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']
};

/** Where in the seed's code each of {@linkcode SEED_DEFAULTS} is. */
export const SEED_DEFAULT_ORIGINS: Readonly<Record<keyof TrainSettings, string>> = {
  batchSize: at("models/args.py"),
  epochs: at("models/args.py"),
  lr: at("models/args.py"),
  l2: at("models/args.py"),
  warmupProportion: at("models/<module>/args.py"),
  seed: at("models/args.py"),
  patience: at("models/args.py"),
  earlyStop: at("common/trainers/bert_class_trainer.py") + " dev F1",
  biasCorrection: at("models/<module>/__main__.py") + " correct_bias=False",
  adamEps: at("models/<module>/__main__.py") + " transformers.AdamW default",
  maxGradNorm: at("common/trainers/*") + " no clipping",
  decayBiases: at("models/<module>/__main__.py") + " no_decay",
};

/** A value of the seed's, and where in its code it is (`file@commit`, what it says). */
export interface Seeded<T> {
  value: T;
  from: string;
}

/**
 * The settings one of the seed's commands fixes: the training settings, and what else its code
 * fixes for that command (sequence length; entries such as SQuAD's question length or null rule
 * are added here as further keys, each with its origin).
 */
export interface SeedValues extends TrainSettings {
  /** Tokens per row: BERT's padding length, or the head's token count (= its adapter size). */
  maxSeqLength: number;
}

/** One of the seed's commands: the values it fixes (each with its origin) and the command. */
export interface SeedCommand {
  /** The command as the seed's README writes it (from `BERTVision/code/torch`). */
  command: string;
  /**
   * Every value the command or its module fixes, with its origin; the settings it leaves out are
   * {@linkcode SEED_DEFAULTS}.
   */
  values: { [K in keyof SeedValues]?: Seeded<SeedValues[K]> };
  /** Where the seed's BERT and head lengths differ: what it stored, and what we do. */
  note?: string;
}

/** A task's preset: the seed's BERT command and its AP command, and its data files. */
export interface SeedPreset {
  /** Our task name. */
  task: string;
  /** The seed's `--dataset` for it. */
  dataset: string;
  /** Fine-tuning BERT (and, in the seed, writing the activations). */
  bert: SeedCommand;
  /** The adapter-pooler on the stored activations. */
  ap: SeedCommand;
  /** The training split the seed read, by name (MRPC: `msr_train`, the MSR training file). */
  trainSplit?: Seeded<string>;
  /** The dev splits the seed evaluated (MRPC: `msr_test`, the labelled MSR test file). */
  devSplits?: Seeded<string[]>;
}

/** The flags' values a README command gives: `--lr`, `--l2`, `--batch-size`, `--epochs`. */
function commandValues(
  command: string,
  v: { lr: number; l2?: number },
): SeedCommand["values"] {
  const readme = `README "${command.replace(/^python -m (\S+).*/, "$1")} ..."@${SEED_COMMIT}`;
  return {
    lr: { value: v.lr, from: readme },
    ...(v.l2 !== undefined ? { l2: { value: v.l2, from: readme } } : {}),
    batchSize: { value: 16, from: readme },
    epochs: { value: 1, from: readme },
  };
}

/**
 * A preset from the seed's two commands: the values they give (`--lr`, `--l2`, batch 16, one
 * epoch), BERT's and the head's token counts, and the head's optimizer: every AP module of the
 * published era decays every parameter (`AdamW(model.parameters(), weight_decay=args.l2)`).
 */
function preset(
  task: string,
  dataset: string,
  v: { lr: number; l2?: number },
  bert: { command: string; tokens: Seeded<number> },
  ap: {
    command: string;
    module: string;
    tokens: Seeded<number>;
    earlyStop?: Seeded<EarlyStopOn>;
    note?: string;
  },
  extra: Pick<SeedPreset, "trainSplit" | "devSplits"> = {},
): SeedPreset {
  const main = at(`models/${ap.module}/__main__.py`);
  return {
    task,
    dataset,
    bert: {
      command: bert.command,
      values: {
        ...(bert.command.startsWith("(none") ? {} : commandValues(bert.command, v)),
        ...(bert.command.startsWith("(none")
          ? { lr: { value: v.lr, from: at("models/args.py") } }
          : {}),
        maxSeqLength: bert.tokens,
      },
    },
    ap: {
      command: ap.command,
      values: {
        ...(ap.command.startsWith("(none") ? {} : commandValues(ap.command, v)),
        ...(ap.command.startsWith("(none")
          ? { lr: { value: v.lr, from: at("models/args.py") } }
          : {}),
        maxSeqLength: ap.tokens,
        decayBiases: { value: true, from: `${main} AdamW(model.parameters())` },
        ...(ap.earlyStop ? { earlyStop: ap.earlyStop } : {}),
      },
      note: ap.note,
    },
    ...extra,
  };
}

const COMMON = "--num-workers 0 --batch-size 16 --epochs 1";
/** BERT's padding in `data/bert_processors/processors.py` `Tokenize_Transform`. */
const BERT_PAIR: Seeded<number> = {
  value: 512,
  from: at("data/bert_processors/processors.py") + " Tokenize_Transform pairs max_length=512",
};
const BERT_SINGLE: Seeded<number> = {
  value: 64,
  from: at("data/bert_processors/processors.py") + " Tokenize_Transform single max_length=64",
};
const tokensIn = (file: string, what: string, value: number): Seeded<number> => ({
  value,
  from: `${at(file)} ${what}`,
});
/**
 * Where the seed's head reads fewer tokens than its BERT was trained on: its `gen_embeds`
 * script tokenized the split again at the head's length, fine-tuned a BERT of its own on it (one
 * epoch, the same optimizer) and stored that BERT's hidden states. We capture from the one BERT
 * fine-tuned at BERT's length (the README's BERT row), re-tokenizing at the head's length.
 */
const shorterHead = (script: string, t: number) =>
  `BERT ${512} tokens, head ${t}: the seed's ${at(`gen_embeds/${script}`)} fine-tuned its own ` +
  `BERT at ${t} tokens and stored its hidden states; we capture from the one BERT fine-tuned ` +
  `at 512 (the BERT row), re-tokenized at ${t}`;

/** The table: each task's values, beside the seed's commands and code they come from. */
export const SEED_PRESETS: Readonly<Record<string, SeedPreset>> = Object.fromEntries(
  [
    preset(
      "squad",
      "SQuAD",
      { lr: 2e-5, l2: 1.0 }, // --lr 2e-5 --l2 1.0
      {
        command: "python -m models.bert --dataset SQuAD --model bert-base-uncased " +
          "--num-workers 4 --batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0",
        tokens: tokensIn("utils/squad_preprocess.py", "max_length = 384", 384),
      },
      {
        command: "python -m models.adapter_pooler --dataset SQuADH5 --model AP " +
          "--num-workers 0 --batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0",
        module: "adapter_pooler",
        tokens: tokensIn("models/adapter_pooler/args.py", "--max-seq-length 384", 384),
        earlyStop: { value: "metric", from: at("common/trainers/H5_trainer.py") + " dev F1" },
      },
    ),
    preset(
      "sst2",
      "SST",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.sst --dataset SST --model SST ${COMMON} --lr 1e-5`,
        tokens: tokensIn("data/bert_processors/sst_processor.py", "max_length=64", 64),
      },
      {
        command: `python -m models.ap_sst --dataset SSTH5 --model ap_sst ${COMMON} --lr 1e-5`,
        module: "ap_sst",
        tokens: tokensIn("models/ap_sst/__main__.py", "n_tokens=64", 64),
      },
    ),
    preset(
      "mrpc",
      "MSR",
      { lr: 3e-5, l2: 1.0 }, // --lr 3e-5 --l2 1.0
      {
        command: `python -m models.msr --dataset MSR --model msr ${COMMON} --lr 3e-5 --l2 1.0`,
        tokens: BERT_PAIR,
      },
      {
        command:
          `python -m models.ap_msr --dataset MSRH5 --model ap_msr ${COMMON} --lr 3e-5 --l2 1.0`,
        module: "ap_msr",
        tokens: tokensIn("models/ap_msr/__main__.py", "n_tokens=512", 512),
      },
      {
        trainSplit: {
          value: "msr_train",
          from: at("data/bert_processors/processors.py") + " MSR: msr_paraphrase_train.txt",
        },
        devSplits: {
          value: ["msr_test"],
          from: at("data/bert_processors/processors.py") + " MSR dev: msr_paraphrase_test.txt",
        },
      },
    ),
    preset(
      "rte",
      "RTE",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.rte --dataset RTE --model RTE ${COMMON} --lr 1e-5`,
        tokens: BERT_PAIR,
      },
      {
        command: `python -m models.ap_rte --dataset RTEH5 --model ap_rte ${COMMON} --lr 1e-5`,
        module: "ap_rte",
        tokens: tokensIn("models/ap_rte/__main__.py", "n_tokens=512", 512),
      },
    ),
    preset(
      "qnli",
      "qnli",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.qnli --dataset qnli --model qnli ${COMMON} --lr 1e-5`,
        tokens: BERT_PAIR,
      },
      {
        command: `python -m models.ap_qnli --dataset QNLIH5 --model ap_qnli ${COMMON} --lr 1e-5`,
        module: "ap_qnli",
        tokens: tokensIn("models/ap_qnli/args.py", "--n_tokens 100", 100),
        note: shorterHead("qnli_embeds.py", 100),
      },
    ),
    preset(
      "qqp",
      "QQPairs",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.qqpairs --dataset QQPairs --model QQPairs ${COMMON} --lr 1e-5`,
        tokens: BERT_PAIR,
      },
      {
        // As the seed's README writes it: `--dataset QQPairs`, without H5.
        command:
          `python -m models.ap_qqpairs --dataset QQPairs --model ap_qqpairs ${COMMON} --lr 1e-5`,
        module: "ap_qqpairs",
        tokens: tokensIn("models/ap_qqpairs/__main__.py", "n_tokens=512", 512),
        note: `the seed's ${at("gen_embeds/qqpairs_embeds.py")} stores 55 tokens, which its ` +
          `512-token head cannot read; we capture at the head's 512`,
      },
    ),
    preset(
      "stsb",
      "STSB",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.stsb --dataset STSB --model STSB ${COMMON} --lr 1e-5`,
        tokens: BERT_PAIR,
      },
      {
        command: `python -m models.ap_stsb --dataset STSBH5 --model ap_stsb ${COMMON} --lr 1e-5`,
        module: "ap_stsb",
        tokens: tokensIn("models/ap_stsb/args.py", "--max-seq-length 70", 70),
        note: shorterHead("stsb_embeds.py", 70),
      },
    ),
    preset(
      "cola",
      "COLA",
      { lr: 1e-5 }, // --lr 1e-5
      {
        command: `python -m models.cola --dataset COLA --model COLA ${COMMON} --lr 1e-5`,
        tokens: BERT_SINGLE,
      },
      {
        command: `python -m models.ap_cola --dataset COLAH5 --model ap_cola ${COMMON} --lr 1e-5`,
        module: "ap_cola",
        tokens: tokensIn("models/ap_cola/args.py", "--max-seq-length 64", 64),
        earlyStop: {
          value: "loss",
          from: at("common/trainers/H5_sst_trainer.py") + " ap_cola: dev_loss < best_dev_loss",
        },
      },
    ),
    preset(
      "mnli",
      "MNLI",
      { lr: 1e-5, l2: 1.0 }, // --lr 1e-5 --l2 1.0
      {
        command: `python -m models.mnli --dataset MNLI --model MNLI ${COMMON} --lr 1e-5 --l2 1.0`,
        tokens: BERT_PAIR,
      },
      {
        command:
          `python -m models.ap_mnli --dataset MNLIH5 --model ap_mnli ${COMMON} --lr 1e-5 --l2 1.0`,
        module: "ap_mnli",
        tokens: tokensIn("models/ap_mnli/args.py", "--max-seq-length 100", 100),
        note: shorterHead("mnli_embeds.py", 100),
      },
    ),
    preset(
      "wnli",
      "WNLI",
      { lr: SEED_DEFAULTS.lr }, // no README command: models/args.py's --lr 3e-5
      {
        command:
          "(none in the seed's README; python -m models.wnli with models/args.py's defaults)",
        tokens: BERT_PAIR,
      },
      {
        command: "(none in the seed's README and no ap_wnli: the head reads BERT's 512 tokens)",
        module: "ap_*", // every AP module of the era decays every parameter
        tokens: BERT_PAIR,
      },
    ),
  ].map((p) => [p.task, p]),
);

/** The preset of a task, or undefined for a task the seed did not run. */
export function presetFor(task: string): SeedPreset | undefined {
  return Object.hasOwn(SEED_PRESETS, task) ? SEED_PRESETS[task] : undefined;
}

/**
 * Every setting of the seed's command for `task` (`stage` "bert": fine-tuning, "ap": the head):
 * the command's values over the seed's defaults. A task without a preset gets the defaults.
 */
export function seedSettings(task: string, stage: "bert" | "ap"): TrainSettings {
  const values = presetFor(task)?.[stage].values ?? {};
  const out = { ...SEED_DEFAULTS } as Record<keyof TrainSettings, unknown>;
  for (const k of SETTING_KEYS) {
    const v = values[k];
    if (v) out[k] = v.value;
  }
  return out as unknown as TrainSettings;
}

/** Where in the seed's code each of {@linkcode seedSettings}' values is. */
export function seedOrigins(
  task: string,
  stage: "bert" | "ap",
): Record<keyof TrainSettings, string> {
  const values = presetFor(task)?.[stage].values ?? {};
  const out = { ...SEED_DEFAULT_ORIGINS };
  for (const k of SETTING_KEYS) {
    const v = values[k];
    if (v) out[k] = v.from;
  }
  return out;
}

/**
 * The seed's token count for a stage of `task` (BERT's padding, or the head's tokens), with its
 * origin; undefined for a task the seed did not run.
 */
export function seedSeqLength(task: string, stage: "bert" | "ap"): Seeded<number> | undefined {
  return presetFor(task)?.[stage].values.maxSeqLength;
}

/** Where an effective setting came from. */
export type Origin = "given" | "preset" | "default";

/** Effective settings and the origin of each. */
export interface ResolvedSettings {
  values: TrainSettings;
  from: Record<keyof TrainSettings, Origin>;
  /** For each value from the preset, where in the seed's code it is (`file@commit ...`). */
  seedOrigin?: Partial<Record<keyof TrainSettings, string>>;
  /** The preset used (with `preset`), for the plan's line naming the seed's command. */
  preset?: { task: string; command: string };
}

/**
 * The effective settings of a run: each value `given` (not undefined) wins; the rest come from
 * the seed's command for `task` when `usePreset`, else from `defaults` (train/defaults.ts).
 * `given` may be a command's whole options: only the {@linkcode SETTING_KEYS} are read.
 */
export function resolveSettings(
  task: string,
  stage: "bert" | "ap",
  given: { [K in keyof TrainSettings]?: TrainSettings[K] | undefined },
  usePreset: boolean,
  defaults: TrainSettings,
): ResolvedSettings {
  const base = usePreset ? seedSettings(task, stage) : defaults;
  const origins = seedOrigins(task, stage);
  const values = {} as Record<keyof TrainSettings, unknown>;
  const from = {} as Record<keyof TrainSettings, Origin>;
  const seedOrigin: Partial<Record<keyof TrainSettings, string>> = {};
  for (const k of SETTING_KEYS) {
    const v = given[k];
    values[k] = v !== undefined ? v : base[k];
    from[k] = v !== undefined ? "given" : usePreset ? "preset" : "default";
    if (from[k] === "preset") seedOrigin[k] = origins[k];
  }
  const c = presetFor(task)?.[stage];
  return {
    values: values as unknown as TrainSettings,
    from,
    ...(usePreset ? { seedOrigin } : {}),
    preset: usePreset
      ? { task, command: c?.command ?? "(no preset for this task: the seed's defaults)" }
      : undefined,
  };
}

/** A number as the seed's commands write it: 1e-5, 0.01, 16. */
export function fmtSetting(x: number): string {
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x);
}

/** How plans name each setting. */
export const SETTING_LABELS: Readonly<Record<keyof TrainSettings, string>> = {
  lr: "lr",
  l2: "l2",
  batchSize: "batch",
  epochs: "epochs",
  warmupProportion: "warmup",
  seed: "seed",
  patience: "patience",
  earlyStop: "early-stop",
  biasCorrection: "bias-correction",
  adamEps: "eps",
  maxGradNorm: "max-grad-norm",
  decayBiases: "decay-biases",
};

/** The flag of each setting (the plan names it for a given value). */
export const SETTING_FLAGS: Readonly<Record<keyof TrainSettings, string>> = {
  lr: "--lr",
  l2: "--l2",
  batchSize: "--batch-size",
  epochs: "--epochs",
  warmupProportion: "--warmup-proportion",
  seed: "--seed",
  patience: "--patience",
  earlyStop: "--early-stop",
  biasCorrection: "--bias-correction",
  adamEps: "--adam-eps",
  maxGradNorm: "--max-grad-norm",
  decayBiases: "--decay-biases",
};

/** A setting's value as plans print it (`1.0`, `1e-5`, `off`, `metric`). */
export function fmtSettingValue<K extends keyof TrainSettings>(k: K, x: TrainSettings[K]): string {
  if (typeof x === "boolean") return x ? "on" : "off";
  if (typeof x === "string") return x;
  const n = x as number;
  if ((k === "patience" || k === "maxGradNorm") && n === 0) return "off";
  // Rates as the seed writes them (`--l2 1.0`); counts as integers.
  const rate = (k === "lr" || k === "l2" || k === "warmupProportion") && Number.isInteger(n);
  return rate ? n.toFixed(1) : fmtSetting(n);
}

/**
 * The plan's lines for a run's settings: each value with where it came from, e.g.
 * `settings: lr 1e-5 (preset), l2 0.01 (preset), batch 32 (--batch-size), ...`, then the
 * seed's command the preset comes from and, for the values from the preset, where in the seed's
 * code each is (grouped by place: `seed's code: lr, batch, epochs: README "models.sst ..."@0c7e25c;
 * ...`). `flags` names the flag of a given value (default {@linkcode SETTING_FLAGS}).
 */
export function describeSettings(
  r: ResolvedSettings,
  flags: Partial<Record<keyof TrainSettings, string>> = {},
  extra: string[] = [],
): string[] {
  const flagOf = { ...SETTING_FLAGS, ...flags };
  const parts = SETTING_KEYS.map((k) => {
    const from = r.from[k] === "given" ? flagOf[k] : r.from[k];
    return `${SETTING_LABELS[k]} ${fmtSettingValue(k, r.values[k])} (${from})`;
  });
  const lines = [`settings: ${[...parts, ...extra].join(", ")}`];
  if (r.preset) lines.push(`preset ${r.preset.task}: ${r.preset.command}`);
  const byPlace = new Map<string, string[]>();
  for (const k of SETTING_KEYS) {
    const o = r.seedOrigin?.[k];
    if (o) byPlace.set(o, [...byPlace.get(o) ?? [], SETTING_LABELS[k]]);
  }
  if (byPlace.size) {
    lines.push(
      `seed's code: ${[...byPlace].map(([o, ks]) => `${ks.join(", ")}: ${o}`).join("; ")}`,
    );
  }
  return lines;
}
