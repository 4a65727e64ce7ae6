/**
 * Ensembling a BERTVision head with BERT on dev, as the paper does: the element-wise maximum of
 * the two models' softmax distributions, then argmax. Host arrays only (logits as saved by
 * `evaluateAp` and by BERT's evaluation).
 *
 * - Classification: per row, max(softmax(ap), softmax(bert)) over classes → argmax.
 * - SQuAD: per feature, separately for start and for end, max of the two softmax distributions
 *   over tokens. The result is returned as log(max prob), "logits-like": the larger the value
 *   the more both agree, and start + end is the log of a product of probabilities, so it feeds
 *   `squadPostprocess` (tasks/squad.ts) unchanged — its span scores and null-score comparison
 *   then compare log-probabilities instead of raw logits.
 * - Regression (STS-B) has no distribution to take a maximum of; {@linkcode ensembleRegression}
 *   averages the two predictions (our choice, documented; the paper reports no STS-B ensemble).
 * @module
 */

/** Softmax of each row of a row-major [n, c] array, in float64 (max-subtracted). */
export function softmaxRows(logits: ArrayLike<number>, n: number, c: number): Float64Array {
  if (logits.length !== n * c) {
    throw new RangeError(`softmaxRows: ${logits.length} values for [${n}, ${c}]`);
  }
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let j = 0; j < c; j++) mx = Math.max(mx, logits[i * c + j]);
    let z = 0;
    for (let j = 0; j < c; j++) z += out[i * c + j] = Math.exp(logits[i * c + j] - mx);
    for (let j = 0; j < c; j++) out[i * c + j] /= z;
  }
  return out;
}

/** Result of {@linkcode ensembleClassification}. */
export interface EnsembleClassification {
  /** max(softmax(ap), softmax(bert)) per row, [n, c] row-major (rows do not sum to 1). */
  probs: Float32Array;
  /** argmax of each row of `probs` (first maximum wins). */
  preds: Int32Array;
}

/**
 * Element-wise maximum of the softmax distributions of two classifiers' logits ([n, c]
 * row-major each), then argmax.
 *
 * @example
 * ```ts
 * import { ensembleClassification } from "./ensemble.ts";
 * // AP: softmax [0.6, 0.3, 0.1]; BERT: [0.1, 0.45, 0.45] → max [0.6, 0.45, 0.45] → class 0.
 * const ap = [0.6, 0.3, 0.1].map(Math.log), bert = [0.1, 0.45, 0.45].map(Math.log);
 * const { preds } = ensembleClassification(ap, bert, 1, 3);
 * console.assert(preds[0] === 0);
 * ```
 */
export function ensembleClassification(
  apLogits: ArrayLike<number>,
  bertLogits: ArrayLike<number>,
  n: number,
  numLabels: number,
): EnsembleClassification {
  if (numLabels < 2) {
    throw new RangeError(
      `ensembleClassification: ${numLabels} label(s); use ensembleRegression for regression`,
    );
  }
  if (apLogits.length !== bertLogits.length) {
    throw new RangeError(
      `ensemble: AP has ${apLogits.length} logits but BERT ${bertLogits.length} (same dev rows?)`,
    );
  }
  const a = softmaxRows(apLogits, n, numLabels), b = softmaxRows(bertLogits, n, numLabels);
  const probs = new Float32Array(n * numLabels);
  const preds = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0, bestP = -1;
    for (let j = 0; j < numLabels; j++) {
      const k = i * numLabels + j;
      const p = Math.max(a[k], b[k]);
      probs[k] = p;
      if (p > bestP) {
        bestP = p;
        best = j;
      }
    }
    preds[i] = best;
  }
  return { probs, preds };
}

/** Regression ensemble: the mean of the two models' predictions (see the module note). */
export function ensembleRegression(
  apPreds: ArrayLike<number>,
  bertPreds: ArrayLike<number>,
): Float32Array {
  if (apPreds.length !== bertPreds.length) {
    throw new RangeError(
      `ensemble: AP has ${apPreds.length} predictions but BERT ${bertPreds.length}`,
    );
  }
  return Float32Array.from({ length: apPreds.length }, (_, i) => (apPreds[i] + bertPreds[i]) / 2);
}

/** Start and end logits per SQuAD feature (each row of length T). */
export interface SpanLogits {
  start: readonly ArrayLike<number>[];
  end: readonly ArrayLike<number>[];
}

/** log(max(softmax(a), softmax(b))) of one row. */
function logMaxSoftmax(a: ArrayLike<number>, b: ArrayLike<number>, where: string): Float32Array {
  if (a.length !== b.length) {
    throw new RangeError(`ensemble: ${where}: AP has ${a.length} tokens but BERT ${b.length}`);
  }
  const t = a.length;
  const pa = softmaxRows(a, 1, t), pb = softmaxRows(b, 1, t);
  return Float32Array.from({ length: t }, (_, i) => Math.log(Math.max(pa[i], pb[i])));
}

/**
 * SQuAD ensemble: for every feature, start = log(max(softmax(AP start), softmax(BERT start)))
 * over tokens, likewise end; pass the result to `squadPostprocess` as start/end logits.
 *
 * @example
 * ```ts
 * import { ensembleSpan } from "./ensemble.ts";
 * // start: AP softmax [0.25, 0.75], BERT [0.8, 0.2] → log [0.8, 0.75]: token 0 wins.
 * const r = ensembleSpan(
 *   { start: [[0, Math.log(3)]], end: [[0, 0]] },
 *   { start: [[Math.log(4), 0]], end: [[0, 0]] },
 * );
 * console.assert(Math.abs(Math.exp(r.start[0][0]) - 0.8) < 1e-6);
 * ```
 */
export function ensembleSpan(
  ap: SpanLogits,
  bert: SpanLogits,
): { start: Float32Array[]; end: Float32Array[] } {
  const n = ap.start.length;
  if (ap.end.length !== n || bert.start.length !== n || bert.end.length !== n) {
    throw new RangeError(
      `ensembleSpan: AP has ${ap.start.length}/${ap.end.length} start/end rows, BERT ` +
        `${bert.start.length}/${bert.end.length} (same dev features?)`,
    );
  }
  return {
    start: ap.start.map((a, i) => logMaxSoftmax(a, bert.start[i], `feature ${i} start`)),
    end: ap.end.map((a, i) => logMaxSoftmax(a, bert.end[i], `feature ${i} end`)),
  };
}
