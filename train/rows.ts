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
import type { BertTokenizerLike } from "../data/tokenize.ts";
import { takeRows } from "../data/batches.ts";
import { kindOf, type Task, type TaskRows } from "../tasks/mod.ts";

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

function hashRows(parts: ArrayBufferView[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  return h.digest("hex").slice(0, 16);
}

/** Whether a split argument is a file path rather than a split name. */
export function isSplitFile(split: string): boolean {
  return /\.(tsv|json)$/.test(split);
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
  const rel = o.dataFile ? undefined : task.fileFor(o.split);
  const path = o.dataFile ?? `${o.dataDir!.replace(/\/+$/, "")}/${rel}`;
  const dataFile = rel ?? path.slice(path.lastIndexOf("/") + 1);
  // Readers name the path for a missing or malformed file; other I/O errors may not.
  const named = (e: Error) =>
    e.message.includes(`${path} `) || e.message.includes(`${path}:`)
      ? e
      : new Error(`${path}: cannot read it (${e.message})`);
  const rows = await task.readRows(path, {
    tokenizer: o.tokenizer,
    maxSeqLength: o.maxSeqLength,
    limit: o.limit,
    test: o.split.startsWith("test"),
    workers: o.workers,
    training: o.training,
  }).catch((e) => {
    throw named(e);
  });
  if (kindOf(task).labelType === "int64") {
    // int64 cannot hold NaN: unlabelled (test) rows get -1.
    rows.labels = rows.labels.map((v) => Number.isNaN(v) ? -1 : v);
  }
  const hash = hashRows([
    rows.inputIds,
    rows.tokenTypeIds,
    rows.attentionMask,
    rows.labels,
    rows.idx,
  ]);
  return { ...rows, split: o.split, dataFile, path, hash };
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
