/**
 * AdamW (torch.optim.AdamW semantics) and global-norm gradient clipping, on the GPU with no
 * readback: the gradient norm is reduced into a one-element buffer that the update reads.
 *
 *   sumsq:   g (n) → partial[off + k] = Σ g² over chunk k of 1,024 elements
 *   norm:    partial (P) → norm[0] = sqrt(Σ partial) (one workgroup, fixed order)
 *   adamw:   clip = min(1, maxNorm / (norm + 1e-6)) (1 when maxNorm ≤ 0), g' = g · clip
 *            m ← β1 m + (1-β1) g';  v ← β2 v + (1-β2) g'²
 *            with bias correction (torch.optim.AdamW):
 *              p ← p · (1 - lr·wd);  p ← p - (lr / bc1) · m / (sqrt(v) / sqrt(bc2) + eps)
 *            without (transformers.AdamW(correct_bias=False), the seed's optimizer):
 *              p ← p - lr · m / (sqrt(v) + eps);  p ← p · (1 - lr·wd)   (decay AFTER the update)
 * bc1 = 1 - β1^t and bc2 = 1 - β2^t come from the host's step count (1 and 1 without bias
 * correction). Checked by kernels/optim_test.ts against a float64 reference of torch's update,
 * and of transformers' `AdamW(correct_bias=False)` written from its source (and by
 * tests/adamw_bert_test.ts: five steps of a tiny BERT against TF.js's loss sequence).
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

/** Elements per partial sum of squares. */
export const NORM_CHUNK = 1024;

const SUMSQ: KernelSpec = {
  name: "sumsq_chunks",
  bindings: [["g", "read"], ["partial", "rw"]],
  params: [["n", "u32"], ["offset", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  let k0 = i * ${NORM_CHUNK}u;
  if (k0 >= p.n) { return; }
  let k1 = min(k0 + ${NORM_CHUNK}u, p.n);
  var s = 0.0;
  for (var k = k0; k < k1; k++) { s += g[k] * g[k]; }
  partial[p.offset + i] = s;
}`,
};

const NORM: KernelSpec = {
  name: "norm_from_partials",
  bindings: [["partial", "read"], ["norm", "rw"]],
  params: [["count", "u32"]],
  workgroupSize: [WG1],
  body: `
var<workgroup> red: array<f32, ${WG1}>;
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
  var s = 0.0;
  for (var k = li; k < p.count; k += ${WG1}u) { s += partial[k]; }
  red[li] = s;
  workgroupBarrier();
  for (var st = ${WG1 / 2}u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] += red[li + st]; }
    workgroupBarrier();
  }
  if (li == 0u) { norm[0] = sqrt(red[0]); }
}`,
};

/** Number of partial slots a gradient of n elements takes. */
export function normSlots(n: number): number {
  return Math.ceil(n / NORM_CHUNK);
}

/** Records partial sums of squares of `g` into `partial` starting at slot `offset`. */
export function sumSquares(
  gpu: Gpu,
  g: GPUBuffer,
  n: number,
  partial: GPUBuffer,
  offset: number,
): void {
  gpu.dispatch(gpu.kernel(SUMSQ), [g, partial], [n, offset], grid1d(normSlots(n)));
}

/** Records norm[0] = sqrt(Σ partial[0..count)). */
export function normFromPartials(
  gpu: Gpu,
  partial: GPUBuffer,
  norm: GPUBuffer,
  count: number,
): void {
  gpu.dispatch(gpu.kernel(NORM), [partial, norm], [count], [1]);
}

/**
 * The AdamW update's WGSL after the bias corrections `bc1`, `bc2` are known: clip, moments, and
 * the decay before the update (torch) or after it (`decayAfter`: transformers' correct_bias=False).
 */
const ADAMW_UPDATE = `
  var clip = 1.0;
  if (p.maxNorm > 0.0) { clip = min(1.0, p.maxNorm / (norm[0] + 1e-6)); }
  let g = grad[i] * clip;
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let decay = 1.0 - p.lr * p.wd;
  var w = param[i];
  if (p.decayAfter == 0u) { w *= decay; }
  w -= (p.lr / bc1) * mi / (sqrt(vi) / sqrt(bc2) + p.eps);
  if (p.decayAfter != 0u) { w *= decay; }
  param[i] = w;`;

const ADAMW: KernelSpec = {
  name: "adamw",
  bindings: [["param", "rw"], ["grad", "read"], ["m", "rw"], ["v", "rw"], ["norm", "read"]],
  params: [
    ["n", "u32"],
    ["lr", "f32"],
    ["beta1", "f32"],
    ["beta2", "f32"],
    ["eps", "f32"],
    ["wd", "f32"],
    ["bc1", "f32"],
    ["bc2", "f32"],
    ["maxNorm", "f32"],
    ["decayAfter", "u32"],
  ],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let bc1 = p.bc1;
  let bc2 = p.bc2;
  ${ADAMW_UPDATE}
}`,
};

