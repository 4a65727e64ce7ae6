/**
 * Shard sets: the stores a sharded capture writes (`capture --shard I/N`, one file per shard),
 * read as one store, and merged into one.
 *
 * - A shard is an ordinary activation store (data/h5_store.ts) holding rows
 *   [`shard_row_start`, `shard_row_end`) of the split, whose attributes also say which shard it
 *   is (`shard_index`, `shard_count`), which examples it holds (`shard_example_start`,
 *   `shard_example_end`) and the split's rows in all (`total_rows`). Every other attribute
 *   (task, split, model and weights hash, data file, inputs hash, ...) is the whole split's, as
 *   a single-process capture records it.
 * - A set is named by a glob (`acts/train-*.h5`; `*`, `?` and `[...]`, in any path component),
 *   a manifest (a `.txt` file listing one shard per line, relative to the manifest's folder;
 *   blank lines and lines starting with `#` ignored; a line may be a glob), or several of these
 *   ({@linkcode resolveStoreFiles}). {@linkcode openStore} opens one store or a set alike.
 * - {@linkcode ShardSetReader} reads the shards in shard order, so rows come in the same order
 *   as from one file: row r of the set is row r of a single-process capture. It refuses, naming
 *   the files: a file that is not a shard, an incomplete shard, shards of another count N,
 *   duplicates (two files of one index), gaps (an index with no file), overlapping or
 *   non-adjacent row ranges, and shards whose settings differ (task, split, weights hash,
 *   layout, dtype, sequence length, ...: any attribute but the shard's own and `adapter`).
 * - The set's attributes are the single-process capture's (the shard attributes left out; the
 *   devices that computed it in `adapter`), and so is its fingerprint: a head trained on the
 *   set, on the merged file or on a single-process capture records the same source.
 * - {@linkcode mergeShards} (`deno task merge-shards --out F SHARDS...`) copies the rows, as
 *   stored, into one store whose datasets and fingerprint equal a single-process capture's
 *   (for h5py users); resumable like a capture, under the output's lock.
 *
 * Checked by data/shard_set_test.ts (reads, refusals, merge) and tests/shards_test.ts,
 * tests/slurm_test.ts (shards captured as a Kubernetes-style and a real Slurm array equal one
 * capture).
 * @module
 */
import {
  copyRow,
  emptyRows,
  H5Reader,
  type H5ReadRows,
  type H5Rows,
  H5Store,
  type H5StoreSettings,
  INFO_ATTRS,
  rowWidths,
  storeFingerprint,
  type StoreReader,
  storeSettingsDiff,
  storeSettingsOf,
} from "./h5_store.ts";
import { InputError, preview } from "./errors.ts";
import { isSeedStoreName, SeedStoreReader } from "./h5/seed_store.ts";
import { type NamedFile, resolveNamed } from "./shard_files.ts";

export { isShardSetSpec, resolveStoreFiles } from "./shard_files.ts";
import { acquireLock, exitIfAsked, type OutputOptions, settingsMismatch } from "./output/mod.ts";
import { Progress } from "./progress.ts";
import type { Shard, ShardRows } from "./shard.ts";

/** The attributes a shard carries besides a whole capture's (in its settings and fingerprint). */
export const SHARD_ATTRS = [
  "shard_index",
  "shard_count",
  "shard_row_start",
  "shard_row_end",
  "shard_example_start",
  "shard_example_end",
  "total_rows",
] as const;

/** Attributes a shard's settings hold for shard `shard` at `rows` of a split of `totalRows`. */
export function shardAttrs(
  shard: Shard,
  rows: ShardRows,
  totalRows: number,
): Record<string, number> {
  return {
    shard_index: shard.index,
    shard_count: shard.count,
    shard_row_start: rows.rowStart,
    shard_row_end: rows.rowEnd,
    shard_example_start: rows.exampleStart,
    shard_example_end: rows.exampleEnd,
    total_rows: totalRows,
  };
}

/** Attributes not compared between shards: their own, the store's bookkeeping, `adapter`. */
const NOT_COMPARED = new Set<string>([
  ...SHARD_ATTRS,
  ...INFO_ATTRS,
  "rows_complete",
  "complete",
  "fingerprint",
]);

