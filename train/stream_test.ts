// Stream mode (train/sources.ts StreamSource): a head trained on hidden states computed on the
// fly by the checkpoint gives the same weights and dev logits as one trained from a full-layout
// float32 store of the same checkpoint; several heads trained together from one stream equal
// each trained alone; SQuAD heads are scored by the official EM/F1 in stream mode, their
// predictions.json and na_probs.json scoring the same by the official evaluator.
import { deepStrictEqual, ok } from "node:assert/strict";
import { trainAp, trainHeads } from "./heads/mod.ts";
import { capture } from "./capture.ts";
import { makeTinyBert } from "../model/init.ts";
import { decodeNpy } from "../data/npy.ts";
import { evaluateFiles } from "../tasks/evaluate.ts";
import { writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";

const dir = await Deno.makeTempDir({ prefix: "stream_test_" });
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 6,
  layers: 2,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  maxPositions: 64,
});
await writeSyntheticSst2(`${dir}/glue`, { train: 80, dev: 24, seed: 9 });

const head = { task: "sst2", adapterDim: 4, batchSize: 16, epochs: 2, lr: 3e-3, silent: true };

async function logits(path: string): Promise<Float32Array> {
  return decodeNpy(await Deno.readFile(path)).data as Float32Array;
}

Deno.test("a head trained from a stream equals one trained from the float32 store", async () => {
  for (const split of ["train", "dev"]) {
    await capture({
      model: `${dir}/bert`,
      task: "sst2",
      split,
      dataDir: `${dir}/glue`,
      out: `${dir}/${split}.h5`,
      maxSeqLength: 24,
      silent: true,
    });
  }
  const store = await trainAp({
    ...head,
    trainH5: `${dir}/train.h5`,
    devH5: `${dir}/dev.h5`,
    outDir: `${dir}/store`,
  });
  const stream = await trainAp({
    ...head,
    stream: { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 24 },
    outDir: `${dir}/stream`,
  });
  try {
    deepStrictEqual(stream.trainRows, store.trainRows);
    deepStrictEqual(stream.history.map((h) => h.loss), store.history.map((h) => h.loss));
    const a = await store.head.toHost(), b = await stream.head.toHost();
    for (const [n, t] of a) deepStrictEqual(b.get(n)!.data, t.data, `${n} identical`);
    deepStrictEqual(await logits(stream.devLogitsPath!), await logits(store.devLogitsPath!));
    deepStrictEqual(stream.devMetrics, store.devMetrics);
  } finally {
    store.head.dispose();
    stream.head.dispose();
  }
});

Deno.test("heads trained together from one stream equal each trained alone", async () => {
  const stream = { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 24 };
  // The data order follows the shared seed (42); each variant differs in head and optimizer.
  const variants = [
    { adapterDim: 4, outDir: `${dir}/multi/a` },
    { model: "lp" as const, lr: 1e-2, l2: 0.01, outDir: `${dir}/multi/b` },
  ];
  const together = await trainHeads({ ...head, stream, outDir: `${dir}/multi` }, variants);
  for (const [i, v] of variants.entries()) {
    const alone = await trainAp({ ...head, ...v, stream, outDir: `${dir}/alone${i}` });
    const a = await alone.head.toHost(), b = await together[i].head.toHost();
    for (const [n, t] of a) deepStrictEqual(b.get(n)!.data, t.data, `head ${i} ${n}`);
    deepStrictEqual(together[i].devMetrics, alone.devMetrics);
    alone.head.dispose();
    together[i].head.dispose();
  }
});

Deno.test("a SQuAD head in stream mode is scored by the official EM/F1", async () => {
  await writeSyntheticSquad(`${dir}/glue`, "train-v2.0", { articles: 6, seed: 1 });
  await writeSyntheticSquad(`${dir}/glue`, "dev-v2.0", { articles: 3, seed: 2 });
  const r = await trainAp({
    task: "squad",
    stream: { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 32 },
    batchSize: 8,
    epochs: 1,
    silent: true,
    outDir: `${dir}/squad`,
  });
  try {
    deepStrictEqual(r.devMetrics!.total, 6);
    ok(r.devMetrics!.f1 >= r.devMetrics!.exact, JSON.stringify(r.devMetrics));
    deepStrictEqual(decodeNpy(await Deno.readFile(r.devLogitsPath!)).shape.slice(1), [32, 2]);
    // Its answers, as the official evaluator reads them, score the same.
    const scored = await evaluateFiles({
      task: "squad",
      data: `${dir}/glue/squad/dev-v2.0.json`,
      pred: `${dir}/squad/predictions.json`,
      naProb: `${dir}/squad/na_probs.json`,
    });
    deepStrictEqual(scored, r.devMetrics);
  } finally {
    r.head.dispose();
  }
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
