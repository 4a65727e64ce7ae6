/**
 * Early stopping of poor trials in a search: successive halving across evaluation points (the
 * asynchronous form of Li et al.'s ASHA, as Optuna's `SuccessiveHalvingPruner` runs it).
 *
 * A trial's budget is `--epochs` E; it is evaluated on dev at R rungs, E/η^(R−1), ..., E/η, E
 * ({@linkcode rungEpochs}; η = `--eta`, default 3, R = `--rungs`, default 3: at E/9, E/3 and E).
 * At every rung but the last, its score joins the scores every trial of the study (all
 * workers) reached at that rung, and it goes on only if it is among the best
 * max(1, ⌊n/η⌋) of those n scores ({@linkcode promotes}); otherwise it stops there, "pruned",
 * with that rung's score. Ties favour the trial; a NaN score stops it. Trials evaluated together
 * (a pass of several heads) all join the rung before any is judged. So with η = 3 about a third
 * of the trials reach each next rung, and the first trials, with nothing to compare against,
 * all go on.
 *
 * Checked by train/search/study_test.ts on trials whose scores are known (which trial stops at which
 * rung).
 * @module
 */

/**
 * The rungs' epochs: E/η^(R−1), ..., E/η, E (the last is the full budget), the others to 4
 * significant digits (they name checkpoints: `checkpoint-0.1111`).
 */
export function rungEpochs(epochs: number, eta: number, rungs: number): number[] {
  if (!(epochs > 0)) throw new RangeError(`epochs must be > 0, got ${epochs}`);
  if (!(eta > 1)) throw new RangeError(`eta must be > 1, got ${eta}`);
  if (!Number.isInteger(rungs) || rungs < 1) {
    throw new RangeError(`rungs must be an integer ≥ 1, got ${rungs}`);
  }
  return Array.from(
    { length: rungs },
    (_, k) => k === rungs - 1 ? epochs : Number((epochs / eta ** (rungs - 1 - k)).toPrecision(4)),
  );
}

/**
 * Whether a trial scoring `score` (higher is better) at a rung goes on, given the `others`'
 * scores there: it must be among the best max(1, ⌊n/η⌋) of all n (itself included); ties count
 * for it, NaN never goes on.
 */
export function promotes(score: number, others: number[], eta: number): boolean {
  if (Number.isNaN(score)) return false;
  const n = others.length + 1;
  const keep = Math.max(1, Math.floor(n / eta));
  const better = others.filter((s) => s > score).length;
  return better < keep;
}

/**
 * The rungs of one study: every trial's score at each rung (the latest, when a trial was run
 * again) and the decisions taken, so a trial run again after an interruption keeps the decision
 * it was given.
 */
export class SuccessiveHalving {
  readonly eta: number;
  #scores = new Map<number, Map<string, number>>();
  #decisions = new Map<string, boolean>();

  /** Halving by `eta` (> 1) at each rung. */
  constructor(eta: number) {
    if (!(eta > 1)) throw new RangeError(`eta must be > 1, got ${eta}`);
    this.eta = eta;
  }

  /** Records `trial`'s score at `rung` (replacing an earlier one of the same trial). */
  record(trial: string, rung: number, score: number): void {
    if (!this.#scores.has(rung)) this.#scores.set(rung, new Map());
    this.#scores.get(rung)!.set(trial, score);
  }

  /** Records a decision already taken (read back from a study log). */
  setDecision(trial: string, rung: number, goOn: boolean): void {
    this.#decisions.set(`${rung}\u0000${trial}`, goOn);
  }

  /**
   * Whether `trial` (whose score at `rung` was recorded) goes on: the decision already taken,
   * else {@linkcode promotes} against every other trial's score there (then remembered).
   */
  decide(trial: string, rung: number): boolean {
    const key = `${rung}\u0000${trial}`;
    const known = this.#decisions.get(key);
    if (known !== undefined) return known;
    const at = this.#scores.get(rung);
    const score = at?.get(trial);
    if (at === undefined || score === undefined) {
      throw new Error(`trial ${trial} has no score at rung ${rung}`);
    }
    const others = [...at].filter(([t]) => t !== trial).map(([, s]) => s);
    const goOn = promotes(score, others, this.eta);
    this.#decisions.set(key, goOn);
    return goOn;
  }

  /** Forgets `trial`'s scores and decisions (a failed trial, or one run again from its start). */
  forget(trial: string): void {
    for (const at of this.#scores.values()) at.delete(trial);
    for (const key of [...this.#decisions.keys()]) {
      if (key.endsWith(`\u0000${trial}`)) this.#decisions.delete(key);
    }
  }

  /** The scores recorded at `rung`, by trial. */
  scores(rung: number): Map<string, number> {
    return new Map(this.#scores.get(rung) ?? []);
  }
}
