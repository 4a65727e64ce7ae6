/**
 * Dynamic loss scaling on the GPU, with PyTorch `torch.cuda.amp.GradScaler`'s semantics and no
 * readback: the scale, its growth tracker, the found-inf flag and the optimizer's step count live
 * in one 4-word state buffer that the kernels read and write.
 *
 *   state (4 u32 words): [0] scale (f32 bits), [1] growth tracker (u32),
 *                        [2] found inf (u32, 0 or 1), [3] optimizer steps taken (u32)
 *   seed:     out[0] = scale (the loss gradient backward starts from: the loss times the scale)
 *   unscale:  g ← g · (1 / scale); any non-finite result sets found inf
 *             (`_amp_foreach_non_finite_check_and_unscale_`)
 *   update:   found inf → scale ← scale · backoff, tracker ← 0 (the optimizer step was skipped);
 *             else tracker + 1, steps + 1, and at `growthInterval` scale ← scale · growth (when
 *             finite) and tracker ← 0 (`_amp_update_scale_`); found inf is cleared for the next
 *             step.
 * The optimizer step reads the flag (kernels/optim.ts `adamwScaledUpdate`) and leaves the
 * parameters and moments untouched on an overflow; its bias correction counts state[3], the
 * steps actually taken, as torch's AdamW skipped by `scaler.step` does. Checked by
 * kernels/scaler_test.ts against a reference of `_amp_update_scale_` with injected overflows.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

/** GradScaler's settings (torch defaults). */
export interface ScalerOptions {
  /** Initial scale (torch: 2^16). */
  initScale: number;
  /** Factor on growth (torch: 2). */
  growthFactor: number;
  /** Factor on an overflow (torch: 0.5). */
  backoffFactor: number;
  /** Steps without an overflow before the scale grows (torch: 2000). */
  growthInterval: number;
}

/** torch.cuda.amp.GradScaler's defaults. */
export const SCALER_DEFAULTS: ScalerOptions = {
  initScale: 65536,
  growthFactor: 2,
  backoffFactor: 0.5,
  growthInterval: 2000,
};

/** The host view of the state buffer (checkpoints). */
export interface ScalerState {
  scale: number;
  growthTracker: number;
  /** Optimizer steps taken (overflowed steps are not counted). */
  steps: number;
}

/** Bytes of the state buffer. */
export const SCALER_STATE_BYTES = 16;

/** The state buffer's contents for `s` (found inf cleared). */
export function scalerStateWords(s: ScalerState): Uint32Array {
  const w = new Uint32Array(4);
  new Float32Array(w.buffer, 0, 1)[0] = s.scale;
  w[1] = s.growthTracker;
  w[3] = s.steps;
  return w;
}

/** Decodes a state buffer read back ({@linkcode SCALER_STATE_BYTES} bytes). */
export function decodeScalerState(bytes: ArrayBuffer): ScalerState & { foundInf: boolean } {
  const w = new Uint32Array(bytes, 0, 4);
  return {
    scale: new Float32Array(bytes, 0, 1)[0],
    growthTracker: w[1],
    foundInf: w[2] !== 0,
    steps: w[3],
  };
}

const SEED: KernelSpec = {
  name: "scaler_seed",
  bindings: [["state", "read", "u32"], ["out", "rw"]],
  params: [],
  workgroupSize: [1],
  body: `
@compute @workgroup_size(WG)
fn main() { out[0] = bitcast<f32>(state[0]); }`,
};

const UNSCALE: KernelSpec = {
  name: "scaler_unscale",
  bindings: [["g", "rw"], ["state", "rw", "atomic<u32>"]],
  params: [["n", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let inv = 1.0 / bitcast<f32>(atomicLoad(&state[0]));
  let v = g[i] * inv;
  g[i] = v;
  // Inf and NaN have an all-ones exponent (checked on the bits: no fast-math can drop it).
  if ((bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u) { atomicStore(&state[2], 1u); }
}`,
};

const UPDATE: KernelSpec = {
  name: "scaler_update",
  bindings: [["state", "rw", "u32"]],
  params: [["interval", "u32"], ["growth", "f32"], ["backoff", "f32"]],
  workgroupSize: [1],
  body: `
@compute @workgroup_size(WG)
fn main() {
  let scale = bitcast<f32>(state[0]);
  if (state[2] != 0u) {
    state[0] = bitcast<u32>(scale * p.backoff);
    state[1] = 0u;
  } else {
    state[3] = state[3] + 1u;
    let t = state[1] + 1u;
    if (t >= p.interval) {
      let grown = scale * p.growth;
      if ((bitcast<u32>(grown) & 0x7f800000u) != 0x7f800000u) { state[0] = bitcast<u32>(grown); }
      state[1] = 0u;
    } else {
      state[1] = t;
    }
  }
  state[2] = 0u;
}`,
};

/** Records out[0] = the current scale (the gradient backward seeds the loss with). */
export function scalerSeed(gpu: Gpu, state: GPUBuffer, out: GPUBuffer): void {
  gpu.dispatch(gpu.kernel(SEED), [state, out], [], [1]);
}

/** Records g ← g / scale for `n` elements, flagging any inf/NaN in the state's found-inf word. */
export function scalerUnscale(gpu: Gpu, g: GPUBuffer, n: number, state: GPUBuffer): void {
  if (n === 0) return;
  gpu.dispatch(gpu.kernel(UNSCALE), [g, state], [n], grid1d(n));
}

/** Records the end-of-step scale update (backoff or growth) and clears found inf. */
export function scalerUpdate(gpu: Gpu, state: GPUBuffer, o: ScalerOptions): void {
  gpu.dispatch(
    gpu.kernel(UPDATE),
    [state],
    [o.growthInterval, o.growthFactor, o.backoffFactor],
    [1],
  );
}
