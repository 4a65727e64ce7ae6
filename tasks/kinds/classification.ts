/**
 * Single-label classification (SST-2, CoLA, MRPC, QQP, MNLI, QNLI, RTE, WNLI): softmax
 * cross-entropy over the classes of the [CLS] read-out; predictions are the argmax class;
 * BERTVision's ensemble takes the element-wise maximum of the two models' softmax
 * distributions, then the argmax.
 *
 *   logits [B, C] (saved [N, C]) · labels [B] class ids, int64 in the store (-1 = unlabelled)
 *
 * Checked by tasks/kinds/kinds_test.ts and tasks/kinds/ensemble_test.ts.
 * @module
 */
import { crossEntropy } from "../../model/ops.ts";
import { type HeadKind, meanCrossEntropy, type TaskKind } from "./types.ts";
import {
  argmaxRows,
  classLabels,
  maxSoftmaxRows,
  sequenceClassificationConfig,
} from "./_common.ts";
import type { GlueTask, TaskBase } from "../types.ts";
import { InputError } from "../../data/errors.ts";

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
 * import { ensembleClassification } from "./classification.ts";
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
  sameLength(apLogits, bertLogits);
  const probs = Float32Array.from(maxSoftmaxRows([apLogits, bertLogits], n, numLabels));
  return { probs, preds: argmaxRows(probs, n, numLabels) };
}

function sameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) {
    throw new RangeError(
      `ensemble: AP has ${a.length} logits but BERT ${b.length} (same dev rows?)`,
    );
  }
}

function bind(task: TaskBase): TaskKind {
  const C = task.labels.length;
  if (C < 2) {
    throw new Error(`task ${task.name}: classification needs at least 2 labels, got ${C}`);
  }
  const labelError = (raw: string, where: string, what: string) =>
    new InputError(
      `${where}: ${what} "${raw}" is not one of ${task.name}'s labels (${task.labels.join(", ")})`,
    );
  const index = (raw: string, where: string, what: string) => {
    const i = task.labels.indexOf(raw);
    if (i < 0) throw labelError(raw, where, what);
    return [i];
  };
  const kind: TaskKind = {
    name: "classification",
    task,
    lossName: "cross_entropy",
    outputs: C,
    readout: "pooled",
    labelWidth: 1,
    labelType: "int64",
    defaultMaxSeqLength: 128,
    bertHeadNames: ["classifier.weight", "classifier.bias"],
    hfConfig: sequenceClassificationConfig(task.labels, "single_label_classification"),
    parseLabel: (raw, where) => index(raw, where, "label"),
    parsePrediction: (value, where) => index(value.trim(), where, "prediction"),
    formatPrediction(pred) {
      const l = task.labels[pred[0]];
      if (l === undefined) throw new Error(`${task.name}: no label with index ${pred[0]}`);
      return l;
    },
    loss: (logits, labels, where) => crossEntropy(logits, classLabels(labels, C, where)),
    meanLoss: (logits, labels, n) =>
      meanCrossEntropy(n, C, (r, j) => logits[r * C + j], (r) => labels[r]),
    logitsShape: (n) => [n, C],
    toSaved: (out) => out,
    predict: (logits, n) => Float64Array.from(argmaxRows(logits, n, C)),
    score(logits, rows) {
      // Unlabelled rows (test splits: -1 or NaN) cannot be scored.
      for (let i = 0; i < rows.n; i++) if (!(rows.labels[i] >= 0)) return { metrics: {} };
      return { metrics: (task as GlueTask).metrics(kind.predict(logits, rows.n), rows.labels) };
    },
    // log(max of the runs' probabilities), in float64: its argmax is the ensemble's class.
    ensemble: (runs, n) => maxSoftmaxRows(runs, n, C).map(Math.log),
  };
  return kind;
}

/** The classification head kind. */
export const classification: HeadKind = {
  name: "classification",
  description: "one class per row: softmax cross-entropy on the [CLS] read-out",
  forTask: bind,
};
