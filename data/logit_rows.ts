/**
 * Which rows a saved logits file holds: a record `X.rows.json` beside each `X.npy` of dev logits
 * (a fine-tuning checkpoint's, a head's), written after it, so that `deno task ensemble` can
 * refuse logits of different rows whose counts agree (a head evaluated on rows 10..41 beside
 * BERT's 0..31 of the same file: both 32 rows, both saying example 0..31).
 *
 * The record holds the data file the rows came from and the hash of all of them (the
 * `inputs_hash` of a store, `SplitRows.hash` of a split), and per row its example index
 * (`idx`: the example, or SQuAD's question) and a short hash of its token ids (padding left
 * out), plus the sha256 of the logits file it describes (a record left beside other logits is
 * not believed). {@linkcode firstRowDifference} finds the first row where two records differ.
 * Checked by train/ensemble_test.ts.
 * @module
 */
import { createHash } from "node:crypto";
import { InputError, preview } from "./errors.ts";
import { regularFileExists } from "./files.ts";
import { writeJsonAtomic } from "./output/mod.ts";

/** The `format` of a rows record. */
export const LOGIT_ROWS_FORMAT = "bertvision-logit-rows/1";

/** A rows record: what `X.rows.json` says about the logits `X.npy`. */
export interface LogitRows {
  format: string;
  /** The logits file's name (beside the record). */
  logits: string;
  /** sha256 (hex) of the logits file's bytes. */
  logitsSha256: string;
  /** Rows (the logits' first dimension). */
  rows: number;
  /** The data file the rows were made from, as the run named it (relative to the data root). */
  dataFile?: string;
  /** The hash of all the rows (ids, types, mask, labels, idx) as the store or split records it. */
  inputsHash?: string;
  /** What the rows were read from: an activation store, a stream, BERT's own rows. */
  source: string;
  /** The source's fingerprint (a store's completion fingerprint), when it has one. */
  sourceFingerprint?: string;
  /** Each row's example index (SQuAD: its question). */
  idx: number[];
  /**
   * Each row's token ids, padding (trailing 0) left out: first 8 hex digits of their sha256
   * ("?" where the source stored no token ids).
   */
  rowHashes: string[];
}

/** The record of the logits at `logitsPath`: `X.npy` → `X.rows.json`. */
export function logitRowsPath(logitsPath: string): string {
  return logitsPath.replace(/\.npy$/, "") + ".rows.json";
}

/** What {@linkcode writeLogitRows} records about the rows of a logits file. */
export interface LogitRowsSource {
  dataFile?: string;
  inputsHash?: string;
  source: string;
  sourceFingerprint?: string;
  /** Each row's example index. */
  idx: ArrayLike<number>;
  /**
   * Token ids, `tokens` per row, row-major; absent where the source stored none (the seed's
   * gen_embeds stores): the rows are then told apart by their example index alone.
   */
  ids?: Int32Array;
  tokens: number;
}

/** A row hash where the source stored no token ids: compared by example index only. */
export const UNKNOWN_TOKENS = "?";

/** The hash of one row's token ids, trailing padding (0) left out. */
function rowHash(ids: Int32Array): string {
  let end = ids.length;
  while (end > 0 && ids[end - 1] === 0) end--;
  const b = ids.subarray(0, end);
  return createHash("sha256").update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
    .digest("hex").slice(0, 8);
}

/**
 * Writes the record of the logits `logitsPath` (already written: its bytes are hashed) and
 * returns its path.
 */
