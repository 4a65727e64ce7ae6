// kernels/half.ts f32ToHalfBits against data/half.ts f32ToF16Bits (the host conversion the f16
// store used before): bit-identical, no tolerance — both claim round to nearest even, and NaN
// as the platform Float16Array writes it (sign | 0x7e00). Boundary cases in every binade, all
// 2^16 halves, 4M uniformly random float32 bit patterns, normal floats at several scales, odd
// and even counts and n = 1; the words past ⌈n/2⌉ stay untouched and an odd n's last high
// half is 0.
import assert from "node:assert/strict";
import { getGpu } from "./device.ts";
import { f32ToHalfBits, halfWords } from "./half.ts";
import { f16BitsToF32, f32ToF16Bits } from "../data/half.ts";
import { Rng } from "../data/rng.ts";

const gpu = await getGpu();
const SENTINEL = 0xdeadbeef;

const hex = (x: number, digits: number) => "0x" + (x >>> 0).toString(16).padStart(digits, "0");

/** Converts float32 bit patterns on the GPU; checks the words past ⌈n/2⌉ were not written. */
async function onGpu(bits: Uint32Array): Promise<Uint16Array> {
  const n = bits.length, words = halfWords(n);
  const src = gpu.acquire(n * 4, "half_test src");
  const dst = gpu.acquire((words + 1) * 4, "half_test dst");
  try {
    gpu.upload(src.buffer, bits);
    gpu.upload(dst.buffer, new Uint32Array(words + 1).fill(SENTINEL));
    f32ToHalfBits(gpu, src.buffer, dst.buffer, n);
    const out = new Uint32Array(await gpu.read(dst.buffer, (words + 1) * 4));
    assert.equal(out[words], SENTINEL, `n=${n}: the word past ⌈n/2⌉ was written`);
    if (n % 2) assert.equal(out[words - 1] >>> 16, 0, `n=${n}: odd n's last high half is not 0`);
    return new Uint16Array(out.buffer, 0, n);
  } finally {
    gpu.release(src);
    gpu.release(dst);
  }
}

/** Asserts the GPU conversion of `bits` equals f32ToF16Bits, printing the first mismatches. */
async function check(what: string, bits: Uint32Array): Promise<void> {
  const got = await onGpu(bits);
  const want = f32ToF16Bits(new Float32Array(bits.buffer, bits.byteOffset, bits.length));
  const bad: string[] = [];
  let count = 0;
  for (let i = 0; i < bits.length; i++) {
    if (got[i] === want[i]) continue;
    if (++count <= 8) {
      const x = new Float32Array(bits.buffer, bits.byteOffset + i * 4, 1)[0];
      bad.push(
        `  [${i}] f32 ${hex(bits[i], 8)} (${x}): gpu ${hex(got[i], 4)}, host ${hex(want[i], 4)}`,
      );
    }
  }
  assert.equal(
    count,
    0,
    `${what}: ${count} of ${bits.length} differ; first:\n${bad.join("\n")}`,
  );
}

const f32Bits = (xs: ArrayLike<number>) => new Uint32Array(Float32Array.from(xs).buffer);
/** Adds both signs: every case also with the sign bit flipped. */
const signed = (b: Uint32Array) => {
  const out = new Uint32Array(b.length * 2);
  out.set(b);
  for (let i = 0; i < b.length; i++) out[b.length + i] = (b[i] ^ 0x80000000) >>> 0;
  return out;
};

Deno.test("f32ToHalfBits: hand boundary cases", async () => {
  const values = [
    0,
    1,
    1.5,
    0.1,
    65504, // largest half
    Math.fround(65519.99), // just below the overflow midpoint: 65504
    65520, // the midpoint to 2^16: ties to even = Inf
    65536,
    3.4028234663852886e38, // largest float32
    Infinity,
    2 ** -14, // smallest normal half
    2 ** -14 - 2 ** -25, // midpoint below it: ties to even (0x400, the normal)
    2 ** -24, // smallest subnormal half
    2 ** -25, // half of it: ties to even = 0
    3 * 2 ** -25, // tie between subnormals 1 and 2: even = 2
    5 * 2 ** -25, // tie between 2 and 3: even = 2
    2 ** -26,
    1 + 2 ** -11, // tie 1 ↔ 1 + 2^-10: even = 1
    1 + 3 * 2 ** -11, // tie: even = 1 + 2^-9
    2047, // exact: largest integer step 1
    2049, // tie 2048 ↔ 2050: even = 2048
    2051, // tie 2050 ↔ 2052: even = 2052
  ];
  const raw = [
    0x00000001, // smallest float32 subnormal
    0x007fffff, // largest float32 subnormal
    0x00800000, // smallest float32 normal
    0x33000000, // 2^-25 exactly
    0x33000001, // just above: rounds up to 2^-24
    0x32ffffff, // just below: 0
    0x387fe000, // 2^-14 − 2^-25: tie between 0x3ff and 0x400 → 0x400
    0x387fdfff, // just below that tie: 0x3ff
    0x387fffff, // just below 2^-14: 0x400
    0x477fefff, // just below 65520: 65504
    0x477ff000, // 65520: Inf
    0x477ff001, // just above: Inf
    0x7f7fffff, // largest float32: Inf
    0x7f800000, // Inf
    // NaN payloads: quiet and signalling, with high and low payload bits, both signs below.
    0x7fc00000,
    0x7f800001,
    0x7fbfffff,
    0x7fffffff,
    0x7f802000,
    0x7fc02000,
    0x7f801fff,
    0x7fa00000,
    0x7fe00001,
  ];
  const bits = signed(new Uint32Array([...f32Bits(values), ...raw]));
  await check("hand cases", bits);
  // Spot-check the reference itself where the answer is known by heart.
  const got = await onGpu(f32Bits([65520, -0, 2 ** -25, 3 * 2 ** -25, NaN, 65504]));
  assert.deepEqual(Array.from(got), [0x7c00, 0x8000, 0x0000, 0x0002, 0x7e00, 0x7bff]);
});

