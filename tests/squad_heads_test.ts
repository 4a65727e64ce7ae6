// SQuAD heads scored like BERT: `deno task squad --model ap --h5 TRAIN.h5 --dev-h5 DEV.h5
// --dev-file DEV.json` re-featurizes DEV.json (checked against the store's input_ids), reports the
// official SQuAD 2.0 keys and writes predictions.json and na_probs.json, which `deno task
// evaluate` scores to the same numbers; the refusals name the fix. On generated questions with a
// tiny BERT whose vocabulary holds every generated word, at 24 tokens, so contexts need several
// windows (the default overlap of 128 halved to half the context room), and on a few real
// questions of ../shared when it is there.
import { deepStrictEqual, match, ok, rejects } from "node:assert/strict";
import { builtinVocab, makeTinyBert } from "../model/init.ts";
import { syntheticSquadWords, writeSyntheticSquad } from "../data/synthetic.ts";
import { capture } from "../train/capture.ts";
import { trainAp } from "../train/heads/mod.ts";
import { evaluateFiles } from "../tasks/evaluate.ts";
import { H5Reader } from "../data/h5_store.ts";
import { InputError } from "../data/errors.ts";
import { getTask } from "../tasks/mod.ts";
import { rowsOfStore } from "../train/rows.ts";
import { runCli, sharedDir, SQUAD_OFFICIAL_KEYS } from "./helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "squad_heads_test_" });
const model = `${dir}/tinysq`;
const words = [...new Set([...builtinVocab(), ...syntheticSquadWords()])];
await Deno.writeTextFile(`${dir}/vocab.txt`, words.join("\n") + "\n");
await makeTinyBert({
  out: model,
  seed: 4,
  layers: 1,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  vocab: `${dir}/vocab.txt`,
  maxPositions: 64,
});
const trainJson = await writeSyntheticSquad(`${dir}/data`, "train-v2.0", { articles: 6, seed: 1 });
const devJson = await writeSyntheticSquad(`${dir}/data`, "dev-v2.0", { articles: 4, seed: 2 });
const h5 = (split: string) => `${dir}/${split}.h5`;
for (const split of ["train", "dev"]) {
  await capture({
    model,
    task: "squad",
    split,
    dataDir: `${dir}/data`,
    out: h5(split),
    maxSeqLength: 24,
    silent: true,
  });
}

Deno.test("squad --model ap --dev-file: the official EM/F1, and predictions that evaluate scores the same", async () => {
  // 4 of the dev store's 8 questions need several windows, overlapping by half the room.
  const store = await H5Reader.open(h5("dev"));
  const attrs = store.attrs, n = store.shape.n;
  store.close();
  ok(n > 8, `${n} windows`);
  deepStrictEqual([attrs.doc_stride, attrs.doc_stride_reduced], [128, 4]);
  const out = `${dir}/ap`;
  const r = await runCli("squad.ts", [
    "--model",
    "ap",
    "--h5",
    h5("train"),
    "--dev-h5",
    h5("dev"),
    "--dev-file",
    devJson,
    "--bert",
    model,
    "--out",
    out,
    "--quiet",
  ]);
  deepStrictEqual(r.code, 0, r.err);
  const res = JSON.parse(r.out);
  deepStrictEqual(Object.keys(res.dev), SQUAD_OFFICIAL_KEYS);
  deepStrictEqual([res.dev.total, res.dev.HasAns_total, res.dev.NoAns_total], [8, 6, 2]);
  deepStrictEqual([res.predictions, res.naProbs], [
    `${out}/predictions.json`,
    `${out}/na_probs.json`,
  ]);
  const preds = JSON.parse(await Deno.readTextFile(res.predictions));
  deepStrictEqual(Object.keys(preds).sort(), ["q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7"]);
  const ev = await runCli("evaluate.ts", [
    "--task",
    "squad",
    "--data",
    devJson,
    "--pred",
    res.predictions,
    "--na-prob",
    res.naProbs,
  ]);
  deepStrictEqual(ev.code, 0, ev.err);
  deepStrictEqual(JSON.parse(ev.out), res.dev);
});

