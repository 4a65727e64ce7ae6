// BERT on the kernels against the TF.js BERT (tests/oracle): all L+1 hidden states and the
// pooler, for a tiny config and for BERT-base shapes; padding invariance; every parameter's
// gradient through the whole model.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import type * as tfType from "@tensorflow/tfjs";
import { assertClose, oracle, randn } from "../tests/helpers.ts";
import { randomHostWeights, tfBertForward, toTfWeights } from "../tests/oracle/tf_bert.ts";
import { MASK_VALUE as ORACLE_MASK } from "../tests/oracle/tf_bert.ts";
import type { BertConfig } from "./config.ts";
import { bertWeightShapes } from "./config.ts";
import { type BertBatch, BertModel, MASK_VALUE } from "./bert.ts";
import { backward, initGpu, noGrad, scope, Tensor } from "./tensor.ts";
import { add, mul, sumAll } from "./ops.ts";

const tf = await oracle();

const tiny: BertConfig = {
  vocabSize: 99,
  hiddenSize: 24,
  numHiddenLayers: 2,
  numAttentionHeads: 3,
  intermediateSize: 37,
  maxPositionEmbeddings: 40,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

/** A batch of B sequences of length S; sequence b has S - 2b real tokens (at least 2). */
function makeBatch(cfg: BertConfig, B: number, S: number, seed: number): BertBatch {
  const r = randn(seed, B * S);
  const inputIds = new Int32Array(B * S), tokenTypeIds = new Int32Array(B * S);
  const attentionMask = new Int32Array(B * S);
  for (let b = 0; b < B; b++) {
    const real = Math.max(2, S - 2 * b);
    for (let s = 0; s < S; s++) {
      const i = b * S + s;
      if (s < real) {
        inputIds[i] = s === 0 ? 2 : 1 + (Math.floor(Math.abs(r[i]) * 1e6) % (cfg.vocabSize - 1));
        tokenTypeIds[i] = s > real / 2 ? 1 : 0;
        attentionMask[i] = 1;
      }
    }
  }
  return { inputIds, tokenTypeIds, attentionMask, batch: B, seq: S };
}

async function compareForward(
  cfg: BertConfig,
  B: number,
  S: number,
  std: number,
  tol: { atol: number; rtol: number },
) {
  await initGpu();
  const host = randomHostWeights(cfg, 11, std);
  const model = BertModel.fromHost(cfg, host);
  const batch = makeBatch(cfg, B, S, 5);
  const ours = await noGrad(() =>
    scope(async () => {
      const out = model.forward(batch);
      return {
        hidden: await Promise.all(out.hidden.map((h) => h.readF32())),
        pooled: await out.pooled.readF32(),
      };
    })
  );
  const tw = toTfWeights(host);
  const ref = tf.tidy(() => {
    const o = tfBertForward(cfg, tw, batch.inputIds, batch.tokenTypeIds, batch.attentionMask, B, S);
    return {
      hidden: o.hidden.map((h) => h.dataSync().slice()),
      pooled: o.pooled.dataSync().slice(),
    };
  });
  deepStrictEqual(ours.hidden.length, cfg.numHiddenLayers + 1);
  ours.hidden.forEach((h, l) => assertClose(h, ref.hidden[l], tol, `hidden state ${l}`));
  assertClose(ours.pooled, ref.pooled, tol, "pooled");
  tf.dispose(Object.values(tw));
  model.dispose();
}

Deno.test("BERT tiny (awkward sizes): all hidden states and pooled match TF.js", async () => {
  // LayerNorm outputs are O(1); two layers of sums of ≤ 37 products, softmax, erf GELU (the
  // oracle's erf carries 1.5e-7): atol 5e-6, rtol 1e-5.
  await compareForward(tiny, 3, 13, 0.2, { atol: 5e-6, rtol: 1e-5 });
});

Deno.test("BERT-base shapes (768 hidden, 12 layers, 12 heads, 3072): hidden states and pooled", async () => {
  // Real BERT-base dimensions with a 512-token vocabulary (the word table's size does not change
  // the arithmetic; it would only slow the upload). Sums of 768–3072 products through 12 layers:
  // float32 rounding ~√K·ε per matmul, renormalised by each LayerNorm: atol 2e-5, rtol 1e-4.
  const base: BertConfig = {
    ...tiny,
    vocabSize: 512,
    hiddenSize: 768,
    numHiddenLayers: 12,
    numAttentionHeads: 12,
    intermediateSize: 3072,
    maxPositionEmbeddings: 512,
  };
  await compareForward(base, 2, 9, 0.02, { atol: 2e-5, rtol: 1e-4 });
});

Deno.test("BERT-large shapes (1024 hidden, 24 layers, 16 heads, 4096) fit and match TF.js", async () => {
  // 302M parameters (a 512-token vocabulary instead of 30,522; every buffer is still at BERT-large
  // size: the 4096×1024 feed-forward weights are 16 MiB each). Deeper than BERT-base, so the
  // rounding of 24 layers: atol 5e-5, rtol 2e-4.
  const large: BertConfig = {
    ...tiny,
    vocabSize: 512,
    hiddenSize: 1024,
    numHiddenLayers: 24,
    numAttentionHeads: 16,
    intermediateSize: 4096,
    maxPositionEmbeddings: 512,
  };
  await compareForward(large, 1, 6, 0.02, { atol: 5e-5, rtol: 2e-4 });
});

Deno.test("padding does not change a sequence's hidden states", async () => {
  await initGpu();
  const model = BertModel.fromHost(tiny, randomHostWeights(tiny, 3, 0.2));
  const S = 7, P = 12;
  const ids = Int32Array.from([2, 5, 9, 14, 3, 7, 4]);
  const short: BertBatch = {
    inputIds: ids,
    tokenTypeIds: Int32Array.from([0, 0, 0, 1, 1, 1, 1]),
    attentionMask: new Int32Array(S).fill(1),
    batch: 1,
    seq: S,
  };
  const padded: BertBatch = {
    inputIds: Int32Array.from({ length: P }, (_, i) => (i < S ? ids[i] : 0)),
    tokenTypeIds: Int32Array.from({ length: P }, (_, i) => (i < S ? short.tokenTypeIds[i] : 0)),
    attentionMask: Int32Array.from({ length: P }, (_, i) => (i < S ? 1 : 0)),
    batch: 1,
    seq: P,
  };
  const run = (b: BertBatch) =>
    noGrad(() =>
      scope(async () => await Promise.all(model.forward(b).hidden.map((h) => h.readF32())))
    );
  const a = await run(short), p = await run(padded);
  const H = tiny.hiddenSize;
  // exp(-10000 - max) is exactly 0 in float32: padded keys add nothing; only summation order
  // of the softmax denominator differs (atol 1e-6).
  a.forEach((h, l) =>
    assertClose(p[l].slice(0, S * H), h, { atol: 1e-6, rtol: 1e-6 }, `layer ${l}`)
  );
  model.dispose();
});

Deno.test("the mask constant is the oracle's", () => {
  deepStrictEqual(MASK_VALUE, ORACLE_MASK);
});

Deno.test("every parameter's gradient through the whole BERT matches TF.js autodiff", async () => {
  await initGpu();
  const cfg = tiny;
  const host = randomHostWeights(cfg, 21, 0.2);
  const B = 2, S = 6;
  const batch = makeBatch(cfg, B, S, 9);
  const L1 = cfg.numHiddenLayers + 1, H = cfg.hiddenSize;
  const wHidden = randn(31, L1 * B * S * H);
  const wPooled = randn(32, B * H);
  // Loss = Σ_l Σ hidden_l · W_l + Σ pooled · Wp: every hidden state and the pooler feed it.
  const model = BertModel.fromHost(cfg, host, true);
  await scope(async () => {
    const out = model.forward(batch);
    let loss = sumAll(mul(out.pooled, Tensor.from(wPooled, [B, H])));
    out.hidden.forEach((h, l) => {
      const w = Tensor.from(wHidden.subarray(l * B * S * H, (l + 1) * B * S * H), [B, S, H]);
      loss = add(loss, sumAll(mul(h, w)));
    });
    backward(loss);
    await model.params.get("pooler.dense.bias")!.grad!.read();
  });
  const names = [...bertWeightShapes(cfg).keys()];
  const tw = toTfWeights(host);
  const grads = tf.grads((...ws: tfType.Tensor[]) => {
    const weights: Record<string, tfType.Tensor> = {};
    names.forEach((n, i) => (weights[n] = ws[i]));
    const o = tfBertForward(
      cfg,
      weights,
      batch.inputIds,
      batch.tokenTypeIds,
      batch.attentionMask,
      B,
      S,
    );
    let l = tf.sum(tf.mul(o.pooled, tf.tensor(wPooled, [B, H])));
    o.hidden.forEach((h, k) => {
      l = tf.add(
        l,
        tf.sum(
          tf.mul(h, tf.tensor(wHidden.subarray(k * B * S * H, (k + 1) * B * S * H), [B, S, H])),
        ),
      );
    });
    return l as tfType.Scalar;
  })(names.map((n) => tw[n]));
  let checked = 0;
  for (const [i, name] of names.entries()) {
    const g = model.params.get(name)!.grad;
    ok(g, `${name} got a gradient`);
    // Normwise: the softmax backward y·(dy - Σ dy·y) cancels, so an element's error scales with
    // the tensor's largest gradient, not its own: atol 2e-5·max|g|, rtol 1e-4. The key bias's
    // gradient is exactly 0 in theory (softmax ignores a shift): both sides hold rounding noise
    // of the loss's gradients (~ε·10), hence the 1e-6 floor.
    const ref = grads[i].dataSync();
    const scale = Math.max(...Array.from(ref, Math.abs));
    const tol = { atol: Math.max(2e-5 * scale, 1e-6), rtol: 1e-4 };
    assertClose(await g.readF32(), ref, tol, `d/d ${name}`);
    checked++;
  }
  deepStrictEqual(checked, names.length);
  tf.dispose([...Object.values(tw), ...grads]);
  model.dispose();
});

Deno.test("bad batches and weights fail with clear errors", async () => {
  await initGpu();
  const host = randomHostWeights(tiny, 1);
  host.delete("encoder.layer.1.output.dense.bias");
  throws(
    () => BertModel.fromHost(tiny, host),
    /missing tensor 'encoder.layer.1.output.dense.bias'/,
  );
  const model = BertModel.fromHost(tiny, randomHostWeights(tiny, 1));
  const b = makeBatch(tiny, 2, 5, 1);
  throws(() => model.forward({ ...b, seq: 4 }), /inputIds has 10 entries, expected 2×4/);
  const bad = { ...b, inputIds: b.inputIds.slice() };
  bad.inputIds[7] = 500;
  throws(() => model.forward(bad), /input_ids.*value 500 at position 7 is outside \[0, 99\)/);
  model.dispose();
});
