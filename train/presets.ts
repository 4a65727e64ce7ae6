/**
 * The seed's settings as presets: for each task, the values BERTVision's own commands used
 * (its README, `code/torch/README.md`, "To replicate our results"), each beside the command it
 * comes from, and the seed's defaults for every flag those commands leave out
 * (`code/torch/models/args.py` and each model's `args.py`).
 *
 * `glue`, `squad` and `reproduce` fill every setting not given on the command line from the
 * task's preset (the library does so with `preset: true`; without it, the generic defaults of
 * train/defaults.ts apply); `--dry-run` and the plan every run prints first show each effective
 * value and where it came from ({@linkcode describeSettings}).
 *
 * What the seed's commands give (all with `--batch-size 16 --epochs 1`; the AP command of each
 * task repeats its BERT command's values):
 *
 * | task | the seed's `--dataset` | `--lr` | `--l2` |
 * | ---- | ---------------------- | ------ | ------ |
 * | squad | SQuAD | 2e-5 | 1.0 |
 * | sst2 | SST | 1e-5 | (0.01) |
 * | mrpc | MSR | 3e-5 | 1.0 |
 * | rte, qnli, qqp, stsb, cola | RTE qnli QQPairs STSB COLA | 1e-5 | (0.01) |
 * | mnli | MNLI | 1e-5 | 1.0 |
 * | wnli (no command in the seed's README) | WNLI | (3e-5) | (0.01) |
 *
 * Values in parentheses are the seed's defaults. Flags no command gives take the seed's
 * defaults: `--l2 0.01`, `--seed 1`, `--warmup-proportion 0.1`, `--patience 3`; the AP
 * adapter size, when not given, is `--max-seq-length` (`if args.adapter_dim == 0:
 * args.adapter_dim = args.max_seq_length`). A task of the caller's (not one of the seed's)
 * takes the seed's defaults for everything, `--lr 3e-5` included.
 * @module
 */

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
];

/**
 * The seed's defaults for flags its commands do not give: `code/torch/models/args.py`
 * (`--epochs 1 --batch-size 16 --lr 3e-5 --l2 0.01 --seed 1 --patience 3`) and each model's
 * `args.py` (`--warmup-proportion 0.1`).
 */
export const SEED_DEFAULTS: Readonly<TrainSettings> = {
  batchSize: 16, // models/args.py: --batch-size, default 16
  epochs: 1, // models/args.py: --epochs, default 1
  lr: 3e-5, // models/args.py: --lr, default 3e-5 (every README command gives its own)
  l2: 0.01, // models/args.py: --l2, default 0.01
  warmupProportion: 0.1, // models/<task>/args.py: --warmup-proportion, default 0.1
  seed: 1, // models/args.py: --seed, default 1
  patience: 3, // models/args.py: --patience, default 3
};

/** One of the seed's commands: the values it gives and the command itself. */
export interface SeedCommand {
  /** `--lr` (or the seed's default where the command gives none). */
  lr: number;
  /** `--l2` (or the seed's default 0.01 where the command gives none). */
  l2: number;
  /** `--batch-size`. */
  batchSize: number;
  /** `--epochs`. */
  epochs: number;
  /** The command as the seed's README writes it (from `BERTVision/code/torch`). */
  command: string;
}

/** A task's preset: the seed's BERT command and its AP command. */
export interface SeedPreset {
  /** Our task name. */
  task: string;
  /** The seed's `--dataset` for it. */
  dataset: string;
  /** Fine-tuning BERT (and, in the seed, writing the activations). */
  bert: SeedCommand;
  /** The adapter-pooler on the stored activations. */
  ap: SeedCommand;
}

/** A preset whose BERT and AP commands give the same values (as every one of the seed's does). */
function preset(
  task: string,
  dataset: string,
  values: { lr: number; l2?: number },
  bert: string,
  ap: string,
): SeedPreset {
  const v = { lr: values.lr, l2: values.l2 ?? SEED_DEFAULTS.l2, batchSize: 16, epochs: 1 };
  return { task, dataset, bert: { ...v, command: bert }, ap: { ...v, command: ap } };
}

const COMMON = "--num-workers 0 --batch-size 16 --epochs 1";

