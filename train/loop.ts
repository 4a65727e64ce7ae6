/**
 * What the training loops share (fine-tuning BERT, training BERTVision heads), so they agree:
 *
 * - {@linkcode batchesPerEpoch} and {@linkcode stepsFor}: fractional epochs become
 *   ceil(epochs × batches per epoch) optimizer steps, as Hugging Face's Trainer counts
 *   `max_steps`; checkpoint steps at fractional epochs ({@linkcode checkpointSteps}) likewise.
 * - {@linkcode LossWindow}: each step's loss stays on the GPU (a 4-byte copy into a window
 *   buffer); every `logEvery` steps the window is read back at once, its mean logged, and a NaN
 *   or ∞ names the exact step where it first appeared.
 * - {@linkcode JsonLog}: one JSON object per line ({@linkcode LogEntry}), appended.
 * - {@linkcode stageError}: a WebGPU error (out of memory, validation) becomes one message naming
 *   the stage, the batch and the fixes; the run stops there, checkpoints already written intact.
 * - {@linkcode EarlyStopping}: the seed's `--patience` counter over dev evaluations.
 *
 * Checked by train/loop_test.ts, and through the loops by train/finetune_test.ts and
 * train/heads/heads_test.ts.
 * @module
 */
import { gpu, keep, Tensor } from "../model/tensor.ts";
import { describeDeviceError, DeviceError } from "../kernels/device.ts";

/** Batches in one epoch of `n` rows (the last may be smaller). */
export function batchesPerEpoch(n: number, batchSize: number): number {
  return Math.ceil(n / batchSize);
}

/** Optimizer steps for `epochs` (fractional allowed) of `perEpoch` batches: ceil, at least 1. */
export function stepsFor(epochs: number, perEpoch: number): number {
  // Rounded to 1e-9 first so 0.3 × 10 (= 3.0000000000000004) is 3 steps, not 4.
  return Math.max(1, Math.ceil(Math.round(epochs * perEpoch * 1e9) / 1e9));
}

/** The step (1-based, after which to save) of each checkpoint epoch, labelled as given. */
export function checkpointSteps(
  epochs: number[],
  perEpoch: number,
): { label: string; step: number }[] {
  return epochs.map((e) => ({ label: String(e), step: stepsFor(e, perEpoch) }));
}

/** One line of a training log. */
export interface LogEntry {
  /** Optimizer steps done. */
  step: number;
  /** Epochs done (fractional). */
  epoch: number;
  /** Training examples seen (by this process, from its first step). */
  examples: number;
  /** Mean loss over the steps since the previous entry. */
  loss: number;
  /** Learning rate of the last step. */
  lr: number;
  /** Training throughput since the previous entry. */
  examplesPerSecond: number;
  /** Seconds since the start of this process's training. */
  elapsed: number;
  /** GPU bytes held (live + pooled) when the entry was written. */
  gpuBytes?: number;
}

/** Where a diverged loss is reported: the run's total steps and what to try. */
export interface DivergenceContext {
  /** Steps of the whole run. */
  total: number;
  /** Batches per epoch (to say which epoch). */
  perEpoch: number;
  /** What was being trained, e.g. "fine-tuning sst2" (starts the message). */
  what: string;
  /** Appended: the last good checkpoint, the learning rate to lower, ... */
  hint: () => string;
}

/**
 * A loss that became NaN or ∞ ({@linkcode LossWindow.mean}): training diverged. A search
 * (train/search/study.ts) records such a trial as failed and goes on.
 */
export class DivergenceError extends Error {}

/**
 * The losses of the last few steps, kept on the GPU until read: {@linkcode push} records a copy
 * of a step's scalar loss into the window buffer and frees the loss; {@linkcode read} reads the
 * whole window back at once (the only readback while training).
 */
export class LossWindow {
  readonly size: number;
  #buf: Tensor | null = null;
  #steps: number[] = [];

  /** A window of up to `size` steps. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(`loss window must hold at least one step, got ${size}`);
    }
    this.size = size;
  }

  /** Steps waiting to be read. */
  get length(): number {
    return this.#steps.length;
  }

  /** Whether the window is full (time to read it). */
  get full(): boolean {
    return this.#steps.length >= this.size;
  }

