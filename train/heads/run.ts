/**
 * One head's run inside a pass ({@linkcode ./pass.ts}): its head, optimizer and schedule, loss
 * window and log, early stopping, its `evalAt` evaluations, the batches it gathers from reads
 * shared with other heads, and at the end its saved head, dev evaluation and `results.json`.
 * The pass feeds it rows; everything a head does with them is here.
 * @module
 */
import { BvHead, type HeadConfig, saveHead } from "../../model/heads.ts";
import { AdamW, GradScaler } from "../../model/optim.ts";
import { add, autocast, scale, sum } from "../../model/ops.ts";
import { writeSafetensors } from "../../model/safetensors.ts";
import { backward, type initGpu, keep, noGrad, scope, Tensor } from "../../model/tensor.ts";
import { exitIfAsked, writeMarker } from "../../data/output/mod.ts";
import { HEAD_MARKER } from "./output.ts";
import { linearSchedule } from "../../data/batches.ts";
import type { Progress } from "../../data/progress.ts";
import type { Task, TaskKind } from "../../tasks/mod.ts";
import type { HEAD_DEFAULTS } from "../defaults.ts";
import type { ResolvedSettings } from "../presets.ts";
import type { Split } from "../plan.ts";
import type { ActivationSource, SourceRows } from "../sources.ts";
import {
  checkDevice,
  EarlyStopping,
  JsonLog,
  type LogEntry,
  LossWindow,
  mainMetric,
  stepsFor,
  Throughput,
} from "../loop.ts";
import { evaluateHead } from "./evaluate.ts";
import type { DevSource } from "./open.ts";
import type { HeadVariant, TrainApOptions, TrainApResult } from "./options.ts";
import type { Precision } from "../precision.ts";

/**
 * The per-layer means of a head's training rows (its first epoch's rows, each once), saved beside
 * its weights as `layer_means` [L, T, F] (or [L, F]) with the row count in the metadata: what
 * `deno task ablate` replaces a layer with (train/heads/ablate.ts).
 */
export const LAYER_MEANS_FILE = "layer_means.safetensors";

/**
 * GPU bytes a head holds for its layer means while it trains: the running sum over its first
 * epoch's rows of its input row, [L, T, F] (or [L, F]) floats; none for a head that keeps no
 * layer means (a layer probe, `HeadPlan.layerMeans` false).
 */
export function layerMeansBytes(
  s: { layers: number; tokens: number; hidden: number; layout: "full" | "cls" },
): number {
  return 4 * s.layers * (s.layout === "full" ? s.tokens : 1) * s.hidden;
}

/** A pass's options with the defaults and the resolved settings filled in. */
export type PassOptions = typeof HEAD_DEFAULTS & TrainApOptions;

/** What the head runs of one pass share. */
export interface PassContext {
  gpu: Awaited<ReturnType<typeof initGpu>>;
  task: Task;
  kind: TaskKind;
  train: ActivationSource;
  devs: DevSource[];
  o: PassOptions;
  /** Rows per forward: the planner's micro-batch, set once the pass has planned its heads. */
  micro: number;
  /** The pass's progress bar (the first head's losses are shown on it). */
  bar?: Progress;
  /** The step being run and the steps proven clean, for the message of a failure. */
  marks: { at: number; clean: number; total: number };
  /** `--precision` resolved (train/precision.ts): f16-mixed autocasts and scales the loss. */
  precision: Precision;
}

/** One head of a pass as planned: its settings, its rows and steps. */
export interface HeadPlan {
  v: Required<Pick<TrainApOptions, "lr" | "l2" | "seed" | "outDir">> & HeadVariant;
  config: HeadConfig;
  /** What its results depend on: compared with an earlier run in the same directory. */
  settings: Record<string, unknown>;
  /** The pass's data seed: its subset and data order (its own `seed` initialises it). */
  dataSeed: number;
  /** Its training rows (its fraction's subset), steps per epoch and steps to train. */
  rows: Int32Array;
  perEpoch: number;
  total: number;
  /**
   * Whether it sums its first epoch's rows and saves `layer_means.safetensors` (what `ablate`
   * replaces a layer with) [true]. Layer probes do not: each sees one layer, and `ablate` takes
   * AP/LP/AvgP heads on every layer.
   */
  layerMeans?: boolean;
}

