// The seed's settings, held against a table written here from the seed's code (github
// cbenge509/BERTVision, `code/torch/`, at 0c7e25c, 2021-02-11, the last README-results commit of
// the published era; dfdafad, 02-07, gives the same values except where noted), NOT read from
// train/presets.ts: `deno task reproduce --task T --dry-run` for every task prints, for BERT and
// for the head, every training setting, the token counts and the data files, and each must be
// the table's. Then a mutation check: perturbing any one value of the presets in memory (each
// command's values, the shared defaults, MRPC's files) makes the same comparison fail.
// Tiny fixtures (a 1-layer BERT, a few rows per task); no GPU work beyond the plan's reads.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticMnli, writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";
import { getTask, TASK_NAMES } from "../tasks/mod.ts";
import type { GlueTaskWithSpec } from "../tasks/glue.ts";
import { planReproduce } from "../train/reproduce.ts";
import { planFineTune } from "../train/finetune.ts";
import { formatPlan } from "../train/plan.ts";
import { reproduceOptions } from "../scripts/reproduce.ts";
import { FINETUNE_DEFAULTS, HEAD_DEFAULTS } from "../train/defaults.ts";
import {
  describeSquadSettings,
  resolveSquadSettings,
  SQUAD_SEED_SETTINGS,
} from "../train/squad_settings.ts";
import {
  describeSettings,
  presetFor,
  resolveSettings,
  SEED_DEFAULTS,
  SEED_PRESETS,
  seedSeqLength,
} from "../train/presets.ts";

// ---- The table, from the seed's code (file@commit beside each value) ----------------------

/** What every BERT command of the seed's runs with (unless its row below says otherwise). */
const BERT_COMMON = {
  batch: "16", // README.md@0c7e25c: every command `--batch-size 16`
  epochs: "1", // README.md@0c7e25c: every command `--epochs 1`
  warmup: "0.1", // models/<module>/args.py@0c7e25c: --warmup-proportion default 0.1
  seed: "1", // models/args.py@0c7e25c: --seed default 1
  patience: "3", // models/args.py@0c7e25c: --patience default 3
  "early-stop": "metric", // common/trainers/bert_class_trainer.py@0c7e25c: `if dev_f1 > self.best_dev_f1`
  "bias-correction": "off", // models/sst/__main__.py@0c7e25c (every BERT module): AdamW(..., correct_bias=False)
  eps: "1e-6", // ibid.: no eps given, transformers.AdamW's default eps=1e-6
  "max-grad-norm": "off", // common/trainers/*.py@0c7e25c: no clip_grad_norm_ anywhere
  "decay-biases": "off", // models/sst/__main__.py@0c7e25c: no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']
};

/** What every AP command of the seed's runs with (unless its row below says otherwise). */
const AP_COMMON = {
  ...BERT_COMMON,
  // common/trainers/H5_sst_trainer.py@0c7e25c: dev micro-F1 (= accuracy), STS-B Spearman
  "early-stop": "metric",
  // models/ap_sst/__main__.py@0c7e25c (every ap_*): AdamW(model.parameters(), correct_bias=False,
  // weight_decay=args.l2): every parameter decays, biases included
  "decay-biases": "on",
};

/** SQuAD's answer settings as the plan's `squad:` line words them. */
const SQUAD_TABLE = {
  // utils/squad_preprocess.py@dfdafad,0c7e25c: truncation="only_second" (the question is never cut)
  question: "whole",
  // ibid. postprocess_qa_predictions: `if min_null_score is None or min_null_score <
  // feature_null_score: min_null_score = feature_null_score` keeps the LARGEST
  "null score": "max",
  // ibid.: no max-context check (no token_is_max_context anywhere)
  "max-context": "off",
  // code/tensorflow/utils/evaluation.py@dfdafad (SquadModelEvaluation), used by
  // notebooks/model_analysis_section.ipynb ensemble_two_models_max: independent start/end argmax
  "ensemble rule": "seed",
};

/**
 * Per task: lr and l2 (README.md@0c7e25c "To replicate our results", the same in the BERT and AP
 * command; l2 0.01 = models/args.py@0c7e25c's default where the command gives none), BERT's
 * tokens and the head's, and the seed's data files.
 */
