import { deepStrictEqual, ok, throws } from "node:assert/strict";
import {
  batchRows,
  checkFractions,
  linearSchedule,
  seededSubset,
  shuffledIndices,
  subsetPass,
  takeRows,
} from "./batches.ts";
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

Deno.test("seededSubset: the subsets of growing fractions are nested", () => {
  const fractions = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1];
  for (const [n, seed] of [[1000, 3], [37, 1], [5, 8]]) {
    let prev = new Set<number>();
    for (const f of fractions) {
      const s = seededSubset(n, f, seed);
      deepStrictEqual(s.length, Math.max(1, Math.round(n * f)));
      ok([...prev].every((r) => s.includes(r)), `n ${n}: ${f}'s rows hold the smaller ones'`);
      prev = new Set(s);
    }
    deepStrictEqual(prev.size, n, "fraction 1 is every row");
  }
  // Another seed draws other subsets.
  ok(seededSubset(1000, 0.1, 3).some((r, i) => r !== seededSubset(1000, 0.1, 4)[i]));
});

Deno.test("checkFractions sorts and refuses values outside (0, 1] or given twice", () => {
  deepStrictEqual(checkFractions([1, 0.1, 0.5]), [0.1, 0.5, 1]);
  throws(() => checkFractions([0.5, 1.5]), /--train-fractions: 1\.5 is not a share .* \(0, 1\]/);
  throws(() => checkFractions([0, 1]), /0 is not a share/);
  throws(() => checkFractions([0.5, 0.5]), /0\.5 is given twice/);
  throws(() => checkFractions([]), /no fraction given/);
});

/** Every head's batches in a pass: its takes, gathered in order and cut at its batch sizes. */
function headBatches(
  n: number,
  seed: number,
  bs: number,
  heads: { rows: Int32Array; steps: number }[],
  active?: (j: number) => boolean,
) {
  const got = heads.map(() => [] as number[][]);
  const chunks = [...subsetPass(n, seed, bs, heads, active)];
  heads.forEach((h, j) => {
    const perEpoch = Math.ceil(h.rows.length / bs);
    let cur: number[] = [];
    for (const c of chunks) {
      for (const p of c.takes[j]) {
        cur.push(c.rows[p]);
        const k = got[j].length % perEpoch;
        if (cur.length === Math.min(bs, h.rows.length - k * bs)) {
          got[j].push(cur);
          cur = [];
        }
      }
    }
    // A head that stopped may leave a batch half gathered (its rows go unused).
    if (!active) deepStrictEqual(cur, [], `head ${j}: no partial batch left`);
  });
  return { got, chunks };
}

Deno.test("subsetPass: one read per batch of the largest subset; each head's own batches", () => {
  const n = 103, seed = 4, bs = 8;
  const fractions = [0.1, 0.3, 0.6, 1];
  const epochs = [2, 2, 2, 1.5]; // the whole set's head stops halfway through epoch 2
  const heads = fractions.map((f, j) => {
    const rows = seededSubset(n, f, seed);
    return { rows, steps: Math.ceil(epochs[j] * Math.ceil(rows.length / bs)) };
  });
  const { got, chunks } = headBatches(n, seed, bs, heads);
  // Chunks: at most a batch, one epoch each, rows someone takes, every row taken.
  for (const c of chunks) {
    ok(c.rows.length > 0 && c.rows.length <= bs);
    const taken = new Set(c.takes.flatMap((t) => [...t]));
    deepStrictEqual(taken.size, c.rows.length, "every row read is taken by some head");
  }
  // Epoch 0 reads the whole set once, in batches; epoch 1 the rows its heads still need.
  const e0 = chunks.filter((c) => c.epoch === 0);
  deepStrictEqual(e0.length, Math.ceil(n / bs));
  deepStrictEqual(e0.flatMap((c) => [...c.rows]), [...shuffledIndices(n, seed, 0)]);
  // The rule: head j's epoch e is the whole set's shuffle of epoch e restricted to its rows,
  // cut into batches; what a head alone (the only head of its pass) gets too.
  heads.forEach((h, j) => {
    const member = new Set(h.rows);
    const perEpoch = Math.ceil(h.rows.length / bs);
    const want: number[][] = [];
    for (let e = 0; want.length < h.steps; e++) {
      const order = [...shuffledIndices(n, seed, e)].filter((r) => member.has(r));
      for (let k = 0; k < perEpoch && want.length < h.steps; k++) {
        want.push(order.slice(k * bs, (k + 1) * bs));
      }
    }
    deepStrictEqual(got[j], want, `head ${j} (fraction ${fractions[j]})`);
    const alone = headBatches(n, seed, bs, [h]);
    deepStrictEqual(alone.got[0], want, `head ${j} alone`);
    deepStrictEqual(alone.chunks.map((c) => [...c.rows]), want, "alone, chunks are its batches");
  });
  // A head that stops (early stopping) takes nothing more; the others go on as before.
  let asked = 0;
  const stopped = headBatches(n, seed, bs, heads, (j) => j !== 1 || asked++ < 20);
  deepStrictEqual(stopped.got[0], got[0]);
  deepStrictEqual(stopped.got[3], got[3]);
  ok(stopped.got[1].length < got[1].length, "the stopped head got fewer batches");
});