Deno.test("squad heads on stored activations: refusals name the fix", async () => {
  const head = ["--model", "lp", "--h5", h5("train"), "--dev-h5", h5("dev"), "--quiet"];
  // No --dev-file: the windows alone cannot be scored as answers.
  let r = await runCli("squad.ts", [...head, "--out", `${dir}/x1`]);
  deepStrictEqual(r.code, 2, r.err);
  match(r.err, /give --dev-file DEV\.json, the file the store was captured from/);
  // The store's model_id ("tinysq") is no directory here and no downloaded hub model.
  r = await runCli("squad.ts", [...head, "--dev-file", devJson, "--out", `${dir}/x2`]);
  deepStrictEqual(r.code, 1, r.err);
  match(
    r.err,
    /dev\.h5 was captured from model "tinysq", which is neither a directory here nor a downloaded hub model: give --bert M/,
  );
  ok(!r.err.includes("    at "), `one line, no stack trace: ${r.err}`);
  // Another file than the one captured: refused, naming both files.
  r = await runCli("squad.ts", [
    ...head,
    "--dev-file",
    trainJson,
    "--bert",
    model,
    "--out",
    `${dir}/x3`,
  ]);
  deepStrictEqual(r.code, 1, r.err);
  match(
    r.err,
    /train-v2\.0\.json re-featurized with the tokenizer of .*tinysq (gives \d+ rows but|differs from) .*dev\.h5/,
  );
  match(r.err, /give --dev-file the file .*dev\.h5 was captured from, and --bert the model/);
  // The same questions with "good" made "made": the first row that differs is named (q0's
  // second window holds the word).
  const changed = `${dir}/changed.json`;
  await Deno.writeTextFile(
    changed,
    (await Deno.readTextFile(devJson)).replaceAll(" good ", " made "),
  );
  const store = await H5Reader.open(h5("dev"));
  try {
    await rejects(
      rowsOfStore(getTask("squad"), store, { dataFile: changed, model }),
      (e: Error) => {
        ok(e instanceof InputError, String(e));
        match(
          e.message,
          /changed\.json re-featurized with the tokenizer of .*tinysq differs from .*dev\.h5 at row 1 \(question q0, window 1\), token \d+ \(input id \d+, stored \d+\)/,
        );
        return true;
      },
    );
    // The right file and model give the store's rows.
    const rows = await rowsOfStore(getTask("squad"), store, { dataFile: devJson, model });
    deepStrictEqual(rows.n, store.shape.n);
  } finally {
    store.close();
  }
});