/** Whether a store's attributes mark it as one shard of a sharded capture. */
export function isShard(attrs: Record<string, string | number>): boolean {
  return attrs.shard_count !== undefined || attrs.shard_index !== undefined;
}

/** Opens one store of a set; a refusal of a file a manifest named names the manifest first. */
async function openNamed(n: NamedFile): Promise<H5Reader> {
  try {
    return await H5Reader.open(n.file);
  } catch (e) {
    // The manifest's line is where to fix it, so say which (`MANIFEST:LINE: names FILE: why`).
    if (n.from && e instanceof InputError && !e.message.startsWith(n.from)) {
      throw new InputError(`${n.from}:${n.line}: names ${e.message}`, {
        file: n.from,
        line: n.line,
        cause: e,
      });
    }
    throw e;
  }
}

/**
 * Opens the files `named` lists and leaves out (closing them) the whole stores a glob matched
 * beside shards: a merged file (merge-shards' `--out` inside its own glob, a finished or an
 * interrupted merge) is the set's rows once more, never one of its shards. A whole store named
 * as such, or a glob matching no shard at all, is kept (the set check then refuses it, naming
 * it).
 */
async function openShards(
  named: NamedFile[],
): Promise<{ readers: H5Reader[]; leftOut: string[] }> {
  const readers: H5Reader[] = [];
  try {
    for (const n of named) readers.push(await openNamed(n));
  } catch (e) {
    for (const r of readers) r.close();
    throw e;
  }
  const whole = (r: H5Reader, k: number) => named[k].matched && !isShard(r.attrs);
  if (!readers.some((r) => isShard(r.attrs))) return { readers, leftOut: [] };
  const leftOut: string[] = [];
  const kept: H5Reader[] = [];
  readers.forEach((r, k) => {
    if (whole(r, k)) {
      leftOut.push(r.path);
      r.close();
    } else kept.push(r);
  });
  return { readers: kept, leftOut };
}

/**
 * Opens what `spec` names: one store (an {@linkcode H5Reader}), or a shard set read as one
 * ({@linkcode ShardSetReader}): a glob, a `.txt` manifest, several files, or a single file that
 * is a shard (refused unless it is the whole set, `--shard 0/1`). Errors name the file.
 */
export async function openStore(spec: string | string[]): Promise<StoreReader> {
  const named = await resolveNamed(spec);
  // The seed's three-file store (data/h5/seed_store.ts), named by its embeds file.
  if (named.length === 1 && isSeedStoreName(named[0].file)) {
    return await SeedStoreReader.open(named[0].file);
  }
  if (named.length === 1) {
    await refuseSeedSibling(named[0].file);
    const r = await openNamed(named[0]);
    if (!isShard(r.attrs)) return r;
    try {
      return ShardSetReader.fromReaders([r], [spec].flat().join(" "));
    } catch (e) {
      r.close();
      throw e;
    }
  }
  return await ShardSetReader.open(spec);
}

/**
 * Refuses the labels or idx file of the seed's three-file store given for its embeds file
 * (`sst_labels.h5` for `sst_bert_embeds.h5`), naming the file to give.
 */
async function refuseSeedSibling(path: string): Promise<void> {
  const m = /^(.*)_(labels|idx)\.h5$/.exec(path);
  if (!m) return;
  const embeds = `${m[1]}_bert_embeds.h5`;
  if (!(await Deno.stat(embeds).then(() => true, () => false))) return;
  throw new InputError(
    `${path}: the ${m[2]} file of the seed's store ${embeds}; give that embeds file (its ` +
      `labels and idx files are read beside it)`,
    { file: path },
  );
}

/** The value of a shard attribute, checked to be a non-negative integer. */
function shardNum(r: H5Reader, k: typeof SHARD_ATTRS[number]): number {
  const v = r.attrs[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new InputError(
      `${r.path}: attribute ${k} is ${preview(v)}, not a count; the file is not a shard of ` +
        `capture --shard I/N (or was altered)`,
      { file: r.path },
    );
  }
  return v;
}

/** Settings keys not compared between shards: their row counts, chunking and shard attributes. */
const SHARD_NOT_COMPARED = new Set<string>([
  "n",
  "chunkRows",
  ...SHARD_ATTRS.map((k) => `attrs.${k}`),
]);

