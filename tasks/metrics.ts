/**
 * GLUE metrics in float64, with the conventions of scikit-learn and SciPy that the GLUE
 * reference code (and BERTVision) uses: F1 of the positive class 1, Matthews correlation 0 when
 * undefined, Spearman as Pearson of tie-averaged ranks.
 * @module
 */

function checkLengths(preds: ArrayLike<number>, golds: ArrayLike<number>, what: string): void {
  if (preds.length !== golds.length) {
    throw new Error(`${what}: ${preds.length} predictions for ${golds.length} gold labels`);
  }
  if (preds.length === 0) throw new Error(`${what}: no examples`);
}

/**
 * Fraction of predictions equal to the gold label.
 *
 * @example
 * ```ts
 * import { accuracy } from "./metrics.ts";
 * console.assert(accuracy([1, 0, 1, 1], [1, 1, 1, 0]) === 0.5);
 * ```
 */
export function accuracy(preds: ArrayLike<number>, golds: ArrayLike<number>): number {
  checkLengths(preds, golds, "accuracy");
  let ok = 0;
  for (let i = 0; i < preds.length; i++) if (preds[i] === golds[i]) ok++;
  return ok / preds.length;
}

/**
 * F1 of the class `positive` (default 1): 2PR/(P+R); 0 when there are no true positives
 * (scikit-learn's value, including when neither predictions nor gold have any positive).
 */
export function f1Binary(
  preds: ArrayLike<number>,
  golds: ArrayLike<number>,
  positive = 1,
): number {
  checkLengths(preds, golds, "f1");
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < preds.length; i++) {
    const p = preds[i] === positive, g = golds[i] === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/**
 * Matthews correlation coefficient (multi-class form of scikit-learn); 0 when it is undefined,
 * e.g. when every prediction is the same class.
 */
export function matthews(preds: ArrayLike<number>, golds: ArrayLike<number>): number {
  checkLengths(preds, golds, "matthews");
  const n = preds.length;
  const pc = new Map<number, number>(), tc = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    pc.set(preds[i], (pc.get(preds[i]) ?? 0) + 1);
    tc.set(golds[i], (tc.get(golds[i]) ?? 0) + 1);
    if (preds[i] === golds[i]) correct++;
  }
  let pt = 0, pp = 0, tt = 0;
  for (const [k, v] of pc) {
    pt += v * (tc.get(k) ?? 0);
    pp += v * v;
  }
  for (const v of tc.values()) tt += v * v;
  const cov = correct * n - pt;
  const denom = Math.sqrt((n * n - pp) * (n * n - tt));
  return denom === 0 ? 0 : cov / denom;
}

/** Pearson correlation; NaN when either side is constant (SciPy's value). */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y, "pearson");
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i] - mx, dy = y[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/**
 * 1-based ranks with ties given the average of the ranks they span.
 *
 * @example
 * ```ts
 * import { rankAverage } from "./metrics.ts";
 * console.assert(rankAverage([10, 20, 10, 30]).join() === "1.5,3,1.5,4");
 * ```
 */
export function rankAverage(x: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const ranks = new Float64Array(x.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && x[order[j + 1]] === x[order[i]]) j++;
    const r = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]] = r;
    i = j + 1;
  }
  return ranks;
}

/** Spearman rank correlation: Pearson of tie-averaged ranks. */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  checkLengths(x, y, "spearman");
  return pearson(rankAverage(x), rankAverage(y));
}

/**
 * The one way every table, chart and log prints a dev metric `key` (a metric name, or a report
 * column ending in one, e.g. `MNLI-m`, `dev f1`): as the seed's trainers print every dev
 * metric, four decimals on the metric's own scale (`'{:>6.4f}'` / `'{:>8.4f}'` in
 * `code/torch/common/trainers/bert_qa_trainer.py` and `H5_trainer.py`, dfdafad: SQuAD's official
 * EM/F1 percentages as `70.3950`, `73.5724`; `bert_class_trainer.py`: GLUE's fractions as
 * `0.9163`), whatever the value's size, so one column never mixes 0.8929 and 73.57. The
 * official evaluator's counts (`HasAns_total`, ...) are integers; none or NaN is "–".
 *
 * @example
 * ```ts
 * import { formatMetric } from "./metrics.ts";
 * console.assert(formatMetric("f1", 73.57236) === "73.5724");
 * console.assert(formatMetric("f1", 0.89286) === "0.8929"); // a percentage below 1: same format
 * console.assert(formatMetric("HasAns_total", 5928) === "5928");
 * ```
 */
export function formatMetric(key: string, v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  return /(^|[\s_])total$/.test(key) ? String(Math.round(v)) : v.toFixed(METRIC_DECIMALS);
}

/** Decimals of every printed metric (the seed's `{:.4f}`); see {@linkcode formatMetric}. */
export const METRIC_DECIMALS = 4;
