/**
 * Shards: work split over the tasks of a cluster array (Slurm job arrays, Kubernetes Indexed
 * Jobs) as deterministic, contiguous pieces, one output per piece.
 *
 * - `--shard I/N` names piece I of N (0-based). `I` may be `auto`: the index is then read from
 *   `SLURM_ARRAY_TASK_ID` (Slurm) or `JOB_COMPLETION_INDEX` (Kubernetes), so one command line
 *   serves every task of the array and resubmitting one failed index (`sbatch --array=1`) redoes
 *   exactly that piece. A missing variable, or an index outside 0..N-1, is an
 *   {@linkcode InputError} naming the flag and the fix.
 * - `{shard}` in an output path is replaced by the index ({@linkcode shardPath}).
 * - {@linkcode shardRange} cuts `count` items (trials, examples) into N contiguous runs whose
 *   sizes differ by at most one; {@linkcode shardRows} cuts a split's rows at example
 *   boundaries (a SQuAD question's windows stay in one shard), N runs of about equal rows.
 *
 * Host-side, no GPU: capture (train/capture.ts) and the head sweeps and searches use it.
 * Checked by data/shard_test.ts.
 * @module
 */
import { InputError } from "./errors.ts";

/** One piece of N: `index` in 0..count-1. */
export interface Shard {
  index: number;
  count: number;
}

/** The environment variables `auto` reads, in order: Slurm's array index, then Kubernetes'. */
export const SHARD_ENV = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] as const;

/** The placeholder in an output path that {@linkcode shardPath} replaces with the index. */
export const SHARD_PLACEHOLDER = "{shard}";

/** The most shards a set may be split into (a Slurm array's own limit is far lower). */
export const MAX_SHARDS = 1_000_000;

/**
 * Parses `--shard I/N` (`I` an integer or `auto`, 1 ≤ `N` ≤ {@linkcode MAX_SHARDS}). With `auto` the index comes from
 * `env` (default: the process's): `SLURM_ARRAY_TASK_ID`, else `JOB_COMPLETION_INDEX`; both set
 * to different values is an error. Errors name `flag` and say what to give instead.
 *
 * @example
 * ```ts
 * import { parseShard } from "./shard.ts";
 * console.assert(parseShard("1/3").index === 1);
 * console.assert(parseShard("auto/3", { SLURM_ARRAY_TASK_ID: "2" }).index === 2);
 * ```
 */
export function parseShard(
  spec: string,
  env: Record<string, string | undefined> | ((k: string) => string | undefined) = (k) =>
    Deno.env.get(k),
  flag = "--shard",
): Shard {
  const get = typeof env === "function" ? env : (k: string) => env[k];
  const m = /^\s*(auto|\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (!m) {
    throw new InputError(
      `${flag} ${JSON.stringify(spec)}: not I/N with 0 ≤ I < N; give I/N, the 0-based shard I ` +
        `of N (e.g. 0/4), or auto/N to read I from ${SHARD_ENV.join(" or ")}`,
    );
  }
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS) {
    throw new InputError(
      `${flag} ${spec}: the shard count N must be 1 to ${MAX_SHARDS.toLocaleString("en-US")}`,
    );
  }
  let index: number, from = "";
  if (m[1] === "auto") {
    const found = SHARD_ENV.map((k) => [k, get(k)] as const).filter(([, v]) => v !== undefined);
    if (!found.length) {
      throw new InputError(
        `${flag} ${spec}: auto reads the index from ${SHARD_ENV.join(" (Slurm job arrays) or ")} ` +
          `(Kubernetes Indexed Jobs), and neither is set; run it as an array task ` +
          `(sbatch --array=0-${count - 1}) or give the index (${flag} 0/${count})`,
      );
    }
    if (found.length > 1 && found[0][1]!.trim() !== found[1][1]!.trim()) {
      throw new InputError(
        `${flag} ${spec}: ${found.map(([k, v]) => `${k}=${v}`).join(" and ")} disagree; unset ` +
          `one, or give the index (${flag} I/${count})`,
      );
    }
    const [k, v] = found[0];
    from = ` (${k}=${v})`;
    if (!/^\s*\d+\s*$/.test(v!)) {
      throw new InputError(`${flag} ${spec}: ${k}=${JSON.stringify(v)} is not an index 0..N-1`);
    }
    index = Number(v);
  } else {
    index = Number(m[1]);
  }
  if (!Number.isSafeInteger(index) || index >= count) {
    throw new InputError(
      `${flag} ${spec}: index ${index}${from} is outside 0..${count - 1}; the array's indices ` +
        `must be 0..N-1 for N = ${count} (sbatch --array=0-${count - 1}, or Kubernetes ` +
        `completions: ${count})`,
    );
  }
  return { index, count };
}

/** `path` with every `{shard}` replaced by the shard's index (unchanged without one). */
export function shardPath(path: string, shard: Shard): string {
  return path.replaceAll(SHARD_PLACEHOLDER, String(shard.index));
}

/**
 * Items [start, end) of shard I of N over `count` items: contiguous, in order, sizes differing
 * by at most one (the first `count mod N` shards take one more).
 */
export function shardRange(count: number, shard: Shard): { start: number; end: number } {
  const { index: i, count: n } = shard;
  const at = (k: number) => Math.floor((k * count) / n);
  return { start: at(i), end: at(i + 1) };
}

/** Where a shard's rows lie in the whole split. */
export interface ShardRows {
  /** Rows [rowStart, rowEnd) of the split. */
  rowStart: number;
  rowEnd: number;
  /** Examples [exampleStart, exampleEnd), counted in row order (0 = the first row's). */
  exampleStart: number;
  exampleEnd: number;
}

/**
 * The rows of shard I of N, cut only where the example changes (`exampleOf[r]` is row r's
 * example, rows of one example consecutive: SQuAD's windows of a question): shard k starts at the
 * first example boundary at or after row ⌊k·rows/N⌋, so the shards hold about equal rows and no
 * example is split. Throws an {@linkcode InputError} when a shard would be empty (more shards
 * than the split has examples, or examples with very many rows), naming the flag.
 */
export function shardRows(exampleOf: ArrayLike<number>, shard: Shard, flag = "--shard"): ShardRows {
  const n = exampleOf.length;
  const starts: number[] = []; // row where each example begins
  for (let r = 0; r < n; r++) if (r === 0 || exampleOf[r] !== exampleOf[r - 1]) starts.push(r);
  // First example whose first row is at or after row `row`.
  const exampleAt = (row: number) => {
    let lo = 0, hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] < row) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const k = shard.index, N = shard.count;
  // Example boundaries of every shard (b[j] = shard j's first example): all must hold rows, so
  // that every task of an array fails alike rather than one shard alone.
  const b = Array.from(
    { length: N + 1 },
    (_, j) => j === 0 ? 0 : j === N ? starts.length : exampleAt(Math.floor((j * n) / N)),
  );
  const empty = b.findIndex((x, j) => j < N && b[j + 1] <= x);
  if (empty >= 0) {
    throw new InputError(
      `${flag} ${k}/${N}: shard ${empty} would hold no rows: the split has ${starts.length} ` +
        `examples in ${n} rows, too few for ${N} shards cut at example boundaries; use fewer ` +
        `shards`,
    );
  }
  const e0 = b[k], e1 = b[k + 1];
  return {
    rowStart: starts[e0],
    rowEnd: e1 < starts.length ? starts[e1] : n,
    exampleStart: e0,
    exampleEnd: e1,
  };
}
