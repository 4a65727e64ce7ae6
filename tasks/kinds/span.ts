/**
 * Spans (SQuAD 2.0): start and end logits for every token of the last layer, cross-entropy of
 * each against the gold token, averaged (no answer = [CLS], position 0). Predictions are answer
 * texts: the official post-processing over all windows of a question (tasks/squad.ts), scored by
 * the official EM/F1. The ensemble takes, per window, the log of the element-wise maximum of the
 * two models' start distributions, and likewise of the end distributions, and post-processes
 * that as logits (start + end is then the log of a product of probabilities), or, with the seed's
 * ensemble rule (`rows.squad.rule.ensemble` "seed"), picks answers as the seed's notebook did
 * (tasks/squad_seed.ts).
 *
 *   logits [B, 2, T] (row 0 start, row 1 end; saved [N, T, 2]) · labels [B, 2] start and end,
 *   int64 in the store
 *
 * Checked by tasks/kinds/kinds_test.ts and tasks/kinds/ensemble_test.ts.
 * @module
 */
import { crossEntropy } from "../../model/ops.ts";
import { type HeadKind, meanCrossEntropy, type TaskKind } from "./types.ts";
import { classLabels, maxSoftmaxRows, softmaxRows } from "./_common.ts";
import { squadPostprocess } from "../squad_postprocess.ts";
import { seedSpanAnswers } from "../squad_seed.ts";
import { evaluateSquad } from "../squad_eval.ts";
import type { TaskBase } from "../types.ts";

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
 * import { ensembleSpan } from "./span.ts";
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

/** Splits saved span logits [N, T, 2] into per-row start and end arrays. */
export function splitSpanLogits(
  logits: ArrayLike<number>,
  n: number,
  tokens: number,
): { start: Float32Array[]; end: Float32Array[] } {
  if (logits.length !== n * tokens * 2) {
    throw new RangeError(`splitSpanLogits: ${logits.length} values for [${n}, ${tokens}, 2]`);
  }
  const start: Float32Array[] = [], end: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const s = new Float32Array(tokens), e = new Float32Array(tokens);
    for (let t = 0; t < tokens; t++) {
      s[t] = logits[(i * tokens + t) * 2];
      e[t] = logits[(i * tokens + t) * 2 + 1];
    }
    start.push(s);
    end.push(e);
  }
  return { start, end };
}

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

