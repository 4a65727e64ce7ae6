/**
 * IEEE 754 half-precision (float16) and bfloat16 bit conversions for file formats
 * (safetensors F16/BF16 tensors, f16 HDF5 activation stores).
 *
 * Uses the platform `Float16Array` when there is one (Deno 2 has it) and exact bit-twiddling
 * fallbacks otherwise; both round to nearest, ties to even, as numpy's `astype(float16)` does.
 * @module
 */

type HalfArrayCtor = new (buf: ArrayBuffer) => ArrayLike<number> & {
  set(a: ArrayLike<number>): void;
};
/** The platform's Float16Array, if any (looked up so older runtimes still load this file). */
const F16 = (globalThis as { Float16Array?: HalfArrayCtor }).Float16Array;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bit pattern nearest to `x` (round to nearest even; overflow to ±Infinity). */
export function toHalfBits(x: number): number {
  f32[0] = x; // first round to float32, as Float16Array and numpy do from float32 data
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: ±0
    mant |= 0x800000; // implicit leading one
    const shift = 14 - e; // 14..24
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (and reaches Inf at the top).
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && (half & 1)) ? 1 : 0));
}

/** The value of a float16 bit pattern. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Encodes float32 values as float16 bit patterns. */
export function f32ToF16Bits(src: ArrayLike<number>, useNative = true): Uint16Array {
  const out = new Uint16Array(src.length);
  if (F16 && useNative) {
    new F16(out.buffer).set(src);
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = toHalfBits(src[i]);
  return out;
}

/** Decodes float16 bit patterns to float32 values (exact: every half is a float32). */
export function f16BitsToF32(src: Uint16Array, useNative = true): Float32Array {
  const out = new Float32Array(src.length);
  if (F16 && useNative) {
    out.set(new F16(src.slice().buffer));
    return out;
  }
  for (let i = 0; i < src.length; i++) out[i] = fromHalfBits(src[i]);
  return out;
}

/** Decodes bfloat16 bit patterns (the top 16 bits of a float32) to float32 values. */
export function bf16BitsToF32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return new Float32Array(bits.buffer);
}

/** `x` rounded to the nearest float16 value, as a number (what an f16 store reads back). */
export function roundToHalf(x: number): number {
  return fromHalfBits(toHalfBits(x));
}