Deno.test("--doc-stride reaches every stage that makes windows; the plans say how they overlap", async () => {
  const args = (...extra: string[]) => [
    "--task",
    "squad",
    "--model",
    model,
    "--data-dir",
    `${dir}/data`,
    "--max-seq-length",
    "24",
    "--out",
    `${dir}/plan`,
    "--dry-run",
    "--quiet",
    ...extra,
  ];
  // The default at 24 tokens: half the context room, in the fine-tuning and both captures.
  let r = await runCli("reproduce.ts", args());
  deepStrictEqual(r.code, 0, r.err);
  const reduced = r.out.match(/reduced to half the context room/g) ?? [];
  deepStrictEqual(reduced.length, 3, r.out);
  // SQuAD's own settings, the seed's (train/squad_settings.ts), with their origin.
  match(
    r.out,
    /squad: question whole \(preset\), null score max over windows \(preset\), max-context off \(preset\), ensemble rule seed \(preset\)/,
  );
  r = await runCli("reproduce.ts", args("--squad-null", "min", "--max-question-length", "4"));
  deepStrictEqual(r.code, 0, r.err);
  match(
    r.out,
    /squad: question ≤ 4 tokens \(--max-question-length\), null score min over windows \(--squad-null\), max-context off \(preset\)/,
  );
  r = await runCli("reproduce.ts", args("--doc-stride", "3"));
  deepStrictEqual(r.code, 0, r.err);
  deepStrictEqual((r.out.match(/windows overlap by 3 tokens/g) ?? []).length, 3, r.out);
  ok(!r.out.includes("reduced"), r.out);
  // Given, 128 leaves no room at 24 tokens: one line naming the fix.
  r = await runCli("reproduce.ts", args("--doc-stride", "128"));
  deepStrictEqual(r.code, 1, r.out);
  match(
    r.err,
    /--doc-stride 128 leaves no room to advance at --max-seq-length 24: .*give --doc-stride below \d+/,
  );
  ok(!r.err.includes("    at "), r.err);
  // squad --model bert and the stream mode take it too.
  r = await runCli("squad.ts", [
    ...args("--doc-stride", "5").slice(2).map((a) => a === "--model" ? "--bert" : a),
  ]);
  deepStrictEqual(r.code, 0, r.err);
  match(r.out, /windows overlap by 5 tokens/);
  r = await runCli("squad.ts", [
    "--model",
    "ap",
    "--activations",
    "stream",
    "--bert",
    model,
    "--data-dir",
    `${dir}/data`,
    "--max-seq-length",
    "24",
    "--doc-stride",
    "6",
    "--out",
    `${dir}/plan-ap`,
    "--dry-run",
    "--quiet",
  ]);
  deepStrictEqual(r.code, 0, r.err);
  match(r.out, /windows overlap by 6 tokens/);
});

Deno.test({
  name: "a few real SQuAD questions: a head's answers score the same by the official evaluator",
  ignore: !sharedDir(),
  async fn() {
    // The first 12 questions of the shared dev subset, with the real vocabulary, at 64 tokens
    // (most contexts need several windows).
    const shared = sharedDir()!;
    const all = JSON.parse(await Deno.readTextFile(`${shared}/data/squad/cs224n-dev-v2.0.json`));
    const art = all.data[0];
    let left = 12;
    const paragraphs = [];
    for (const p of art.paragraphs) {
      if (left <= 0) break;
      paragraphs.push({ ...p, qas: p.qas.slice(0, left) });
      left -= p.qas.length;
    }
    const file = `${dir}/real/squad/dev-v2.0.json`;
    await Deno.mkdir(`${dir}/real/squad`, { recursive: true });
    await Deno.writeTextFile(
      file,
      JSON.stringify({ version: "v2.0", data: [{ ...art, paragraphs }] }),
    );
    const real = `${dir}/real/bert`;
    await makeTinyBert({
      out: real,
      seed: 5,
      layers: 1,
      hidden: 32,
      heads: 2,
      intermediate: 64,
      vocab: `${shared}/data/bert-base-uncased/vocab.txt`,
      maxPositions: 64,
    });
    const store = (split: string) => `${dir}/real/${split}.h5`;
    for (const split of ["train", "dev"]) {
      await capture({
        model: real,
        task: "squad",
        split,
        dataFile: file,
        out: store(split),
        maxSeqLength: 64,
        silent: true,
      });
    }
    // In process, as the command calls it; trained on the same questions (scoring is checked
    // here, not learning).
    const r = await trainAp({
      task: "squad",
      trainH5: store("train"),
      devH5: store("dev"),
      devFile: file,
      devModel: real,
      outDir: `${dir}/real/ap`,
      epochs: 1,
      silent: true,
    });
    r.head.dispose();
    const m = r.devMetrics!;
    deepStrictEqual(Object.keys(m), SQUAD_OFFICIAL_KEYS);
    deepStrictEqual(m.total, 12);
    const byEvaluate = await evaluateFiles({
      task: "squad",
      data: file,
      pred: `${dir}/real/ap/predictions.json`,
      naProb: `${dir}/real/ap/na_probs.json`,
    });
    deepStrictEqual(byEvaluate, m);
  },
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