/** A batch being gathered from reads that also feed other heads (`filled` rows of `len`). */
interface QueuedBatch {
  len: number;
  filled: number;
  /** The hidden states of each micro-batch, copied on the GPU. */
  parts: Tensor[];
  labels: Float64Array;
  idx: Float64Array;
}

/** An `evalAt` evaluation awaiting the pass's `onEval`. */
export interface PendingEval {
  index: number;
  step: number;
  epoch: number;
  metrics: Record<string, number>;
}

/**
 * `evalAt` epochs as a head's steps (to their entry of `evalAt`; the first of entries on the
 * same step), before its last step.
 */
function evalStepsOf(
  evalAt: number[] | undefined,
  perEpoch: number,
  total: number,
): Map<number, number> {
  const steps = new Map<number, number>();
  (evalAt ?? []).forEach((e, index) => {
    const s = stepsFor(e, perEpoch);
    if (s < total && !steps.has(s)) steps.set(s, index);
  });
  return steps;
}

/** One head trained in a pass. */
export class HeadRun {
  readonly plan: HeadPlan;
  head: BvHead;
  readonly opt: AdamW;
  /** The loss scaler, under f16-mixed. */
  readonly scaler: GradScaler | null;
  readonly window: LossWindow;
  readonly log: JsonLog;
  readonly history: LogEntry[] = [];
  /** With patience and a dev source: the per-epoch counter, and the best epoch's weights. */
  readonly early: EarlyStopping | null;
  best: Map<string, { shape: number[]; data: Float32Array }> | null = null;
  /** Steps trained (fewer than `total` when it stopped early or was halted). */
  steps = 0;
  /** Its examples per second, between log entries. */
  readonly speed = new Throughput();
  /** The learning rate of its last step. */
  lr = 0;
  /** The loss of the batch being accumulated (its micro-batches' weighted sum). */
  loss: Tensor | null = null;
  /** The last dev evaluation's loss (with `earlyStop` "loss"). */
  devLoss?: number;
  queue: QueuedBatch[] = [];
  /** Its `evalAt` steps (to the entry of `evalAt`). */
  readonly evalAt: Map<number, number>;
  pending?: PendingEval;
  /** The step at which `onEval` stopped it. */
  halted?: number;
  readonly #ctx: PassContext;
  readonly #first: boolean;
  /** The sum over the rows of its first epoch of its input, per layer (for the layer means). */
  #meanSum: Tensor | null = null;
  #meanRows = 0;

  private constructor(plan: HeadPlan, ctx: PassContext, first: boolean) {
    const o = ctx.o;
    this.plan = plan;
    this.#ctx = ctx;
    this.#first = first;
    this.head = BvHead.create(plan.config, plan.v.seed);
    this.scaler = ctx.precision === "f16-mixed" ? new GradScaler() : null;
    this.opt = new AdamW(this.head.paramGroups(plan.v.l2, o.decayBiases), {
      lr: plan.v.lr,
      maxGradNorm: o.maxGradNorm,
      eps: o.adamEps,
      biasCorrection: o.biasCorrection,
      scaler: this.scaler ?? undefined,
    });
    this.window = new LossWindow(Math.max(1, o.logEvery));
    this.log = new JsonLog(plan.v.log ?? `${plan.v.outDir}/train_log.jsonl`, { truncate: true });
    this.early = o.patience > 0 && ctx.devs.length
      ? o.earlyStop === "loss"
        ? new EarlyStopping("dev_loss", o.patience, true)
        : new EarlyStopping(ctx.task.primaryMetric, o.patience)
      : null;
    this.evalAt = evalStepsOf(o.evalAt, plan.perEpoch, plan.total);
  }

  /** Starts a head's run: its head initialised, its directory made and its log truncated. */
  static async create(plan: HeadPlan, ctx: PassContext, first: boolean): Promise<HeadRun> {
    await Deno.mkdir(plan.v.outDir, { recursive: true });
    return new HeadRun(plan, ctx, first);
  }

  get outDir(): string {
    return this.plan.v.outDir;
  }

