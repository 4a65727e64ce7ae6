/**
 * The inputs of layer probes (train/heads/probe.ts): a store's rows pooled per layer on the host
 * as they are read ({@linkcode PooledSource}), one layer of them ({@linkcode LayerView},
 * {@linkcode selectLayer}).
 *
 * - "cls": each layer's [CLS] vector (token 0), [B, L, F]; a "cls" store is that already.
 * - "mean": each layer's mean over the row's real tokens (attention mask 1), [B, L, F]; needs the
 *   full layout.
 * - "token": every token, [B, L, T, F], unchanged (span probes).
 *
 * A stream (`probe --activations stream`, {@linkcode StreamPooled}) pools the same way on the
 * GPU, in the same order of float32 operations as {@linkcode poolRows} on the host (the masked
 * tokens summed in token order from 0, then one multiplication by the float32 1/count), so a
 * stream's pooled rows equal a float32 store's of the same checkpoint and rows bit for bit
 * (train/heads/probe_test.ts).
 * @module
 */
import { gatherRows, mul, permute, sum } from "../../model/ops.ts";
import { noGrad, Tensor } from "../../model/tensor.ts";
import type { H5ReadRows } from "../../data/h5_store.ts";
import type { RowTensor } from "../plan.ts";
import type {
  ActivationSource,
  RowsIdentity,
  SourceRows,
  SourceShape,
  StoreSource,
  StreamSource,
} from "../sources.ts";

/** How a probe reads a row's layer: [CLS], mean over real tokens, or per token (span). */
export type ProbePool = "cls" | "mean" | "token";

/** Pooled dev rows held in memory up to this many bytes (read once, evaluated L+1 times). */
const CACHE_BYTES = 512 * 2 ** 20;

/** Pools full-layout rows [n, L, T, F] to [n, L, F] (token 0, or the masked mean). */
export function poolRows(
  embeds: Float32Array,
  mask: Int32Array,
  n: number,
  s: Pick<SourceShape, "layers" | "tokens" | "hidden">,
  pool: "cls" | "mean",
): Float32Array {
  const { layers: L, tokens: T, hidden: F } = s;
  const out = new Float32Array(n * L * F);
  for (let i = 0; i < n; i++) {
    let real = 0;
    for (let t = 0; t < T; t++) real += mask[i * T + t] ? 1 : 0;
    for (let l = 0; l < L; l++) {
      const src = (i * L + l) * T * F, dst = (i * L + l) * F;
      if (pool === "cls") {
        out.set(embeds.subarray(src, src + F), dst);
        continue;
      }
      // A row without real tokens (none captured so) averages nothing: zeros. The float32
      // 1/count, as the GPU multiplies by it (meanPoolGpu): the same rounding.
      const inv = real ? Math.fround(1 / real) : 0;
      for (let t = 0; t < T; t++) {
        if (!mask[i * T + t]) continue;
        const at = src + t * F;
        for (let f = 0; f < F; f++) out[dst + f] += embeds[at + f];
      }
      for (let f = 0; f < F; f++) out[dst + f] *= inv;
    }
  }
  return out;
}

/**
 * What the store's and the stream's pooled sources share: the inner source, the pooling, the
 * pooled shape (a [CLS]-layout row per layer unless "token") and whether rows are kept.
 */
abstract class PooledBase<I extends StoreSource | StreamSource> {
  readonly name: string;
  readonly fingerprint: string;
  readonly shape: SourceShape;
  readonly inner: I;
  readonly pool: ProbePool;
  /** Whether the pooled rows are kept on the host (asked for, and within CACHE_BYTES). */
  protected readonly useCache: boolean;

  constructor(inner: I, pool: ProbePool, cache: boolean) {
    this.inner = inner;
    this.pool = pool;
    this.name = inner.name;
    this.fingerprint = inner.fingerprint;
    this.shape = pool === "token" ? { ...inner.shape } : { ...inner.shape, layout: "cls" };
    this.useCache = cache && this.rowValues() * 4 * inner.shape.n <= CACHE_BYTES;
  }

