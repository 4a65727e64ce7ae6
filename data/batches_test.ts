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
});

/**
 * Hugging Face's `get_linear_schedule_with_warmup` multiplier (transformers' optimization.py
 * `lr_lambda`), written out as the library does it, float arithmetic included.
 */
function hfLinear(currentStep: number, numWarmupSteps: number, numTrainingSteps: number): number {
  if (currentStep < numWarmupSteps) return currentStep / Math.max(1, numWarmupSteps);
  return Math.max(
    0,
    (numTrainingSteps - currentStep) / Math.max(1, numTrainingSteps - numWarmupSteps),
  );
}

Deno.test("linearSchedule is get_linear_schedule_with_warmup with the seed's warmup steps", () => {
  // By hand, 10 steps with 20% warmup: 0 on the first step (the seed's LambdaLR), 1/2, then
  // (10 - s) / 8 down to 1/8.
  const lrs = Array.from({ length: 10 }, (_, i) => linearSchedule(i, 10, 0.2));
  deepStrictEqual(lrs, [0, 0.5, 1, 7 / 8, 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]);
  // One step: with warmup its factor is 0 (warmup 0.1 steps), without it 1.
  deepStrictEqual(linearSchedule(0, 1, 0.1), 0);
  deepStrictEqual(linearSchedule(0, 1, 0), 1);
  // No warmup: straight decay from 1.
  deepStrictEqual(Array.from({ length: 4 }, (_, i) => linearSchedule(i, 4, 0)), [
    1,
    3 / 4,
    2 / 4,
    1 / 4,
  ]);
  // 7 steps, 10%: 0.7 warmup steps (the seed does not round), so only step 0 warms up and the
  // decay divides by 6.3.
  deepStrictEqual(linearSchedule(0, 7, 0.1), 0);
  deepStrictEqual(linearSchedule(1, 7, 0.1), 6 / (7 - 7 * 0.1));
  // Against the formula, warmup steps computed as the seed does (proportion × total, a float),
  // at step counts and proportions that do not divide evenly, past the end too (factor 0).
  for (const total of [1, 2, 3, 7, 10, 33, 4209]) {
    for (const p of [0, 0.06, 0.1, 0.25, 1 / 3, 1]) {
      for (let step = 0; step <= total + 1; step += Math.max(1, Math.floor(total / 50))) {
        deepStrictEqual(
          linearSchedule(step, total, p),
          hfLinear(step, p * total, total),
          `step ${step} of ${total}, warmup ${p}`,
        );
      }
    }
  }
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