/** The table: each task's values, beside the seed's commands they come from. */
export const SEED_PRESETS: Readonly<Record<string, SeedPreset>> = Object.fromEntries(
  [
    preset(
      "squad",
      "SQuAD",
      { lr: 2e-5, l2: 1.0 }, // --lr 2e-5 --l2 1.0
      "python -m models.bert --dataset SQuAD --model bert-base-uncased --num-workers 4 " +
        "--batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0",
      "python -m models.adapter_pooler --dataset SQuADH5 --model AP --num-workers 0 " +
        "--batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0",
    ),
    preset(
      "sst2",
      "SST",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.sst --dataset SST --model SST ${COMMON} --lr 1e-5`,
      `python -m models.ap_sst --dataset SSTH5 --model ap_sst ${COMMON} --lr 1e-5`,
    ),
    preset(
      "mrpc",
      "MSR",
      { lr: 3e-5, l2: 1.0 }, // --lr 3e-5 --l2 1.0
      `python -m models.msr --dataset MSR --model msr ${COMMON} --lr 3e-5 --l2 1.0`,
      `python -m models.ap_msr --dataset MSRH5 --model ap_msr ${COMMON} --lr 3e-5 --l2 1.0`,
    ),
    preset(
      "rte",
      "RTE",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.rte --dataset RTE --model RTE ${COMMON} --lr 1e-5`,
      `python -m models.ap_rte --dataset RTEH5 --model ap_rte ${COMMON} --lr 1e-5`,
    ),
    preset(
      "qnli",
      "qnli",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.qnli --dataset qnli --model qnli ${COMMON} --lr 1e-5`,
      `python -m models.ap_qnli --dataset QNLIH5 --model ap_qnli ${COMMON} --lr 1e-5`,
    ),
    preset(
      "qqp",
      "QQPairs",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.qqpairs --dataset QQPairs --model QQPairs ${COMMON} --lr 1e-5`,
      `python -m models.ap_qqpairs --dataset QQPairsH5 --model ap_qqpairs ${COMMON} --lr 1e-5`,
    ),
    preset(
      "stsb",
      "STSB",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.stsb --dataset STSB --model STSB ${COMMON} --lr 1e-5`,
      `python -m models.ap_stsb --dataset STSBH5 --model ap_stsb ${COMMON} --lr 1e-5`,
    ),
    preset(
      "cola",
      "COLA",
      { lr: 1e-5 }, // --lr 1e-5
      `python -m models.cola --dataset COLA --model COLA ${COMMON} --lr 1e-5`,
      `python -m models.ap_cola --dataset COLAH5 --model ap_cola ${COMMON} --lr 1e-5`,
    ),
    preset(
      "mnli",
      "MNLI",
      { lr: 1e-5, l2: 1.0 }, // --lr 1e-5 --l2 1.0
      `python -m models.mnli --dataset MNLI --model MNLI ${COMMON} --lr 1e-5 --l2 1.0`,
      `python -m models.ap_mnli --dataset MNLIH5 --model ap_mnli ${COMMON} --lr 1e-5 --l2 1.0`,
    ),
    preset(
      "wnli",
      "WNLI",
      { lr: SEED_DEFAULTS.lr }, // no README command: models/args.py's --lr 3e-5
      "(none in the seed's README; python -m models.wnli with models/args.py's defaults)",
      "(none in the seed's README; python -m models.ap_wnli with models/args.py's defaults)",
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
  const c = presetFor(task)?.[stage];
  return {
    ...SEED_DEFAULTS,
    ...(c ? { lr: c.lr, l2: c.l2, batchSize: c.batchSize, epochs: c.epochs } : {}),
  };
}

/** Where an effective setting came from. */
export type Origin = "given" | "preset" | "default";

/** Effective settings and the origin of each. */
export interface ResolvedSettings {
  values: TrainSettings;
  from: Record<keyof TrainSettings, Origin>;
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
  given: Partial<Record<keyof TrainSettings, number | undefined>>,
  usePreset: boolean,
  defaults: TrainSettings,
): ResolvedSettings {
  const base = usePreset ? seedSettings(task, stage) : defaults;
  const values = {} as TrainSettings;
  const from = {} as Record<keyof TrainSettings, Origin>;
  for (const k of SETTING_KEYS) {
    const v = given[k];
    values[k] = v !== undefined ? v : base[k];
    from[k] = v !== undefined ? "given" : usePreset ? "preset" : "default";
  }
  const c = presetFor(task)?.[stage];
  return {
    values,
    from,
    preset: usePreset
      ? { task, command: c?.command ?? "(no preset for this task: the seed's defaults)" }
      : undefined,
  };
}

/** A number as the seed's commands write it: 1e-5, 0.01, 16. */
export function fmtSetting(x: number): string {
  return x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x);
}

const LABELS: Record<keyof TrainSettings, string> = {
  lr: "lr",
  l2: "l2",
  batchSize: "batch",
  epochs: "epochs",
  warmupProportion: "warmup",
  seed: "seed",
  patience: "patience",
};

/**
 * The plan's lines for a run's settings: each value with where it came from, e.g.
 * `settings: lr 1e-5 (preset), l2 0.01 (preset), batch 32 (--batch-size), ...`, then the
 * seed's command the preset comes from. `flags` names the flag of a given value (default
 * `--lr`, `--l2`, `--batch-size`, `--epochs`, `--warmup-proportion`, `--seed`, `--patience`).
 */
export function describeSettings(
  r: ResolvedSettings,
  flags: Partial<Record<keyof TrainSettings, string>> = {},
  extra: string[] = [],
): string[] {
  const flagOf: Record<keyof TrainSettings, string> = {
    lr: "--lr",
    l2: "--l2",
    batchSize: "--batch-size",
    epochs: "--epochs",
    warmupProportion: "--warmup-proportion",
    seed: "--seed",
    patience: "--patience",
    ...flags,
  };
  const parts = SETTING_KEYS.map((k) => {
    const from = r.from[k] === "given" ? flagOf[k] : r.from[k];
    const x = r.values[k];
    // Rates as the seed writes them (`--l2 1.0`); counts as integers.
    const rate = (k === "lr" || k === "l2" || k === "warmupProportion") && Number.isInteger(x);
    const v = k === "patience" && x === 0 ? "off" : rate ? x.toFixed(1) : fmtSetting(x);
    return `${LABELS[k]} ${v} (${from})`;
  });
  const lines = [`settings: ${[...parts, ...extra].join(", ")}`];
  if (r.preset) lines.push(`preset ${r.preset.task}: ${r.preset.command}`);
  return lines;
}
