/**
 * An independent BERT oracle built from TensorFlow.js ops: the forward pass exactly as Hugging Face
 * `BertModel` computes it (no dropout), differentiable with `tf.grad` / `tf.variableGrads` on the
 * CPU backend, and runnable unchanged on the "webgpu" backend as a performance peer.
 *
 * It shares nothing with the WGSL kernels except the weight names and shapes from
 * `model/config.ts`, so a bug has to be made twice to go unnoticed. Checked in `tf_bert_test.ts`
 * against a float64 hand-written forward and central finite differences.
 *
 * Numerical notes:
 * - GELU is the exact erf form. `tf.erf` (both the CPU and WebGPU backends) uses Abramowitz &
 *   Stegun 7.1.26, max abs error 1.5e-7; measured 1.7e-7 in float32 over [-6, 6]. That is below
 *   float32 rounding of the surrounding sums, so it is fine for an oracle. Its gradient is the
 *   exact 2/sqrt(pi)·exp(-x²), not the derivative of the approximation (difference ~1e-6).
 * - The attention mask is additive with {@linkcode MASK_VALUE} = -10000 (original BERT / older
 *   Hugging Face). Newer Hugging Face uses the dtype's minimum; both give exp(score - max) == 0
 *   in float32 for masked keys. They differ only when every key of a row is masked (-10000 then
 *   gives softmax of the raw scores, finfo.min a uniform row), which never happens in BERT since
 *   [CLS] is always a real token.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { type BertConfig, bertWeightShapes, type HostWeights } from "../../model/config.ts";

/**
 * The additive attention-mask value for padded keys: scores += (1 - mask) · MASK_VALUE.
 * The WGSL attention kernel must use the same constant (pinned by a test).
 */
export const MASK_VALUE = -10000;

/** A small, fast, seeded PRNG (mulberry32) so test weights are reproducible across runs. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples from a uniform generator (Box-Muller). */
export function gaussian(rand: () => number): () => number {
  return () => {
    const u = 1 - rand(); // (0, 1]: log(0) would be -inf
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/**
 * Seeded random weights for every tensor in {@linkcode bertWeightShapes}, for tests and benchmarks.
 *
 * - Matrices and embeddings: N(0, std²), as BERT's initializer_range does.
 * - LayerNorm weights: 1 + N(0, (std)²) — near 1, but not exactly, so a swapped gamma/beta shows.
 * - Biases and LayerNorm biases: N(0, (std/2)²) — small but nonzero, so a dropped bias shows.
 *
 * @param cfg model shape
 * @param seed PRNG seed (same seed, same weights)
 * @param std standard deviation of the matrices (0.02 as BERT; larger makes attention non-uniform)
 * @returns weights keyed by Hugging Face name without `bert.`; Linear weights are [out, in]
 */
export function randomHostWeights(cfg: BertConfig, seed: number, std = 0.02): HostWeights {
  const normal = gaussian(mulberry32(seed));
  const out: HostWeights = new Map();
  for (const [name, shape] of bertWeightShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isLnWeight = name.endsWith("LayerNorm.weight");
    const isBias = name.endsWith(".bias");
    for (let i = 0; i < n; i++) {
      const z = normal();
      data[i] = isLnWeight ? 1 + std * z : isBias ? 0.5 * std * z : std * z;
    }
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/**
 * Host weights as TF.js tensors keyed by the same names.
 *
 * @param host weights from a checkpoint or {@linkcode randomHostWeights}
 * @param opts.trainable true: `tf.variable`s (for `tf.variableGrads` / optimizers; the caller
 *   disposes them); false (default): plain `tf.tensor`s (for `tf.grads` or inference)
 */
export function toTfWeights(
  host: HostWeights,
  opts: { trainable: true },
): Record<string, tf.Variable>;
export function toTfWeights(
  host: HostWeights,
  opts?: { trainable?: boolean },
): Record<string, tf.Tensor>;
export function toTfWeights(
  host: HostWeights,
  opts: { trainable?: boolean } = {},
): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [name, { shape, data }] of host) {
    const t = tf.tensor(data, shape, "float32");
    // Variables get auto-generated unique names: tf.variable throws on a reused name, and two
    // models loaded in one process would otherwise collide.
    out[name] = opts.trainable ? tf.variable(t, true) : t;
    if (opts.trainable) t.dispose();
  }
  return out;
}

/** Options of {@linkcode tfBertForward}. Dropout is not implemented: the oracle is deterministic. */
export interface TfBertOptions {
  /** Must be 0 or absent; anything else throws rather than silently ignoring it. */
  dropout?: number;
}

/** Outputs of {@linkcode tfBertForward}. */
export interface TfBertOutput {
  /** L+1 tensors [B, S, H]: the embedding output, then each encoder layer's output. */
  hidden: tf.Tensor3D[];
  /** [B, H]: tanh(dense(hidden[L][:, 0, :])), Hugging Face's pooler on the [CLS] token. */
  pooled: tf.Tensor2D;
}

function get(w: Record<string, tf.Tensor>, name: string): tf.Tensor {
  const t = w[name];
  if (!t) throw new Error(`tfBertForward: missing weight "${name}"`);
  return t;
}

/**
 * PyTorch Linear on the last axis: y = x·Wᵀ + b.
 * @param x [..., in]
 * @param w [out, in]
 * @param b [out]
 * @returns [..., out]
 */
export function tfLinear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const inF = x.shape[x.shape.length - 1];
  const lead = x.shape.slice(0, -1);
  const y = tf.matMul(x.reshape([-1, inF]), w, false, true).add(b);
  return y.reshape([...lead, w.shape[0]]);
}

/**
 * LayerNorm over the last axis with the biased variance, as torch.nn.LayerNorm.
 * @param x [..., H]; gamma, beta [H]
 */
export function tfLayerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number) {
  const mean = x.mean(-1, true);
  const xc = x.sub(mean);
  const variance = xc.square().mean(-1, true);
  return xc.mul(variance.add(eps).rsqrt()).mul(gamma).add(beta);
}