/**
 * How shard `b`'s settings differ from shard `a`'s (as read back from each file: its datasets'
 * shapes and dtype, and its attributes), in the output protocol's shape `key: a → b`; empty
 * when none.
 */
function shardSettingsDiff(a: H5Reader, b: H5Reader): string[] {
  return storeSettingsDiff(storeSettingsOf(a), storeSettingsOf(b), SHARD_NOT_COMPARED);
}

/**
 * The shards of one capture read as one store, in shard order (rows as a single-process capture
 * orders them). Reads by hyperslabs of the shards, never whole files.
 */
export class ShardSetReader implements StoreReader {
  /** The set as given (a glob, a manifest, the files): what messages name. */
  readonly path: string;
  /** The shard files, in shard order. */
  readonly files: string[];
  readonly shape: StoreReader["shape"];
  readonly dtype: "f32" | "f16";
  /** A single-process capture's attributes (no shard attributes); `adapter` lists every device. */
  readonly attrs: Record<string, string | number>;
  readonly rowsComplete: number;
  /** Always true: an incomplete shard is refused when the set is opened. */
  readonly complete = true;
  /** The fingerprint a single-process capture of the same settings records. */
  readonly fingerprint: string;
  readonly foreign = false;
  readonly chunkRows?: number;
  /**
   * Whole stores a glob matched beside the shards and left out of the set (a merged file: see
   * {@linkcode ShardSetReader.open}).
   */
  leftOut: string[] = [];
  /** The settings of the store the set equals (what merge-shards creates; chunking default). */
  readonly settings: H5StoreSettings;
  readonly #shards: H5Reader[];
  /** First row of each shard, and the set's row count last. */
  readonly #starts: number[];

  private constructor(name: string, shards: H5Reader[]) {
    this.path = name;
    this.#shards = shards;
    this.files = shards.map((s) => s.path);
    const first = shards[0];
    this.#starts = [0];
    for (const s of shards) this.#starts.push(this.#starts.at(-1)! + s.shape.n);
    const n = this.#starts.at(-1)!;
    this.shape = { ...first.shape, n };
    this.dtype = first.dtype;
    this.rowsComplete = n;
    this.chunkRows = first.chunkRows;
    const base = storeSettingsOf(first);
    const attrs = Object.fromEntries(
      Object.entries(base.attrs).filter(([k]) => !(SHARD_ATTRS as readonly string[]).includes(k)),
    );
    this.settings = {
      n,
      layers: base.layers,
      tokens: base.tokens,
      hidden: base.hidden,
      layout: base.layout,
      dtype: base.dtype,
      labelType: base.labelType,
      labelWidth: base.labelWidth,
      attrs,
    };
    this.fingerprint = storeFingerprint({ ...base, n, attrs });
    const adapters = [
      ...new Set(
        shards.flatMap((s) =>
          typeof s.attrs.adapter === "string" ? s.attrs.adapter.split("; ") : []
        ),
      ),
    ];
    const own = Object.fromEntries(
      Object.entries(first.attrs).filter(([k]) => !NOT_COMPARED.has(k) && !Object.hasOwn(attrs, k)),
    );
    this.attrs = {
      ...attrs,
      ...own,
      rows_complete: n,
      fingerprint: this.fingerprint,
      complete: 1,
      ...(adapters.length ? { adapter: adapters.join("; ") } : {}),
    };
  }

  /** Opens the shards `spec` names (see {@linkcode resolveStoreFiles}) and checks them as a set. */
  static async open(spec: string | string[]): Promise<ShardSetReader> {
    const { readers, leftOut } = await openShards(await resolveNamed(spec));
    try {
      const set = ShardSetReader.fromReaders(readers, [spec].flat().join(" "));
      set.leftOut = leftOut;
      return set;
    } catch (e) {
      for (const r of readers) r.close();
      throw e;
    }
  }

