/**
 * LayerNorm over the last axis, forward and backward.
 *
 *   x, y, dy, dx (R, C); gamma, beta, dgamma, dbeta (C); mean, rstd (R) saved by forward
 *   y = (x - mean) · rstd · gamma + beta,  rstd = 1 / sqrt(var + eps), var biased (÷C)
 *   dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)),  g = dy · gamma,  x̂ = (x - mean) · rstd
 * One workgroup per row (on software adapters the forward takes one invocation per row, with no
 * barrier); the mean and the variance are two passes (not E[x²] - E[x]², which
 * cancels in float32). dgamma/dbeta are written per row as (R, C) partials and summed over rows
 * by the deterministic reduction (kernels/reduce.ts). Checked by kernels/layernorm_test.ts.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, rowGrid, rowLayout, WG1 } from "./grid.ts";

const WG = 128;

/** Tree reduction of `red[0..WG)` into red[0] (every invocation must call it). */
const REDUCE = `
fn tree_sum(li: u32) {
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (li < s) { red[li] += red[li + s]; }
    workgroupBarrier();
  }
}`;

const FORWARD: KernelSpec = {
  name: "layernorm_fwd",
  bindings: [["x", "read"], ["gamma", "read"], ["beta", "read"], ["y", "rw"], ["stats", "rw"]],
  params: [["rows", "u32"], ["cols", "u32"], ["eps", "f32"]],
  workgroupSize: [WG],
  body: `
var<workgroup> red: array<f32, ${WG}>;
${REDUCE}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) { s += x[base + c]; }
  red[li] = s;
  workgroupBarrier();
  tree_sum(li);
  let mean = red[0] / f32(p.cols);
  workgroupBarrier();
  var v = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) { let d = x[base + c] - mean; v += d * d; }
  red[li] = v;
  workgroupBarrier();
  tree_sum(li);
  let rstd = inverseSqrt(red[0] / f32(p.cols) + p.eps);
  for (var c = li; c < p.cols; c += ${WG}u) {
    y[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
  }
  if (li == 0u) { stats[2u * row] = mean; stats[2u * row + 1u] = rstd; }
}`,
};

/**
 * The forward with one invocation per row, no workgroup memory and no barrier (software
 * adapters: llvmpipe splits a kernel into coroutines at every barrier); the same two-pass mean and
 * variance, each summed in order, the mean's terms shifted by the row's first value.
 */
const FORWARD_ROW: KernelSpec = {
  name: "layernorm_fwd_row",
  bindings: FORWARD.bindings,
  params: FORWARD.params,
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.rows) { return; }
  let base = i * p.cols;
  // Summed from the row's first value: a sequential sum of large values (an offset of 1000)
  // would lose the digits a tree reduction keeps; the shifted terms are small.
  let x0 = x[base];
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) { s += x[base + c] - x0; }
  let mean = x0 + s / f32(p.cols);
  var v = 0.0;
  for (var c = 0u; c < p.cols; c++) { let d = x[base + c] - mean; v += d * d; }
  let rstd = inverseSqrt(v / f32(p.cols) + p.eps);
  for (var c = 0u; c < p.cols; c++) {
    y[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c];
  }
  stats[2u * i] = mean;
  stats[2u * i + 1u] = rstd;
}`,
};

const BACKWARD: KernelSpec = {
  name: "layernorm_bwd",
  bindings: [
    ["x", "read"],
    ["gamma", "read"],
    ["stats", "read"],
    ["dy", "read"],
    ["dx", "rw"],
    ["dgammaRows", "rw"],
  ],
  params: [["rows", "u32"], ["cols", "u32"]],
  workgroupSize: [WG],
  body: `
var<workgroup> red: array<f32, ${WG}>;
${REDUCE}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let mean = stats[2u * row];
  let rstd = stats[2u * row + 1u];
  var s1 = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) { s1 += dy[base + c] * gamma[c]; }
  red[li] = s1;
  workgroupBarrier();
  tree_sum(li);
  let mg = red[0] / f32(p.cols);
  workgroupBarrier();
  var s2 = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) {
    s2 += dy[base + c] * gamma[c] * (x[base + c] - mean) * rstd;
  }
  red[li] = s2;
  workgroupBarrier();
  tree_sum(li);
  let mgx = red[0] / f32(p.cols);
  for (var c = li; c < p.cols; c += ${WG}u) {
    let xh = (x[base + c] - mean) * rstd;
    let g = dy[base + c] * gamma[c];
    dx[base + c] = rstd * (g - mg - xh * mgx);
    dgammaRows[base + c] = dy[base + c] * xh;
  }
}`,
};

/** Records y = LayerNorm(x) and saves (mean, rstd) per row into `stats` (2·R floats). */
export function layerNormForward(
  gpu: Gpu,
  x: GPUBuffer,
  gamma: GPUBuffer,
  beta: GPUBuffer,
  y: GPUBuffer,
  stats: GPUBuffer,
  rows: number,
  cols: number,
  eps: number,
): void {
  const buffers = [x, gamma, beta, y, stats];
  if (rowLayout(gpu) === "row") {
    gpu.dispatch(gpu.kernel(FORWARD_ROW), buffers, [rows, cols, eps], grid1d(rows));
  } else gpu.dispatch(gpu.kernel(FORWARD), buffers, [rows, cols, eps], rowGrid(rows));
}

/**
 * Records dx and the per-row dgamma partials dy·x̂ (R, C); sum those over rows for dgamma,
 * and dy over rows for dbeta.
 */
export function layerNormBackward(
  gpu: Gpu,
  x: GPUBuffer,
  gamma: GPUBuffer,
  stats: GPUBuffer,
  dy: GPUBuffer,
  dx: GPUBuffer,
  dgammaRows: GPUBuffer,
  rows: number,
  cols: number,
): void {
  gpu.dispatch(
    gpu.kernel(BACKWARD),
    [x, gamma, stats, dy, dx, dgammaRows],
    [rows, cols],
    rowGrid(rows),
  );
}
