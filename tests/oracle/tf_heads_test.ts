/**
 * Hand-computed cases for the TF.js head / BERTVision references in `tf_heads.ts`. Inputs are
 * chosen so the answers are closed forms (ln 2, GELU(1), ...) and so that a transposed layout or a
 * dropped bias gives a different number.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import {
  tfAdapterPooler,
  tfApGlue,
  tfApSquad,
  tfAveragePooling,
  tfClassifierLoss,
  tfCrossEntropy,
  tfLearnedPooling,
  tfRegressionLoss,
  tfSpanLogits,
  tfSpanLoss,
} from "./tf_heads.ts";

await tf.setBackend("cpu"); // gradients below need the CPU backend

// float32 results of O(1) closed forms: 1e-6 absolute is a few ulps of headroom.
const TOL = 1e-6;
// Where GELU outputs are multiplied by weights summing to w: tf.erf's approximation error
// (≤1.5e-7 on Φ, so ≤3e-7 on GELU(2)) grows to w·3e-7, plus float32 ulps of the result (~2e-6 at
// 26). 5e-6 covers w ≤ 11 used below.
const TOL_GELU = 5e-6;
const GELU1 = 0.8413447460685429; // 1·Φ(1)
const GELU2 = 1.9544997361036416; // 2·Φ(2)

function near(got: ArrayLike<number>, want: number[], what: string, tol = TOL) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= tol,
      `${what}[${i}]: got ${got[i]} want ${want[i]} (|diff| ${Math.abs(got[i] - want[i])})`,
    );
  }
}

const t2 = (v: number[][]) => tf.tensor2d(v);

Deno.test("tfClassifierLoss: closed-form cross-entropy, bias included", () => {
  tf.tidy(() => {
    // W = I, b = [1, 0]: logits row0 = [-1+1, ln3] = [0, ln3] -> p = [1/4, 3/4]; label 1.
    // row1 = [0+1, 1] -> p = [1/2, 1/2]; label 0. Loss = (ln(4/3) + ln 2) / 2.
    const pooled = t2([[-1, Math.log(3)], [0, 1]]);
    const loss = tfClassifierLoss(
      pooled,
      t2([[1, 0], [0, 1]]),
      tf.tensor1d([1, 0]),
      Int32Array.from([1, 0]),
    );
    near(loss.dataSync(), [(Math.log(4 / 3) + Math.log(2)) / 2], "loss");
  });
});

Deno.test("tfClassifierLoss gradient is (softmax - onehot) / B", () => {
  tf.tidy(() => {
    const labels = Int32Array.from([1, 0]);
    const W = t2([[1, 0], [0, 1]]), b = tf.tensor1d([0, 0]);
    const g = tf.grad((p: tf.Tensor) => tfClassifierLoss(p, W, b, labels))(
      t2([[0, Math.log(3)], [1, 1]]),
    );
    // row0: p = [1/4, 3/4], y = [0, 1]; row1: p = [1/2, 1/2], y = [1, 0]; divided by B = 2.
    near(g.dataSync(), [0.125, -0.125, -0.25, 0.25], "dL/dpooled");
  });
});

Deno.test("tfCrossEntropy rejects out-of-range labels", () => {
  // tf.oneHot would give an all-zero row and a plausible-looking loss; we want a loud error.
  assert.throws(() => tfCrossEntropy(t2([[0, 0]]), Int32Array.from([2])), /outside/);
});

Deno.test("tfRegressionLoss: mean squared error of a 1-output head", () => {
  tf.tidy(() => {
    // y = [1-2+0.5, 3-4+0.5] = [-0.5, -0.5]; targets [0, 1] -> (0.25 + 2.25) / 2 = 1.25.
    const loss = tfRegressionLoss(
      t2([[1, 2], [3, 4]]),
      t2([[1, -1]]),
      tf.tensor1d([0.5]),
      Float32Array.from([0, 1]),
    );
    near(loss.dataSync(), [1.25], "loss");
  });
});

Deno.test("tfSpanLoss: channel 0 is start, channel 1 is end, losses averaged", () => {
  tf.tidy(() => {
    // W = I: start logits = feature 0 = [0, ln2, 0] (sum exp 4), end = feature 1 = [0, 0, ln3]
    // (sum exp 5). start=1: -ln(2/4) = ln 2; end=2: -ln(3/5). Loss = (ln 2 + ln(5/3)) / 2.
    const hidden = tf.tensor3d([[[0, 0], [Math.log(2), 0], [0, Math.log(3)]]]);
    const W = t2([[1, 0], [0, 1]]), b = tf.tensor1d([0, 0]);
    const loss = tfSpanLoss(hidden, W, b, Int32Array.from([1]), Int32Array.from([2]));
    near(loss.dataSync(), [(Math.log(2) + Math.log(5 / 3)) / 2], "loss");
    // Swapping start and end positions must change the loss (catches a channel swap).
    const swapped = tfSpanLoss(hidden, W, b, Int32Array.from([2]), Int32Array.from([1]));
    assert.ok(Math.abs(swapped.dataSync()[0] - loss.dataSync()[0]) > 0.1);
    const { start, end } = tfSpanLogits(hidden, W, tf.tensor1d([1, -1]));
    near(start.dataSync(), [1, 1 + Math.log(2), 1], "start logits (bias 1)");
    near(end.dataSync(), [-1, -1, -1 + Math.log(3)], "end logits (bias -1)");
  });
});

// x: B=1, L=2, T=1, F=2; layer 0 = [1, 0], layer 1 = [0, 1].
const X1 = () => tf.tensor4d([[[[1, 0]], [[0, 1]]]]);

Deno.test("tfAdapterPooler shared: GELU(x·Wᵀ+b) laid out [B, T, D, L]", () => {
  tf.tidy(() => {
    // W rows: d0 = f0, d1 = f1, d2 = f0+f1; b = [0, 0, 1].
    // layer 0 preact [1, 0, 2], layer 1 [0, 1, 2] -> out[d][l]:
    const out = tfAdapterPooler(X1(), t2([[1, 0], [0, 1], [1, 1]]), tf.tensor1d([0, 0, 1]));
    assert.deepEqual(out.shape, [1, 1, 3, 2]);
    // [L, D] order would read [g1, 0, g2, 0, g1, g2]: this layout distinguishes the two.
    near(out.dataSync(), [GELU1, 0, 0, GELU1, GELU2, GELU2], "ap");
  });
});

Deno.test("tfAdapterPooler per-layer: layer l uses W[l], b[l]", () => {
  tf.tidy(() => {
    // layer 0: W = I (D=2), b = [0, 1] -> preact [1, 1]; layer 1: W = 2·I, b = [0, 0] -> [0, 2].
    const w = tf.tensor3d([[[1, 0], [0, 1]], [[2, 0], [0, 2]]]);
    const b = t2([[0, 1], [0, 0]]);
    const out = tfAdapterPooler(X1(), w, b);
    assert.deepEqual(out.shape, [1, 1, 2, 2]);
    near(out.dataSync(), [GELU1, 0, GELU1, GELU2], "ap"); // [d0: l0, l1, d1: l0, l1]
    assert.throws(() => tfAdapterPooler(X1(), tf.zeros([3, 2, 2]), t2([[0, 0]])), /per-layer/);
  });
});

Deno.test("tfApGlue flattens as (t·D + d)·L + l, then Linear", () => {
  tf.tidy(() => {
    // AP output (above) flattened: [g1, 0, 0, g1, g2, g2]; clsW [1..6], b 0.5:
    // g1·1 + g1·4 + g2·5 + g2·6 + 0.5.
    const logits = tfApGlue(
      X1(),
      t2([[1, 0], [0, 1], [1, 1]]),
      tf.tensor1d([0, 0, 1]),
      t2([[1, 2, 3, 4, 5, 6]]),
      tf.tensor1d([0.5]),
    );
    assert.deepEqual(logits.shape, [1, 1]);
    near(logits.dataSync(), [5 * GELU1 + 11 * GELU2 + 0.5], "logits", TOL_GELU);
  });
});

Deno.test("tfApSquad: per-token [D·L] features -> start/end, plus optional skip Linear", () => {
  tf.tidy(() => {
    // B=1, L=2, T=2, F=1. Identity-ish adapter D=1: W = [[1]], b = [0] -> ap[t, 0, l] = GELU(x).
    // token 0: layers (1, 2); token 1: layers (0, 1).
    const x = tf.tensor4d([[[[1], [0]], [[2], [1]]]]); // [B, L, T, F]
    const apW = t2([[1]]), apB = tf.tensor1d([0]);
    // qaW [2, D·L=2]: start = ap[l0] + 10·ap[l1] + 0.5; end = -ap[l0] + 0·ap[l1] - 0.5.
    const qaW = t2([[1, 10], [-1, 0]]), qaB = tf.tensor1d([0.5, -0.5]);
    const plain = tfApSquad(x, apW, apB, qaW, qaB);
    assert.deepEqual(plain.start.shape, [1, 2]);
    const want = [GELU1 + 10 * GELU2 + 0.5, 10 * GELU1 + 0.5];
    near(plain.start.dataSync(), want, "start", TOL_GELU);
    near(plain.end.dataSync(), [-GELU1 - 0.5, -0.5], "end");
    // Skip: Linear(F=1 -> 2) on x[:, L-1] = layer 1 = [2, 1]; w = [[3], [-2]], b = [1, 0].
    const skip = tfApSquad(x, apW, apB, qaW, qaB, { w: t2([[3], [-2]]), b: tf.tensor1d([1, 0]) });
    near(skip.start.dataSync(), [want[0] + 7, want[1] + 4], "start+skip", TOL_GELU);
    near(skip.end.dataSync(), [-GELU1 - 0.5 - 4, -0.5 - 2], "end+skip");
  });
});

Deno.test("tfLearnedPooling and tfAveragePooling", () => {
  tf.tidy(() => {
    const x = tf.tensor4d([[[[1, 2]], [[3, 4]]]]); // B=1, L=2, T=1, F=2
    // softmax([0, ln3]) = [1/4, 3/4]; scale 2: 2·(0.25·[1,2] + 0.75·[3,4]) = [5, 7].
    const lp = tfLearnedPooling(x, tf.tensor1d([0, Math.log(3)]), tf.scalar(2));
    assert.deepEqual(lp.shape, [1, 1, 2]);
    near(lp.dataSync(), [5, 7], "lp");
    near(tfAveragePooling(x).dataSync(), [2, 3], "avg");
    // d/dlogits of Σ out: 2·Σ_f softmax'·x = 2·p∘(s - p·s) with s = [3, 7] -> p·s = 6:
    // [2·0.25·(3-6), 2·0.75·(7-6)] = [-1.5, 1.5].
    const g = tf.grad((lg: tf.Tensor) => tfLearnedPooling(x, lg, tf.scalar(2)).sum())(
      tf.tensor1d([0, Math.log(3)]),
    );
    near(g.dataSync(), [-1.5, 1.5], "dlp/dlogits", 1e-5); // a few more ops: 1e-5
  });
});
