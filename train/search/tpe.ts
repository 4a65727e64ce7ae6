/**
 * The Tree-structured Parzen Estimator (Bergstra et al. 2011) as hyperopt's `tpe.suggest` runs
 * it, the sampler the seed's search used. The npm `hyperparameters` package (a hyperopt port,
 * 0.25.6) has only random and grid search, so TPE is written here, following hyperopt's
 * `hyperopt/tpe.py` and its defaults:
 *
 * - Every trial of the history counts, whatever its state: a failed trial, or one still running
 *   (or interrupted), has loss +∞ (hyperopt's `suggest`: "associate infinite loss to
 *   new/running/failed jobs"), so it counts toward the startup trials and lies "above", which
 *   steers the sampler away from, e.g., learning rates that diverged.
 * - While the history holds fewer than `startup` (hyperopt's `n_startup_jobs`, 20) trials, the
 *   suggestion is a random draw from the prior; after that, each hyperparameter is chosen on its
 *   own (hyperopt's TPE is univariate).
 * - The trials are split by loss: the best `ceil(gamma · √n)` (gamma 0.25, at most 25) are
 *   "below", the rest "above" (ties: the earlier trial first).
 * - Each side's observations become a density: for a real parameter an adaptive Parzen mixture
 *   of normals (`adaptive_parzen_normal`: one component per observation, its width the larger
 *   gap to its neighbours, clipped to [range / min(100, n + 2), range], plus the prior, a normal
 *   at the middle as wide as the range, of weight 1), truncated to the bounds (log scale for
 *   `loguniform`; a `quniform` value's probability is its bin's mass, `GMM1_lpdf` with q: the
 *   seed's `hp.uniformint` seed is such a mixture, not a categorical); for a choice or an
 *   integer range, the counts plus `priorWeight` pseudo-counts PER OPTION (`hp.choice` is a
 *   `randint` over the options' indices, `ap_randint_sampler`: `counts + prior_weight`;
 *   `ap_categorical_sampler` too for equal option probabilities: `counts + p.size ·
 *   prior_weight · p`). Observations older than the last 25 (`linear_forgetting`) weigh less,
 *   linearly.
 * - 24 candidates (`n_EI_candidates`) are drawn from the "below" density; the one with the
 *   largest log l(x) − log g(x) (below over above) is suggested.
 *
 * All randomness comes from the caller's {@linkcode Rng}: the same history and seed give the
 * same suggestion. Checked by train/search/study_test.ts (a seeded synthetic objective: TPE reaches
 * the good region sooner than random search).
 * @module
 */
import type { Rng } from "../../data/rng.ts";
import { type Dist, type Params, type ParamValue, randomParams, type Space } from "./space.ts";

/** A scored trial, for the sampler: its hyperparameters and loss (lower is better). */
export interface Observation {
  params: Params;
  loss: number;
}

/** hyperopt's `tpe.suggest` settings (its defaults). */
export interface TpeOptions {
  /** Random suggestions before TPE starts (`n_startup_jobs`) [20]. */
  startup?: number;
  /** Share of √n trials that are "below" (`gamma`) [0.25]. */
  gamma?: number;
  /** Candidates drawn from the "below" density (`n_EI_candidates`) [24]. */
  candidates?: number;
  /** Weight of the prior in each density (`prior_weight`) [1]. */
  priorWeight?: number;
  /** Observations at full weight; older ones weigh less (`linear_forgetting`) [25]. */
  forgetting?: number;
}

/** hyperopt's defaults. */
export const TPE_DEFAULTS: Required<TpeOptions> = {
  startup: 20,
  gamma: 0.25,
  candidates: 24,
  priorWeight: 1,
  forgetting: 25,
};

/**
 * The next trial's hyperparameters: random from the prior while `history` holds fewer than
 * `startup` trials, then TPE over it (in the order the trials started). A loss that is not a
 * finite number (a failed or running trial) counts as +∞, as hyperopt counts them.
 */
export function tpeSuggest(
  space: Space,
  history: Observation[],
  rng: Rng,
  opts: TpeOptions = {},
): Params {
  const o = { ...TPE_DEFAULTS, ...opts };
  if (history.length < Math.max(1, o.startup)) return randomParams(space, rng);
  const post = tpePosterior(space, history, o);
  const out: Params = {};
  for (const [key, d] of Object.entries(space)) {
    out[key] = d.kind === "fixed" ? d.value : suggestOne(post[key], rng, o);
  }
  return out;
}

/** A univariate density the sampler draws candidates from and scores them with. */
export interface Density {
  sample(rng: Rng): ParamValue;
  logPdf(x: ParamValue): number;
}

