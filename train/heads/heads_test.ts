// trainAp / evaluateAp on small HDF5 stores written here: random activations whose label is a
// simple function of them (the sign of feature 0 of [CLS] in the last layer; argmax tokens for
// spans; a layer mean for regression). Checks learning, bit-identical reruns, the seeded
// trainFraction subset, batch-sized streaming reads, flag/attribute mismatch errors, a NaN loss
// naming its step, and f16 stores decoding like f32 ones.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { H5Reader, H5Store, type H5StoreSettings } from "../../data/h5_store.ts";
import { seededSubset, shuffledIndices } from "../../data/batches.ts";
import { decodeNpy } from "../../data/npy.ts";
import { randn } from "../../tests/helpers.ts";
import { evaluateAp, trainAp, type TrainApOptions } from "./mod.ts";
import { splitSpanLogits } from "../../tasks/kinds/span.ts";
import { loadHead } from "../../model/heads.ts";
import { initGpu } from "../../model/tensor.ts";

await initGpu();

const L = 3, T = 4, F = 6;
type Target = "cls" | "span" | "reg";

interface MakeOpts {
  n: number;
  seed: number;
  target?: Target;
  layout?: "full" | "cls";
  dtype?: "f32" | "f16";
  attrs?: Record<string, string | number>;
  /** Row whose activations are NaN. */
  nanRow?: number;
}

/** Writes a store whose labels are a function of the activations. */
async function makeStore(path: string, o: MakeOpts): Promise<void> {
  const target = o.target ?? "cls", layout = o.layout ?? "full";
  const tok = layout === "full" ? T : 1;
  const row = L * tok * F;
  const embeds = randn(o.seed, o.n * row);
  const at = (i: number, l: number, t: number, f: number) =>
    embeds[i * row + (l * tok + t) * F + f];
  const labels: number[] = [];
  for (let i = 0; i < o.n; i++) {
    if (target === "cls") labels.push(at(i, L - 1, 0, 0) > 0 ? 1 : 0);
    else if (target === "reg") {
      let m = 0;
      for (let l = 0; l < L; l++) m += at(i, l, 0, 0) / L;
      labels.push(2.5 + m);
    } else {
      let s = 0, e = 0;
      for (let t = 1; t < T; t++) {
        if (at(i, L - 1, t, 0) > at(i, L - 1, s, 0)) s = t;
        if (at(i, L - 1, t, 1) > at(i, L - 1, e, 1)) e = t;
      }
      labels.push(s, e);
    }
  }
  if (o.nanRow !== undefined) embeds.fill(NaN, o.nanRow * row, (o.nanRow + 1) * row);
  const settings: H5StoreSettings = {
    n: o.n,
    layers: L,
    tokens: T,
    hidden: F,
    layout,
    dtype: o.dtype ?? "f32",
    labelType: target === "reg" ? "float32" : "int64",
    labelWidth: target === "span" ? 2 : 1,
    chunkRows: 8,
    attrs: { model_id: "tiny-bert", ...o.attrs },
  };
  const s = await H5Store.create(path, settings);
  await s.writeRows(0, {
    embeds,
    inputIds: new Int32Array(o.n * T),
    tokenTypeIds: new Int32Array(o.n * T),
    attentionMask: new Int32Array(o.n * T).fill(1),
    labels,
    idx: Array.from({ length: o.n }, (_, i) => i),
  });
  await s.close();
}

/** Records every batch read made through H5Reader while `fn` runs. */
async function spyReads<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; indices: number[][]; rowCounts: number[] }> {
  const proto = H5Reader.prototype;
  const readIndices = proto.readIndices, readRows = proto.readRows;
  const indices: number[][] = [], rowCounts: number[] = [];
  proto.readIndices = function (this: H5Reader, idx: ArrayLike<number>) {
    indices.push(Array.from(idx));
    return readIndices.call(this, idx);
  };
  proto.readRows = function (this: H5Reader, start: number, count: number) {
    rowCounts.push(count);
    return readRows.call(this, start, count);
  };
  try {
    return { result: await fn(), indices, rowCounts };
  } finally {
    proto.readIndices = readIndices;
    proto.readRows = readRows;
  }
}

