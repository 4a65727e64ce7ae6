/**
 * The writer of an HDF5 activation store ({@linkcode H5Store}): creates it with every dataset
 * allocated, writes rows in order, flushes with its resume state, reopens an interrupted one
 * (refusing other settings in the output protocol's shape, `key: there → now`) and stamps the
 * completion marker (`fingerprint`, then `complete`) last. The layout and the rules are in
 * data/h5/mod.ts.
 * Checked by data/h5_store_test.ts and data/h5_store_errors_test.ts.
 * @module
 */
import { InputError } from "../errors.ts";
import { regularFileExists } from "../files.ts";
import { f32ToF16Bits } from "../half.ts";
import { exitIfAsked, settingsMismatch } from "../output/mod.ts";
import { storeFingerprint, storeSettingsDiff, storeSettingsOf } from "./fingerprint.ts";
import {
  assertHdf5,
  exists,
  guardWrites,
  type H5Dataset,
  h5Do,
  type H5File,
  h5lib,
  h5Ready,
  openH5,
  refuseDirectory,
} from "./hdf5.ts";
import { H5Reader } from "./reader.ts";
import type { H5Rows } from "./rows.ts";
import {
  embedsRowShape,
  type H5StoreSettings,
  type H5WriterOptions,
  normalise,
  prod,
} from "./settings.ts";
import { checkedRowsDone, saveState, type State, STATE_FORMAT, statePath } from "./state.ts";
import { CHUNK_HASHES, ChunkHasher, HASHED, type RawRows } from "./chunk_hashes.ts";

/**
 * A sidecar's content rebuilt from the store itself (its shapes and attributes, and
 * `rows_complete`), for a store whose sidecar is gone; a file not written here is refused.
 */
async function stateFromFile(path: string, sp: string): Promise<State> {
  let r: H5Reader;
  try {
    r = await H5Reader.open(path);
  } catch (e) {
    throw new InputError(
      `${path}: exists but has no ${sp} and cannot be read as a store (${(e as Error).message}); ` +
        `delete it or choose another --out`,
      { file: path, cause: e },
    );
  }
  try {
    if (r.foreign) {
      throw new InputError(
        `${path}: exists but was not written by this project (no "format" attribute) and has ` +
          `no ${sp}; delete it or choose another --out`,
        { file: path },
      );
    }
    return {
      format: STATE_FORMAT,
      settings: storeSettingsOf(r),
      rowsDone: r.rowsComplete,
      complete: r.complete,
      updatedAt: "",
    };
  } finally {
    r.close();
  }
}

/**
 * Adds `adapter` to the file's `adapter` attribute (a "; "-separated list of the devices that
 * wrote rows), unless it is there already.
 */
function recordAdapter(f: H5File, adapter: string | undefined): void {
  if (!adapter) return;
  const had = "adapter" in f.attrs ? String(f.attrs["adapter"].value) : "";
  const list = had ? had.split("; ") : [];
  if (list.includes(adapter)) return;
  if (had) f.delete_attribute("adapter");
  f.create_attribute("adapter", [...list, adapter].join("; "));
  f.flush();
}

/** Sets a string attribute of the file (replacing it: a redone step never meets its own). */
function setStrAttr(f: H5File, name: string, value: string): void {
  if (name in f.attrs) f.delete_attribute(name);
  f.create_attribute(name, value);
}

/** Sets an int64 attribute of the file (replacing it). */
function setIntAttr(f: H5File, name: string, value: number): void {
  if (name in f.attrs) f.delete_attribute(name);
  f.create_attribute(name, value, null, "<q");
}

function toInt32(a: ArrayLike<number> | Int32Array, n: number, what: string): Int32Array {
  if (a.length !== n) throw new Error(`writeRows: ${what} has ${a.length} values, expected ${n}`);
  return a instanceof Int32Array ? a : Int32Array.from(a);
}

function toI64(a: ArrayLike<number> | BigInt64Array, n: number, what: string): BigInt64Array {
  if (a.length !== n) throw new Error(`writeRows: ${what} has ${a.length} values, expected ${n}`);
  if (a instanceof BigInt64Array) return a;
  const out = new BigInt64Array(n);
  for (let i = 0; i < n; i++) {
    const v = (a as ArrayLike<number>)[i];
    if (!Number.isInteger(v)) throw new Error(`writeRows: ${what}[${i}] = ${v} is not an integer`);
    out[i] = BigInt(v);
  }
  return out;
}