/**
 * TPE's two densities per searched hyperparameter over `history` (losses that are not finite
 * numbers count as +∞): `below` (l, of the best trials) and `above` (g, of the rest).
 */
export function tpePosterior(
  space: Space,
  history: Observation[],
  opts: TpeOptions = {},
): Record<string, { below: Density; above: Density }> {
  const o = { ...TPE_DEFAULTS, ...opts };
  const losses = history.map((h) => ({
    ...h,
    loss: Number.isFinite(h.loss) ? h.loss : Infinity,
  }));
  const { below, above } = splitTrials(losses, o.gamma, o.forgetting);
  const out: Record<string, { below: Density; above: Density }> = {};
  for (const [key, d] of Object.entries(space)) {
    if (d.kind === "fixed") continue;
    const b = below.map((h) => h.params[key]).filter((v) => v !== undefined);
    const a = above.map((h) => h.params[key]).filter((v) => v !== undefined);
    out[key] = { below: density(d, b, o), above: density(d, a, o) };
  }
  return out;
}

/**
 * hyperopt's `ap_split_trials`: the best `min(ceil(gamma · √n), forgetting)` trials by loss
 * ("below") and the rest ("above"), each kept in the order the trials ran. Equal losses: the
 * earlier trial counts as better.
 */
export function splitTrials(
  history: Observation[],
  gamma: number,
  cap = TPE_DEFAULTS.forgetting,
): { below: Observation[]; above: Observation[] } {
  const nBelow = Math.min(Math.ceil(gamma * Math.sqrt(history.length)), cap);
  const order = history.map((_, i) => i).sort((i, j) => history[i].loss - history[j].loss || i - j);
  const keep = new Set(order.slice(0, nBelow));
  return {
    below: history.filter((_, i) => keep.has(i)),
    above: history.filter((_, i) => !keep.has(i)),
  };
}

/**
 * hyperopt's `linear_forgetting_weights`: 1 for the last `lf` of `n` observations, a ramp from
 * 1/n up to 1 for the older ones.
 */
export function forgettingWeights(n: number, lf: number): number[] {
  if (n <= lf) return Array(n).fill(1);
  const ramp = n - lf;
  const w: number[] = [];
  for (let i = 0; i < ramp; i++) w.push(ramp === 1 ? 1 / n : 1 / n + (1 - 1 / n) * i / (ramp - 1));
  return [...w, ...Array(lf).fill(1)];
}

function suggestOne(
  { below: l, above: g }: { below: Density; above: Density },
  rng: Rng,
  o: Required<TpeOptions>,
): ParamValue {
  let best: ParamValue = l.sample(rng), bestScore = -Infinity;
  for (let i = 0; i < o.candidates; i++) {
    const x = i === 0 ? best : l.sample(rng);
    const score = l.logPdf(x) - g.logPdf(x);
    if (score > bestScore) { // the first of equal scores, as numpy's argmax
      best = x;
      bestScore = score;
    }
  }
  return best;
}

function density(
  d: Exclude<Dist, { kind: "fixed" }>,
  obs: ParamValue[],
  o: Required<TpeOptions>,
): Density {
  if (d.kind === "choice") {
    const idx = obs.map((v) => d.options.findIndex((x) => x === v)).filter((i) => i >= 0);
    const p = categorical(d.options.length, idx, o);
    return {
      sample: (rng) => d.options[drawIndex(p, rng)],
      logPdf: (x) => Math.log(p[d.options.findIndex((y) => y === x)] ?? 0),
    };
  }
  if (d.kind === "randint") {
    const n = d.hi - d.lo + 1;
    const idx = obs.map((v) => Number(v) - d.lo).filter((i) =>
      Number.isInteger(i) && i >= 0 && i < n
    );
    const p = categorical(n, idx, o);
    return {
      sample: (rng) => d.lo + drawIndex(p, rng),
      logPdf: (x) => Math.log(p[Number(x) - d.lo] ?? 0),
    };
  }
  const log = d.kind === "loguniform";
  const lo = log ? Math.log(d.lo) : d.lo, hi = log ? Math.log(d.hi) : d.hi;
  const q = d.kind === "quniform" ? d.q : 0;
  const xs = obs.map((v) => (log ? Math.log(Number(v)) : Number(v))).filter(Number.isFinite);
  const mix = adaptiveParzen(xs, o.priorWeight, (lo + hi) / 2, hi - lo, o.forgetting);
  const accept = mix.w.reduce((a, w, i) => a + w * massBetween(lo, hi, mix.mu[i], mix.sigma[i]), 0);
  return {
    sample(rng) {
      let x = NaN;
      for (let tries = 0; tries < 1000; tries++) { // truncation by rejection, as hyperopt's GMM1
        const i = drawIndex(mix.w, rng);
        x = mix.mu[i] + mix.sigma[i] * rng.normal();
        if (x >= lo && x <= hi) break;
      }
      x = Math.min(hi, Math.max(lo, x));
      const v = log ? Math.exp(x) : x;
      return q ? Math.round(v / q) * q : v;
    },
    logPdf(value) {
      const v = Number(value);
      if (q) {
        // The bin of the quantized value, within the bounds.
        const ub = Math.min(hi, v + q / 2), lb = Math.max(lo, v - q / 2);
        const p = mix.w.reduce(
          (a, w, i) => a + w * massBetween(lb, ub, mix.mu[i], mix.sigma[i]),
          0,
        );
        return Math.log(p) - Math.log(accept);
      }
      const x = log ? Math.log(v) : v;
      // log Σ w N(x; μ, σ), computed stably (the Jacobian of the log scale cancels in the ratio).
      const terms = mix.w.map((w, i) => {
        const z = (x - mix.mu[i]) / mix.sigma[i];
        return Math.log(w) - 0.5 * z * z - Math.log(Math.sqrt(2 * Math.PI) * mix.sigma[i]);
      });
      const m = Math.max(...terms);
      return m + Math.log(terms.reduce((a, t) => a + Math.exp(t - m), 0)) - Math.log(accept);
    },
  };
}

