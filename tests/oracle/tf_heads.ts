/**
 * TF.js references for everything that sits on top of BERT in this project: the fine-tuning heads
 * and their losses (Hugging Face `BertForSequenceClassification` / `BertForQuestionAnswering`),
 * and the BERTVision models trained on stored activations (adapter-pooler, AP_GLUE, AP_SQuAD,
 * learned and average pooling). All differentiable with `tf.grad` on the CPU backend and free
 * of CPU-only ops. Checked on hand-computed cases in `tf_heads_test.ts`.
 *
 * Shapes: B batch, H hidden, S / T tokens, L stored layers (L+1 of BERT: embeddings + each layer),
 * F features (= H), D adapter_dim, N labels. Linear weights are [out, in] as PyTorch stores them.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { tfGelu, tfLinear } from "./tf_bert.ts";

/**
 * Mean softmax cross-entropy: mean_b( logsumexp(logits_b) - logits_b[label_b] ).
 * @param logits [B, C]
 * @param labels [B] class indices in [0, C)
 * @returns scalar
 */
export function tfCrossEntropy(logits: tf.Tensor, labels: Int32Array): tf.Scalar {
  const [b, c] = logits.shape;
  if (labels.length !== b) throw new Error(`tfCrossEntropy: ${labels.length} labels for B=${b}`);
  for (const y of labels) {
    // tf.oneHot silently yields an all-zero row for an out-of-range label (loss = logsumexp).
    if (!(y >= 0 && y < c)) throw new Error(`tfCrossEntropy: label ${y} outside [0, ${c})`);
  }
  const oneHot = tf.oneHot(tf.tensor1d(labels, "int32"), c);
  return tf.logSoftmax(logits, -1).mul(oneHot).sum(-1).mean().neg() as tf.Scalar;
}

/**
 * Sequence-classification loss, as `BertForSequenceClassification` with num_labels > 1
 * (dropout off): logits = pooled·Wᵀ + b, mean cross-entropy.
 * @param pooled [B, H] BERT's pooler output
 * @param classifierW [N, H]
 * @param classifierB [N]
 * @param labels [B] in [0, N)
 * @returns scalar
 */
export function tfClassifierLoss(
  pooled: tf.Tensor,
  classifierW: tf.Tensor,
  classifierB: tf.Tensor,
  labels: Int32Array,
): tf.Scalar {
  return tfCrossEntropy(tfLinear(pooled, classifierW, classifierB), labels);
}

/**
 * Regression loss, as `BertForSequenceClassification` with num_labels = 1 (STS-B):
 * mean_b (pooled_b·wᵀ + b - target_b)².
 * @param pooled [B, H]
 * @param w [1, H]
 * @param b [1]
 * @param targets [B]
 * @returns scalar
 */
export function tfRegressionLoss(
  pooled: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor,
  targets: Float32Array,
): tf.Scalar {
  const y = tfLinear(pooled, w, b).reshape([-1]);
  if (y.shape[0] !== targets.length) {
    throw new Error(`tfRegressionLoss: ${targets.length} targets for B=${y.shape[0]}`);
  }
  return y.sub(tf.tensor1d(targets)).square().mean() as tf.Scalar;
}

/**
 * Start/end logits of a span head: Linear(features → 2) per token, channel 0 = start,
 * channel 1 = end (Hugging Face's `qa_outputs` then `split(1, dim=-1)`).
 * @param seq [B, S, F]
 * @param w [2, F]
 * @param b [2]
 * @returns start, end: [B, S]
 */
export function tfSpanLogits(
  seq: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor,
): { start: tf.Tensor2D; end: tf.Tensor2D } {
  const [bs, s] = seq.shape;
  const logits = tfLinear(seq, w, b); // [B, S, 2]
  const pick = (c: number) =>
    tf.slice(logits, [0, 0, c], [bs, s, 1]).reshape([bs, s]) as tf.Tensor2D;
  return { start: pick(0), end: pick(1) };
}

/**
 * SQuAD span loss, as `BertForQuestionAnswering`: (CE(start) + CE(end)) / 2 over tokens.
 * Positions must lie in [0, S); no-answer examples point at [CLS] (0). Hugging Face instead
 * clamps out-of-range positions to S and ignores them; we throw, since BERTVision features never
 * produce them and a silent ignore would hide a featurisation bug.
 * @param hiddenLast [B, S, H] the last encoder layer's output
 * @param qaW [2, H]
 * @param qaB [2]
 * @param startPositions [B]
 * @param endPositions [B]
 * @returns scalar
 */
export function tfSpanLoss(
  hiddenLast: tf.Tensor,
  qaW: tf.Tensor,
  qaB: tf.Tensor,
  startPositions: Int32Array,
  endPositions: Int32Array,
): tf.Scalar {
  const { start, end } = tfSpanLogits(hiddenLast, qaW, qaB);
  return tfCrossEntropy(start, startPositions).add(tfCrossEntropy(end, endPositions)).div(2);
}

/** The four dimensions of stored activations x [B, L, T, F]; throws on another rank. */
function dims4(x: tf.Tensor, who: string): [number, number, number, number] {
  if (x.rank !== 4) throw new Error(`${who}: x must be [B, L, T, F], got shape [${x.shape}]`);
  return x.shape as [number, number, number, number];
}