  get labelWidth(): number {
    return this.inner.labelWidth;
  }

  /** The inner source's rows, in the same order (only the activations change). */
  rowsIdentity(): RowsIdentity {
    return this.inner.rowsIdentity();
  }

  /** Values per pooled row. */
  protected rowValues(): number {
    const s = this.shape;
    return s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden;
  }
}

/** A store's rows pooled per layer as they are read; with `cache`, read once and kept. */
export class PooledSource extends PooledBase<StoreSource> implements ActivationSource {
  #cache: { embeds: Float32Array; labels: ArrayLike<number>; idx: Float64Array } | null = null;

  /** Pools `inner`'s rows by `pool`; with `cache`, reads them once and keeps them. */
  constructor(inner: StoreSource, pool: ProbePool, cache = false) {
    super(inner, pool, cache);
  }

  #pooled(d: H5ReadRows, n: number): Float32Array {
    const s = this.inner.shape;
    if (this.pool === "token" || s.layout === "cls") return d.embeds;
    return poolRows(d.embeds, d.attentionMask, n, s, this.pool);
  }

  #upload(embeds: Float32Array, labels: ArrayLike<number>, idx: Float64Array): SourceRows {
    const s = this.shape, n = idx.length;
    const shape = s.layout === "full" ? [n, s.layers, s.tokens, s.hidden] : [n, s.layers, s.hidden];
    return { x: Tensor.from(embeds, shape, { name: "x" }), labels, idx };
  }

  #fill() {
    if (this.#cache) return this.#cache;
    const n = this.shape.n, w = this.rowValues(), lw = this.labelWidth;
    const embeds = new Float32Array(n * w), idx = new Float64Array(n);
    let labels: Float32Array | Int32Array | null = null;
    const block = 256;
    for (let s = 0; s < n; s += block) {
      const c = Math.min(block, n - s);
      const d = this.inner.reader.readRows(s, c);
      embeds.set(this.#pooled(d, c), s * w);
      labels ??= new (d.labels instanceof Float32Array ? Float32Array : Int32Array)(n * lw);
      labels.set(d.labels, s * lw);
      idx.set(d.idx, s);
    }
    return this.#cache = { embeds, labels: labels ?? new Int32Array(0), idx };
  }

  take(rows: ArrayLike<number>): SourceRows {
    if (this.useCache) {
      const c = this.#fill(), w = this.rowValues(), lw = this.labelWidth, n = rows.length;
      const e = new Float32Array(n * w), idx = new Float64Array(n);
      const labels = new (c.labels instanceof Float32Array ? Float32Array : Int32Array)(n * lw);
      for (let i = 0; i < n; i++) {
        const r = rows[i];
        e.set(c.embeds.subarray(r * w, (r + 1) * w), i * w);
        for (let k = 0; k < lw; k++) labels[i * lw + k] = c.labels[r * lw + k];
        idx[i] = c.idx[r];
      }
      return this.#upload(e, labels, idx);
    }
    const d = this.inner.reader.readIndices(rows);
    return this.#upload(this.#pooled(d, rows.length), d.labels, d.idx);
  }

  range(start: number, count: number): SourceRows {
    if (this.useCache) return this.take(Int32Array.from({ length: count }, (_, i) => start + i));
    const d = this.inner.reader.readRows(start, count);
    return this.#upload(this.#pooled(d, count), d.labels, d.idx);
  }

  rowTensors(): RowTensor[] {
    const s = this.shape, t = s.layout === "full" ? s.tokens : 1;
    return [{
      what: `${this.pool} features [${s.layers}×${t > 1 ? `${t}×` : ""}${s.hidden}]`,
      bytesPerRow: 4 * this.rowValues(),
    }];
  }

  peakBytes(rows: number): number {
    return rows * 4 * this.rowValues();
  }

  close(): void {
    this.inner.close();
  }
}

