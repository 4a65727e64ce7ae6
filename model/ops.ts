/**
 * Differentiable ops on {@linkcode Tensor}s: each checks its inputs (throwing before anything is
 * dispatched), records the forward kernels, and registers its backward on the tape.
 *
 * Host-side integer inputs (token ids, labels, gather indices) are taken as `Int32Array`s: the
 * host owns them, can validate them, and builds what their backward needs (the CSR grouping of
 * the embedding scatter-add) without a readback.
 * @module
 */
import { matmul as matmulKernel, type MatmulVariant } from "../kernels/matmul.ts";
import { castToF16, castToF32, f16Bytes } from "../kernels/cast.ts";
import { axpy, binary, fill, unaryBackward, unaryForward } from "../kernels/elementwise.ts";
import { reduceScratchSize, sumAxis } from "../kernels/reduce.ts";
import { layerNormBackward, layerNormForward } from "../kernels/layernorm.ts";
import { softmaxBackward, softmaxForward } from "../kernels/softmax.ts";
import {
  buildCsr,
  checkIndices,
  gatherRows as gatherKernel,
  permute as permuteKernel,
  scatterAddRows,
} from "../kernels/gather.ts";
import { dropout as dropoutKernel } from "../kernels/dropout.ts";
import { crossEntropyBackward, crossEntropyRows, mseBackward, mseElems } from "../kernels/loss.ts";
import { gpu, keep, numel, record, Tensor, wouldRecord } from "./tensor.ts";

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmt(s: readonly number[]): string {
  return `[${s.join(", ")}]`;
}

function checkF32(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    void t.buffer; // throws on use after dispose
    if (t.dtype !== "f32") throw new TypeError(`${op}: ${t.describe()} must be f32`);
  }
}

/** Sums `t` over its leading axes down to `shape` (a suffix of t's shape). */
function sumToSuffix(t: Tensor, shape: readonly number[]): Tensor {
  const inner = numel(shape);
  const outerN = t.size / inner;
  return sumOver(t, 1, outerN, inner, shape);
}

/** Σ over the middle of (outer, axis, inner) → tensor of `shape` (deterministic). */
function sumOver(
  t: Tensor,
  outer: number,
  axis: number,
  inner: number,
  shape: readonly number[],
  alpha = 1,
): Tensor {
  const out = Tensor.empty(shape);
  const scratchN = reduceScratchSize(outer, axis, inner);
  const scratch = scratchN ? Tensor.empty([scratchN]) : null;
  sumAxis(gpu(), t.buffer, out.buffer, outer, axis, inner, alpha, scratch?.buffer);
  scratch?.dispose();
  return out;
}

// ---------------------------------------------------------------------------------- binary

function broadcastable(op: string, a: Tensor, b: Tensor): void {
  const k = b.shape.length;
  if (k > a.shape.length || !sameShape(a.shape.slice(a.shape.length - k), b.shape)) {
    throw new RangeError(
      `${op}: shapes ${fmt(a.shape)} and ${fmt(b.shape)} do not match (b must equal a or a ` +
        `trailing part of a's shape, e.g. a bias)`,
    );
  }
}

/** a + b; b may be a trailing part of a's shape (broadcast over the leading axes). */
export function add(a: Tensor, b: Tensor): Tensor {
  checkF32("add", a, b);
  broadcastable("add", a, b);
  const out = Tensor.empty(a.shape);
  binary(gpu(), "add", a.buffer, b.buffer, out.buffer, a.size, b.size);
  record([a, b], out, (g) => [g, b.size === a.size ? g : sumToSuffix(g, b.shape)], { reads: [] });
  return out;
}

/** a - b (same broadcasting as {@linkcode add}). */
export function sub(a: Tensor, b: Tensor): Tensor {
  checkF32("sub", a, b);
  broadcastable("sub", a, b);
  const out = Tensor.empty(a.shape);
  binary(gpu(), "sub", a.buffer, b.buffer, out.buffer, a.size, b.size);
  record([a, b], out, (g) => {
    const gb = b.size === a.size ? g : sumToSuffix(g, b.shape);
    const neg = scale(gb, -1);
    if (gb !== g) gb.dispose();
    return [g, neg];
  }, { reads: [] });
  return out;
}

