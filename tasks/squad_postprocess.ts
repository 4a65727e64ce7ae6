/**
 * SQuAD 2.0 post-processing: start/end logits of every window into answers (n-best over all
 * windows of a question, max answer length, spans inside the context only, compared against the
 * null score with a settable threshold; answer text cut from the original context by character
 * offsets).
 *
 * Two answer rules ({@linkcode SquadAnswerRule}), differing in two places:
 * - the seed's ({@linkcode SEED_ANSWER_RULE}; BERTVision `code/torch/utils/squad_preprocess.py`
 *   `postprocess_qa_predictions`, commits dfdafad and 0c7e25c): the null score is the LARGEST
 *   start[CLS]+end[CLS] over the question's windows (its variable is named `min_null_score`, but
 *   `if min_null_score is None or min_null_score < feature_null_score` keeps the largest), a
 *   span may start in any window that holds it (no max-context check), and a span only beats
 *   the null score by scoring more (`best_answer["score"] > min_null_score`: a tie is no
 *   answer);
 * - Hugging Face's `run_squad.py` ({@linkcode HF_ANSWER_RULE}; `compute_predictions_logits`,
 *   version_2_with_negative): the null score is the smallest over the windows, and a start token
 *   must have its maximum context in the window (`token_is_max_context`), and a tie goes to the
 *   span (`score_diff > null_score_diff_threshold` is no answer).
 *
 * Both take the `nBest` largest start and end logits of each window over all its positions and
 * keep spans inside the context, of at most `maxAnswerLength` tokens. The returned `nullOdds`
 * (null score minus best span score) is what the official evaluator takes as `--na-prob-file`.
 * Checked by tasks/squad_test.ts and tasks/squad_rule_test.ts (against the seed's code).
 * @module
 */
import type { SquadExampleLike, SquadFeature } from "../data/features.ts";

/**
 * How answers are chosen: which window's [CLS] score is the question's null score ("max": the
 * largest, the seed's; "min": the smallest, run_squad.py's), whether a span's start must have
 * its maximum context in its window (run_squad.py: true; the seed: false), and how an ensemble's
 * combined distributions become answers ("seed": the seed's notebook rule, tasks/squad_seed.ts;
 * "ours": post-processed like one model's logits with the two settings before).
 */
export interface SquadAnswerRule {
  nullScore: "max" | "min";
  maxContext: boolean;
  ensemble: "seed" | "ours";
}

/**
 * The seed's answer rule: `code/torch/utils/squad_preprocess.py` `postprocess_qa_predictions`
 * (BERTVision dfdafad, 0c7e25c): the largest null score over windows, no max-context check; its
 * ensembles: `code/tensorflow/utils/evaluation.py` `SquadModelEvaluation` (dfdafad).
 */
export const SEED_ANSWER_RULE: Readonly<SquadAnswerRule> = {
  nullScore: "max",
  maxContext: false,
  ensemble: "seed",
};

/**
 * Hugging Face `run_squad.py`'s rule (the library's default): the smallest null score, the
 * max-context check; ensembles post-processed the same way.
 */
export const HF_ANSWER_RULE: Readonly<SquadAnswerRule> = {
  nullScore: "min",
  maxContext: true,
  ensemble: "ours",
};

/** Options of {@linkcode squadPostprocess}. */
export interface PostprocessOptions extends Partial<Omit<SquadAnswerRule, "ensemble">> {
  /** Candidate starts and ends per window, and answers kept per question. Default 20. */
  nBest?: number;
  /** Longest answer in tokens. Default 30. */
  maxAnswerLength?: number;
  /**
   * Predict "" when null score − best span score > this (with `nullScore` "max", the seed's
   * rule: ≥ this). Default 0.
   */
  nullScoreDiffThreshold?: number;
}

/** One n-best candidate. */
export interface NBestEntry {
  text: string;
  startLogit: number;
  endLogit: number;
  /** Softmax over the n-best total scores. */
  probability: number;
}

/** Answers per question id, with the null odds (the official evaluator's na-prob input). */
export interface SquadPredictions {
  /** Question id -> answer text ("" = no answer). */
  predictions: Record<string, string>;
  /** Question id -> null score - best non-null span score. */
  nullOdds: Record<string, number>;
  /** Question id -> n-best list (best first). */
  nbest: Record<string, NBestEntry[]>;
}

function topK(logits: ArrayLike<number>, k: number): number[] {
  // Over every position, padding included, as both the seed (`np.argsort(start_logits)`) and
  // run_squad.py (`_get_best_indexes`) do; positions outside the context are dropped after.
  const idx = Array.from({ length: logits.length }, (_, i) => i);
  idx.sort((a, b) => logits[b] - logits[a]);
  return idx.slice(0, k);
}