const TABLE: Record<string, {
  lr: string;
  l2: string;
  bertTokens: number;
  apTokens: number;
  ap?: Partial<typeof AP_COMMON>;
  train?: string;
  dev?: string;
  squad?: Record<string, string>;
}> = {
  // README: models.bert / models.adapter_pooler --lr 2e-5 --l2 1.0;
  // utils/squad_preprocess.py@0c7e25c max_length = 384; models/adapter_pooler/args.py@0c7e25c
  // --max-seq-length default 384; common/trainers/H5_trainer.py@0c7e25c: dev F1
  squad: { lr: "2e-5", l2: "1.0", bertTokens: 384, apTokens: 384, squad: SQUAD_TABLE },
  // README: models.sst / models.ap_sst --lr 1e-5; data/bert_processors/sst_processor.py@0c7e25c
  // max_length=64; models/ap_sst/__main__.py@0c7e25c SST_AP(n_tokens=64)
  sst2: { lr: "1e-5", l2: "0.01", bertTokens: 64, apTokens: 64 },
  // README: models.msr / models.ap_msr --lr 3e-5 --l2 1.0; data/bert_processors/processors.py
  // @0c7e25c Tokenize_Transform pairs max_length=512, MSR train msr_paraphrase_train.txt and dev
  // msr_paraphrase_test.txt; models/ap_msr/__main__.py@0c7e25c n_tokens=512
  mrpc: {
    lr: "3e-5",
    l2: "1.0",
    bertTokens: 512,
    apTokens: 512,
    train: "MRPC/msr_paraphrase_train.txt",
    dev: "msr_test",
  },
  // README --lr 1e-5; processors.py@0c7e25c pairs 512; models/ap_rte/__main__.py@0c7e25c n_tokens=512
  rte: { lr: "1e-5", l2: "0.01", bertTokens: 512, apTokens: 512 },
  // README --lr 1e-5; processors.py@0c7e25c pairs 512; models/ap_qnli/args.py@0c7e25c --n_tokens
  // default 100 (= gen_embeds/qnli_embeds.py@0c7e25c max_length=100; dfdafad's ap_qnli: 512)
  qnli: { lr: "1e-5", l2: "0.01", bertTokens: 512, apTokens: 100 },
  // README --lr 1e-5; processors.py@0c7e25c pairs 512; models/ap_qqpairs/__main__.py@0c7e25c n_tokens=512
  qqp: { lr: "1e-5", l2: "0.01", bertTokens: 512, apTokens: 512 },
  // README --lr 1e-5; processors.py@0c7e25c pairs 512; models/ap_stsb/args.py@0c7e25c
  // --max-seq-length default 70 (= gen_embeds/stsb_embeds.py@0c7e25c max_length=70)
  stsb: { lr: "1e-5", l2: "0.01", bertTokens: 512, apTokens: 70 },
  // README --lr 1e-5; processors.py@0c7e25c single sentences 64; models/ap_cola/args.py@0c7e25c
  // --max-seq-length default 64; H5_sst_trainer.py@0c7e25c ap_cola: `if dev_loss < self.best_dev_loss`
  cola: { lr: "1e-5", l2: "0.01", bertTokens: 64, apTokens: 64, ap: { "early-stop": "loss" } },
  // README --lr 1e-5 --l2 1.0; processors.py@0c7e25c pairs 512; models/ap_mnli/args.py@0c7e25c
  // --max-seq-length default 100 (= gen_embeds/mnli_embeds.py@0c7e25c max_length=100)
  mnli: { lr: "1e-5", l2: "1.0", bertTokens: 512, apTokens: 100 },
  // No README command: models/args.py@0c7e25c --lr default 3e-5, --l2 0.01; processors.py
  // @0c7e25c WNLI pairs 512; no ap_wnli module (the head reads BERT's tokens)
  wnli: { lr: "3e-5", l2: "0.01", bertTokens: 512, apTokens: 512 },
};