/** a · b elementwise (same broadcasting as {@linkcode add}). */
export function mul(a: Tensor, b: Tensor): Tensor {
  checkF32("mul", a, b);
  broadcastable("mul", a, b);
  const out = Tensor.empty(a.shape);
  binary(gpu(), "mul", a.buffer, b.buffer, out.buffer, a.size, b.size);
  record([a, b], out, (g) => {
    const ga = a.requiresGrad ? mulRaw(g, b) : null;
    let gb: Tensor | null = null;
    if (b.requiresGrad) {
      const full = mulRaw(g, a);
      gb = b.size === a.size ? full : sumToSuffix(full, b.shape);
      if (gb !== full) full.dispose();
    }
    return [ga, gb];
  });
  return out;
}

function mulRaw(a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(a.shape);
  binary(gpu(), "mul", a.buffer, b.buffer, out.buffer, a.size, b.size);
  return out;
}

// ----------------------------------------------------------------------------------- unary

/** What a unary op's backward reads: its input, its output (tanh) or neither (scale). */
const UNARY_READS: Record<string, "x" | "y" | "none"> = {
  gelu: "x",
  tanh: "y",
  scale: "none",
  square: "x",
  relu: "x",
};

function unary(op: string, x: Tensor, c = 0): Tensor {
  checkF32(op, x);
  const y = Tensor.empty(x.shape);
  unaryForward(gpu(), op, x.buffer, y.buffer, x.size, c);
  const reads = UNARY_READS[op];
  // GELU on a matmul's result under autocast (f16 in torch): its backward reads an f16 copy,
  // widened for the kernel (the float32 input is freed with its scope). The forward ran on the
  // float32 input; torch's on the f16 one (its output is f16 too).
  if (op === "gelu" && halfResults.has(x) && isAutocast() && wouldRecord([x])) {
    const hx = halfCopy(x);
    record([x], y, (g) => {
      const wide = Tensor.empty(x.shape);
      castToF32(gpu(), hx.buffer, wide.buffer, x.size);
      const dx = Tensor.empty(x.shape);
      unaryBackward(gpu(), op, wide.buffer, wide.buffer, g.buffer, dx.buffer, x.size, c);
      wide.dispose();
      return [dx];
    }, { owned: [hx], reads: [] });
    return y;
  }
  record([x], y, (g) => {
    const dx = Tensor.empty(x.shape);
    // A tensor the formula does not read is bound as another one (its buffer may be freed).
    const xb = reads === "y" ? y.buffer : reads === "none" ? g.buffer : x.buffer;
    const yb = reads === "x" ? x.buffer : reads === "none" ? g.buffer : y.buffer;
    unaryBackward(gpu(), op, xb, yb, g.buffer, dx.buffer, x.size, c);
    return [dx];
  }, { reads: reads === "x" ? [x] : reads === "y" ? [y] : reads === "none" ? [] : [x, y] });
  return y;
}

/** Exact (erf) GELU, as BERT uses: x · Φ(x). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
/** tanh. */
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
/** c · x. */
export const scale = (x: Tensor, c: number): Tensor => unary("scale", x, c);
/** x². */
export const square = (x: Tensor): Tensor => unary("square", x);
/** max(x, 0). */
export const relu = (x: Tensor): Tensor => unary("relu", x);

/** A tensor of ones shaped like `t`. */
export function onesLike(t: Tensor): Tensor {
  const o = Tensor.empty(t.shape);
  fill(gpu(), o.buffer, o.size, 1);
  return o;
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number): Tensor {
  const o = Tensor.empty(shape);
  fill(gpu(), o.buffer, o.size, value);
  return o;
}

/** acc += alpha · b in place (no tape): gradient accumulation, manual updates. */
export function addInPlace(acc: Tensor, b: Tensor, alpha = 1): void {
  checkF32("addInPlace", acc, b);
  if (acc.size !== b.size) {
    throw new RangeError(`addInPlace: ${acc.describe()} and ${b.describe()} differ in size`);
  }
  axpy(gpu(), acc.buffer, b.buffer, acc.size, alpha);
}