const dir = await Deno.makeTempDir({ prefix: "ap_train_test" });
const train = `${dir}/train.h5`, devPath = `${dir}/dev.h5`, dev16 = `${dir}/dev16.h5`;
await makeStore(train, { n: 256, seed: 1, attrs: { task: "sst2", split: "train" } });
await makeStore(devPath, { n: 96, seed: 2, attrs: { task: "sst2", split: "dev" } });
await makeStore(dev16, { n: 96, seed: 2, dtype: "f16", attrs: { task: "sst2", split: "dev" } });

const base: TrainApOptions = {
  trainH5: train,
  task: "sst2",
  model: "ap",
  adapterDim: 4,
  batchSize: 16,
  epochs: 1,
  lr: 1e-2,
  seed: 5,
  outDir: `${dir}/out`,
  silent: true,
};

Deno.test("AP learns the sign of a [CLS] feature from streamed batch-sized reads", async () => {
  const { result: r, indices, rowCounts } = await spyReads(() =>
    trainAp({
      ...base,
      devH5: devPath,
      epochs: 4,
      lr: 5e-2,
      layout: "full",
      modelId: "tiny-bert",
      bertParams: 1e6,
      logEvery: 8,
      evalBatchSize: 32,
    })
  );
  try {
    ok(r.devMetrics!.accuracy > 0.85, `dev accuracy ${r.devMetrics!.accuracy}`);
    deepStrictEqual(r.steps, 64);
    deepStrictEqual(r.examples, 1024);
    // Streaming: every training read is one batch, every eval read one eval block.
    deepStrictEqual(indices.length, 64);
    ok(indices.every((b) => b.length === 16), "training reads are batch-sized");
    ok(rowCounts.every((c) => c <= 32), `largest hyperslab read ${Math.max(...rowCounts)} rows`);
    ok(r.history.length === 8 && r.history.at(-1)!.loss < r.history[0].loss, "loss falls");
    ok(r.paramReport && r.paramReport.fraction === r.params / 1e6);
    const log = (await Deno.readTextFile(`${dir}/out/train_log.jsonl`)).trim().split("\n");
    deepStrictEqual(log.length, 8);
    deepStrictEqual(JSON.parse(log[7]).step, 64);
    const npy = decodeNpy(await Deno.readFile(r.devLogitsPath!));
    deepStrictEqual(npy.shape, [96, 2]);
    // The saved head reproduces the dev metrics; the f16 copy of dev decodes to nearly the same.
    const back = await loadHead(r.headPath);
    const again = await evaluateAp(back, devPath, "sst2", { silent: true });
    deepStrictEqual(again.metrics, r.devMetrics);
    deepStrictEqual(again.logits, npy.data);
    const half = await evaluateAp(back, dev16, "sst2", { silent: true });
    const maxDiff = half.logits.reduce((m, v, i) => Math.max(m, Math.abs(v - again.logits[i])), 0);
    ok(maxDiff > 0 && maxDiff < 2e-2, `f16 store logits differ from f32 by ${maxDiff}`);
    back.dispose();
  } finally {
    r.head.dispose();
  }
});

