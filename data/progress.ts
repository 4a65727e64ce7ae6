/**
 * A terminal progress bar for long jobs: count, rate, ETA and free-form fields (loss, ...).
 *
 * Draws in place on a TTY (carriage return); on a pipe or in CI it prints a plain line at most
 * every `logEverySeconds` so logs stay readable.
 * @module
 */

/** Options for {@linkcode Progress}. */
export interface ProgressOptions {
  /** Label printed before the bar. */
  label: string;
  /** Total units of work (examples, batches, bytes). */
  total: number;
  /** Unit name shown in the rate, e.g. "ex" or "B". */
  unit?: string;
  /** Seconds between lines when not on a TTY. Default 10. */
  logEverySeconds?: number;
  /** Stream to draw on. Default stderr. */
  stream?: { writeSync(p: Uint8Array): number; isTerminal(): boolean };
  /** Draw nothing at all (tests). */
  silent?: boolean;
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/**
 * A progress bar with rate and ETA.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const bar = new Progress({ label: "capture", total: 3, silent: true });
 * for (let i = 0; i < 3; i++) bar.tick(1, { loss: 0.5 });
 * bar.done();
 * ```
 */
export class Progress {
  #opts: Required<Omit<ProgressOptions, "stream">> & {
    stream: NonNullable<ProgressOptions["stream"]>;
  };
  #done = 0;
  #start = performance.now();
  #lastDraw = 0;
  #fields: Record<string, string | number> = {};
  #enc = new TextEncoder();

  /** Starts the clock; `start` may be non-zero when a job resumes. */
  constructor(opts: ProgressOptions, start = 0) {
    this.#opts = {
      unit: "it",
      logEverySeconds: 10,
      silent: false,
      stream: Deno.stderr,
      ...opts,
    };
    this.#done = start;
    this.#startCount = start;
  }
  #startCount: number;

  /** Units done so far. */
  get count(): number {
    return this.#done;
  }

  /** Adds `n` units and updates the shown fields. */
  tick(n = 1, fields?: Record<string, string | number>): void {
    this.#done += n;
    if (fields) Object.assign(this.#fields, fields);
    this.#draw(false);
  }

  /** Draws the final line. */
  done(): void {
    this.#draw(true);
  }

  #draw(final: boolean): void {
    const o = this.#opts;
    if (o.silent) return;
    const now = performance.now();
    const tty = o.stream.isTerminal();
    const minGap = tty ? 100 : o.logEverySeconds * 1000;
    if (!final && now - this.#lastDraw < minGap) return;
    this.#lastDraw = now;
    const elapsed = (now - this.#start) / 1000;
    const rate = (this.#done - this.#startCount) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (o.total - this.#done) / rate : NaN;
    const frac = o.total > 0 ? Math.min(1, this.#done / o.total) : 1;
    const width = 24;
    const fill = Math.round(frac * width);
    const bar = "█".repeat(fill) + "░".repeat(width - fill);
    const extra = Object.entries(this.#fields)
      .map(([k, v]) => `${k}=${typeof v === "number" ? v.toPrecision(4) : v}`)
      .join(" ");
    const line = `${o.label} ${bar} ${this.#done}/${o.total} ${(frac * 100).toFixed(1)}% ` +
      `${rate.toFixed(rate < 10 ? 2 : 0)} ${o.unit}/s ` +
      `${final ? "took " + formatDuration(elapsed) : "ETA " + formatDuration(eta)} ${extra}`;
    o.stream.writeSync(
      this.#enc.encode(tty ? `\r\x1b[2K${line}${final ? "\n" : ""}` : `${line}\n`),
    );
  }
}
