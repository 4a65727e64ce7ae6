/**
 * The memory-bound kernels in effective GB/s at BERT-base shapes (M = 8·128 = 1024 tokens, hidden
 * 768, intermediate 3072, 12 heads, seq 128), each called through its launcher in kernels/*.ts,
 * against the same op in TF.js's WebGPU backend on the same adapter where TF.js has one.
 *
 *   layernorm fwd/bwd [M, 768]            kernels/layernorm.ts (+ kernels/reduce.ts for dγ, dβ)
 *   softmax fwd (masked)/bwd [8,12,128,128] kernels/softmax.ts
 *   gelu fwd/bwd [M, 3072]                kernels/elementwise.ts, the UNARY table
 *   tanh, scale, square, relu [M, 768]    kernels/elementwise.ts, the UNARY table (forward)
 *   add, sub, mul [M, 768]                kernels/elementwise.ts, the BINARY table
 *   copy [M, 768]                         one copyBufferToBuffer: the adapter's bandwidth ceiling
 *   copy kernel [M, 768]                  a vec4 WGSL copy: the ceiling of a storage-buffer shader
 *   copy kernel from a texture [M, 768]   the same reading an input texture (+ its copy): the
 *                                         ceiling of ours on software adapters
 *   gather 1024 ids from [30522, 768]     kernels/gather.ts (the word-embedding lookup)
 *   adamw update / step with clipping     kernels/optim.ts over a BERT-base-sized vector
 *                                         (109.5M floats; 8.4M on a software adapter)
 *
 * GB/s = (bytes read + bytes written) / time, with the bytes counted once per case as the
 * minimum traffic the op needs (each input read once, each output written once, f32; workspace
 * such as LayerNorm's (R, C) dγ partials is not counted), and the same count for both sides.
 *
 * Timing follows the matmul section: same inputs on both sides; a warm-up; then n back-to-back
 * batches of ops (ours submits every 16 ops, as TF.js submits every 15) and one wait for the
 * device (ours `gpu.sync()`, TF.js `tfSync`), calibrated by `timeIterations`. After timing, the
 * two outputs are compared and a note says `RESULT MISMATCH` where they differ beyond the case's
 * tolerance. AdamW changes its state every step, so it is compared after its first step instead.
 *
 * Peers: the single TF.js op where there is one (tf.softmax, tf.add, tf.sub, tf.mul, tf.tanh,
 * tf.square, tf.relu, tf.gather). TF.js has no LayerNorm, GELU or AdamW op: LayerNorm and GELU
 * forward get the composite a TF.js user would write, and AdamW tf.train.adam's update (the
 * same update at weight decay 0), each marked "composite" in the note; the backward passes and
 * the clipped step have no peer. scripts/bench/common_test.ts runs the `--quick` case and checks
 * its `--json` row; the launchers themselves are checked by kernels/*_test.ts.
 * @module
 */
import type { Gpu, KernelSpec, PooledBuffer } from "../../kernels/device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "../../kernels/grid.ts";
import { texelWgsl } from "../../kernels/textures.ts";
import { layerNormBackward, layerNormForward } from "../../kernels/layernorm.ts";
import { reduceScratchSize, sumAxis } from "../../kernels/reduce.ts";
import { softmaxBackward, softmaxForward } from "../../kernels/softmax.ts";
import { binary, unaryBackward, unaryForward } from "../../kernels/elementwise.ts";
import { gatherRows } from "../../kernels/gather.ts";
import {
  type AdamWStep,
  adamwUpdate,
  normFromPartials,
  normSlots,
  sumSquares,
} from "../../kernels/optim.ts";
import {
  type BenchContext,
  type BenchResult,
  randomData,
  type Section,
  selected,
  timeIterations,
} from "./common.ts";
import { tf, tfSync, tfWebgpu } from "./tf_webgpu.ts";

