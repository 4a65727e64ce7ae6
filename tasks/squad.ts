/**
 * SQuAD 2.0: reader for the official JSON, the span task description, and post-processing of
 * start/end logits into answers (n-best over all windows of a question, max answer length,
 * spans inside the context only, compared against the null score with a settable threshold;
 * answer text cut from the original context by character offsets).
 *
 * Post-processing follows Hugging Face's `compute_predictions_logits` (version_2_with_negative),
 * which BERTVision used: the null score is the smallest [CLS] start+end logit over the windows,
 * a start token must have its maximum context in the window, and the returned `nullOdds` (null
 * score minus best span score) is what the official evaluator takes as `--na-prob-file`.
 * @module
 */

import type { SquadExampleLike, SquadFeature } from "../data/features.ts";
import type { TaskBase } from "./types.ts";
import { evaluateSquad } from "./squad_eval.ts";

/** One SQuAD question with its paragraph. */
export interface SquadExample extends SquadExampleLike {
  /** Article title. */
  title: string;
  /** Plausible (but wrong) answers of impossible questions, when the file has them. */
  plausibleAnswers?: { text: string; start: number }[];
}

/** The SQuAD task: span head, span cross-entropy, official EM/F1. */
export interface SquadTask extends TaskBase {
  kind: "span";
  /** Reads `dataDir/squad/{train,dev}-v2.0.json`. */
  readSplit(dataDir: string, split: string): Promise<SquadExample[]>;
  /** Reads a SQuAD 2.0 JSON file. */
  readFile(path: string): Promise<SquadExample[]>;
  /** Official metrics from predictions {id: text} (and optional no-answer probabilities). */
  metrics(
    examples: readonly SquadExample[],
    preds: Record<string, string>,
    naProbs?: Record<string, number>,
  ): Record<string, number>;
}

/** Converts a Python (code point) index into a JavaScript (UTF-16) index of `s`. */
function utf16Index(s: string, codePoint: number): number {
  let cp = 0, i = 0;
  while (cp < codePoint && i < s.length) {
    const c = s.charCodeAt(i);
    i += c >= 0xD800 && c <= 0xDBFF && i + 1 < s.length ? 2 : 1;
    cp++;
  }
  return i;
}

/**
 * Parses the text of a SQuAD (1.1 or 2.0) JSON file; `file` names it in errors, which also give
 * the JSON path of the offending entry.
 *
 * @example
 * ```ts
 * import { parseSquad } from "./squad.ts";
 * const json = { version: "v2.0", data: [{ title: "T", paragraphs: [{ context: "Bob ran.",
 *   qas: [{ id: "q", question: "Who?", answers: [{ text: "Bob", answer_start: 0 }] }] }] }] };
 * const [ex] = parseSquad(JSON.stringify(json), "x.json");
 * console.assert(ex.answers[0].text === "Bob" && !ex.isImpossible);
 * ```
 */