Deno.test("--precision f16-mixed: an AP head follows its float32 run (and records it)", async () => {
  const o = { ...base, devH5: devPath, epochs: 2, lr: 5e-2, logEvery: 8 };
  const f32 = await trainAp({ ...o, outDir: `${dir}/p32`, precision: "f32" });
  const mixed = await trainAp({ ...o, outDir: `${dir}/p16`, precision: "f16-mixed" });
  // f16 operands (≤ 2^-10 relative per product) over 32 steps of a small head: the loss windows
  // agree within 0.02 + 5%, dev accuracy within 3 of 96 rows.
  mixed.history.forEach((h, i) => {
    const ref = f32.history[i].loss;
    ok(Math.abs(h.loss - ref) <= 0.02 + 0.05 * ref, `step ${h.step}: ${h.loss} vs f32 ${ref}`);
  });
  const a16 = mixed.devMetrics!.accuracy, a32 = f32.devMetrics!.accuracy;
  ok(Math.abs(a16 - a32) <= 3 / 96 + 1e-9, `dev accuracy ${a16} vs f32 ${a32}`);
  const res = JSON.parse(await Deno.readTextFile(`${dir}/p16/results.json`));
  deepStrictEqual(res.settings?.precision, "f16-mixed");
});

Deno.test("a fixed seed gives bit-identical weights; another seed does not", async () => {
  const run = async (seed: number) => {
    const r = await trainAp({ ...base, seed, epochs: 0.5, outDir: `${dir}/det${seed}` });
    const w = await r.head.toHost();
    r.head.dispose();
    return { w, losses: r.history.map((h) => h.loss) };
  };
  const a = await run(11), b = await run(11), c = await run(12);
  deepStrictEqual(a.losses, b.losses);
  for (const [n, t] of a.w) {
    deepStrictEqual(t.data, b.w.get(n)!.data, `${n} identical`);
    ok(t.data.some((v, i) => v !== c.w.get(n)!.data[i]), `${n} differs across seeds`);
  }
});

Deno.test("trainFraction trains on the same seeded subset, reading only its rows", async () => {
  const { result: r, indices } = await spyReads(() =>
    trainAp({ ...base, trainFraction: 0.25, outDir: `${dir}/frac` })
  );
  r.head.dispose();
  const subset = seededSubset(256, 0.25, 5);
  deepStrictEqual(r.trainRows, subset);
  deepStrictEqual(subset.length, 64);
  const read = indices.flat().sort((x, y) => x - y);
  deepStrictEqual(read, [...subset], "one epoch reads each subset row once");
  deepStrictEqual(r.steps, 4);
  const r2 = await trainAp({ ...base, trainFraction: 0.25, outDir: `${dir}/frac2` });
  deepStrictEqual(r2.trainRows, subset);
  r2.head.dispose();
});

Deno.test("stores that disagree with the flags are refused with a clear message", async () => {
  const out = `${dir}/bad`;
  await rejects(
    trainAp({ ...base, layout: "cls", outDir: out }),
    /HDF5 file .*train\.h5 was captured with layout full but --layout cls was given/,
  );
  await rejects(
    trainAp({ ...base, task: "cola", outDir: out }),
    /was captured for task sst2 but --task cola was given/,
  );
  await rejects(
    trainAp({ ...base, modelId: "bert-base-uncased", outDir: out }),
    /was captured with model tiny-bert but --model bert-base-uncased/,
  );
  await rejects(
    trainAp({ ...base, trainH5: devPath, outDir: out }),
    /holds the dev split but was given as the training file/,
  );
  const noTask = `${dir}/no_task.h5`;
  await makeStore(noTask, { n: 16, seed: 3 });
  await rejects(
    trainAp({ ...base, trainH5: noTask, task: "stsb", outDir: out }),
    /stores int64 labels; task stsb \(regression\) needs float32/,
  );
  const other = `${dir}/cls_dev.h5`;
  await makeStore(other, { n: 8, seed: 3, layout: "cls", attrs: { task: "sst2", split: "dev" } });
  await rejects(
    trainAp({ ...base, devH5: other, outDir: out }),
    /cls_dev\.h5 has tokens 1 but the training file .* has 4|has layout cls/,
  );
  const wide = `${dir}/wide.h5`;
  await makeStore(wide, {
    n: 16,
    seed: 3,
    target: "span",
    attrs: { task: "sst2", split: "train" },
  });
  await rejects(trainAp({ ...base, trainH5: wide, outDir: out }), /2 labels per row/);
});

