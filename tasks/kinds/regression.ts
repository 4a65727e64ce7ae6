/**
 * Regression (STS-B): one output on the [CLS] read-out trained with mean squared error; the
 * prediction is the output itself. BERTVision reports no STS-B ensemble (a score has no
 * distribution to take the maximum of): ours averages the models' predictions.
 *
 *   logits [B, 1] (saved [N, 1]) · labels [B] scores, float32 in the store (NaN = unlabelled)
 *
 * Checked by tasks/kinds/kinds_test.ts and tasks/kinds/ensemble_test.ts.
 * @module
 */
import { mse } from "../../model/ops.ts";
import { Tensor } from "../../model/tensor.ts";
import type { HeadKind, TaskKind } from "./types.ts";
import { sequenceClassificationConfig } from "./_common.ts";
import type { GlueTask, TaskBase } from "../types.ts";
import { InputError } from "../../data/errors.ts";

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

/** A decimal number as the GLUE files and Python's `str(float)` write them: 3.8, -0.25, 1e-05. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Parses a decimal number (not `0x10`, `Infinity`, `NaN` or `1e400`, which `Number` would take)
 * and checks it lies in `range` when one is given; errors name `where` (file:line).
 */
function number(
  raw: string,
  where: string,
  what: string,
  range?: readonly [number, number],
): number[] {
  const t = raw.trim();
  const v = Number(t);
  if (!DECIMAL.test(t) || !Number.isFinite(v)) {
    throw new InputError(`${where}: ${what} "${raw}" is not a number (a decimal such as 3.8)`);
  }
  if (range && !(v >= range[0] && v <= range[1])) {
    throw new InputError(`${where}: ${what} ${t} is outside [${range[0]}, ${range[1]}]`);
  }
  return [v];
}

function bind(task: TaskBase): TaskKind {
  const kind: TaskKind = {
    name: "regression",
    task,
    lossName: "mse",
    outputs: 1,
    readout: "pooled",
    labelWidth: 1,
    labelType: "float32",
    defaultMaxSeqLength: 128,
    bertHeadNames: ["classifier.weight", "classifier.bias"],
    hfConfig: sequenceClassificationConfig(["LABEL_0"], "regression"),
    parseLabel: (raw, where) => number(raw, where, "score", (task as GlueTask).scoreRange),
    parsePrediction: (value, where) => number(value, where, "prediction"),
    formatPrediction: (pred) => String(pred[0]),
    loss(logits, labels, where) {
      const B = labels.length;
      for (let i = 0; i < B; i++) {
        if (!Number.isFinite(labels[i])) {
          throw new Error(`${where(i)} has no regression target (${labels[i]})`);
        }
      }
      return mse(logits.reshape([B]), Tensor.from(Float32Array.from(labels), [B]));
    },
    meanLoss(logits, labels, n) {
      let sum = 0;
      for (let i = 0; i < n; i++) sum += (logits[i] - labels[i]) ** 2;
      return sum / Math.max(1, n); // NaN for an unlabelled row
    },
    logitsShape: (n) => [n, 1],
    toSaved: (out) => out,
    predict: (logits, n) => Float64Array.from({ length: n }, (_, i) => logits[i]),
    score(logits, rows) {
      for (let i = 0; i < rows.n; i++) if (!Number.isFinite(rows.labels[i])) return { metrics: {} };
      return { metrics: (task as GlueTask).metrics(kind.predict(logits, rows.n), rows.labels) };
    },
    ensemble(runs, n) {
      // The mean of the runs' predictions (of two: ensembleRegression).
      const out = new Float64Array(n);
      for (const r of runs) {
        if (r.length !== n) {
          throw new RangeError(`ensemble: a run has ${r.length} predictions for ${n} rows`);
        }
        for (let i = 0; i < n; i++) out[i] += r[i];
      }
      return out.map((x) => x / runs.length);
    },
  };
  return kind;
}

/** The regression head kind. */
export const regression: HeadKind = {
  name: "regression",
  description: "one score per row: mean squared error on the [CLS] read-out",
  forTask: bind,
};
