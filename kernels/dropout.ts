/**
 * Inverted dropout with a counter-based RNG: the keep decision for element i is a pure hash of
 * (seed, stream, offset + i), so the mask is never stored: backward recomputes it, and the same
 * seed gives bit-identical results on any run. `offset` places a micro-batch's elements where they
 * sit in the whole batch, so a batch split into micro-batches draws the same mask (32-bit
 * arithmetic, wrapping like the unsplit index would).
 *
 *   x, y, dy, dx (n);  y = x · keep(i) / (1 - rate),  dx = dy · keep(i) / (1 - rate)
 * The hash is PCG's output permutation applied twice (a 32-bit integer hash with good
 * avalanche); keep(i) = hash ≥ rate · 2³². Checked by kernels/dropout_test.ts (rate, identity
 * at rate 0, determinism, mask shared by forward and backward).
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

/** The WGSL hash; mirrored by {@linkcode hashHost} for tests. */
export const HASH_WGSL = `
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn keep_bits(seed: u32, stream: u32, i: u32) -> u32 {
  return pcg(pcg(i ^ pcg(stream + pcg(seed))));
}`;

function pcgHost(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** Host mirror of the kernel's hash (tests check the GPU mask against it). */
export function hashHost(seed: number, stream: number, i: number): number {
  return pcgHost(pcgHost((i ^ pcgHost((stream + pcgHost(seed)) >>> 0)) >>> 0));
}

const SPEC: KernelSpec = {
  name: "dropout",
  bindings: [["x", "read"], ["y", "rw"]],
  params: [
    ["n", "u32"],
    ["seed", "u32"],
    ["stream", "u32"],
    ["threshold", "u32"],
    ["scale", "f32"],
    ["offset", "u32"],
  ],
  workgroupSize: [WG1],
  body: `${HASH_WGSL}
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let keep = keep_bits(p.seed, p.stream, p.offset + i) >= p.threshold;
  y[i] = select(0.0, x[i] * p.scale, keep);
}`,
};

/**
 * Records y = dropout(x) (or, called with dy/dx, its backward: the same mask and scale).
 * `stream` distinguishes dropout sites and steps under one seed; element i draws the mask bit
 * of index `offset + i`.
 */
export function dropout(
  gpu: Gpu,
  x: GPUBuffer,
  y: GPUBuffer,
  n: number,
  rate: number,
  seed: number,
  stream: number,
  offset = 0,
): void {
  if (!(rate >= 0 && rate < 1)) throw new RangeError(`dropout rate ${rate} must be in [0, 1)`);
  const threshold = Math.min(0xffffffff, Math.round(rate * 2 ** 32));
  gpu.dispatch(
    gpu.kernel(SPEC),
    [x, y],
    [n, seed >>> 0, stream >>> 0, threshold, 1 / (1 - rate), offset >>> 0],
    grid1d(n),
  );
}
