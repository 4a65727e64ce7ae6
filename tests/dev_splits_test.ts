// Dev splits end to end on a tiny BERT. MNLI (generated files): fine-tuning reports dev_matched
// and dev_mismatched at each checkpoint (as MNLI-m / MNLI-mm), a run killed between the two
// splits' results resumes to the same files, and evaluating one split alone gives that split's
// numbers; reproduce captures a store per split and reports every row (BERT, the head, the
// ensembles) as two columns, each equal to what that split alone gives; a head trained on both
// stores from the command line, and one streamed over both splits, score as reproduce's. MRPC:
// --dev-split msr_test evaluates the labelled MSR test file (the seed's MSR dev set), alone or
// beside GLUE's dev, and capture stores it with its labels.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticMnli } from "../data/synthetic.ts";
import { decodeNpy } from "../data/npy.ts";
import { reproduce } from "../train/reproduce.ts";
import { trainAp } from "../train/heads/mod.ts";
import { ensembleScores } from "../train/ensemble.ts";
import { loadRows } from "../train/rows.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { getTask } from "../tasks/mod.ts";
import { H5Reader } from "../data/h5_store.ts";
import { KILLED_EXIT_CODE } from "../data/output/kill.ts";

const SPLITS = ["dev_matched", "dev_mismatched"];

function glue(dir: string, out: string, extra: string[] = [], exitAt?: string) {
  return runCli("glue.ts", [
    ...["--task", "mnli", "--model", "bert", "--bert", `${dir}/bert`, "--data-dir", dir],
    ...["--out", `${dir}/${out}`, "--batch-size", "8", "--epochs", "1", "--max-seq-length", "24"],
    ...["--lr", "1e-3", "--seed", "4", "--quiet", ...extra],
  ], exitAt ? { BERTVISION_TEST_EXIT_AT: exitAt } : {});
}

/** A checkpoint's results: every split's logits and metrics, and the completion marker. */
async function results(ckpt: string): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  for (const s of SPLITS) {
    for (const f of [`${s}_logits.npy`, `${s}_metrics.json`]) {
      files[f] = await Deno.readFile(`${ckpt}/${f}`);
    }
  }
  files["complete.json"] = await Deno.readFile(`${ckpt}/complete.json`);
  return files;
}

