// The planner (train/plan.ts): sizes and splits at the seed's real shapes, the errors when one
// row cannot fit or a weight is over the device's limit, and — on tiny models — that a step
// split into micro-batches (BERTVISION_MAX_BINDING_MIB's `maxBindingMiB`) gives the unsplit
// step's losses and weights within float32 rounding, for fine-tuning and for head training.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import {
  bertParamBytes,
  bertRowPeakBytes,
  bertRowTensors,
  bertWeightTensors,
  checkWeights,
  formatPlan,
  type Limits,
  splitBatch,
} from "./plan.ts";
import { fineTune } from "./finetune.ts";
import { trainAp } from "./heads/mod.ts";
import { capture } from "./capture.ts";
import type { BertConfig } from "../model/config.ts";
import { loadBertCheckpoint } from "../model/checkpoint.ts";
import { makeTinyBert } from "../model/init.ts";
import { decodeNpy } from "../data/npy.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";

const MIB = 2 ** 20;
const BASE: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};
const LLVMPIPE: Limits = { device: 128 * MIB, split: 128 * MIB, source: "llvmpipe" };

Deno.test("BERT-base at the seed's sizes: what each stage splits into under 128 MiB", () => {
  // SQuAD capture, batch 16 × 384, full layout: the issue's "234.0 MiB" buffer.
  const cap = splitBatch("capture", 16, bertRowTensors(BASE, 384, "full"), LLVMPIPE);
  deepStrictEqual(cap.largest.bytesPerRow * 16, 234 * MIB + 0);
  deepStrictEqual([cap.micro, cap.parts], [8, 2]);
  // Fine-tuning at batch 32 × 384: attention scores 12·384²·4 = 6.75 MiB per row (216 MiB).
  const ft = splitBatch("fine-tune", 32, bertRowTensors(BASE, 384), LLVMPIPE);
  deepStrictEqual(ft.largest.bytesPerRow * 32, 216 * MIB);
  deepStrictEqual([ft.micro, ft.parts], [18, 2]);
  // Batch 16 × 128 fits whole.
  deepStrictEqual(splitBatch("fine-tune", 16, bertRowTensors(BASE, 128), LLVMPIPE).parts, 1);
  // BERT-base weights fit; a vocabulary of 50k at hidden 1024 (195 MiB) does not.
  checkWeights("fine-tune", bertWeightTensors(BASE), LLVMPIPE);
  throws(
    () =>
      checkWeights(
        "fine-tune",
        bertWeightTensors({ ...BASE, vocabSize: 50000, hiddenSize: 1024 }),
        LLVMPIPE,
      ),
    /word embeddings \[50000×1024\] needs 195\.3 MiB, over this device's limit of 128\.0 MiB; it cannot be split/,
  );
  const tight: Limits = { device: 128 * MIB, split: 4 * MIB, source: "BERTVISION_MAX_BINDING_MIB" };
  throws(
    () => splitBatch("capture", 16, bertRowTensors(BASE, 384, "full"), tight),
    /capture: one row's captured states \[13×384×768\] needs 14\.6 MiB, over the limit of 4\.0 MiB \(BERTVISION_MAX_BINDING_MIB\); .*raise BERTVISION_MAX_BINDING_MIB/,
  );
  // A memory budget splits further: BERT-base fine-tuning keeps ~1.2 GB of activations and
  // gradients per 384-token row; 16 GiB (e.g. 3/4 of a 24 GB host for llvmpipe) fits 12.
  const fixed = 4 * bertParamBytes(BASE);
  const budget: Limits = { ...LLVMPIPE, budget: 16 * 2 ** 30, budgetSource: "test" };
  const mem = { fixed, perRow: bertRowPeakBytes(BASE, 384, true) };
  const m = splitBatch("fine-tune", 32, bertRowTensors(BASE, 384), budget, mem);
  deepStrictEqual([m.micro, m.parts, m.byMemory], [12, 3, true]);
  throws(
    () => splitBatch("fine-tune", 32, bertRowTensors(BASE, 384), { ...budget, budget: fixed }, mem),
    /fine-tune: 1\.\d+ GiB of weights and state plus one row's 1\.\d+ GiB of activations exceed the memory budget/,
  );
  const text = formatPlan([{
    stage: "capture train",
    rows: 100,
    examples: 90,
    split: cap,
    peakBytes: 300 * MIB,
  }]);
  ok(
    text.includes("capture train: 100 rows (90 examples); batch 16 as 2 micro-batches of ≤ 8"),
    text,
  );
});

/** A tiny BERT and generated SST-2 data where 1 MiB forces splits at batch 32 × 64 tokens. */
async function fixture(dir: string) {
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 4,
    layers: 2,
    hidden: 64,
    heads: 4,
    intermediate: 128,
    maxPositions: 64,
  });
  await writeSyntheticSst2(`${dir}/glue`, { train: 96, dev: 40, seed: 3 });
}

