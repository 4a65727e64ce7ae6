// LayerNorm, softmax (with the attention mask), reductions, gather/scatter and permute: forward
// and backward against TF.js at awkward shapes and extreme inputs.
import { deepStrictEqual } from "node:assert/strict";
import type * as tfType from "@tensorflow/tfjs";
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn, uniform } from "../tests/helpers.ts";
import { gatherRows, layerNorm, mean, permute, softmax, sum } from "../model/ops.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";
import { mul, sumAll } from "../model/ops.ts";

const tf = await oracle();

function tfLayerNorm(x: tfType.Tensor, g: tfType.Tensor, b: tfType.Tensor, eps: number) {
  const m = tf.mean(x, -1, true);
  const d = tf.sub(x, m);
  const v = tf.mean(tf.square(d), -1, true);
  return tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(v, eps))), g), b);
}

for (const [R, C] of [[1, 3], [17, 63], [3, 129], [5, 768], [2, 3072]]) {
  Deno.test(`layerNorm ${R}x${C} forward and backward`, async () => {
    // Normalised values are O(1): a few roundings in the mean, variance and rsqrt give ~1e-6;
    // gradients sum C terms per row (and R rows for gamma/beta): atol 2e-6·√C, rtol 1e-5.
    const tol = { atol: 2e-6, rtol: 1e-5, gradAtol: 2e-6 * Math.sqrt(C), gradRtol: 1e-4 };
    await checkOp(
      `layerNorm ${R}x${C}`,
      [
        { data: randn(R * C, R * C, 2), shape: [R, C] },
        { data: uniform(C, C, 0.5, 1.5), shape: [C] },
        { data: randn(C + 1, C, 0.1), shape: [C] },
      ],
      (x, g, b) => layerNorm(x, g, b, 1e-12),
      (x, g, b) => tfLayerNorm(x, g, b, 1e-12),
      tol,
    );
  });
}

Deno.test("layerNorm with a large offset: two-pass variance stays accurate", async () => {
  const C = 65;
  const x = randn(3, 2 * C);
  for (let i = 0; i < x.length; i++) x[i] += 1000; // E[x²]-E[x]² would lose every digit
  await checkOp(
    "layerNorm offset",
    [{ data: x, shape: [2, C] }, { data: uniform(1, C, 0.5, 1.5), shape: [C] }, {
      data: randn(2, C),
      shape: [C],
    }],
    (a, g, b) => layerNorm(a, g, b, 1e-5),
    (a, g, b) => tfLayerNorm(a, g, b, 1e-5),
    // Inputs near 1000 carry rounding 6e-5 each, normalised by std ≈ 1: atol 1.5e-4.
    { atol: 1.5e-4, rtol: 1e-4, gradAtol: 2e-4, gradRtol: 1e-3 },
  );
});

for (const [B, A, S] of [[1, 1, 1], [2, 3, 17], [3, 2, 63], [1, 2, 129]]) {
  Deno.test(`softmax with additive mask B${B} heads${A} S${S}, inputs ±35`, async () => {
    const scores = uniform(S, B * A * S * S, -35, 35);
    // Padding mask: the last third of each sequence (at least the first key stays real).
    const maskAdd = new Float32Array(B * S);
    for (let b = 0; b < B; b++) {
      const real = Math.max(1, S - Math.floor(S / 3) - b);
      for (let k = real; k < S; k++) maskAdd[b * S + k] = -10000;
    }
    // Probabilities in [0,1] with exp of args ≤ 0: a few ulps (rtol 1e-6, atol 1e-7).
    await checkOp(
      `softmax ${B}x${A}x${S}`,
      [{ data: scores, shape: [B, A, S, S] }, { data: maskAdd, shape: [B, 1, 1, S], grad: false }],
      (x, m) => softmax(x, m.reshape([B, S])),
      (x, m) => tf.softmax(tf.add(x, m)),
      { atol: 1e-7, rtol: 1e-5, gradAtol: 1e-6, gradRtol: 1e-5 },
    );
  });
}

Deno.test("softmax without mask, rows of 3072 and of 1", async () => {
  for (const [R, C] of [[3, 3072], [5, 1]]) {
    await checkOp(
      `softmax ${R}x${C}`,
      [{ data: randn(R, R * C, 5), shape: [R, C] }],
      (x) => softmax(x),
      (x) => tf.softmax(x),
      { atol: 1e-8, rtol: 1e-5, gradAtol: 1e-7, gradRtol: 1e-4 },
    );
  }
});

for (
  const [shape, axis] of [[[17, 63], 0], [[3, 129, 5], 1], [[2, 3, 1000], 2], [[3000, 2], 0]] as [
    number[],
    number,
  ][]
) {
  Deno.test(`sum/mean over axis ${axis} of [${shape}]`, async () => {
    const n = shape.reduce((a, b) => a * b);
    const n_ax = shape[axis];
    // A sum of n_ax unit normals: rounding grows like √n_ax·ε·√n_ax: atol 2e-7·n_ax.
    const tol = { atol: 2e-7 * n_ax + 1e-7, rtol: 1e-6 };
    const ins = [{ data: randn(n, n), shape }];
    await checkOp(`sum ${shape}`, ins, (x) => sum(x, axis), (x) => tf.sum(x, axis), tol);
    await checkOp(`mean ${shape}`, ins, (x) => mean(x, axis), (x) => tf.mean(x, axis), tol);
  });
}

Deno.test("gatherRows (embedding) with repeated ids: scatter-add gradient", async () => {
  const V = 129, C = 65;
  const ids = Int32Array.from([5, 0, 128, 5, 5, 7, 0, 64, 3, 5, 127, 1, 2, 5, 9, 9, 100]);
  await checkOp(
    "embedding",
    [{ data: randn(1, V * C), shape: [V, C] }],
    (t) => gatherRows(t, ids),
    (t) => tf.gather(t, tf.tensor1d(ids, "int32")),
    // Gather is exact; the scatter sums ≤ 5 rows: atol 5·ε·|W·1|.
    { atol: 0, rtol: 0, gradAtol: 1e-6, gradRtol: 1e-6 },
  );
});

Deno.test("embedding gradient is bit-identical run to run (no float atomics)", async () => {
  await initGpu();
  const V = 50, C = 33, N = 400;
  const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % 11); // heavy repetition
  const run = async () => {
    const t = Tensor.from(randn(2, V * C), [V, C], { requiresGrad: true });
    await scope(async () => {
      const w = Tensor.from(randn(3, N * C), [N, C]);
      backward(sumAll(mul(gatherRows(t, ids), w)));
      await t.grad!.read();
    });
    const g = await t.grad!.readF32();
    t.grad!.dispose();
    t.dispose();
    return g;
  };
  deepStrictEqual(await run(), await run());
});

for (
  const [shape, perm] of [
    [[3, 17], [1, 0]],
    [[2, 3, 5, 7], [0, 2, 1, 3]],
    [[4, 1, 63], [2, 0, 1]],
    [[2, 3, 5, 7], [3, 2, 1, 0]],
  ] as [
    number[],
    number[],
  ][]
) {
  Deno.test(`permute [${shape}] by [${perm}]`, async () => {
    const n = shape.reduce((a, b) => a * b);
    await checkOp(
      `permute ${perm}`,
      [{ data: randn(n, n), shape }],
      (x) => permute(x, perm),
      (x) => tf.transpose(x, perm),
      { atol: 0, rtol: 0 },
    );
  });
}
