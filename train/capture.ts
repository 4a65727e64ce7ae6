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
 * flags, question ids) is recomputed deterministically with `loadRows` (train/rows.ts) from the
 * same model directory and the attrs `data_file`, `n_examples`, `max_seq_length`, `doc_stride`,
 * `max_query_length`; attr `inputs_hash` (over ids, types, mask, labels, idx) confirms the
 * recomputation matches the rows stored.
 *
 * Checked by train/capture_test.ts (values against a direct BertModel.forward) and
 * tests/capture_test.ts (the CLI, resume after a kill, real SST-2 rows).
 * @module
 */

import { type BertBatch, BertModel } from "../model/bert.ts";
import { loadBertCheckpoint, resolveModel } from "../model/checkpoint.ts";
import { gpu, initGpu, noGrad, scope, Tensor } from "../model/tensor.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { H5Store, type H5StoreSettings } from "../data/h5_store.ts";
import { Progress } from "../data/progress.ts";
import {
  kindOf,
  resolveTask,
  SQUAD_DOC_STRIDE,
  SQUAD_MAX_QUERY_LENGTH,
  type Task,
  type TaskRows,
} from "../tasks/mod.ts";
import { loadRows, rangeBatch } from "./rows.ts";
import { CAPTURE_DEFAULTS } from "./defaults.ts";

/** "full": every token (BERTVision's layout); "cls": the [CLS] token only. */
export type CaptureLayout = "cls" | "full";

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
  inputs: TaskRows,
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
      scope(() => recordCaptureBatch(model, rangeBatch(inputs, s, count), o.layout))
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
  /** A task name, or a task module of the caller's. */
  task: string | Task;
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
  /** Default: the task's head kind's (128 for GLUE, 384 for SQuAD). */
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
  const task = resolveTask(o.task);
  const kind = kindOf(task);
  const maxSeqLength = o.maxSeqLength ?? kind.defaultMaxSeqLength;
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
  const inputs = await loadRows(task, {
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
    // What recomputing the windows for post-processing needs (see the module note).
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
    labelType: kind.labelType,
    labelWidth: kind.labelWidth,
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
          const r = rangeBatch(inputs, start, count);
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