/**
 * Writer of an activation store. Rows must be written in order (`start` = {@linkcode rowsDone}
 * after any resume); `close()` flushes and marks the store complete when all N rows are in.
 *
 * @example
 * ```ts
 * import { H5Reader, H5Store } from "./mod.ts";
 * const path = (await Deno.makeTempDir()) + "/train.h5";
 * const s = await H5Store.create(path, { n: 2, layers: 3, tokens: 4, hidden: 5, layout: "cls", dtype: "f32" });
 * await s.writeRows(0, {
 *   embeds: new Float32Array(2 * 3 * 5).fill(0.5),
 *   inputIds: new Int32Array(8), tokenTypeIds: new Int32Array(8), attentionMask: new Int32Array(8),
 *   labels: [0, 1], idx: [0, 1],
 * });
 * await s.close();
 * const r = await H5Reader.open(path);
 * console.assert(r.readRows(1, 1).labels[0] === 1);
 * r.close();
 * ```
 */
export class H5Store {
  readonly path: string;
  readonly settings: Readonly<Required<H5StoreSettings>>;
  #file: H5File | null;
  #ds: Record<string, H5Dataset>;
  #rowsWritten: number;
  #rowsFlushed: number;
  #flushEvery: number;
  /** Hashes rows into `chunk_hashes` as they are written (null: a store from before them). */
  #hasher: ChunkHasher | null = null;

