// End to end: the demo command as a user runs it, one SQuAD reproduction on a tiny BERT (span
// heads through capture, AP_SQuAD, post-processing and ensembling), the AP model beating the
// majority class on real SST-2 dev, and a batch too large for the device.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { builtinVocab, makeTinyBert } from "../model/init.ts";
import { evaluateFiles } from "../tasks/evaluate.ts";
import { fineTune } from "../train/finetune.ts";
import { reproduce } from "../train/reproduce.ts";
import { ensembleFiles } from "../train/ensemble.ts";
import { syntheticSquadWords, writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";
import { gpu, initGpu } from "../model/tensor.ts";
import { sharedDir } from "./helpers.ts";
import { rowsHooks } from "../train/rows.ts";
import { demoSettings } from "../scripts/demo.ts";

const shared = sharedDir();
const vocab = shared ? `${shared}/data/bert-base-uncased/vocab.txt` : undefined;

Deno.test("deno task demo: runs the whole pipeline and writes the table, JSON and chart", async () => {
  const out = await Deno.makeTempDir();
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../scripts/demo.ts", import.meta.url).pathname,
      "--out",
      out,
      "--quiet",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  });
  const r = await cmd.output();
  const stdout = new TextDecoder().decode(r.stdout);
  deepStrictEqual(r.code, 0, new TextDecoder().decode(r.stderr));
  ok(stdout.includes("| BERTVision (AP) (1 ep) |"), stdout);
  ok(stdout.includes("random initial weights"), "the demo says it cannot match the paper");
  ok(stdout.includes("--model bert-base-uncased"), "and shows the GPU-server command");
  const res = JSON.parse(await Deno.readTextFile(`${out}/results/sst2/results.json`));
  deepStrictEqual(res.rows.map((x: { model: string }) => x.model), [
    "BERT (1 ep)",
    "BERT (2 ep)",
    "BERTVision (AP) (1 ep)",
    "Ensemble (BERT 1 ep + AP 1 ep)",
    "Ensemble (BERT 2 ep + AP 1 ep)",
  ]);
  // The generated task is learnable: BERT after 2 epochs, the AP head on the hidden states of
  // BERT after 1 epoch (when BERT itself may still be near chance) and the ensembles reach the
  // ≥ 0.9 the demo's docstring states.
  for (const row of res.rows.slice(1)) {
    ok(row.metrics.accuracy >= 0.9, `${row.model}: ${row.metrics.accuracy}`);
  }
  // Tiny BERT has 2M parameters with the real vocabulary, ~0.1M with the built-in one.
  ok(res.rows[2].share < 0.05, `AP share of BERT ${res.rows[2].share}`);
  deepStrictEqual(res.rows[2].share, res.rows[2].params / res.rows[0].params);
  ok((await Deno.readTextFile(`${out}/results/sst2/chart.svg`)).startsWith("<svg"));
  await Deno.remove(out, { recursive: true });
});