/** Exact GELU: x·0.5·(1 + erf(x/√2)) (BERT's "gelu", not the tanh approximation). */
export function tfGelu(x: tf.Tensor): tf.Tensor {
  return x.mul(0.5).mul(tf.erf(x.mul(Math.SQRT1_2)).add(1));
}

/**
 * The BERT forward pass, as Hugging Face `BertModel` (eval mode) computes it.
 *
 * embeddings = LayerNorm(word[ids] + position[0..S) + token_type[types]); then per layer:
 * Q,K,V = Linear(x) split into heads [B,A,S,d]; scores = Q·Kᵀ/√d + (1 - mask)·MASK_VALUE
 * (broadcast over heads and query positions); ctx = softmax(scores)·V merged to [B,S,H];
 * a = LayerNorm(x + Linear(ctx)); out = LayerNorm(a + Linear(GELU(Linear(a)))).
 * Pooler: tanh(Linear(hidden[L][:, 0])).
 *
 * Only differentiable TF.js ops that both the CPU and WebGPU backends implement are used, so the
 * same code serves `tf.grad` on CPU and benchmarks on WebGPU. Tensors are not tidied: call it
 * inside `tf.tidy` (or a gradient function) and keep what you need.
 *
 * @param cfg model shape
 * @param weights from {@linkcode toTfWeights} (tensors or variables), names as `bertWeightShapes`
 * @param inputIds [B·S] row-major token ids
 * @param tokenTypeIds [B·S] segment ids (0/1)
 * @param attentionMask [B·S] 1 for real tokens, 0 for padding
 * @param batch B
 * @param seq S (≤ maxPositionEmbeddings)
 * @returns hidden: L+1 × [B,S,H]; pooled: [B,H]
 */