// ---------------------------------------------------------------------------------- matmul

let autocastDepth = 0;
/** The f16 copies made under the outermost {@linkcode autocast}, one per float32 tensor. */
let halfCache: Map<Tensor, Tensor> | null = null;
/** Results of matmuls recorded under autocast: f16 in torch, so GELU on them saves f16. */
const halfResults = new WeakSet<Tensor>();

/**
 * Runs `fn` under autocast (mixed precision, as `torch.autocast`'s op lists have it): every
 * {@linkcode matmul} and {@linkcode linear} recorded inside, and its backward matmuls, read f16
 * copies of their operands and accumulate in float32; LayerNorm, softmax, the losses, reductions
 * and the optimizer stay float32, as do the tensors the forward passes between ops.
 *
 * What the backward keeps is f16 where autocast's is: a recorded matmul saves the f16 copies of
 * its operands instead of its float32 operands, and GELU on a matmul's result (f16 under
 * autocast) an f16 copy of its input. The copies are made once per tensor while `fn` runs and
 * shared by every op saving that tensor (torch's cast cache holds weights only, so its query,
 * key and value projections each save their own copy of the input; the values are the same).
 * The float32 tensors are then freed with their {@linkcode scope} (model/bert.ts scopes each
 * layer): at BERT-base and 384 tokens a layer keeps about 64% of float32's bytes. The copies
 * assume no tensor is changed in place while `fn` runs; `fn` must be synchronous.
 */
export function autocast<T>(fn: () => T): T {
  if (autocastDepth++ === 0) halfCache = new Map();
  try {
    const r = fn();
    if (r instanceof Promise) {
      // Its awaits would run after autocast has ended, silently in float32.
      throw new TypeError("autocast: fn must be synchronous (it returned a Promise)");
    }
    return r;
  } finally {
    if (--autocastDepth === 0) {
      // The saving ops hold their own handles; the cache's go.
      for (const h of halfCache!.values()) h.dispose();
      halfCache = null;
    }
  }
}

/** Whether ops are being recorded under {@linkcode autocast}. */
export function isAutocast(): boolean {
  return autocastDepth > 0;
}

/**
 * A handle on the f16 copy of `t` (its own dispose): one copy per tensor under
 * {@linkcode autocast}, shared through the cache; `t` itself when it is already f16.
 */
function halfCopy(t: Tensor): Tensor {
  if (t.dtype === "f16") return t.alias();
  let h = halfCache?.get(t);
  if (!h) {
    h = Tensor.empty(t.shape, "f16", t.name);
    castToF16(gpu(), t.buffer, h.buffer, t.size);
    if (!halfCache) return h;
    halfCache.set(t, keep(h));
  }
  return h.alias();
}

/** Options of {@linkcode matmul}. */
export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Added to every row of the result (length N). */
  bias?: Tensor;
  /** Result scale. */
  alpha?: number;
  /** Force a kernel variant (tests, benchmarks). */
  variant?: MatmulVariant;
  /**
   * f16 operands, float32 accumulation and result (default: under {@linkcode autocast}, or when
   * an operand is an f16 tensor): float32 operands are cast to f16 for the kernel (transient
   * copies, or under autocast the saved ones); the backward's matmuls do the same.
   */
  f16?: boolean;
}

function checkOperand(t: Tensor): void {
  void t.buffer; // throws on use after dispose
  if (t.dtype === "i32") throw new TypeError(`matmul: ${t.describe()} must be f32 or f16`);
  if (t.dtype === "f16" && t.requiresGrad) {
    throw new TypeError(`matmul: ${t.describe()} is an f16 copy and takes no gradient`);
  }
}

/**
 * alpha · op(a) · op(b) (+ bias). a is (..., M, K) (or (..., K, M) transposed); b is (K, N)
 * (or (N, K)), shared by every leading index of a, or has the same leading axes as a.
 * Either operand may be an f16 tensor (a copy saved by a mixed-precision forward).
 */