/** Layer `k` of `x` [B, L, ...] as [B, 1, ...] (a GPU gather; no gradient flows to `x`). */
export function selectLayer(x: Tensor, k: number): Tensor {
  const [B, L] = x.shape;
  if (!(Number.isInteger(k) && k >= 0 && k < L)) {
    throw new RangeError(`selectLayer: layer ${k} of ${x.describe()}`);
  }
  const rest = x.shape.slice(2);
  const width = rest.reduce((a, b) => a * b, 1);
  const rows = Int32Array.from({ length: B }, (_, b) => b * L + k);
  return gatherRows(x.reshape([B * L, width]), rows, `layer ${k}`).reshape([B, 1, ...rest]);
}

/** One layer of a source: its rows as [B, 1, ...] (a probe's dev source). */
export class LayerView implements ActivationSource {
  readonly name: string;
  readonly fingerprint: string;
  readonly shape: SourceShape;
  readonly inner: ActivationSource;
  readonly layer: number;

  constructor(inner: ActivationSource, layer: number) {
    this.inner = inner;
    this.layer = layer;
    this.name = `${inner.name} (layer ${layer})`;
    this.fingerprint = inner.fingerprint;
    this.shape = { ...inner.shape, layers: 1 };
  }

  get labelWidth(): number {
    return this.inner.labelWidth;
  }

  /** The inner source's rows, in the same order (only the activations change). */
  rowsIdentity(): RowsIdentity {
    return this.inner.rowsIdentity();
  }

  #one(d: SourceRows): SourceRows {
    const x = selectLayer(d.x, this.layer);
    d.x.dispose();
    return { ...d, x };
  }

  take(rows: ArrayLike<number>): SourceRows {
    return this.#one(this.inner.take(rows));
  }

  range(start: number, count: number): SourceRows {
    return this.#one(this.inner.range(start, count));
  }

  rowTensors(): RowTensor[] {
    return this.inner.rowTensors();
  }

  peakBytes(rows: number): number {
    return this.inner.peakBytes(rows);
  }

  /** The inner source is the probe pass's: it closes it. */
  close(): void {}
}

/**
 * The masked mean over the tokens of x [B, L, T, F] on the GPU, [B, L, F]: as
 * {@linkcode poolRows} computes it on the host, operation for operation (each feature's real
 * tokens summed in token order from 0 by the sum kernel, whose order is fixed, then multiplied
 * by the float32 1/count), so the values are the same bits. `mask` holds B × T attention-mask
 * entries. (A sum over more than 256 tokens with fewer than 4,096 outputs is split in chunks by
 * kernels/reduce.ts, which rounds differently: there the two agree to float32 rounding.)
 */
export function meanPoolGpu(x: Tensor, mask: ArrayLike<number>): Tensor {
  if (x.shape.length !== 4 || mask.length !== x.shape[0] * x.shape[2]) {
    throw new RangeError(`meanPoolGpu: ${x.describe()} with ${mask.length} mask entries`);
  }
  const [B, L, T] = x.shape;
  const m = new Float32Array(B * L * T), inv = new Float32Array(B * L);
  for (let b = 0; b < B; b++) {
    let real = 0;
    for (let t = 0; t < T; t++) real += mask[b * T + t] ? 1 : 0;
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) m[(b * L + l) * T + t] = mask[b * T + t] ? 1 : 0;
      inv[b * L + l] = real ? 1 / real : 0;
    }
  }
  return noGrad(() => {
    // [F, B, L, T]: the mask and the counts broadcast over the leading axis (ops.ts mul).
    const xp = permute(x, [3, 0, 1, 2]);
    const mt = Tensor.from(m, [B, L, T], { name: "token mask" });
    const masked = mul(xp, mt);
    xp.dispose();
    mt.dispose();
    const sums = sum(masked, 3);
    masked.dispose();
    const it = Tensor.from(inv, [B, L], { name: "1/tokens" });
    const means = mul(sums, it);
    sums.dispose();
    it.dispose();
    const out = permute(means, [1, 2, 0]);
    means.dispose();
    return out;
  });
}

