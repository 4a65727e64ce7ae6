/**
 * A task split as token rows, for every stage that reads one (fine-tuning, capture, evaluation,
 * the reproduction): the path resolved from the data root or given as a file, the task's reader
 * and featurizer (GLUE examples, or SQuAD windows), labels as the activation store keeps them,
 * and a hash of everything a row holds. Plus cutting rows into BERT batches.
 *
 * Checked by train/capture_test.ts (rows equal what capture stores) and train/finetune_test.ts.
 * @module
 */
import { createHash } from "node:crypto";
import type { BertBatch } from "../model/bert.ts";
import { cacheRoot, resolveModel } from "../model/checkpoint.ts";
import { type BertTokenizerLike, loadTokenizer } from "../data/tokenize.ts";
import { takeRows } from "../data/batches.ts";
import { describeSquadWindows } from "../data/features.ts";
import { InputError } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { writeFileAtomic } from "../data/output/atomic.ts";
import { fmtBytes } from "../kernels/pool.ts";
import type { StoreReader } from "../data/h5_store.ts";
import { kindOf, type SquadAnswerRule, type Task, type TaskRows } from "../tasks/mod.ts";

/** Where a split comes from and how to cut it into rows. */
export interface RowsOptions {
  /** A split name of the task (`train`, `dev`, `dev_matched`, ...). */
  split: string;
  /** Root of the GLUE distribution layout (`D/SST-2/dev.tsv`, `D/squad/dev-v2.0.json`). */
  dataDir?: string;
  /** A split file to read instead of `dataDir/<task file>` (e.g. SQuAD's cs224n dev file). */
  dataFile?: string;
  tokenizer: BertTokenizerLike;
  /** Tokens per row. */
  maxSeqLength: number;
  /** Keep the split's first `limit` examples. */
  limit?: number;
  /** Tokenize in parallel workers loading the tokenizer of `modelDir` (`--num-workers`). */
  workers?: { modelDir: string; count: number };
  /**
   * Rows to train on: SQuAD leaves out questions whose answer text is not at its offset (as
   * run_squad.py does); evaluation keeps every question.
   */
  training?: boolean;
  /**
   * SQuAD (`--doc-stride`): overlap in tokens between consecutive windows of a context (default
   * 128, or half the context room where 128 leaves no room to advance; a value given that leaves
   * no room is an error naming the fix). Other tasks refuse it.
   */
  docStride?: number;
  /** SQuAD: "halve" the room even for a given `docStride` (re-featurizing a store's split). */
  noRoom?: "halve" | "error";
  /** SQuAD: question pieces kept (default 64; 0: the whole question). */
  maxQueryLength?: number;
  /** SQuAD: how the rows' logits become answers (kept as `squad.rule`; default run_squad.py's). */
  answerRule?: SquadAnswerRule;
}

/** Rows of one split, with where they came from. */
export interface SplitRows extends TaskRows {
  /** The split name. */
  split: string;
  /** The file read: relative to the data root, or the file name given as `dataFile`. */
  dataFile: string;
  /** The file's path as read. */
  path: string;
  /** First 16 hex digits of a sha256 over ids, types, mask, labels and idx. */
  hash: string;
}

/**
 * Called each time a split is read and tokenized (tests count tokenizations with it: one run
 * tokenizes each split once). Undefined: nothing is called.
 */
export const rowsHooks: { onTokenize?: (task: string, split: string, path: string) => void } = {};

/** Options of a {@linkcode RowsCache}. */
export interface RowsCacheOptions {
  /**
   * MiB of token rows (ids, types, mask) the cache keeps in memory; a split over what is left is
   * written to a cache file once tokenized and read back on each later ask. Default
   * `BERTVISION_ROWS_RESIDENT_MIB`, else {@linkcode ROWS_RESIDENT_MIB}.
   */
  residentMiB?: number;
  /**
   * Folder of the cache files (made on the first spill; reproduce gives `<out>/<task>/.rows`).
   * Default a temporary folder. {@linkcode RowsCache.close} removes the files and the folder.
   */
  dir?: string;
  /**
   * false: a plan that writes nothing (a dry run): a split over the budget stays in memory and
   * {@linkcode RowsCache.describe} says where it would be cached.
   */
  write?: boolean;
  /** One-line notes (a cache file found altered); default `console.error`. */
  log?: (line: string) => void;
}

