/**
 * Capture: run BERT over a task split and store all L+1 hidden states per row in the HDF5
 * activation store (data/h5_store.ts), BERTVision's step 2.
 *
 *   inputs   a GLUE split (one row per example) or SQuAD (one row per sliding-window feature)
 *   batch    (B, S) ids → forward → L+1 hidden (B, S, H) → laid out on the GPU as
 *            (B, L+1, S, H) ("full") or (B, L+1, H) ("cls": only the [CLS] rows): copied for
 *            f32; for f16 converted straight from each layer's state to half bit patterns in
 *            place (kernels/half.ts, round to nearest even, the same bits as the host's
 *            data/half.ts) → one readback (half the bytes for f16), written as read
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
 * Shards (`shard`, `--shard I/N`, data/shard.ts): only rows [start, end) of the split, a
 * contiguous run of about 1/N cut between examples (a SQuAD question's windows stay in one
 * shard), to `out` with `{shard}` replaced by I. The split is read and tokenized whole, so the
 * rows, and every attribute but the shard's own (data/shard_set.ts `shardAttrs`), are a
 * single-process capture's; the N stores read as one (`ShardSetReader`) and merge into one equal
 * to it. Each store also records the adapter that computed it (attribute `adapter`).
 *
 * SQuAD rows are features. What post-processing needs beyond the store (offset maps, max-context
 * flags, question ids) is recomputed deterministically with `loadRows` (train/rows.ts) from the
 * same model directory and the attrs `data_file`, `n_examples`, `max_seq_length`, `doc_stride`
 * (the overlap in tokens between consecutive windows, `--doc-stride`; `doc_stride_reduced`, when
 * present, counts the questions whose windows overlap by half their context room instead because
 * the default left no room to advance), `max_query_length`; attr `inputs_hash` (over ids, types,
 * mask, labels, idx) confirms the recomputation matches the rows stored (train/rows.ts
 * `rowsOfStore` does both).
 *
 * Checked by train/capture_test.ts (values against a direct BertModel.forward),
 * train/capture_shard_test.ts (shards equal the single capture), tests/capture_test.ts (the CLI,
 * resume after a kill, real SST-2 rows), tests/shards_test.ts and tests/slurm_test.ts (shards
 * as a Kubernetes-style and a real Slurm array).
 * @module
 */

import { type BertBatch, BertModel } from "../model/bert.ts";
import type { BertConfig } from "../model/config.ts";
import { loadBertCheckpoint, resolveModel } from "../model/checkpoint.ts";
import { gpu, initGpu, noGrad, scope, Tensor } from "../model/tensor.ts";
import { autocast } from "../model/ops.ts";
import {
  type Precision,
  precisionFix,
  resumePrecision,
  STORE_PRECISION_DEFAULTS,
} from "./precision.ts";
import { f32RowsToHalfBits, f32ToHalfBits, halfWords } from "../kernels/half.ts";
import { H5Reader, H5Store, type H5StoreSettings, statePath } from "../data/h5_store.ts";
import { acquireLock } from "../data/output/mod.ts";
import { InputError } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { type Shard, SHARD_PLACEHOLDER, shardPath, shardRows } from "../data/shard.ts";
import { shardAttrs } from "../data/shard_set.ts";
import { Progress } from "../data/progress.ts";
import {
  kindOf,
  resolveTask,
  SQUAD_MAX_QUERY_LENGTH,
  type Task,
  type TaskRows,
} from "../tasks/mod.ts";
import { rangeBatch, rowNotes, RowsCache } from "./rows.ts";
import { squadPlanLines, squadRowsFor } from "./squad_settings.ts";
import type { DeviceOptions, OutputOptions, RowSourceOptions } from "./options.ts";
import { CAPTURE_DEFAULTS } from "./defaults.ts";
import {
  bertF16OperandBytesPerRow,
  bertF16OperandFixedBytes,
  bertParamBytes,
  bertRowPeakBytes,
  bertRowTensors,
  bertWeightTensors,
  checkWeights,
  formatPlan,
  freeDiskBytes,
  limitsOf,
  type RowTensor,
  splitBatch,
  type StagePlan,
  storeBytes,
} from "./plan.ts";
import { enterStage, stageError } from "./loop.ts";
import { timeBertMicroBatch } from "./warmup.ts";
import { fmtBytes } from "../kernels/device.ts";