/**
 * BERTVision's adapter-pooler: one Linear(F → D) applied to every token of every stored layer,
 * then exact GELU, permuted as BERTVision does to [B, T, D, L].
 *
 * out[b, t, d, l] = GELU( Σ_f x[b, l, t, f]·W[d, f] + bias[d] )          (shared, W [D, F])
 * out[b, t, d, l] = GELU( Σ_f x[b, l, t, f]·W[l, d, f] + bias[l, d] )    (per-layer, W [L, D, F])
 *
 * @param x [B, L, T, F] stored activations
 * @param w [D, F] shared across layers (the paper's best), or [L, D, F] one Linear per layer
 * @param b [D] (shared) or [L, D] (per-layer)
 * @returns [B, T, D, L]
 */
export function tfAdapterPooler(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor): tf.Tensor4D {
  const [bs, layers, t, f] = dims4(x, "tfAdapterPooler");
  if (w.rank === 2) {
    const y = tfGelu(tfLinear(x, w, b)); // [B, L, T, D]
    return y.transpose([0, 2, 3, 1]) as tf.Tensor4D;
  }
  if (w.rank !== 3 || w.shape[0] !== layers || b.rank !== 2) {
    throw new Error(
      `tfAdapterPooler: per-layer weights must be [L=${layers}, D, F] with bias [L, D], got ${w.shape} / ${b.shape}`,
    );
  }
  const d = w.shape[1] as number;
  // Batched over layers: [L, B·T, F] × [L, F, D] -> [L, B·T, D].
  const xl = x.transpose([1, 0, 2, 3]).reshape([layers, bs * t, f]);
  const y = tf.matMul(xl, w, false, true).add(b.reshape([layers, 1, d]));
  return tfGelu(y).reshape([layers, bs, t, d]).transpose([1, 2, 3, 0]) as tf.Tensor4D;
}

/**
 * AP_GLUE: adapter-pooler, flatten [B, T, D, L] row-major (torch `flatten(1)` of the permuted
 * tensor, so index = (t·D + d)·L + l), then Linear → N logits (N = 1 for STS-B regression).
 * @param x [B, L, T, F]
 * @param apW, apB adapter weights as {@linkcode tfAdapterPooler}
 * @param clsW [N, T·D·L]
 * @param clsB [N]
 * @returns logits [B, N]
 */
export function tfApGlue(
  x: tf.Tensor,
  apW: tf.Tensor,
  apB: tf.Tensor,
  clsW: tf.Tensor,
  clsB: tf.Tensor,
): tf.Tensor2D {
  const ap = tfAdapterPooler(x, apW, apB);
  return tfLinear(ap.reshape([ap.shape[0], -1]), clsW, clsB) as tf.Tensor2D;
}

/**
 * AP_SQuAD: adapter-pooler, reshape to [B, T, D·L] (index d·L + l), Linear(D·L → 2), split into
 * start (channel 0) and end (channel 1) logits per token.
 *
 * Skip connection (our definition, documented because BERTVision's "adds the final layer's
 * sequence output" does not type-check in general: D·L ≠ F): a second Linear(F → 2) on the last
 * stored layer x[:, L-1] added to the logits,
 *   logits[b, t] = Linear_ap(ap[b, t]) + Linear_skip(x[b, L-1, t]).
 * This is the same as concatenating the final hidden state to the AP features before one Linear.
 *
 * @param x [B, L, T, F]
 * @param apW, apB adapter weights as {@linkcode tfAdapterPooler}
 * @param qaW [2, D·L]
 * @param qaB [2]
 * @param skip optional { w: [2, F], b: [2] }
 * @returns start, end: [B, T]
 */
export function tfApSquad(
  x: tf.Tensor,
  apW: tf.Tensor,
  apB: tf.Tensor,
  qaW: tf.Tensor,
  qaB: tf.Tensor,
  skip?: { w: tf.Tensor; b: tf.Tensor },
): { start: tf.Tensor2D; end: tf.Tensor2D } {
  const [bs, layers, t, f] = dims4(x, "tfApSquad");
  const ap = tfAdapterPooler(x, apW, apB); // [B, T, D, L]
  const out = tfSpanLogits(ap.reshape([bs, t, -1]), qaW, qaB);
  if (!skip) return out;
  const last = tf.slice(x, [0, layers - 1, 0, 0], [bs, 1, t, f]).reshape([bs, t, f]);
  const s = tfSpanLogits(last, skip.w, skip.b);
  return { start: out.start.add(s.start), end: out.end.add(s.end) };
}

/**
 * Learned pooling over layers (Tenney et al. 2019, BERTVision's "LP"):
 * out[b, t, f] = scale · Σ_l softmax(layerLogits)_l · x[b, l, t, f].
 * @param x [B, L, T, F]
 * @param layerLogits [L] unnormalised per-layer weights
 * @param scale scalar (or [1]) learned multiplier
 * @returns [B, T, F]
 */
export function tfLearnedPooling(
  x: tf.Tensor,
  layerLogits: tf.Tensor,
  scale: tf.Tensor,
): tf.Tensor3D {
  const layers = dims4(x, "tfLearnedPooling")[1];
  const wts = tf.softmax(layerLogits.reshape([layers])).reshape([1, layers, 1, 1]);
  return x.mul(wts).sum(1).mul(scale.reshape([])) as tf.Tensor3D;
}

/**
 * Average pooling over layers (BERTVision's "AvgP"): out[b, t, f] = mean_l x[b, l, t, f].
 * @param x [B, L, T, F]
 * @returns [B, T, F]
 */
export function tfAveragePooling(x: tf.Tensor): tf.Tensor3D {
  return x.mean(1) as tf.Tensor3D;
}