/**
 * A stream's rows pooled per layer on the GPU (`probe --activations stream`): "cls" reads a
 * stream of [CLS] layout as it is, "mean" averages a full-layout stream over each row's real
 * tokens ({@linkcode meanPoolGpu}), "token" passes every token. With `cache` (dev splits, each
 * evaluated by L+1 probes), {@linkcode prepare} computes the pooled rows once and keeps them on
 * the host (up to 512 MiB), so each probe's evaluation uploads them instead of running BERT.
 */
export class StreamPooled extends PooledBase<StreamSource> implements ActivationSource {
  #cache: { embeds: Float32Array; labels: Float64Array; idx: Float64Array } | null = null;

  /** Pools `inner`'s rows by `pool` (its layout must fit); with `cache`, see the class note. */
  constructor(inner: StreamSource, pool: ProbePool, cache = false) {
    const want = pool === "cls" ? "cls" : "full";
    if (inner.shape.layout !== want) {
      throw new Error(`StreamPooled: ${pool} pooling needs a ${want}-layout stream (a bug)`);
    }
    super(inner, pool, cache);
  }

  #compute(which: ArrayLike<number>): SourceRows {
    const d = this.inner.take(which);
    if (this.pool !== "mean") return d;
    const T = this.inner.rows.seq, all = this.inner.rows.attentionMask;
    const mask = new Int32Array(which.length * T);
    for (let i = 0; i < which.length; i++) {
      mask.set(all.subarray(which[i] * T, (which[i] + 1) * T), i * T);
    }
    const x = meanPoolGpu(d.x, mask);
    d.x.dispose();
    return { ...d, x };
  }

  /** With `cache`: computes every row's pooled features once, read back to the host. */
  async prepare(): Promise<void> {
    if (!this.useCache || this.#cache) return;
    const n = this.shape.n, w = this.rowValues(), lw = this.labelWidth;
    const embeds = new Float32Array(n * w), labels = new Float64Array(n * lw);
    const idx = new Float64Array(n);
    const block = 32;
    for (let s = 0; s < n; s += block) {
      const c = Math.min(block, n - s);
      const d = this.#compute(Int32Array.from({ length: c }, (_, i) => s + i));
      try {
        embeds.set(await d.x.readF32(), s * w);
      } finally {
        d.x.dispose();
      }
      for (let k = 0; k < c * lw; k++) labels[s * lw + k] = d.labels[k];
      idx.set(d.idx, s);
    }
    this.#cache = { embeds, labels, idx };
  }

  take(rows: ArrayLike<number>): SourceRows {
    const c = this.#cache;
    if (!c) return this.#compute(rows);
    const w = this.rowValues(), lw = this.labelWidth, n = rows.length, s = this.shape;
    const e = new Float32Array(n * w), labels = new Float64Array(n * lw);
    const idx = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      e.set(c.embeds.subarray(r * w, (r + 1) * w), i * w);
      for (let k = 0; k < lw; k++) labels[i * lw + k] = c.labels[r * lw + k];
      idx[i] = c.idx[r];
    }
    const shape = s.layout === "full" ? [n, s.layers, s.tokens, s.hidden] : [n, s.layers, s.hidden];
    return { x: Tensor.from(e, shape, { name: "x" }), labels, idx };
  }

  range(start: number, count: number): SourceRows {
    return this.take(Int32Array.from({ length: count }, (_, i) => start + i));
  }

  rowTensors(): RowTensor[] {
    const s = this.shape, t = s.layout === "full" ? s.tokens : 1;
    return [
      {
        what: `${this.pool} features [${s.layers}×${t > 1 ? `${t}×` : ""}${s.hidden}]`,
        bytesPerRow: 4 * this.rowValues(),
      },
      ...this.inner.rowTensors(),
    ];
  }

  peakBytes(rows: number): number {
    const s = this.inner.shape;
    // Mean pooling: the permuted and the masked copies of the full rows, beside BERT's output.
    const pooling = this.pool === "mean" ? 2 * rows * 4 * s.layers * s.tokens * s.hidden : 0;
    return this.inner.peakBytes(rows) + pooling + rows * 4 * this.rowValues();
  }

  close(): void {
    this.inner.close();
  }
}
