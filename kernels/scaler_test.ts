// Dynamic loss scaling (kernels/scaler.ts through model/optim.ts `GradScaler`): the scale
// schedule against a reference of PyTorch's `_amp_update_scale_` with injected overflows, over
// more than two growth intervals of torch's default 2,000 steps; and AdamW under the scaler:
// an overflowed step leaves parameters and moments untouched, the others match the unscaled
// float64 AdamW with the skipped step left out of the bias correction.
import { deepStrictEqual, throws } from "node:assert/strict";
import { isDeepStrictEqual as deepEqual } from "node:util";
import { assertClose, randn } from "../tests/helpers.ts";
import { backward, gpu, initGpu, scope, Tensor } from "../model/tensor.ts";
import { autocast, crossEntropy, linear } from "../model/ops.ts";
import { AdamW, GradScaler } from "../model/optim.ts";
import { decodeScalerState } from "./scaler.ts";

/**
 * torch/csrc `_amp_update_scale_` (aten/src/ATen/native/cuda/AmpKernels.cu), as GradScaler's
 * `update()` calls it with growth 2, backoff 0.5, interval 2000:
 *   if found_inf: scale *= backoff; growth_tracker = 0
 *   else: successful = growth_tracker + 1
 *         if successful == interval: scale *= growth (only if finite); growth_tracker = 0
 *         else growth_tracker = successful
 */
function ampUpdateScaleRef(
  steps: number,
  overflowAt: Set<number>,
  o = { init: 65536, growth: 2, backoff: 0.5, interval: 2000 },
): { scale: number; tracker: number }[] {
  let scale = o.init, tracker = 0;
  const out = [];
  for (let t = 0; t < steps; t++) {
    if (overflowAt.has(t)) {
      scale *= o.backoff;
      tracker = 0;
    } else if (tracker + 1 === o.interval) {
      if (Number.isFinite(Math.fround(scale * o.growth))) scale *= o.growth;
      tracker = 0;
    } else tracker++;
    out.push({ scale, tracker });
  }
  return out;
}

Deno.test("GradScaler: schedule matches _amp_update_scale_ with injected overflows", async () => {
  await initGpu();
  const g = gpu();
  // Overflows early (two in a row), none for 2,000 steps (growth), one mid-interval (the tracker
  // restarts), then 2,000 clean steps again (growth), then one more overflow.
  const overflowAt = new Set([2, 3, 2500, 4510]);
  const steps = 4520;
  const ref = ampUpdateScaleRef(steps, overflowAt);
  const scaler = new GradScaler();
  const finite = Tensor.from(new Float32Array([1, -2, 3]), [3]);
  const bad = Tensor.from(new Float32Array([1, Infinity, 3]), [3]);
  const nan = Tensor.from(new Float32Array([NaN, 0, 0]), [3]);
  const history = g.acquire(16 * steps);
  for (let t = 0; t < steps; t++) {
    scaler.unscale(overflowAt.has(t) ? (t % 2 ? nan : bad) : finite);
    scaler.update();
    g.copy(scaler.buffer, 0, history.buffer, 16 * t, 16);
  }
  const bytes = await g.read(history.buffer, 16 * steps);
  let taken = 0;
  for (let t = 0; t < steps; t++) {
    const s = decodeScalerState(bytes.slice(16 * t, 16 * t + 16));
    if (!overflowAt.has(t)) taken++;
    deepStrictEqual(
      { scale: s.scale, tracker: s.growthTracker, steps: s.steps, found: s.foundInf },
      { scale: ref[t].scale, tracker: ref[t].tracker, steps: taken, found: false },
      `step ${t}`,
    );
  }
  // The schedule did grow and back off (the test exercises both branches).
  const grew = ref.filter((r, t) => t > 0 && r.scale > ref[t - 1].scale).length;
  const backedOff = ref.filter((r, t) => t > 0 && r.scale < ref[t - 1].scale).length;
  deepStrictEqual({ grew, backedOff }, { grew: 2, backedOff: 4 });
  g.release(history);
  for (const t of [finite, bad, nan]) t.dispose();
  // Save and load: a resumed scaler continues from the same state.
  const st = await scaler.read();
  const again = new GradScaler();
  again.load(st);
  deepStrictEqual(await again.read(), st);
  throws(() => again.load({ scale: -1, growthTracker: 0, steps: 0 }), /finite scale > 0/);
  scaler.dispose();
  again.dispose();
});

/** float64 AdamW (torch) over the steps whose gradients are given, clip off. */
function adamwRef(p: Float64Array, grads: Float64Array[], lr: number, wd: number): void {
  const m = new Float64Array(p.length), v = new Float64Array(p.length);
  const b1 = 0.9, b2 = 0.999, eps = 1e-6;
  grads.forEach((g, t) => {
    const bc1 = 1 - b1 ** (t + 1), bc2 = 1 - b2 ** (t + 1);
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      p[i] *= 1 - lr * wd;
      p[i] -= (lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps);
    }
  });
}