/** "full": every token (BERTVision's layout); "cls": the [CLS] token only. */
export type CaptureLayout = "cls" | "full";

/** "f32": float32 values; "f16": IEEE half bit patterns, converted on the GPU. */
export type CaptureDtype = "f32" | "f16";

/**
 * Whether an f16 capture converts each layer's states straight into the batch's half bit
 * patterns ({@linkcode recordCaptureBatch}): when a row of one layer (S·H values for "full", H
 * for "cls") is an even number of halves, so every row fills whole u32 words. Otherwise (an odd
 * hidden size) the states are laid out in float32 first and converted in one pass.
 */
export function halvesFromStates(layout: CaptureLayout, seq: number, hidden: number): boolean {
  return (layout === "full" ? seq * hidden : hidden) % 2 === 0;
}

/**
 * Records one batch's forward and lays its L+1 hidden states out row-major per example:
 * (B, L+1, S, H) for "full", (B, L+1, H) for "cls" (token 0 of each layer, selected on the GPU so
 * only B·(L+1)·H values come back). Call inside `noGrad(() => scope(...))`; the caller disposes
 * the result.
 *
 * "f32": buffer copies, no arithmetic, so the values are the forward's bit for bit. "f16": an
 * "i32" tensor of ⌈n/2⌉ words holding the n = B·(L+1)·(S·)H half bit patterns two per word, in
 * that order (read back, `new Uint16Array(bytes, 0, n)` is the f16 store's `embeds`), converted
 * on the GPU straight from each layer's state into its place (kernels/half.ts
 * `f32RowsToHalfBits`, one dispatch per layer, no float32 copy of the batch; see
 * {@linkcode halvesFromStates} for the odd-width case). The bits are data/half.ts
 * `f32ToF16Bits`'s of the "f32" batch: round to nearest even, subnormals, ±Inf from 65520 up,
 * NaN as `sign | 0x7e00`. With `mixed` the forward runs under autocast (f16 matmul operands,
 * float32 accumulation; the states themselves are float32, LayerNorm outputs).
 */
export function recordCaptureBatch(
  model: BertModel,
  b: BertBatch,
  layout: CaptureLayout,
  dtype: CaptureDtype = "f32",
  mixed = false,
): Tensor {
  const { batch: B, seq: S } = b;
  const H = model.config.hiddenSize;
  const { hidden } = mixed ? autocast(() => model.forward(b)) : model.forward(b);
  const L1 = hidden.length;
  const rowFloats = layout === "full" ? S * H : H;
  const g = gpu();
  if (dtype === "f16" && halvesFromStates(layout, S, H)) {
    const bits = Tensor.empty([halfWords(B * L1 * rowFloats)], "i32", "capture f16 bits");
    for (let l = 0; l < L1; l++) {
      f32RowsToHalfBits(g, hidden[l].buffer, bits.buffer, {
        rows: B,
        rowLength: rowFloats,
        srcStride: S * H,
        dstStride: L1 * rowFloats,
        dstOffset: l * rowFloats,
      });
    }
    return bits;
  }
  const out = Tensor.empty(layout === "full" ? [B, L1, S, H] : [B, L1, H], "f32", "capture");
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
  if (dtype === "f32") return out;
  const n = out.size;
  const bits = Tensor.empty([halfWords(n)], "i32", "capture f16 bits");
  f32ToHalfBits(g, out.buffer, bits.buffer, n);
  return bits;
}

/**
 * Bytes per row of a capture batch: on the GPU (`laidOut`: the laid-out batch, in the store's
 * dtype, plus the float32 layout an odd-width f16 capture converts from) and read back
 * (`readback`: the staging buffer, 2 bytes a value for f16), and the laid-out tensor as the
 * binding limits see it (its largest buffer).
 */