Deno.test("glue --task mnli: both dev splits at each checkpoint, resumable, each as alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mnli_bert_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticMnli(dir, { train: 24, dev: 9, mismatched: 7, seed: 2 });
  const full = await glue(dir, "full");
  equal(full.code, 0, full.err);
  const dev = JSON.parse(full.out).dev["1"];
  deepStrictEqual(Object.keys(dev), ["MNLI-m", "MNLI-mm"]);
  for (const [i, s] of SPLITS.entries()) {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/full/checkpoint-1/${s}_metrics.json`));
    deepStrictEqual(m.accuracy, Object.values(dev)[i]);
  }
  const marker = JSON.parse(await Deno.readTextFile(`${dir}/full/checkpoint-1/complete.json`));
  deepStrictEqual(marker.dev.map((d: { file: string }) => d.file), [
    "MNLI/dev_matched.tsv",
    "MNLI/dev_mismatched.tsv",
  ]);
  // Killed after the matched split's results, before the mismatched one's: resumed, the same.
  const cut = await glue(dir, "cut", [], "metrics:1");
  equal(cut.code, KILLED_EXIT_CODE, cut.err);
  const resumed = await glue(dir, "cut");
  equal(resumed.code, 0, resumed.err);
  deepStrictEqual(JSON.parse(resumed.out).dev, JSON.parse(full.out).dev);
  deepStrictEqual(
    await results(`${dir}/cut/checkpoint-1`),
    await results(`${dir}/full/checkpoint-1`),
  );
  // One split alone (--dev-split): the finished checkpoint is evaluated on it, to its numbers.
  const alone = await glue(dir, "full", ["--dev-split", "dev_mismatched"]);
  equal(alone.code, 0, alone.err);
  deepStrictEqual(JSON.parse(alone.out).dev["1"], { accuracy: dev["MNLI-mm"] });
  deepStrictEqual(
    await Deno.readFile(`${dir}/full/checkpoint-1/dev_logits.npy`),
    await Deno.readFile(`${dir}/cut/checkpoint-1/dev_mismatched_logits.npy`),
  );
  const bad = await glue(dir, "full", ["--dev-split", "dev"]);
  equal(bad.code, 1);
  match(bad.err, /--dev-split dev: mnli has no labelled split "dev" \(choose from dev_matched/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reproduce mnli: a store per dev split, every row as two columns MNLI-m and MNLI-mm", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mnli_reproduce_" });
  await tinyTestBert(`${dir}/bert`);
  // 9 matched and 7 mismatched rows: a score of one split cannot pass for the other's.
  await writeSyntheticMnli(dir, { train: 24, dev: 9, mismatched: 7, seed: 3 });
  const common = { batchSize: 8, maxSeqLength: 24, seed: 5, silent: true };
  const { results: res } = await reproduce({
    ...common,
    task: "mnli",
    model: `${dir}/bert`,
    dataDir: dir,
    out: `${dir}/results`,
    epochs: 2,
    captureAt: 1,
    lr: 1e-3,
    apLr: 1e-3,
  });
  deepStrictEqual(res.metricKeys, ["MNLI-m", "MNLI-mm"]);
  for (const row of res.rows) deepStrictEqual(Object.keys(row.metrics), res.metricKeys, row.model);
  ok(res.rows.every((row) => row.metrics["MNLI-m"] !== row.metrics["MNLI-mm"]));
  const md = await Deno.readTextFile(`${dir}/results/mnli/results.md`);
  match(md, /\| Model \| Params \| % of BERT \| MNLI-m \| MNLI-mm \|/);
  const svg = await Deno.readTextFile(`${dir}/results/mnli/chart.svg`);
  ok(svg.includes(">MNLI-m<") && svg.includes(">MNLI-mm<"), "both columns charted");

  // Each column is what its split alone gives. BERT: the checkpoint's per-split results.
  const r = `${dir}/results/mnli`;
  const [bert1, bert2, ap] = res.rows;
  for (const [i, s] of SPLITS.entries()) {
    const key = res.metricKeys[i];
    for (const [row, at] of [[bert1, 1], [bert2, 2]] as const) {
      const m = JSON.parse(await Deno.readTextFile(`${r}/bert/checkpoint-${at}/${s}_metrics.json`));
      deepStrictEqual(row.metrics[key], m.accuracy, `${row.model} ${key}`);
    }
  }
  // The head: trained again with only the mismatched store, the same number (with the settings
  // reproduce recorded, whatever its defaults).
  const h5 = (s: string) => `${r}/activations/${s}_full_f32.h5`;
  const { settings: st } = JSON.parse(await Deno.readTextFile(`${r}/ap/results.json`));
  const head = {
    silent: true,
    task: "mnli",
    model: st.head.pooling,
    adapterDim: st.head.adapterDim,
    shared: st.head.shared,
    batchSize: st.batchSize,
    epochs: st.epochs,
    lr: st.lr,
    l2: st.l2,
    warmupProportion: st.warmupProportion,
    seed: st.seed,
    trainFraction: st.trainFraction,
    maxGradNorm: st.maxGradNorm,
    // The optimizer's switches, recorded where they differ from the library's (the seed's preset).
    biasCorrection: st.biasCorrection ?? true,
    adamEps: st.adamEps ?? 1e-6,
    decayBiases: st.decayBiases ?? false,
    ...(st.patience !== undefined ? { patience: st.patience } : {}),
    ...(st.earlyStop !== undefined ? { earlyStop: st.earlyStop } : {}),
  };
  const alone = await trainAp({
    ...head,
    trainH5: h5("train"),
    devH5: h5("dev_mismatched"),
    outDir: `${dir}/alone`,
  });
  alone.head.dispose();
  deepStrictEqual(alone.devMetrics!.accuracy, ap.metrics["MNLI-mm"]);
  deepStrictEqual(
    await Deno.readFile(`${dir}/alone/dev_logits.npy`),
    await Deno.readFile(`${r}/ap/dev_mismatched_logits.npy`),
  );
  // The ensembles: BERT (1 and 2 epochs) with the head, scored on the mismatched rows alone.
  const task = getTask("mnli");
  const rows = await loadRows(task, {
    split: "dev_mismatched",
    dataDir: dir,
    tokenizer: await loadTokenizer(`${dir}/bert`),
    maxSeqLength: 24,
  });
  const logits = async (p: string) => decodeNpy(await Deno.readFile(p)).data as Float32Array;
  const apMm = await logits(`${r}/ap/dev_mismatched_logits.npy`);
  const ensembles = res.rows.filter((row) => row.model.startsWith("Ensemble"));
  ok(ensembles.length >= 1);
  for (const row of ensembles) {
    const at = Number(/BERT ([\d.]+) ep/.exec(row.model)?.[1] ?? 1); // "Ensemble (1 ep)": 1
    const bert = await logits(`${r}/bert/checkpoint-${at}/dev_mismatched_logits.npy`);
    const want = ensembleScores(task, apMm, bert, rows).metrics.accuracy;
    deepStrictEqual(row.metrics["MNLI-mm"], want, row.model);
  }
  // From the command line: one store per split after --dev-h5, two columns.
  const cli = await runCli("glue.ts", [
    ...["--task", "mnli", "--model", "ap", "--h5", h5("train"), "--out", `${dir}/cli`, "--quiet"],
    ...["--dev-h5", h5("dev_matched"), h5("dev_mismatched")],
    ...["--adapter-dim", String(res.settings.adapterDim), "--batch-size", String(st.batchSize)],
    ...["--epochs", String(st.epochs), "--lr", String(st.lr), "--l2", String(st.l2)],
    ...["--warmup-proportion", String(st.warmupProportion), "--seed", String(st.seed)],
    // reproduce() was called without the preset: the library's optimizer, which the command
    // (on the seed's preset) is told to use.
    ...["--bias-correction", st.biasCorrection === false ? "off" : "on"],
    ...["--decay-biases", st.decayBiases ? "on" : "off"],
  ]);
  equal(cli.code, 0, cli.err);
  deepStrictEqual(JSON.parse(cli.out).dev, ap.metrics);
  // A head streamed from the 1-epoch checkpoint over both splits scores as the stored one.
  const stream = await trainAp({
    ...head,
    stream: { model: `${r}/bert/checkpoint-1`, dataDir: dir, maxSeqLength: 24 },
    outDir: `${dir}/stream`,
  });
  stream.head.dispose();
  deepStrictEqual(stream.devBySplit!.map((d) => d.split), SPLITS);
  deepStrictEqual(stream.devBySplit!.map((d) => d.metrics.accuracy), [
    ap.metrics["MNLI-m"],
    ap.metrics["MNLI-mm"],
  ]);
  await Deno.remove(dir, { recursive: true });
});

/**
 * MRPC as `fetch-data` leaves it, GLUE's dev and the MSR files (training: the whole
 * `msr_paraphrase_train.txt`, as the seed trained): `n` pairs each, labels in turn.
 */
async function writeMrpc(dir: string, n: { train: number; dev: number; msr: number }) {
  await Deno.mkdir(`${dir}/MRPC`, { recursive: true });
  const words = "the film story people world life time day work man year".split(" ");
  const file = (rows: number, seed: number) => {
    const lines = ["\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"];
    for (let i = 0; i < rows; i++) {
      const a = Array.from({ length: 5 }, (_, k) => words[(seed + i * 7 + k * 3) % words.length]);
      const b = i % 2 ? [...a].reverse() : a.map((w, k) => words[(words.indexOf(w) + k) % 11]);
      lines.push(`${i % 2}\t${seed + i}\t${seed + i + 1}\t${a.join(" ")} .\t${b.join(" ")} .`);
    }
    return lines.join("\r\n") + "\r\n";
  };
  await Deno.writeTextFile(`${dir}/MRPC/msr_paraphrase_train.txt`, file(n.train, 1));
  await Deno.writeTextFile(`${dir}/MRPC/dev.tsv`, file(n.dev, 2));
  await Deno.writeTextFile(`${dir}/MRPC/msr_paraphrase_test.txt`, file(n.msr, 3));
}

Deno.test("mrpc --dev-split msr_test: the MSR test file evaluated, alone or beside dev, and captured", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mrpc_msr_" });
  await tinyTestBert(`${dir}/bert`);
  await writeMrpc(dir, { train: 16, dev: 6, msr: 10 });
  const run = (out: string, extra: string[]) =>
    runCli("glue.ts", [
      ...["--task", "mrpc", "--model", "bert", "--bert", `${dir}/bert`, "--data-dir", dir],
      ...["--out", `${dir}/${out}`, "--batch-size", "8", "--max-seq-length", "24", "--quiet"],
      ...["--train-file", `${dir}/MRPC/msr_paraphrase_train.txt`, ...extra],
    ]);
  const both = await run("run", ["--dev-split", "dev,msr_test"]);
  equal(both.code, 0, both.err);
  const dev = JSON.parse(both.out).dev["1"];
  deepStrictEqual(Object.keys(dev), [
    "MRPC dev accuracy",
    "MRPC dev f1",
    "MSRP test accuracy",
    "MSRP test f1",
  ]);
  const state = JSON.parse(await Deno.readTextFile(`${dir}/run/trainer_state.json`));
  deepStrictEqual(state.settings.train.file, "msr_paraphrase_train.txt");
  const marker = JSON.parse(await Deno.readTextFile(`${dir}/run/checkpoint-1/complete.json`));
  deepStrictEqual(marker.dev.map((d: { file: string; rows: number }) => [d.file, d.rows]), [
    ["MRPC/dev.tsv", 6],
    ["MRPC/msr_paraphrase_test.txt", 10],
  ]);
  // The seed's way: msr_test alone, the same numbers as beside dev.
  const alone = await run("run", ["--dev-split", "msr_test"]);
  equal(alone.code, 0, alone.err);
  deepStrictEqual(JSON.parse(alone.out).dev["1"], {
    accuracy: dev["MSRP test accuracy"],
    f1: dev["MSRP test f1"],
  });
  // One dev file or dev splits, not both.
  const twice = await run("other", [
    "--dev-split",
    "msr_test",
    "--dev-file",
    `${dir}/MRPC/dev.tsv`,
  ]);
  equal(twice.code, 2);
  match(twice.err, /give --dev-split .* or --dev-file .*, not both/);
  // capture --split msr_test stores its labels (GLUE's test split has none).
  const cap = await runCli("capture.ts", [
    ...["--model", `${dir}/run/checkpoint-1`, "--task", "mrpc", "--split", "msr_test"],
    ...["--data-dir", dir, "--out", `${dir}/msr.h5`, "--max-seq-length", "24", "--quiet"],
  ]);
  equal(cap.code, 0, cap.err);
  const store = await H5Reader.open(`${dir}/msr.h5`);
  try {
    equal(store.attrs.split, "msr_test");
    deepStrictEqual([...store.readRows(0, 10).labels], [0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
  } finally {
    store.close();
  }
  await Deno.remove(dir, { recursive: true });
});
