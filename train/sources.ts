/**
 * Where a BERTVision head's input comes from: the hidden states of a task split, row by row.
 *
 * - {@linkcode StoreSource}: an HDF5 activation store written by `capture` (data/h5_store.ts),
 *   or the shards of a sharded capture read as one (data/shard_set.ts), read per batch
 *   (shuffled rows with `readIndices`, consecutive blocks with `readRows`) and uploaded.
 * - {@linkcode StreamSource}: no store at all. A frozen BERT checkpoint computes the hidden
 *   states of the split's token rows on the fly, laid out on the GPU exactly as capture lays
 *   them out for the store (`recordCaptureBatch`), and hands them to the head without a
 *   readback. Rows are the same as the store's (same reader, same order), so a head trained from
 *   a stream sees the same values as one trained from a float32 full-layout store.
 *
 * Either gives, for any rows, a GPU tensor [B, L, T, F] ("full") or [B, L, F] ("cls") with the
 * rows' labels and example indices, so one batch's tensor can feed several heads. Checked by
 * train/ap_train_test.ts (store) and train/stream_test.ts (stream equals store).
 * @module
 */
import type { BertModel } from "../model/bert.ts";
import { noGrad, scope, Tensor } from "../model/tensor.ts";
import type { H5ReadRows, StoreReader } from "../data/h5_store.ts";
import { openStore } from "../data/shard_set.ts";
import type { TaskKind } from "../tasks/mod.ts";
import { recordCaptureBatch } from "./capture.ts";
import { pickBatch, type SplitRows } from "./rows.ts";
import { bertParamBytes, bertPeakBytes, type RowTensor } from "./plan.ts";
import type { LogitRowsSource } from "../data/logit_rows.ts";

/** The shape of the hidden states a source holds. */
export interface SourceShape {
  /** Rows: examples, or SQuAD windows. */
  n: number;
  /** Stored layers L+1. */
  layers: number;
  /** Tokens per row (max_seq_length). */
  tokens: number;
  /** Features per token (hidden size). */
  hidden: number;
  layout: "full" | "cls";
}

/** Some rows of a source: their hidden states on the GPU, labels and example indices. */
export interface SourceRows {
  /** [B, L, T, F] ("full") or [B, L, F] ("cls"); the caller disposes it. */
  x: Tensor;
  /** B × labelWidth labels (-1 / NaN where a row has none). */
  labels: ArrayLike<number>;
  /** Example (or SQuAD question) index of each row. */
  idx: Float64Array;
}

/** A task split's hidden states, by row. */
export interface ActivationSource {
  /** Names the source in messages: "HDF5 file X" or "stream of Y over Z". */
  readonly name: string;
  /**
   * What the rows' values depend on, for comparing runs: a store's completion fingerprint
   * (its path when it has none), or a stream's weights hash and rows hash.
   */
  readonly fingerprint: string;
  readonly shape: SourceShape;
  /** Labels per row. */
  readonly labelWidth: number;
  /** The rows `rows` (any order, repeats allowed). */
  take(rows: ArrayLike<number>): SourceRows;
  /** Rows [start, start + count). */
  range(start: number, count: number): SourceRows;
  /** What one row allocates on the GPU (the planner's input), beyond the head's own tensors. */
  rowTensors(): RowTensor[];
  /** Estimated GPU bytes the source holds while giving `rows` rows (its model included). */
  peakBytes(rows: number): number;
  /** Closes files / frees the model. */
  close(): void;
  /**
   * Which rows it holds, for the record beside saved logits (data/logit_rows.ts): the data file
   * and rows hash it was made from, and every row's token ids.
   */
  rowsIdentity(): RowsIdentity;
}

/** What {@linkcode ActivationSource.rowsIdentity} gives. */
export type RowsIdentity = Omit<LogitRowsSource, "idx">;

function inputShape(s: SourceShape, rows: number): number[] {
  return s.layout === "full" ? [rows, s.layers, s.tokens, s.hidden] : [rows, s.layers, s.hidden];
}

/** Per-row bytes of a head input of this shape. */
function inputRowTensor(s: SourceShape): RowTensor {
  const t = s.layout === "full" ? s.tokens : 1;
  return {
    what: `hidden states [${s.layers}×${s.layout === "full" ? `${t}×` : ""}${s.hidden}]`,
    bytesPerRow: 4 * s.layers * t * s.hidden,
  };
}

/** Hidden states read from an HDF5 activation store. */
export class StoreSource implements ActivationSource {
  readonly reader: StoreReader;
  readonly name: string;
  readonly fingerprint: string;
  readonly shape: SourceShape;

