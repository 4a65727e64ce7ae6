// What f16-mixed keeps for the backward (model/ops.ts `autocast`, model/bert.ts's layer scopes):
// - the GPU bytes live after a training forward under autocast are float32's minus the planner's
//   bertF16SavedBytesPerRow per row plus the f16 weights (bertF16OperandFixedBytes), to within
//   0.2% of float32's bytes (the small leftovers: pool rounding, the mask, the head), with
//   dropout and without it (where the f16 copy of the attention probabilities is extra);
// - freeing changes no number: the gradients of a mixed step returning only the last hidden
//   state equal, bit for bit, those of the same step returning all of them (nothing freed early);
// - a backward reading a tensor it did not declare throws "used after dispose", not a wrong value;
// - f16 tensors go to matmul only (permute, upload and read refuse them), and autocast refuses an
//   async fn (its awaits would run after autocast ended, silently in float32).
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import { backward, gpu, initGpu, record, scope, Tensor } from "../model/tensor.ts";
import { autocast, crossEntropy, linear, permute, scale } from "../model/ops.ts";
import { BertModel } from "../model/bert.ts";
import { randomBertWeights } from "../model/init.ts";
import type { BertConfig } from "../model/config.ts";
import { bertF16OperandFixedBytes, bertF16SavedBytesPerRow } from "./plan.ts";

const CFG: BertConfig = {
  vocabSize: 50,
  hiddenSize: 32,
  numHiddenLayers: 3,
  numAttentionHeads: 4,
  intermediateSize: 72,
  maxPositionEmbeddings: 40,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
} as BertConfig;
const B = 3, S = 20;

function batch() {
  const n = B * S;
  const mask = Int32Array.from({ length: n }, (_, i) => (i % S < S - 3 * (i / S | 0) ? 1 : 0));
  return {
    batch: B,
    seq: S,
    inputIds: Int32Array.from({ length: n }, (_, i) => (i * 7 + 3) % CFG.vocabSize),
    tokenTypeIds: Int32Array.from({ length: n }, (_, i) => (i % S > S / 2 ? 1 : 0)),
    attentionMask: mask,
  };
}

/** Live bytes (above the weights) after the forward of a training step, and its gradients. */
function step(
  bert: BertModel,
  mixed: boolean,
  dropout: number,
  hidden: "all" | "last",
): { held: number; grads: Promise<Float32Array[]> } {
  const g = gpu();
  const base = g.liveBytes;
  let held = 0;
  scope(() => {
    const run = () => {
      const out = bert.forward(batch(), { dropout, seed: 3, step: 1, hidden });
      const logits = linear(out.pooled, bert.params.get("pooler.dense.weight")!);
      return crossEntropy(logits.reshape([B * CFG.hiddenSize / 2, 2]), new Int32Array(B * 16));
    };
    const loss = mixed ? autocast(run) : run();
    held = g.liveBytes - base;
    backward(scale(loss, 1024));
  });
  const params = [...bert.params.values()];
  const grads = Promise.all(params.map((p) => p.grad!.readF32()));
  grads.then(() => params.forEach((p) => (p.grad!.dispose(), p.grad = null)));
  return { held, grads };
}

Deno.test("f16-mixed keeps for the backward what the planner counts: f16 copies in place of float32", async () => {
  await initGpu();
  const bert = BertModel.fromHost(CFG, randomBertWeights(CFG, 5), true);
  for (const dropout of [0.1, 0]) {
    const f32 = step(bert, false, dropout, "last");
    await f32.grads;
    const mixed = step(bert, true, dropout, "last");
    await mixed.grads;
    const want = f32.held - B * bertF16SavedBytesPerRow(CFG, S, dropout > 0) +
      bertF16OperandFixedBytes(CFG);
    console.log(`dropout ${dropout}: f32 ${f32.held}, mixed ${mixed.held}, planned ${want}`);
    ok(
      Math.abs(mixed.held - want) <= 0.002 * f32.held,
      `dropout ${dropout}: mixed holds ${mixed.held} bytes, planner says ${want} (f32 ${f32.held})`,
    );
    if (dropout > 0) ok(mixed.held < 0.85 * f32.held, `${mixed.held} vs ${f32.held}`);
  }
  bert.dispose();
});

Deno.test("freeing what the backward does not read changes no gradient, bit for bit", async () => {
  await initGpu();
  const bert = BertModel.fromHost(CFG, randomBertWeights(CFG, 6), true);
  for (const mixed of [true, false]) {
    const all = await step(bert, mixed, 0.1, "all").grads;
    const last = await step(bert, mixed, 0.1, "last").grads;
    deepStrictEqual(last, all, mixed ? "f16-mixed" : "f32");
  }
  bert.dispose();
});

Deno.test("a backward reading a tensor its op did not declare throws, naming it", async () => {
  await initGpu();
  const w = Tensor.from([1, 2, 3, 4], [2, 2], { requiresGrad: true, name: "w" });
  const seed = Tensor.from([1, 1, 1, 1], [2, 2], { name: "seed" });
  const out = scope(() => {
    const doubled = scale(w, 2); // its own backward reads nothing
    const y = Tensor.empty([2, 2], "f32", "y");
    // A node that reads `doubled` but declares it reads nothing: the scope frees it.
    record([doubled], y, () => {
      void doubled.buffer; // reads it all the same
      return [Tensor.zeros([2, 2])];
    }, { reads: [] });
    return y;
  });
  throws(() => backward(out, seed), /used after dispose/);
  w.dispose();
  seed.dispose();
});

Deno.test("f16 copies are matmul-only, and autocast refuses an async fn", async () => {
  await initGpu();
  throws(() => Tensor.from([1, 2], [2], { dtype: "f16" }), /f16 tensors are made on the GPU/);
  const half = Tensor.empty([2, 3], "f16", "h");
  throws(
    () => permute(half, [1, 0]),
    /permute: tensor 'h' \[2, 3\] f16: f16 copies are matmul-only/,
  );
  await rejects(() => half.read(), /read an f16 tensor widened/);
  throws(() => autocast(async () => await Promise.resolve(1)), /fn must be synchronous/);
  half.dispose();
});
