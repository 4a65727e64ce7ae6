// The less-data sweep (train/heads/fractions.ts): heads on nested fractions trained from one pass —
// one store read, or one BERT forward, per batch of the largest fraction's rows — each equal to
// that fraction trained alone with trainFraction (weights, losses, dev logits, early stopping);
// the table and curve with BERT's line read from the checkpoint; a rerun trains only the
// fractions it did not finish. A tiny BERT over generated SST-2 sentences, stored and streamed.
import { deepStrictEqual, match, ok, rejects } from "node:assert/strict";
import { H5Reader } from "../../data/h5_store.ts";
import { decodeNpy } from "../../data/npy.ts";
import { writeSyntheticSst2 } from "../../data/synthetic.ts";
import { makeTinyBert } from "../../model/init.ts";
import { trainAp, type TrainApResult } from "./mod.ts";
import { capture } from "../capture.ts";
import { checkpointDevMetrics, plottedKeys, trainFractions } from "./fractions.ts";
import { getTask } from "../../tasks/mod.ts";
import { StreamSource } from "../sources.ts";

const dir = await Deno.makeTempDir({ prefix: "fractions_test_" });
const bert = `${dir}/bert`;
await makeTinyBert({
  out: bert,
  seed: 4,
  layers: 2,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  maxPositions: 64,
});
await writeSyntheticSst2(`${dir}/glue`, { train: 96, dev: 24, seed: 5 });
for (const split of ["train", "dev"]) {
  await capture({
    model: bert,
    task: "sst2",
    split,
    dataDir: `${dir}/glue`,
    out: `${dir}/${split}.h5`,
    maxSeqLength: 24,
    silent: true,
  });
}
// What `glue --model bert` leaves in a checkpoint: the completion marker and its dev metrics.
await Deno.writeTextFile(`${bert}/complete.json`, "{}\n");
await Deno.writeTextFile(`${bert}/dev_metrics.json`, JSON.stringify({ accuracy: 0.625 }));

const head = {
  task: "sst2",
  adapterDim: 4,
  batchSize: 16,
  epochs: 2,
  lr: 3e-3,
  seed: 7,
  silent: true,
};
const store = { ...head, trainH5: `${dir}/train.h5`, devH5: `${dir}/dev.h5` };

async function logits(path: string): Promise<Float32Array> {
  return decodeNpy(await Deno.readFile(path)).data as Float32Array;
}

/** Asserts two heads are the same: weights bit for bit, losses, steps, dev logits and metrics. */
async function same(a: TrainApResult, b: TrainApResult, what: string): Promise<void> {
  deepStrictEqual(a.trainRows, b.trainRows, `${what}: rows`);
  deepStrictEqual(a.steps, b.steps, `${what}: steps`);
  deepStrictEqual(a.history.map((h) => h.loss), b.history.map((h) => h.loss), `${what}: losses`);
  const wa = await a.head.toHost(), wb = await b.head.toHost();
  for (const [n, t] of wa) deepStrictEqual(wb.get(n)!.data, t.data, `${what}: ${n}`);
  deepStrictEqual(await logits(a.devLogitsPath!), await logits(b.devLogitsPath!), what);
  deepStrictEqual(a.devMetrics, b.devMetrics, `${what}: metrics`);
  deepStrictEqual(a.earlyStop, b.earlyStop, `${what}: early stopping`);
}

/** Counts the training rows read from stores (readIndices) while `fn` runs. */
async function countReads<T>(fn: () => Promise<T>): Promise<{ result: T; reads: number[] }> {
  const proto = H5Reader.prototype, readIndices = proto.readIndices;
  const reads: number[] = [];
  proto.readIndices = function (this: H5Reader, idx: ArrayLike<number>) {
    reads.push(idx.length);
    return readIndices.call(this, idx);
  };
  try {
    return { result: await fn(), reads };
  } finally {
    proto.readIndices = readIndices;
  }
}