  /**
   * Checks opened shards as one set named `name` (see the module note for what is refused) and
   * reads them in shard order; the set closes them. On a refusal the caller still owns them.
   */
  static fromReaders(readers: H5Reader[], name: string): ShardSetReader {
    if (!readers.length) throw new InputError(`${name}: no shard files`);
    for (const r of readers) {
      if (!isShard(r.attrs)) {
        throw new InputError(
          `${r.path}: not a shard (no shard_index attribute: a whole capture), named in the ` +
            `shard set ${name}; a set holds only the shards of one capture --shard I/N`,
          { file: r.path },
        );
      }
    }
    const first = readers[0];
    const N = shardNum(first, "shard_count");
    const byIndex = new Map<number, H5Reader>();
    for (const r of readers) {
      const n = shardNum(r, "shard_count"), i = shardNum(r, "shard_index");
      if (n !== N) {
        throw new InputError(
          `${r.path} is shard ${i} of ${n} but ${first.path} is of ${N}: shards of captures ` +
            `split another way (--shard I/${n} and I/${N}); name the shards of one capture`,
          { file: r.path },
        );
      }
      if (i >= N) {
        throw new InputError(`${r.path}: shard_index ${i} is not below shard_count ${N}`, {
          file: r.path,
        });
      }
      const diff = shardSettingsDiff(first, r);
      if (diff.length) {
        throw settingsMismatch(
          r.path,
          diff,
          `the first shard named, ${first.path}, has the values before each →; a set's shards ` +
            `must all come from the same command (only --shard's index differing)`,
        );
      }
      const dup = byIndex.get(i);
      if (dup) {
        throw new InputError(
          `${r.path} and ${dup.path} are both shard ${i}/${N}: a duplicate (a copy, or a rerun ` +
            `written elsewhere); keep one of them in the set`,
          { file: r.path },
        );
      }
      byIndex.set(i, r);
    }
    const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !byIndex.has(i));
    if (missing.length) {
      const list = missing.length > 10
        ? `${missing.slice(0, 10).join(", ")}, ... (${missing.length} in all)`
        : missing.join(", ");
      throw new InputError(
        `${name}: shard${missing.length > 1 ? "s" : ""} ${list} of ${N} missing (the set has ` +
          `${byIndex.size}: ${[...byIndex.values()].map((r) => r.path).slice(0, 4).join(", ")}` +
          `${byIndex.size > 4 ? ", ..." : ""}); capture ${
            missing.length > 1 ? "them" : "it"
          } (--shard ${missing[0]}/${N}, or resubmit array index ${missing.join(",")}) or name ` +
          `every shard`,
        { file: name },
      );
    }
    const ordered = Array.from({ length: N }, (_, i) => byIndex.get(i)!);
    let row = 0, example = 0;
    for (const r of ordered) {
      const i = shardNum(r, "shard_index");
      if (!r.complete || r.rowsComplete < r.shape.n) {
        throw new InputError(
          `${r.path}: shard ${i}/${N} is incomplete (${r.rowsComplete} of ${r.shape.n} rows, no ` +
            `completion marker): its capture was interrupted; rerun it (the same command, or ` +
            `resubmit array index ${i}) to finish it`,
          { file: r.path },
        );
      }
      const rs = shardNum(r, "shard_row_start"), re = shardNum(r, "shard_row_end");
      const es = shardNum(r, "shard_example_start"), ee = shardNum(r, "shard_example_end");
      if (rs !== row || es !== example) {
        const prev = i > 0 ? ordered[i - 1].path : undefined;
        throw new InputError(
          `${r.path}: shard ${i}/${N} starts at row ${rs} (example ${es}) but ${
            prev ? `shard ${i - 1} (${prev}) ends` : "the split starts"
          } at row ${row} (example ${example}): the shards ${
            rs < row ? "overlap" : "leave a gap"
          }; capture every shard with the same command`,
          { file: r.path },
        );
      }
      if (re - rs !== r.shape.n || ee <= es) {
        throw new InputError(
          `${r.path}: shard ${i}/${N} says rows ${rs}..${re} but holds ${r.shape.n}; the file ` +
            `was altered — capture this shard again`,
          { file: r.path },
        );
      }
      row = re;
      example = ee;
    }
    const total = shardNum(first, "total_rows");
    if (row !== total) {
      throw new InputError(
        `${ordered.at(-1)!.path}: the last shard ends at row ${row} but the split has ${total} ` +
          `rows: the set is short; capture every shard with the same command`,
        { file: ordered.at(-1)!.path },
      );
    }
    return new ShardSetReader(name, ordered);
  }

  /** Labels per row. */
  get labelWidth(): number {
    return this.#shards[0].labelWidth;
  }

  /** The shard holding set row `row`. */
  #shardOf(row: number): number {
    let lo = 0, hi = this.#shards.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.#starts[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Calls `fn(shard, localStart, count, setStart)` for each shard's part of rows [start, end). */
  #parts(start: number, count: number, fn: (k: number, s: number, c: number, at: number) => void) {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0) {
      throw new Error(`${this.path}: rows ${start}..${start + count} need integers ≥ 0`);
    }
    if (start + count > this.shape.n) {
      throw new InputError(
        `${this.path}: rows ${start}..${start + count} requested but the set holds ${this.shape.n}`,
      );
    }
    for (let at = start; at < start + count;) {
      const k = this.#shardOf(at);
      const c = Math.min(start + count, this.#starts[k + 1]) - at;
      fn(k, at - this.#starts[k], c, at);
      at += c;
    }
  }

  /** Reads rows [start, start + count) of the set (across shards). */
  readRows(start: number, count: number): H5ReadRows {
    const parts: H5ReadRows[] = [];
    this.#parts(start, count, (k, s, c) => parts.push(this.#shards[k].readRows(s, c)));
    return concatRows(parts);
  }

  /** Rows [start, start + count) as stored (see {@linkcode H5Reader.readRowsRaw}). */
  readRowsRaw(start: number, count: number): H5Rows {
    const parts: H5Rows[] = [];
    this.#parts(start, count, (k, s, c) => parts.push(this.#shards[k].readRowsRaw(s, c)));
    if (parts.length === 1) return parts[0];
    const cat = <T extends ArrayLike<unknown>>(xs: T[]): T => {
      const C = xs[0].constructor as new (n: number) => T & { set(a: T, at: number): void };
      const out = new C(xs.reduce((a, x) => a + x.length, 0));
      let at = 0;
      for (const x of xs) {
        out.set(x, at);
        at += x.length;
      }
      return out;
    };
    return {
      embeds: cat(parts.map((p) => p.embeds)),
      inputIds: cat(parts.map((p) => p.inputIds as Int32Array)),
      tokenTypeIds: cat(parts.map((p) => p.tokenTypeIds as Int32Array)),
      attentionMask: cat(parts.map((p) => p.attentionMask as Int32Array)),
      labels: cat(parts.map((p) => p.labels as Float32Array)),
      idx: cat(parts.map((p) => p.idx as BigInt64Array)),
    };
  }

  /** The `input_ids` of rows [start, start + count) (default every row). */
  readInputIds(start = 0, count: number = this.shape.n - start): Int32Array {
    const T = this.shape.tokens;
    const out = new Int32Array(count * T);
    this.#parts(start, count, (k, s, c, at) => {
      out.set(this.#shards[k].readInputIds(s, c), (at - start) * T);
    });
    return out;
  }

  /** Reads arbitrary rows in the order given (one batched read per shard touched). */
  readIndices(indices: ArrayLike<number>): H5ReadRows {
    const n = indices.length;
    if (!n) throw new Error(`${this.path}: readIndices needs at least one index`);
    const byShard = new Map<number, { at: number[]; local: number[] }>();
    for (let i = 0; i < n; i++) {
      const r = indices[i];
      if (!Number.isInteger(r) || r < 0 || r >= this.shape.n) {
        throw new Error(`${this.path}: row ${r} is not a row of the set (0..${this.shape.n - 1})`);
      }
      const k = this.#shardOf(r);
      let g = byShard.get(k);
      if (!g) byShard.set(k, g = { at: [], local: [] });
      g.at.push(i);
      g.local.push(r - this.#starts[k]);
    }
    const widths = rowWidths(this.shape, this.labelWidth);
    let out: H5ReadRows | null = null;
    for (const [k, g] of byShard) {
      const part = this.#shards[k].readIndices(g.local);
      const to = out ??= emptyRows(n, widths, part);
      g.at.forEach((dst, src) => copyRow(to, dst, part, src, widths));
    }
    return out!;
  }

  /** Closes every shard. */
  close(): void {
    for (const s of this.#shards) s.close();
  }
}

/** Rows read in consecutive parts, joined. */
function concatRows(parts: H5ReadRows[]): H5ReadRows {
  if (parts.length === 1) return parts[0];
  const join = <T extends Float32Array | Int32Array | Float64Array>(xs: T[]): T => {
    const C = xs[0].constructor as new (n: number) => T;
    const out = new C(xs.reduce((a, x) => a + x.length, 0));
    let at = 0;
    for (const x of xs) {
      out.set(x as never, at);
      at += x.length;
    }
    return out;
  };
  return {
    embeds: join(parts.map((p) => p.embeds)),
    inputIds: join(parts.map((p) => p.inputIds)),
    tokenTypeIds: join(parts.map((p) => p.tokenTypeIds)),
    attentionMask: join(parts.map((p) => p.attentionMask)),
    labels: join(parts.map((p) => p.labels as Float32Array)),
    idx: join(parts.map((p) => p.idx)),
  };
}

/** A whole store a glob matched beside shards, as {@linkcode shardStatus} lists it. */
const LEFT_OUT = "a whole store the glob also matches (a merged file?), not a shard: left out " +
  "of the set";

/** One shard file's state, as {@linkcode shardStatus} finds it. */
export interface ShardState {
  file: string;
  /** Its shard index and count (absent when the file is unreadable or not a shard). */
  index?: number;
  count?: number;
  /** Rows final and rows in all; whether it carries the completion marker. */
  rowsComplete?: number;
  rows?: number;
  complete: boolean;
  /** Why it cannot be used as it is (unreadable, not a shard, incomplete), else undefined. */
  problem?: string;
}

/** What {@linkcode shardStatus} reports: each file's state, the missing indices, the verdict. */
export interface ShardStatus {
  shards: ShardState[];
  /** The shard count N (the first shard's), when any file is a shard. */
  count?: number;
  /** Indices 0..N-1 with no file. */
  missing: number[];
  /** Indices to capture again: missing, incomplete or unreadable. */
  rerun: number[];
  /** Undefined when the set reads as one store; else why not (the set check's message). */
  problem?: string;
  /** Human-readable lines: one per shard, then the verdict. */
  lines: string[];
}

/**
 * The progress of a sharded capture (`merge-shards --dry-run`): each shard file's state (rows
 * final, complete, or why it is unusable), the indices with no file, and which indices to
 * capture again (`sbatch --array=...`); then whether the set reads as one store. Reads only
 * attributes; never throws for a shard's state (only for a glob matching nothing).
 */
export async function shardStatus(specs: string | string[]): Promise<ShardStatus> {
  const named = await resolveNamed(specs);
  const shards: ShardState[] = [];
  const whole: string[] = []; // whole stores a glob matched: left out when it matched shards
  for (const { file, matched } of named) {
    let r: H5Reader;
    try {
      r = await H5Reader.open(file);
    } catch (e) {
      shards.push({ file, complete: false, problem: (e as Error).message });
      continue;
    }
    try {
      const st: ShardState = {
        file,
        rows: r.shape.n,
        rowsComplete: r.rowsComplete,
        complete: r.complete,
      };
      if (!isShard(r.attrs)) {
        st.problem = "not a shard (a whole capture)";
        if (matched) whole.push(file);
      } else {
        st.index = Number(r.attrs.shard_index);
        st.count = Number(r.attrs.shard_count);
        if (!r.complete) st.problem = `incomplete: ${r.rowsComplete} of ${r.shape.n} rows final`;
      }
      shards.push(st);
    } finally {
      r.close();
    }
  }
  const leaveOut = shards.some((s) => s.index !== undefined) ? new Set(whole) : new Set();
  for (const st of shards) {
    if (leaveOut.has(st.file)) st.problem = LEFT_OUT;
  }
  shards.sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity));
  const count = shards.find((s) => s.count !== undefined)?.count;
  const have = new Set(shards.filter((s) => s.count === count).map((s) => s.index));
  const missing = count === undefined
    ? []
    : Array.from({ length: count }, (_, i) => i).filter((i) => !have.has(i));
  const bad = shards.filter((s) => s.problem && s.index !== undefined).map((s) => s.index!);
  const rerun = [...new Set([...missing, ...bad])].sort((a, b) => a - b);
  let problem: string | undefined;
  try {
    (await ShardSetReader.open(specs)).close();
  } catch (e) {
    problem = (e as Error).message;
  }
  const lines = shards.map((s) =>
    `${
      leaveOut.has(s.file)
        ? "left out"
        : s.index === undefined
        ? "shard ?"
        : `shard ${s.index}/${s.count}`
    }  ${s.file}  ` + (s.problem ?? `complete, ${s.rows} rows`)
  );
  for (const i of missing) lines.push(`shard ${i}/${count}  missing`);
  const inSet = shards.filter((s) => !leaveOut.has(s.file));
  lines.push(
    problem === undefined
      ? `the set is complete: ${inSet.reduce((a, s) => a + (s.rows ?? 0), 0)} rows in ` +
        `${inSet.length} shards`
      : `not ready${
        rerun.length ? `: capture again ${rerun.join(",")} (sbatch --array=${rerun.join(",")})` : ""
      }; ${problem}`,
  );
  return { shards, count, missing, rerun, problem, lines };
}

