/**
 * The planner: before a stage runs, sizes every large tensor it will allocate against the
 * adapter's limits and splits what does not fit, so the seed's real sizes run on any adapter.
 *
 * - Limits: a buffer can be at most min(`maxStorageBufferBindingSize`, `maxBufferSize`) bytes.
 *   `BERTVISION_MAX_BINDING_MIB` (or the `maxBindingMiB` option) lowers the limit for the
 *   tensors the planner can split: activations, outputs and their gradients, which scale with
 *   the rows of a batch. Weights (and their gradients and optimizer state) cannot be split; they
 *   are checked against the device's real limit.
 * - A stage's largest per-row tensor fixes its micro-batch: the most rows whose tensors all fit.
 *   Capture and evaluation run micro-batches one after the other (each row's values are the
 *   same whatever the batch: the forward has no cross-row arithmetic). Fine-tuning and head
 *   training accumulate the gradients of a step's micro-batches, each loss weighted by its share
 *   of the rows, then update once: the same effective batch, the same update within float32
 *   rounding (dropout masks are per row, see model/bert.ts `rowOffset`).
 * - Estimates for the plan a run prints (and `--dry-run` prints alone): GPU bytes at the peak,
 *   bytes written, disk free.
 *
 * Sizes per row (S tokens, H hidden, A heads, I intermediate, L layers), 4 bytes each:
 *   attention scores and probabilities A·S², feed-forward S·I, hidden states S·H, capture
 *   output (L+1)·S·H ("full") or (L+1)·H ("cls"), BERTVision head input L'·T·F and its adapter
 *   output T·D·L'.
 * Checked by train/plan_test.ts (sizes, splits, errors) and by the loops' tests, which compare
 * split runs with unsplit ones.
 * @module
 */
import type { BertConfig } from "../model/config.ts";
import { fmtBytes, type Gpu } from "../kernels/device.ts";

/** What the planner may allocate. */
export interface Limits {
  /** The device's largest buffer (binding) in bytes: weights are checked against it. */
  device: number;
  /** The largest splittable tensor (activations, outputs, their gradients) in bytes. */
  split: number;
  /** Where `split` came from, for messages. */
  source: string;
  /**
   * GPU memory a stage may hold, in bytes, when known: `BERTVISION_MEMORY_MIB` (or the
   * `memoryMiB` argument), else on a software adapter (whose GPU memory is host memory) three
   * quarters of the host's available memory. WebGPU does not say how much a real GPU has.
   */
  budget?: number;
  /** Where `budget` came from. */
  budgetSource?: string;
}

