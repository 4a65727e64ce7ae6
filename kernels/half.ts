/**
 * float32 → IEEE 754 binary16 bit patterns on the GPU, for f16 activation stores: the capture
 * reads back half the bytes and hands the store bits it writes as they are.
 *
 *   src (n) f32, read as u32 bit patterns → dst (⌈n/2⌉) u32, two halves per word:
 *   element 2i in the low 16 bits, 2i+1 in the high 16 bits (the layout a little-endian
 *   `Uint16Array` view of the readback has); for odd n the last word's high half is 0.
 *
 * WGSL leaves float → half rounding (`pack2x16float`, `f16(x)`) to the implementation, so the
 * conversion is integer arithmetic on the float32 bits: round to nearest, ties to even, in every
 * binade including the subnormal halves; values from 65520 up (and ±Inf) give ±Inf; ±0 and
 * values at most half the smallest subnormal give ±0; a NaN gives the quiet NaN `sign | 0x7e00`
 * with its payload dropped, as the platform `Float16Array` that data/half.ts `f32ToF16Bits`
 * uses does. Reading the source as u32 keeps NaN payloads and signs out of float hands.
 * `f32RowsToHalfBits` is the same conversion over strided rows (one layer's states into their
 * place in a capture batch): src rows of `rowLength` at `srcStride` → dst at `dstOffset` +
 * e·`dstStride` halves, all even.
 *
 * Checked by kernels/half_test.ts: bit-identical to data/half.ts `f32ToF16Bits` on boundary
 * cases, millions of random bit patterns and normal floats at several scales, odd and even n;
 * the strided form on the boundary cases laid out in interleaved rows, other words untouched.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

/**
 * WGSL `f32_bits_to_half(b: u32) -> u32`: the binary16 pattern (low 16 bits) nearest to the
 * float32 whose bits are `b`. Thresholds on |x|'s bits: 0x7f800000 = Inf, 0x477ff000 = 65520
 * (the midpoint between 65504 and 2^16: ties to even, i.e. to Inf), 0x38800000 = 2^-14 (the
 * smallest normal half), 0x33000000 = 2^-25 (half the smallest subnormal: ties to even, to 0).
 */
export const F32_TO_HALF_WGSL = `
fn f32_bits_to_half(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { return sign | 0x7e00u; }
  if (a >= 0x477ff000u) { return sign | 0x7c00u; }
  if (a >= 0x38800000u) {
    // Rebias the exponent (127 → 15) in place; the 13 dropped bits round to nearest even, and
    // a carry out of the mantissa bumps the exponent, as rounding up into the next binade must.
    let m = a - 0x38000000u;
    return sign | ((m + 0xfffu + ((m >> 13u) & 1u)) >> 13u);
  }
  if (a <= 0x33000000u) { return sign; }
  // Subnormal half: value = mant · 2^(e-150) = (mant >> (126 - e)) units of 2^-24, e in 102..112.
  let mant = (a & 0x7fffffu) | 0x800000u;
  let shift = 126u - (a >> 23u);
  let q = mant >> shift;
  let rem = mant & ((1u << shift) - 1u);
  let mid = 1u << (shift - 1u);
  // Rounding 0x3ff up gives 0x400, the smallest normal half: the right pattern.
  return sign | (q + select(0u, 1u, rem > mid || (rem == mid && (q & 1u) == 1u)));
}`;

const F32_TO_HALF: KernelSpec = {
  name: "f32_to_half_bits",
  bindings: [["src", "read", "u32"], ["dst", "rw", "u32"]],
  params: [["n", "u32"]],
  workgroupSize: [WG1],
  body: `${F32_TO_HALF_WGSL}
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  let j = 2u * i;
  if (j >= p.n) { return; }
  let lo = f32_bits_to_half(src[j]);
  var hi = 0u;
  if (j + 1u < p.n) { hi = f32_bits_to_half(src[j + 1u]); }
  dst[i] = lo | (hi << 16u);
}`,
};

/** u32 words (and bytes ÷ 4) that {@linkcode f32ToHalfBits} writes for `n` values: ⌈n/2⌉. */
export function halfWords(n: number): number {
  return Math.ceil(n / 2);
}

