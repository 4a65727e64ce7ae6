/**
 * The reader of an HDF5 activation store ({@linkcode H5Reader}): checks every dataset's dtype
 * and shape when it opens, then reads rows by hyperslabs (never the whole file), refusing rows
 * past those known complete. {@linkcode StoreReader} is what a set of shards (data/shard_set.ts)
 * shares with it.
 * Checked by data/h5_store_test.ts and data/h5_store_errors_test.ts.
 * @module
 */
import { InputError, preview } from "../errors.ts";
import { f16BitsToF32 } from "../half.ts";
import { assertHdf5, type H5Dataset, h5Do, type H5File, h5lib, h5Ready, openH5 } from "./hdf5.ts";
import { type H5ReadRows, type H5Rows, readIndicesBy } from "./rows.ts";
import { sidecarRows, statePath } from "./state.ts";
import { CHUNK_HASHES, HASHED, hashRows, type RawRows } from "./chunk_hashes.ts";

/** Stores already said to be unverified (once per path and process). */
const saidUnverified = new Set<string>();

/**
 * What the readers of stored activations use: an {@linkcode H5Reader}, or a set of shards read
 * as one store (data/shard_set.ts `ShardSetReader`).
 */
export type StoreReader = Pick<
  H5Reader,
  | "path"
  | "shape"
  | "dtype"
  | "attrs"
  | "rowsComplete"
  | "complete"
  | "fingerprint"
  | "foreign"
  | "chunkRows"
  | "labelWidth"
  | "readRows"
  | "readRowsRaw"
  | "readInputIds"
  | "readIndices"
  | "close"
>;

/**
 * Reads an activation store by hyperslabs (never the whole file), for streaming batches.
 */
export class H5Reader {
  readonly path: string;
  /** N, L+1, T, H and the layout. */
  readonly shape: {
    n: number;
    layers: number;
    tokens: number;
    hidden: number;
    layout: "cls" | "full";
  };
  /** "f32" or "f16" (as stored; reads always give float32). */
  readonly dtype: "f32" | "f16";
  /** File attributes (model_id, weights_hash, task, split, layout, dtype, max_seq_length, ...). */
  readonly attrs: Record<string, string | number>;
  /**
   * Rows known complete: N for a complete store; else the file's `rows_complete` (updated at
   * every flush), else the sidecar's count, else 0. A foreign file (not written here) counts N.
   */
  readonly rowsComplete: number;
  /** Whether the store carries the completion marker (a foreign file counts as complete). */
  readonly complete: boolean;
  /** The fingerprint its completion marker records (see {@linkcode storeFingerprint}). */
  readonly fingerprint?: string;
  /** Whether the file was not written by this project (no `format` attribute). */
  readonly foreign: boolean;
  /** Rows per HDF5 chunk of `embeds`, when the file says. */
  readonly chunkRows?: number;
  /**
   * Whether its rows are checked against per-chunk hashes when read (false for a store written
   * before them, or a foreign file: said once on stderr).
   */
  readonly verified: boolean;
  #file: H5File;
  #ds: Record<string, H5Dataset>;
  #labelWidth: number;
  /** `chunk_hashes` (see chunk_hashes.ts) and its rows per block; null when there are none. */
  #hashes: { values: BigInt64Array; rows: number } | null = null;
  /** Blocks whose rows were read and matched their hashes. */
  #checked: Uint8Array = new Uint8Array(0);

