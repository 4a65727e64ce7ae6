/**
 * Multi-label classification (the seed's `--is-multilabel`): any subset of the task's labels per
 * row. One logit per label on the [CLS] read-out, each trained with a sigmoid and binary
 * cross-entropy; a label is predicted when its logit is positive (probability > 0.5). Scored by
 * micro-F1 over every (row, label) decision and by exact match (all of a row's labels right):
 * metrics `micro_f1` and `exact_match`, which a task of this kind lists in its spec.
 *
 *   logits [B, L] (saved [N, L]) · labels [B, L] 0/1, int64 in the store
 *
 * The loss needs no kernel of its own: binary cross-entropy of logit z and target y is softmax
 * cross-entropy over the two logits [0, z] with class y (softmax([0, z])₁ = sigmoid(z)), so each
 * (row, label) becomes one row of `crossEntropy`, and the mean over the B·L rows is PyTorch's
 * `BCEWithLogitsLoss()` (numerically stable through the kernel's log-sum-exp). The ensemble's
 * element-wise maximum of the two models' probabilities is, sigmoid being monotonic, the
 * element-wise maximum of their logits.
 *
 * In a GLUE-format file the label cell lists the row's labels separated by commas ("" = none).
 * Checked by tasks/kinds/multilabel_test.ts (loss and gradient against TF.js, end to end).
 * @module
 */
import { crossEntropy, linear } from "../../model/ops.ts";
import { Tensor } from "../../model/tensor.ts";
import { type HeadKind, meanCrossEntropy, type TaskKind } from "./types.ts";
import { classLabels, sequenceClassificationConfig } from "./_common.ts";
import type { GlueTask, TaskBase } from "../types.ts";
import { InputError } from "../../data/errors.ts";

/** Micro-averaged F1 of 0/1 decisions (every row and label pooled); 0 when nothing is positive. */
export function microF1(preds: ArrayLike<number>, golds: ArrayLike<number>): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < preds.length; i++) {
    if (preds[i] && golds[i]) tp++;
    else if (preds[i]) fp++;
    else if (golds[i]) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** Share of rows (of `width` 0/1 labels) whose every label is right. */
export function exactMatch(preds: ArrayLike<number>, golds: ArrayLike<number>, width: number) {
  const n = preds.length / width;
  let ok = 0;
  for (let r = 0; r < n; r++) {
    let all = true;
    for (let j = 0; j < width && all; j++) all = preds[r * width + j] === golds[r * width + j];
    ok += +all;
  }
  return n ? ok / n : 0;
}

function bind(task: TaskBase): TaskKind {
  const L = task.labels.length;
  if (L < 1) throw new Error(`task ${task.name}: multi-label needs at least 1 label`);
  const parse = (raw: string, where: string, what: string) => {
    const row = new Array<number>(L).fill(0);
    for (const name of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
      const i = task.labels.indexOf(name);
      if (i < 0) {
        throw new InputError(
          `${where}: ${what} "${name}" is not one of ${task.name}'s labels (${task.labels})`,
        );
      }
      row[i] = 1;
    }
    return row;
  };
  const kind: TaskKind = {
    name: "multilabel",
    task,
    lossName: "binary_cross_entropy",
    outputs: L,
    readout: "pooled",
    labelWidth: L,
    labelType: "int64",
    defaultMaxSeqLength: 128,
    bertHeadNames: ["classifier.weight", "classifier.bias"],
    hfConfig: sequenceClassificationConfig(task.labels, "multi_label_classification"),
    parseLabel: (raw, where) => parse(raw, where, "label"),
    parsePrediction: (value, where) => parse(value, where, "prediction"),
    formatPrediction: (pred) => task.labels.filter((_, i) => pred[i]).join(","),
    loss(logits, labels, where) {
      const targets = classLabels(labels, 2, where, L); // B·L decisions, each 0 or 1
      const pairs = linear(logits.reshape([targets.length, 1]), Tensor.from([0, 1], [2, 1]));
      return crossEntropy(pairs, targets); // rows [0, z] against y
    },
    // Each of the n·L decisions a two-class row [0, z] against its 0/1 label, as `loss` does.
    meanLoss: (logits, labels, n) =>
      meanCrossEntropy(n * L, 2, (r, j) => (j ? logits[r] : 0), (r) => labels[r]),
    logitsShape: (n) => [n, L],
    toSaved: (out) => out,
    predict: (logits) => Float64Array.from(logits, (z) => (z > 0 ? 1 : 0)),
    score(logits, rows) {
      for (let i = 0; i < rows.labels.length; i++) {
        if (!(rows.labels[i] >= 0)) return { metrics: {} };
      }
      return { metrics: (task as GlueTask).metrics(kind.predict(logits, rows.n), rows.labels) };
    },
    ensemble: (runs) => Float64Array.from(runs[0], (_, i) => Math.max(...runs.map((r) => r[i]))),
    metricFns: {
      micro_f1: microF1,
      exact_match: (p, g) => exactMatch(p, g, L),
    },
  };
  return kind;
}

/** The multi-label head kind. */
export const multilabel: HeadKind = {
  name: "multilabel",
  description: "any subset of the labels per row: sigmoid + binary cross-entropy per label",
  forTask: bind,
};