Deno.test("reproduce squad on a tiny BERT: spans through capture, AP_SQuAD and the ensemble", async () => {
  // The generated questions scored on the training file itself (16 questions, 4 unanswerable):
  // a check that spans survive fine-tuning, capture, the AP head, post-processing and the
  // ensemble, with a vocabulary holding every generated word (names and years one piece each),
  // so the result does not depend on ../shared.
  const dir = await Deno.makeTempDir();
  const words = [...new Set([...builtinVocab(), ...syntheticSquadWords()])];
  await Deno.writeTextFile(`${dir}/vocab.txt`, words.join("\n") + "\n");
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 3,
    layers: 1,
    hidden: 64,
    heads: 2,
    intermediate: 128,
    vocab: `${dir}/vocab.txt`,
    maxPositions: 64,
  });
  const train = await writeSyntheticSquad(`${dir}/data`, "train-v2.0", { articles: 8, seed: 1 });
  const { results } = await reproduce({
    task: "squad",
    model: `${dir}/bert`,
    dataDir: `${dir}/data`,
    devFile: train,
    out: `${dir}/results`,
    epochs: 20,
    captureAt: 10, // AP on the 10-epoch checkpoint; BERT reported at 10 and 20 epochs
    batchSize: 8,
    lr: 2e-3,
    maxSeqLength: 32,
    apEpochs: 8,
    silent: true,
  });
  deepStrictEqual(results.metricKeys[0], "exact");
  deepStrictEqual(results.rows.map((r) => r.model), [
    "BERT (10 ep)",
    "BERT (20 ep)",
    "BERTVision (AP) (10 ep)",
    "Ensemble (BERT 10 ep + AP 10 ep)",
    "Ensemble (BERT 20 ep + AP 10 ep)",
  ]);
  for (const row of results.rows) {
    const m = row.metrics;
    deepStrictEqual([m.total, m.HasAns_total, m.NoAns_total], [16, 12, 4], row.model);
    ok(m.exact <= m.f1, `${row.model}: EM ${m.exact} > F1 ${m.f1}`);
  }
  // Answering "" everywhere scores EM = F1 = 25 (the 4 unanswerable questions). Measured:
  // BERT 56 → 94 F1 from 10 to 20 epochs, AP 56, the ensemble 56.
  const [bert10, bert20, ap, ens] = results.rows.map((r) => r.metrics);
  ok(bert20.exact > 75 && bert20.f1 > bert10.f1, `BERT F1 ${bert10.f1} → ${bert20.f1}`);
  ok(ap.f1 > 40 && ens.f1 > 40, `AP F1 ${ap.f1}, ensemble F1 ${ens.f1}`);
  // The answers BERT wrote score the same with the official evaluator.
  const ckpt = `${dir}/results/squad/bert/checkpoint-20`;
  const official = await evaluateFiles({
    task: "squad",
    data: train,
    pred: `${ckpt}/dev_predictions.json`,
  });
  deepStrictEqual([official.exact, official.f1], [bert20.exact, bert20.f1]);
  // The paper's "BERT 2 epochs + AP on earlier activations" row is what `deno task ensemble`
  // gives for the two runs' saved logits (windows rebuilt with the checkpoint's tokenizer).
  // BERT's windows and the AP head's stored ones are recorded as the same rows (no note).
  const notes: string[] = [];
  const later = await ensembleFiles({
    task: "squad",
    logits: [`${ckpt}/dev_logits.npy`, `${dir}/results/squad/ap/dev_logits.npy`],
    data: train,
    model: ckpt,
    warn: (m) => notes.push(m),
  });
  deepStrictEqual(later.metrics, results.rows[4].metrics);
  deepStrictEqual(notes, []);
  for (const d of [ckpt, `${dir}/results/squad/ap`]) {
    ok((await Deno.stat(`${d}/dev_logits.rows.json`)).isFile, `${d}: its rows record`);
  }
  // AP_SQuAD's adapter size defaults to the token count (BERTVision's "adapter size 386").
  deepStrictEqual(results.settings.adapterDim, 32);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "the AP model trained on captured activations beats the majority class on SST-2 dev",
  ignore: !shared,
  async fn() {
    const dir = await Deno.makeTempDir();
    await makeTinyBert({
      out: `${dir}/bert`,
      seed: 1,
      layers: 2,
      hidden: 64,
      heads: 4,
      intermediate: 128,
      vocab,
      maxPositions: 64,
    });
    const { results } = await reproduce({
      task: "sst2",
      model: `${dir}/bert`,
      dataDir: `${shared}/data/glue`,
      out: `${dir}/results`,
      epochs: 1,
      batchSize: 32,
      lr: 1e-3,
      maxSeqLength: 48,
      limit: 1500,
      layout: "full", // every token: the AP head sees the words even where BERT learned little
      apModel: "ap",
      adapterDim: 16,
      apEpochs: 3,
      apLr: 3e-3,
      silent: true,
    });
    const majority = 444 / 872; // PROVENANCE.md: SST-2 dev labels 444/428
    const ap = results.rows[1].metrics.accuracy;
    const bert = results.rows[0].metrics.accuracy;
    ok(
      ap > majority + 0.03,
      `AP dev accuracy ${ap} (BERT ${bert}) vs majority ${majority.toFixed(4)}`,
    );
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("an oversized batch is split and equals the unsplit result; one row too big is a clear error", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 1,
    layers: 1,
    hidden: 32,
    heads: 2,
    intermediate: 64,
    maxPositions: 64,
  });
  await writeSyntheticSst2(`${dir}/glue`, { train: 24, dev: 8, seed: 1 });
  // Attention scores take heads·S² floats a row: 2·64²·4 = 32 KiB. A limit of 1/8 MiB holds 4
  // rows, so a batch of 24 runs as 6 micro-batches (BERTVISION_MAX_BINDING_MIB's option).
  const S = 64;
  const common = {
    modelDir: `${dir}/bert`,
    task: "sst2",
    dataDir: `${dir}/glue`,
    batchSize: 24,
    maxSeqLength: S,
    dropout: 0,
    logEvery: 1,
    silent: true,
    noEval: true,
  };
  const whole = await fineTune({ ...common, outDir: `${dir}/whole` });
  const split = await fineTune({ ...common, outDir: `${dir}/split`, maxBindingMiB: 1 / 8 });
  deepStrictEqual([whole.split.parts, split.split.parts, split.split.micro], [1, 6, 4]);
  const [a, b] = [whole.losses[0].loss, split.losses[0].loss];
  ok(Math.abs(a - b) < 1e-6, `loss ${a} unsplit, ${b} split`);
  // A single row over the limit cannot be split: the error names the tensor and the fix.
  await rejects(
    () => fineTune({ ...common, outDir: `${dir}/tiny`, maxBindingMiB: 1 / 64 }),
    /one row's attention scores \[2×64×64\] needs 32\.0 KiB, over the limit of 16\.0 KiB \(maxBindingMiB\); use a shorter --max-seq-length/,
  );
  deepStrictEqual(gpu().limits.maxBufferSize > 0, true);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reproduce streams by itself when the stores would not fit on the disk, and says so", async () => {
  const dir = await Deno.makeTempDir();
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 5,
    layers: 1,
    hidden: 32,
    heads: 2,
    intermediate: 64,
    maxPositions: 64,
  });
  await writeSyntheticSst2(`${dir}/glue`, { train: 48, dev: 16, seed: 3 });
  const run = async (out: string, env: Record<string, string>) => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../scripts/reproduce.ts", import.meta.url).pathname,
        ...["--task", "sst2", "--model", `${dir}/bert`, "--data-dir", `${dir}/glue`],
        ...["--max-seq-length", "24", "--lr", "1e-3", "--out", `${dir}/${out}`, "--quiet"],
      ],
      stdout: "piped",
      stderr: "piped",
      env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ...env },
    }).output();
    const err = new TextDecoder().decode(r.stderr);
    deepStrictEqual(r.code, 0, err);
    return {
      err,
      res: JSON.parse(await Deno.readTextFile(`${dir}/${out}/sst2/results.json`)),
    };
  };
  const store = await run("store", {});
  // 1 KiB free: the two full-layout stores (~270 KiB) do not fit.
  const stream = await run("stream", { BERTVISION_FREE_DISK_MIB: "0.001" });
  deepStrictEqual(store.res.settings.activations, "store");
  deepStrictEqual(stream.res.settings.activations, "stream");
  ok(/activations: stream, since the stores take .* free/.test(stream.err), stream.err);
  await rejects(() => Deno.stat(`${dir}/stream/sst2/activations`), Deno.errors.NotFound);
  // Same fine-tuning, and the head trained from the stream scores as the one from the stores.
  deepStrictEqual(
    stream.res.rows.map((r: { metrics: unknown }) => r.metrics),
    store.res.rows.map((r: { metrics: unknown }) => r.metrics),
  );
  await Deno.remove(dir, { recursive: true });
});

