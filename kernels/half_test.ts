// kernels/half.ts f32ToHalfBits against data/half.ts f32ToF16Bits (the host conversion the f16
// store used before): bit-identical, no tolerance — both claim round to nearest even, and NaN
// as the platform Float16Array writes it (sign | 0x7e00). Boundary cases in every binade, all
// 2^16 halves, 4M uniformly random float32 bit patterns, normal floats at several scales, odd
// and even counts and n = 1; the words past ⌈n/2⌉ stay untouched and an odd n's last high
// half is 0.
import assert from "node:assert/strict";
import { getGpu } from "./device.ts";
import { f32RowsToHalfBits, f32ToHalfBits, halfWords } from "./half.ts";
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

/** Boundary cases in every binade (float values and raw float32 bit patterns). */
const HAND_VALUES = [
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
const HAND_RAW = [
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
/** The hand cases as float32 bit patterns, both signs. */
const HAND_BITS = signed(new Uint32Array([...f32Bits(HAND_VALUES), ...HAND_RAW]));

Deno.test("f32ToHalfBits: hand boundary cases", async () => {
  const bits = HAND_BITS;
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

Deno.test("f32RowsToHalfBits: layers of strided rows into a (rows, layers, row) batch equal f32ToF16Bits of the float32 layout; other words untouched", async () => {
  // Capture's use: L1 "layers" of B rows each (row stride wider than the row, as a full
  // state's S·H holds more than the cls row's H), each written into its slot of
  // (B, L1, rowLength). The values: every hand boundary case (NaN payloads, ±Inf, overflow,
  // ties, subnormals) spread over the rows, the rest random bit patterns.
  const B = 5, L1 = 3, rowLength = 18, srcStride = 26;
  const rng = new Rng(21, "half_test rows");
  const layers = Array.from({ length: L1 }, () => {
    const x = new Uint32Array(B * srcStride);
    for (let i = 0; i < x.length; i++) x[i] = rng.nextU32();
    return x;
  });
  // Scatter the hand cases over every row of every layer, all of them used.
  for (let k = 0; k < HAND_BITS.length; k++) {
    const slot = k % (L1 * B), l = slot % L1, e = Math.floor(slot / L1);
    layers[l][e * srcStride + Math.floor(k / (L1 * B))] = HAND_BITS[k];
  }
  // The float32 layout capture read back before, rounded on the host.
  const laid = new Uint32Array(B * L1 * rowLength);
  for (let e = 0; e < B; e++) {
    for (let l = 0; l < L1; l++) {
      laid.set(
        layers[l].subarray(e * srcStride, e * srcStride + rowLength),
        (e * L1 + l) * rowLength,
      );
    }
  }
  const want = f32ToF16Bits(new Float32Array(laid.buffer));
  const words = halfWords(laid.length);
  const srcs = layers.map((x) => {
    const b = gpu.acquire(x.byteLength, "half_test rows src");
    gpu.upload(b.buffer, x);
    return b;
  });
  const dst = gpu.acquire((words + 1) * 4, "half_test rows dst");
  try {
    const run = async (only?: number) => {
      gpu.upload(dst.buffer, new Uint32Array(words + 1).fill(SENTINEL));
      for (let l = 0; l < L1; l++) {
        if (only !== undefined && l !== only) continue;
        f32RowsToHalfBits(gpu, srcs[l].buffer, dst.buffer, {
          rows: B,
          rowLength,
          srcStride,
          dstStride: L1 * rowLength,
          dstOffset: l * rowLength,
        });
      }
      return new Uint32Array(await gpu.read(dst.buffer, (words + 1) * 4));
    };
    const all = await run();
    assert.equal(all[words], SENTINEL, "the word past the batch was written");
    const got = new Uint16Array(all.buffer, 0, laid.length);
    const bad = [];
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== want[i]) {
        bad.push(`[${i}] ${hex(laid[i], 8)}: ${hex(got[i], 4)} ≠ ${hex(want[i], 4)}`);
      }
    }
    assert.equal(bad.length, 0, `${bad.length} differ; first:\n${bad.slice(0, 8).join("\n")}`);
    // One layer alone writes its slots and nothing else.
    const one = new Uint16Array((await run(1)).buffer, 0, laid.length);
    for (let i = 0; i < one.length; i++) {
      const mine = Math.floor(i / rowLength) % L1 === 1;
      const w = mine ? want[i] : SENTINEL & 0xffff, h = SENTINEL >>> 16;
      if (mine) assert.equal(one[i], w, `layer 1 value ${i}`);
      else assert.equal(one[i], i % 2 ? h : w, `value ${i} of another layer was written`);
    }
  } finally {
    for (const b of srcs) gpu.release(b);
    gpu.release(dst);
  }
});

Deno.test("f32RowsToHalfBits: no rows records nothing; odd or overlapping layouts are refused", () => {
  const before = gpu.totalDispatches;
  const b = gpu.acquire(64);
  try {
    const ok = { rows: 2, rowLength: 4, srcStride: 4, dstStride: 8, dstOffset: 4 };
    f32RowsToHalfBits(gpu, b.buffer, b.buffer, { ...ok, rows: 0 });
    assert.equal(gpu.totalDispatches - before, 0);
    const bad = (r: Partial<typeof ok>, re: RegExp) =>
      assert.throws(() => f32RowsToHalfBits(gpu, b.buffer, b.buffer, { ...ok, ...r }), re);
    bad({ rowLength: 3 }, /rowLength must be even/);
    bad({ dstStride: 7 }, /dstStride must be even/);
    bad({ dstOffset: 1 }, /dstOffset must be even/);
    bad({ rows: 1.5 }, /rows must be a non-negative integer/);
    bad({ srcStride: -1 }, /srcStride must be a non-negative integer/);
    bad({ dstStride: 2 }, /overlap/);
    bad({ srcStride: 2 }, /overlap/);
  } finally {
    gpu.release(b);
  }
});