/** `squad: question whole (preset), null score max over windows (preset), ...` → a record. */
function parseSquad(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.replace(/^\s*squad: /, "").split(/, /)) {
    const m = part.match(/^(question|null score|max-context|ensemble rule) (\S+)/);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// ---- The comparison ------------------------------------------------------------------------

/** What a plan says about one task's settings. */
interface Effective {
  bert: Record<string, string>;
  ap: Record<string, string>;
  tokens: { bert: number; ap: number };
  /** The training file (relative to the data directory) or "train"; the dev splits. */
  train: string;
  dev: string;
  /** SQuAD's answer settings (the plan's `squad:` line), absent for other tasks. */
  squad?: Record<string, string>;
}

/** `settings: lr 1e-5 (preset), l2 0.01 (preset), ...` → { lr: "1e-5", l2: "0.01", ... }. */
function parseSettings(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of line.replace(/^\s*settings: /, "").split(/, (?=[a-z0-9-]+ )/)) {
    const m = part.match(/^([a-z0-9-]+) (\S+)/);
    if (m && m[1] !== "adapter") out[m[1]] = m[2];
  }
  return out;
}

/** Every difference between what a plan says and the table (empty: the seed's settings). */
function compare(task: string, e: Effective): string[] {
  const row = TABLE[task];
  const want = {
    bert: { ...BERT_COMMON, lr: row.lr, l2: row.l2 } as Record<string, string>,
    ap: { ...AP_COMMON, lr: row.lr, l2: row.l2, ...row.ap } as Record<string, string>,
  };
  const diffs: string[] = [];
  for (const stage of ["bert", "ap"] as const) {
    const keys = new Set([...Object.keys(want[stage]), ...Object.keys(e[stage])]);
    for (const k of keys) {
      if (want[stage][k] !== e[stage][k]) {
        diffs.push(`${task} ${stage} ${k}: ${e[stage][k]} (the seed's: ${want[stage][k]})`);
      }
    }
  }
  if (e.tokens.bert !== row.bertTokens) diffs.push(`${task} BERT tokens ${e.tokens.bert}`);
  if (e.tokens.ap !== row.apTokens) diffs.push(`${task} head tokens ${e.tokens.ap}`);
  const train = row.train ?? "train";
  const dev = row.dev ?? getTask(task).devSplits.join(",");
  if (e.train !== train) diffs.push(`${task} train ${e.train} (the seed's: ${train})`);
  if (e.dev !== dev) diffs.push(`${task} dev ${e.dev} (the seed's: ${dev})`);
  const squad = { ...row.squad }, got = { ...e.squad };
  for (const k of new Set([...Object.keys(squad), ...Object.keys(got)])) {
    if (squad[k] !== got[k]) diffs.push(`${task} squad ${k}: ${got[k]} (the seed's: ${squad[k]})`);
  }
  return diffs;
}