/**
 * Turns per-window start/end logits into answers. `startLogits[f]` and `endLogits[f]` belong to
 * `features[f]`; features of one example may appear anywhere in the list.
 */
export function squadPostprocess(
  examples: readonly SquadExampleLike[],
  features: readonly SquadFeature[],
  startLogits: readonly ArrayLike<number>[],
  endLogits: readonly ArrayLike<number>[],
  opts: PostprocessOptions = {},
): SquadPredictions {
  const nBest = opts.nBest ?? 20;
  const maxLen = opts.maxAnswerLength ?? 30;
  const threshold = opts.nullScoreDiffThreshold ?? 0;
  const nullMax = (opts.nullScore ?? HF_ANSWER_RULE.nullScore) === "max";
  const maxContext = opts.maxContext ?? HF_ANSWER_RULE.maxContext;
  if (startLogits.length !== features.length || endLogits.length !== features.length) {
    throw new Error(
      `squadPostprocess: ${features.length} features but ${startLogits.length} start and ` +
        `${endLogits.length} end logit rows`,
    );
  }
  const byExample = new Map<number, number[]>();
  features.forEach((f, i) => {
    const list = byExample.get(f.exampleIndex);
    if (list) list.push(i);
    else byExample.set(f.exampleIndex, [i]);
  });
  const out: SquadPredictions = { predictions: {}, nullOdds: {}, nbest: {} };
  examples.forEach((ex, ei) => {
    const fids = byExample.get(ei);
    if (!fids) throw new Error(`squadPostprocess: no feature for question ${ex.id}`);
    let nullScore = nullMax ? -Infinity : Infinity, nullStart = 0, nullEnd = 0;
    const prelim: { f: number; s: number; e: number; sl: number; el: number }[] = [];
    for (const fi of fids) {
      const f = features[fi], sl = startLogits[fi], el = endLogits[fi];
      const n = sl[0] + el[0];
      if (nullMax ? n > nullScore : n < nullScore) {
        nullScore = sl[0] + el[0];
        nullStart = sl[0];
        nullEnd = el[0];
      }
      const starts = topK(sl, nBest), ends = topK(el, nBest);
      for (const s of starts) {
        if (f.charStart[s] < 0 || (maxContext && !f.maxContext[s])) continue;
        for (const e of ends) {
          if (f.charStart[e] < 0 || e < s || e - s + 1 > maxLen) continue;
          prelim.push({ f: fi, s, e, sl: sl[s], el: el[e] });
        }
      }
    }
    prelim.push({ f: -1, s: 0, e: 0, sl: nullStart, el: nullEnd });
    prelim.sort((a, b) => b.sl + b.el - (a.sl + a.el));
    const seen = new Set<string>();
    const entries: Omit<NBestEntry, "probability">[] = [];
    for (const p of prelim) {
      if (entries.length >= nBest) break;
      let text = "";
      if (p.f >= 0) {
        const f = features[p.f];
        text = ex.context.slice(f.charStart[p.s], f.charEnd[p.e]);
        if (seen.has(text)) continue;
      } else if (seen.has("")) continue;
      seen.add(text);
      entries.push({ text, startLogit: p.sl, endLogit: p.el });
    }
    if (!seen.has("")) entries.push({ text: "", startLogit: nullStart, endLogit: nullEnd });
    const scores = entries.map((e) => e.startLogit + e.endLogit);
    const mx = Math.max(...scores);
    const exps = scores.map((s) => Math.exp(s - mx));
    const z = exps.reduce((a, b) => a + b, 0);
    out.nbest[ex.id] = entries.map((e, i) => ({ ...e, probability: exps[i] / z }));
    const bestNonNull = entries.find((e) => e.text !== "");
    if (!bestNonNull) {
      out.predictions[ex.id] = "";
      out.nullOdds[ex.id] = Number.MAX_VALUE; // finite so it survives JSON
      return;
    }
    const diff = nullScore - bestNonNull.startLogit - bestNonNull.endLogit;
    out.nullOdds[ex.id] = diff;
    // A tie goes to the null answer in the seed's rule (`best_answer["score"] > min_null_score`
    // answers), to the span in run_squad.py's (`score_diff > null_score_diff_threshold` is null).
    const noAnswer = nullMax ? diff >= threshold : diff > threshold;
    out.predictions[ex.id] = noAnswer ? "" : bestNonNull.text;
  });
  return out;
}
