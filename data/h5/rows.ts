/**
 * Rows of an activation store as the writer takes them ({@linkcode H5Rows}) and as the readers
 * give them ({@linkcode H5ReadRows}), with the helpers a read in another order needs.
 * Checked by data/h5_store_test.ts and data/shard_set_test.ts.
 * @module
 */
import type { StoreReader } from "./reader.ts";

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
export function rowWidths(shape: StoreReader["shape"], labelWidth: number): RowWidths {
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

/**
 * Rows of `reader` at `indices` in the order given (one shuffled batch), read with one
 * `readRows` hyperslab per run of consecutive indices: what every single-file reader's
 * `readIndices` is.
 */
export function readIndicesBy(
  reader: Pick<StoreReader, "path" | "shape" | "labelWidth" | "readRows">,
  indices: ArrayLike<number>,
): H5ReadRows {
  const n = indices.length;
  const widths = rowWidths(reader.shape, reader.labelWidth);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => indices[a] - indices[b]);
  let out: H5ReadRows | null = null;
  for (let i = 0; i < n;) {
    let j = i + 1;
    while (j < n && indices[order[j]] <= indices[order[j - 1]] + 1) j++;
    const lo = indices[order[i]];
    const part = reader.readRows(lo, indices[order[j - 1]] - lo + 1);
    out ??= emptyRows(n, widths, part);
    for (let k = i; k < j; k++) copyRow(out, order[k], part, indices[order[k]] - lo, widths);
    i = j;
  }
  if (!out) throw new Error(`${reader.path}: readIndices needs at least one index`);
  return out;
}