/** The default resident budget of a {@linkcode RowsCache}, in MiB. */
export const ROWS_RESIDENT_MIB = 256;

/** The resident budget given, else `BERTVISION_ROWS_RESIDENT_MIB`, else the default. */
function residentBudgetMiB(given?: number): { mib: number; from: string } {
  if (given !== undefined) {
    if (!(given >= 0)) throw new RangeError(`residentMiB must be ≥ 0, got ${given}`);
    return { mib: given, from: "given" };
  }
  let env: string | undefined;
  try {
    env = Deno.env.get("BERTVISION_ROWS_RESIDENT_MIB");
  } catch { /* no env permission: the default */ }
  if (env === undefined || env === "") return { mib: ROWS_RESIDENT_MIB, from: "default" };
  const mib = Number(env);
  if (!(mib >= 0)) {
    throw new InputError(`BERTVISION_ROWS_RESIDENT_MIB must be a number of MiB ≥ 0, got "${env}"`);
  }
  return { mib, from: "BERTVISION_ROWS_RESIDENT_MIB" };
}

type TokenArrays = "inputIds" | "tokenTypeIds" | "attentionMask";

/** One split in the cache: its rows in memory, or all but the token arrays and their file. */
interface Slot {
  label: string;
  /** Bytes of the three token arrays. */
  bytes: number;
  rows?: SplitRows;
  /** Set when spilled: the rest of the rows, and the file holding ids, types and mask. */
  meta?: Omit<SplitRows, TokenArrays>;
  file?: string;
  /** The file's size as written. */
  fileBytes?: number;
  /** A dry run's: the file it would have been written to. */
  wouldBe?: string;
  /** Tokenizes the split again (an altered cache file). */
  retokenize: () => Promise<SplitRows>;
}

const MAGIC = "bertvision-rows";
const MiB = 1024 * 1024;

/**
 * The rows of one run, each split tokenized once: the command creates one, and every stage and
 * the plan it hands it to ask it for rows instead of calling {@linkcode loadRows}. Keyed by what
 * to read (task, split, file, limit, tokens per row, stride, training, and the tokenizer by the
 * hash of its files, so the starting model and its fine-tuned checkpoint, which carries the same
 * files, share rows). Once is not resident: splits fit in a budget (`residentMiB`) stay in
 * memory; a larger one (SQuAD train at 384 tokens, ~0.6 GB) has its token arrays written to a
 * cache file and read back, checked against its size and hash, on each later ask (an altered
 * file is tokenized again, with a note). {@linkcode describe} says which; {@linkcode close}
 * removes the files.
 */
export class RowsCache {
  #rows = new Map<string, Promise<Slot>>();
  #tokenizers = new Map<string, Promise<{ key: string; tokenizer: BertTokenizerLike }>>();
  #budget: { mib: number; from: string };
  #resident = 0;
  #dir?: string;
  #temp = false;
  #made?: Promise<string>;
  #write: boolean;
  #log: (line: string) => void;
  #files = new Set<string>();
  #order: Slot[] = [];
  #names = new Set<string>();

  constructor(o: RowsCacheOptions = {}) {
    this.#budget = residentBudgetMiB(o.residentMiB);
    this.#dir = o.dir?.replace(/\/+$/, "");
    this.#write = o.write ?? true;
    this.#log = o.log ?? ((l) => console.error(l));
  }

  /** The tokenizer of a model directory, loaded once, and a key naming its files' content. */
  tokenizer(modelDir: string): Promise<{ key: string; tokenizer: BertTokenizerLike }> {
    let t = this.#tokenizers.get(modelDir);
    if (!t) {
      t = (async () => {
        const h = createHash("sha256");
        for (const f of ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]) {
          // A FIFO or device there is refused, naming it, before anything opens it.
          const bytes = regularFileExists(`${modelDir}/${f}`)
            ? await Deno.readFile(`${modelDir}/${f}`).catch(() => undefined)
            : undefined;
          h.update(`${f}:${bytes?.length ?? -1}:`);
          if (bytes) h.update(bytes);
        }
        return { key: h.digest("hex").slice(0, 16), tokenizer: await loadTokenizer(modelDir) };
      })();
      this.#tokenizers.set(modelDir, t);
      t.catch(() => this.#tokenizers.delete(modelDir));
    }
    return t;
  }

