// Losses (kernels/loss.ts, through model/ops.ts `crossEntropy` and `mse`): forward and backward
// against TF.js, cross-entropy with ignored rows and logits of ±40, and a bad label named by row.
import { throws } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn } from "../tests/helpers.ts";
import { crossEntropy, mse } from "../model/ops.ts";
import { initGpu, Tensor } from "../model/tensor.ts";

const tf = await oracle();

for (const [R, C] of [[1, 2], [17, 3], [63, 129], [5, 384]]) {
  Deno.test(`crossEntropy ${R}x${C} with ignored rows, logits ±40`, async () => {
    const labels = Int32Array.from({ length: R }, (_, i) => (i % 4 === 3 ? -100 : (i * 7) % C));
    const logits = randn(R * C, R * C, 15); // spreads of ±40 make the softmax nearly one-hot
    const keepRows = [...labels].map((l, i) => (l === -100 ? -1 : i)).filter((i) => i >= 0);
    if (!keepRows.length) return;
    await checkOp(
      `xent ${R}x${C}`,
      [{ data: logits, shape: [R, C] }],
      (z) => crossEntropy(z, labels),
      (z) => {
        const rows = tf.gather(z, tf.tensor1d(keepRows, "int32"));
        const lab = tf.oneHot(tf.tensor1d(keepRows.map((i) => labels[i]), "int32"), C);
        return tf.losses.softmaxCrossEntropy(lab, rows).reshape([1]);
      },
      // log-sum-exp of values up to 40 carries ε·40 ≈ 5e-6 absolute; gradients are
      // probabilities/count: atol 1e-7.
      { atol: 1e-5, rtol: 1e-6, gradAtol: 1e-7, gradRtol: 1e-5 },
    );
  });
}

Deno.test("crossEntropy: a label outside the classes names its row", async () => {
  await initGpu();
  const z = Tensor.from(randn(1, 6), [3, 2]);
  throws(() => crossEntropy(z, Int32Array.from([0, 2, 1])), /label 2 at row 1 is outside \[0, 2\)/);
  throws(() => crossEntropy(z, Int32Array.from([0, 1])), /2 labels for 3 rows/);
  z.dispose();
});

Deno.test("mse against TF.js", async () => {
  const n = 129;
  await checkOp(
    "mse",
    [{ data: randn(1, n), shape: [n] }, { data: randn(2, n), shape: [n], grad: false }],
    (p, t) => mse(p, t),
    (p, t) => tf.losses.meanSquaredError(t, p).reshape([1]),
    { atol: 1e-6, rtol: 1e-6 },
  );
});