/** Bytes of host memory available now (`MemAvailable` of /proc/meminfo), if known. */
function availableHostBytes(): number | undefined {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Bytes in a MiB. */
const MIB = 2 ** 20;

/**
 * The limits of `gpu`, lowered for splittable tensors by `maxBindingMiB`, else by the
 * environment's `BERTVISION_MAX_BINDING_MIB`.
 */
export function limitsOf(gpu: Gpu, maxBindingMiB?: number, memoryMiB?: number): Limits {
  const device = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  let mib = maxBindingMiB;
  let source = `maxStorageBufferBindingSize on ${gpu.adapterName}`;
  if (mib === undefined) {
    const env = Deno.env.get("BERTVISION_MAX_BINDING_MIB");
    if (env !== undefined && env !== "") {
      mib = Number(env);
      if (!(mib > 0)) {
        throw new Error(
          `BERTVISION_MAX_BINDING_MIB must be a positive number of MiB, got "${env}"`,
        );
      }
      source = "BERTVISION_MAX_BINDING_MIB";
    }
  } else source = "maxBindingMiB";
  const split = mib === undefined ? device : Math.min(device, Math.floor(mib * MIB));
  const out: Limits = {
    device,
    split,
    source: split < device ? source : `maxStorageBufferBindingSize on ${gpu.adapterName}`,
  };
  const env = Deno.env.get("BERTVISION_MEMORY_MIB");
  const mem = memoryMiB ?? (env ? Number(env) : undefined);
  if (mem !== undefined) {
    if (!(mem > 0)) {
      throw new Error(`BERTVISION_MEMORY_MIB must be a positive number, got "${env}"`);
    }
    out.budget = Math.floor(mem * MIB);
    out.budgetSource = memoryMiB !== undefined ? "memoryMiB" : "BERTVISION_MEMORY_MIB";
  } else if (gpu.isFallback) {
    const avail = availableHostBytes();
    if (avail !== undefined) {
      out.budget = Math.floor(0.75 * avail);
      out.budgetSource = `3/4 of the host's available memory (${gpu.adapterName} uses host memory)`;
    }
  }
  return out;
}

/** One tensor of a stage, by what it is and its bytes per row of the batch. */
export interface RowTensor {
  what: string;
  bytesPerRow: number;
}

/** How a stage runs: its micro-batch and what decided it. */
export interface Split {
  /** Rows per step (or per forward) as asked. */
  batch: number;
  /** Rows per micro-batch (≤ batch). */
  micro: number;
  /** Micro-batches per step: ceil(batch / micro). */
  parts: number;
  /** The largest tensor per row, which fixed `micro` unless `byMemory`. */
  largest: RowTensor;
  /** Whether the memory budget, not a buffer limit, fixed `micro`. */
  byMemory?: boolean;
}

/**
 * Splits `batch` rows into micro-batches so each tensor of `tensors` (bytes per row) fits
 * `limits.split`. An error names the tensor when one row alone does not fit.
 */
export function splitBatch(
  stage: string,
  batch: number,
  tensors: RowTensor[],
  limits: Limits,
  memory?: { fixed: number; perRow: number },
): Split {
  const largest = tensors.reduce((a, b) => (b.bytesPerRow > a.bytesPerRow ? b : a));
  const fit = Math.floor(limits.split / largest.bytesPerRow);
  if (fit < 1) {
    throw new Error(
      `${stage}: one row's ${largest.what} needs ${fmtBytes(largest.bytesPerRow)}, over the ` +
        `limit of ${fmtBytes(limits.split)} (${limits.source}); use a shorter --max-seq-length` +
        (limits.split < limits.device ? ` or raise BERTVISION_MAX_BINDING_MIB` : ""),
    );
  }
  let micro = Math.min(batch, fit);
  let byMemory = false;
  if (memory && limits.budget !== undefined) {
    const rows = Math.floor((limits.budget - memory.fixed) / memory.perRow);
    if (rows < 1) {
      throw new Error(
        `${stage}: ${fmtBytes(memory.fixed)} of weights and state plus one row's ` +
          `${fmtBytes(memory.perRow)} of activations exceed the memory budget of ` +
          `${fmtBytes(limits.budget)} (${limits.budgetSource}); use a shorter --max-seq-length ` +
          `or a smaller model`,
      );
    }
    if (rows < micro) {
      micro = rows;
      byMemory = true;
    }
  }
  return { batch, micro, parts: Math.ceil(batch / micro), largest, byMemory };
}

/** Checks weights (which cannot be split) against the device's real limit. */
export function checkWeights(stage: string, weights: RowTensor[], limits: Limits): void {
  for (const w of weights) {
    if (w.bytesPerRow > limits.device) {
      throw new Error(
        `${stage}: the weight ${w.what} needs ${fmtBytes(w.bytesPerRow)}, over this device's ` +
          `limit of ${fmtBytes(limits.device)}; it cannot be split (a smaller model?)`,
      );
    }
  }
}

/** BERT's per-row tensors at `seq` tokens; `capture` adds the laid-out hidden states. */
export function bertRowTensors(
  c: BertConfig,
  seq: number,
  capture?: "full" | "cls",
): RowTensor[] {
  const { hiddenSize: H, numAttentionHeads: A, intermediateSize: I, numHiddenLayers: L } = c;
  const out: RowTensor[] = [
    { what: `attention scores [${A}×${seq}×${seq}]`, bytesPerRow: 4 * A * seq * seq },
    { what: `feed-forward activations [${seq}×${I}]`, bytesPerRow: 4 * seq * I },
    { what: `hidden states [${seq}×${H}]`, bytesPerRow: 4 * seq * H },
  ];
  if (capture === "full") {
    out.push({
      what: `captured states [${L + 1}×${seq}×${H}]`,
      bytesPerRow: 4 * (L + 1) * seq * H,
    });
  } else if (capture === "cls") {
    out.push({ what: `captured states [${L + 1}×${H}]`, bytesPerRow: 4 * (L + 1) * H });
  }
  return out;
}

/** BERT's weights by size (the word embeddings and feed-forward matrices are the largest). */
export function bertWeightTensors(c: BertConfig): RowTensor[] {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V } = c;
  return [
    { what: `word embeddings [${V}×${H}]`, bytesPerRow: 4 * V * H },
    { what: `feed-forward weight [${I}×${H}]`, bytesPerRow: 4 * I * H },
  ];
}

