/**
 * The HDF5 activation store: BERT's L+1 hidden states per example, in BERTVision's layout, so
 * the adapter-pooler models train from disk by streaming batches.
 *
 * Datasets (N examples, T = max_seq_length tokens, H features, L+1 layers):
 * - `embeds`: [N, L+1, T, H] (layout "full", BERTVision's) or [N, L+1, H] (layout "cls": the
 *   [CLS] token only). dtype "f32" is `<f4`; dtype "f16" stores IEEE half bit patterns in a
 *   `<u2` dataset with attribute `encoding = "float16-bits"` (h5wasm 0.10.3 cannot write
 *   2-byte floats; numpy reads them with `.view(numpy.float16)`), decoded here transparently.
 * - `input_ids`, `token_type_ids`, `attention_mask`: [N, T] int32.
 * - `labels`: [N] (or [N, W]) int64 for classification / float32 for regression.
 * - `idx`: [N] int64, the example (or SQuAD feature) index.
 * All are chunked along N by `chunkRows` and allocated at creation, so writing rows never
 * changes the file's structure.
 *
 * Resumability: rows are written in order; after every `flushEveryRows` rows the HDF5 file is
 * flushed, its attribute `rows_complete` set to the rows now on disk, and then a sidecar
 * `FILE.state.json` (settings + rows done) is replaced atomically. Both only ever claim rows that
 * reached the file before them, so after a kill -9 between writes,
 * {@linkcode H5Store.openForResume} reopens the file in "a" mode and continues from there (from
 * `rows_complete` when the sidecar is gone); rows past the claim are simply written again.
 *
 * Completion is explicit: the attributes `fingerprint` (a hash of the store's settings and
 * attributes: the model's weights hash and the inputs' hash among them) and then `complete = 1`
 * are written last, when every row is in (no time stamp: a resumed store equals an
 * uninterrupted one). A store without them is incomplete,
 * sidecar or not; readers here refuse to treat it as whole, and so should h5py users:
 * `assert f.attrs.get("complete") == 1` before reading, or read only `f.attrs["rows_complete"]`
 * rows. A foreign file (no `format` attribute: not written here) is taken as it is.
 *
 * The attribute `adapter` names the device(s) that computed the rows (`H5WriterOptions.adapter`):
 * information, not a setting (not in the fingerprint, not compared on resume). A set of shards
 * of one capture reads through the same interface ({@linkcode StoreReader}, data/shard_set.ts).
 * @module
 */

import type H5Wasm from "h5wasm/node";
import { f16BitsToF32, f32ToF16Bits } from "./half.ts";
import { InputError, preview } from "./errors.ts";
import { createHash } from "node:crypto";

type H5File = InstanceType<typeof H5Wasm.File>;
type H5Dataset = InstanceType<typeof H5Wasm.Dataset>;

/** h5wasm, loaded by {@linkcode h5Ready} (every use of it comes after). */
let h5wasm: typeof H5Wasm;

/** What a store holds; a resumed run must ask for exactly the same. */
export interface H5StoreSettings {
  /** Number of rows (examples or SQuAD features). */
  n: number;
  /** Hidden states per row: L + 1 (embedding output + every encoder layer). */
  layers: number;
  /** Tokens per row: max_seq_length. */
  tokens: number;
  /** Features per token: hidden size. */
  hidden: number;
  /** "full": every token ([N, L+1, T, H], BERTVision's); "cls": [CLS] only ([N, L+1, H]). */
  layout: "cls" | "full";
  /** "f32", or "f16" (half the size; values rounded to nearest float16). */
  dtype: "f32" | "f16";
  /** "int64" class ids (default) or "float32" regression targets (STS-B). */
  labelType?: "int64" | "float32";
  /** Labels per row; 1 (default) gives `labels` [N], W > 1 gives [N, W] (SQuAD start/end). */
  labelWidth?: number;
  /**
   * Rows per HDF5 chunk along N. Default: as many as fit in 1 MiB of embeds (HDF5's default
   * chunk cache), at least 1, so a shuffled read of one row never decodes a huge chunk.
   */
  chunkRows?: number;
  /** Stored as file attributes: model_id, weights_hash, task, split, ... */
  attrs?: Record<string, string | number>;
}

