/**
 * Seeded data order and fixed-shape batches (host arrays).
 * @module
 */
import { Rng } from "./rng.ts";

/**
 * A permutation of 0..n-1 from (seed, epoch): Fisher–Yates on a seeded generator, so data order
 * is reproducible and a resumed run sees the same order.
 */
export function shuffledIndices(n: number, seed: number, epoch: number): Int32Array {
  const rng = new Rng(seed, `shuffle/${epoch}`);
  const idx = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx;
}

/**
 * A seeded subset of `fraction` of 0..n-1 (at least 1 row), in increasing order: the paper's
 * less-data experiment.
 */
export function seededSubset(n: number, fraction: number, seed: number): Int32Array {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`train fraction ${fraction} must be in (0, 1]`);
  }
  const k = Math.max(1, Math.round(n * fraction));
  return shuffledIndices(n, seed, -1).slice(0, k).sort();
}

/**
 * The rows of step `step` (0-based, across epochs) when each epoch is a fresh shuffle cut into
 * batches of `batchSize` (the last batch of an epoch may be smaller).
 */
export function batchRows(n: number, batchSize: number, seed: number, step: number): Int32Array {
  const perEpoch = Math.ceil(n / batchSize);
  const epoch = Math.floor(step / perEpoch);
  const k = step % perEpoch;
  return shuffledIndices(n, seed, epoch).slice(k * batchSize, Math.min(n, (k + 1) * batchSize));
}

/** Copies rows `rows` of a row-major (N, width) array into a new (rows.length, width) array. */
export function takeRows<T extends Int32Array | Float32Array | Float64Array>(
  a: T,
  width: number,
  rows: ArrayLike<number>,
): T {
  const out = new (a.constructor as { new (n: number): T })(rows.length * width);
  for (let i = 0; i < rows.length; i++) {
    out.set(a.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
  }
  return out;
}

/**
 * Linear warmup then linear decay to 0, exactly as Hugging Face's
 * `get_linear_schedule_with_warmup` computes it with the warmup steps the seed passes
 * (`num_warmup_steps = warmup_proportion * num_training_steps`, a float, not rounded): the
 * learning-rate multiplier at 0-based `step` of `total` is `step / max(1, w)` while
 * `step < w`, then `max(0, (total - step) / max(1, total - w))`, with `w = total ·
 * warmupProportion`. The first step's multiplier is 0 whenever there is any warmup (PyTorch's
 * `LambdaLR` sets the rate for step 0 at construction and the seed steps the scheduler after
 * each optimizer step). `total` is the number of steps this run takes; the seed passes
 * `int(len(train) / batch_size) * epochs`, one fewer than its loader runs when the last batch
 * is partial, so its last step's multiplier is 0 where ours is `1 / (total - w)`.
 */
export function linearSchedule(step: number, total: number, warmupProportion: number): number {
  const warm = total * warmupProportion;
  if (step < warm) return step / Math.max(1, warm);
  return Math.max(0, (total - step) / Math.max(1, total - warm));
}