/**
 * Records dst = the binary16 bit patterns of src's first `n` float32 values, two per u32 word
 * ({@linkcode halfWords}(n) words; read back, `new Uint16Array(bytes, 0, n)` holds them in order).
 * Rounds to nearest even, exactly as data/half.ts `f32ToF16Bits`.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * import { f32ToHalfBits, halfWords } from "./half.ts";
 * const gpu = await getGpu();
 * const x = new Float32Array([1, -2, 65520]);
 * const src = gpu.acquire(x.byteLength), dst = gpu.acquire(halfWords(x.length) * 4);
 * gpu.upload(src.buffer, x);
 * f32ToHalfBits(gpu, src.buffer, dst.buffer, x.length);
 * const bits = new Uint16Array(await gpu.read(dst.buffer, halfWords(x.length) * 4), 0, x.length);
 * console.assert(bits[0] === 0x3c00 && bits[1] === 0xc000 && bits[2] === 0x7c00);
 * gpu.release(src);
 * gpu.release(dst);
 * ```
 */
export function f32ToHalfBits(gpu: Gpu, src: GPUBuffer, dst: GPUBuffer, n: number): void {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`f32ToHalfBits: n must be a non-negative integer, got ${n}`);
  }
  if (n === 0) return;
  gpu.dispatch(gpu.kernel(F32_TO_HALF), [src, dst], [n], grid1d(halfWords(n)));
}

const ROWS_TO_HALF: KernelSpec = {
  name: "f32_rows_to_half_bits",
  bindings: [["src", "read", "u32"], ["dst", "rw", "u32"]],
  params: [
    ["n", "u32"],
    ["row_words", "u32"],
    ["src_stride", "u32"],
    ["dst_stride", "u32"],
    ["dst_offset", "u32"],
  ],
  workgroupSize: [WG1],
  body: `${F32_TO_HALF_WGSL}
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  // Word w of row e: the halves of values 2w and 2w + 1 of that row (row lengths are even).
  let e = i / p.row_words;
  let w = i - e * p.row_words;
  let s = e * p.src_stride + 2u * w;
  dst[p.dst_offset + e * p.dst_stride + w] =
    f32_bits_to_half(src[s]) | (f32_bits_to_half(src[s + 1u]) << 16u);
}`,
};

/**
 * Where {@linkcode f32RowsToHalfBits} reads and writes: `rows` rows of `rowLength` values, row e
 * read from src at float32 index e·`srcStride` and written as half bit patterns at half index
 * `dstOffset` + e·`dstStride` of dst (two halves per u32 word, as {@linkcode f32ToHalfBits}).
 * `rowLength`, `dstStride` and `dstOffset` count halves and must be even, so that every row
 * starts and ends on a word and no word is shared with another row (or another dispatch).
 */
export interface HalfRows {
  rows: number;
  rowLength: number;
  srcStride: number;
  dstStride: number;
  dstOffset: number;
}

/**
 * Records the strided form of {@linkcode f32ToHalfBits}: for each of `r.rows` rows, `r.rowLength`
 * float32 values of src converted to binary16 bit patterns (the same rounding, bit for bit) and
 * written packed into dst at the row's place (see {@linkcode HalfRows}); dst's other words are
 * left as they were. Capture uses it to lay out one layer's hidden states (B, S, H) into the
 * f16 store's (B, L+1, S·H or H) batch straight from the state, with no float32 copy between.
 * Throws a RangeError for a layout that is not whole words or whose rows overlap.
 */
export function f32RowsToHalfBits(gpu: Gpu, src: GPUBuffer, dst: GPUBuffer, r: HalfRows): void {
  for (const k of ["rows", "rowLength", "srcStride", "dstStride", "dstOffset"] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 0 || r[k] > 0xffffffff) {
      throw new RangeError(`f32RowsToHalfBits: ${k} must be a non-negative integer, got ${r[k]}`);
    }
  }
  for (const k of ["rowLength", "dstStride", "dstOffset"] as const) {
    if (r[k] % 2) {
      throw new RangeError(
        `f32RowsToHalfBits: ${k} must be even (whole u32 words of two halves), got ${r[k]}`,
      );
    }
  }
  if (r.rows > 1 && (r.srcStride < r.rowLength || r.dstStride < r.rowLength)) {
    throw new RangeError(
      `f32RowsToHalfBits: rows of ${r.rowLength} values overlap at srcStride ${r.srcStride} / ` +
        `dstStride ${r.dstStride}`,
    );
  }
  const words = r.rows * (r.rowLength / 2);
  if (words === 0) return;
  gpu.dispatch(
    gpu.kernel(ROWS_TO_HALF),
    [src, dst],
    [words, r.rowLength / 2, r.srcStride, r.dstStride / 2, r.dstOffset / 2],
    grid1d(words),
  );
}
