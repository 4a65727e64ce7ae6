/**
 * Losses with their gradients: softmax cross-entropy with integer labels, and MSE.
 *
 *   cross-entropy: logits (R, C), labels (R) i32 → perRow (R) = logsumexp(z) - z[label], 0 where
 *     label == ignoreIndex; the mean over counted rows is a sum (kernels/reduce.ts) times 1/count.
 *     dlogits = gLoss · (softmax(z) - onehot(label)) / count, 0 on ignored rows.
 *   MSE: pred, target (n) → perElem (n) = (pred - target)², mean as above;
 *     dpred = gLoss · 2 (pred - target) / n.
 * The upstream gradient gLoss is read from a one-element buffer on the GPU, so backward needs
 * no readback. Checked by kernels/loss_test.ts against TF.js.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

const CE_FWD: KernelSpec = {
  name: "xent_fwd",
  bindings: [["z", "read"], ["labels", "read", "i32"], ["perRow", "rw"]],
  params: [["rows", "u32"], ["cols", "u32"], ["ignore", "i32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.rows) { return; }
  let lab = labels[i];
  if (lab == p.ignore) { perRow[i] = 0.0; return; }
  let base = i * p.cols;
  var m = -3.4e38;
  for (var c = 0u; c < p.cols; c++) { m = max(m, z[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += exp(z[base + c] - m); }
  perRow[i] = log(s) + m - z[base + u32(lab)];
}`,
};

const CE_BWD: KernelSpec = {
  name: "xent_bwd",
  bindings: [["z", "read"], ["labels", "read", "i32"], ["gLoss", "read"], ["dz", "rw"]],
  params: [["rows", "u32"], ["cols", "u32"], ["ignore", "i32"], ["invCount", "f32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.rows) { return; }
  let lab = labels[i];
  let base = i * p.cols;
  if (lab == p.ignore) {
    for (var c = 0u; c < p.cols; c++) { dz[base + c] = 0.0; }
    return;
  }
  var m = -3.4e38;
  for (var c = 0u; c < p.cols; c++) { m = max(m, z[base + c]); }
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += exp(z[base + c] - m); }
  let g = gLoss[0] * p.invCount;
  for (var c = 0u; c < p.cols; c++) {
    let sm = exp(z[base + c] - m) / s;
    dz[base + c] = g * (sm - select(0.0, 1.0, i32(c) == lab));
  }
}`,
};

/** Records the per-row cross-entropy (0 on ignored rows). */
export function crossEntropyRows(
  gpu: Gpu,
  logits: GPUBuffer,
  labels: GPUBuffer,
  perRow: GPUBuffer,
  rows: number,
  cols: number,
  ignoreIndex: number,
): void {
  gpu.dispatch(
    gpu.kernel(CE_FWD),
    [logits, labels, perRow],
    [rows, cols, ignoreIndex],
    grid1d(rows),
  );
}

/** Records dlogits of the mean cross-entropy over `count` rows, times gLoss[0]. */
export function crossEntropyBackward(
  gpu: Gpu,
  logits: GPUBuffer,
  labels: GPUBuffer,
  gLoss: GPUBuffer,
  dLogits: GPUBuffer,
  rows: number,
  cols: number,
  ignoreIndex: number,
  count: number,
): void {
  gpu.dispatch(
    gpu.kernel(CE_BWD),
    [logits, labels, gLoss, dLogits],
    [rows, cols, ignoreIndex, count > 0 ? 1 / count : 0],
    grid1d(rows),
  );
}

const MSE_FWD: KernelSpec = {
  name: "mse_fwd",
  bindings: [["pred", "read"], ["targ", "read"], ["perElem", "rw"]],
  params: [["n", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let d = pred[i] - targ[i];
  perElem[i] = d * d;
}`,
};

const MSE_BWD: KernelSpec = {
  name: "mse_bwd",
  bindings: [["pred", "read"], ["targ", "read"], ["gLoss", "read"], ["dpred", "rw"]],
  params: [["n", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  dpred[i] = gLoss[0] * 2.0 * (pred[i] - targ[i]) / f32(p.n);
}`,
};

/** Records (pred - target)² per element. */
export function mseElems(
  gpu: Gpu,
  pred: GPUBuffer,
  target: GPUBuffer,
  perElem: GPUBuffer,
  n: number,
): void {
  gpu.dispatch(gpu.kernel(MSE_FWD), [pred, target, perElem], [n], grid1d(n));
}

/** Records dpred of the mean squared error, times gLoss[0]. */
export function mseBackward(
  gpu: Gpu,
  pred: GPUBuffer,
  target: GPUBuffer,
  gLoss: GPUBuffer,
  dpred: GPUBuffer,
  n: number,
): void {
  gpu.dispatch(gpu.kernel(MSE_BWD), [pred, target, gLoss, dpred], [n], grid1d(n));
}