  /** Still training: not stopped early, not halted by `onEval`. */
  get training(): boolean {
    return !this.early?.stop && !this.halted;
  }

  /** Rows in its batch `step` (0-based): a batch, or the rest of its epoch. */
  batchLen(step: number): number {
    const { batchSize } = this.#ctx.o;
    return Math.min(batchSize, this.plan.rows.length - (step % this.plan.perEpoch) * batchSize);
  }

  /** Reads its loss window back into its log (and the bar, for the first head). */
  async flush(): Promise<void> {
    const { task, train, gpu, bar } = this.#ctx;
    const timing = this.speed.entry();
    const loss = await this.window.mean({
      total: this.plan.total,
      perEpoch: this.plan.perEpoch,
      what: `training ${task.name} on ${train.name}`,
      hint: () => `lower --lr (${this.plan.v.lr}) or check the activations for NaN/∞`,
    });
    if (Number.isNaN(loss)) return;
    const entry: LogEntry = {
      step: this.steps,
      epoch: this.steps / this.plan.perEpoch,
      loss,
      lr: this.lr,
      ...timing,
      gpuBytes: gpu.heldBytes,
    };
    this.history.push(entry);
    await this.log.write(entry);
    if (this.#first) bar?.tick(0, { loss: entry.loss, lr: this.lr });
  }

  /**
   * Its forward and backward on one micro-batch of its batch (`len` rows), the loss weighted by
   * its share of the rows and summed into the batch's.
   */
  accumulate(x: Tensor, labels: ArrayLike<number>, idx: ArrayLike<number>, len: number): void {
    const { kind, train } = this.#ctx;
    const step = this.steps;
    const where = (i: number) => `${train.name} (step ${step + 1}): row with idx ${idx[i]}`;
    // Its first epoch sees each of its rows once: their sum gives the layer means.
    if (this.plan.layerMeans !== false && step < this.plan.perEpoch) {
      const s = noGrad(() => sum(x, 0));
      const prev = this.#meanSum;
      this.#meanSum = keep(prev ? noGrad(() => add(prev, s)) : s);
      this.#meanRows += x.shape[0];
      prev?.dispose();
    }
    const run = () => kind.loss(this.head.forward(x), labels, where);
    const lp = this.scaler ? autocast(run) : run();
    const weight = x.shape[0] / len;
    const weighted = weight === 1 ? lp : scale(lp, weight);
    if (this.scaler) {
      const seed = this.scaler.seed(weighted.shape);
      backward(weighted, seed);
      seed.dispose();
    } else backward(weighted);
    const prev = this.loss;
    this.loss = keep(prev ? noGrad(() => add(prev, weighted)) : weighted);
    prev?.dispose();
  }

  /**
   * The first dev split now: its loss window flushed first, the metrics logged. Shared by the
   * `evalAt` evaluations and early stopping.
   */
  async evaluateNow(): Promise<Record<string, number>> {
    const { task, devs, o, micro, marks } = this.#ctx;
    await this.flush();
    marks.clean = this.steps;
    const ev = await evaluateHead(this.head, devs[0].source, task, {
      batchSize: Math.min(o.evalBatchSize, micro),
      rows: devs[0].rows,
      metrics: o.metrics,
      silent: true,
    });
    // The dev loss, for `--early-stop loss` (the kind's training loss on the saved logits).
    const tokens = ev.shape.length === 3 ? ev.shape[1] : 1;
    this.devLoss = o.earlyStop === "loss"
      ? this.#ctx.kind.meanLoss(ev.logits, ev.golds, ev.idx.length, tokens)
      : undefined;
    await this.log.write({
      step: this.steps,
      epoch: this.steps / this.plan.perEpoch,
      dev: ev.metrics,
      ...(this.devLoss !== undefined ? { devLoss: this.devLoss } : {}),
    });
    return ev.metrics;
  }

  /** The optimizer step of its batch, its log, `evalAt` and early stopping at its epoch ends. */
  async finishStep(len: number): Promise<void> {
    const { task, o, marks } = this.#ctx;
    const { perEpoch, total } = this.plan;
    marks.at = this.steps;
    marks.total = total;
    this.lr = this.plan.v.lr * linearSchedule(this.steps, total, o.warmupProportion);
    this.opt.step(this.lr);
    this.window.push(this.steps, this.loss!);
    this.loss = null;
    this.steps++;
    this.speed.add(len);
    await checkDevice();
    if (this.window.full) {
      await this.flush();
      marks.clean = this.steps;
    }
    // `evalAt`: the first dev split, for `onEval` once every head has had this read.
    const evalIndex = this.evalAt.get(this.steps);
    if (evalIndex !== undefined) {
      const metrics = await this.evaluateNow();
      this.pending = { index: evalIndex, step: this.steps, epoch: this.steps / perEpoch, metrics };
    }
    // Early stopping: the first dev split after every epoch (and at the end) while the head
    // trains; a run of one epoch or less has a single evaluation, the final one.
    const epochEnd = this.steps % perEpoch === 0 || this.steps === total;
    if (!epochEnd || total <= perEpoch || !this.early || this.early.stop) return;
    const label = String(Math.round(this.steps / perEpoch * 1e6) / 1e6);
    const metrics = await this.evaluateNow();
    const m = o.earlyStop === "loss"
      ? { key: "dev_loss", value: this.devLoss! }
      : mainMetric(metrics, task.primaryMetric);
    this.early.state.metric = m.key;
    if (this.early.add(label, m.value)) this.best = await this.head.toHost();
    if (this.early.stop && !o.silent) {
      const s = this.early.state;
      console.error(
        `${this.outDir}: stopped early after epoch ${label}: ${s.patience} epoch(s) without ` +
          `improving ${s.metric}; keeping epoch ${s.best!.at} (${s.metric} ${s.best!.value})`,
      );
    }
  }

  /** Copies row `local` of a read (on the GPU) into the batch it is gathering. */
  gather(data: SourceRows, local: number, rowShape: number[], rowBytes: number): void {
    const { gpu, micro, train } = this.#ctx;
    const labelWidth = train.labelWidth;
    let b = this.queue.at(-1);
    if (!b || b.filled === b.len) {
      const len = this.batchLen(this.steps + this.queue.length);
      b = {
        len,
        filled: 0,
        parts: [],
        labels: new Float64Array(len * labelWidth),
        idx: new Float64Array(len),
      };
      this.queue.push(b);
    }
    const q = Math.floor(b.filled / micro), off = b.filled % micro;
    if (!b.parts[q]) {
      b.parts[q] = keep(
        Tensor.empty([Math.min(micro, b.len - q * micro), ...rowShape], "f32", "x"),
      );
    }
    gpu.copy(data.x.buffer, local * rowBytes, b.parts[q].buffer, off * rowBytes, rowBytes);
    for (let k = 0; k < labelWidth; k++) {
      b.labels[b.filled * labelWidth + k] = data.labels[local * labelWidth + k];
    }
    b.idx[b.filled] = data.idx[local];
    b.filled++;
  }

  /**
   * Trains the batches it has gathered whole, in the same micro-batches as alone; a head that
   * stops drops the rows it gathered.
   */
  async trainQueued(): Promise<void> {
    const { micro, train } = this.#ctx;
    const labelWidth = train.labelWidth;
    while (this.queue.length && this.queue[0].filled === this.queue[0].len && this.training) {
      const b = this.queue.shift()!;
      try {
        b.parts.forEach((x, q) =>
          scope(() =>
            this.accumulate(
              x,
              b.labels.subarray(q * micro * labelWidth, (q * micro + x.shape[0]) * labelWidth),
              b.idx.subarray(q * micro, q * micro + x.shape[0]),
              b.len,
            )
          )
        );
      } finally {
        for (const x of b.parts) x.dispose();
      }
      await this.finishStep(b.len);
    }
    if (!this.training) this.dropQueue(); // stopped: the rows it gathered go unused
  }

  /** Frees the batches it was gathering. */
  dropQueue(): void {
    for (const b of this.queue) for (const x of b.parts) x.dispose();
    this.queue = [];
  }

  /** After the pass: every step trained (or stopped), the last losses logged. */
  async endPass(): Promise<void> {
    if (this.queue.length || (this.steps !== this.plan.total && this.training)) {
      throw new Error(`${this.outDir}: trained ${this.steps} of ${this.plan.total} steps (a bug)`);
    }
    await this.flush();
  }

  /**
   * Its result: the best epoch's weights restored (early stopping), the head saved, every dev
   * split evaluated and saved, and `results.json` written last (atomically): a head directory
   * with results.json is complete.
   */
  async finish(t0: number, split: Split, resolved: ResolvedSettings): Promise<TrainApResult> {
    const { task, train, devs, o, micro } = this.#ctx;
    const v = this.plan.v;
    this.window.dispose();
    this.opt.dispose();
    this.scaler?.dispose();
    // Early stopping keeps the best epoch's weights (as the seed keeps its best snapshot).
    const early = this.early?.state;
    if (this.best && early?.best && early.best.at !== early.evaluations.at(-1)?.at) {
      const config = this.head.config;
      this.head.dispose();
      this.head = BvHead.fromHost(config, this.best);
    }
    this.best = null;
    const headPath = `${v.outDir}/head.safetensors`;
    await saveHead(headPath, this.head, {
      task: task.name,
      train: train.name,
      seed: String(v.seed),
    });
    exitIfAsked("head", "weights");
    if (this.#meanSum) {
      const means = await this.#meanSum.readF32();
      for (let i = 0; i < means.length; i++) means[i] /= this.#meanRows;
      await writeSafetensors(
        `${v.outDir}/${LAYER_MEANS_FILE}`,
        new Map([["layer_means", { shape: [...this.#meanSum.shape], data: means }]]),
        { rows: String(this.#meanRows), train: train.name },
      );
      this.#meanSum.dispose();
      this.#meanSum = null;
    }
    const result: TrainApResult = {
      head: this.head,
      params: this.head.numParams,
      paramReport: o.bertParams ? this.head.report(o.bertParams) : undefined,
      history: this.history,
      steps: this.steps,
      examples: this.speed.entry().examples,
      trainRows: this.plan.rows,
      headPath,
      split,
      wallSeconds: 0,
      settings: { ...resolved.values, lr: v.lr, l2: v.l2, seed: v.seed },
      earlyStop: early,
    };
    for (const d of devs) {
      const ev = await evaluateHead(this.head, d.source, task, {
        batchSize: Math.min(o.evalBatchSize, micro),
        outDir: v.outDir,
        prefix: d.prefix,
        rows: d.rows,
        metrics: o.metrics,
        silent: o.silent,
      });
      (result.devBySplit ??= []).push({
        split: d.split,
        metrics: ev.metrics,
        logitsPath: ev.logitsPath,
        predictionsPath: ev.predictionsPath,
        naProbsPath: ev.naProbsPath,
      });
    }
    result.devMetrics = result.devBySplit?.[0].metrics;
    result.devLogitsPath = result.devBySplit?.[0].logitsPath;
    result.wallSeconds = (performance.now() - t0) / 1000;
    exitIfAsked("head", "logits");
    await writeMarker(v.outDir, {
      task: task.name,
      head: this.head.config,
      params: result.params,
      paramReport: result.paramReport,
      settings: this.plan.settings,
      // The seeds that train it again alone: --seed (initialisation), --data-seed (data order).
      seed: v.seed,
      dataSeed: this.plan.dataSeed,
      sources: { train: train.name, dev: devs[0]?.source.name, stream: o.stream },
      microBatch: micro,
      trainRows: this.plan.rows.length,
      steps: this.steps,
      examples: result.examples,
      finalLoss: this.history.at(-1)?.loss,
      devMetrics: result.devMetrics,
      ...(devs.length > 1
        ? { devSplits: Object.fromEntries(result.devBySplit!.map((d) => [d.split, d.metrics])) }
        : {}),
      ...(early ? { earlyStop: early } : {}),
      wallSeconds: result.wallSeconds,
    }, HEAD_MARKER);
    return result;
  }

  /** Frees everything of a run that failed (the caller never sees its head). */
  dispose(): void {
    this.window.dispose();
    this.opt.dispose();
    this.scaler?.dispose();
    this.head.dispose();
    this.loss?.dispose();
    this.#meanSum?.dispose();
    this.dropQueue();
  }
}
