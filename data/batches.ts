/**
 * Seeded data order and fixed-shape batches (host arrays).
 * @module
 */
import { Rng } from "./rng.ts";
import { InputError } from "./errors.ts";

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
 * less-data experiment. The subset is the first `round(n · fraction)` rows of one seeded
 * permutation (its stream `shuffle/-1`), so with one seed the subsets of growing fractions are
 * nested: each fraction's rows contain every smaller fraction's.
 */
export function seededSubset(n: number, fraction: number, seed: number): Int32Array {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`train fraction ${fraction} must be in (0, 1]`);
  }
  const k = Math.max(1, Math.round(n * fraction));
  return shuffledIndices(n, seed, -1).slice(0, k).sort();
}

/**
 * Checks the training fractions of a less-data sweep (`--train-fractions 0.1,0.2,...,1`): each in
 * (0, 1], none twice. Returns them in increasing order; an {@linkcode InputError} naming `flag`
 * otherwise.
 */
export function checkFractions(fractions: readonly number[], flag = "--train-fractions"): number[] {
  if (!fractions.length) throw new InputError(`${flag}: no fraction given (e.g. 0.1,0.5,1)`);
  for (const f of fractions) {
    if (!(Number.isFinite(f) && f > 0 && f <= 1)) {
      throw new InputError(`${flag}: ${f} is not a share of the training rows in (0, 1]`);
    }
  }
  const sorted = [...fractions].sort((a, b) => a - b);
  const twice = sorted.find((f, i) => i > 0 && sorted[i - 1] === f);
  if (twice !== undefined) throw new InputError(`${flag}: ${twice} is given twice`);
  return sorted;
}

/** The name of a fraction's output directory in a less-data sweep: `fraction-0.1`. */
export function fractionDir(fraction: number): string {
  return `fraction-${fraction}`;
}

/** One head of {@linkcode subsetPass}: its training rows and how many steps it trains. */
export interface PassHead {
  /** Its rows of 0..n-1 (a {@linkcode seededSubset}), in increasing order. */
  rows: Int32Array;
  /** Optimizer steps it trains (epochs × ceil(rows / batch), fractional epochs rounded up). */
  steps: number;
}

/** Rows read (or streamed) together in a {@linkcode subsetPass}, and which heads take which. */
export interface PassChunk {
  /** The epoch of the whole set's order these rows come from. */
  epoch: number;
  /** Rows of 0..n-1, in the epoch's order; at most a batch. */
  rows: Int32Array;
  /** Per head: the positions in `rows` it takes, increasing (empty when it takes none). */
  takes: Int32Array[];
}

/**
 * One pass that feeds several heads, each training on its own subset of 0..n-1 (e.g. nested
 * {@linkcode seededSubset}s of growing fractions), with the data order each would have alone.
 *
 * The rule: a head's epoch `e` is the whole set's order of epoch `e` (`shuffledIndices(n, seed,
 * e)`) restricted to its rows, cut into batches of `batchSize` (the last of an epoch may be
 * smaller); it trains `steps` such batches (`ceil(rows / batchSize)` per epoch), so its steps,
 * epochs and order depend only on its own rows, never on the other heads. A head trained alone
 * on the whole set (or on any subset) walks the same order, so a head inside the pass and the
 * head alone see the same batches.
 *
 * The pass walks each epoch's order once and yields chunks of up to `batchSize` rows that some
 * head still needs (rows no head takes are skipped), never mixing epochs; `takes[j]` lists head
 * `j`'s rows of the chunk, in order. With one head the chunks are exactly its batches. A head's
 * batch may span chunks: the caller gathers its rows until the batch is whole. `active(j)`
 * (default: all) is asked as the pass goes: a head that stopped (early stopping) takes nothing
 * more.
 */
export function* subsetPass(
  n: number,
  seed: number,
  batchSize: number,
  heads: readonly PassHead[],
  active: (head: number) => boolean = () => true,
): Generator<PassChunk> {
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  }
  const members = heads.map((h) => {
    const m = new Uint8Array(n);
    for (const r of h.rows) m[r] = 1;
    return m;
  });
  const perEpoch = heads.map((h) => Math.ceil(h.rows.length / batchSize));
  /** Rows head j takes in epoch e: all of them, the rows of its last steps, or none. */
  const wants = (j: number, e: number) => {
    const full = Math.floor(heads[j].steps / perEpoch[j]);
    if (e < full) return heads[j].rows.length;
    if (e > full) return 0;
    return Math.min(heads[j].rows.length, (heads[j].steps % perEpoch[j]) * batchSize);
  };
  const epochs = Math.max(0, ...heads.map((h, j) => Math.ceil(h.steps / perEpoch[j])));
  for (let epoch = 0; epoch < epochs; epoch++) {
    const want = heads.map((_, j) => wants(j, epoch));
    const taken = heads.map(() => 0);
    const order = shuffledIndices(n, seed, epoch);
    let rows: number[] = [];
    let takes: number[][] = heads.map(() => []);
    const chunk = (): PassChunk => ({
      epoch,
      rows: Int32Array.from(rows),
      takes: takes.map((t) => Int32Array.from(t)),
    });
    for (let p = 0; p < n; p++) {
      const r = order[p];
      let used = false;
      for (let j = 0; j < heads.length; j++) {
        if (!members[j][r] || taken[j] >= want[j] || !active(j)) continue;
        takes[j].push(rows.length);
        taken[j]++;
        used = true;
      }
      if (!used) {
        if (taken.every((t, j) => t >= want[j] || !active(j))) break;
        continue;
      }
      rows.push(r);
      if (rows.length === batchSize) {
        yield chunk();
        rows = [];
        takes = heads.map(() => []);
      }
    }
    if (rows.length) yield chunk();
  }
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