function bind(task: TaskBase): TaskKind {
  const notText = (where: string): never => {
    throw new Error(`${where}: ${task.name} reads spans from SQuAD JSON, not from label cells`);
  };
  const kind: TaskKind = {
    name: "span",
    task,
    lossName: "span_cross_entropy",
    outputs: 2,
    readout: "token",
    labelWidth: 2,
    labelType: "int64",
    defaultMaxSeqLength: 384,
    bertHeadNames: ["qa_outputs.weight", "qa_outputs.bias"],
    hfConfig: { architectures: ["BertForQuestionAnswering"] },
    parseLabel: (_raw, where) => notText(where),
    parsePrediction: (_value, where) => notText(where),
    formatPrediction: (pred) => `${pred[0]} ${pred[1]}`,
    loss(logits, labels, where) {
      // [B, 2, T] as 2B rows against [s0, e0, s1, e1, ...]: the mean over rows is
      // (CE(start) + CE(end)) / 2, BertForQuestionAnswering's loss.
      const T = logits.shape.at(-1)!;
      return crossEntropy(logits.reshape([-1, T]), classLabels(labels, T, where, 2));
    },
    // Saved [n, T, 2]: 2n rows (start, end) of T logits; (CE(start) + CE(end)) / 2 as `loss`.
    meanLoss: (logits, labels, n, tokens) =>
      meanCrossEntropy(
        2 * n,
        tokens,
        (r, t) => logits[((r >> 1) * tokens + t) * 2 + (r & 1)],
        (r) => labels[r],
      ),
    logitsShape: (n, tokens) => [n, tokens, 2],
    toSaved(out, rows, tokens) {
      // [b, 2, T] → [b, T, 2]
      const saved = new Float32Array(out.length);
      for (let b = 0; b < rows; b++) {
        for (let t = 0; t < tokens; t++) {
          saved[(b * tokens + t) * 2] = out[(b * 2) * tokens + t];
          saved[(b * tokens + t) * 2 + 1] = out[(b * 2 + 1) * tokens + t];
        }
      }
      return saved;
    },
    predict(logits, n) {
      // The most likely start and end token per window (token-level, before post-processing).
      const T = logits.length / (2 * n);
      const { start, end } = splitSpanLogits(logits, n, T);
      const out = new Float64Array(2 * n);
      for (let i = 0; i < n; i++) {
        out[2 * i] = argmax(start[i]);
        out[2 * i + 1] = argmax(end[i]);
      }
      return out;
    },
    score(logits, rows) {
      const { start, end } = splitSpanLogits(logits, rows.n, rows.seq);
      if (!rows.squad) {
        // No questions to post-process against (a bare activation store): token accuracies.
        const p = kind.predict(logits, rows.n), g = rows.labels;
        let sOk = 0, eOk = 0, both = 0;
        for (let i = 0; i < rows.n; i++) {
          const s1 = p[2 * i] === g[2 * i], e1 = p[2 * i + 1] === g[2 * i + 1];
          sOk += +s1;
          eOk += +e1;
          both += +(s1 && e1);
        }
        const n = rows.n;
        return {
          metrics: { start_accuracy: sOk / n, end_accuracy: eOk / n, span_accuracy: both / n },
        };
      }
      const { examples, features, rule } = rows.squad;
      const pp = squadPostprocess(examples, features, start, end, {
        nullScore: rule?.nullScore,
        maxContext: rule?.maxContext,
      });
      const gold = examples.map((e) => ({
        id: e.id,
        answers: e.isImpossible ? [] : e.answers.map((a) => a.text),
      }));
      const metrics = evaluateSquad(gold, pp.predictions, { naProbs: pp.nullOdds, warn: () => {} });
      return {
        metrics: metrics as unknown as Record<string, number>,
        answers: pp.predictions,
        naProbs: pp.nullOdds,
      };
    },
    scoreEnsemble(ensembled, rows) {
      if (rows.squad?.rule?.ensemble !== "seed") return kind.score(ensembled, rows);
      // The seed's notebook rule on the log of the max of the softmaxes (tasks/squad_seed.ts).
      const { start, end } = splitSpanLogits(ensembled, rows.n, rows.seq);
      const { examples } = rows.squad;
      const answers = seedSpanAnswers(
        examples,
        rows.squad.features,
        start,
        end,
        "log-probabilities",
      );
      const gold = examples.map((e) => ({
        id: e.id,
        answers: e.isImpossible ? [] : e.answers.map((a) => a.text),
      }));
      const metrics = evaluateSquad(gold, answers, { warn: () => {} });
      return { metrics: metrics as unknown as Record<string, number>, answers };
    },
    ensemble(runs, n, tokens) {
      // Per window, log of the max of the runs' start distributions over tokens, likewise end.
      const split = runs.map((r) => splitSpanLogits(r, n, tokens));
      const out = new Float64Array(n * tokens * 2);
      for (let i = 0; i < n; i++) {
        for (const [j, which] of [[0, "start"], [1, "end"]] as const) {
          const p = maxSoftmaxRows(split.map((s) => s[which][i]), 1, tokens);
          for (let t = 0; t < tokens; t++) out[(i * tokens + t) * 2 + j] = Math.log(p[t]);
        }
      }
      return out;
    },
  };
  return kind;
}

/** The span (SQuAD) head kind. */
export const span: HeadKind = {
  name: "span",
  description: "start and end token per row: cross-entropy on every token's read-out (SQuAD)",
  forTask: bind,
};