export function captureRowBytes(
  c: BertConfig,
  seq: number,
  layout: CaptureLayout,
  dtype: CaptureDtype,
): { laidOut: number; readback: number; tensor: RowTensor } {
  const [f32] = bertRowTensors(c, seq, layout).slice(-1);
  const values = f32.bytesPerRow / 4;
  if (dtype === "f32") return { laidOut: f32.bytesPerRow, readback: f32.bytesPerRow, tensor: f32 };
  if (!halvesFromStates(layout, seq, c.hiddenSize)) {
    return { laidOut: f32.bytesPerRow + 2 * values, readback: 2 * values, tensor: f32 };
  }
  const tensor = { what: `${f32.what} as f16`, bytesPerRow: 2 * values };
  return { laidOut: 2 * values, readback: 2 * values, tensor };
}

/**
 * A capture's planned GPU bytes, as its plan counts them: `fixed` (BERT's weights and, for
 * f16-mixed, the f16 copy of the largest weight) and `perRow` (the forward's intermediates,
 * f16-mixed's transient operand copies, two laid-out batches for double buffering, each at the
 * store's dtype: {@linkcode captureRowBytes}). The peak of a batch of r rows is fixed + r·perRow.
 */
export function captureMemory(
  c: BertConfig,
  seq: number,
  layout: CaptureLayout,
  dtype: CaptureDtype,
  mixed: boolean,
): { fixed: number; perRow: number } {
  return {
    fixed: bertParamBytes(c) + (mixed ? bertF16OperandFixedBytes(c) : 0),
    perRow: bertRowPeakBytes(c, seq, false) + (mixed ? bertF16OperandBytesPerRow(c, seq) : 0) +
      2 * captureRowBytes(c, seq, layout, dtype).laidOut,
  };
}

/** Options of {@linkcode captureRows}. */
export interface CaptureRowsOptions {
  layout: CaptureLayout;
  /** Default "f32". */
  dtype?: CaptureDtype;
  /** f16-mixed: the forward under autocast (f16 matmul operands, float32 accumulation). */
  mixed?: boolean;
  batchSize: number;
  /** First row (default 0) and end row (default n). */
  start?: number;
  end?: number;
  /**
   * Receives each batch in order: its first row, row count and embeds (count × row values):
   * float32 values for dtype "f32", half bit patterns (a Uint16Array, as H5Store `writeRows`
   * takes them for an f16 store) for "f16". The array is the caller's to keep.
   */
  write(start: number, count: number, embeds: Float32Array | Uint16Array): Promise<void> | void;
}