/** BERT-base's shapes at batch 8, seq 128. */
const B = 8, S = 128, M = B * S, H = 768, I = 3072, HEADS = 12, VOCAB = 30522;
/** BERT-base's parameter count (bert-base-uncased with its pooler). */
const BERT_BASE_PARAMS = 109_482_240;
/** The AdamW vector on a software adapter (llvmpipe runs a few GB/s). */
const SOFT_PARAMS = 8 * 2 ** 20;
/** Bytes of one float32. */
const F = 4;
/** Ops per submission on our side (TF.js's webgpu backend submits every 15). */
const BATCH = 16;

/** A case ready to run: our op, the peer's, and what to compare. */
export interface Prepared {
  /** Records one op on our kernels (the timed unit). */
  ours(): void;
  /** Our output, read after the runs, to compare with the peer's. */
  oursOutput(): Promise<Float32Array>;
  /** Runs one op on TF.js and returns its output (the case owns and disposes it). */
  peer?(): tf.Tensor;
  /** With a peer: |ours - peer| ≤ atol + rtol·|peer| element-wise, or a RESULT MISMATCH. */
  tol?: { atol: number; rtol: number };
  /** Compare after one op on each side, before timing (stateful ops: AdamW). */
  compareFirst?: boolean;
  /** Frees both sides' buffers and tensors. */
  dispose(): void;
}

/** One benchmark case. */
export interface KernelCase {
  /** Case name (what `--shapes` filters), e.g. "layernorm fwd [1024, 768]". */
  name: string;
  /** The op's main tensor shape. */
  shape: number[];
  /** Minimum bytes the op reads and writes: the GB/s numerator on both sides. */
  bytes: number;
  /** What the peer is ("tf.add", "composite: ...", or why there is none). */
  peerNote: string;
  /** What ours runs and counts, where it is not one kernel over the named tensors. */
  note?: string;
  /** Uploads the inputs to both sides (the same data) and returns the runners. */
  prepare(gpu: Gpu): Prepared;
}