Deno.test("stores from other weights, or without their completion marker, are refused", async () => {
  const out = `${dir}/refused`;
  // Same folder name ("tiny-bert"), other weights: refused together.
  const a = `${dir}/w_train.h5`, b = `${dir}/w_dev.h5`;
  await makeStore(a, {
    n: 16,
    seed: 3,
    attrs: { task: "sst2", split: "train", weights_hash: "aaaa" },
  });
  await makeStore(b, {
    n: 8,
    seed: 4,
    attrs: { task: "sst2", split: "dev", weights_hash: "bbbb" },
  });
  await rejects(
    trainAp({ ...base, trainH5: a, devH5: b, outDir: out }),
    /w_dev\.h5 was captured from other weights \(weights_hash bbbb, model tiny-bert\) than the training file .*w_train\.h5 \(aaaa/,
  );
  // A killed capture's file copied without its sidecar: its rows after the last flush are
  // zeros, and without the completion marker it is refused rather than trained on.
  const partial = `${dir}/partial.h5`;
  const s = await H5Store.create(partial, {
    n: 16,
    layers: L,
    tokens: T,
    hidden: F,
    layout: "full",
    dtype: "f32",
    chunkRows: 8,
    attrs: { task: "sst2", split: "train" },
  }, { flushEveryRows: 4 });
  await s.writeRows(0, {
    embeds: randn(5, 4 * L * T * F),
    inputIds: new Int32Array(4 * T),
    tokenTypeIds: new Int32Array(4 * T),
    attentionMask: new Int32Array(4 * T).fill(1),
    labels: [0, 1, 0, 1],
    idx: [0, 1, 2, 3],
  });
  await Deno.copyFile(partial, `${dir}/partial_copy.h5`);
  await s.close();
  await rejects(
    trainAp({ ...base, trainH5: `${dir}/partial_copy.h5`, outDir: out }),
    /partial_copy\.h5 is incomplete: 4 of 16 rows captured and no completion marker/,
  );
});

Deno.test("a NaN loss stops training with an error naming the step", async () => {
  const nan = `${dir}/nan.h5`;
  await makeStore(nan, { n: 64, seed: 4, nanRow: 37, attrs: { task: "sst2", split: "train" } });
  const pos = shuffledIndices(64, 5, 0).indexOf(37);
  const step = Math.floor(pos / 16) + 1;
  await rejects(
    trainAp({ ...base, trainH5: nan, outDir: `${dir}/nan`, logEvery: 4 }),
    new RegExp(`loss is NaN at step ${step} of 4`),
  );
});

Deno.test("span (SQuAD-style) AP with skip learns argmax tokens; logits saved [N, T, 2]", async () => {
  const tr = `${dir}/squad_train.h5`, dv = `${dir}/squad_dev.h5`;
  await makeStore(tr, {
    n: 128,
    seed: 6,
    target: "span",
    attrs: { task: "squad", split: "train" },
  });
  await makeStore(dv, { n: 64, seed: 7, target: "span", attrs: { task: "squad", split: "dev" } });
  let seen = 0;
  const r = await trainAp({
    ...base,
    task: "squad",
    trainH5: tr,
    devH5: dv,
    skip: true,
    epochs: 4,
    lr: 2e-2,
    outDir: `${dir}/squad`,
    metrics: (logits, shape, idx) => {
      const { start, end } = splitSpanLogits(logits, shape[0], shape[1]);
      seen = start.length + end.length + idx.length;
      return { custom: start[0].length };
    },
  });
  deepStrictEqual(seen, 3 * 64);
  deepStrictEqual(r.devMetrics, { custom: T });
  deepStrictEqual(r.head.config.adapterDim, T);
  const ev = await evaluateAp(r.head, dv, "squad", { silent: true });
  ok(ev.metrics.start_accuracy > 0.7, `start accuracy ${ev.metrics.start_accuracy}`);
  ok(ev.metrics.end_accuracy > 0.7, `end accuracy ${ev.metrics.end_accuracy}`);
  deepStrictEqual(decodeNpy(await Deno.readFile(r.devLogitsPath!)).shape, [64, T, 2]);
  r.head.dispose();
});

Deno.test("AvgP regression (STS-B-style) fits a layer mean", async () => {
  const tr = `${dir}/stsb_train.h5`, dv = `${dir}/stsb_dev.h5`;
  await makeStore(tr, { n: 128, seed: 8, target: "reg", attrs: { task: "stsb", split: "train" } });
  await makeStore(dv, { n: 64, seed: 9, target: "reg", attrs: { task: "stsb", split: "dev" } });
  const r = await trainAp({
    ...base,
    task: "stsb",
    model: "avg",
    trainH5: tr,
    devH5: dv,
    epochs: 10,
    lr: 1e-1,
    outDir: `${dir}/stsb`,
  });
  ok(r.devMetrics!.pearson > 0.9, `pearson ${r.devMetrics!.pearson}`);
  r.head.dispose();
});

Deno.test("a head directory trained with other settings is refused, naming them", async () => {
  const out = `${dir}/replace`;
  // Another capture: its fingerprint covers the rows' inputs_hash (and the weights' hash).
  const other = `${dir}/other.h5`;
  await makeStore(other, {
    n: 64,
    seed: 4,
    attrs: { task: "sst2", split: "train", inputs_hash: "x" },
  });
  const first = await trainAp({ ...base, epochs: 0.25, outDir: out });
  first.head.dispose();
  const again = await trainAp({ ...base, epochs: 0.25, outDir: out }); // the same: trains again
  again.head.dispose();
  await rejects(
    () => trainAp({ ...base, epochs: 0.25, adapterDim: 8, outDir: out }),
    (e: Error) => /other settings/.test(e.message) && /head: .*"adapterDim":4.*→/.test(e.message),
  );
  await rejects(
    () => trainAp({ ...base, epochs: 0.25, trainH5: other, outDir: out }),
    /other settings \(train: "[0-9a-f]{16}" → "[0-9a-f]{16}"\); /,
  );
  const replaced = await trainAp({
    ...base,
    epochs: 0.25,
    adapterDim: 8,
    outDir: out,
    overwrite: true,
  });
  ok(replaced.head.config.adapterDim === 8);
  replaced.head.dispose();
  const res = JSON.parse(await Deno.readTextFile(`${out}/results.json`));
  ok(res.settings.head.adapterDim === 8);
});

Deno.test("early stopping: a head that cannot improve stops after patience + 1 epochs", async () => {
  // lr 0: the head never changes, so its dev accuracy is the same every epoch. The first
  // evaluation is the best; patience 2 stops after two more, at epoch 3 of 6.
  const perEpoch = 256 / 16;
  const r = await trainAp({
    ...base,
    devH5: devPath,
    epochs: 6,
    lr: 0,
    patience: 2,
    outDir: `${dir}/patience`,
  });
  r.head.dispose();
  deepStrictEqual(r.steps, 3 * perEpoch);
  const s = r.earlyStop!;
  deepStrictEqual(s.evaluations.map((e) => e.at), ["1", "2", "3"]);
  deepStrictEqual([s.best!.at, s.stoppedAt, s.metric, s.patience], ["1", "3", "accuracy", 2]);
  const res = JSON.parse(await Deno.readTextFile(`${dir}/patience/results.json`));
  deepStrictEqual([res.steps, res.earlyStop.stoppedAt, res.settings.patience], [48, "3", 2]);
  // Patience beyond the evaluations changes no step of training: epoch 3's evaluation is the
  // head trained without patience; what is kept is the best epoch (the seed's best snapshot).
  const a = await trainAp({ ...base, devH5: devPath, epochs: 3, lr: 3e-2, outDir: `${dir}/p0` });
  const b = await trainAp({
    ...base,
    devH5: devPath,
    epochs: 3,
    lr: 3e-2,
    patience: 5,
    outDir: `${dir}/p5`,
  });
  deepStrictEqual(a.earlyStop, undefined);
  const evals = b.earlyStop!.evaluations;
  deepStrictEqual([evals.length, b.earlyStop!.stoppedAt, b.steps], [3, undefined, a.steps]);
  deepStrictEqual(evals[2].value, a.devMetrics!.accuracy);
  deepStrictEqual(b.devMetrics!.accuracy, Math.max(...evals.map((e) => e.value)));
  const [ha, hb] = [await a.head.toHost(), await b.head.toHost()];
  a.head.dispose();
  b.head.dispose();
  if (b.earlyStop!.best!.at === "3") {
    for (const [name, w] of ha) deepStrictEqual(hb.get(name)!.data, w.data, name);
  }
});

Deno.test("early stopping on the dev loss (--early-stop loss): lower is better, logged per epoch", async () => {
  // lr 0 again: the dev loss is the same every epoch, so patience 1 stops at epoch 2 of 4; the
  // loss compared is the kind's training loss on the dev rows (logged as devLoss).
  const perEpoch = 256 / 16;
  const r = await trainAp({
    ...base,
    devH5: devPath,
    epochs: 4,
    lr: 0,
    patience: 1,
    earlyStop: "loss",
    outDir: `${dir}/patience-loss`,
  });
  r.head.dispose();
  deepStrictEqual(r.steps, 2 * perEpoch);
  const s = r.earlyStop!;
  deepStrictEqual([s.best!.at, s.stoppedAt, s.metric, s.lowerIsBetter], [
    "1",
    "2",
    "dev_loss",
    true,
  ]);
  ok(s.evaluations.every((e) => e.value > 0 && e.value === s.evaluations[0].value), "one loss");
  const log = (await Deno.readTextFile(`${dir}/patience-loss/train_log.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l)).filter((e) => e.devLoss !== undefined);
  deepStrictEqual(log.map((e) => e.devLoss), s.evaluations.map((e) => e.value));
  const res = JSON.parse(await Deno.readTextFile(`${dir}/patience-loss/results.json`));
  deepStrictEqual(res.settings.earlyStop, "loss");
});

Deno.test("early stopping keeps the best epoch's head: its weights, logits and metrics", async () => {
  // A dev metric that only gets worse (1, 1/2, 1/3, ...) while the head trains (lr > 0): epoch
  // 1 is the best; patience 2 stops after epoch 3 and the head saved and returned is epoch 1's.
  const seen: Float32Array[] = [];
  const r = await trainAp({
    ...base,
    devH5: devPath,
    epochs: 5,
    lr: 5e-2,
    patience: 2,
    outDir: `${dir}/best`,
    metrics: (logits) => {
      seen.push(logits.slice());
      return { accuracy: 1 / seen.length };
    },
  });
  deepStrictEqual(r.earlyStop!.stoppedAt, "3");
  deepStrictEqual(r.earlyStop!.best!.at, "1");
  ok(seen[0].some((x, i) => x !== seen[2][i]), "the head changed between epochs 1 and 3");
  // The final evaluation (the 4th call) is of epoch 1's weights: epoch 1's logits.
  deepStrictEqual(seen.length, 4);
  deepStrictEqual(seen[3], seen[0]);
  const saved = decodeNpy(await Deno.readFile(r.devLogitsPath!), r.devLogitsPath!);
  deepStrictEqual(saved.data, seen[0]);
  const reloaded = await loadHead(r.headPath);
  const again = await evaluateAp(reloaded, devPath, "sst2");
  deepStrictEqual(again.logits, seen[0]);
  reloaded.dispose();
  r.head.dispose();
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