  /** Records step `step`'s (0-based) scalar loss and disposes `loss`. */
  push(step: number, loss: Tensor): void {
    if (this.full) throw new Error(`loss window: full (${this.size} steps); read it first`);
    this.#buf ??= keep(Tensor.empty([this.size], "f32", "loss window"));
    gpu().copy(loss.buffer, 0, this.#buf.buffer, this.#steps.length * 4, 4);
    loss.dispose();
    this.#steps.push(step);
  }

  /** Reads the pending losses back, in step order, and empties the window. */
  async read(): Promise<{ step: number; loss: number }[]> {
    if (!this.#steps.length) return [];
    const steps = this.#steps;
    this.#steps = [];
    const values = new Float32Array(await gpu().read(this.#buf!.buffer, steps.length * 4));
    return steps.map((step, i) => ({ step, loss: values[i] }));
  }

  /**
   * Reads the window and returns its mean loss (NaN when empty); a NaN or ∞ loss throws,
   * naming its step: "<what>: loss is NaN at step 37 of 64 (epoch 0.58); <hint>".
   */
  async mean(ctx: DivergenceContext): Promise<number> {
    const got = await this.read();
    let sum = 0;
    for (const { step, loss } of got) {
      if (!Number.isFinite(loss)) {
        throw new DivergenceError(
          `${ctx.what}: loss is ${loss} at step ${step + 1} of ${ctx.total} (epoch ` +
            `${((step + 1) / ctx.perEpoch).toFixed(2)}); ${ctx.hint()}`,
        );
      }
      sum += loss;
    }
    return got.length ? sum / got.length : NaN;
  }

  /** Frees the window buffer (pending losses are dropped). */
  dispose(): void {
    this.#buf?.dispose();
    this.#buf = null;
    this.#steps = [];
  }
}

/** A JSON-lines file, appended one object per line. */
export class JsonLog {
  readonly path: string;
  #enc = new TextEncoder();

  /** Opens `path` for appending; `truncate` empties it first (a run that starts over). */
  constructor(path: string, opts: { truncate?: boolean } = {}) {
    this.path = path;
    if (opts.truncate) Deno.writeTextFileSync(path, "");
  }

  /** Appends one line. */
  async write(entry: unknown): Promise<void> {
    await Deno.writeFile(this.path, this.#enc.encode(JSON.stringify(entry) + "\n"), {
      append: true,
    });
  }
}

/** Measures examples per second between log entries. */
export class Throughput {
  #t0 = performance.now();
  #last = this.#t0;
  #examples = 0;
  #examplesAtLast = 0;

  /** Counts `n` more examples. */
  add(n: number): void {
    this.#examples += n;
  }

  /** A log entry's timing fields, and resets the interval. */
  entry(): { examples: number; examplesPerSecond: number; elapsed: number } {
    const now = performance.now();
    const since = this.#examplesAtLast;
    this.#examplesAtLast = this.#examples;
    const rate = (this.#examples - since) / Math.max(1e-9, (now - this.#last) / 1000);
    this.#last = now;
    return { examples: this.#examples, examplesPerSecond: rate, elapsed: (now - this.#t0) / 1000 };
  }
}

/**
 * The error to throw for `e` caught in a stage: a {@linkcode DeviceError} becomes one message
 * naming the stage, the batch and the fixes (kernels/device.ts `describeDeviceError`); anything
 * else passes through.
 */
export function stageError(
  e: unknown,
  where: { stage: string; batch: number | string; batchSize?: number },
): unknown {
  return e instanceof DeviceError ? new Error(describeDeviceError(e, where), { cause: e }) : e;
}

/**
 * Lets the device's settled error scopes report (a microtask, no GPU wait) and throws an error
 * they reported: called after every step. WebGPU reports errors asynchronously, so one may
 * surface a few steps after the work that caused it; a readback (which waits for the device)
 * proves every step before it clean. {@linkcode stepsSince} names the span.
 */
export async function checkDevice(): Promise<void> {
  await null;
  gpu().check();
}

/**
 * "step 7 of 40", or "steps 5–7 of 40" when the device was last proven clean (a readback)
 * after step 4: the steps a device error may have come from.
 */
export function stepsSince(clean: number, at: number, total: number): string {
  return clean + 1 >= at + 1
    ? `step ${at + 1} of ${total}`
    : `steps ${clean + 1}–${at + 1} of ${total}`;
}

/**
 * Starts a stage's memory budget: idle pooled buffers left by earlier stages are freed, and the
 * pool may keep at most the stage's planned transient bytes (`peakBytes - fixedBytes`: a step's
 * activations, reused every step) idle, so GPU bytes held stay under live + that: at most about
 * twice the planned peak whatever batch shapes come and go (kernels/device.ts pool cap).
 */
export function enterStage(peakBytes: number, fixedBytes = 0): void {
  const g = gpu();
  g.trimPool();
  g.setPoolCap(Math.max(16 * 2 ** 20, peakBytes - fixedBytes));
}

/** The kill hook, from the output protocol (data/output/kill.ts), for existing callers. */
export { exitIfAsked } from "../data/output/kill.ts";

/** A value of the task's main dev metric: `primary` when the metrics have it, else the first. */
export function mainMetric(
  metrics: Record<string, number>,
  primary: string,
): { key: string; value: number } {
  const key = primary in metrics ? primary : Object.keys(metrics)[0];
  return { key, value: metrics[key] };
}

/** Early stopping's record: every evaluation, the best, and where training stopped. */
export interface EarlyStopState {
  /** The dev metric compared (higher is better), or "dev_loss" (lower is better). */
  metric: string;
  /** Set when lower is better (the dev loss). */
  lowerIsBetter?: true;
  /** Evaluations without improvement that stop training. */
  patience: number;
  /** Each evaluation: where (a checkpoint's or an epoch's label) and the metric's value. */
  evaluations: { at: string; value: number }[];
  /** The best evaluation so far (the first of equal ones). */
  best?: { at: string; value: number };
  /** Evaluations since the best. */
  sinceBest: number;
  /** Set once training stopped: the evaluation that used up the patience. */
  stoppedAt?: string;
}

/**
 * The seed's early stopping (`--patience N`, its trainers' `unimproved_iters`): after each dev
 * evaluation, an improvement on the best resets the count; otherwise the count grows, and when
 * it reaches N training stops. The first evaluation is always an improvement, so a metric that
 * cannot improve stops training after N + 1 evaluations. What is compared is the run's
 * `earlyStop`: the task's main dev metric (higher is better; the seed's published-era trainers
 * compare dev F1, `common/trainers/bert_class_trainer.py`@0c7e25c, `H5_sst_trainer.py`: micro-F1,
 * STS-B Spearman) or the dev loss (lower is better; the seed's `ap_cola` in `H5_sst_trainer.py`).
 * NaN never improves on a number.
 * Checked by train/presets_test.ts, and in the loops by train/finetune_test.ts and
 * train/heads/heads_test.ts.
 */
export class EarlyStopping {
  readonly state: EarlyStopState;

  /** Counts evaluations of `metric` (`lowerIsBetter`: a loss); `patience` 0 never stops. */
  constructor(metric: string, patience: number, lowerIsBetter = false) {
    if (!Number.isInteger(patience) || patience < 0) {
      throw new RangeError(`patience must be an integer ≥ 0, got ${patience}`);
    }
    this.state = {
      metric,
      ...(lowerIsBetter ? { lowerIsBetter: true as const } : {}),
      patience,
      evaluations: [],
      sinceBest: 0,
    };
  }

  /** Records an evaluation; returns whether it is a new best. */
  add(at: string, value: number): boolean {
    const s = this.state;
    s.evaluations.push({ at, value });
    const better = s.best === undefined ||
      (Number.isNaN(s.best.value)
        ? !Number.isNaN(value)
        : s.lowerIsBetter
        ? value < s.best.value
        : value > s.best.value);
    if (better) {
      s.best = { at, value };
      s.sinceBest = 0;
    } else {
      s.sinceBest++;
      if (s.patience > 0 && s.sinceBest >= s.patience && s.stoppedAt === undefined) {
        s.stoppedAt = at;
      }
    }
    return better;
  }

  /** Whether training should stop now. */
  get stop(): boolean {
    return this.state.stoppedAt !== undefined;
  }
}
