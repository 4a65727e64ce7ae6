// Softmax over the last axis (kernels/softmax.ts, through model/ops.ts `softmax`): forward and
// backward against TF.js, with the additive attention mask at inputs of ±35, and unmasked rows of
// 3072 and of 1.
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn, uniform } from "../tests/helpers.ts";
import { softmax } from "../model/ops.ts";
import { forceRowLayout, type RowLayout } from "./grid.ts";

const tf = await oracle();

// Both layouts on every adapter: a workgroup per row (GPUs) and an invocation per row (software
// adapters, the online max-and-sum pass).
const VARIANTS: RowLayout[] = ["workgroup", "row"];

for (const variant of VARIANTS) {
  for (const [B, A, S] of [[1, 1, 1], [2, 3, 17], [3, 2, 63], [1, 2, 129]]) {
    Deno.test(`softmax (${variant}) with additive mask B${B} heads${A} S${S}, inputs ±35`, async () => {
      forceRowLayout(variant);
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
        [{ data: scores, shape: [B, A, S, S] }, {
          data: maskAdd,
          shape: [B, 1, 1, S],
          grad: false,
        }],
        (x, m) => softmax(x, m.reshape([B, S])),
        (x, m) => tf.softmax(tf.add(x, m)),
        { atol: 1e-7, rtol: 1e-5, gradAtol: 1e-6, gradRtol: 1e-5 },
      );
      forceRowLayout(undefined);
    });
  }

  Deno.test(`softmax (${variant}) without mask, rows of 3072 and of 1`, async () => {
    forceRowLayout(variant);
    for (const [R, C] of [[3, 3072], [5, 1]]) {
      await checkOp(
        `softmax ${R}x${C}`,
        [{ data: randn(R, R * C, 5), shape: [R, C] }],
        (x) => softmax(x),
        (x) => tf.softmax(x),
        { atol: 1e-8, rtol: 1e-5, gradAtol: 1e-7, gradRtol: 1e-4 },
      );
    }
    forceRowLayout(undefined);
  });
}
