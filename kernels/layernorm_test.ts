// LayerNorm (kernels/layernorm.ts, through model/ops.ts `layerNorm`): forward and backward
// against TF.js at awkward shapes, and an input offset by 1000 that the two-pass variance must
// survive. The dgamma/dbeta row sums go through kernels/reduce.ts (see reduce_test.ts).
import type * as tfType from "@tensorflow/tfjs";
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn, uniform } from "../tests/helpers.ts";
import { layerNorm } from "../model/ops.ts";
import { forceRowLayout, type RowLayout } from "./grid.ts";

const tf = await oracle();

function tfLayerNorm(x: tfType.Tensor, g: tfType.Tensor, b: tfType.Tensor, eps: number) {
  const m = tf.mean(x, -1, true);
  const d = tf.sub(x, m);
  const v = tf.mean(tf.square(d), -1, true);
  return tf.add(tf.mul(tf.mul(d, tf.rsqrt(tf.add(v, eps))), g), b);
}

// Both forward layouts on every adapter: a workgroup per row (GPUs), an invocation per row
// (software adapters).
const VARIANTS: RowLayout[] = ["workgroup", "row"];

for (const variant of VARIANTS) {
  for (const [R, C] of [[1, 3], [17, 63], [3, 129], [5, 768], [2, 3072]]) {
    Deno.test(`layerNorm (${variant}) ${R}x${C} forward and backward`, async () => {
      forceRowLayout(variant);
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
      forceRowLayout(undefined);
    });
  }
}

for (const variant of VARIANTS) {
  Deno.test(`layerNorm (${variant}) with a large offset: two-pass variance stays accurate`, async () => {
    forceRowLayout(variant);
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
    forceRowLayout(undefined);
  });
}