/**
 * AdamW under a loss scaler (kernels/scaler.ts): the same update, but nothing changes when the
 * scaler's found-inf word is set (the step torch's `scaler.step` skips), and the bias correction
 * counts the steps actually taken (state word 3, + 1 for this one) instead of the host's count;
 * with `biasCorrection` false, transformers' update as {@linkcode adamwUpdate} (no correction,
 * decay after the update).
 */
const ADAMW_SCALED: KernelSpec = {
  name: "adamw_scaled",
  bindings: [
    ["param", "rw"],
    ["grad", "read"],
    ["m", "rw"],
    ["v", "rw"],
    ["norm", "read"],
    ["scaler", "read", "u32"],
  ],
  params: ADAMW.params.filter(([n]) => n !== "bc1" && n !== "bc2"),
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n || scaler[2] != 0u) { return; }
  var bc1 = 1.0;
  var bc2 = 1.0;
  if (p.decayAfter == 0u) {
    let t = f32(scaler[3] + 1u);
    bc1 = 1.0 - pow(p.beta1, t);
    bc2 = 1.0 - pow(p.beta2, t);
  }
  ${ADAMW_UPDATE}
}`,
};

/** Hyper-parameters of one AdamW update. */
export interface AdamWStep {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step count (for bias correction). */
  step: number;
  /** Clip to this global norm; 0 disables clipping. */
  maxNorm: number;
  /**
   * true (default): torch.optim.AdamW, bias-corrected moments, decay before the update. false:
   * transformers.AdamW(correct_bias=False): no bias correction, decay after the update.
   */
  biasCorrection?: boolean;
}

/** Records one AdamW update of `param` in place; `norm` holds the global gradient norm. */
export function adamwUpdate(
  gpu: Gpu,
  param: GPUBuffer,
  grad: GPUBuffer,
  m: GPUBuffer,
  v: GPUBuffer,
  norm: GPUBuffer,
  n: number,
  h: AdamWStep,
): void {
  const correct = h.biasCorrection ?? true;
  const bc1 = correct ? 1 - Math.pow(h.beta1, h.step) : 1;
  const bc2 = correct ? 1 - Math.pow(h.beta2, h.step) : 1;
  gpu.dispatch(
    gpu.kernel(ADAMW),
    [param, grad, m, v, norm],
    [n, h.lr, h.beta1, h.beta2, h.eps, h.weightDecay, bc1, bc2, h.maxNorm, correct ? 0 : 1],
    grid1d(n),
  );
}

/**
 * Records one AdamW update of `param` under a loss scaler's `state` buffer (kernels/scaler.ts):
 * skipped on the GPU when the state says an overflow was found; `h.step` is unused (the state
 * counts the steps taken).
 */
export function adamwScaledUpdate(
  gpu: Gpu,
  param: GPUBuffer,
  grad: GPUBuffer,
  m: GPUBuffer,
  v: GPUBuffer,
  norm: GPUBuffer,
  state: GPUBuffer,
  n: number,
  h: AdamWStep,
): void {
  gpu.dispatch(
    gpu.kernel(ADAMW_SCALED),
    [param, grad, m, v, norm, state],
    [
      n,
      h.lr,
      h.beta1,
      h.beta2,
      h.eps,
      h.weightDecay,
      h.maxNorm,
      (h.biasCorrection ?? true) ? 0 : 1,
    ],
    grid1d(n),
  );
}