/** Options of {@linkcode mergeShards}. */
export interface MergeShardsOptions extends OutputOptions {
  /** Bytes of embeds copied per read (default 64 MiB; at least one row). */
  blockBytes?: number;
}

/** What {@linkcode mergeShards} did. */
export interface MergeShardsResult {
  out: string;
  /** Rows of the merged store. */
  n: number;
  /** The shard files, in shard order. */
  shards: string[];
  /** The merged store's fingerprint (a single-process capture's). */
  fingerprint: string;
  /** Rows already merged when this run started (resume). */
  rowsBefore: number;
  /** Whole stores the globs matched and the merge left out (`out` itself, on a rerun). */
  leftOut: string[];
}

/**
 * Merges a shard set into one store at `out`: the shards' rows copied as stored (f16 bits,
 * int64 labels: nothing decoded), in shard order, under `out`'s lock, with the settings and
 * attributes of a single-process capture, so its datasets and fingerprint equal one. Checks the
 * set first (see {@linkcode ShardSetReader}); an interrupted merge resumes; an `out` with other
 * settings is refused unless `overwrite`.
 */
export async function mergeShards(
  specs: string | string[],
  out: string,
  o: MergeShardsOptions = {},
): Promise<MergeShardsResult> {
  const set = await ShardSetReader.open(specs);
  try {
    const real = await Deno.realPath(out).catch(() => null);
    for (const f of set.files) {
      if (real && real === await Deno.realPath(f).catch(() => null)) {
        throw new InputError(`--out ${out} is one of the shards; choose another --out`, {
          file: out,
        });
      }
    }
    const lock = acquireLock(out, "file", { breakLock: o.breakLock });
    if (lock.tookOver && !o.silent) console.error(lock.tookOver);
    try {
      const adapter = typeof set.attrs.adapter === "string" ? set.attrs.adapter : undefined;
      const store = await H5Store.openOrCreate(out, set.settings, {
        overwrite: o.overwrite,
        adapter,
      });
      const rowsBefore = store.rowsDone;
      const s = set.shape;
      const rowBytes = s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden *
        (set.dtype === "f16" ? 2 : 4);
      const block = Math.max(1, Math.floor((o.blockBytes ?? 64 << 20) / rowBytes));
      const bar = new Progress(
        { label: `merge ${set.files.length} shards`, total: s.n, unit: "rows", silent: o.silent },
        rowsBefore,
      );
      try {
        for (let at = rowsBefore; at < s.n; at += block) {
          const count = Math.min(block, s.n - at);
          await store.writeRows(at, set.readRowsRaw(at, count));
          bar.tick(count);
        }
        bar.done();
        exitIfAsked("merge", "rows"); // every row written, the store not yet closed
      } finally {
        await store.close();
      }
      return {
        out,
        n: s.n,
        shards: set.files,
        fingerprint: set.fingerprint,
        rowsBefore,
        leftOut: set.leftOut,
      };
    } finally {
      lock.release();
    }
  } finally {
    set.close();
  }
}