/**
 * Estimated GPU bytes at the peak of one micro-batch of `rows` rows of BERT (every forward
 * intermediate alive until the step ends; with `train`, as many again for the backward), plus
 * `fixed` bytes (weights, gradients, optimizer state).
 */
export function bertPeakBytes(
  c: BertConfig,
  seq: number,
  rows: number,
  fixed: number,
  train: boolean,
): number {
  return fixed + rows * bertRowPeakBytes(c, seq, train);
}

/** BERT's GPU bytes per row of a micro-batch at the peak (see {@linkcode bertPeakBytes}). */
export function bertRowPeakBytes(c: BertConfig, seq: number, train: boolean): number {
  const { hiddenSize: H, numAttentionHeads: A, intermediateSize: I, numHiddenLayers: L } = c;
  // Per layer: q, k, v and their head layouts, context (2), attention output (2), two residual
  // sums, two LayerNorms, the output projection (2): 16 tensors of S·H; scores, probabilities
  // and dropped probabilities: 3 of A·S²; the feed-forward and its GELU: 2 of S·I. Embeddings:
  // 7 of S·H. Training counts them all kept for the backward and as many gradients: an upper
  // bound, since each layer frees what its backward does not read (model/bert.ts).
  const perRow = 4 * (L * (16 * seq * H + 3 * A * seq * seq + 2 * seq * I) + 7 * seq * H);
  return perRow * (train ? 2 : 1);
}

/**
 * f16-mixed (model/ops.ts `autocast`): per row of a micro-batch, an upper bound on the bytes of
 * the backward's transient copies: one matmul's f16 operand copies (the largest of BERT's, the
 * feed-forward's S·I activation beside S·H or the A·S² attention probabilities) or GELU's
 * float32 widening of its f16 input, on top of {@linkcode bertRowPeakBytes}. What mixed precision saves
 * is {@linkcode bertF16SavedBytesPerRow}.
 */
export function bertF16OperandBytesPerRow(c: BertConfig, seq: number): number {
  const { hiddenSize: H, numAttentionHeads: A, intermediateSize: I } = c;
  // Or GELU's backward widening its f16 input to float32 (S·I), whichever is larger.
  return Math.max(2 * seq * (I + Math.max(H, A * seq)), 4 * seq * I);
}

/**
 * The row-independent part of f16-mixed's copies: every matmul weight in f16 (the encoder's and
 * the pooler's), made once per micro-batch's forward and kept until its backward has used
 * them, as autocast's weight cast cache.
 */
export function bertF16OperandFixedBytes(c: BertConfig): number {
  const { hiddenSize: H, intermediateSize: I, numHiddenLayers: L } = c;
  return 2 * (L * (4 * H * H + 2 * H * I) + H * H);
}

/**
 * Bytes per row of a training micro-batch that f16-mixed keeps fewer of for the backward than
 * float32 (model/ops.ts `autocast`): per layer, the f16 copies of the six S·H matmul operands
 * (layer input, query, key, value, context, attention output after LayerNorm), of the two S·I
 * feed-forward tensors (GELU's input, the second matmul's) and, with dropout, of the dropped
 * attention probabilities A·S² replace their float32 originals: half their bytes. Without
 * dropout the probabilities are softmax's own output, which its backward reads in float32, so
 * their f16 copy is extra. Checked against the measured live bytes by train/precision_test.ts.
 */
export function bertF16SavedBytesPerRow(c: BertConfig, seq: number, dropout: boolean): number {
  const { hiddenSize: H, numAttentionHeads: A, intermediateSize: I, numHiddenLayers: L } = c;
  const probs = (dropout ? 2 : -2) * A * seq * seq;
  return L * (2 * (6 * seq * H + 2 * seq * I) + probs);
}

/**
 * A fine-tuning step's GPU bytes as {@linkcode splitBatch} takes them: `fixed` (weights, their
 * gradients and AdamW's two moments; under f16-mixed also the f16 weights) and `perRow` (the
 * activations' upper bound, {@linkcode bertRowPeakBytes}; under f16-mixed plus the backward's
 * transient f16 copies and minus what f16 copies save, {@linkcode bertF16SavedBytesPerRow}).
 * The plan's peak for `micro` rows is `fixed + micro · perRow`.
 */
export function bertTrainMemory(
  c: BertConfig,
  seq: number,
  o: { mixed: boolean; dropout: boolean },
): { fixed: number; perRow: number } {
  const f16Row = o.mixed
    ? bertF16OperandBytesPerRow(c, seq) - bertF16SavedBytesPerRow(c, seq, o.dropout)
    : 0;
  return {
    fixed: 4 * bertParamBytes(c) + (o.mixed ? bertF16OperandFixedBytes(c) : 0),
    perRow: bertRowPeakBytes(c, seq, true) + f16Row,
  };
}

