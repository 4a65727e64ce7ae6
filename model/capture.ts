/**
 * Capture: run BERT over a task split and store all L+1 hidden states per row in the HDF5
 * activation store (data/h5_store.ts), BERTVision's step 2.
 *
 *   inputs   a GLUE split (one row per example) or SQuAD (one row per sliding-window feature)
 *   batch    (B, S) ids → forward → L+1 hidden (B, S, H) → copied on the GPU into
 *            (B, L+1, S, H) ("full") or (B, L+1, H) ("cls": only the [CLS] rows) → one readback
 *   store    `embeds`, `input_ids`, `token_type_ids`, `attention_mask`, `labels`, `idx`, attrs
 *
 * Double buffering: batch k+1's forward is recorded while the GPU runs batch k, and submitted
 * as soon as k's readback arrives, before k is written, so the GPU computes while the host
 * writes (see {@linkcode captureRows} for why not earlier).
 *
 * Resume: the store is flushed after every batch and its sidecar records the rows done; a
 * killed run rerun with the same arguments continues after the last flushed batch and, since
 * batches are cut at the same rows, ends with a file identical to an uninterrupted run.
 * An output with other settings (model, weights, data, layout, dtype, lengths, batch size) is
 * refused by the store, untouched.
 *
 * SQuAD rows are features. What post-processing needs beyond the store (offset maps, max-context
 * flags, question ids) is recomputed deterministically with {@linkcode loadCaptureInputs} from
 * the same model directory and the attrs `data_file`, `n_examples`, `max_seq_length`,
 * `doc_stride`, `max_query_length`; attr `inputs_hash` (over ids, types, mask, labels, idx)
 * confirms the recomputation matches the rows stored.
 *
 * Checked by model/capture_test.ts (values against a direct BertModel.forward) and
 * tests/capture_test.ts (the CLI, resume after a kill, real SST-2 rows).
 * @module
 */

import { createHash } from "node:crypto";
import { type BertBatch, BertModel } from "./bert.ts";
import { loadBertCheckpoint, resolveModel } from "./checkpoint.ts";
import { gpu, initGpu, noGrad, scope, Tensor } from "./tensor.ts";
import {
  featurize,
  featurizeParallel,
  type SquadFeature,
  squadFeatures,
} from "../data/features.ts";
import { type BertTokenizerLike, loadTokenizer } from "../data/tokenize.ts";
import { H5Store, type H5StoreSettings } from "../data/h5_store.ts";
import { Progress } from "../data/progress.ts";
import { getTask, isGlueTask, type SquadExample } from "../tasks/mod.ts";

/** "full": every token (BERTVision's layout); "cls": the [CLS] token only. */
export type CaptureLayout = "cls" | "full";

/** SQuAD window settings (run_squad.py's, which BERTVision used). */
export const SQUAD_DOC_STRIDE = 128;
/** Question pieces kept per SQuAD feature. */
export const SQUAD_MAX_QUERY_LENGTH = 64;

/** The rows to capture, as padded host arrays. */
export interface CaptureInputs {
  /** Rows: examples (GLUE) or features (SQuAD). */
  n: number;
  /** Tokens per row. */
  maxSeqLength: number;
  /** (n, maxSeqLength) each. */
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  /** (n, labelWidth): class id (-1 = unlabelled test row), score (NaN if none), or start, end. */
  labels: Float64Array;
  labelWidth: 1 | 2;
  labelType: "int64" | "float32";
  /** (n) example index: row of the split's file in file order (SQuAD: the feature's example). */
  idx: Float64Array;
  /** Examples read (after `limit`). */
  nExamples: number;
  /** Split file relative to the data root (or the file name given as `dataFile`). */
  dataFile: string;
  /** SQuAD only: the examples and their features (offset maps etc. for post-processing). */
  squad?: { examples: SquadExample[]; features: SquadFeature[] };
  /** First 16 hex digits of a sha256 over ids, types, mask, labels and idx. */
  hash: string;
}