export function parseSquad(text: string, file: string): SquadExample[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const fail = (path: string, what: string): never => {
    throw new Error(`${file}: not a SQuAD file: ${path} ${what}`);
  };
  const obj = (v: unknown, path: string): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? v as Record<string, unknown>
      : fail(path, "is not an object");
  const arr = (v: unknown, path: string): unknown[] =>
    Array.isArray(v) ? v : fail(path, "is not an array");
  const str = (v: unknown, path: string): string =>
    typeof v === "string" ? v : fail(path, "is not a string");
  const answers = (v: unknown, path: string, context: string) =>
    arr(v, path).map((a, k) => {
      const o = obj(a, `${path}[${k}]`);
      const t = str(o.text, `${path}[${k}].text`);
      const s = o.answer_start;
      if (typeof s !== "number" || !Number.isInteger(s) || s < 0) {
        fail(`${path}[${k}].answer_start`, "is not a non-negative integer");
      }
      return { text: t, start: utf16Index(context, s as number) };
    });
  const root = obj(json, "the top level");
  const out: SquadExample[] = [];
  const seen = new Set<string>();
  arr(root.data, "data").forEach((art, i) => {
    const a = obj(art, `data[${i}]`);
    const title = typeof a.title === "string" ? a.title : "";
    arr(a.paragraphs, `data[${i}].paragraphs`).forEach((par, j) => {
      const pp = `data[${i}].paragraphs[${j}]`;
      const p = obj(par, pp);
      const context = str(p.context, `${pp}.context`);
      arr(p.qas, `${pp}.qas`).forEach((qa, k) => {
        const qp = `${pp}.qas[${k}]`;
        const q = obj(qa, qp);
        const id = str(q.id, `${qp}.id`);
        if (seen.has(id)) fail(`${qp}.id`, `repeats question id ${id}`);
        seen.add(id);
        const ans = answers(q.answers ?? [], `${qp}.answers`, context);
        const isImpossible = q.is_impossible === true || ans.length === 0;
        const ex: SquadExample = {
          id,
          title,
          question: str(q.question, `${qp}.question`),
          context,
          answers: isImpossible ? [] : ans,
          isImpossible,
        };
        if (q.plausible_answers !== undefined) {
          ex.plausibleAnswers = answers(q.plausible_answers, `${qp}.plausible_answers`, context);
        }
        out.push(ex);
      });
    });
  });
  return out;
}

/** Reads a SQuAD JSON file (see {@linkcode parseSquad}). */
export async function readSquad(path: string): Promise<SquadExample[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`squad: ${path} not found (run: deno task fetch-data --task squad)`);
    }
    throw e;
  }
  return parseSquad(text, path);
}

const FILES: Record<string, string> = { train: "train-v2.0.json", dev: "dev-v2.0.json" };

/** The SQuAD 2.0 task. */
export const squad: SquadTask = {
  name: "squad",
  kind: "span",
  labels: [],
  numLabels: 2,
  splits: Object.keys(FILES),
  devSplits: ["dev"],
  fileFor(split) {
    const f = FILES[split];
    if (f === undefined) throw new Error(`squad has no split "${split}" (splits: train, dev)`);
    return `squad/${f}`;
  },
  loss: "span_cross_entropy",
  primaryMetric: "f1",
  readFile: readSquad,
  readSplit(dataDir, split) {
    return readSquad(`${dataDir.replace(/\/+$/, "")}/${squad.fileFor(split)}`);
  },
  metrics(examples, preds, naProbs) {
    return evaluateSquad(
      examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
      preds,
      { naProbs },
    );
  },
};

/** Options of {@linkcode squadPostprocess}. */
export interface PostprocessOptions {
  /** Candidate starts and ends per window, and answers kept per question. Default 20. */
  nBest?: number;
  /** Longest answer in tokens. Default 30. */
  maxAnswerLength?: number;
  /** Predict "" when null score - best span score > this. Default 0. */
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

function topK(logits: ArrayLike<number>, k: number, limit: number): number[] {
  const idx = Array.from({ length: Math.min(limit, logits.length) }, (_, i) => i);
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
    let nullScore = Infinity, nullStart = 0, nullEnd = 0;
    const prelim: { f: number; s: number; e: number; sl: number; el: number }[] = [];
    for (const fi of fids) {
      const f = features[fi], sl = startLogits[fi], el = endLogits[fi];
      const len = f.attentionMask.reduce((a, b) => a + b, 0);
      if (sl[0] + el[0] < nullScore) {
        nullScore = sl[0] + el[0];
        nullStart = sl[0];
        nullEnd = el[0];
      }
      const starts = topK(sl, nBest, len), ends = topK(el, nBest, len);
      for (const s of starts) {
        if (f.charStart[s] < 0 || !f.maxContext[s]) continue;
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
    out.predictions[ex.id] = diff > threshold ? "" : bestNonNull.text;
  });
  return out;
}