  private constructor(reader: StoreReader) {
    this.reader = reader;
    this.name = `HDF5 file ${reader.path}`;
    this.fingerprint = reader.fingerprint ?? reader.path;
    this.shape = { ...reader.shape };
  }

  /**
   * Opens a store, or a shard set read as one store (a glob or a `.txt` manifest of the shards
   * of `capture --shard I/N`, data/shard_set.ts); errors name the file.
   */
  static async open(path: string): Promise<StoreSource> {
    return new StoreSource(await openStore(path));
  }

  /** A source over a reader the caller opened (and closes). */
  static of(reader: StoreReader): StoreSource {
    return new StoreSource(reader);
  }

  get labelWidth(): number {
    return this.reader.labelWidth;
  }

  #upload(data: H5ReadRows, count: number): SourceRows {
    const x = Tensor.from(data.embeds, inputShape(this.shape, count), { name: "x" });
    return { x, labels: data.labels, idx: data.idx };
  }

  take(rows: ArrayLike<number>): SourceRows {
    return this.#upload(this.reader.readIndices(rows), rows.length);
  }

  range(start: number, count: number): SourceRows {
    return this.#upload(this.reader.readRows(start, count), count);
  }

  rowTensors(): RowTensor[] {
    return [inputRowTensor(this.shape)];
  }

  peakBytes(rows: number): number {
    return rows * inputRowTensor(this.shape).bytesPerRow;
  }

  close(): void {
    this.reader.close();
  }

  rowsIdentity(): RowsIdentity {
    const a = this.reader.attrs;
    return {
      dataFile: typeof a.data_file === "string" ? a.data_file : undefined,
      inputsHash: typeof a.inputs_hash === "string" ? a.inputs_hash : undefined,
      source: this.name,
      sourceFingerprint: this.fingerprint,
      // The seed's three-file stores hold no token ids: their rows are told apart by index.
      ids: (this.reader as { hasInputIds?: boolean }).hasInputIds === false
        ? undefined
        : this.reader.readInputIds(),
      tokens: this.shape.tokens,
    };
  }
}

/**
 * Hidden states computed now by a frozen BERT over a split's token rows (no store). The model is
 * the caller's (it may serve several sources) unless `ownsModel`.
 */
export class StreamSource implements ActivationSource {
  readonly name: string;
  readonly fingerprint: string;
  readonly shape: SourceShape;
  readonly labelWidth: number;
  readonly rows: SplitRows;
  readonly #model: BertModel;
  readonly #owns: boolean;

  constructor(
    model: BertModel,
    rows: SplitRows,
    kind: TaskKind,
    o: { layout: "full" | "cls"; modelName: string; weightsHash: string; ownsModel?: boolean },
  ) {
    this.#model = model;
    this.#owns = o.ownsModel ?? false;
    this.rows = rows;
    this.labelWidth = kind.labelWidth;
    this.name = `stream of ${o.modelName} over ${rows.dataFile}`;
    this.fingerprint = `${o.weightsHash}:${o.layout}:${rows.hash}`;
    this.shape = {
      n: rows.n,
      layers: model.config.numHiddenLayers + 1,
      tokens: rows.seq,
      hidden: model.config.hiddenSize,
      layout: o.layout,
    };
  }

  take(which: ArrayLike<number>): SourceRows {
    const { batch, labels } = pickBatch(this.rows, which);
    const x = noGrad(() => scope(() => recordCaptureBatch(this.#model, batch, this.shape.layout)));
    return { x, labels, idx: Float64Array.from(which, (r) => this.rows.idx[r]) };
  }

  range(start: number, count: number): SourceRows {
    return this.take(Int32Array.from({ length: count }, (_, i) => start + i));
  }

  rowTensors(): RowTensor[] {
    const c = this.#model.config, S = this.rows.seq;
    const { numAttentionHeads: A, intermediateSize: I } = c;
    return [
      inputRowTensor(this.shape),
      { what: `attention scores [${A}×${S}×${S}]`, bytesPerRow: 4 * A * S * S },
      { what: `feed-forward activations [${S}×${I}]`, bytesPerRow: 4 * S * I },
    ];
  }

  peakBytes(rows: number): number {
    const c = this.#model.config;
    return bertPeakBytes(c, this.rows.seq, rows, bertParamBytes(c), false) +
      rows * inputRowTensor(this.shape).bytesPerRow;
  }

  close(): void {
    if (this.#owns) this.#model.dispose();
  }

  rowsIdentity(): RowsIdentity {
    return {
      dataFile: this.rows.dataFile,
      inputsHash: this.rows.hash,
      source: this.name,
      sourceFingerprint: this.fingerprint,
      ids: this.rows.inputIds,
      tokens: this.rows.seq,
    };
  }
}
