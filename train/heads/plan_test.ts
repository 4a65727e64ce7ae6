// The head plan's peak bytes against a real training run's peak live bytes, at tiny shapes: for
// every pooling and read-out, float32's plan holds float32's measured peak and f16-mixed's plan
// (config.ts headF16RowBytes / headF16FixedBytes: the f16 copies the head's matmuls keep) holds
// f16-mixed's, whose peak from a store is above float32's (the copies add bytes: the float32 rows
// stay alive); a stream's plan counts its BERT (weights and float32 forward) too.
// Live bytes (kernels/device.ts peakLiveBytes), not the pool's idle buffers.
import { ok } from "node:assert/strict";
import { H5Store } from "../../data/h5_store.ts";
import { randn } from "../../tests/helpers.ts";
import { gpu, initGpu } from "../../model/tensor.ts";
import { makeTinyBert } from "../../model/init.ts";
import { writeSyntheticSst2 } from "../../data/synthetic.ts";
import { planHeads, trainAp, type TrainApOptions } from "./mod.ts";

await initGpu();
const L = 3, T = 8, F = 16, N = 64;
const dir = await Deno.makeTempDir({ prefix: "head_plan_test" });

/** A store of `N` random rows for `task` (labels: class 0/1, a score, or a start/end span). */
async function store(task: "sst2" | "stsb" | "squad"): Promise<string> {
  const path = `${dir}/${task}.h5`;
  if (await Deno.stat(path).then(() => true, () => false)) return path;
  const span = task === "squad";
  const s = await H5Store.create(path, {
    n: N,
    layers: L,
    tokens: T,
    hidden: F,
    layout: "full",
    dtype: "f32",
    labelType: task === "stsb" ? "float32" : "int64",
    labelWidth: span ? 2 : 1,
    chunkRows: 8,
    attrs: { model_id: "tiny-bert", task, split: "train" },
  });
  await s.writeRows(0, {
    embeds: randn(3, N * L * T * F),
    inputIds: new Int32Array(N * T),
    tokenTypeIds: new Int32Array(N * T),
    attentionMask: new Int32Array(N * T).fill(1),
    labels: Array.from({ length: N * (span ? 2 : 1) }, (_, i) => span ? i % T : i % 2),
    idx: Array.from({ length: N }, (_, i) => i),
  });
  await s.close();
  return path;
}

// The stream: a tiny BERT's forward (float32 either way) feeds the head each batch.
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 6,
  layers: 2,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  maxPositions: 64,
});
await writeSyntheticSst2(`${dir}/glue`, { train: 48, dev: 8, seed: 9 });
const stream = { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 24 };

const cases: [string, Partial<TrainApOptions> & { task: "sst2" | "stsb" | "squad" }][] = [
  ["ap shared, pooled", { task: "sst2", model: "ap", adapterDim: 4 }],
  ["ap per-layer, pooled", { task: "sst2", model: "ap", adapterDim: 4, shared: false }],
  ["lp, pooled", { task: "sst2", model: "lp" }],
  ["avg, pooled regression", { task: "stsb", model: "avg" }],
  ["ap shared, token + skip", { task: "squad", model: "ap", skip: true }],
  ["stream, ap shared, pooled", { task: "sst2", model: "ap", adapterDim: 4, stream }],
];

Deno.test("the head plan's peak holds a training run's peak live bytes, f32 and f16-mixed", async () => {
  const g = gpu();
  for (const [what, c] of cases) {
    const peaks: Record<string, number> = {};
    for (const precision of ["f32", "f16-mixed"] as const) {
      const o: TrainApOptions = {
        trainH5: c.stream ? undefined : await store(c.task),
        batchSize: 16,
        epochs: 1,
        lr: 1e-2,
        seed: 5,
        outDir: `${dir}/${what.replaceAll(/\W+/g, "_")}_${precision}`,
        silent: true,
        precision,
        ...c,
      };
      const [plan] = await planHeads(o, false);
      ok(plan.notes![1].startsWith(`precision ${precision} (given`), plan.notes![1]);
      const base = g.liveBytes;
      g.resetPeak();
      const r = await trainAp(o);
      const peak = g.peakLiveBytes - base;
      r.head.dispose();
      console.log(`${what} ${precision}: planned ${plan.peakBytes}, measured ${peak}`);
      ok(plan.peakBytes >= peak, `${what} ${precision}: plan ${plan.peakBytes} < measured ${peak}`);
      peaks[precision] = peak;
    }
    // From a store the f16 copies add to the peak; a stream's peak is BERT's float32 forward.
    if (!c.stream) {
      ok(
        peaks["f16-mixed"] > peaks.f32,
        `${what}: f16-mixed ${peaks["f16-mixed"]} vs ${peaks.f32}`,
      );
    }
  }
});