/** Our buffers of one case, released together. */
class Buffers {
  #gpu: Gpu;
  #held: PooledBuffer[] = [];
  constructor(gpu: Gpu) {
    this.#gpu = gpu;
  }
  /** A buffer holding `data`. */
  from(data: Float32Array | Int32Array): GPUBuffer {
    const b = this.empty(data.length);
    this.#gpu.upload(b, data);
    return b;
  }
  /** A buffer of `n` 4-byte elements, zeroed. */
  empty(n: number): GPUBuffer {
    const b = this.#gpu.acquire(n * F, "bench");
    this.#held.push(b);
    this.#gpu.clear(b.buffer, 0, b.size);
    return b.buffer;
  }
  release(): void {
    for (const b of this.#held) this.#gpu.release(b);
    this.#held = [];
  }
}

/** A peer that replaces its output each call (disposing the previous one). */
function peerOutput(f: () => tf.Tensor): { run(): tf.Tensor; dispose(): void } {
  let out: tf.Tensor | null = null;
  return {
    run() {
      out?.dispose();
      out = f();
      return out;
    },
    dispose() {
      out?.dispose();
      out = null;
    },
  };
}

// Tolerances. Exact ops (one float32 operation per element, identical on both sides): rtol 2ε.
const EXACT = { atol: 1e-7, rtol: 2.4e-7 };

/** LayerNorm forward: x, γ, β read; y and the saved (mean, rstd) written. */
function layerNormFwdCase(): KernelCase {
  const eps = 1e-12;
  return {
    name: `layernorm fwd [${M}, ${H}]`,
    shape: [M, H],
    bytes: F * (2 * M * H + 2 * H + 2 * M),
    peerNote: "composite: tf.moments + 6 elementwise ops (TF.js has no LayerNorm op)",
    prepare(gpu) {
      const xd = randomData(M * H, 11, 2), gd = randomData(H, 12, 0.5).map((v) => v + 1);
      const bd = randomData(H, 13, 0.1);
      const b = new Buffers(gpu);
      const x = b.from(xd), g = b.from(gd), be = b.from(bd), y = b.empty(M * H);
      const stats = b.empty(2 * M);
      const [tx, tg, tb] = [tf.tensor2d(xd, [M, H]), tf.tensor1d(gd), tf.tensor1d(bd)];
      const p = peerOutput(() =>
        tf.tidy(() => {
          const { mean, variance } = tf.moments(tx, -1, true);
          return tf.add(tf.mul(tf.mul(tf.sub(tx, mean), tf.rsqrt(tf.add(variance, eps))), tg), tb);
        })
      );
      return {
        ours: () => layerNormForward(gpu, x, g, be, y, stats, M, H, eps),
        oursOutput: async () => new Float32Array(await gpu.read(y, M * H * F)),
        peer: p.run,
        // Outputs up to ~5 in size; TF.js sums the mean and variance in another order: a few
        // ulps of rstd, 1e-5 relative with room.
        tol: { atol: 1e-5, rtol: 1e-5 },
        dispose() {
          b.release();
          p.dispose();
          tf.dispose([tx, tg, tb]);
        },
      };
    },
  };
}

/** LayerNorm backward: x, dy, γ, (mean, rstd) read; dx, dγ, dβ written. */
function layerNormBwdCase(): KernelCase {
  return {
    name: `layernorm bwd [${M}, ${H}]`,
    shape: [M, H],
    bytes: F * (3 * M * H + 3 * H + 2 * M),
    peerNote: "no TF.js op",
    note:
      "layerNormBackward + sumAxis for dγ and dβ (as model/ops.ts); (R, C) partials not counted",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const x = b.from(randomData(M * H, 21, 2)), dy = b.from(randomData(M * H, 22));
      const g = b.from(randomData(H, 23, 0.5).map((v) => v + 1)), be = b.from(randomData(H, 24));
      const y = b.empty(M * H), stats = b.empty(2 * M), dx = b.empty(M * H);
      const rows = b.empty(M * H), dg = b.empty(H), db = b.empty(H);
      const scratchN = reduceScratchSize(1, M, H);
      const scratch = scratchN ? b.empty(scratchN) : undefined;
      layerNormForward(gpu, x, g, be, y, stats, M, H, 1e-12); // the saved statistics
      return {
        ours() {
          layerNormBackward(gpu, x, g, stats, dy, dx, rows, M, H);
          sumAxis(gpu, rows, dg, 1, M, H, 1, scratch);
          sumAxis(gpu, dy, db, 1, M, H, 1, scratch);
        },
        oursOutput: async () => new Float32Array(await gpu.read(dx, M * H * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/** Attention probabilities: 8 sequences × 12 heads × 128 queries, rows of 128 keys. */
const SM_ROWS = B * HEADS * S, SM_COLS = S;

/** Padding mask: sequence b has its last 16·b keys masked (-10,000). */
function paddingMask(): Float32Array {
  const mask = new Float32Array(B * S);
  for (let b = 0; b < B; b++) for (let k = S - 16 * b; k < S; k++) mask[b * S + k] = -10000;
  return mask;
}

/** Masked softmax forward: scores and the [8, 128] mask read; probabilities written. */
function softmaxFwdCase(): KernelCase {
  return {
    name: `softmax fwd masked [${B}, ${HEADS}, ${S}, ${S}]`,
    shape: [B, HEADS, S, S],
    bytes: F * (2 * SM_ROWS * SM_COLS + B * S),
    peerNote: "tf.softmax of the same scores with the mask added beforehand (one op)",
    prepare(gpu) {
      const xd = randomData(SM_ROWS * SM_COLS, 31, 4), mask = paddingMask();
      const b = new Buffers(gpu);
      const x = b.from(xd), m = b.from(mask), y = b.empty(SM_ROWS * SM_COLS);
      // The kernel adds the mask in float32 as it reads; the host does the same sum once.
      const rowsPerBatch = HEADS * S;
      const masked = xd.map((v, i) => v + mask[Math.floor(i / (rowsPerBatch * S)) * S + (i % S)]);
      const tx = tf.tensor4d(masked, [B, HEADS, S, S]);
      const p = peerOutput(() => tf.softmax(tx));
      return {
        ours: () => softmaxForward(gpu, x, y, SM_ROWS, SM_COLS, { maskAdd: m, rowsPerBatch }),
        oursOutput: async () => new Float32Array(await gpu.read(y, SM_ROWS * SM_COLS * F)),
        peer: p.run,
        // Probabilities in [0, 1]; the row sums of 128 exps differ in order: a few ulps.
        tol: { atol: 1e-7, rtol: 1e-5 },
        dispose() {
          b.release();
          p.dispose();
          tx.dispose();
        },
      };
    },
  };
}

/** Softmax backward: y and dy read, dx written. */
function softmaxBwdCase(): KernelCase {
  return {
    name: `softmax bwd [${B}, ${HEADS}, ${S}, ${S}]`,
    shape: [B, HEADS, S, S],
    bytes: F * 3 * SM_ROWS * SM_COLS,
    peerNote: "no TF.js op",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const x = b.from(randomData(SM_ROWS * SM_COLS, 41, 4));
      const dy = b.from(randomData(SM_ROWS * SM_COLS, 42));
      const y = b.empty(SM_ROWS * SM_COLS), dx = b.empty(SM_ROWS * SM_COLS);
      softmaxForward(gpu, x, y, SM_ROWS, SM_COLS);
      return {
        ours: () => softmaxBackward(gpu, y, dy, dx, SM_ROWS, SM_COLS),
        oursOutput: async () => new Float32Array(await gpu.read(dx, SM_ROWS * SM_COLS * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/** A unary op of the table, forward: x read, y written. */
function unaryFwdCase(
  op: string,
  rows: number,
  cols: number,
  peer: {
    note: string;
    /** The TF.js op; `c` is the op's constant as a scalar tensor made once per case. */
    f: (x: tf.Tensor, c: tf.Scalar) => tf.Tensor;
    tol: { atol: number; rtol: number };
  },
  opts: { c?: number; scale?: number } = {},
): KernelCase {
  const n = rows * cols;
  return {
    name: `${op} fwd [${rows}, ${cols}]`,
    shape: [rows, cols],
    bytes: F * 2 * n,
    peerNote: peer.note,
    prepare(gpu) {
      const xd = randomData(n, 51, opts.scale ?? 3);
      const b = new Buffers(gpu);
      const x = b.from(xd), y = b.empty(n);
      const [tx, tc] = [tf.tensor2d(xd, [rows, cols]), tf.scalar(opts.c ?? 0)];
      const p = peerOutput(() => peer.f(tx, tc));
      return {
        ours: () => unaryForward(gpu, op, x, y, n, opts.c ?? 0),
        oursOutput: async () => new Float32Array(await gpu.read(y, n * F)),
        peer: p.run,
        tol: peer.tol,
        dispose() {
          b.release();
          p.dispose();
          tf.dispose([tx, tc]);
        },
      };
    },
  };
}

/** GELU backward: x and dy read, dx written (the kernel binds y, which GELU's formula skips). */
function geluBwdCase(): KernelCase {
  const n = M * I;
  return {
    name: `gelu bwd [${M}, ${I}]`,
    shape: [M, I],
    bytes: F * 3 * n,
    peerNote: "no TF.js op",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const x = b.from(randomData(n, 61, 3)), dy = b.from(randomData(n, 62));
      const y = b.empty(n), dx = b.empty(n);
      unaryForward(gpu, "gelu", x, y, n);
      return {
        ours: () => unaryBackward(gpu, "gelu", x, y, dy, dx, n),
        oursOutput: async () => new Float32Array(await gpu.read(dx, n * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/** A binary op of the table on two same-shape tensors: a and b read, out written. */
function binaryCase(op: "add" | "sub" | "mul"): KernelCase {
  const n = M * H;
  return {
    name: `${op} [${M}, ${H}]`,
    shape: [M, H],
    bytes: F * 3 * n,
    peerNote: `tf.${op}`,
    prepare(gpu) {
      const ad = randomData(n, 71), bd = randomData(n, 72);
      const b = new Buffers(gpu);
      const a = b.from(ad), bb = b.from(bd), out = b.empty(n);
      const [ta, tb] = [tf.tensor2d(ad, [M, H]), tf.tensor2d(bd, [M, H])];
      const p = peerOutput(() => tf[op](ta, tb));
      return {
        ours: () => binary(gpu, op, a, bb, out, n, n),
        oursOutput: async () => new Float32Array(await gpu.read(out, n * F)),
        peer: p.run,
        tol: EXACT,
        dispose() {
          b.release();
          p.dispose();
          tf.dispose([ta, tb]);
        },
      };
    },
  };
}

/** The word-embedding lookup: M ids and M rows of the table read, M rows written. */
function gatherCase(): KernelCase {
  return {
    name: `gather ${M} ids from [${VOCAB}, ${H}]`,
    shape: [M, VOCAB, H],
    bytes: F * (M + 2 * M * H),
    peerNote: "tf.gather",
    prepare(gpu) {
      const table = randomData(VOCAB * H, 81);
      let s = 7;
      const ids = Int32Array.from({ length: M }, () => {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        return s % VOCAB;
      });
      const b = new Buffers(gpu);
      const t = b.from(table), idx = b.from(ids), out = b.empty(M * H);
      const [tt, ti] = [tf.tensor2d(table, [VOCAB, H]), tf.tensor1d(ids, "int32")];
      const p = peerOutput(() => tf.gather(tt, ti));
      return {
        ours: () => gatherRows(gpu, t, idx, out, M, H),
        oursOutput: async () => new Float32Array(await gpu.read(out, M * H * F)),
        peer: p.run,
        tol: { atol: 0, rtol: 0 }, // a copy
        dispose() {
          b.release();
          p.dispose();
          tf.dispose([tt, ti]);
        },
      };
    },
  };
}

/** The AdamW vector's length on this device and how the case names it. */
function adamSize(gpu: Gpu, full: boolean): { n: number; label: string } {
  const soft = gpu.isFallback && !full;
  const max = Math.min(gpu.limits.maxBufferSize, gpu.limits.maxStorageBufferBindingSize);
  let n = soft ? SOFT_PARAMS : BERT_BASE_PARAMS;
  const capped = n * F > max;
  if (capped) n = Math.floor(max / F / 1024) * 1024;
  const m = `${(n / 1e6).toFixed(1)}M params`;
  const label = soft
    ? `${m} (software adapter; BERT-base has 109.5M)`
    : capped
    ? `${m} (this device's buffer limit; BERT-base has 109.5M)`
    : `${m} (BERT-base)`;
  return { n, label };
}

const ADAM: Omit<AdamWStep, "step" | "weightDecay" | "maxNorm"> = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-6,
};

/**
 * One AdamW update (no clipping): param, grad, m, v read; param, m, v written. Weight decay 0,
 * where AdamW is Adam, so tf.train.adam's update is the same computation.
 */
function adamwUpdateCase(n: number, label: string): KernelCase {
  return {
    name: `adamw update ${label}`,
    shape: [n],
    bytes: F * 7 * n,
    peerNote: "composite: tf.train.adam applyGradients (~14 ops; AdamW at weight decay 0)",
    prepare(gpu) {
      const pd = randomData(n, 91), gd = randomData(n, 92, 0.01);
      const b = new Buffers(gpu);
      const param = b.from(pd), grad = b.from(gd), m = b.empty(n), v = b.empty(n);
      const norm = b.empty(1);
      let step = 0;
      const pv = tf.variable(tf.tensor1d(pd), true, "bench_adam_param");
      const tg = tf.tensor1d(gd);
      const opt = tf.train.adam(ADAM.lr, ADAM.beta1, ADAM.beta2, ADAM.eps);
      return {
        ours: () =>
          adamwUpdate(gpu, param, grad, m, v, norm, n, {
            ...ADAM,
            weightDecay: 0,
            maxNorm: 0,
            step: ++step,
          }),
        oursOutput: async () => new Float32Array(await gpu.read(param, n * F)),
        peer() {
          opt.applyGradients([{ name: pv.name, tensor: tg }]);
          return pv;
        },
        compareFirst: true,
        // After one step from m = v = 0 each parameter moved by ≈ lr; float32 rounding of the
        // parameter (≤ 1) and of the update's few operations in another order.
        tol: { atol: 2e-7, rtol: 1e-6 },
        dispose() {
          b.release();
          opt.dispose();
          tf.dispose([pv, tg]);
        },
      };
    },
  };
}

/**
 * AdamW.step as model/optim.ts records it, with clipping at norm 1 and weight decay 0.01: sums of
 * squares, the norm, the update. The gradient is read twice (the global norm must be complete
 * before the first update), so the minimum traffic is 8 floats per parameter.
 */
function adamwStepCase(n: number, label: string): KernelCase {
  return {
    name: `adamw step clip 1.0 ${label}`,
    shape: [n],
    bytes: F * 8 * n,
    peerNote: "no TF.js op (tf.train.adam has no clipping or decoupled weight decay)",
    note: "sumSquares + normFromPartials + adamwUpdate",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const param = b.from(randomData(n, 93)), grad = b.from(randomData(n, 94, 0.01));
      const m = b.empty(n), v = b.empty(n), norm = b.empty(1), slots = normSlots(n);
      const partial = b.empty(slots);
      let step = 0;
      return {
        ours() {
          sumSquares(gpu, grad, n, partial, 0);
          normFromPartials(gpu, partial, norm, slots);
          adamwUpdate(gpu, param, grad, m, v, norm, n, {
            ...ADAM,
            weightDecay: 0.01,
            maxNorm: 1,
            step: ++step,
          });
        },
        oursOutput: async () => new Float32Array(await gpu.read(param, n * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/**
 * The adapter's copy bandwidth (one copyBufferToBuffer of [M, 768]), the ceiling of every
 * memory-bound op here: an op whose ours and peer's both run within 10% of it is as fast as the
 * adapter allows (issue 21's exception to the 1.5× goal).
 */
function copyCase(): KernelCase {
  const n = M * H;
  return {
    name: `copy [${M}, ${H}] (adapter bandwidth)`,
    shape: [M, H],
    bytes: F * 2 * n,
    peerNote: "no TF.js op (tf.clone shares the data)",
    note: "copyBufferToBuffer: the ceiling for the elementwise rows",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const x = b.from(randomData(n, 71)), y = b.empty(n);
      return {
        ours: () => gpu.copy(x, 0, y, 0, n * F),
        oursOutput: async () => new Float32Array(await gpu.read(y, n * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/**
 * The fastest a shader moves memory here: a vec4 kernel copying [M, 768] (`out[i] = in[i]`), the
 * ceiling of the elementwise kernels on this adapter (on llvmpipe far below the copy engine's,
 * which is a memcpy). Two rows: reading a storage buffer (how GPUs, and TF.js everywhere, read),
 * and reading an input texture filled by a buffer-to-texture copy, the copy timed too (how our
 * elementwise kernels read on software adapters, kernels/textures.ts). References, not product
 * kernels: they are defined here.
 */
function shaderCopyCase(tex: boolean): KernelCase {
  const n = M * H;
  const spec: KernelSpec = {
    name: `bench_copy_v4${tex ? "_tex" : ""}`,
    bindings: [["src", tex ? "texture" : "read", "vec4<f32>"], ["dst", "rw", "vec4<f32>"]],
    params: [["n", "u32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  dst[i] = ${tex ? texelWgsl("src", "i") : "src[i]"};
}`,
  };
  return {
    name: `copy kernel${tex ? " from a texture" : ""} [${M}, ${H}] (a shader's ceiling)`,
    shape: [M, H],
    bytes: F * 2 * n,
    peerNote: "no TF.js op",
    note: tex
      ? "buffer-to-texture copy + one texel fetch and vec4 store per invocation: the ceiling " +
        "of our elementwise kernels on software adapters"
      : "one vec4 load and store per invocation: the ceiling of an elementwise kernel that " +
        "reads storage buffers",
    prepare(gpu) {
      const b = new Buffers(gpu);
      const x = b.from(randomData(n, 72)), y = b.empty(n);
      const k = gpu.kernel(spec);
      return {
        ours: () =>
          gpu.dispatch(k, [tex ? gpu.toTexture(x, n / 4, 0) : x, y], [n / 4], grid1d(n / 4)),
        oursOutput: async () => new Float32Array(await gpu.read(y, n * F)),
        dispose: () => b.release(),
      };
    },
  };
}

/** Every case, in run order; `--quick` runs the first. */
export function kernelCases(gpu: Gpu, full: boolean): KernelCase[] {
  const { n, label } = adamSize(gpu, full);
  // TF.js's webgpu erf is Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7); GELU multiplies it by
  // |x|/2 ≤ 1.5 here. tanh: both sides exp-based, a few ulps.
  const gelu = (x: tf.Tensor) => tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  return [
    layerNormFwdCase(),
    layerNormBwdCase(),
    softmaxFwdCase(),
    softmaxBwdCase(),
    unaryFwdCase("gelu", M, I, {
      note: "composite: 0.5·x·(1 + tf.erf(x/√2)), 5 ops (TF.js has no GELU op)",
      f: (x) => tf.tidy(() => gelu(x)),
      tol: { atol: 1e-6, rtol: 1e-5 },
    }),
    geluBwdCase(),
    unaryFwdCase("tanh", M, H, {
      note: "tf.tanh",
      f: (x) => tf.tanh(x),
      tol: { atol: 1e-7, rtol: 1e-6 },
    }),
    unaryFwdCase("scale", M, H, {
      note: "tf.mul by a scalar tensor",
      f: (x, c) => tf.mul(x, c), // a number would upload a new scalar every call
      tol: EXACT,
    }, { c: -1.75 }),
    unaryFwdCase("square", M, H, { note: "tf.square", f: (x) => tf.square(x), tol: EXACT }),
    unaryFwdCase("relu", M, H, { note: "tf.relu", f: (x) => tf.relu(x), tol: EXACT }),
    binaryCase("add"),
    binaryCase("sub"),
    binaryCase("mul"),
    copyCase(),
    shaderCopyCase(false),
    shaderCopyCase(true),
    gatherCase(),
    adamwUpdateCase(n, label),
    adamwStepCase(n, label),
  ];
}

/** Worst element beyond `atol + rtol·|peer|`, or null when all are within it. */
function mismatch(
  ours: Float32Array,
  peer: ArrayLike<number>,
  tol: { atol: number; rtol: number },
): string | null {
  if (ours.length !== peer.length) return `length ${ours.length} vs ${peer.length}`;
  let worst = -1, excess = 0, maxAbs = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - peer[i]);
    const over = Number.isNaN(d) ? Infinity : d - tol.atol - tol.rtol * Math.abs(peer[i]);
    if (over > excess) [worst, excess] = [i, over];
    if (Number.isFinite(d)) maxAbs = Math.max(maxAbs, d);
  }
  return worst < 0 ? null : `max |ours - tf| = ${maxAbs.toExponential(2)}; at [${worst}] ` +
    `${ours[worst]} vs ${peer[worst]} (atol ${tol.atol}, rtol ${tol.rtol})`;
}

/**
 * Measures one case on both sides (see the module note) and returns its result: `ours` and
 * `peer` in GB/s over {@linkcode KernelCase.bytes}, and a note carrying `RESULT MISMATCH` when
 * the outputs differ beyond the case's tolerance.
 */
export async function measureCase(ctx: BenchContext, c: KernelCase): Promise<BenchResult> {
  const { gpu, args } = ctx;
  const opts = { minSeconds: args.minSeconds, maxIters: 100_000 };
  // One timed iteration is a batch of ops (fewer for the large AdamW vectors), so the
  // calibration call is not dominated by one submission's latency.
  const batch = Math.max(1, Math.min(BATCH, Math.floor(256e6 / c.bytes)));
  ctx.log(`  ${c.name}: ${(c.bytes / 1e6).toFixed(1)} MB per op, ours …`);
  const p = c.prepare(gpu);
  let peerOut: tf.Tensor | null = null;
  let check: string | null = null;
  try {
    // A stateful op (AdamW) is compared after its first step from the same state.
    const oursFirst = p.compareFirst && p.peer ? (p.ours(), await p.oursOutput()) : null;
    const runOurs = async (n: number) => {
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < batch; j++) p.ours();
        gpu.flush();
      }
      await gpu.sync();
    };
    await runOurs(1); // warm-up: pipelines compiled, so the calibration below is warm
    const to = await timeIterations(runOurs, opts);
    const ours = (c.bytes * batch * to.iters) / to.seconds / 1e9;

    let peer: number | null = null;
    let peerNote = c.peerNote;
    if (p.peer) {
      ctx.log(`  ${c.name}: peer ${c.peerNote.split(" (")[0]} …`);
      const tol = p.tol ?? { atol: 0, rtol: 0 };
      try {
        if (oursFirst) check = mismatch(oursFirst, await p.peer().data(), tol);
        const runPeer = async (n: number) => {
          for (let i = 0; i < n * batch; i++) peerOut = p.peer!();
          await tfSync(peerOut!);
        };
        await runPeer(1);
        const tp = await timeIterations(runPeer, opts);
        peer = (c.bytes * batch * tp.iters) / tp.seconds / 1e9;
        if (!oursFirst) check = mismatch(await p.oursOutput(), await peerOut!.data(), tol);
      } catch (e) {
        peerNote = `peer failed: ${(e as Error).message}`;
        ctx.log(`  ${c.name}: ${peerNote}`);
      }
    }
    return {
      section: "kernels",
      name: c.name,
      shape: c.shape,
      ours,
      peer,
      unit: "GB/s",
      adapter: gpu.adapterName,
      note: [
        check ? `RESULT MISMATCH: ${check}` : "",
        c.note ?? "",
        `peer: ${peerNote}`,
      ].filter(Boolean).join("; "),
    };
  } finally {
    p.dispose();
  }
}

/** The kernels section. */
export const kernelsSection: Section = {
  name: "kernels",
  title: "memory-bound kernels GB/s at BERT-base shapes vs the same TF.js webgpu op",
  async run(ctx: BenchContext): Promise<void> {
    const all = kernelCases(ctx.gpu, ctx.args.full);
    const cases = (ctx.args.quick ? all.slice(0, 1) : all).filter((c) =>
      selected(ctx.args, c.name)
    );
    if (!cases.length) return;
    const peerAdapter = await tfWebgpu();
    ctx.log(`kernels: TF.js ${tf.version.tfjs} backend "${tf.getBackend()}" on ${peerAdapter}`);
    for (const c of cases) ctx.emit(await measureCase(ctx, c));
    ctx.gpu.trimPool();
  },
};