export function matmul(a: Tensor, b: Tensor, o: MatmulOptions = {}): Tensor {
  checkOperand(a);
  checkOperand(b);
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new RangeError(`matmul: operands need 2+ axes, got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  const ta = !!o.transA, tb = !!o.transB;
  const [ar, ac] = a.shape.slice(-2), [br, bc] = b.shape.slice(-2);
  const M = ta ? ac : ar, K = ta ? ar : ac;
  const Kb = tb ? bc : br, N = tb ? br : bc;
  const lead = a.shape.slice(0, -2);
  const batch = numel(lead);
  const bLead = b.shape.slice(0, -2);
  const broadcastB = bLead.length === 0;
  if (K !== Kb || (!broadcastB && !sameShape(lead, bLead))) {
    throw new RangeError(
      `matmul: ${fmt(a.shape)}${ta ? "ᵀ" : ""} · ${fmt(b.shape)}${tb ? "ᵀ" : ""}: inner sizes ` +
        `${K} and ${Kb}${broadcastB ? "" : `, batch ${fmt(lead)} vs ${fmt(bLead)}`} do not match`,
    );
  }
  if (o.bias) {
    checkF32("matmul bias", o.bias);
    if (o.bias.size !== N) {
      throw new RangeError(`matmul: bias ${o.bias.describe()} must have ${N} elements`);
    }
  }
  const alpha = o.alpha ?? 1;
  // A shared B with an untransposed A is one big matmul over all rows of A.
  if (broadcastB && ta && batch > 1) {
    throw new RangeError(
      `matmul: a transposed, batched ${a.describe()} with a shared 2-D B is not supported`,
    );
  }
  const half = a.dtype === "f16" || b.dtype === "f16";
  if (half && o.f16 === false) {
    throw new TypeError(`matmul: f16 operands with f16: false (${a.describe()}, ${b.describe()})`);
  }
  const flat = broadcastB && batch > 1;
  const shape = {
    batch: flat ? 1 : batch,
    M: flat ? M * batch : M,
    N,
    K,
    transA: ta,
    transB: tb,
    broadcastB,
  };
  gpu().checkSize(batch * M * N * 4, `matmul output ${fmt([...lead, M, N])}`);
  const out = Tensor.empty([...lead, M, N]);
  const f16 = half || (o.f16 ?? isAutocast());
  const inputs = o.bias ? [a, b, o.bias] : [a, b];
  const g = gpu();
  // f16 and recorded: the f16 copies the backward reads (shared under autocast); f16 and not
  // recorded (inference, the backward's own matmuls): transient packed copies, back to the pool
  // once recorded (the pending work runs in order, so a later op reusing them writes after this
  // matmul has read them).
  const saving = f16 && wouldRecord(inputs);
  const ha = saving ? halfCopy(a) : null, hb = saving ? halfCopy(b) : null;
  const transient = (t: Tensor) =>
    f16 && !saving && t.dtype === "f32" ? g.acquire(f16Bytes(t.size), "matmul f16 operand") : null;
  const ta16 = transient(a), tb16 = transient(b);
  if (ta16) castToF16(g, a.buffer, ta16.buffer, a.size);
  if (tb16) castToF16(g, b.buffer, tb16.buffer, b.size);
  const bufA = ha?.buffer ?? ta16?.buffer ?? a.buffer;
  const bufB = hb?.buffer ?? tb16?.buffer ?? b.buffer;
  matmulKernel(g, bufA, bufB, out.buffer, shape, {
    bias: o.bias?.buffer,
    alpha,
    variant: o.variant,
    f16,
  });
  if (ta16) g.release(ta16);
  if (tb16) g.release(tb16);
  if (saving) halfResults.add(out);
  // What the backward reads: B for dA, A for dB (f16 copies when saving).
  const A = ha ?? a, B = hb ?? b;
  if (ha && !b.requiresGrad) ha.dispose();
  if (hb && !a.requiresGrad) hb.dispose();
  record(inputs, out, (g) => {
    const v = { variant: o.variant, alpha, f16 };
    // dA = alpha · g · op(B)ᵀ and dB = alpha · op(A)ᵀ · g, each laid out as its operand is stored.
    const da = !a.requiresGrad
      ? null
      : ta
      ? matmul(B, g, { transA: tb, transB: true, ...v })
      : matmul(g, B, { transB: !tb, ...v });
    let db: Tensor | null = null;
    if (b.requiresGrad) {
      if (broadcastB && batch > 1) {
        // Shared B: fold the batch into the rows; one matmul then sums over it.
        const a2 = A.reshape([batch * M, K]);
        const g2 = g.reshape([batch * M, N]);
        db = tb ? matmul(g2, a2, { transA: true, ...v }) : matmul(a2, g2, { transA: true, ...v });
        a2.dispose();
        g2.dispose();
      } else {
        db = tb
          ? matmul(g, A, { transA: true, transB: ta, ...v })
          : matmul(A, g, { transA: !ta, ...v });
      }
      if (broadcastB && db.shape.length > 2) db = db.reshape(b.shape);
    }
    const dbias = o.bias ? sumToSuffix(g, [N]) : null;
    return o.bias ? [da, db, dbias] : [da, db];
  }, {
    owned: [...(ha && b.requiresGrad ? [ha] : []), ...(hb && a.requiresGrad ? [hb] : [])],
    reads: saving ? [] : [a, b],
  });
  return out;
}

/** x · Wᵀ + b with W stored (out, in) as PyTorch/Hugging Face store Linear weights. */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return matmul(x, w, { transB: true, bias: b });
}

// ------------------------------------------------------------------------------- layernorm

/** LayerNorm over the last axis with affine gamma and beta. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-12): Tensor {
  checkF32("layerNorm", x, gamma, beta);
  const C = x.shape.at(-1)!;
  if (gamma.size !== C || beta.size !== C) {
    throw new RangeError(
      `layerNorm: ${x.describe()} needs gamma and beta of ${C}, got ${fmt(gamma.shape)}, ${
        fmt(beta.shape)
      }`,
    );
  }
  const R = x.size / C;
  const y = Tensor.empty(x.shape);
  const stats = Tensor.empty([R, 2]);
  layerNormForward(gpu(), x.buffer, gamma.buffer, beta.buffer, y.buffer, stats.buffer, R, C, eps);
  record([x, gamma, beta], y, (g) => {
    const dx = Tensor.empty(x.shape);
    const rows = Tensor.empty([R, C]);
    layerNormBackward(
      gpu(),
      x.buffer,
      gamma.buffer,
      stats.buffer,
      g.buffer,
      dx.buffer,
      rows.buffer,
      R,
      C,
    );
    const dgamma = sumOver(rows, 1, R, C, gamma.shape);
    rows.dispose();
    const dbeta = sumOver(g, 1, R, C, beta.shape);
    return [dx, dgamma, dbeta];
  }, { owned: [stats], reads: [x, gamma] });
  return y;
}

// --------------------------------------------------------------------------------- softmax

/**
 * Softmax over the last axis. With `maskAdd` (batch, C), rows are grouped into `batch` equal
 * blocks and each block gets its row of maskAdd added first (attention's padding mask).
 */
export function softmax(x: Tensor, maskAdd?: Tensor): Tensor {
  checkF32("softmax", x);
  const C = x.shape.at(-1)!;
  const R = x.size / C;
  let mask: { maskAdd: GPUBuffer; rowsPerBatch: number } | undefined;
  if (maskAdd) {
    checkF32("softmax mask", maskAdd);
    const B = maskAdd.size / C;
    if (maskAdd.shape.at(-1) !== C || !Number.isInteger(B) || R % B !== 0) {
      throw new RangeError(`softmax: mask ${maskAdd.describe()} does not fit ${x.describe()}`);
    }
    mask = { maskAdd: maskAdd.buffer, rowsPerBatch: R / B };
  }
  const y = Tensor.empty(x.shape);
  softmaxForward(gpu(), x.buffer, y.buffer, R, C, mask);
  record([x], y, (g) => {
    const dx = Tensor.empty(x.shape);
    softmaxBackward(gpu(), y.buffer, g.buffer, dx.buffer, R, C);
    return [dx];
  }, { reads: [y] });
  return y;
}

// ---------------------------------------------------------------------------- gather/permute

/**
 * Rows of `table` (V, C) at `idx` → (idx.length, C); an embedding lookup. Gradients scatter-add
 * back deterministically. Throws naming the position of an index outside [0, V).
 */
export function gatherRows(table: Tensor, idx: Int32Array, what = "ids"): Tensor {
  checkF32("gatherRows", table);
  const [V, C] = [table.shape[0], table.size / table.shape[0]];
  const where = `${what} (into ${table.describe()})`;
  // The CSR grouping (a sort of the ids) is only for the backward: skip it in inference.
  if (!wouldRecord([table])) {
    checkIndices(idx, V, where);
    const out = gatherRaw(table, idx, C);
    if (table.shape.length === 2) return out;
    const view = out.reshape([idx.length, ...table.shape.slice(1)]);
    out.dispose(); // the view keeps the buffer
    return view;
  }
  const csr = buildCsr(idx, V, where);
  const ids = Tensor.from(idx, [idx.length], { dtype: "i32" });
  const out = Tensor.empty([idx.length, ...table.shape.slice(1)]);
  gatherKernel(gpu(), table.buffer, ids.buffer, out.buffer, idx.length, C);
  ids.dispose();
  record([table], out, (g) => {
    const dt = Tensor.zeros(table.shape);
    const uniq = Tensor.from(csr.uniq, [csr.uniq.length], { dtype: "i32" });
    const offsets = Tensor.from(csr.offsets, [csr.offsets.length], { dtype: "i32" });
    const positions = Tensor.from(csr.positions, [csr.positions.length], { dtype: "i32" });
    scatterAddRows(
      gpu(),
      g.buffer,
      {
        uniq: uniq.buffer,
        offsets: offsets.buffer,
        positions: positions.buffer,
        nUniq: csr.uniq.length,
      },
      dt.buffer,
      C,
    );
    uniq.dispose();
    offsets.dispose();
    positions.dispose();
    return [dt];
  }, { reads: [] });
  return out;
}

/** Axes permuted: result axis d is x's axis perm[d] (up to 4 axes). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  if (x.dtype === "f16") {
    throw new TypeError(`permute: ${x.describe()}: f16 copies are matmul-only`);
  }
  if (perm.length !== x.shape.length || [...perm].sort().some((a, i) => a !== i)) {
    throw new RangeError(`permute: [${perm}] is not a permutation of ${x.describe()}'s axes`);
  }
  const y = Tensor.empty(perm.map((a) => x.shape[a]), x.dtype);
  permuteKernel(gpu(), x.buffer, y.buffer, x.shape, perm);
  record([x], y, (g) => {
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [permute(g, inv)];
  }, { reads: [] });
  return y;
}

