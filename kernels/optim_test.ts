// AdamW with global-norm clipping (kernels/optim.ts, through model/optim.ts `AdamW`): three steps
// of two parameter groups against a float64 reference of torch's update, with and without
// clipping; five steps without bias correction against transformers' AdamW(correct_bias=False); then a small MLP end to end (gradients against TF.js, loss falling under AdamW, no
// leaked buffers).
import { deepStrictEqual, ok } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { assertClose, oracle, randn } from "../tests/helpers.ts";
import { crossEntropy } from "../model/ops.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";
import { AdamW } from "../model/optim.ts";

const tf = await oracle();

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

/**
 * float64 reference of transformers.AdamW(correct_bias=False).step() (transformers 4.x
 * `optimization.py`, the seed's optimizer), written from its source, not from the kernel:
 *   exp_avg.mul_(b1).add_(g, alpha=1 - b1); exp_avg_sq.mul_(b2).addcmul_(g, g, value=1 - b2)
 *   denom = exp_avg_sq.sqrt().add_(eps); step_size = lr   (no bias correction)
 *   p.addcdiv_(exp_avg, denom, value=-step_size)
 *   if weight_decay > 0: p.add_(p, alpha=-lr * weight_decay)   (after the update, on the new p)
 * No gradient clipping (the seed never clips). `decayFirst` swaps the last two lines (torch's
 * order), only to show the test tells the two apart.
 */
function transformersAdamWNoCorrection(
  p: Float64Array[],
  grads: Float64Array[][],
  o: { lr: number; wd: number[]; b1: number; b2: number; eps: number; decayFirst?: boolean },
) {
  const expAvg = p.map((x) => new Float64Array(x.length));
  const expAvgSq = p.map((x) => new Float64Array(x.length));
  for (const gs of grads) {
    p.forEach((x, k) => {
      for (let i = 0; i < x.length; i++) {
        const g = gs[k][i];
        expAvg[k][i] = expAvg[k][i] * o.b1 + g * (1 - o.b1);
        expAvgSq[k][i] = expAvgSq[k][i] * o.b2 + g * g * (1 - o.b2);
        const denom = Math.sqrt(expAvgSq[k][i]) + o.eps;
        if (o.decayFirst && o.wd[k] > 0) x[i] += x[i] * (-o.lr * o.wd[k]);
        x[i] += -o.lr * expAvg[k][i] / denom;
        if (!o.decayFirst && o.wd[k] > 0) x[i] += x[i] * (-o.lr * o.wd[k]);
      }
    });
  }
}

Deno.test("AdamW without bias correction: 5 steps match transformers' AdamW(correct_bias=False)", async () => {
  await initGpu();
  // Awkward sizes: one element, a prime below a chunk, one over a 1,024-element norm chunk; decay
  // 1.0 (the seed's --l2 1.0), 0.01 and 0 (its no-decay group).
  const sizes = [1, 97, 1031];
  const wd = [1.0, 0.01, 0];
  const lr = 1e-2, eps = 1e-6;
  const init = sizes.map((n, k) => randn(70 + k, n));
  const params = init.map((d, k) =>
    Tensor.from(d, [d.length], { requiresGrad: true, name: `q${k}` })
  );
  const opt = new AdamW(
    params.map((p, k) => ({ params: [p], weightDecay: wd[k] })),
    { lr, eps, maxGradNorm: 0, biasCorrection: false },
  );
  const grads: Float64Array[][] = [];
  for (let t = 0; t < 5; t++) {
    // Gradients of mixed scale (0.01 to 3): the first steps are ~3.16·lr (m/√v = 0.1/√0.001).
    const gs = sizes.map((n, k) => randn(500 + 10 * t + k, n, [3, 0.01, 1][k]));
    grads.push(gs.map((g) => Float64Array.from(g)));
    params.forEach((p, k) => (p.grad = Tensor.from(gs[k], [sizes[k]])));
    opt.step();
  }
  const ref = init.map((d) => Float64Array.from(d));
  const o = { lr, wd, b1: 0.9, b2: 0.999, eps };
  transformersAdamWNoCorrection(ref, grads, o);
  const other = init.map((d) => Float64Array.from(d));
  transformersAdamWNoCorrection(other, grads, { ...o, decayFirst: true });
  // Tolerance: |p| ≲ 4 and five steps of a handful of float32 operations each (m, v, sqrt, the
  // division and the two multiplies): a few ulp of 4 (2.4e-7 each) per step, so 2e-6 absolute
  // plus 1e-6 relative. Decaying before the update instead (torch's order) moves p by
  // lr²·wd·|update| ≈ 3e-4 per step at wd 1.0: two orders of magnitude over the tolerance.
  const tol = { atol: 2e-6, rtol: 1e-6 };
  for (let k = 0; k < sizes.length; k++) {
    assertClose(await params[k].readF32(), ref[k], tol, `param ${k} (${sizes[k]}, wd ${wd[k]})`);
  }
  const gap = Math.max(...ref[0].map((x, i) => Math.abs(x - other[0][i])));
  ok(gap > 100 * tol.atol, `decay order is visible to this test (gap ${gap})`);
  opt.dispose();
  params.forEach((p) => p.dispose());
});

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
