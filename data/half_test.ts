import assert from "node:assert/strict";
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits, fromHalfBits, toHalfBits } from "./half.ts";

Deno.test("half: hand values", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [1.5, 0x3e00],
    [65504, 0x7bff], // largest half
    [65520, 0x7c00], // rounds up to Infinity
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie -> even (0)
    [3 * 2 ** -25, 0x0002], // tie -> even (2)
    [0.1, 0x2e66],
    [Infinity, 0x7c00],
  ];
  for (const [x, bits] of cases) {
    assert.equal(toHalfBits(x), bits, `toHalfBits(${x})`);
    assert.equal(toHalfBits(fromHalfBits(bits)), bits, `round trip of 0x${bits.toString(16)}`);
  }
  assert.equal(fromHalfBits(0x2e66), 0.0999755859375);
  assert.equal(fromHalfBits(0x3c00), 1);
  assert.equal(fromHalfBits(0x0001), 2 ** -24);
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
});

Deno.test("half: fallback agrees with the native Float16Array on many values", () => {
  const n = 20000;
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const mag = 2 ** ((s % 60) - 30);
    x[i] = (s & 1 ? -1 : 1) * mag * (1 + (s >>> 8) / 2 ** 24);
  }
  const a = f32ToF16Bits(x, true), b = f32ToF16Bits(x, false);
  for (let i = 0; i < n; i++) assert.equal(b[i], a[i], `x=${x[i]}`);
  assert.deepEqual(f16BitsToF32(a, false), f16BitsToF32(a, true));
});

Deno.test("bf16: hand values", () => {
  const got = bf16BitsToF32(new Uint16Array([0x3f80, 0xc000, 0x3fc0, 0x0000, 0x7f80]));
  assert.deepEqual(Array.from(got), [1, -2, 1.5, 0, Infinity]);
});