export function tfBertForward(
  cfg: BertConfig,
  weights: Record<string, tf.Tensor>,
  inputIds: Int32Array,
  tokenTypeIds: Int32Array,
  attentionMask: Int32Array,
  batch: number,
  seq: number,
  opts: TfBertOptions = {},
): TfBertOutput {
  if (opts.dropout) throw new Error("tfBertForward: dropout is not implemented (oracle is eval)");
  const n = batch * seq;
  for (
    const [what, a] of [["inputIds", inputIds], ["tokenTypeIds", tokenTypeIds], [
      "attentionMask",
      attentionMask,
    ]] as const
  ) {
    if (a.length !== n) throw new Error(`tfBertForward: ${what} has ${a.length}, want B·S = ${n}`);
  }
  if (seq > cfg.maxPositionEmbeddings) {
    throw new Error(
      `tfBertForward: seq ${seq} > maxPositionEmbeddings ${cfg.maxPositionEmbeddings}`,
    );
  }
  const H = cfg.hiddenSize, A = cfg.numAttentionHeads, d = H / A, eps = cfg.layerNormEps;
  const w = (name: string) => get(weights, name);

  // Embeddings. gather's gradient is a scatter-add, so repeated ids accumulate correctly.
  const ids = tf.tensor2d(inputIds, [batch, seq], "int32");
  const types = tf.tensor2d(tokenTypeIds, [batch, seq], "int32");
  const word = tf.gather(w("embeddings.word_embeddings.weight"), ids);
  const pos = tf.slice(w("embeddings.position_embeddings.weight"), [0, 0], [seq, H]);
  const type = tf.gather(w("embeddings.token_type_embeddings.weight"), types);
  let x = tfLayerNorm(
    word.add(pos).add(type),
    w("embeddings.LayerNorm.weight"),
    w("embeddings.LayerNorm.bias"),
    eps,
  ) as tf.Tensor3D;
  const hidden: tf.Tensor3D[] = [x];

  // Additive mask [B,1,1,S]: broadcast over heads and query positions, varies over keys only.
  const maskAdd = tf.scalar(1).sub(tf.tensor(attentionMask, [batch, 1, 1, seq], "float32"))
    .mul(MASK_VALUE);
  const scale = 1 / Math.sqrt(d);
  // [B,S,H] -> [B,A,S,d]
  const heads = (t: tf.Tensor) => t.reshape([batch, seq, A, d]).transpose([0, 2, 1, 3]);

  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const lin = (t: tf.Tensor, name: string) =>
      tfLinear(t, w(`${p}${name}.weight`), w(`${p}${name}.bias`));
    const q = heads(lin(x, "attention.self.query"));
    const k = heads(lin(x, "attention.self.key"));
    const v = heads(lin(x, "attention.self.value"));
    // HF divides the product by √d (rather than scaling Q first); same value up to rounding.
    const scores = tf.matMul(q, k, false, true).mul(scale).add(maskAdd);
    const probs = tf.softmax(scores, -1);
    const ctx = tf.matMul(probs, v).transpose([0, 2, 1, 3]).reshape([batch, seq, H]);
    const attn = tfLayerNorm(
      x.add(lin(ctx, "attention.output.dense")),
      w(`${p}attention.output.LayerNorm.weight`),
      w(`${p}attention.output.LayerNorm.bias`),
      eps,
    );
    const inter = tfGelu(lin(attn, "intermediate.dense"));
    x = tfLayerNorm(
      attn.add(lin(inter, "output.dense")),
      w(`${p}output.LayerNorm.weight`),
      w(`${p}output.LayerNorm.bias`),
      eps,
    ) as tf.Tensor3D;
    hidden.push(x);
  }

  const cls = tf.slice(x, [0, 0, 0], [batch, 1, H]).reshape([batch, H]);
  const pooled = tfLinear(cls, w("pooler.dense.weight"), w("pooler.dense.bias"))
    .tanh() as tf.Tensor2D;
  return { hidden, pooled };
}

/**
 * Forward-pass throughput of this TF.js BERT on a backend, as a peer for the WGSL kernels.
 *
 * Builds {@linkcode randomHostWeights} (seed 1), random ids (mask all ones), runs one warm-up
 * forward (shader compilation / buffer pools), then times `iters` forwards. Each forward is tidied
 * except its last hidden state and pooled output; the clock stops after reading back the final
 * iteration's outputs, which on WebGPU waits for every queued dispatch (one queue, in order).
 * The previous backend is restored afterwards.
 *
 * @param cfg model shape
 * @param batch B
 * @param seq S
 * @param iters timed forwards (≥ 1)
 * @param backend "cpu" or "webgpu" (the latter imports `@tensorflow/tfjs-backend-webgpu` lazily)
 * @returns sequences per second = batch·iters / seconds
 */
export async function tfBertBenchmark(
  cfg: BertConfig,
  batch: number,
  seq: number,
  iters: number,
  backend: "cpu" | "webgpu",
): Promise<{ seqPerSec: number }> {
  if (!(iters >= 1)) throw new Error(`tfBertBenchmark: iters must be ≥ 1, got ${iters}`);
  // Lazy: importing the WebGPU backend registers it with a higher priority than "cpu", which
  // would change the default backend of every oracle user that merely imports this file.
  if (backend === "webgpu") await import("@tensorflow/tfjs-backend-webgpu");
  const previous = tf.getBackend();
  if (!(await tf.setBackend(backend))) throw new Error(`tfBertBenchmark: no "${backend}" backend`);
  await tf.ready();
  const weights = toTfWeights(randomHostWeights(cfg, 1));
  try {
    const rand = mulberry32(2);
    const n = batch * seq;
    const ids = Int32Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize));
    const types = Int32Array.from({ length: n }, (_, i) => (i % seq) < seq / 2 ? 0 : 1);
    const mask = new Int32Array(n).fill(1);
    const run = () =>
      tf.tidy(() => {
        const out = tfBertForward(cfg, weights, ids, types, mask, batch, seq);
        return [out.hidden[out.hidden.length - 1], out.pooled];
      });
    const readAll = async (ts: tf.Tensor[]) => {
      for (const t of ts) await t.data();
      tf.dispose(ts);
    };
    await readAll(run());
    const t0 = performance.now();
    let last: tf.Tensor[] = [];
    for (let i = 0; i < iters; i++) {
      tf.dispose(last);
      last = run();
    }
    await readAll(last);
    const seconds = (performance.now() - t0) / 1000;
    return { seqPerSec: (batch * iters) / seconds };
  } finally {
    tf.dispose(Object.values(weights));
    if (previous) await tf.setBackend(previous);
  }
}
