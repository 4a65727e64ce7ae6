// Dropout, losses and AdamW with clipping: forward and backward against TF.js or a float64
// reference of the same formula, determinism, and bad input.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { assertClose, oracle, randn } from "../tests/helpers.ts";
import { crossEntropy, dropout, mse, sumAll } from "../model/ops.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";
import { AdamW } from "../model/optim.ts";
import { hashHost } from "./dropout.ts";

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

Deno.test("dropout: rate, inverted scaling, host-mirrored mask, same mask in backward", async () => {
  await initGpu();
  const n = 20000, rate = 0.1, seed = 1234, stream = 7;
  const x = Tensor.from(new Float32Array(n).fill(1), [n], { requiresGrad: true });
  const y = dropout(x, rate, seed, stream);
  const yv = await y.readF32();
  const threshold = Math.round(rate * 2 ** 32);
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    const keep = hashHost(seed, stream, i) >= threshold;
    if (!keep) dropped++;
    // Kept elements are scaled by 1/(1-rate) exactly as float32 computes it.
    if (yv[i] !== (keep ? Math.fround(1 / (1 - rate)) : 0)) {
      throw new Error(`element ${i}: ${yv[i]} but the host mask says keep=${keep}`);
    }
  }
  // Binomial(20000, 0.1): σ ≈ 42, so ±200 is > 4.5σ.
  ok(Math.abs(dropped - n * rate) < 200, `dropped ${dropped} of ${n}`);
  backward(sumAll(y));
  deepStrictEqual(await x.grad!.readF32(), yv, "backward uses the forward's mask");
  const again = await dropout(x, rate, seed, stream).readF32();
  deepStrictEqual(again, yv, "same seed, same mask");
  const other = await dropout(x, rate, seed, stream + 1).readF32();
  ok(other.some((v, i) => v !== yv[i]), "another stream, another mask");
  ok(dropout(x, 0, seed, stream) === x, "rate 0 is the identity");
  x.grad!.dispose();
  x.dispose();
});

/** float64 reference of torch.optim.AdamW with clip_grad_norm_ before it. */
function adamwRef(
  p: Float64Array[],
  grads: Float64Array[][],
  o: { lr: number; wd: number[]; b1: number; b2: number; eps: number; maxNorm: number },
) {
  const m = p.map((x) => new Float64Array(x.length)), v = p.map((x) => new Float64Array(x.length));
  grads.forEach((gs, t) => {
    const norm = Math.sqrt(gs.reduce((s, g) => s + g.reduce((a, x) => a + x * x, 0), 0));
    const clip = o.maxNorm > 0 ? Math.min(1, o.maxNorm / (norm + 1e-6)) : 1;
    const bc1 = 1 - o.b1 ** (t + 1), bc2 = 1 - o.b2 ** (t + 1);
    p.forEach((x, k) => {
      for (let i = 0; i < x.length; i++) {
        const g = gs[k][i] * clip;
        m[k][i] = o.b1 * m[k][i] + (1 - o.b1) * g;
        v[k][i] = o.b2 * v[k][i] + (1 - o.b2) * g * g;
        x[i] *= 1 - o.lr * o.wd[k];
        x[i] -= (o.lr / bc1) * m[k][i] / (Math.sqrt(v[k][i]) / Math.sqrt(bc2) + o.eps);
      }
    });
  });
}