Deno.test("GradScaler + AdamW: an overflowed step is skipped on the GPU, the rest match", async () => {
  await initGpu();
  const n = 300;
  const init = randn(7, n);
  const p = Tensor.from(init, [n], { requiresGrad: true, name: "w" });
  const scaler = new GradScaler({ initScale: 1024 });
  const opt = new AdamW([{ params: [p], weightDecay: 0.01 }], { lr: 1e-2, scaler });
  const gs = [randn(1, n), randn(2, n), randn(3, n)];
  const used: Float64Array[] = [];
  let before = init;
  for (let t = 0; t < 4; t++) {
    const { scale } = await scaler.read();
    const overflow = t === 1;
    const g = overflow ? new Float32Array(n).fill(1) : gs[used.length];
    const scaled = g.map((x) => x * scale);
    if (overflow) scaled[17] = Infinity;
    else used.push(Float64Array.from(g));
    p.grad = Tensor.from(scaled, [n]);
    opt.step();
    const after = await p.readF32();
    if (overflow) deepStrictEqual(after, before, "an overflowed step changes nothing");
    before = after;
  }
  const st = await scaler.read();
  deepStrictEqual({ scale: st.scale, steps: st.steps }, { scale: 512, steps: 3 });
  const ref = Float64Array.from(init);
  adamwRef(ref, used, 1e-2, 0.01);
  // Three updates of at most lr each; float32 rounding and the GPU's pow in the bias
  // correction (a few ulp): 2e-6.
  assertClose(await p.readF32(), ref, { atol: 2e-6, rtol: 1e-6 }, "params");
  opt.dispose();
  scaler.dispose();
  p.dispose();
});

Deno.test("GradScaler + AdamW without bias correction (the seed's): skipped on overflow, else transformers' update", async () => {
  await initGpu();
  const n = 97, lr = 1e-2, wd = 1.0, eps = 1e-6;
  const init = randn(9, n);
  const p = Tensor.from(init, [n], { requiresGrad: true, name: "w" });
  const scaler = new GradScaler({ initScale: 256 });
  const opt = new AdamW([{ params: [p], weightDecay: wd }], {
    lr,
    eps,
    biasCorrection: false,
    scaler,
  });
  const gs = [randn(11, n), randn(12, n), randn(13, n)];
  // transformers.AdamW(correct_bias=False), written here in float64: no correction, the decay
  // applied after the update on the updated weights.
  const ref = Float64Array.from(init), m = new Float64Array(n), v = new Float64Array(n);
  let used = 0;
  for (let t = 0; t < 4; t++) {
    const { scale } = await scaler.read();
    const overflow = t === 2;
    const g = overflow ? new Float32Array(n) : gs[used++];
    const scaled = g.map((x) => x * scale);
    if (overflow) scaled[5] = NaN;
    p.grad = Tensor.from(scaled, [n]);
    opt.step();
    if (overflow) continue;
    for (let i = 0; i < n; i++) {
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
      ref[i] -= lr * m[i] / (Math.sqrt(v[i]) + eps);
      ref[i] *= 1 - lr * wd;
    }
  }
  // Three updates of about lr each on |p| ≲ 4: a few float32 ulps per step, 2e-6.
  assertClose(await p.readF32(), ref, { atol: 2e-6, rtol: 1e-6 }, "params");
  opt.dispose();
  scaler.dispose();
  p.dispose();
});

Deno.test("autocast + GradScaler: f16 overflows in the backward skip steps until the scale fits", async () => {
  await initGpu();
  // logits = x·Wᵀ (8 rows, 4 classes) under autocast; the backward's dW = gᵀ·x casts the scaled
  // gradient g = scale · (p − y) / 8 to f16. Small logits: p ≈ 1/4, so max |p − y| ≈ 3/4, in
  // (0.5, 0.9998): g overflows f16 (≥ 65520) at scales 2^24 … 2^20 and fits from 2^19. So 8
  // steps from 2^24: five skipped (W unchanged, scale halved each), then three taken at 2^19.
  const x = Tensor.from(randn(1, 8 * 16), [8, 16]);
  const w = Tensor.from(randn(2, 4 * 16, 0.05), [4, 16], { requiresGrad: true, name: "w" });
  const labels = Int32Array.from({ length: 8 }, (_, i) => i % 4);
  const scaler = new GradScaler({ initScale: 2 ** 24 });
  const opt = new AdamW([{ params: [w], weightDecay: 0 }], { lr: 1e-2, scaler });
  const w0 = await w.readF32();
  const states = [];
  for (let t = 0; t < 8; t++) {
    scope(() => {
      const loss = autocast(() => crossEntropy(linear(x, w), labels));
      const seed = scaler.seed(loss.shape);
      backward(loss, seed);
      seed.dispose();
    });
    opt.step();
    states.push({ ...(await scaler.read()), changed: !deepEqual(await w.readF32(), w0) });
  }
  deepStrictEqual(
    states.map((s) => [Math.log2(s.scale), s.steps, s.changed]),
    [
      [23, 0, false],
      [22, 0, false],
      [21, 0, false],
      [20, 0, false],
      [19, 0, false],
      [19, 1, true],
      [19, 2, true],
      [19, 3, true],
    ],
  );
  opt.dispose();
  scaler.dispose();
  for (const t of [x, w]) t.dispose();
});