/**
 * Runs rows [start, end) through BERT in batches cut at start + k·batchSize, double-buffered:
 * while the GPU runs batch k the host records batch k+1; once k's bytes are back, k+1 is
 * submitted and the host writes k while the GPU runs k+1.
 *
 * Why k+1 is submitted only after k's bytes are back: in Deno 2.9.6 mapping a buffer
 * (`mapAsync`) blocks until every submitted command has run, so had k+1 been submitted first,
 * waiting for k would wait for k+1 too and the host would write k with the GPU idle. Submitting
 * does not wait (kernels/device.ts `flush`), and recorded-but-unsubmitted work does not delay
 * the mapping.
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
  const dtype = o.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16") {
    throw new Error(`dtype must be "f32" or "f16", got ${JSON.stringify(dtype)}`);
  }
  // Records a batch into the pending command encoder; nothing reaches the GPU yet.
  const record = (s: number) => {
    const count = Math.min(o.batchSize, end - s);
    const t = noGrad(() =>
      scope(() => recordCaptureBatch(model, rangeBatch(inputs, s, count), o.layout, dtype, o.mixed))
    );
    return { start: s, count, t };
  };
  const rowValues = (count: number) =>
    count * (model.config.numHiddenLayers + 1) * (o.layout === "full" ? inputs.seq : 1) *
    model.config.hiddenSize;
  // Submits a recorded batch with the copy to its staging buffer, without waiting; the tensor
  // can go back to the pool at once (later users are recorded after that copy).
  const submit = (r: { start: number; count: number; t: Tensor }) => {
    const n = rowValues(r.count);
    const read = gpu().enqueueRead(r.t.buffer, dtype === "f32" ? n * 4 : halfWords(n) * 4);
    r.t.dispose();
    const data = read.wait().then((b): Float32Array | Uint16Array =>
      dtype === "f32" ? new Float32Array(b) : new Uint16Array(b, 0, n)
    );
    return { start: r.start, count: r.count, data };
  };
  let pending = start < end ? submit(record(start)) : null;
  while (pending) {
    const s = pending.start + pending.count;
    // k+1 is recorded (not submitted) while the GPU runs k; once k's bytes are back it is
    // submitted, and the host writes k while the GPU runs k+1.
    const recorded = s < end ? record(s) : null;
    let embeds: Float32Array | Uint16Array;
    try {
      embeds = await pending.data;
    } catch (e) {
      recorded?.t.dispose();
      throw e;
    }
    const next = recorded ? submit(recorded) : null;
    next?.data.catch(() => {}); // if writing k fails, k+1's rejection must not go unhandled
    await o.write(pending.start, pending.count, embeds);
    pending = next;
  }
}

/** Options of {@linkcode capture}. */
export interface CaptureOptions extends OutputOptions, RowSourceOptions, DeviceOptions {
  /** A Hugging Face BERT directory or a hub id (see {@linkcode resolveModel}). */
  model: string;
  /** A task name, or a task module of the caller's. */
  task: string | Task;
  split: string;
  /** A split file read instead of `dataDir/<task file>`. */
  dataFile?: string;
  /**
   * Output HDF5 path (resumed when it exists with the same settings); with `shard`, every
   * `{shard}` in it is replaced by the shard's index.
   */
  out: string;
  /**
   * Capture only shard `index` of `count` (`--shard I/N`, data/shard.ts): a contiguous run of
   * the split's rows cut at example boundaries (a SQuAD question's windows stay together), to
   * its own resumable store whose attributes record the shard (data/shard_set.ts); the shards'
   * set reads as, and merges into, the single-process capture.
   */
  shard?: Shard;
  /** Default "full". */
  layout?: CaptureLayout;
  /** Default "f32". */
  dtype?: "f32" | "f16";
  /** Default 16. */
  batchSize?: number;
  /**
   * `--precision`: default f32 (the seed captured in float32). f16-mixed runs the forward under
   * autocast and records `precision: f16-mixed` in the store's attributes.
   */
  precision?: Precision;
  /** The run's rows (the command's {@linkcode RowsCache}): each split tokenized once per run. */
  rows?: RowsCache;
  /**
   * Start even when the free disk space of `out`'s folder is less than the store still needs
   * (`--ignore-disk-space`); otherwise that is an InputError before anything is written.
   */
  ignoreDiskSpace?: boolean;
  /** Called after each batch is written and flushed (the CLI's hidden stop flag uses it). */
  onBatchWritten?: (batchesThisRun: number, rowsDone: number) => void | Promise<void>;
}