for (const maxNorm of [0, 1.0]) {
  Deno.test(`AdamW: 3 steps, two groups (decay 0.01 and 0), clip ${maxNorm || "off"}`, async () => {
    await initGpu();
    const sizes = [129, 17];
    const init = sizes.map((n, k) => randn(10 + k, n));
    const params = init.map((d, k) =>
      Tensor.from(d, [d.length], { requiresGrad: true, name: `p${k}` })
    );
    const opt = new AdamW([{ params: [params[0]], weightDecay: 0.01 }, {
      params: [params[1]],
      weightDecay: 0,
    }], { lr: 1e-2, maxGradNorm: maxNorm });
    const allGrads: Float64Array[][] = [];
    for (let t = 0; t < 3; t++) {
      const gs = sizes.map((n, k) => randn(100 * t + k, n, 3)); // norm ≈ 35: clipping bites
      allGrads.push(gs.map((g) => Float64Array.from(g)));
      params.forEach((p, k) => (p.grad = Tensor.from(gs[k], [sizes[k]])));
      opt.step();
    }
    const ref = init.map((d) => Float64Array.from(d));
    adamwRef(ref, allGrads, { lr: 1e-2, wd: [0.01, 0], b1: 0.9, b2: 0.999, eps: 1e-6, maxNorm });
    for (let k = 0; k < 2; k++) {
      // Each step moves a parameter by ≤ lr; float32 rounding of m, v and the update: 1e-6.
      assertClose(await params[k].readF32(), ref[k], { atol: 2e-6, rtol: 1e-6 }, `param ${k}`);
    }
    if (maxNorm) ok((await opt.gradNorm.item()) > maxNorm, "the last norm exceeded the clip");
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
}

Deno.test("a small MLP trains: loss falls with AdamW, and grads match TF.js", async () => {
  // y = W2·gelu(W1·x + b1) + b2, cross-entropy: composite autograd end to end.
  const [B, I, H, C] = [17, 13, 33, 3];
  const x = randn(1, B * I), w1 = randn(2, H * I, 0.3), b1 = randn(3, H, 0.1);
  const w2 = randn(4, C * H, 0.3), b2 = randn(5, C, 0.1);
  const labels = Int32Array.from({ length: B }, (_, i) => i % C);
  const { gelu, linear } = await import("../model/ops.ts");
  await checkOp(
    "mlp",
    [
      { data: x, shape: [B, I], grad: false },
      { data: w1, shape: [H, I] },
      { data: b1, shape: [H] },
      { data: w2, shape: [C, H] },
      { data: b2, shape: [C] },
    ],
    (xx, a, ab, c, cb) => crossEntropy(linear(gelu(linear(xx, a, ab)), c, cb), labels),
    (xx, a, ab, c, cb) => {
      const h = tf.add(tf.matMul(xx, a, false, true), ab);
      const g = tf.mul(tf.mul(h, 0.5), tf.add(1, tf.erf(tf.div(h, Math.SQRT2))));
      const z = tf.add(tf.matMul(g, c, false, true), cb);
      return tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(labels, "int32"), C), z).reshape([
        1,
      ]);
    },
    // Composite: several matmuls and the oracle's erf (1.5e-7): atol 1e-6 on values and grads.
    { atol: 1e-6, rtol: 1e-5, gradAtol: 1e-6, gradRtol: 1e-4 },
  );
  // Training: 30 AdamW steps lower the loss (each step one scope: nothing leaks).
  await initGpu();
  const ps = [w1, b1, w2, b2].map((d, k) =>
    Tensor.from(d, k % 2 ? [d.length] : (k === 0 ? [H, I] : [C, H]), { requiresGrad: true })
  );
  const xt = Tensor.from(x, [B, I]);
  const opt = new AdamW([{ params: ps, weightDecay: 0 }], { lr: 0.05, maxGradNorm: 1 });
  const losses: number[] = [];
  const { gpu } = await import("../model/tensor.ts");
  const live0 = gpu().liveBytes;
  for (let s = 0; s < 30; s++) {
    const l = await scope(async () => {
      const loss = crossEntropy(linear(gelu(linear(xt, ps[0], ps[1])), ps[2], ps[3]), labels);
      const v = s % 10 === 0 || s === 29 ? await loss.item() : NaN;
      backward(loss);
      opt.step();
      return v;
    });
    if (!Number.isNaN(l)) losses.push(l);
  }
  ok(losses.at(-1)! < losses[0] * 0.5, `loss ${losses.map((l) => l.toFixed(3)).join(" → ")}`);
  deepStrictEqual(gpu().liveBytes, live0, "a training step frees everything it allocates");
  opt.dispose();
  [...ps, xt].forEach((t) => t.dispose());
});
