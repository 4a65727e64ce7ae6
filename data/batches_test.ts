import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { batchRows, linearSchedule, seededSubset, shuffledIndices, takeRows } from "./batches.ts";
import { decodeNpy, encodeNpy } from "./npy.ts";

Deno.test("shuffledIndices: a seeded permutation, new per epoch", () => {
  const a = shuffledIndices(100, 7, 0);
  deepStrictEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  deepStrictEqual(a, shuffledIndices(100, 7, 0));
  ok(a.some((v, i) => v !== shuffledIndices(100, 7, 1)[i]));
  ok(a.some((v, i) => v !== shuffledIndices(100, 8, 0)[i]));
});

Deno.test("batchRows covers every row once per epoch, last batch smaller", () => {
  const seen: number[] = [];
  for (let s = 0; s < 4; s++) seen.push(...batchRows(10, 3, 1, s));
  deepStrictEqual(seen.length, 10);
  deepStrictEqual(new Set(seen).size, 10);
  deepStrictEqual(batchRows(10, 3, 1, 3).length, 1);
  deepStrictEqual(batchRows(10, 3, 1, 4), shuffledIndices(10, 1, 1).slice(0, 3));
});

Deno.test("seededSubset and linearSchedule", () => {
  const s = seededSubset(1000, 0.1, 3);
  deepStrictEqual(s.length, 100);
  deepStrictEqual(s, seededSubset(1000, 0.1, 3));
  throws(() => seededSubset(10, 0, 1), /must be in \(0, 1\]/);
  // 10 steps, 20% warmup: 0.5, 1, then (10 - s) / 8 down to 1/8.
  const lrs = Array.from({ length: 10 }, (_, i) => linearSchedule(i, 10, 0.2));
  deepStrictEqual(lrs, [0.5, 1, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]);
});

Deno.test("takeRows and npy round trip", () => {
  const a = Int32Array.from([0, 1, 2, 3, 4, 5]);
  deepStrictEqual(takeRows(a, 2, [2, 0]), Int32Array.from([4, 5, 0, 1]));
  const f = Float32Array.from([1.5, -2, 3, 4, 5, 6]);
  const back = decodeNpy(encodeNpy(f, [2, 3]));
  deepStrictEqual(back.shape, [2, 3]);
  deepStrictEqual(back.data, f);
  const bytes = encodeNpy(f, [6]);
  deepStrictEqual((bytes.length - f.byteLength) % 64, 0, "header padded to 64 bytes");
  throws(() => decodeNpy(new Uint8Array(20), "x.npy"), /x.npy: not a .npy file/);
});
