/**
 * Sum over one axis, deterministic (fixed summation order, no atomics).
 *
 *   x (outer, axis, inner) → y (outer, inner), y = alpha · Σ_axis x
 * Long axes with few outputs (a bias gradient over 4,096 rows, a total over a whole tensor) are
 * split into chunks summed in a first pass, then the chunk sums in a second, so the work
 * spreads over many invocations and the order stays fixed.
 * Checked by kernels/reduce_test.ts against TF.js.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

const SPEC: KernelSpec = {
  name: "reduce_axis",
  bindings: [["x", "read"], ["y", "rw"]],
  params: [["outer", "u32"], ["axis", "u32"], ["inner", "u32"], ["alpha", "f32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.outer * p.inner) { return; }
  let o = i / p.inner;
  let j = i % p.inner;
  var s = 0.0;
  var at = o * p.axis * p.inner + j;
  for (var k = 0u; k < p.axis; k++) {
    s += x[at];
    at += p.inner;
  }
  y[i] = p.alpha * s;
}`,
};

/** Chunk length of the first pass when an axis is split. */
const CHUNK = 256;

/**
 * Records y = alpha · Σ over the middle axis of x viewed as (outer, axis, inner).
 * `scratch` must hold outer·ceil(axis/256)·inner floats when the axis is split
 * ({@linkcode reduceScratchSize}); pass it from a pooled buffer.
 */
export function sumAxis(
  gpu: Gpu,
  x: GPUBuffer,
  y: GPUBuffer,
  outer: number,
  axis: number,
  inner: number,
  alpha = 1,
  scratch?: GPUBuffer,
): void {
  const k = gpu.kernel(SPEC);
  if (needsSplit(outer, axis, inner)) {
    if (!scratch) throw new Error("sumAxis: a split reduction needs a scratch buffer");
    const chunks = Math.ceil(axis / CHUNK);
    // Pass 1 sums each run of 256 along the axis (the last one ragged); pass 2 sums the runs.
    const spec1: KernelSpec = {
      name: "reduce_axis_chunks",
      bindings: [["x", "read"], ["y", "rw"]],
      params: [["outer", "u32"], ["axis", "u32"], ["inner", "u32"], ["chunks", "u32"]],
      workgroupSize: [WG1],
      body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.outer * p.chunks * p.inner) { return; }
  let j = i % p.inner;
  let c = (i / p.inner) % p.chunks;
  let o = i / (p.inner * p.chunks);
  let k0 = c * ${CHUNK}u;
  let k1 = min(k0 + ${CHUNK}u, p.axis);
  var s = 0.0;
  for (var k = k0; k < k1; k++) { s += x[(o * p.axis + k) * p.inner + j]; }
  y[i] = s;
}`,
    };
    const n1 = outer * chunks * inner;
    gpu.dispatch(gpu.kernel(spec1), [x, scratch], [outer, axis, inner, chunks], grid1d(n1));
    gpu.dispatch(k, [scratch, y], [outer, chunks, inner, alpha], grid1d(outer * inner));
    return;
  }
  gpu.dispatch(k, [x, y], [outer, axis, inner, alpha], grid1d(outer * inner));
}

function needsSplit(outer: number, axis: number, inner: number): boolean {
  return axis > CHUNK && outer * inner < 4096;
}

/** Floats of scratch {@linkcode sumAxis} needs for this shape (0 when none). */
export function reduceScratchSize(outer: number, axis: number, inner: number): number {
  return needsSplit(outer, axis, inner) ? outer * Math.ceil(axis / CHUNK) * inner : 0;
}