/**
 * Normalized pseudo-counts: each observation's forgetting weight plus `priorWeight` per option
 * (hyperopt's `ap_randint_sampler`, which `hp.choice` uses: `counts + prior_weight`).
 */
function categorical(n: number, idx: number[], o: Required<TpeOptions>): number[] {
  const w = forgettingWeights(idx.length, o.forgetting);
  const counts = Array(n).fill(o.priorWeight);
  idx.forEach((i, k) => counts[i] += w[k]);
  const sum = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => c / sum);
}

function drawIndex(p: ArrayLike<number>, rng: Rng): number {
  let u = rng.uniform(), i = 0;
  for (; i < p.length - 1; i++) {
    u -= p[i];
    if (u < 0) break;
  }
  return i;
}

/**
 * hyperopt's `adaptive_parzen_normal`: a mixture with one normal per observation and the prior
 * (at `priorMu`, width `priorSigma`, weight `priorWeight`), each observation's width the larger
 * gap to its sorted neighbours, clipped to [priorSigma / min(100, n + 2), priorSigma].
 */
export function adaptiveParzen(
  xs: number[],
  priorWeight: number,
  priorMu: number,
  priorSigma: number,
  lf = TPE_DEFAULTS.forgetting,
): { w: number[]; mu: number[]; sigma: number[] } {
  const order = xs.map((_, i) => i).sort((i, j) => xs[i] - xs[j]);
  const sorted = order.map((i) => xs[i]);
  let pos = 0; // numpy's searchsorted (left): the prior goes before equal values
  while (pos < sorted.length && sorted[pos] < priorMu) pos++;
  const mu = [...sorted.slice(0, pos), priorMu, ...sorted.slice(pos)];
  let sigma: number[];
  if (xs.length === 0) sigma = [priorSigma];
  else if (xs.length === 1) {
    sigma = pos === 0 ? [priorSigma, priorSigma * 0.5] : [priorSigma * 0.5, priorSigma];
  } else {
    sigma = mu.map((m, i) =>
      i === 0
        ? mu[1] - mu[0]
        : i === mu.length - 1
        ? mu[i] - mu[i - 1]
        : Math.max(m - mu[i - 1], mu[i + 1] - m)
    );
  }
  const fw = forgettingWeights(xs.length, lf);
  const w = [
    ...order.slice(0, pos).map((i) => fw[i]),
    priorWeight,
    ...order.slice(pos).map((i) => fw[i]),
  ];
  const minSigma = priorSigma / Math.min(100, 1 + mu.length);
  sigma = sigma.map((s) => Math.min(priorSigma, Math.max(minSigma, s)));
  sigma[pos] = priorSigma;
  const sum = w.reduce((a, b) => a + b, 0);
  return { w: w.map((x) => x / sum), mu, sigma };
}

/** The mass of N(mu, sigma) between a and b. */
function massBetween(a: number, b: number, mu: number, sigma: number): number {
  return Math.max(1e-300, normalCdf((b - mu) / sigma) - normalCdf((a - mu) / sigma));
}

/** Φ(z), the standard normal's CDF. */
function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}

/** erfc(x) to about 1e-7 relative (Numerical Recipes' `erfcc`, Chebyshev fit). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(
    -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
                  t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
                                  t * (-0.82215223 + t * 0.17087277)))))))),
  );
  return x >= 0 ? r : 2 - r;
}