Deno.test("f32ToHalfBits: every half exactly, every midpoint between neighbours, ±1 ulp around each", async () => {
  // All 2^16 half patterns as float32 (exact; NaN halves become float32 NaNs).
  const all = new Uint16Array(65536).map((_, i) => i);
  await check("all 2^16 halves", new Uint32Array(f16BitsToF32(all).buffer));
  // For each finite h ≥ 0 (subnormal binade included) the midpoint to h + 1 (exact in float32:
  // 12 significant bits), one float32 ulp either side, and h's own neighbours in float32.
  const up = f16BitsToF32(all.subarray(0, 0x7c01)); // 0x7c00 = Inf; 65520 is its "midpoint"
  const cases = new Uint32Array(0x7c00 * 5);
  const one = new Float32Array(1), oneBits = new Uint32Array(one.buffer);
  for (let h = 0; h < 0x7c00; h++) {
    one[0] = h === 0x7bff ? 65520 : (up[h] + up[h + 1]) / 2;
    const mid = oneBits[0];
    one[0] = up[h];
    const exact = oneBits[0];
    cases.set([mid - 1, mid, mid + 1, exact + 1, Math.max(exact, 1) - 1], h * 5);
  }
  await check("midpoints ±1 ulp, halves ±1 ulp", signed(cases));
});

Deno.test("f32ToHalfBits: 4M uniformly random float32 bit patterns (all classes, seeded)", async () => {
  // 2^22 patterns: about 0.8% NaNs, 0.8% Inf-range, most of the rest overflow or flush to ±0,
  // and ~2^22 · 30/256 ≈ 490k land in the half's normal and subnormal range.
  const rng = new Rng(20240601, "half_test bits");
  const n = 1 << 22;
  const bits = new Uint32Array(n);
  for (let i = 0; i < n; i++) bits[i] = rng.nextU32();
  await check("random bits", bits);
  // The same count restricted to exponents of the half range (2^-26 .. 2^17), random mantissas.
  const inRange = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rng.nextU32();
    inRange[i] = ((r & 0x80000000) | ((101 + (r % 43)) << 23) | (rng.nextU32() & 0x7fffff)) >>> 0;
  }
  await check("random bits, half exponent range", inRange);
});

Deno.test("f32ToHalfBits: normal floats at several scales; odd and even counts; n = 1", async () => {
  const rng = new Rng(7, "half_test normals");
  for (const scale of [1e-7, 1e-5, 1e-3, 0.1, 1, 30, 1e3, 3e4, 1e5]) {
    for (const n of [1, 2, 3, 255, 256, 257, 65535, 65536]) {
      const x = Float32Array.from({ length: n }, () => scale * rng.normal());
      await check(`normal × ${scale}, n=${n}`, new Uint32Array(x.buffer));
    }
  }
  // n = 1 through the whole pipeline with a value that rounds: 0.1 → 0x2e66.
  assert.deepEqual(Array.from(await onGpu(f32Bits([0.1]))), [0x2e66]);
});

Deno.test("f32ToHalfBits: n = 0 records nothing; a bad n is refused", () => {
  const before = gpu.totalDispatches;
  const b = gpu.acquire(16);
  try {
    f32ToHalfBits(gpu, b.buffer, b.buffer, 0);
    assert.equal(gpu.totalDispatches - before, 0);
    assert.throws(() => f32ToHalfBits(gpu, b.buffer, b.buffer, 1.5), /non-negative integer/);
  } finally {
    gpu.release(b);
  }
});