/** Writer-only knobs that do not change the file's content. */
export interface H5WriterOptions {
  /** Rows between flush + sidecar update. Default: the multiple of chunkRows nearest 256. */
  flushEveryRows?: number;
  /**
   * Resuming a store made with other settings replaces it (file and sidecar) instead of
   * refusing (`--overwrite`).
   */
  overwrite?: boolean;
  /**
   * The device computing the rows (e.g. "NVIDIA H100 80GB HBM3"), recorded in the attribute
   * `adapter`. Not a setting (not in the fingerprint, not compared on resume): a store resumed
   * on another device lists both, separated by "; ".
   */
  adapter?: string;
}

/** One block of consecutive rows (`count` rows; arrays are row-major). */
export interface H5Rows {
  /**
   * count × L+1 × (T ×) H values: float32 values (either dtype; an f16 store rounds them to
   * nearest even on the host), or, for an f16 store only, a Uint16Array of IEEE half bit
   * patterns, written as they are (e.g. converted on the GPU by kernels/half.ts).
   */
  embeds: Float32Array | Uint16Array;
  inputIds: Int32Array | ArrayLike<number>;
  tokenTypeIds: Int32Array | ArrayLike<number>;
  attentionMask: Int32Array | ArrayLike<number>;
  /** count × labelWidth values. */
  labels: ArrayLike<number> | BigInt64Array;
  idx: ArrayLike<number> | BigInt64Array;
}

/** Rows as read back: numbers, f16 decoded to float32. */
export interface H5ReadRows {
  embeds: Float32Array;
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  /** Int32Array for int64 class labels, Float32Array for regression. */
  labels: Int32Array | Float32Array;
  /** Example indices (exact up to 2^53). */
  idx: Float64Array;
}

/** Values per row in each of {@linkcode H5ReadRows}' arrays (but `idx`, one). */
export interface RowWidths {
  /** Hidden-state values: layers × tokens × hidden (full layout) or layers × hidden (cls). */
  embeds: number;
  /** Tokens: `inputIds`, `tokenTypeIds` and `attentionMask`. */
  tokens: number;
  /** Label values. */
  labels: number;
}

/** Each row's widths for a store of this shape and label width. */
export function rowWidths(shape: H5Reader["shape"], labelWidth: number): RowWidths {
  const s = shape;
  const embeds = s.layout === "full" ? s.layers * s.tokens * s.hidden : s.layers * s.hidden;
  return { embeds, tokens: s.tokens, labels: labelWidth };
}

/** `n` zeroed rows, with labels of `like`'s type: the target of a read in another order. */
export function emptyRows(n: number, w: RowWidths, like: H5ReadRows): H5ReadRows {
  return {
    embeds: new Float32Array(n * w.embeds),
    inputIds: new Int32Array(n * w.tokens),
    tokenTypeIds: new Int32Array(n * w.tokens),
    attentionMask: new Int32Array(n * w.tokens),
    labels: like.labels instanceof Int32Array
      ? new Int32Array(n * w.labels)
      : new Float32Array(n * w.labels),
    idx: new Float64Array(n),
  };
}

/** Copies row `src` of `from` to row `dst` of `to`. */
export function copyRow(
  to: H5ReadRows,
  dst: number,
  from: H5ReadRows,
  src: number,
  w: RowWidths,
): void {
  const put = <A extends Float32Array | Int32Array>(a: A, b: A, k: number) =>
    a.set(b.subarray(src * k, (src + 1) * k) as never, dst * k);
  put(to.embeds, from.embeds, w.embeds);
  put(to.inputIds, from.inputIds, w.tokens);
  put(to.tokenTypeIds, from.tokenTypeIds, w.tokens);
  put(to.attentionMask, from.attentionMask, w.tokens);
  put(to.labels, from.labels, w.labels);
  to.idx[dst] = from.idx[src];
}

const STATE_FORMAT = "bertvision-h5-state/1";
const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

interface State {
  format: string;
  settings: Required<H5StoreSettings>;
  rowsDone: number;
  complete: boolean;
  updatedAt: string;
}

/** The sidecar path of a store. */
export function statePath(path: string): string {
  return `${path}.state.json`;
}