  /**
   * The rows of a split as {@linkcode loadRows} makes them with the tokenizer of `modelDir`
   * (`workers` count only for how), tokenized on the first ask. The rows are shared: read-only.
   * A spilled split's token arrays are read from its cache file (fresh arrays on each ask).
   */
  async load(
    task: Task,
    modelDir: string,
    o: Omit<RowsOptions, "tokenizer" | "workers"> & { numWorkers?: number },
  ): Promise<SplitRows> {
    const tok = await this.tokenizer(modelDir);
    const key = JSON.stringify([
      task.name,
      tok.key,
      o.split,
      o.dataFile ?? null,
      o.dataFile ? null : o.dataDir?.replace(/\/+$/, "") ?? null,
      o.maxSeqLength,
      o.limit ?? null,
      !!o.training,
      o.docStride ?? null,
      o.noRoom ?? null,
      o.maxQueryLength ?? null,
      o.answerRule ?? null,
    ]);
    const p = this.#rows.get(key);
    if (p) {
      const slot = await p;
      return slot.rows ?? await this.#readBack(slot);
    }
    const { numWorkers, ...rest } = o;
    const tokenize = () =>
      loadRows(task, {
        ...rest,
        tokenizer: tok.tokenizer,
        workers: { modelDir, count: numWorkers ?? 0 },
      });
    let fresh: SplitRows | undefined;
    const slot = (async () => {
      fresh = await tokenize();
      return await this.#place(task.name, `${task.name} ${o.split}`, fresh, tokenize);
    })();
    this.#rows.set(key, slot);
    slot.catch(() => this.#rows.delete(key));
    await slot;
    return fresh!; // the asker that tokenized gets the arrays made, spilled or not
  }

  /** Keeps tokenized rows in memory within the budget, else writes their token arrays out. */
  async #place(task: string, label: string, rows: SplitRows, retokenize: () => Promise<SplitRows>) {
    const bytes = rows.inputIds.byteLength + rows.tokenTypeIds.byteLength +
      rows.attentionMask.byteLength;
    const slot: Slot = { label, bytes, retokenize };
    if (bytes <= this.#budget.mib * MiB - this.#resident) {
      slot.rows = rows;
      this.#resident += bytes;
    } else if (!this.#write) {
      slot.rows = rows; // a plan writes nothing: it says where the file would go
      slot.wouldBe = `${this.#dir ?? "(a temporary folder)"}/${this.#fileName(task, rows)}`;
    } else {
      const file = `${await this.#folder()}/${this.#fileName(task, rows)}`;
      this.#files.add(file);
      slot.fileBytes = await writeSpill(file, rows);
      const { inputIds: _i, tokenTypeIds: _t, attentionMask: _m, ...meta } = rows;
      slot.meta = meta;
      slot.file = file;
    }
    this.#order.push(slot);
    return slot;
  }

  /** A cache file name of its own for a split: `<task>_<split>_<seq>[-k].bin`. */
  #fileName(task: string, rows: SplitRows): string {
    const base = `${task}_${rows.split}_${rows.seq}`.replace(/[^\w.-]+/g, "_");
    for (let k = 1;; k++) {
      const name = `${base}${k > 1 ? `-${k}` : ""}.bin`;
      if (!this.#names.has(name)) return this.#names.add(name), name;
    }
  }

