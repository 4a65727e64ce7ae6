// Layer probes from a stream (train/heads/probe.ts with `stream`, train/heads/probe_source.ts
// StreamPooled): a tiny BERT computes each batch's hidden states once for every layer's probe,
// pooled on the GPU ([CLS], or the mean over real tokens) in the same float32 operations as the
// store path pools on the host, so each layer's probe equals the probe trained from float32
// full-layout stores captured from the same BERT and rows: weights, losses, dev logits and
// metrics bit for bit. BERT runs once per batch for all the probes, and once over the dev rows.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { capture } from "../capture.ts";
import { makeTinyBert } from "../../model/init.ts";
import { decodeNpy } from "../../data/npy.ts";
import { writeSyntheticSst2 } from "../../data/synthetic.ts";
import { trainProbes } from "./probe.ts";
import { StreamSource } from "../sources.ts";

const dir = await Deno.makeTempDir({ prefix: "probe_stream_test_" });
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

const settings = { task: "sst2", batchSize: 16, epochs: 2, lr: 3e-2, seed: 3, silent: true };
const stream = { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 24 };
const npy = async (p: string) => decodeNpy(await Deno.readFile(p)).data as Float32Array;

for (const pool of ["cls", "mean"] as const) {
  Deno.test(`stream probes (--pool ${pool}) equal the store's probes bit for bit`, async () => {
    const a = await trainProbes({
      ...settings,
      pool,
      trainH5: `${dir}/train.h5`,
      devH5: `${dir}/dev.h5`,
      outDir: `${dir}/store-${pool}`,
    });
    // Rows BERT computes: each training row once per epoch for every probe, the dev rows once.
    const take = StreamSource.prototype.take;
    let rows = 0;
    StreamSource.prototype.take = function (this: StreamSource, which: ArrayLike<number>) {
      rows += which.length;
      return take.call(this, which);
    };
    const b = await trainProbes({ ...settings, pool, stream, outDir: `${dir}/stream-${pool}` })
      .finally(() => StreamSource.prototype.take = take);
    try {
      deepStrictEqual(rows, settings.epochs * 80 + 24, "one forward per row and epoch; dev once");
      deepStrictEqual(b.layers, [0, 1, 2], "L+1 probes of a 2-layer BERT");
      deepStrictEqual(b.layers, a.layers);
      deepStrictEqual(b.curve.pool, pool);
      for (const [i, k] of a.layers.entries()) {
        const p = a.probes[i], q = b.probes[i];
        const wa = await p.head.toHost(), wb = await q.head.toHost();
        for (const [n, t] of wa) deepStrictEqual(wb.get(n)!.data, t.data, `layer ${k} ${n}`);
        deepStrictEqual(q.history.map((h) => h.loss), p.history.map((h) => h.loss));
        deepStrictEqual(await npy(q.devLogitsPath!), await npy(p.devLogitsPath!), `layer ${k}`);
      }
      deepStrictEqual(
        b.curve.points.map((p) => p.metrics),
        a.curve.points.map((p) => p.metrics),
      );
      ok(b.files.length === 3, "probe.json, .md, .svg");
      deepStrictEqual(
        (JSON.parse(await Deno.readTextFile(`${dir}/stream-${pool}/probe.json`)) as {
          settings: { source: unknown };
        }).settings.source,
        { stream: `${dir}/bert` },
      );
    } finally {
      for (const p of [...a.probes, ...b.probes]) p.head.dispose();
    }
  });
}

Deno.test("stream probes: the layout follows --pool (a --layout given is refused)", async () => {
  await rejects(
    trainProbes({ ...settings, stream: { ...stream, layout: "full" }, outDir: `${dir}/lay` }),
    /the stream's layout follows --pool .*leave --layout out/,
  );
});