// --------------------------------------------------------------------------------- dropout

/**
 * Inverted dropout with a counter-based mask from (seed, stream); identity at rate 0. Element i
 * uses the mask bit of index `offset + i` (a micro-batch's place in its batch).
 */
export function dropout(
  x: Tensor,
  rate: number,
  seed: number,
  stream: number,
  offset = 0,
): Tensor {
  checkF32("dropout", x);
  if (rate === 0) return x;
  const y = Tensor.empty(x.shape);
  dropoutKernel(gpu(), x.buffer, y.buffer, x.size, rate, seed, stream, offset);
  record([x], y, (g) => {
    const dx = Tensor.empty(x.shape);
    dropoutKernel(gpu(), g.buffer, dx.buffer, x.size, rate, seed, stream, offset);
    return [dx];
  }, { reads: [] });
  return y;
}

// ---------------------------------------------------------------------------------- losses

/**
 * Mean softmax cross-entropy of `logits` (R, C) against integer `labels` (R), skipping rows
 * whose label is `ignoreIndex`. Throws naming the row of a label outside [0, C).
 */
export function crossEntropy(logits: Tensor, labels: Int32Array, ignoreIndex = -100): Tensor {
  checkF32("crossEntropy", logits);
  const C = logits.shape.at(-1)!;
  const R = logits.size / C;
  if (labels.length !== R) {
    throw new RangeError(
      `crossEntropy: ${labels.length} labels for ${R} rows of ${logits.describe()}`,
    );
  }
  let count = 0;
  labels.forEach((l, i) => {
    if (l === ignoreIndex) return;
    if (!(l >= 0 && l < C)) {
      throw new RangeError(`crossEntropy: label ${l} at row ${i} is outside [0, ${C})`);
    }
    count++;
  });
  const lab = Tensor.from(labels, [R], { dtype: "i32" });
  const rows = Tensor.empty([R]);
  crossEntropyRows(gpu(), logits.buffer, lab.buffer, rows.buffer, R, C, ignoreIndex);
  const loss = sumOver(rows, 1, R, 1, [1], count > 0 ? 1 / count : 0);
  rows.dispose();
  record([logits], loss, (g) => {
    const dz = Tensor.empty(logits.shape);
    crossEntropyBackward(
      gpu(),
      logits.buffer,
      lab.buffer,
      g.buffer,
      dz.buffer,
      R,
      C,
      ignoreIndex,
      count,
    );
    return [dz];
  }, { owned: [lab] });
  return loss;
}