function embedsRowShape(s: H5StoreSettings): number[] {
  return s.layout === "full" ? [s.layers, s.tokens, s.hidden] : [s.layers, s.hidden];
}

function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** Fills defaults and checks every field, naming the bad one. */
function normalise(s: H5StoreSettings, where: string): Required<H5StoreSettings> {
  if (typeof s !== "object" || s === null) {
    throw new InputError(`${where}: settings must be an object, got ${preview(s)}`);
  }
  for (const k of ["n", "layers", "tokens", "hidden"] as const) {
    if (!Number.isInteger(s[k]) || s[k] <= 0) {
      throw new InputError(
        `${where}: setting ${k} must be a positive integer, got ${preview(s[k])}`,
      );
    }
  }
  if (s.layout !== "cls" && s.layout !== "full") {
    throw new InputError(`${where}: layout must be "cls" or "full", got ${preview(s.layout)}`);
  }
  if (s.dtype !== "f32" && s.dtype !== "f16") {
    throw new InputError(`${where}: dtype must be "f32" or "f16", got ${preview(s.dtype)}`);
  }
  const labelType = s.labelType ?? "int64";
  if (labelType !== "int64" && labelType !== "float32") {
    throw new InputError(
      `${where}: labelType must be "int64" or "float32", got ${preview(labelType)}`,
    );
  }
  const labelWidth = s.labelWidth ?? 1;
  const rowBytes = prod(embedsRowShape(s)) * (s.dtype === "f16" ? 2 : 4);
  const chunkRows = s.chunkRows ?? Math.max(1, Math.min(s.n, Math.floor((1 << 20) / rowBytes)));
  for (const [k, v] of [["labelWidth", labelWidth], ["chunkRows", chunkRows]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new InputError(`${where}: setting ${k} must be a positive integer, got ${preview(v)}`);
    }
  }
  const attrs: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(s.attrs ?? {})) {
    if (typeof v !== "string" && typeof v !== "number") {
      throw new InputError(`${where}: attribute ${k} must be a string or number, got ${typeof v}`);
    }
    // defineProperty: a key such as "__proto__" is kept as data, not taken as the prototype.
    Object.defineProperty(attrs, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return {
    n: s.n,
    layers: s.layers,
    tokens: s.tokens,
    hidden: s.hidden,
    layout: s.layout,
    dtype: s.dtype,
    labelType,
    labelWidth,
    chunkRows: Math.min(chunkRows, s.n),
    attrs,
  };
}

/** A sidecar's `rowsDone`, checked to be a row count of a store of `n` rows. */
function checkedRowsDone(state: { rowsDone?: unknown }, n: number, sp: string): number {
  const r = state.rowsDone;
  if (!Number.isSafeInteger(r) || (r as number) < 0 || (r as number) > n) {
    throw new InputError(
      `${sp}: rowsDone is ${preview(r)}, not a row count of 0..${n}; delete it and its store, ` +
        `then rerun`,
      { file: sp },
    );
  }
  return r as number;
}

/** Attributes H5Store writes itself (the rest are the caller's `attrs`). */
const OWN_ATTRS = new Set([
  "layout",
  "dtype",
  "max_seq_length",
  "num_layers",
  "hidden_size",
  "label_type",
  "format",
  "rows_complete",
  "complete",
  "fingerprint",
]);

/**
 * Attributes that describe who wrote a store rather than what it holds (not settings, not in
 * the fingerprint): `adapter`, the device(s) that computed its rows.
 */
export const INFO_ATTRS: ReadonlySet<string> = new Set(["adapter"]);

/**
 * The settings a store was made with, read back from an open reader: its shapes, dtype, label
 * layout, chunking and the caller's attributes (every attribute but the store's own and
 * {@linkcode INFO_ATTRS}).
 */
export function storeSettingsOf(r: H5Reader): Required<H5StoreSettings> {
  const attrs = Object.fromEntries(
    Object.entries(r.attrs).filter(([k]) => !OWN_ATTRS.has(k) && !INFO_ATTRS.has(k)),
  );
  return normalise({
    n: r.shape.n,
    layers: r.shape.layers,
    tokens: r.shape.tokens,
    hidden: r.shape.hidden,
    layout: r.shape.layout,
    dtype: r.dtype,
    labelType: r.attrs.label_type as "int64" | "float32",
    labelWidth: r.labelWidth,
    chunkRows: r.chunkRows,
    attrs,
  }, r.path);
}

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

/** Sets an int64 attribute of the file (replacing it). */
function setIntAttr(f: H5File, name: string, value: number): void {
  if (name in f.attrs) f.delete_attribute(name);
  f.create_attribute(name, value, null, "<q");
}

/**
 * The fingerprint of a store: the first 16 hex digits of a sha256 over its settings and
 * attributes (the model's `weights_hash` and the rows' `inputs_hash` among them), so what a
 * store holds is known from its completion marker without reading its rows again.
 */
export function storeFingerprint(s: Readonly<Required<H5StoreSettings>>): string {
  const attrs = Object.fromEntries(Object.entries(s.attrs).sort(([a], [b]) => a < b ? -1 : 1));
  const key = JSON.stringify({
    n: s.n,
    layers: s.layers,
    tokens: s.tokens,
    hidden: s.hidden,
    layout: s.layout,
    dtype: s.dtype,
    labelType: s.labelType,
    labelWidth: s.labelWidth,
    attrs,
  });
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/** Human-readable differences between two settings, empty when equal. */
function diffSettings(want: Required<H5StoreSettings>, have: Required<H5StoreSettings>): string[] {
  const out: string[] = [];
  for (const k of Object.keys(want) as (keyof H5StoreSettings)[]) {
    if (k === "attrs") continue;
    if (want[k] !== have[k]) {
      out.push(`${k} ${preview(have[k])} ≠ ${preview(want[k])}`);
    }
  }
  const keys = new Set([...Object.keys(want.attrs), ...Object.keys(have.attrs)]);
  // hasOwn: "constructor" or "toString" are attribute names here, not Object.prototype's.
  const get = (a: Record<string, string | number>, k: string) =>
    Object.hasOwn(a, k) ? a[k] : undefined;
  for (const k of [...keys].sort()) {
    if (get(want.attrs, k) !== get(have.attrs, k)) {
      out.push(
        `attr ${k.length > 60 ? k.slice(0, 59) + "…" : k} ${preview(get(have.attrs, k))} ≠ ${
          preview(get(want.attrs, k))
        }`,
      );
    }
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Throws an InputError naming `path` when it is a directory (an `--out` or `--h5` mistake). */
async function refuseDirectory(path: string): Promise<void> {
  if ((await Deno.stat(path).catch(() => null))?.isDirectory) {
    throw new InputError(
      `${path}: is a directory, not an HDF5 file; name the file itself (e.g. ${
        path.replace(/\/+$/, "")
      }/train.h5)`,
      { file: path },
    );
  }
}

/** Throws naming `path` unless it starts with the HDF5 signature (at 0, 512, 1024, ...). */
async function assertHdf5(path: string): Promise<void> {
  await refuseDirectory(path);
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: no such file`, { file: path, cause: e });
    }
    throw new InputError(`${path}: cannot open it (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  try {
    const size = (await f.stat()).size;
    const buf = new Uint8Array(8);
    for (let off = 0; off + 8 <= size; off = off === 0 ? 512 : off * 2) {
      await f.seek(off, Deno.SeekMode.Start);
      let got = 0;
      while (got < 8) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      if (got === 8 && HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return;
      if (off >= 1 << 20) break;
    }
  } finally {
    f.close();
  }
  throw new InputError(
    `${path}: not an HDF5 file (no HDF5 signature); it is corrupt or something else — delete it ` +
      `and rerun the capture`,
    { file: path },
  );
}

/**
 * What h5wasm printed (its `err`, bound to console.error when it loads): libhdf5 aborting on a
 * corrupt file says `Aborted(...)` there before it throws. Kept (the last few lines) rather than
 * printed: the error that follows names the file.
 */
const h5Printed: string[] = [];

/**
 * Loads h5wasm once and switches HDF5's error reporting from printing its error stack on stderr
 * (dozens of HDF5-DIAG lines, after which h5wasm carries on with a negative id or unread data)
 * to throwing it as a JS Error, which {@linkcode h5Do} turns into one line naming the file.
 */
async function h5Ready(): Promise<void> {
  if (h5wasm) return;
  const printErr = console.error;
  console.error = (...a: unknown[]) => {
    h5Printed.push(a.join(" "));
    if (h5Printed.length > 8) h5Printed.shift();
  };
  let mod: typeof H5Wasm;
  try {
    mod = (await import("h5wasm/node")).default;
  } finally {
    console.error = printErr;
  }
  const m = await mod.ready;
  (m as unknown as { activate_throwing_error_handler(): number })
    .activate_throwing_error_handler();
  h5wasm = mod;
}

/**
 * The gist of an h5wasm failure: the OS's message when HDF5 quotes one (a full disk), else the
 * innermost entry of HDF5's error stack (the cause), else the first line of the message.
 */
function h5Summary(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const os = /error message = '([^']*)'/.exec(msg)?.[1];
  if (os) return os;
  // Stack entries read "  #003: <source> line N in FUNC(): what went wrong".
  const entries = [...msg.matchAll(/#\d+: .* in [\w.]+\(\): (.*)$/gm)].map((m) => m[1].trim());
  const gist = entries.at(-1) ?? msg.split("\n").find((l) => l.trim() !== "") ?? "unknown error";
  return gist.length > 200 ? gist.slice(0, 199) + "…" : gist;
}

/**
 * Runs an h5wasm call for `path`; a failure of HDF5 (or of h5wasm on a corrupt file) becomes one
 * InputError line naming the file and `what` was being done. Our own InputErrors pass through.
 */
function h5Do<T>(path: string, what: string, fn: () => T, advice?: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(
      `${path}: HDF5 could not ${what} (${h5Summary(e)}); ` +
        (advice ?? "the file is corrupt (e.g. a capture killed mid-write) — capture it again"),
      { file: path, cause: e },
    );
  }
}

/**
 * Makes a writer's dataset reads and writes, and its file's flush, fail with one line naming the
 * file (a full disk: `HDF5 could not write "embeds" (No space left on device)`).
 */
function guardWrites(path: string, file: H5File, ds: Record<string, H5Dataset>): void {
  const full = "is there space left on its disk?";
  for (const [name, d] of Object.entries(ds)) {
    const write = d.write_slice.bind(d);
    d.write_slice = (ranges, data) =>
      h5Do(path, `write "${name}"`, () => write(ranges, data), full);
  }
  const flush = file.flush.bind(file);
  file.flush = () => h5Do(path, "flush it to disk", flush, full);
}

function openH5(path: string, mode: "r" | "a" | "w"): H5File {
  const failed = (why: string) =>
    new InputError(
      mode === "w"
        ? `${path}: HDF5 could not create it${
          why ? ` (${why})` : ""
        }; is its folder writable and its disk not full?`
        : `${path}: HDF5 could not open it (mode "${mode}"${
          why ? `: ${why}` : ""
        }): corrupt (e.g. killed mid-flush) or unreadable — delete it (and ${
          statePath(path)
        }) and rerun`,
      { file: path },
    );
  let f: H5File;
  try {
    f = new h5wasm.File(path, mode);
  } catch (e) {
    throw failed(h5Summary(e));
  }
  // h5wasm reports a failed open as a negative id rather than throwing.
  if ((f as unknown as { file_id: bigint }).file_id < 0n) throw failed("");
  return f;
}

/**
 * Writes JSON atomically (temporary file + rename). On failure (a full disk) the temporary file
 * is removed, never left behind empty, and the error is one line naming `path`.
 */
async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new InputError(`${path}: cannot write it (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
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
 * import { H5Reader, H5Store } from "./h5_store.ts";
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
      if (!(d instanceof h5wasm.Dataset)) {
        throw new InputError(
          `${path}: dataset "${name}" is missing; not a complete store — delete it and rerun`,
          { file: path },
        );
      }
      this.#ds[name] = d;
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
   * `expected` ("exists with other settings: …"), or when the HDF5 file cannot be reopened.
   */
  static async openForResume(
    path: string,
    expected: H5StoreSettings,
    opts: H5WriterOptions = {},
  ): Promise<H5Store> {
    const want = normalise(expected, path);
    await refuseDirectory(path);
    const sp = statePath(path);
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
    const diff = diffSettings(want, normalise(state.settings, sp));
    if (diff.length && opts.overwrite) {
      await Deno.remove(sp).catch(() => {});
      await Deno.remove(path);
      return await H5Store.create(path, expected, opts);
    }
    if (diff.length) {
      throw new InputError(
        `${path} exists with other settings: ${diff.join(", ")} (stored ≠ requested); choose ` +
          `another --out, or --overwrite to replace it`,
        { file: path },
      );
    }
    const rowsDone = checkedRowsDone(state, want.n, sp);
    await assertHdf5(path);
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
    this.#ds.embeds.write_slice(r, s.dtype === "f16" && !halfBits ? f32ToF16Bits(e) : e);
    this.#ds.input_ids.write_slice(r, ids);
    this.#ds.token_type_ids.write_slice(r, types);
    this.#ds.attention_mask.write_slice(r, mask);
    this.#ds.labels.write_slice(r, labels);
    this.#ds.idx.write_slice(r, idx);
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
    h5Do(this.path, "close it", () => {
      f.flush();
      setIntAttr(f, "rows_complete", this.#rowsWritten);
      f.flush();
      if (complete && !("complete" in f.attrs)) {
        f.create_attribute("fingerprint", storeFingerprint(this.settings));
        f.flush();
        setIntAttr(f, "complete", 1); // the marker, last
      }
      f.close();
    }, "is its disk full?");
    this.#rowsFlushed = this.#rowsWritten;
    this.#file = null;
    await this.#saveState(complete);
  }

  async #saveState(complete: boolean): Promise<void> {
    const state: State = {
      format: STATE_FORMAT,
      settings: this.settings,
      rowsDone: this.#rowsFlushed,
      complete,
      updatedAt: new Date().toISOString(),
    };
    await writeJsonAtomic(statePath(this.path), state);
  }
}

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
  #file: H5File;
  #ds: Record<string, H5Dataset>;
  #labelWidth: number;

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
      if (!(d instanceof h5wasm.Dataset)) bad(`no dataset "${name}"`);
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
  }

  /** Opens `path` read-only; throws an InputError naming the path when it is missing, corrupt or not a store. */
  static async open(path: string): Promise<H5Reader> {
    await assertHdf5(path);
    let rowsFromState: number | null = null;
    const sp = statePath(path);
    let st: unknown;
    try {
      st = JSON.parse(await Deno.readTextFile(sp));
    } catch { /* no sidecar: a finished or foreign store */ }
    if (typeof st === "object" && st !== null && (st as State).format === STATE_FORMAT) {
      rowsFromState = checkedRowsDone(st as State, Number.MAX_SAFE_INTEGER, sp);
    }
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
    const r: [number, number][] = [[start, start + count]];
    const read = (name: string) =>
      h5Do(
        this.path,
        `read rows ${start}..${start + count} of "${name}"`,
        () => this.#ds[name].slice(r),
      );
    return {
      embeds: read("embeds") as Float32Array | Uint16Array,
      inputIds: read("input_ids") as Int32Array,
      tokenTypeIds: read("token_type_ids") as Int32Array,
      attentionMask: read("attention_mask") as Int32Array,
      labels: read("labels") as BigInt64Array | Float32Array,
      idx: read("idx") as BigInt64Array,
    };
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
    const n = indices.length;
    const widths = rowWidths(this.shape, this.#labelWidth);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => indices[a] - indices[b]);
    let out: H5ReadRows | null = null;
    for (let i = 0; i < n;) {
      let j = i + 1;
      while (j < n && indices[order[j]] <= indices[order[j - 1]] + 1) j++;
      const lo = indices[order[i]];
      const part = this.readRows(lo, indices[order[j - 1]] - lo + 1);
      out ??= emptyRows(n, widths, part);
      for (let k = i; k < j; k++) copyRow(out, order[k], part, indices[order[k]] - lo, widths);
      i = j;
    }
    if (!out) throw new Error(`${this.path}: readIndices needs at least one index`);
    return out;
  }

  /** Closes the file. */
  close(): void {
    h5Do(this.path, "close it", () => this.#file.close());
  }
}