for (const activations of ["store", "stream"] as const) {
  Deno.test(`one reproduction (the demo's settings, ${activations}) tokenizes each split once`, async () => {
    // Before the run-scoped rows (train/rows.ts RowsCache), the demo tokenized each of its two
    // splits five times: fine-tuning's plan and run, reproduce's plan and its own read, capture
    // (streamed heads: their own read instead of capture's).
    const dir = await Deno.makeTempDir();
    const settings = demoSettings(undefined);
    await makeTinyBert({ out: `${dir}/bert`, ...settings.model });
    await writeSyntheticSst2(`${dir}/glue`, { train: 48, dev: 24, seed: 7 });
    const calls: string[] = [];
    rowsHooks.onTokenize = (task, split) => calls.push(`${task} ${split}`);
    // Streamed: with no rows resident, every split is read back from its cache file instead.
    const budget = Deno.env.get("BERTVISION_ROWS_RESIDENT_MIB");
    if (activations === "stream") Deno.env.set("BERTVISION_ROWS_RESIDENT_MIB", "0");
    try {
      await reproduce({
        task: "sst2",
        model: `${dir}/bert`,
        dataDir: `${dir}/glue`,
        out: `${dir}/results`,
        ...settings.run,
        apEpochs: 1,
        activations,
        silent: true,
      });
    } finally {
      rowsHooks.onTokenize = undefined;
      if (budget === undefined) Deno.env.delete("BERTVISION_ROWS_RESIDENT_MIB");
      else Deno.env.set("BERTVISION_ROWS_RESIDENT_MIB", budget);
    }
    deepStrictEqual(calls.sort(), ["sst2 dev", "sst2 train"]);
    // The run's cache files go with it.
    await rejects(() => Deno.stat(`${dir}/results/sst2/.rows`), Deno.errors.NotFound);
    await Deno.remove(dir, { recursive: true });
  });
}
