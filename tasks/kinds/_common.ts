/**
 * Host-side helpers the head kinds share: row-wise softmax, argmax and label checks.
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

/**
 * The element-wise maximum of the row softmax distributions of several models' logits (each a
 * row-major [n, c] array of the same rows), in float64: BERTVision's ensemble of any number of
 * runs. Rows of the result do not sum to 1. Logits of different lengths are a RangeError naming
 * the run (0-based, in the order given).
 */
export function maxSoftmaxRows(
  runs: readonly ArrayLike<number>[],
  n: number,
  c: number,
): Float64Array {
  if (runs.length === 0) throw new RangeError(`maxSoftmaxRows: no runs to ensemble`);
  const out = new Float64Array(n * c);
  runs.forEach((logits, r) => {
    if (logits.length !== runs[0].length) {
      throw new RangeError(
        `ensemble: run ${r} has ${logits.length} logits but run 0 ${runs[0].length} ` +
          `(same dev rows?)`,
      );
    }
    const p = softmaxRows(logits, n, c);
    for (let k = 0; k < out.length; k++) out[k] = r === 0 ? p[k] : Math.max(out[k], p[k]);
  });
  return out;
}

/** Row-wise argmax of a row-major [n, c] array (first maximum wins). */
export function argmaxRows(a: ArrayLike<number>, n: number, c: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (a[i * c + j] > a[i * c + best]) best = j;
    out[i] = best;
  }
  return out;
}

/**
 * Integer labels in [0, c) for a loss, as an Int32Array; a label outside names its row
 * (`where(i)`) and hints at an unlabelled (test) split.
 */
export function classLabels(
  labels: ArrayLike<number>,
  c: number,
  where: (i: number) => string,
  width = 1,
): Int32Array {
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!(Number.isInteger(v) && v >= 0 && v < c)) {
      throw new Error(
        `${where(Math.floor(i / width))} has label ${v} outside [0, ${c})` +
          (Number.isNaN(v) || v < 0 ? " (an unlabelled test split? training needs labels)" : ""),
      );
    }
    out[i] = v;
  }
  return out;
}

/**
 * config.json fields of a Hugging Face `BertForSequenceClassification` checkpoint over `labels`
 * (`problem_type` as transformers names it).
 */
export function sequenceClassificationConfig(
  labels: readonly string[],
  problemType: string,
): Record<string, unknown> {
  return {
    architectures: ["BertForSequenceClassification"],
    problem_type: problemType,
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  };
}