  private constructor(
    path: string,
    settings: Required<H5StoreSettings>,
    file: H5File,
    rowsDone: number,
    opts: H5WriterOptions,
  ) {
    this.path = path;
    this.settings = settings;
    this.#file = file;
    this.#rowsWritten = rowsDone;
    this.#rowsFlushed = rowsDone;
    const c = settings.chunkRows;
    this.#flushEvery = opts.flushEveryRows ?? c * Math.max(1, Math.round(256 / c));
    this.#ds = {};
    for (
      const name of ["embeds", "input_ids", "token_type_ids", "attention_mask", "labels", "idx"]
    ) {
      const d = h5Do(path, `open dataset "${name}"`, () => file.get(name));
      if (!(d instanceof h5lib().Dataset)) {
        throw new InputError(
          `${path}: dataset "${name}" is missing; not a complete store — delete it and rerun`,
          { file: path },
        );
      }
      this.#ds[name] = d;
    }
    // A store made before per-chunk hashes has none: its rows stay unverified (said by readers).
    const hashes = h5Do(path, `open dataset "${CHUNK_HASHES}"`, () => file.get(CHUNK_HASHES));
    if (hashes instanceof h5lib().Dataset) {
      this.#ds[CHUNK_HASHES] = hashes;
      const per = Number(h5Do(path, `read "${CHUNK_HASHES}"`, () => hashes.attrs["rows"]?.value));
      if (!Number.isSafeInteger(per) || per <= 0) {
        throw new InputError(
          `${path}: dataset "${CHUNK_HASHES}" has no row count ("rows" attribute); not a ` +
            `complete store — delete it and rerun`,
          { file: path },
        );
      }
      this.#hasher = ChunkHasher.resume(per, settings.n, rowsDone, (start, count) => {
        const r: [number, number][] = [[start, start + count]];
        return Object.fromEntries(
          HASHED.map((name) => [
            name,
            h5Do(
              path,
              `read rows ${start}..${start + count} of "${name}"`,
              () => this.#ds[name].slice(r),
            ) as ArrayBufferView,
          ]),
        ) as RawRows;
      });
    }
    guardWrites(path, file, this.#ds);
  }

  /** Rows safely on disk and recorded in the sidecar (where a resume continues). */
  get rowsDone(): number {
    return this.#rowsFlushed;
  }

  /** Rows handed to {@linkcode writeRows} so far (the next `start`). */
  get rowsWritten(): number {
    return this.#rowsWritten;
  }

  /**
   * Creates a new store at `path` (refusing to overwrite an existing one) with all datasets
   * allocated, and its sidecar saying 0 rows done.
   */
  static async create(
    path: string,
    settings: H5StoreSettings,
    opts: H5WriterOptions = {},
  ): Promise<H5Store> {
    const s = normalise(settings, path);
    await refuseDirectory(path);
    if (await exists(path)) {
      throw new InputError(
        `${path}: exists already; resume it with the same settings, or delete it or choose another --out`,
        { file: path },
      );
    }
    await h5Ready();
    const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
    if (parent) {
      await Deno.mkdir(parent, { recursive: true }).catch((e) => {
        throw new InputError(`${path}: cannot create its folder (${(e as Error).message})`, {
          file: path,
          cause: e,
        });
      });
    }
    const tmpState = statePath(path);
    await Deno.remove(tmpState).catch(() => {});
    // The OS says best why a file cannot be made (read-only folder or file system, no space).
    await Deno.writeFile(path, new Uint8Array(0), { createNew: true }).catch((e) => {
      throw new InputError(
        `${path}: cannot create it (${(e as Error).message}); choose an --out in a writable folder`,
        { file: path, cause: e },
      );
    });
    let f: H5File | undefined;
    try {
      f = openH5(path, "w");
      const store = h5Do(
        path,
        "lay out its datasets",
        () => H5Store.#layout(path, f!, s, opts),
        "is its disk full?",
      );
      await store.#saveState(false);
      return store;
    } catch (e) {
      // Leave nothing behind: a half-made file without its sidecar would block the next run.
      try {
        f?.close();
      } catch { /* the error at hand says more */ }
      await Deno.remove(path).catch(() => {});
      await Deno.remove(tmpState).catch(() => {});
      throw e;
    }
  }

  /** Allocates every dataset of a new store in `f`, stamps its attributes and flushes. */
  static #layout(
    path: string,
    f: H5File,
    s: Required<H5StoreSettings>,
    opts: H5WriterOptions,
  ): H5Store {
    const N = s.n, T = s.tokens, C = s.chunkRows;
    const make = (name: string, rowShape: number[], dtype: string, empty: ArrayLike<unknown>) => {
      // h5wasm wants data matching the shape, so create empty and grow once to N (never again).
      const d = f.create_dataset({
        name,
        data: empty as Float32Array,
        shape: [0, ...rowShape],
        maxshape: [N, ...rowShape],
        chunks: [C, ...rowShape],
        dtype,
      });
      d.resize([N, ...rowShape]);
      return d;
    };
    const emb = s.dtype === "f16"
      ? make("embeds", embedsRowShape(s), "<H", new Uint16Array(0))
      : make("embeds", embedsRowShape(s), "<f", new Float32Array(0));
    if (s.dtype === "f16") emb.create_attribute("encoding", "float16-bits");
    for (const name of ["input_ids", "token_type_ids", "attention_mask"]) {
      make(name, [T], "<i", new Int32Array(0));
    }
    const lw = s.labelWidth === 1 ? [] : [s.labelWidth];
    if (s.labelType === "int64") make("labels", lw, "<q", new BigInt64Array(0));
    else make("labels", lw, "<f", new Float32Array(0));
    make("idx", [], "<q", new BigInt64Array(0));
    // Allocated whole (a block's hashes are written when its last row is): see chunk_hashes.ts.
    const blocks = Math.ceil(N / C);
    const h = f.create_dataset({
      name: CHUNK_HASHES,
      data: new BigInt64Array(blocks * HASHED.length),
      shape: [blocks, HASHED.length],
      dtype: "<q",
    });
    h.create_attribute("rows", C, null, "<q");
    h.create_attribute("datasets", HASHED.join(" "));
    h.create_attribute("hash", "sha256 of the block's rows as stored, first 8 bytes as <i8");
    const attrs: Record<string, string | number> = {
      ...s.attrs,
      layout: s.layout,
      dtype: s.dtype,
      max_seq_length: s.tokens,
      num_layers: s.layers,
      hidden_size: s.hidden,
      label_type: s.labelType,
      format: "bertvision-activations/1",
    };
    for (const [k, v] of Object.entries(attrs)) {
      if (typeof v === "number" && Number.isInteger(v)) f.create_attribute(k, v, null, "<q");
      else f.create_attribute(k, v);
    }
    f.flush();
    recordAdapter(f, opts.adapter);
    return new H5Store(path, s, f, 0, opts);
  }

  /**
   * Reopens an interrupted store to continue it. Its {@linkcode rowsDone} says where to
   * continue. Throws when `path` has no sidecar, when the sidecar's settings differ from
   * `expected` ("PATH was made with other settings (key: stored → asked; …)"), or when the HDF5
   * file cannot be reopened.
   */
  static async openForResume(
    path: string,
    expected: H5StoreSettings,
    opts: H5WriterOptions = {},
  ): Promise<H5Store> {
    const want = normalise(expected, path);
    await refuseDirectory(path);
    const sp = statePath(path);
    regularFileExists(sp, { what: "sidecar" }); // a FIFO there would block the read
    let state: State;
    try {
      state = JSON.parse(await Deno.readTextFile(sp));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        // No sidecar (lost, or the process died before its first one): the file says itself
        // what it holds and how far it got, when it is one of ours.
        state = await stateFromFile(path, sp);
      } else {
        throw new InputError(
          `${sp}: unreadable (${(e as Error).message}); delete it and ${path}, then rerun`,
          { file: sp, cause: e },
        );
      }
    }
    if (typeof state !== "object" || state === null || state.format !== STATE_FORMAT) {
      throw new InputError(`${sp}: not a ${STATE_FORMAT} file; delete it and ${path}, then rerun`, {
        file: sp,
      });
    }
    if (!state.settings) {
      throw new InputError(`${sp}: not a ${STATE_FORMAT} file; delete it and ${path}, then rerun`, {
        file: sp,
      });
    }
    const diff = storeSettingsDiff(normalise(state.settings, sp), want, undefined, opts.defaults);
    if (diff.length && opts.overwrite) {
      // The file first: a kill between leaves a sidecar without its file, which a rerun
      // creates anew, never the old complete file looking valid without its sidecar.
      await Deno.remove(path);
      await Deno.remove(sp).catch(() => {});
      return await H5Store.create(path, expected, opts);
    }
    if (diff.length) {
      const fix = "choose another --out, or --overwrite to replace it";
      throw settingsMismatch(path, diff, opts.fix?.(diff) ?? fix);
    }
    const rowsDone = checkedRowsDone(state, want.n, sp);
    // Our own --out with its sidecar: a capture killed before HDF5 wrote its header.
    await assertHdf5(
      path,
      `it is corrupt or something else — delete it (and ${sp}) and rerun the capture, or ` +
        `choose another --out`,
    );
    // The OS says best why a file cannot be written (read-only file or file system).
    await Deno.open(path, { read: true, write: true }).then((h) => h.close(), (e) => {
      throw new InputError(`${path}: cannot open it for writing (${(e as Error).message})`, {
        file: path,
        cause: e,
      });
    });
    await h5Ready();
    const f = openH5(path, "a");
    let store: H5Store;
    try {
      store = new H5Store(path, want, f, rowsDone, opts);
    } catch (e) {
      try {
        f.close();
      } catch { /* the error at hand says more */ }
      throw e;
    }
    const shape = store.#ds.embeds.shape ?? [];
    const wantShape = [want.n, ...embedsRowShape(want)];
    if (shape.join() !== wantShape.join()) {
      f.close();
      throw new InputError(
        `${path}: embeds has shape [${shape}] but ${sp} says [${wantShape}]; delete both and rerun`,
        { file: path },
      );
    }
    h5Do(path, "record its adapter", () => recordAdapter(f, opts.adapter), "is its disk full?");
    return store;
  }

  /** Resumes `path` if it exists (same settings required), else creates it. */
  static async openOrCreate(
    path: string,
    settings: H5StoreSettings,
    opts: H5WriterOptions = {},
  ): Promise<H5Store> {
    return (await exists(path))
      ? await H5Store.openForResume(path, settings, opts)
      : await H5Store.create(path, settings, opts);
  }

  /**
   * Writes `count` consecutive rows starting at `start` (which must be {@linkcode rowsWritten}),
   * flushing and updating the sidecar every `flushEveryRows` rows. An f16 store takes `embeds`
   * as float32 values (rounded here) or as half bit patterns in a Uint16Array (written as
   * given, no host conversion); an f32 store refuses half bits.
   */
  async writeRows(start: number, rows: H5Rows): Promise<void> {
    const f = this.#file;
    if (!f) throw new Error(`${this.path}: store is closed`);
    const s = this.settings;
    if (start !== this.#rowsWritten) {
      throw new Error(
        `${this.path}: writeRows(${start}) out of order; rows are written in order and the next ` +
          `is ${this.#rowsWritten}`,
      );
    }
    const halfBits = rows.embeds instanceof Uint16Array;
    if (halfBits && s.dtype !== "f16") {
      throw new Error(
        `${this.path}: embeds given as half bits (Uint16Array) to a ${s.dtype} store; pass ` +
          `float32 values`,
      );
    }
    const rowSize = prod(embedsRowShape(s));
    const count = rows.embeds.length / rowSize;
    if (!Number.isInteger(count) || count === 0) {
      throw new Error(
        `${this.path}: embeds has ${rows.embeds.length} values, not a positive multiple of ` +
          `${rowSize} (one row: [${embedsRowShape(s)}])`,
      );
    }
    if (start + count > s.n) {
      throw new Error(`${this.path}: rows ${start}..${start + count} exceed the store's ${s.n}`);
    }
    const T = s.tokens;
    const r: [number, number][] = [[start, start + count]];
    const ids = toInt32(rows.inputIds, count * T, "inputIds");
    const types = toInt32(rows.tokenTypeIds, count * T, "tokenTypeIds");
    const mask = toInt32(rows.attentionMask, count * T, "attentionMask");
    const nl = count * s.labelWidth;
    let labels: Float32Array | BigInt64Array;
    if (s.labelType === "int64") labels = toI64(rows.labels, nl, "labels");
    else {
      if (rows.labels.length !== nl) {
        throw new Error(`writeRows: labels has ${rows.labels.length} values, expected ${nl}`);
      }
      labels = Float32Array.from(rows.labels as ArrayLike<number>);
    }
    const idx = toI64(rows.idx, count, "idx");
    const e = rows.embeds;
    const embeds = s.dtype === "f16" && !halfBits ? f32ToF16Bits(e) : e;
    this.#ds.embeds.write_slice(r, embeds);
    this.#ds.input_ids.write_slice(r, ids);
    this.#ds.token_type_ids.write_slice(r, types);
    this.#ds.attention_mask.write_slice(r, mask);
    this.#ds.labels.write_slice(r, labels);
    this.#ds.idx.write_slice(r, idx);
    const raw: RawRows = {
      embeds,
      input_ids: ids,
      token_type_ids: types,
      attention_mask: mask,
      labels,
      idx,
    };
    for (const [block, h] of this.#hasher?.add(start, raw) ?? []) {
      this.#ds[CHUNK_HASHES].write_slice([[block, block + 1]], h);
    }
    this.#rowsWritten += count;
    if (
      this.#rowsWritten === s.n ||
      Math.floor(this.#rowsWritten / this.#flushEvery) >
        Math.floor(this.#rowsFlushed / this.#flushEvery)
    ) await this.flush();
  }

  /**
   * Flushes the HDF5 file, records the rows written in its `rows_complete` attribute (flushed
   * again), then in the sidecar.
   */
  async flush(): Promise<void> {
    const f = this.#file;
    if (!f) return;
    h5Do(this.path, "flush it", () => {
      f.flush();
      setIntAttr(f, "rows_complete", this.#rowsWritten);
      f.flush();
    }, "is its disk full?");
    this.#rowsFlushed = this.#rowsWritten;
    await this.#saveState(false);
  }

  /**
   * Flushes, stamps `rows_complete` on the file and, when every row is in, the completion
   * marker (`fingerprint`, then `complete`: written last), and closes it. Idempotent.
   */
  async close(): Promise<void> {
    const f = this.#file;
    if (!f) return;
    const complete = this.#rowsWritten === this.settings.n;
    // Every step can be redone: a close killed between any two of them (kill hooks `close:*`)
    // is finished by a rerun's close (attributes are replaced, never created over).
    h5Do(this.path, "close it", () => {
      f.flush();
      setIntAttr(f, "rows_complete", this.#rowsWritten);
      f.flush();
      exitIfAsked("close", "rows_complete");
      if (complete && !("complete" in f.attrs)) {
        setStrAttr(f, "fingerprint", storeFingerprint(this.settings));
        f.flush();
        exitIfAsked("close", "fingerprint");
        setIntAttr(f, "complete", 1); // the marker, last
        f.flush();
        exitIfAsked("close", "complete");
      }
      f.close();
    }, "is its disk full?");
    this.#rowsFlushed = this.#rowsWritten;
    this.#file = null;
    exitIfAsked("close", "closed");
    await this.#saveState(complete);
  }

  async #saveState(complete: boolean): Promise<void> {
    await saveState(this.path, this.settings, this.#rowsFlushed, complete);
  }
}
