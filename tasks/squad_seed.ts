/**
 * The seed's SQuAD ensemble rule: how BERTVision's TensorFlow notebook turned two models'
 * combined start/end distributions into answers (`code/tensorflow/utils/evaluation.py`,
 * `SquadModelEvaluation`, commit dfdafad; used by `ensemble_two_models_max` in
 * `code/tensorflow/notebooks/model_analysis_section.ipynb`, "Max presented for the paper"):
 *
 * - per window, the start token is the argmax of the start distribution and the end token the
 *   argmax of the end distribution, each on its own (`get_output_strings`: no end ≥ start
 *   check, no length limit, no null score);
 * - the window's probability is the product of the two maxima (`get_per_example_probs`:
 *   `logits_start * logits_end`, after a softmax unless `already_prob`; the ensemble passes
 *   `np.maximum` of the two models' softmaxes with `already_prob=True`);
 * - a question's answer is that of its window with the largest probability (`get_best_prob_answer`:
 *   the first window keeps a tie, `prob > best`);
 * - the answer is the tokens `ids[start:end + 1]`: empty when end < start, and no answer when
 *   it is `['[CLS]']` (start = end = 0).
 *
 * The notebook then scored word-piece lists with its own EM/F1; here the answer is text (the
 * context from the first to the last context token of the span; a span with no context token is
 * no answer) and is scored by the official evaluator like every other prediction. Checked by
 * tasks/squad_rule_test.ts against a re-writing of the notebook's code.
 * @module
 */
import type { SquadExampleLike, SquadFeature } from "../data/features.ts";

/** What the rows given to {@linkcode seedSpanAnswers} hold. */
export type SpanScale = "logits" | "log-probabilities";

function argmaxMax(a: ArrayLike<number>): [number, number] {
  let best = 0;
  // np.argmax: the first of equal maxima.
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return [best, a[best]];
}

/** log of the largest softmax probability of a row of logits: max − logsumexp. */
function logMaxSoftmax(a: ArrayLike<number>, max: number): number {
  let z = 0;
  for (let i = 0; i < a.length; i++) z += Math.exp(a[i] - max);
  return -Math.log(z);
}

/**
 * Answers by the seed's ensemble rule (see the module doc) from per-window start and end rows.
 * `scale` says what the rows are: "logits" (softmaxed first, as the notebook does for one model)
 * or "log-probabilities" (the log of the notebook's `already_prob` input, e.g. the span kind's
 * ensemble: the log of the element-wise maximum of the models' softmaxes). Windows are compared
 * by the log of the product of the maxima, which orders them as the product does.
 *
 * @example
 * ```ts
 * import { seedSpanAnswers } from "./squad_seed.ts";
 * const f = { exampleIndex: 0, charStart: Int32Array.from([-1, 0, 4]),
 *   charEnd: Int32Array.from([-1, 3, 7]) };
 * const ex = { id: "q", question: "?", context: "bob ran", answers: [], isImpossible: false };
 * // start argmax 1, end argmax 1: "bob".
 * const a = seedSpanAnswers([ex], [f as never], [[0, 5, 1]], [[0, 4, 2]], "logits");
 * console.assert(a.q === "bob");
 * ```
 */
export function seedSpanAnswers(
  examples: readonly SquadExampleLike[],
  features: readonly Pick<SquadFeature, "exampleIndex" | "charStart" | "charEnd">[],
  start: readonly ArrayLike<number>[],
  end: readonly ArrayLike<number>[],
  scale: SpanScale,
): Record<string, string> {
  if (start.length !== features.length || end.length !== features.length) {
    throw new Error(
      `seedSpanAnswers: ${features.length} features but ${start.length} start and ` +
        `${end.length} end rows`,
    );
  }
  const best = new Map<number, { score: number; text: string }>();
  features.forEach((f, i) => {
    const ex = examples[f.exampleIndex];
    if (ex === undefined) throw new Error(`seedSpanAnswers: feature ${i} names no question`);
    const [s, sMax] = argmaxMax(start[i]);
    const [e, eMax] = argmaxMax(end[i]);
    const score = scale === "logits"
      ? logMaxSoftmax(start[i], sMax) + logMaxSoftmax(end[i], eMax)
      : sMax + eMax;
    const held = best.get(f.exampleIndex);
    if (held !== undefined && !(score > held.score)) return;
    let text = "";
    if (e >= s && !(s === 0 && e === 0)) {
      // The context tokens of ids[s..e]: the text from the first one's start to the last one's end.
      let first = -1, last = -1;
      for (let t = s; t <= e; t++) {
        if (f.charStart[t] < 0) continue;
        if (first < 0) first = t;
        last = t;
      }
      if (first >= 0) text = ex.context.slice(f.charStart[first], f.charEnd[last]);
    }
    best.set(f.exampleIndex, { score, text });
  });
  const out: Record<string, string> = {};
  examples.forEach((ex, i) => {
    const b = best.get(i);
    if (b === undefined) throw new Error(`seedSpanAnswers: no feature for question ${ex.id}`);
    out[ex.id] = b.text;
  });
  return out;
}
