/**
 * float32 ↔ float16 casts on the GPU, for mixed precision: the matmul operands autocast runs in
 * f16 are cast here and read by kernels/matmul.ts's f16 variants.
 *
 *   toF16:  src (n) f32 → dst: n binary16 values packed two per u32 word (element 2i in the low
 *           half: WGSL's `array<f16>` layout and a little-endian `Uint16Array`), ⌈n/2⌉·4 bytes
 *   toF32:  src (n) packed f16 → dst (n) f32 (exact)
 * Both are core WGSL (integer arithmetic on the bits, `unpack2x16float`), so they run on every
 * adapter, with or without `shader-f16`. The f32 → f16 rounding is kernels/half.ts's: round to
 * nearest even, |x| ≥ 65520 → ±Inf as a float16 overflow is in PyTorch (where the loss scaler
 * then skips the step), not WGSL's `f16()` conversion, whose rounding the spec leaves to the
 * driver. Checked by kernels/matmul_f16_test.ts against the platform's `Float16Array`, bit for bit.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";
import { f32ToHalfBits } from "./half.ts";

/** Bytes of an f16 buffer of `n` values (whole 4-byte words, as bindings need). */
export function f16Bytes(n: number): number {
  return Math.ceil(n / 2) * 4;
}

const TO_F32: KernelSpec = {
  name: "cast_f16_to_f32",
  bindings: [["src", "read", "u32"], ["dst", "rw"]],
  params: [["n", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  dst[i] = unpack2x16float(src[i >> 1u])[i & 1u];
}`,
};

/** Records dst ({@linkcode f16Bytes}(n) bytes) = src's `n` float32 values rounded to float16. */
export function castToF16(gpu: Gpu, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  f32ToHalfBits(gpu, src, dst, n);
}

/** Records dst (f32) = the `n` packed float16 values of src, exactly. */
export function castToF32(gpu: Gpu, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`castToF32: n must be a non-negative integer, got ${n}`);
  }
  if (n === 0) return;
  gpu.dispatch(gpu.kernel(TO_F32), [src, dst], [n], grid1d(n));
}