export async function writeLogitRows(logitsPath: string, r: LogitRowsSource): Promise<string> {
  const n = r.idx.length;
  const ids = r.ids;
  if (ids && ids.length !== n * r.tokens) {
    throw new Error(`writeLogitRows: ${ids.length} ids for ${n} rows of ${r.tokens} tokens`);
  }
  const bytes = await Deno.readFile(logitsPath);
  const record: LogitRows = {
    format: LOGIT_ROWS_FORMAT,
    logits: logitsPath.slice(logitsPath.lastIndexOf("/") + 1),
    logitsSha256: createHash("sha256").update(bytes).digest("hex"),
    rows: n,
    ...(r.dataFile !== undefined ? { dataFile: r.dataFile } : {}),
    ...(r.inputsHash !== undefined ? { inputsHash: r.inputsHash } : {}),
    source: r.source,
    ...(r.sourceFingerprint !== undefined ? { sourceFingerprint: r.sourceFingerprint } : {}),
    idx: Array.from(r.idx),
    rowHashes: Array.from(
      { length: n },
      (_, i) => ids ? rowHash(ids.subarray(i * r.tokens, (i + 1) * r.tokens)) : UNKNOWN_TOKENS,
    ),
  };
  const path = logitRowsPath(logitsPath);
  await writeJsonAtomic(path, record);
  return path;
}

/**
 * The record of the logits `logitsPath` whose bytes are `bytes`, or null when there is none (logits
 * saved before records were). A record that is not one, or that describes other logits (another
 * sha256, another row count), is an InputError naming it.
 */
export async function readLogitRows(
  logitsPath: string,
  bytes: Uint8Array,
  rows: number,
): Promise<LogitRows | null> {
  const path = logitRowsPath(logitsPath);
  // A FIFO or device planted there would block the read: refused by stat first, naming it.
  if (!regularFileExists(path, { what: "rows record" })) return null;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new InputError(`${path}: cannot read it (${(e as Error).message})`, { file: path });
  }
  const bad = (why: string) =>
    new InputError(
      `${path}: ${why}; it cannot say which rows ${logitsPath} holds — rerun the evaluation ` +
        `that wrote them, or delete ${path} to go on unverified`,
      { file: path },
    );
  let r: LogitRows;
  try {
    r = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (typeof r !== "object" || r === null || r.format !== LOGIT_ROWS_FORMAT) {
    throw bad(`not a ${LOGIT_ROWS_FORMAT} record`);
  }
  if (
    !Array.isArray(r.idx) || !Array.isArray(r.rowHashes) || r.idx.length !== r.rows ||
    r.rowHashes.length !== r.rows || !r.idx.every((v) => Number.isSafeInteger(v)) ||
    !r.rowHashes.every((v) => typeof v === "string")
  ) {
    throw bad(`its idx and rowHashes are not ${preview(r.rows)} row entries`);
  }
  const sha = createHash("sha256").update(bytes).digest("hex");
  if (r.logitsSha256 !== sha) {
    throw bad(`it was written for other logits than ${logitsPath} (their sha256 differs)`);
  }
  if (r.rows !== rows) throw bad(`it records ${preview(r.rows)} rows, the logits hold ${rows}`);
  return r;
}

/** One row as a record says it: its example, the file it came from and its token hash. */
function describeRow(r: LogitRows, i: number): string {
  return `example ${r.idx[i]}${r.dataFile ? ` of ${r.dataFile}` : ""} (tokens ${r.rowHashes[i]})`;
}

/**
 * The first row where records `a` and `b` hold different rows (another example index, or other
 * tokens), described for an error; null when every row is the same.
 */
export function firstRowDifference(
  a: LogitRows,
  b: LogitRows,
): { row: number; a: string; b: string } | null {
  const n = Math.min(a.rows, b.rows);
  for (let i = 0; i < n; i++) {
    const ha = a.rowHashes[i], hb = b.rowHashes[i];
    const known = ha !== UNKNOWN_TOKENS && hb !== UNKNOWN_TOKENS;
    if (a.idx[i] !== b.idx[i] || (known && ha !== hb)) {
      return { row: i, a: describeRow(a, i), b: describeRow(b, i) };
    }
  }
  return a.rows === b.rows ? null : { row: n, a: `${a.rows} rows`, b: `${b.rows} rows` };
}