/** Where {@linkcode loadCaptureInputs} reads from. */
export interface CaptureInputOptions {
  task: string;
  split: string;
  /** Root of the GLUE distribution layout (`D/SST-2/dev.tsv`, `D/squad/dev-v2.0.json`). */
  dataDir?: string;
  /** A split file to read instead of `dataDir/<task file>` (e.g. SQuAD's cs224n-dev-v2.0.json). */
  dataFile?: string;
  tokenizer: BertTokenizerLike;
  /** Tokenize in parallel workers that load the tokenizer of `modelDir` (`--num-workers`). */
  workers?: { modelDir: string; count: number };
  maxSeqLength: number;
  /** Keep the split's first `limit` examples. */
  limit?: number;
}

function hashInputs(parts: ArrayBufferView[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return h.digest("hex").slice(0, 16);
}

/**
 * Reads a split and turns it into rows: GLUE examples padded by {@linkcode featurize}, SQuAD
 * examples cut into windows by {@linkcode squadFeatures} (stride 128, question ≤ 64 pieces).
 * Errors name the file (missing, malformed) or the bad option.
 */
export async function loadCaptureInputs(o: CaptureInputOptions): Promise<CaptureInputs> {
  const task = getTask(o.task);
  if (!task.splits.includes(o.split)) {
    throw new Error(`${task.name} has no split "${o.split}" (splits: ${task.splits.join(", ")})`);
  }
  if (!Number.isInteger(o.maxSeqLength) || o.maxSeqLength < 2) {
    throw new Error(`max_seq_length must be an integer ≥ 2, got ${o.maxSeqLength}`);
  }
  if (o.limit !== undefined && (!Number.isInteger(o.limit) || o.limit <= 0)) {
    throw new Error(`limit must be a positive integer, got ${o.limit}`);
  }
  if (!o.dataFile && !o.dataDir) throw new Error(`capture needs a data directory or a data file`);
  const rel = task.fileFor(o.split);
  const path = o.dataFile ?? `${o.dataDir!.replace(/\/+$/, "")}/${rel}`;
  const dataFile = o.dataFile ? o.dataFile.slice(o.dataFile.lastIndexOf("/") + 1) : rel;
  const S = o.maxSeqLength;
  // Readers name the path for a missing or malformed file; other I/O errors may not.
  const named = (e: Error) =>
    e.message.includes(`${path} `) || e.message.includes(`${path}:`)
      ? e
      : new Error(`${path}: cannot read it (${e.message})`);
  let out: Omit<CaptureInputs, "hash">;
  if (isGlueTask(task)) {
    const all = (await task.readFile(path, { test: o.split.startsWith("test") }).catch((e) => {
      throw named(e);
    })).examples;
    const examples = o.limit === undefined ? all : all.slice(0, o.limit);
    if (examples.length === 0) throw new Error(`${path}: no examples`);
    const f = o.workers && o.workers.count > 1
      ? await featurizeParallel(examples, o.workers.modelDir, o.tokenizer, S, o.workers.count)
      : featurize(examples, o.tokenizer, S);
    const regression = task.kind === "regression";
    // int64 cannot hold NaN: unlabelled (test) classification rows get -1.
    const labels = regression ? f.labels : f.labels.map((v) => Number.isNaN(v) ? -1 : v);
    out = {
      n: f.n,
      maxSeqLength: S,
      inputIds: f.inputIds,
      tokenTypeIds: f.tokenTypeIds,
      attentionMask: f.attentionMask,
      labels,
      labelWidth: 1,
      labelType: regression ? "float32" : "int64",
      idx: Float64Array.from(examples, (e) => e.idx),
      nExamples: examples.length,
      dataFile,
    };
  } else {
    const all = await task.readFile(path).catch((e) => {
      throw named(e);
    });
    const examples = o.limit === undefined ? all : all.slice(0, o.limit);
    if (examples.length === 0) throw new Error(`${path}: no examples`);
    const { features } = squadFeatures(examples, o.tokenizer, {
      maxSeqLength: S,
      docStride: SQUAD_DOC_STRIDE,
      maxQueryLength: SQUAD_MAX_QUERY_LENGTH,
    });
    const n = features.length;
    const inputIds = new Int32Array(n * S), tokenTypeIds = new Int32Array(n * S);
    const attentionMask = new Int32Array(n * S);
    const labels = new Float64Array(n * 2), idx = new Float64Array(n);
    features.forEach((f, i) => {
      inputIds.set(f.inputIds, i * S);
      tokenTypeIds.set(f.tokenTypeIds, i * S);
      attentionMask.set(f.attentionMask, i * S);
      labels[2 * i] = f.startPosition;
      labels[2 * i + 1] = f.endPosition;
      idx[i] = f.exampleIndex;
    });
    out = {
      n,
      maxSeqLength: S,
      inputIds,
      tokenTypeIds,
      attentionMask,
      labels,
      labelWidth: 2,
      labelType: "int64",
      idx,
      nExamples: examples.length,
      dataFile,
      squad: { examples, features },
    };
  }
  const hash = hashInputs([out.inputIds, out.tokenTypeIds, out.attentionMask, out.labels, out.idx]);
  return { ...out, hash };
}

/** Rows [start, start + count) of `inputs` as a BERT batch (views, no copies). */
export function batchOf(inputs: CaptureInputs, start: number, count: number): BertBatch {
  const S = inputs.maxSeqLength;
  const r = (a: Int32Array) => a.subarray(start * S, (start + count) * S);
  return {
    inputIds: r(inputs.inputIds),
    tokenTypeIds: r(inputs.tokenTypeIds),
    attentionMask: r(inputs.attentionMask),
    batch: count,
    seq: S,
  };
}

/**
 * Records one batch's forward and the copies that lay its L+1 hidden states out row-major per
 * example: (B, L+1, S, H) for "full", (B, L+1, H) for "cls" (token 0 of each layer, selected on
 * the GPU so only B·(L+1)·H floats come back). Buffer copies, no arithmetic: the values are the
 * forward's bit for bit. Call inside `noGrad(() => scope(...))`; the caller disposes the result.
 */
export function recordCaptureBatch(model: BertModel, b: BertBatch, layout: CaptureLayout): Tensor {
  const { batch: B, seq: S } = b;
  const H = model.config.hiddenSize;
  const { hidden } = model.forward(b);
  const L1 = hidden.length;
  const rowFloats = layout === "full" ? S * H : H;
  const out = Tensor.empty(layout === "full" ? [B, L1, S, H] : [B, L1, H], "f32", "capture");
  const g = gpu();
  for (let e = 0; e < B; e++) {
    for (let l = 0; l < L1; l++) {
      g.copy(
        hidden[l].buffer,
        e * S * H * 4,
        out.buffer,
        (e * L1 + l) * rowFloats * 4,
        rowFloats * 4,
      );
    }
  }
  return out;
}

/** Options of {@linkcode captureRows}. */
export interface CaptureRowsOptions {
  layout: CaptureLayout;
  batchSize: number;
  /** First row (default 0) and end row (default n). */
  start?: number;
  end?: number;
  /** Receives each batch in order: its first row, row count and embeds (count × row floats). */
  write(start: number, count: number, embeds: Float32Array): Promise<void> | void;
}

/**
 * Runs rows [start, end) through BERT in batches cut at start + k·batchSize, double-buffered:
 * while the GPU runs batch k the host records batch k+1; once k's readback arrives, k+1 is
 * submitted and the host writes k while the GPU runs k+1.
 *
 * Why k+1 is submitted only after k's readback resolves: Deno's `mapAsync` polls the device
 * until all submitted work is done (measured: with three batches submitted, the first readback
 * resolved with the third), so submitting k+1 first would make the host wait for k+1 and then
 * write k with the GPU idle. Recorded-but-unsubmitted work does not delay the readback.
 */
export async function captureRows(
  model: BertModel,
  inputs: CaptureInputs,
  o: CaptureRowsOptions,
): Promise<void> {
  const start = o.start ?? 0, end = o.end ?? inputs.n;
  if (!Number.isInteger(o.batchSize) || o.batchSize <= 0) {
    throw new Error(`batch size must be a positive integer, got ${o.batchSize}`);
  }
  // Records a batch into the pending command encoder; nothing reaches the GPU yet.
  const record = (s: number) => {
    const count = Math.min(o.batchSize, end - s);
    const t = noGrad(() =>
      scope(() => recordCaptureBatch(model, batchOf(inputs, s, count), o.layout))
    );
    return { start: s, count, t };
  };
  // readF32 copies to a staging buffer and submits everything recorded, synchronously; the
  // tensor can go back to the pool at once (later users are recorded after that copy).
  const submit = (r: { start: number; count: number; t: Tensor }) => {
    const data = r.t.readF32();
    r.t.dispose();
    data.catch(() => {}); // a failed write must not leave this rejection unhandled
    return { start: r.start, count: r.count, data };
  };
  let pending = start < end ? submit(record(start)) : null;
  while (pending) {
    const s = pending.start + pending.count;
    const recorded = s < end ? record(s) : null;
    let embeds: Float32Array;
    try {
      embeds = await pending.data;
    } catch (e) {
      recorded?.t.dispose();
      throw e;
    }
    const next = recorded ? submit(recorded) : null;
    await o.write(pending.start, pending.count, embeds);
    pending = next;
  }
}

/** Options of {@linkcode capture}. */
export interface CaptureOptions {
  /** A Hugging Face BERT directory or a hub id (see {@linkcode resolveModel}). */
  model: string;
  task: string;
  split: string;
  /** Root of the GLUE distribution layout. */
  dataDir?: string;
  /** A split file read instead of `dataDir/<task file>`. */
  dataFile?: string;
  /** Output HDF5 path (resumed when it exists with the same settings). */
  out: string;
  /** Default "full". */
  layout?: CaptureLayout;
  /** Default "f32". */
  dtype?: "f32" | "f16";
  /** Default 128 (384 for SQuAD). */
  maxSeqLength?: number;
  /** Default 16. */
  batchSize?: number;
  /** The split's first `limit` examples. */
  limit?: number;
  /** Draw no progress bar. */
  silent?: boolean;
  /** Parallel tokenization workers (the seed's `--num-workers`). */
  numWorkers?: number;
  /** Called after each batch is written and flushed (the CLI's hidden stop flag uses it). */
  onBatchWritten?: (batchesThisRun: number, rowsDone: number) => void | Promise<void>;
}

/** What {@linkcode capture} did. */
export interface CaptureResult {
  out: string;
  /** Rows in the store. */
  n: number;
  /** Rows already done when this run started (resume). */
  rowsBefore: number;
  /** Rows this run captured. */
  rowsCaptured: number;
  /** Seconds of the capture loop. */
  seconds: number;
  /** The store's settings (attrs included). */
  settings: H5StoreSettings;
}

/** Defaults of {@linkcode capture} (and the CLI). */
export const CAPTURE_DEFAULTS = {
  layout: "full" as CaptureLayout,
  dtype: "f32" as "f32" | "f16",
  maxSeqLength: 128,
  squadMaxSeqLength: 384,
  batchSize: 16,
};

/**
 * Captures a task split to an HDF5 store: reads the split, tokenises, runs the model in
 * double-buffered batches and writes every row, resuming an interrupted store.
 */
export async function capture(o: CaptureOptions): Promise<CaptureResult> {
  const layout = o.layout ?? CAPTURE_DEFAULTS.layout;
  const dtype = o.dtype ?? CAPTURE_DEFAULTS.dtype;
  if (layout !== "cls" && layout !== "full") {
    throw new Error(`layout must be "cls" or "full", got ${JSON.stringify(layout)}`);
  }
  if (dtype !== "f32" && dtype !== "f16") {
    throw new Error(`dtype must be "f32" or "f16", got ${JSON.stringify(dtype)}`);
  }
  const task = getTask(o.task);
  const maxSeqLength = o.maxSeqLength ??
    (task.kind === "span" ? CAPTURE_DEFAULTS.squadMaxSeqLength : CAPTURE_DEFAULTS.maxSeqLength);
  const batchSize = o.batchSize ?? CAPTURE_DEFAULTS.batchSize;
  if (!Number.isInteger(batchSize) || batchSize <= 0) {
    throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  }
  const dir = await resolveModel(o.model, { silent: o.silent });
  const ckpt = await loadBertCheckpoint(dir);
  if (maxSeqLength > ckpt.config.maxPositionEmbeddings) {
    throw new Error(
      `max_seq_length ${maxSeqLength} exceeds the model's max_position_embeddings ` +
        `${ckpt.config.maxPositionEmbeddings}`,
    );
  }
  const tokenizer = await loadTokenizer(dir);
  const inputs = await loadCaptureInputs({
    task: task.name,
    split: o.split,
    dataDir: o.dataDir,
    dataFile: o.dataFile,
    tokenizer,
    maxSeqLength,
    limit: o.limit,
    workers: { modelDir: dir, count: o.numWorkers ?? 0 },
  });
  const attrs: Record<string, string | number> = {
    model_id: ckpt.modelId,
    weights_hash: ckpt.weightsHash,
    task: task.name,
    split: o.split,
    data_file: inputs.dataFile,
    n_examples: inputs.nExamples,
    batch_size: batchSize,
    inputs_hash: inputs.hash,
  };
  if (inputs.squad) {
    attrs.doc_stride = SQUAD_DOC_STRIDE;
    attrs.max_query_length = SQUAD_MAX_QUERY_LENGTH;
  }
  const settings: H5StoreSettings = {
    n: inputs.n,
    layers: ckpt.config.numHiddenLayers + 1,
    tokens: maxSeqLength,
    hidden: ckpt.config.hiddenSize,
    layout,
    dtype,
    labelType: inputs.labelType,
    labelWidth: inputs.labelWidth,
    attrs,
  };
  // Flushing after every batch makes each batch a resume point at the same rows as before.
  const store = await H5Store.openOrCreate(o.out, settings, { flushEveryRows: batchSize });
  const rowsBefore = store.rowsDone;
  let closed = false;
  try {
    await initGpu();
    const model = BertModel.fromHost(ckpt.config, ckpt.weights);
    const bar = new Progress(
      { label: `capture ${task.name}/${o.split}`, total: inputs.n, unit: "rows", silent: o.silent },
      rowsBefore,
    );
    const t0 = performance.now();
    const lw = inputs.labelWidth;
    let batches = 0;
    try {
      await captureRows(model, inputs, {
        layout,
        batchSize,
        start: rowsBefore,
        async write(start, count, embeds) {
          const r = batchOf(inputs, start, count);
          await store.writeRows(start, {
            embeds,
            inputIds: r.inputIds,
            tokenTypeIds: r.tokenTypeIds,
            attentionMask: r.attentionMask,
            labels: inputs.labels.subarray(start * lw, (start + count) * lw),
            idx: inputs.idx.subarray(start, start + count),
          });
          bar.tick(count);
          await o.onBatchWritten?.(++batches, store.rowsDone);
        },
      });
    } finally {
      model.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    bar.done();
    await store.close();
    closed = true;
    return {
      out: o.out,
      n: inputs.n,
      rowsBefore,
      rowsCaptured: inputs.n - rowsBefore,
      seconds,
      settings,
    };
  } finally {
    // On an error the store stays resumable: rows handed to writeRows are whole, so closing
    // (flush + sidecar) claims only complete rows.
    if (!closed) await store.close().catch(() => {});
  }
}
