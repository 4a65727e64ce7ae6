/**
 * Softmax over the last axis with an optional additive attention mask, forward and backward.
 *
 *   x, y, dy, dx (R, C)   R = batch · rowsPerBatch (e.g. heads · queries), C = keys
 *   maskAdd (batch, C)    added to every row of its batch entry before the max
 *   y = exp(z - max z) / Σ exp(z - max z),  z = x + maskAdd[row / rowsPerBatch]
 *   dx = y · (dy - Σ dy · y)
 * The max is subtracted first, so inputs of ±30 and beyond (and the -10,000 mask) are stable.
 * Two variants: one workgroup per row with tree reductions (GPUs), and one invocation per row
 * with no workgroup memory and no barrier (software adapters, where every barrier splits the
 * kernel into coroutines: llvmpipe, SwiftShader); the second finds the max and the sum in one
 * pass (the online softmax: the running sum is rescaled when the max grows).
 * Checked by kernels/softmax_test.ts against TF.js, both variants.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, rowGrid, rowLayout, WG1 } from "./grid.ts";

const WG = 64;

const TREE = (op: string) => `
  for (var st = ${WG / 2}u; st > 0u; st >>= 1u) {
    if (li < st) { red[li] = ${op}; }
    workgroupBarrier();
  }`;

/** The forward's score of column c (the mask added when masked) and its name and bindings. */
function forwardHead(masked: boolean, layout: "" | "_row") {
  return {
    z: masked ? "x[base + c] + maskAdd[bm + c]" : "x[base + c]",
    spec: {
      name: `softmax_fwd${layout}${masked ? "_mask" : ""}`,
      bindings: [["x", "read"], ...(masked ? [["maskAdd", "read"]] : []), ["y", "rw"]],
      params: [["rows", "u32"], ["cols", "u32"], ["rowsPerBatch", "u32"]],
    } as Pick<KernelSpec, "name" | "bindings" | "params">,
  };
}

function forwardSpec(masked: boolean): KernelSpec {
  const { z, spec } = forwardHead(masked, "");
  return {
    ...spec,
    workgroupSize: [WG],
    body: `
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  let bm = (row / p.rowsPerBatch) * p.cols;
  var m = -3.4e38;
  for (var c = li; c < p.cols; c += ${WG}u) { m = max(m, ${z}); }
  red[li] = m;
  workgroupBarrier();
  ${TREE("max(red[li], red[li + st])")}
  let mx = red[0];
  workgroupBarrier();
  var s = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) { s += exp(${z} - mx); }
  red[li] = s;
  workgroupBarrier();
  ${TREE("red[li] + red[li + st]")}
  let inv = 1.0 / red[0];
  for (var c = li; c < p.cols; c += ${WG}u) { y[base + c] = exp(${z} - mx) * inv; }
}`,
  };
}

const BACKWARD: KernelSpec = {
  name: "softmax_bwd",
  bindings: [["y", "read"], ["dy", "read"], ["dx", "rw"]],
  params: [["rows", "u32"], ["cols", "u32"]],
  workgroupSize: [WG],
  body: `
var<workgroup> red: array<f32, ${WG}>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let base = row * p.cols;
  var s = 0.0;
  for (var c = li; c < p.cols; c += ${WG}u) { s += dy[base + c] * y[base + c]; }
  red[li] = s;
  workgroupBarrier();
  ${TREE("red[li] + red[li + st]")}
  let dot = red[0];
  for (var c = li; c < p.cols; c += ${WG}u) { dx[base + c] = y[base + c] * (dy[base + c] - dot); }
}`,
};

function forwardRowSpec(masked: boolean): KernelSpec {
  const { z, spec } = forwardHead(masked, "_row");
  return {
    ...spec,
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.rows) { return; }
  let base = i * p.cols;
  let bm = (i / p.rowsPerBatch) * p.cols;
  var m = -3.4e38;
  var s = 0.0;
  for (var c = 0u; c < p.cols; c++) {
    let z = ${z};
    if (z > m) { s = s * exp(m - z); m = z; }
    s += exp(z - m);
  }
  let inv = 1.0 / s;
  for (var c = 0u; c < p.cols; c++) { y[base + c] = exp(${z} - m) * inv; }
}`,
  };
}

const BACKWARD_ROW: KernelSpec = {
  name: "softmax_bwd_row",
  bindings: [["y", "read"], ["dy", "read"], ["dx", "rw"]],
  params: [["rows", "u32"], ["cols", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.rows) { return; }
  let base = i * p.cols;
  var dot = 0.0;
  for (var c = 0u; c < p.cols; c++) { dot += dy[base + c] * y[base + c]; }
  for (var c = 0u; c < p.cols; c++) { dx[base + c] = y[base + c] * (dy[base + c] - dot); }
}`,
};

/** Records y = softmax(x + mask) over rows of length `cols`. */
export function softmaxForward(
  gpu: Gpu,
  x: GPUBuffer,
  y: GPUBuffer,
  rows: number,
  cols: number,
  mask?: { maskAdd: GPUBuffer; rowsPerBatch: number },
): void {
  const buffers = mask ? [x, mask.maskAdd, y] : [x, y];
  const params = [rows, cols, mask?.rowsPerBatch ?? rows];
  if (rowLayout(gpu) === "row") {
    gpu.dispatch(gpu.kernel(forwardRowSpec(!!mask)), buffers, params, grid1d(rows));
  } else gpu.dispatch(gpu.kernel(forwardSpec(!!mask)), buffers, params, rowGrid(rows));
}

/** Records dx = y · (dy - Σ dy·y) per row. */
export function softmaxBackward(
  gpu: Gpu,
  y: GPUBuffer,
  dy: GPUBuffer,
  dx: GPUBuffer,
  rows: number,
  cols: number,
): void {
  if (rowLayout(gpu) === "row") {
    gpu.dispatch(gpu.kernel(BACKWARD_ROW), [y, dy, dx], [rows, cols], grid1d(rows));
  } else gpu.dispatch(gpu.kernel(BACKWARD), [y, dy, dx], [rows, cols], rowGrid(rows));
}