Deno.test("store: a head per fraction from one read per batch, each equal to it trained alone", async () => {
  const out = `${dir}/sweep`;
  const { result: sweep, reads } = await countReads(() =>
    trainFractions({ ...store, fractions: [1, 0.25, 0.5], outDir: out, bertScore: 0.7 })
  );
  // One pass: 96 rows in reads of 16, twice (2 epochs); the smaller fractions read nothing more.
  deepStrictEqual(reads, Array(12).fill(16));
  deepStrictEqual(sweep.curve.points.map((p) => [p.fraction, p.rows, p.steps]), [
    [0.25, 24, 4],
    [0.5, 48, 6],
    [1, 96, 12],
  ]);
  // Nested subsets: each fraction's rows hold the smaller fractions'.
  for (let i = 1; i < 3; i++) {
    const bigger = new Set(sweep.heads[i].trainRows);
    ok(sweep.heads[i - 1].trainRows.every((r) => bigger.has(r)), `fraction ${i} nested`);
  }
  try {
    for (const [i, f] of [0.25, 0.5, 1].entries()) {
      const alone = await trainAp({ ...store, trainFraction: f, outDir: `${dir}/alone-${f}` });
      try {
        await same(sweep.heads[i], alone, `fraction ${f}`);
      } finally {
        alone.head.dispose();
      }
      deepStrictEqual(sweep.curve.points[i].metrics, sweep.heads[i].devMetrics);
      deepStrictEqual(sweep.curve.points[i].dir, `${out}/fraction-${f}`);
    }
  } finally {
    for (const h of sweep.heads) h.head.dispose();
  }
  // The table and the curve, with BERT's line as given (--bert-score).
  deepStrictEqual(sweep.curve.references, [
    { label: "BERT (--bert-score)", metrics: { accuracy: 0.7 } },
  ]);
  deepStrictEqual(sweep.files, ["json", "md", "svg"].map((e) => `${out}/fractions.${e}`));
  deepStrictEqual(JSON.parse(await Deno.readTextFile(`${out}/fractions.json`)), sweep.curve);
  const md = await Deno.readTextFile(`${out}/fractions.md`);
  match(md, /\| 25% \| 24 \| 4 \| 0\.\d{4} \|/);
  match(md, /\| BERT \(--bert-score\) \| – \| – \| 0\.7000 \|/);
  const svg = await Deno.readTextFile(`${out}/fractions.svg`);
  deepStrictEqual(svg.match(/<circle class="point"/g)?.length, 3);
  deepStrictEqual(svg.match(/<line class="reference"/g)?.length, 1);

  // A rerun reads no training rows: every fraction is finished with the same settings.
  const again = await countReads(() =>
    trainFractions({ ...store, fractions: [0.25, 0.5, 1], outDir: out })
  );
  deepStrictEqual(again.reads, []);
  deepStrictEqual(again.result.curve.points.map((p) => p.resumed), [true, true, true]);
  deepStrictEqual(
    again.result.curve.points.map((p) => p.metrics),
    sweep.curve.points.map((p) => p.metrics),
  );
  for (const h of again.result.heads) h.head.dispose();
  // A new fraction: only its rows are read (72 rows, twice), only it is trained.
  const more = await countReads(() =>
    trainFractions({ ...store, fractions: [0.25, 0.5, 0.75, 1], outDir: out })
  );
  deepStrictEqual(more.reads, [16, 16, 16, 16, 8, 16, 16, 16, 16, 8]);
  deepStrictEqual(more.result.curve.points.map((p) => !!p.resumed), [true, true, false, true]);
  for (const h of more.result.heads) h.head.dispose();
  // Other settings in a fraction's directory are refused, naming them.
  await rejects(
    trainFractions({ ...store, lr: 1e-2, fractions: [0.5], outDir: out }),
    /fraction-0\.5 \(a head, .*results\.json\) was made with other settings \(.*lr: /,
  );
});

Deno.test("stream: one BERT forward per batch feeds every fraction; with early stopping each equals alone", async () => {
  const stream = { model: bert, dataDir: `${dir}/glue`, maxSeqLength: 24 };
  // Four epochs, patience 1: a head may stop while the others go on (on llvmpipe the half's
  // head stops after epoch 2, the whole set's after epoch 3).
  const opts = { ...head, epochs: 4, patience: 1, lr: 5e-3, stream };
  const proto = StreamSource.prototype, take = proto.take;
  let forwarded: number[] = [];
  proto.take = function (this: StreamSource, rows: ArrayLike<number>) {
    if (this.rows.split === "train") forwarded.push(rows.length);
    return take.call(this, rows);
  };
  try {
    const sweep = await trainFractions({
      ...opts,
      fractions: [0.5, 1],
      outDir: `${dir}/stream-sweep`,
    });
    const swept = forwarded;
    ok(swept.every((n) => n <= 16), "forwards of at most a batch");
    const alone: number[] = [];
    try {
      for (const [i, f] of [0.5, 1].entries()) {
        forwarded = [];
        const r = await trainAp({ ...opts, trainFraction: f, outDir: `${dir}/stream-alone-${f}` });
        alone.push(forwarded.reduce((a, b) => a + b, 0));
        try {
          await same(sweep.heads[i], r, `stream fraction ${f}`);
        } finally {
          r.head.dispose();
        }
      }
    } finally {
      for (const h of sweep.heads) h.head.dispose();
    }
    // The sweep forwards each row once per epoch in which some head still trains on it: in
    // each epoch, the largest subset of a head still training (not the heads' rows together).
    const epochsOf = sweep.heads.map((h) => h.steps / Math.ceil(h.trainRows.length / 16));
    let want = 0;
    for (let e = 0; e < 4; e++) {
      want += Math.max(0, ...sweep.heads.map((h, i) => e < epochsOf[i] ? h.trainRows.length : 0));
    }
    deepStrictEqual(swept.reduce((a, b) => a + b, 0), want);
    deepStrictEqual(alone, sweep.heads.map((h, i) => h.trainRows.length * epochsOf[i]));
    // BERT's line: the dev metrics the stream's checkpoint recorded.
    deepStrictEqual(sweep.curve.references, [
      { label: "BERT (bert)", metrics: { accuracy: 0.625 } },
    ]);
  } finally {
    proto.take = take;
  }
});

Deno.test("a sweep needs a dev source; bad fractions are refused before anything runs", async () => {
  await rejects(
    trainFractions({ ...head, trainH5: `${dir}/train.h5`, fractions: [0.5, 1], outDir: dir }),
    /--train-fractions draws the dev metric .* give a dev source/,
  );
  await rejects(
    trainFractions({ ...store, fractions: [0.5, 0.5], outDir: `${dir}/bad` }),
    /--train-fractions: 0\.5 is given twice/,
  );
});

Deno.test("BERT's line from a checkpoint: one column per dev split, none without its marker", async () => {
  const mnli = getTask("mnli"), ck = `${dir}/checkpoint-1`;
  const splits = ["dev_matched", "dev_mismatched"];
  await Deno.mkdir(ck);
  await Deno.writeTextFile(`${ck}/dev_matched_metrics.json`, JSON.stringify({ accuracy: 0.83 }));
  await Deno.writeTextFile(`${ck}/dev_mismatched_metrics.json`, JSON.stringify({ accuracy: 0.84 }));
  deepStrictEqual(await checkpointDevMetrics(mnli, ck, splits), null, "no complete.json");
  await Deno.writeTextFile(`${ck}/complete.json`, "{}");
  deepStrictEqual(await checkpointDevMetrics(mnli, ck, splits), {
    label: "BERT (checkpoint-1)",
    metrics: { "MNLI-m": 0.83, "MNLI-mm": 0.84 },
  });
  deepStrictEqual(plottedKeys(mnli, splits), ["MNLI-m", "MNLI-mm"]);
  deepStrictEqual(plottedKeys(getTask("squad"), ["dev"]), ["f1"]);
  // One split evaluated alone: its own file; a split the checkpoint never evaluated: no line.
  deepStrictEqual((await checkpointDevMetrics(mnli, ck, ["dev_matched"]))?.metrics, {
    accuracy: 0.83,
  });
  deepStrictEqual(await checkpointDevMetrics(getTask("sst2"), ck, ["dev"]), null);
});

Deno.test("shards of a sweep train their fractions; the unsharded rerun draws the same curve", async () => {
  const fractions = [0.25, 0.5, 1];
  const whole = await trainFractions({ ...store, fractions, outDir: `${dir}/shard-whole` });
  const out = `${dir}/shard-split`;
  const parts = [];
  for (const index of [1, 0]) { // any order: each shard is its own fractions' directories
    const part = await trainFractions({
      ...store,
      fractions,
      outDir: out,
      shard: { index, count: 2 },
    });
    deepStrictEqual(part.files, [], "a shard draws no curve");
    parts.push(part.curve.points.map((p) => p.fraction));
    for (const h of part.heads) h.head.dispose();
  }
  deepStrictEqual(parts, [[0.5, 1], [0.25]]);
  await Deno.stat(`${out}/fractions.json`).then(() => ok(false, "no curve yet"), () => {});
  const joined = await trainFractions({ ...store, fractions, outDir: out });
  ok(joined.heads.every((h) => h.resumed), "every fraction found finished");
  deepStrictEqual(
    joined.curve.points.map((p) => p.metrics),
    whole.curve.points.map((p) => p.metrics),
  );
  ok(joined.files.some((f) => f.endsWith("fractions.svg")));
  await rejects(
    () => trainFractions({ ...store, fractions, outDir: out, shard: { index: 0, count: 4 } }),
    /leave shard 0 nothing to train; use at most 3 shards/,
  );
  for (const h of [...whole.heads, ...joined.heads]) h.head.dispose();
});

Deno.test("cleanup", async () => {
  await Deno.remove(dir, { recursive: true });
});
