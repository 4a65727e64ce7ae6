/**
 * The official SQuAD 2.0 evaluation (`evaluate-v2.0.py`), ported line for line.
 *
 * Answers are normalised (lower case, ASCII punctuation removed, the articles a/an/the removed as
 * whole words, whitespace collapsed), EM and token F1 are maxima over the gold answers (answers
 * that normalise to nothing are dropped; an unanswerable question's gold is the empty string),
 * broken down into HasAns/NoAns; with no-answer probabilities, best_exact/best_f1 and their
 * thresholds are added. Python's semantics are kept where JavaScript differs: `\b` is
 * Unicode-aware (letters, digits and `_` are word characters) and `str.split()` whitespace.
 *
 * One deliberate difference: a question without a prediction scores 0 and still counts in every
 * total, with a warning (the behaviour of the v1.1 script and of the issue; v2.0 would drop it
 * from `total` and fail on the HasAns/NoAns breakdown).
 * @module
 */

/** One question of a SQuAD dataset as the evaluator sees it. */
export interface EvalQuestion {
  id: string;
  /** Gold answer texts (empty for unanswerable questions). */
  answers: string[];
}

/** Python's `string.punctuation`. */
const PUNCT = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
/** `\b(a|an|the)\b` with re.UNICODE: word characters are letters, digits and underscore. */
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
/** Characters Python's `str.split()` splits on. */
const PY_WHITESPACE =
  // deno-lint-ignore no-control-regex -- \x1c-\x1f are whitespace to Python's str.split()
  /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/**
 * `normalize_answer`: lower case, remove punctuation, articles and extra whitespace.
 *
 * @example
 * ```ts
 * import { normalizeAnswer } from "./squad_eval.ts";
 * console.assert(normalizeAnswer("  The  Beatles' (band)!") === "beatles band");
 * ```
 */
export function normalizeAnswer(s: string): string {
  let t = s.toLowerCase();
  t = [...t].filter((c) => !PUNCT.has(c)).join("");
  t = t.replace(ARTICLES, " ");
  return pySplit(t).join(" ");
}

function pySplit(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((x) => x.length > 0);
}

function getTokens(s: string): string[] {
  return s ? pySplit(normalizeAnswer(s)) : [];
}

/** `compute_exact`: 1 when the normalised strings are equal. */
export function computeExact(gold: string, pred: string): number {
  return normalizeAnswer(gold) === normalizeAnswer(pred) ? 1 : 0;
}