  /** The cache files' folder, made on first use (a temporary one when none was given). */
  #folder(): Promise<string> {
    this.#made ??= (async () => {
      if (this.#dir === undefined) {
        this.#dir = await Deno.makeTempDir({ prefix: "bertvision-rows-" });
        this.#temp = true;
      } else await Deno.mkdir(this.#dir, { recursive: true });
      return this.#dir;
    })();
    return this.#made;
  }

  /** A spilled split's rows from its file; an altered file is not trusted: tokenized again. */
  async #readBack(slot: Slot): Promise<SplitRows> {
    const meta = slot.meta!, file = slot.file!;
    const got = await readSpill(file, meta, slot.fileBytes!);
    if (typeof got !== "string") return got;
    this.#log(`rows: ${file}: ${got}; tokenizing ${slot.label} again`);
    const rows = await slot.retokenize();
    if (rows.hash !== meta.hash) {
      throw new Error(`${slot.label} tokenized again differs from its first tokenization`);
    }
    slot.fileBytes = await writeSpill(file, rows);
    return rows;
  }

  /**
   * Where each split's rows are, for a plan: `rows: sst2 train 1.2 MiB in memory; squad train
   * 600 MiB cached in …/.rows/train_384.bin (over the 256 MiB budget)`; a dry run says
   * "would be cached in".
   */
  describe(): string {
    const b = this.#budget;
    const budget = `${b.mib} MiB budget${
      b.from === "default" || b.from === "given" ? "" : `, ${b.from}`
    }`;
    if (!this.#order.length) return `rows: none read yet (${budget})`;
    const parts = this.#order.map((s) =>
      s.file
        ? `${s.label} ${fmtBytes(s.bytes)} cached in ${s.file} (over the ${budget})`
        : s.wouldBe
        ? `${s.label} ${fmtBytes(s.bytes)} would be cached in ${s.wouldBe} (over the ${budget})`
        : `${s.label} ${fmtBytes(s.bytes)} in memory`
    );
    return `rows: ${parts.join("; ")}` +
      (parts.every((p) => p.endsWith("in memory")) ? ` (${budget})` : "");
  }

  /** Removes the cache files written (and their folder when empty or temporary); forgets all. */
  async close(): Promise<void> {
    for (const f of this.#files) await Deno.remove(f).catch(() => {});
    this.#files.clear();
    if (this.#made) {
      const dir = await this.#made.catch(() => undefined);
      if (dir) await Deno.remove(dir, { recursive: this.#temp }).catch(() => {});
      this.#made = undefined;
      if (this.#temp) this.#dir = undefined;
      this.#temp = false;
    }
    this.#rows.clear();
    this.#order = [];
    this.#names.clear();
    this.#resident = 0;
  }
}

/**
 * Writes a split's token arrays to `file`: a JSON header line (padded to 64 bytes, naming n,
 * seq and the rows' hash) and then ids, types and mask as raw little-endian int32. Returns the
 * file's size.
 */
async function writeSpill(file: string, rows: SplitRows): Promise<number> {
  const head = JSON.stringify({
    format: MAGIC,
    version: 1,
    n: rows.n,
    seq: rows.seq,
    hash: rows.hash,
    endian: "little",
  });
  const headLen = Math.ceil((head.length + 1) / 64) * 64;
  const arrays = [rows.inputIds, rows.tokenTypeIds, rows.attentionMask];
  const out = new Uint8Array(headLen + arrays.reduce((a, x) => a + x.byteLength, 0));
  out.set(new TextEncoder().encode(head.padEnd(headLen - 1, " ") + "\n"));
  let off = headLen;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), off);
    off += a.byteLength;
  }
  await writeFileAtomic(file, out);
  return out.byteLength;
}

/** A split's rows from its cache file, or why the file is not the one written. */
async function readSpill(
  file: string,
  meta: Omit<SplitRows, TokenArrays>,
  size: number,
): Promise<SplitRows | string> {
  let bytes: Uint8Array;
  try {
    if (!Deno.statSync(file).isFile) return "not a regular file";
    bytes = await Deno.readFile(file);
  } catch (e) {
    return `cannot read it (${(e as Error).message})`;
  }
  if (bytes.byteLength !== size) return `${bytes.byteLength} bytes, written ${size}`;
  const nl = bytes.indexOf(10);
  const count = meta.n * meta.seq;
  if (nl < 0 || (nl + 1) % 64 !== 0 || nl + 1 + 12 * count !== size) return "header altered";
  let head: Record<string, unknown>;
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(0, nl)));
  } catch {
    return "header altered";
  }
  if (
    head.format !== MAGIC || head.n !== meta.n || head.seq !== meta.seq || head.hash !== meta.hash
  ) return "header altered";
  const buf = bytes.buffer as ArrayBuffer;
  const at = (k: number) => new Int32Array(buf, bytes.byteOffset + nl + 1 + 4 * k * count, count);
  const rows: SplitRows = {
    ...meta,
    inputIds: at(0),
    tokenTypeIds: at(1),
    attentionMask: at(2),
  };
  const hash = rowsHash(rows);
  return hash === meta.hash ? rows : `hash ${hash}, written ${meta.hash}`;
}