/** The settings a `reproduce --dry-run` text states. */
function parsePlan(task: string, text: string, dataDir: string): Effective {
  const settings = text.split("\n").filter((l) => /^\s*settings: /.test(l));
  ok(settings.length === 2, `two settings lines (BERT, head):\n${text}`);
  const tokens = text.match(/tokens: BERT (\d+) \([^\n]*\), head (\d+) \(/);
  ok(tokens, `a tokens line:\n${text}`);
  const data = text.match(/^\s*data: train (\S+) \([^\n]*\), dev (\S+) \(/m);
  const train = data ? data[1].replace(`${dataDir}/`, "") : "train";
  const squad = text.split("\n").filter((l) => /^\s*squad: /.test(l));
  ok(squad.length <= 1, `at most one squad line:\n${text}`);
  return {
    ...(squad.length ? { squad: parseSquad(squad[0]) } : {}),
    bert: parseSettings(settings[0]),
    ap: parseSettings(settings[1]),
    tokens: { bert: Number(tokens[1]), ap: Number(tokens[2]) },
    train,
    dev: data ? data[2] : getTask(task).devSplits.join(","),
  };
}

/**
 * The same statement, made in memory from the presets by the functions the plan prints with
 * (train/presets.ts `resolveSettings`, `describeSettings`, `seedSeqLength`), for the mutation
 * check: what `reproduce --dry-run` would print with these presets.
 */
function fromPresets(task: string): Effective {
  const line = (stage: "bert" | "ap") =>
    describeSettings(
      resolveSettings(task, stage, {}, true, stage === "bert" ? FINETUNE_DEFAULTS : HEAD_DEFAULTS),
    )[0];
  const p = presetFor(task)!;
  const squad = getTask(task).format === "squad-json"
    ? { squad: parseSquad(describeSquadSettings(resolveSquadSettings(undefined, true))) }
    : {};
  return {
    ...squad,
    bert: parseSettings(line("bert")),
    ap: parseSettings(line("ap")),
    tokens: { bert: seedSeqLength(task, "bert")!.value, ap: seedSeqLength(task, "ap")!.value },
    train: p.trainSplit ? getTask(task).fileFor(p.trainSplit.value) : "train",
    dev: (p.devSplits?.value ?? getTask(task).devSplits).join(","),
  };
}

// ---- Fixtures: a tiny BERT of 512 positions and a few rows of every task ---------------------

const dir = await Deno.makeTempDir({ prefix: "seed_settings_test_" });
const glue = `${dir}/glue`;
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 1,
  layers: 1,
  hidden: 16,
  heads: 2,
  intermediate: 32,
  maxPositions: 512,
});
await writeSyntheticSst2(glue, { train: 8, dev: 4, seed: 2 });
await writeSyntheticMnli(glue, { train: 6, dev: 3, seed: 2 });
await writeSyntheticSquad(glue, "train-v2.0", { articles: 2, seed: 2 });
await writeSyntheticSquad(glue, "dev-v2.0", { articles: 2, seed: 3 });
for (const name of ["mrpc", "rte", "qnli", "qqp", "stsb", "cola", "wnli"]) {
  // Each task's own columns (named, or CoLA's implied header), a few labelled rows per file.
  const { spec } = getTask(name) as GlueTaskWithSpec;
  const header = spec.impliedHeader ??
    [spec.label, spec.textA, ...(spec.textB ? [spec.textB] : [])];
  const label = (i: number) =>
    spec.labels.length ? spec.labels[i % spec.labels.length] : `${i % 5}`;
  const row = (i: number) =>
    header.map((h) =>
      h === spec.label ? label(i) : h === spec.textA || h === spec.textB ? `word ${i} w` : "x"
    ).join("\t");
  await Deno.mkdir(`${glue}/${spec.dir}`, { recursive: true });
  for (const [split, file] of Object.entries(spec.files)) {
    if (split.startsWith("test")) continue;
    const rows = Array.from({ length: 6 }, (_, i) => row(i));
    const text = (spec.impliedHeader ? rows : [header.join("\t"), ...rows]).join("\n") + "\n";
    await Deno.writeTextFile(`${glue}/${spec.dir}/${file}`, text);
  }
}

// ---- Tests --------------------------------------------------------------------------------