/** `compute_f1`: bag-of-tokens F1 of the normalised strings (1/0 when either is empty). */
export function computeF1(gold: string, pred: string): number {
  const g = getTokens(gold), p = getTokens(pred);
  if (g.length === 0 || p.length === 0) return g.length === p.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length, recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

/** Options of {@linkcode evaluateSquad}. */
export interface SquadEvalOptions {
  /** No-answer probability per question id (the official `--na-prob-file`). */
  naProbs?: Record<string, number>;
  /** Predict no answer when naProb > this (official default 1.0). */
  naProbThresh?: number;
  /** Called with a warning (default: console.warn). */
  warn?: (msg: string) => void;
  /** Name of the predictions (for messages). */
  predFile?: string;
}

/**
 * The official SQuAD 2.0 metrics (percentages) in the official key order.
 *
 * @example
 * ```ts
 * import { evaluateSquad } from "./squad_eval.ts";
 * const qs = [{ id: "a", answers: ["the cat"] }, { id: "b", answers: [] }];
 * const m = evaluateSquad(qs, { a: "Cat", b: "" });
 * console.assert(m.exact === 100 && m.HasAns_total === 1 && m.NoAns_total === 1);
 * ```
 */
export function evaluateSquad(
  questions: readonly EvalQuestion[],
  preds: Record<string, string>,
  opts: SquadEvalOptions = {},
): Record<string, number> {
  const warn = opts.warn ?? ((m: string) => console.warn(m));
  const predFile = opts.predFile ?? "predictions";
  const hasAns = new Map<string, boolean>();
  const exactRaw = new Map<string, number>();
  const f1Raw = new Map<string, number>();
  const missing: string[] = [];
  for (const q of questions) {
    hasAns.set(q.id, q.answers.length > 0);
    let gold = q.answers.filter((a) => normalizeAnswer(a));
    if (gold.length === 0) gold = [""];
    if (!Object.hasOwn(preds, q.id)) {
      missing.push(q.id);
      exactRaw.set(q.id, 0);
      f1Raw.set(q.id, 0);
      continue;
    }
    const p = preds[q.id];
    if (typeof p !== "string") {
      throw new Error(`${predFile}: prediction for ${q.id} is ${JSON.stringify(p)}, not a string`);
    }
    exactRaw.set(q.id, Math.max(...gold.map((a) => computeExact(a, p))));
    f1Raw.set(q.id, Math.max(...gold.map((a) => computeF1(a, p))));
  }
  if (missing.length > 0) {
    warn(
      `${predFile}: missing predictions for ${missing.length} of ${questions.length} questions ` +
        `(scored as wrong): ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`,
    );
  }
  const naProbs: Record<string, number> = opts.naProbs ??
    Object.fromEntries(Object.keys(preds).map((k) => [k, 0]));
  if (opts.naProbs) {
    for (const q of questions) {
      if (Object.hasOwn(preds, q.id) && typeof naProbs[q.id] !== "number") {
        throw new Error(`no-answer probabilities: no number for question ${q.id}`);
      }
    }
  }
  const thresh = opts.naProbThresh ?? 1.0;
  const applyThresh = (scores: Map<string, number>) => {
    const out = new Map<string, number>();
    for (const [id, s] of scores) {
      const na = naProbs[id];
      out.set(id, na !== undefined && na > thresh ? (hasAns.get(id) ? 0 : 1) : s);
    }
    return out;
  };
  const exactT = applyThresh(exactRaw), f1T = applyThresh(f1Raw);
  const evalDict = (ids: string[]) => {
    let e = 0, f = 0;
    for (const id of ids) {
      e += exactT.get(id)!;
      f += f1T.get(id)!;
    }
    return { exact: (100 * e) / ids.length, f1: (100 * f) / ids.length, total: ids.length };
  };
  const all = [...exactT.keys()];
  const out: Record<string, number> = evalDict(all);
  const hasIds = all.filter((id) => hasAns.get(id));
  const noIds = all.filter((id) => !hasAns.get(id));
  if (hasIds.length) {
    const h = evalDict(hasIds);
    out.HasAns_exact = h.exact;
    out.HasAns_f1 = h.f1;
    out.HasAns_total = h.total;
  }
  if (noIds.length) {
    const h = evalDict(noIds);
    out.NoAns_exact = h.exact;
    out.NoAns_f1 = h.f1;
    out.NoAns_total = h.total;
  }
  if (opts.naProbs) {
    const [be, bet] = findBestThresh(preds, exactRaw, naProbs, hasAns);
    const [bf, bft] = findBestThresh(preds, f1Raw, naProbs, hasAns);
    out.best_exact = be;
    out.best_exact_thresh = bet;
    out.best_f1 = bf;
    out.best_f1_thresh = bft;
  }
  return out;
}

/** `find_best_thresh`: sweep the no-answer threshold over the sorted probabilities. */
function findBestThresh(
  preds: Record<string, string>,
  scores: Map<string, number>,
  naProbs: Record<string, number>,
  hasAns: Map<string, boolean>,
): [number, number] {
  let cur = 0;
  for (const v of hasAns.values()) if (!v) cur++;
  let best = cur, bestThresh = 0.0;
  const ids = Object.keys(naProbs).sort((a, b) => naProbs[a] - naProbs[b]);
  for (const id of ids) {
    if (!scores.has(id)) continue;
    let diff: number;
    if (hasAns.get(id)) diff = scores.get(id)!;
    else diff = preds[id] ? -1 : 0;
    cur += diff;
    if (cur > best) {
      best = cur;
      bestThresh = naProbs[id];
    }
  }
  return [(100 * best) / scores.size, bestThresh];
}