/** Bytes of BERT's parameters (one copy). */
export function bertParamBytes(c: BertConfig): number {
  const { hiddenSize: H, intermediateSize: I, vocabSize: V, numHiddenLayers: L } = c;
  const layer = 4 * H * H + 4 * H + 2 * H * I + I + H + 4 * H;
  const emb = (V + c.maxPositionEmbeddings + c.typeVocabSize) * H + 2 * H;
  return 4 * (emb + L * layer + H * H + H);
}

/**
 * Bytes of an activation store of `rows` rows: the hidden states at 4 (f32) or 2 (f16) bytes,
 * plus the token inputs (3 × T int32), labels and indices.
 */
export function storeBytes(
  c: BertConfig,
  rows: number,
  seq: number,
  layout: "full" | "cls",
  dtype: "f32" | "f16",
  labelWidth = 1,
): number {
  const states = (c.numHiddenLayers + 1) * (layout === "full" ? seq : 1) * c.hiddenSize;
  return rows * (states * (dtype === "f16" ? 2 : 4) + 12 * seq + 8 * labelWidth + 8);
}

/**
 * Free bytes on the file system holding `path` (or its nearest existing parent), if known
 * (`df`); `BERTVISION_FREE_DISK_MIB` overrides it (a test hook).
 */
export async function freeDiskBytes(path: string): Promise<number | undefined> {
  // Test hook: pretend the disk has this many MiB free (a full disk cannot be arranged in CI).
  const fake = Deno.env.get("BERTVISION_FREE_DISK_MIB");
  if (fake !== undefined && fake !== "") return Number(fake) * MIB;
  let p = path;
  for (;;) {
    try {
      await Deno.stat(p);
      break;
    } catch {
      const up = p.includes("/") ? p.slice(0, p.lastIndexOf("/")) || "/" : ".";
      if (up === p) return undefined;
      p = up;
    }
  }
  try {
    const out = await new Deno.Command("df", { args: ["-Pk", p], stdout: "piped", stderr: "null" })
      .output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    const avail = Number(line.split(/\s+/)[3]);
    return Number.isFinite(avail) ? avail * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** One stage of a plan, as printed. */
export interface StagePlan {
  /** e.g. "fine-tune sst2", "capture train". */
  stage: string;
  /** Rows the stage goes over (examples, or SQuAD windows), and examples when they differ. */
  rows: number;
  examples?: number;
  split: Split;
  /** Estimated GPU bytes held at the peak. */
  peakBytes: number;
  /** Bytes the stage writes to disk (activation stores), and where. */
  writes?: { path: string; bytes: number };
  /** Estimated seconds, from a measured warm-up. */
  seconds?: number;
  /** Anything else worth a line (e.g. "stream: 2 extra forward passes"). */
  notes?: string[];
}

/** The plan's table, one line per stage, as a run prints it first and `--dry-run` alone. */
export function formatPlan(stages: StagePlan[], extra: string[] = []): string {
  const lines = ["plan:"];
  for (const s of stages) {
    const sp = s.split;
    const rows = s.examples !== undefined && s.examples !== s.rows
      ? `${s.rows} rows (${s.examples} examples)`
      : `${s.rows} rows`;
    const why = sp.byMemory
      ? "memory budget"
      : `${sp.largest.what}: ${fmtBytes(sp.largest.bytesPerRow * sp.micro)}`;
    const micro = sp.parts > 1
      ? `batch ${sp.batch} as ${sp.parts} micro-batches of ≤ ${sp.micro} (${why})`
      : `batch ${sp.batch} (largest: ${sp.largest.what}, ${
        fmtBytes(sp.largest.bytesPerRow * sp.batch)
      })`;
    lines.push(`  ${s.stage}: ${rows}; ${micro}; peak GPU ≈ ${fmtBytes(s.peakBytes)}`);
    if (s.writes) lines.push(`    writes ${fmtBytes(s.writes.bytes)} to ${s.writes.path}`);
    if (s.seconds !== undefined) lines.push(`    ≈ ${fmtSeconds(s.seconds)}`);
    for (const n of s.notes ?? []) lines.push(`    ${n}`);
  }
  lines.push(...extra.map((e) => `  ${e}`));
  return lines.join("\n");
}

function fmtSeconds(s: number): string {
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(1)} min`;
  return `${s.toFixed(1)} s`;
}