  private constructor(path: string, file: H5File, rowsFromState: number | null) {
    this.path = path;
    this.#file = file;
    this.#ds = {};
    const bad = (what: string): never => {
      throw new InputError(`${path}: ${what}; not a BERTVision activation store`, { file: path });
    };
    for (
      const name of ["embeds", "input_ids", "token_type_ids", "attention_mask", "labels", "idx"]
    ) {
      const d = h5Do(path, `open dataset "${name}"`, () => file.get(name));
      if (!(d instanceof h5lib().Dataset)) bad(`no dataset "${name}"`);
      this.#ds[name] = d as H5Dataset;
    }
    const attrs: Record<string, string | number> = {};
    h5Do(path, "read its attributes", () => {
      for (const [k, a] of Object.entries(file.attrs)) {
        const v = a.value;
        attrs[k] = typeof v === "bigint"
          ? Number(v)
          : typeof v === "number" || typeof v === "string"
          ? v
          : preview(v);
      }
    });
    this.attrs = attrs;
    // Every dataset's dtype and shape, as H5Store writes them: a corrupt or foreign file is
    // refused here rather than read as garbage (or as out-of-range row slices) later.
    const meta = (name: string) =>
      h5Do(path, `read the layout of "${name}"`, () => {
        const d = this.#ds[name];
        return { dtype: d.dtype, shape: d.shape ?? [] };
      });
    const enc = h5Do(
      path,
      `read the attributes of "embeds"`,
      () => this.#ds.embeds.attrs["encoding"]?.value,
    );
    this.dtype = enc === "float16-bits" ? "f16" : "f32";
    const want: Record<string, string[]> = {
      embeds: [this.dtype === "f16" ? "<H" : "<f"],
      input_ids: ["<i"],
      token_type_ids: ["<i"],
      attention_mask: ["<i"],
      labels: ["<q", "<f"],
      idx: ["<q"],
    };
    const m: Record<string, { dtype: unknown; shape: number[] }> = {};
    for (const [name, dtypes] of Object.entries(want)) {
      m[name] = meta(name);
      if (!dtypes.includes(m[name].dtype as string)) {
        bad(`dataset "${name}" has dtype ${preview(m[name].dtype)}, not ${dtypes.join(" or ")}`);
      }
      if (!m[name].shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
        bad(`dataset "${name}" has shape [${m[name].shape}]`);
      }
    }
    const es = m.embeds.shape, ids = m.input_ids.shape, ls = m.labels.shape;
    if (es.length !== 3 && es.length !== 4) bad(`embeds has shape [${es}], not [N, L+1, (T,) H]`);
    const n = es[0];
    const layout = es.length === 4 ? "full" : "cls";
    if (ids.length !== 2 || ids[0] !== n) bad(`input_ids has shape [${ids}], not [${n}, T]`);
    for (const name of ["token_type_ids", "attention_mask"]) {
      if (m[name].shape.join() !== ids.join()) {
        bad(`${name} has shape [${m[name].shape}], not [${ids}] as input_ids`);
      }
    }
    if (layout === "full" && es[2] !== ids[1]) {
      bad(`embeds has ${es[2]} tokens per row but input_ids ${ids[1]}`);
    }
    if ((ls.length !== 1 && ls.length !== 2) || ls[0] !== n || ls[1] === 0) {
      bad(`labels has shape [${ls}], not [${n}] or [${n}, W]`);
    }
    if (m.idx.shape.join() !== String(n)) bad(`idx has shape [${m.idx.shape}], not [${n}]`);
    const rowSize = es.slice(1).reduce((a, b) => a * b, 1);
    // A row of BERT-large at T = 512 is 13M values; a billion is a corrupt header.
    if (es.slice(1).some((d) => d === 0) || ids[1] === 0 || rowSize > 2 ** 30) {
      bad(`embeds has shape [${es}]`);
    }
    this.shape = { n, layers: es[1], tokens: ids[1], hidden: es[es.length - 1], layout };
    this.#labelWidth = ls.length > 1 ? ls[1] : 1;
    const rc = attrs.rows_complete;
    if (
      rc !== undefined && (!Number.isSafeInteger(rc) || (rc as number) < 0 || (rc as number) > n)
    ) {
      bad(`attribute rows_complete is ${preview(rc)}, not a row count of 0..${n}`);
    }
    if (rowsFromState !== null && rowsFromState > n) {
      throw new InputError(
        `${statePath(path)}: rowsDone is ${rowsFromState} but ${path} has ${n} rows; the two ` +
          `do not belong together`,
        { file: statePath(path) },
      );
    }
    this.foreign = attrs.format === undefined;
    const chunks = h5Do(
      path,
      `read the layout of "embeds"`,
      () => (this.#ds.embeds.metadata as { chunks?: number[] | null }).chunks,
    );
    if (chunks && Number.isSafeInteger(chunks[0]) && chunks[0] > 0) this.chunkRows = chunks[0];
    this.complete = this.foreign || attrs.complete === 1;
    if (typeof attrs.fingerprint === "string") this.fingerprint = attrs.fingerprint;
    this.rowsComplete = this.complete
      ? n
      : Math.min(n, (rc as number | undefined) ?? rowsFromState ?? 0);
    const hd = h5Do(path, `open dataset "${CHUNK_HASHES}"`, () => file.get(CHUNK_HASHES));
    if (hd instanceof h5lib().Dataset) {
      const rows = Number(h5Do(path, `read "${CHUNK_HASHES}"`, () => hd.attrs["rows"]?.value));
      const { dtype, shape } = h5Do(path, `read the layout of "${CHUNK_HASHES}"`, () => ({
        dtype: hd.dtype,
        shape: hd.shape ?? [],
      }));
      if (!Number.isSafeInteger(rows) || rows <= 0) {
        bad(`"${CHUNK_HASHES}" has rows = ${preview(rows)}, not a row count`);
      }
      const blocks = Math.ceil(n / rows);
      if (dtype !== "<q" || shape.join() !== `${blocks},${HASHED.length}`) {
        bad(
          `"${CHUNK_HASHES}" is ${preview(dtype)} [${shape}], not <q [${blocks}, ${HASHED.length}]`,
        );
      }
      const values = h5Do(path, `read "${CHUNK_HASHES}"`, () => hd.value) as BigInt64Array;
      this.#hashes = { values, rows };
      this.#checked = new Uint8Array(blocks);
    }
    this.verified = this.#hashes !== null;
    if (!this.verified && !saidUnverified.has(path)) {
      saidUnverified.add(path);
      console.error(
        `note: ${path}: ${
          this.foreign ? "not written by this project" : "written before per-chunk hashes"
        } (no "${CHUNK_HASHES}"); its rows are read unverified`,
      );
    }
  }

  /** Opens `path` read-only; throws an InputError naming the path when it is missing, corrupt or not a store. */
  static async open(path: string): Promise<H5Reader> {
    await assertHdf5(path);
    const rowsFromState = await sidecarRows(path);
    await h5Ready();
    const f = openH5(path, "r");
    try {
      return new H5Reader(path, f, rowsFromState);
    } catch (e) {
      try {
        f.close();
      } catch { /* the error at hand says more */ }
      throw e;
    }
  }

  /** Labels per row (1 unless the store was created with `labelWidth`). */
  get labelWidth(): number {
    return this.#labelWidth;
  }

  /** Throws unless rows [start, start + count) are integers, not empty and complete. */
  #checkRows(method: string, start: number, count: number): void {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count <= 0) {
      throw new Error(
        `${this.path}: ${method}(${start}, ${count}) needs integers start ≥ 0, count > 0`,
      );
    }
    if (start + count > this.rowsComplete) {
      throw new InputError(
        `${this.path}: rows ${start}..${start + count} requested but only ` +
          `${this.rowsComplete} of ${this.shape.n} are complete (an interrupted capture? rerun ` +
          `it to finish)`,
      );
    }
  }

  /** Reads rows [start, start + count). Throws for rows past {@linkcode rowsComplete}. */
  readRows(start: number, count: number): H5ReadRows {
    const raw = this.#readRaw("readRows", start, count);
    return {
      ...raw,
      embeds: this.dtype === "f16"
        ? f16BitsToF32(raw.embeds as Uint16Array)
        : raw.embeds as Float32Array,
      labels: raw.labels instanceof BigInt64Array
        ? Int32Array.from(raw.labels, (v) => Number(v))
        : raw.labels,
      idx: Float64Array.from(raw.idx, (v) => Number(v)),
    };
  }

  /**
   * Rows [start, start + count) exactly as stored, in the form {@linkcode H5Store.writeRows}
   * takes: f16 `embeds` as their half bit patterns, int64 labels and `idx` as BigInt64Array. What
   * copying rows from store to store needs (merge-shards): nothing decoded, nothing rounded.
   */
  readRowsRaw(start: number, count: number): H5Rows {
    return this.#readRaw("readRowsRaw", start, count);
  }

  /** {@linkcode readRowsRaw}, `method` naming the caller in a bad range's error. */
  #readRaw(method: string, start: number, count: number): {
    embeds: Float32Array | Uint16Array;
    inputIds: Int32Array;
    tokenTypeIds: Int32Array;
    attentionMask: Int32Array;
    labels: BigInt64Array | Float32Array;
    idx: BigInt64Array;
  } {
    this.#checkRows(method, start, count);
    const raw = this.#slices(start, count);
    this.#verify(start, count, raw);
    return {
      embeds: raw.embeds as Float32Array | Uint16Array,
      inputIds: raw.input_ids as Int32Array,
      tokenTypeIds: raw.token_type_ids as Int32Array,
      attentionMask: raw.attention_mask as Int32Array,
      labels: raw.labels as BigInt64Array | Float32Array,
      idx: raw.idx as BigInt64Array,
    };
  }

  /** Rows [start, start + count) of every hashed dataset, as stored. */
  #slices(start: number, count: number): RawRows {
    const r: [number, number][] = [[start, start + count]];
    return Object.fromEntries(HASHED.map((name) => [
      name,
      h5Do(
        this.path,
        `read rows ${start}..${start + count} of "${name}"`,
        () => this.#ds[name].slice(r),
      ) as ArrayBufferView,
    ])) as RawRows;
  }

  /**
   * Checks each hash block that rows [start, start + count) touch, once per reader: hashed from
   * `raw` when the read holds the whole block, else read whole. A block whose rows are not all
   * complete has no hashes yet and is left. A mismatch is an InputError naming the file, the
   * dataset and the rows.
   */
  #verify(start: number, count: number, raw: RawRows): void {
    const h = this.#hashes;
    if (!h) return;
    const first = Math.floor(start / h.rows);
    const last = Math.floor((start + count - 1) / h.rows);
    for (let b = first; b <= last; b++) {
      if (this.#checked[b]) continue;
      const lo = b * h.rows, hi = Math.min(lo + h.rows, this.shape.n);
      if (hi > this.rowsComplete) continue;
      const got = lo >= start && hi <= start + count
        ? hashRows(raw, lo - start, hi - lo)
        : hashRows(this.#slices(lo, hi - lo));
      const want = h.values.subarray(b * HASHED.length, (b + 1) * HASHED.length);
      const k = got.findIndex((v, i) => v !== want[i]);
      if (k >= 0) {
        throw new InputError(
          `${this.path}: rows ${lo}..${hi} of dataset "${HASHED[k]}" do not match the hash ` +
            `recorded when they were written (block ${b} of "${CHUNK_HASHES}"): the file was ` +
            `changed or damaged after it was written — copy it again, or capture it again`,
          { file: this.path },
        );
      }
      this.#checked[b] = 1;
    }
  }

  /**
   * The `input_ids` of rows [start, start + count) (default: every row), without reading the
   * activations: what a caller re-featurizing the split compares its rows with.
   */
  readInputIds(start = 0, count = this.shape.n - start): Int32Array {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0) {
      throw new Error(`${this.path}: readInputIds(${start}, ${count}) needs integers ≥ 0`);
    }
    if (count === 0) return new Int32Array(0);
    return h5Do(
      this.path,
      `read rows ${start}..${start + count} of "input_ids"`,
      () => this.#ds.input_ids.slice([[start, start + count]]),
    ) as Int32Array;
  }

  /**
   * Reads arbitrary rows (e.g. one shuffled batch) in the order given, with one hyperslab read
   * per run of consecutive indices.
   */
  readIndices(indices: ArrayLike<number>): H5ReadRows {
    return readIndicesBy(this, indices);
  }

  /** Closes the file. */
  close(): void {
    h5Do(this.path, "close it", () => this.#file.close());
  }
}