/** ‖a − b‖ / ‖a − base‖ over every tensor: the difference against the size of the update. */
function relativeUpdateDiff(
  a: Map<string, { data: Float32Array }>,
  b: Map<string, { data: Float32Array }>,
  base: Map<string, { data: Float32Array }>,
): number {
  let diff = 0, upd = 0;
  for (const [name, t] of a) {
    const u = b.get(name)!.data, w0 = base.get(name)!.data;
    for (let i = 0; i < t.data.length; i++) {
      diff += (t.data[i] - u[i]) ** 2;
      upd += (t.data[i] - w0[i]) ** 2;
    }
  }
  return Math.sqrt(diff / upd);
}

Deno.test("fine-tuning split into micro-batches equals the unsplit run (dropout on)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixture(dir);
    const common = {
      modelDir: `${dir}/bert`,
      task: "sst2",
      dataDir: `${dir}/glue`,
      batchSize: 32,
      epochs: 2, // 6 steps
      lr: 1e-3,
      maxSeqLength: 64,
      dropout: 0.1,
      seed: 5,
      logEvery: 1,
      silent: true,
    };
    const whole = await fineTune({ ...common, outDir: `${dir}/whole` });
    const split = await fineTune({ ...common, outDir: `${dir}/split`, maxBindingMiB: 1 });
    // Attention scores are 4·64²·4 = 64 KiB per row and the feed-forward 32 KiB: 16 rows a part.
    deepStrictEqual([whole.split.parts, split.split.micro, split.split.parts], [1, 16, 2]);
    const a = whole.losses.map((l) => l.loss), b = split.losses.map((l) => l.loss);
    deepStrictEqual(a.length, 6);
    a.forEach((x, i) =>
      ok(
        Math.abs(x - b[i]) <= 1e-5 * Math.max(1, Math.abs(x)),
        `step ${i + 1}: loss ${x} vs ${b[i]}`,
      )
    );
    const w0 = (await loadBertCheckpoint(`${dir}/bert`)).weights;
    const wa = (await loadBertCheckpoint(whole.checkpoints["2"])).weights;
    const wb = (await loadBertCheckpoint(split.checkpoints["2"])).weights;
    // Six AdamW steps from gradients summed in another order: float32 rounding, amplified where
    // a gradient is near 0 (AdamW divides by its running RMS), stays far below the update.
    const r = relativeUpdateDiff(wa, wb, w0);
    ok(r < 1e-3, `weights differ by ${r} of the update`);
    deepStrictEqual(split.dev["2"], whole.dev["2"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("capture and head training split into micro-batches equal the unsplit runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await fixture(dir);
    const h5 = async (split: string, name: string, maxBindingMiB?: number) => {
      await capture({
        model: `${dir}/bert`,
        task: "sst2",
        split,
        dataDir: `${dir}/glue`,
        out: `${dir}/${name}.h5`,
        maxSeqLength: 64,
        batchSize: 32,
        silent: true,
        maxBindingMiB,
      });
      return `${dir}/${name}.h5`;
    };
    // Full layout: 3·64·64·4 = 48 KiB per row, 21 rows a part under 1 MiB.
    const train = await h5("train", "train"), dev = await h5("dev", "dev");
    const trainSplit = await h5("train", "train_split", 1);
    const bytes = async (p: string) => {
      const { H5Reader } = await import("../data/h5_store.ts");
      const r = await H5Reader.open(p);
      try {
        return r.readRows(0, r.shape.n).embeds;
      } finally {
        r.close();
      }
    };
    deepStrictEqual(await bytes(trainSplit), await bytes(train), "captured states are identical");
    const head = async (out: string, maxBindingMiB?: number) => {
      const r = await trainAp({
        trainH5: train,
        devH5: dev,
        task: "sst2",
        adapterDim: 4,
        batchSize: 32,
        epochs: 2,
        lr: 3e-3,
        seed: 2,
        outDir: `${dir}/${out}`,
        silent: true,
        maxBindingMiB,
      });
      const w = await r.head.toHost();
      r.head.dispose();
      return { r, w };
    };
    const whole = await head("ap_whole"), split = await head("ap_split", 1);
    deepStrictEqual(whole.r.split.parts, 1);
    ok(split.r.split.parts > 1, `1 MiB splits the batch: ${JSON.stringify(split.r.split)}`);
    for (const [name, t] of whole.w) {
      const u = split.w.get(name)!.data;
      const m = t.data.reduce((x, v, i) => Math.max(x, Math.abs(v - u[i])), 0);
      ok(m < 1e-5, `${name}: max difference ${m}`);
    }
    const la = decodeNpy(await Deno.readFile(whole.r.devLogitsPath!)).data as Float32Array;
    const lb = decodeNpy(await Deno.readFile(split.r.devLogitsPath!)).data as Float32Array;
    ok(la.every((v, i) => Math.abs(v - lb[i]) < 1e-4), "dev logits agree");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