/** What {@linkcode capture} did. */
export interface CaptureResult {
  out: string;
  /** Rows in the store (with a shard: the shard's). */
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
 * The attributes of the store at `path` (its sidecar's, else the file's own), as settings for
 * train/precision.ts `resumePrecision`; null when there is none or it cannot be read (the
 * store's own resume check then says why, naming the file).
 */
async function foundStore(
  path: string,
): Promise<{ what: string; settings: Record<string, unknown> } | null> {
  const found = (attrs: unknown) =>
    typeof attrs === "object" && attrs !== null && !Array.isArray(attrs)
      ? { what: `the store ${path}`, settings: attrs as Record<string, unknown> }
      : null;
  try {
    regularFileExists(statePath(path), { what: "sidecar" }); // a FIFO would block the read
    const st = JSON.parse(await Deno.readTextFile(statePath(path)));
    return found(st?.settings?.attrs);
  } catch { /* no sidecar, or not one: the file's own attributes */ }
  try {
    if (!regularFileExists(path)) return null; // a FIFO would block the read
    const r = await H5Reader.open(path);
    try {
      return found({ ...r.attrs });
    } finally {
      r.close();
    }
  } catch {
    return null;
  }
}

/**
 * What capture and its plan share: options resolved, rows read, the store's settings, the split
 * and the plan (exported for tests comparing other plans' capture stages with this one).
 */
export async function prepareCapture(o: CaptureOptions) {
  const layout = o.layout ?? CAPTURE_DEFAULTS.layout;
  const dtype = o.dtype ?? CAPTURE_DEFAULTS.dtype;
  if (layout !== "cls" && layout !== "full") {
    throw new Error(`layout must be "cls" or "full", got ${JSON.stringify(layout)}`);
  }
  if (dtype !== "f32" && dtype !== "f16") {
    throw new Error(`dtype must be "f32" or "f16", got ${JSON.stringify(dtype)}`);
  }
  if (!o.shard && o.out.includes(SHARD_PLACEHOLDER)) {
    throw new InputError(
      `--out ${o.out}: ${SHARD_PLACEHOLDER} stands for the shard's index, but no --shard I/N ` +
        `was given`,
    );
  }
  const out = o.shard ? shardPath(o.out, o.shard) : o.out;
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
  // SQuAD: the question length (0: whole) is stored as `max_query_length` for re-featurizing.
  const squadRows = squadRowsFor(task, o.squad, false);
  const all = await (o.rows ?? new RowsCache()).load(task, dir, {
    split: o.split,
    dataDir: o.dataDir,
    dataFile: o.dataFile,
    maxSeqLength,
    limit: o.limit,
    numWorkers: o.numWorkers,
    training: o.split.startsWith("train"),
    docStride: o.docStride,
    ...squadRows,
  });
  // A shard's rows: a contiguous run of the split's, whole examples only. Every attribute but
  // the shard's own is the whole split's, as a single-process capture records it.
  const cut = o.shard ? shardRows(all.idx, o.shard) : undefined;
  const inputs = cut
    ? sliceRows(all, cut.rowStart, cut.rowEnd, cut.exampleEnd - cut.exampleStart)
    : all;
  const attrs: Record<string, string | number> = {
    model_id: ckpt.modelId,
    weights_hash: ckpt.weightsHash,
    task: task.name,
    split: o.split,
    data_file: all.dataFile,
    n_examples: all.nExamples,
    batch_size: batchSize,
    inputs_hash: all.hash,
    ...(cut ? shardAttrs(o.shard!, cut, all.n) : {}),
  };
  const gpu = await initGpu();
  // Given, else the precision of the store found at `out` (its attrs; float32 for one made
  // before `--precision` existed), so a rerun without the flag resumes it as made; else the
  // preset (float32, as the seed captured).
  const precision = resumePrecision(
    gpu,
    o.precision,
    o.overwrite ? null : await foundStore(out),
    "capture",
  );
  // Only when mixed: stores captured before `--precision` existed (float32) resume unchanged.
  if (precision.precision === "f16-mixed") attrs.precision = precision.precision;
  const stats = all.squad?.stats;
  if (stats) {
    // What recomputing the windows for post-processing needs (see the module note).
    attrs.doc_stride = stats.docStride;
    if (stats.strideReduced) attrs.doc_stride_reduced = stats.strideReduced;
    attrs.max_query_length = squadRows.maxQueryLength ?? SQUAD_MAX_QUERY_LENGTH;
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
  const limits = limitsOf(gpu, o.maxBindingMiB);
  const stage = `capture ${task.name}/${o.split}`;
  checkWeights(stage, bertWeightTensors(ckpt.config), limits);
  const mixed = precision.precision === "f16-mixed";
  const row = captureRowBytes(ckpt.config, maxSeqLength, layout, dtype);
  const rowTensors = [...bertRowTensors(ckpt.config, maxSeqLength), row.tensor];
  const memory = captureMemory(ckpt.config, maxSeqLength, layout, dtype, mixed);
  const split = splitBatch(stage, batchSize, rowTensors, limits, memory);
  const rowsAtOnce = Math.min(split.micro, inputs.n);
  const plan: StagePlan = {
    stage,
    rows: inputs.n,
    examples: inputs.nExamples,
    split,
    peakBytes: memory.fixed + rowsAtOnce * memory.perRow,
    writes: {
      path: out,
      bytes: storeBytes(ckpt.config, inputs.n, maxSeqLength, layout, dtype, kind.labelWidth),
    },
    notes: [
      ...squadPlanLines(task, o.squad, false, ["maxQuestionLength"]), // the windows only
      `precision ${precision.precision} (${precision.why})`,
      readbackNote(dtype, mixed, rowsAtOnce * row.readback),
      ...rowNotes(all),
      ...(cut
        ? [
          `shard ${o.shard!.index}/${o.shard!.count}: rows ${cut.rowStart}–${cut.rowEnd - 1} ` +
          `of ${all.n} (examples ${cut.exampleStart}–${cut.exampleEnd - 1} of ${all.nExamples})`,
        ]
        : []),
    ],
  };
  return {
    task,
    kind,
    ckpt,
    inputs,
    settings,
    split,
    plan,
    layout,
    dtype,
    batchSize,
    stage,
    out,
    adapter: gpu.adapterName,
    mixed,
  };
}

/**
 * The plan line saying in what precision the states come back, and the staging bytes: a batch's
 * readback (`batchBytes`), two in flight with double buffering.
 */
function readbackNote(dtype: CaptureDtype, mixed: boolean, batchBytes: number): string {
  const staging = `${fmtBytes(batchBytes)} a batch, 2 in flight: ${fmtBytes(2 * batchBytes)}`;
  return dtype === "f16"
    ? `readback: states cast to f16 on the GPU and read back as f16 (half float32's bytes; ` +
      `${staging})`
    : `readback: states read back in float32 (${staging})` +
      (mixed
        ? `; f16-mixed runs the matmuls in f16 but the f32 store keeps the float32 states`
        : "");
}

/**
 * Rows [start, end) of a split (views), holding `examples` examples: a shard's rows. SQuAD's
 * questions and windows stay the whole split's (capture reads only their stats).
 */
function sliceRows(rows: TaskRows, start: number, end: number, examples: number): TaskRows {
  const S = rows.seq, w = rows.labelWidth;
  return {
    ...rows,
    n: end - start,
    inputIds: rows.inputIds.subarray(start * S, end * S),
    tokenTypeIds: rows.tokenTypeIds.subarray(start * S, end * S),
    attentionMask: rows.attentionMask.subarray(start * S, end * S),
    labels: rows.labels.subarray(start * w, end * w),
    idx: rows.idx.subarray(start, end),
    nExamples: examples,
  };
}

/** The folder of `out`. */
function folderOf(out: string): string {
  return out.includes("/") ? out.slice(0, out.lastIndexOf("/")) || "/" : ".";
}

/**
 * Bytes a capture to `out` still has to write: the store's `bytes` less what a resumed file
 * already holds.
 */
async function bytesToWrite(out: string, bytes: number): Promise<number> {
  const had = (await Deno.stat(out).catch(() => null))?.size ?? 0;
  return Math.max(0, bytes - had);
}

/** The free disk line of a capture plan. */
async function diskNote(out: string, bytes: number): Promise<string> {
  const free = await freeDiskBytes(folderOf(out));
  if (free === undefined) return "free disk: unknown";
  const need = await bytesToWrite(out, bytes);
  return `free disk: ${fmtBytes(free)}` +
    (need > free ? ` — NOT ENOUGH for ${fmtBytes(need)}` : "");
}

/**
 * Refuses a capture whose store would not fit in the free space of its folder (naming both and
 * the way on), unless `ignore` (`--ignore-disk-space`). Unknown free space is not refused.
 */
async function checkDiskSpace(out: string, bytes: number, ignore?: boolean): Promise<void> {
  if (ignore) return;
  const free = await freeDiskBytes(folderOf(out));
  const need = await bytesToWrite(out, bytes);
  if (free === undefined || need <= free) return;
  throw new InputError(
    `${out}: the store needs ${fmtBytes(need)} more but ${folderOf(out)} has ${
      fmtBytes(free)
    } free; free some space, choose an --out on a larger disk (or --layout cls / --dtype f16 ` +
      `for a smaller store), or pass --ignore-disk-space to start anyway`,
    { file: out },
  );
}

/**
 * The plan of a capture (`capture --dry-run`): rows, micro-batches, peak GPU bytes, bytes written,
 * free disk and, with `time`, the time from one measured micro-batch. Writes nothing.
 */
export async function planCapture(o: CaptureOptions, time = true): Promise<string> {
  const p = await prepareCapture(o);
  if (time) {
    const each = await timeBertMicroBatch(
      p.ckpt.config,
      p.ckpt.weights,
      Math.min(p.split.micro, p.inputs.n),
      p.inputs.seq,
      false,
      p.mixed, // the forward as the capture runs it
    );
    p.plan.seconds = each * Math.ceil(p.inputs.n / p.split.micro);
  }
  return formatPlan([p.plan], [await diskNote(p.out, p.plan.writes!.bytes)]);
}

/**
 * Captures a task split to an HDF5 store: reads the split, tokenises, runs the model in
 * double-buffered batches (micro-batches when a batch's tensors would exceed the device's
 * limit, train/plan.ts) and writes every row, resuming an interrupted store.
 */
export async function capture(o: CaptureOptions): Promise<CaptureResult> {
  const p = await prepareCapture(o);
  const { task, ckpt, inputs, settings, split, layout, dtype, batchSize, out, mixed } = p;
  if (!o.silent) {
    console.error(formatPlan([p.plan], [await diskNote(out, p.plan.writes!.bytes)]));
  }
  await checkDiskSpace(out, p.plan.writes!.bytes, o.ignoreDiskSpace);
  // One writer per store, taken before the file is opened.
  const lock = acquireLock(out, "file", { breakLock: o.breakLock });
  if (lock.tookOver && !o.silent) console.error(lock.tookOver);
  let store: H5Store;
  try {
    // Flushing after every batch makes each batch a resume point at the same rows as before.
    store = await H5Store.openOrCreate(out, settings, {
      flushEveryRows: batchSize,
      overwrite: o.overwrite,
      adapter: p.adapter,
      defaults: STORE_PRECISION_DEFAULTS,
      fix: (diff) => precisionFix(diff, "choose another --out, or --overwrite to replace it"),
    });
  } catch (e) {
    lock.release();
    throw e;
  }
  const rowsBefore = store.rowsDone;
  let closed = false;
  try {
    enterStage(p.plan.peakBytes, bertParamBytes(ckpt.config));
    const model = BertModel.fromHost(ckpt.config, ckpt.weights);
    const bar = new Progress(
      { label: `capture ${task.name}/${o.split}`, total: inputs.n, unit: "rows", silent: o.silent },
      rowsBefore,
    );
    const t0 = performance.now();
    const lw = inputs.labelWidth;
    let batches = 0, written = rowsBefore;
    try {
      await captureRows(model, inputs, {
        layout,
        dtype,
        mixed,
        batchSize: split.micro,
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
          written = start + count;
          await o.onBatchWritten?.(++batches, store.rowsDone);
        },
      });
    } catch (e) {
      throw stageError(e, {
        stage: p.stage,
        batch: `rows ${written}–${Math.min(inputs.n, written + 2 * split.micro) - 1}`,
        batchSize,
      });
    } finally {
      model.dispose();
    }
    const seconds = (performance.now() - t0) / 1000;
    bar.done();
    await store.close();
    closed = true;
    return {
      out,
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
    lock.release();
  }
}