/** The hash a split's rows carry: over ids, types, mask, labels and idx. */
function rowsHash(
  r: Pick<TaskRows, "inputIds" | "tokenTypeIds" | "attentionMask" | "labels" | "idx">,
) {
  return hashRows([r.inputIds, r.tokenTypeIds, r.attentionMask, r.labels, r.idx]);
}

function hashRows(parts: ArrayBufferView[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return h.digest("hex").slice(0, 16);
}

/**
 * Whether a split argument is a file path rather than a split name: a GLUE TSV, a SQuAD JSON or
 * an MSR paraphrase `.txt` (`--train-file MRPC/msr_paraphrase_train.txt`), or any path with a `/`.
 */
export function isSplitFile(split: string): boolean {
  return /\.(tsv|json|txt)$/.test(split) || split.includes("/");
}

/**
 * Reads a split and turns it into rows with the task's reader. Labels are as the store keeps
 * them: an unlabelled row of an integer-labelled kind (a test split) gets -1, of a float one NaN.
 * Errors name the file (missing, malformed) or the bad option.
 */
export async function loadRows(task: Task, o: RowsOptions): Promise<SplitRows> {
  if (!o.dataFile && !task.splits.includes(o.split)) {
    throw new Error(`${task.name} has no split "${o.split}" (splits: ${task.splits.join(", ")})`);
  }
  if (!Number.isInteger(o.maxSeqLength) || o.maxSeqLength < 2) {
    throw new Error(`max_seq_length must be an integer ≥ 2, got ${o.maxSeqLength}`);
  }
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit <= 0)) {
    throw new Error(`limit must be a positive integer, got ${o.limit}`);
  }
  if (!o.dataFile && !o.dataDir) throw new Error(`no data directory or data file given`);
  if (o.docStride !== undefined && task.format !== "squad-json") {
    throw new InputError(
      `--doc-stride is the overlap of SQuAD windows; task ${task.name} has one row per example`,
    );
  }
  const rel = o.dataFile ? undefined : task.fileFor(o.split);
  const path = o.dataFile ?? `${o.dataDir!.replace(/\/+$/, "")}/${rel}`;
  const dataFile = rel ?? path.slice(path.lastIndexOf("/") + 1);
  // Readers name the path for a missing or malformed file; other I/O errors may not.
  const named = (e: Error) =>
    e.message.includes(`${path} `) || e.message.includes(`${path}:`)
      ? e
      : new Error(`${path}: cannot read it (${e.message})`);
  rowsHooks.onTokenize?.(task.name, o.split, path);
  const rows = await task.readRows(path, {
    tokenizer: o.tokenizer,
    maxSeqLength: o.maxSeqLength,
    limit: o.limit,
    test: o.split.startsWith("test"),
    workers: o.workers,
    training: o.training,
    docStride: o.docStride,
    noRoom: o.noRoom,
    maxQueryLength: o.maxQueryLength,
    answerRule: o.answerRule,
  }).catch((e) => {
    throw named(e);
  });
  if (kindOf(task).labelType === "int64") {
    // int64 cannot hold NaN: unlabelled (test) rows get -1.
    rows.labels = rows.labels.map((v) => Number.isNaN(v) ? -1 : v);
  }
  const hash = rowsHash(rows);
  return { ...rows, split: o.split, dataFile, path, hash };
}

/**
 * What a plan says about how a split became rows: for SQuAD, the windows' overlap and, when the
 * default left no room to advance, that it was reduced to half the context room; else nothing.
 */
export function rowNotes(rows: TaskRows): string[] {
  const s = rows.squad?.stats;
  return s ? [describeSquadWindows(s, rows.nExamples)] : [];
}

/** Options of {@linkcode rowsOfStore}. */
export interface StoreRowsOptions {
  /** The split file the store was captured from (`--dev-file`). */
  dataFile: string;
  /**
   * The model (directory) whose tokenizer re-featurizes it (`--bert`); default the store's
   * `model_id` when that is a directory here or a hub model already downloaded.
   */
  model?: string;
  /** SQuAD: the rule that turns the rows' logits into answers (tasks/squad_postprocess.ts). */
  answerRule?: SquadAnswerRule;
}