Deno.test("reproduce --dry-run prints the seed's settings for every task", async () => {
  deepStrictEqual(Object.keys(TABLE).sort(), [...TASK_NAMES].sort(), "the table covers every task");
  for (const task of TASK_NAMES) {
    // The command line as a user types it (scripts/reproduce.ts's flags → options), planned as
    // `--dry-run` plans it, without the measured warm-ups (the CLI's kernel tuning and timing
    // take minutes on a software adapter; the text is otherwise the same).
    const { opts, dryRun } = reproduceOptions([
      "--task",
      task,
      "--model",
      `${dir}/bert`,
      "--data-dir",
      glue,
      "--out",
      `${dir}/out`,
      "--dry-run",
      "--quiet",
    ]);
    ok(dryRun);
    const { text } = await planReproduce(opts, false); // what --dry-run prints, without timings
    if (Deno.env.get("SHOW_PLAN") === task) console.log(text);
    const e = parsePlan(task, text, glue);
    deepStrictEqual(compare(task, e), [], text);
    // Each value's origin is printed: the seed's file@commit for every preset value.
    ok(/seed's code: .*@0c7e25c/.test(text), text);
  }
});

Deno.test("glue --model bert on mrpc: the MSR training file and the MSR test file, no flags", async () => {
  const plan = formatPlan(
    await planFineTune({
      preset: true,
      modelDir: `${dir}/bert`,
      task: "mrpc",
      dataDir: glue,
      outDir: `${dir}/out/ft`,
    }, false),
  );
  ok(/train msr_train \(preset: data\/bert_processors\/processors\.py@0c7e25c/.test(plan), plan);
  ok(/dev msr_test \(preset: /.test(plan), plan);
  ok(/evaluate mrpc msr_test/.test(plan), plan);
  ok(/tokens 512 \(preset: data\/bert_processors\/processors\.py@0c7e25c/.test(plan), plan);
  // Given splits win.
  const given = formatPlan(
    await planFineTune({
      preset: true,
      modelDir: `${dir}/bert`,
      task: "mrpc",
      dataDir: glue,
      outDir: `${dir}/out/ft2`,
      trainSplit: "train",
      devSplits: ["dev"],
    }, false),
  );
  ok(!/msr_/.test(given), given);
});

Deno.test("flags choose otherwise, and the plan names the flag", () => {
  const args = ["--task", "rte", "--data-dir", "d", "--dry-run"];
  const { opts } = reproduceOptions([
    ...args,
    ...["--bias-correction", "on", "--adam-eps", "1e-8", "--max-grad-norm", "1"],
    ...["--decay-biases", "off", "--early-stop", "loss", "--ap-max-seq-length", "96"],
  ]);
  deepStrictEqual(
    [opts.biasCorrection, opts.adamEps, opts.maxGradNorm, opts.decayBiases, opts.earlyStop],
    [true, 1e-8, 1, false, "loss"],
  );
  deepStrictEqual(opts.apMaxSeqLength, 96);
  const line = describeSettings(resolveSettings("rte", "ap", opts, true, HEAD_DEFAULTS))[0];
  for (
    const part of [
      "early-stop loss (--early-stop)",
      "bias-correction on (--bias-correction)",
      "eps 1e-8 (--adam-eps)",
      "max-grad-norm 1 (--max-grad-norm)",
      "decay-biases off (--decay-biases)",
      "lr 1e-5 (preset)",
    ]
  ) ok(line.includes(part), `${part} in ${line}`);
  // Not given: the seed's, and nothing else decides (no flag means the preset).
  const none = reproduceOptions(args).opts;
  deepStrictEqual(
    [none.biasCorrection, none.adamEps, none.maxGradNorm, none.decayBiases, none.earlyStop],
    [undefined, undefined, undefined, undefined, undefined],
  );
  throws(
    () => reproduceOptions([...args, "--bias-correction", "maybe"]),
    /--bias-correction must be on or off, got "maybe"/,
  );
});

Deno.test("mutation check: changing any one preset value makes the comparison fail", () => {
  // Every leaf the presets hold: each command's values, the tasks' files, the shared defaults.
  type Box = Record<string, unknown>;
  const perturb = (v: unknown): unknown =>
    typeof v === "number"
      ? v * 2 + 1
      : typeof v === "boolean"
      ? !v
      : typeof v === "string"
      ? (v === "metric" ? "loss" : v === "loss" ? "metric" : v === "msr_train" ? "train" : `${v}x`)
      : Array.isArray(v)
      ? ["dev"]
      : v;
  let checked = 0;
  const check = (task: string, box: Box, key: string, what: string) => {
    const old = box[key];
    box[key] = perturb(old);
    try {
      ok(compare(task, fromPresets(task)).length > 0, `${what} changed, not reported`);
      checked++;
    } finally {
      box[key] = old;
    }
  };
  for (const task of TASK_NAMES) {
    deepStrictEqual(compare(task, fromPresets(task)), [], `${task} unperturbed`);
    const p = SEED_PRESETS[task] as unknown as Record<string, Box>;
    for (const stage of ["bert", "ap"]) {
      const values = p[stage].values as Record<string, Box>;
      for (const k of Object.keys(values)) check(task, values[k], "value", `${task} ${stage} ${k}`);
    }
    for (const k of ["trainSplit", "devSplits"]) {
      if (p[k]) check(task, p[k], "value", `${task} ${k}`);
    }
    // The shared defaults a command of this task leaves to them.
    for (const k of Object.keys(SEED_DEFAULTS)) {
      if (k in (p.bert.values as Box) && k in (p.ap.values as Box)) continue;
      check(task, SEED_DEFAULTS as unknown as Box, k, `${task} default ${k}`);
    }
  }
  // SQuAD's answer settings (train/squad_settings.ts).
  for (const k of Object.keys(SQUAD_SEED_SETTINGS)) {
    const box = SQUAD_SEED_SETTINGS as unknown as Box;
    const old = box[k];
    box[k] = typeof old === "string"
      ? (old === "max" ? "min" : old === "seed" ? "ours" : `${old}x`)
      : perturb(old);
    try {
      ok(compare("squad", fromPresets("squad")).length > 0, `squad ${k} changed, not reported`);
      checked++;
    } finally {
      box[k] = old;
    }
  }
  ok(checked > 150, `${checked} mutations checked`);
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