/** Mean squared error between `pred` and `target` (same size). */
export function mse(pred: Tensor, target: Tensor): Tensor {
  checkF32("mse", pred, target);
  if (pred.size !== target.size) {
    throw new RangeError(`mse: ${pred.describe()} and ${target.describe()} differ in size`);
  }
  const n = pred.size;
  const el = Tensor.empty([n]);
  mseElems(gpu(), pred.buffer, target.buffer, el.buffer, n);
  const loss = sumOver(el, 1, n, 1, [1], 1 / n);
  el.dispose();
  record([pred], loss, (g) => {
    const d = Tensor.empty(pred.shape);
    mseBackward(gpu(), pred.buffer, target.buffer, g.buffer, d.buffer, n);
    return [d];
  }, { saved: [target] });
  return loss;
}

// ------------------------------------------------------------------------------ reductions

/** Sum over `axis` (negative counts from the end); the axis is removed. */
export function sum(x: Tensor, axis: number, alpha = 1): Tensor {
  checkF32("sum", x);
  const ax = axis < 0 ? x.shape.length + axis : axis;
  if (ax < 0 || ax >= x.shape.length) throw new RangeError(`sum: axis ${axis} of ${x.describe()}`);
  const outer = numel(x.shape.slice(0, ax)), n = x.shape[ax], inner = numel(x.shape.slice(ax + 1));
  const shape = [...x.shape.slice(0, ax), ...x.shape.slice(ax + 1)];
  const y = sumOver(x, outer, n, inner, shape, alpha);
  record([x], y, (g) => {
    // Broadcast g back over the axis: permute-free via a gather of rows.
    const idx = new Int32Array(outer * n);
    for (let o = 0; o < outer; o++) for (let k = 0; k < n; k++) idx[o * n + k] = o;
    const g2 = g.reshape([outer, inner]);
    const rep = gatherRaw(g2, idx, inner);
    g2.dispose();
    const dx = alpha === 1 ? rep : scale(rep, alpha);
    if (dx !== rep) rep.dispose();
    return [dx.reshape(x.shape)];
  }, { reads: [] });
  return y;
}

function gatherRaw(table: Tensor, idx: Int32Array, cols: number): Tensor {
  const ids = Tensor.from(idx, [idx.length], { dtype: "i32" });
  const out = Tensor.empty([idx.length, cols]);
  gatherKernel(gpu(), table.buffer, ids.buffer, out.buffer, idx.length, cols);
  ids.dispose();
  return out;
}

/** Mean over `axis`; the axis is removed. */
export function mean(x: Tensor, axis: number): Tensor {
  const ax = axis < 0 ? x.shape.length + axis : axis;
  return sum(x, axis, 1 / x.shape[ax]);
}

/** Sum of every element → shape [1]. */
export function sumAll(x: Tensor): Tensor {
  return sum(x.reshape([x.size]), 0).reshape([1]);
}