/**
 * The rows a store holds, recomputed from the split file it was captured from: the same reader
 * and featurizer with the store's settings (tokens per row, SQuAD's doc stride and question
 * length, the examples read), so SQuAD logits can be turned into answers (the windows' offset
 * maps). The recomputed `input_ids` must equal the store's, row for row; otherwise an
 * {@linkcode InputError} names both files and the first row that differs.
 */
export async function rowsOfStore(
  task: Task,
  reader: StoreReader,
  o: StoreRowsOptions,
): Promise<SplitRows> {
  const a = reader.attrs;
  const fix = `give --dev-file the file ${reader.path} was captured from, and --bert the model ` +
    `it was captured with`;
  let model = o.model === undefined ? undefined : await resolveModel(o.model);
  if (model === undefined) {
    const id = typeof a.model_id === "string" ? a.model_id : "";
    const hub = `${cacheRoot()}/hub/${id}`;
    const isDir = (p: string) => Deno.stat(p).then((s) => s.isDirectory, () => false);
    if (id && await isDir(id)) model = id;
    else if (/^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(id) && await isDir(hub)) {
      model = hub;
    } else {
      throw new InputError(
        `${reader.path} was captured from model ${JSON.stringify(id)}, which is neither a ` +
          `directory here nor a downloaded hub model: give --bert M (the model it was captured ` +
          `from) so that its tokenizer re-featurizes ${o.dataFile}`,
        { file: reader.path },
      );
    }
  }
  const tokenizer = await loadTokenizer(model);
  const num = (k: string) => typeof a[k] === "number" ? a[k] as number : undefined;
  const split = typeof a.split === "string" ? a.split : task.devSplits[0];
  const nExamples = num("n_examples");
  const rows = await loadRows(task, {
    split,
    dataFile: o.dataFile,
    tokenizer,
    maxSeqLength: reader.shape.tokens,
    limit: nExamples !== undefined && Number.isInteger(nExamples) && nExamples > 0
      ? nExamples
      : undefined,
    training: split.startsWith("train"),
    docStride: task.format === "squad-json" ? num("doc_stride") : undefined,
    noRoom: "halve",
    maxQueryLength: num("max_query_length"),
    answerRule: o.answerRule,
  });
  const n = reader.shape.n, T = reader.shape.tokens;
  if (rows.n !== n) {
    throw new InputError(
      `${o.dataFile} re-featurized with the tokenizer of ${model} gives ${rows.n} rows but ` +
        `${reader.path} holds ${n}: not the file or model it was captured from; ${fix}`,
      { file: o.dataFile },
    );
  }
  const ids = reader.readInputIds();
  for (let r = 0; r < n; r++) {
    for (let t = 0; t < T; t++) {
      if (ids[r * T + t] === rows.inputIds[r * T + t]) continue;
      const f = rows.squad?.features[r];
      throw new InputError(
        `${o.dataFile} re-featurized with the tokenizer of ${model} differs from ` +
          `${reader.path} at row ${r}${
            f ? ` (question ${f.exampleId}, window ${f.windowIndex})` : ""
          }, token ${t} (input id ${rows.inputIds[r * T + t]}, stored ${ids[r * T + t]}): not ` +
          `the file or model it was captured from; ${fix}`,
        { file: o.dataFile },
      );
    }
  }
  return rows;
}

/** Rows [start, start + count) as a BERT batch (views, no copies). */
export function rangeBatch(rows: TaskRows, start: number, count: number): BertBatch {
  const S = rows.seq;
  const r = (a: Int32Array) => a.subarray(start * S, (start + count) * S);
  return {
    inputIds: r(rows.inputIds),
    tokenTypeIds: r(rows.tokenTypeIds),
    attentionMask: r(rows.attentionMask),
    batch: count,
    seq: S,
  };
}

/** The rows `which` (any order) as a BERT batch, and their labels (copies). */
export function pickBatch(
  rows: TaskRows,
  which: ArrayLike<number>,
): { batch: BertBatch; labels: Float64Array } {
  return {
    batch: {
      inputIds: takeRows(rows.inputIds, rows.seq, which),
      tokenTypeIds: takeRows(rows.tokenTypeIds, rows.seq, which),
      attentionMask: takeRows(rows.attentionMask, rows.seq, which),
      batch: which.length,
      seq: rows.seq,
    },
    labels: takeRows(rows.labels, rows.labelWidth, which),
  };
}
