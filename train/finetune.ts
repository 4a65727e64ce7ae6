/**
 * Fine-tuning BERT for a task through the WGSL autograd: the head the task's kind asks for
 * (model/bert_head.ts), AdamW with weight decay off for biases and LayerNorm, linear warmup then
 * decay, dropout 0.1, global-norm clipping at 1.0, fractional epochs, checkpoints at fractions in
 * the Hugging Face layout with the optimizer state beside them, resume from the last one, dev
 * evaluation on every dev split asked for (by default all of the task's: MNLI's matched and
 * mismatched) and saved dev logits.
 *
 * Settings not given come from `FINETUNE_DEFAULTS`, or with `preset` from the seed's command for
 * the task (train/presets.ts); the schedule is Hugging Face's `get_linear_schedule_with_warmup`
 * as the seed ran it (data/batches.ts `linearSchedule`). With `patience`, training stops once
 * that many checkpoint evaluations in a row did not improve the main dev metric (recorded in
 * `trainer_state.json`, recounted on a rerun).
 *
 * A training step is one scope: forward, backward and the optimizer update are recorded into the
 * pending command encoder; losses stay on the GPU and are read back every `logEvery` steps and at
 * checkpoints (train/loop.ts).
 * @module
 */
import type { BertConfig } from "../model/config.ts";
import { BertModel } from "../model/bert.ts";
import { BertHead } from "../model/bert_head.ts";
import { loadBertCheckpoint, readBertConfig, weightsHashOf } from "../model/checkpoint.ts";
import { AdamW, GradScaler } from "../model/optim.ts";
import { add, autocast, scale } from "../model/ops.ts";
import { backward, gpu, initGpu, keep, noGrad, scope, type Tensor } from "../model/tensor.ts";
import { batchRows, linearSchedule } from "../data/batches.ts";
import { decodeNpy, encodeNpy } from "../data/npy.ts";
import { Progress } from "../data/progress.ts";
import { regularFileExists } from "../data/files.ts";
import {
  kindOf,
  pickDevSplits,
  resolveTask,
  type Scored,
  type Task,
  type TaskKind,
  type TaskRows,
} from "../tasks/mod.ts";
import { isSplitFile, pickBatch, rangeBatch, rowNotes, RowsCache, type SplitRows } from "./rows.ts";
import { squadPlanLines, squadRowsFor } from "./squad_settings.ts";
import { FINETUNE_DEFAULTS } from "./defaults.ts";
import {
  describeSettings,
  presetFor,
  type ResolvedSettings,
  resolveSettings,
  seedSeqLength,
} from "./presets.ts";
import {
  bertParamBytes,
  bertPeakBytes,
  bertRowPeakBytes,
  bertRowTensors,
  bertTrainMemory,
  bertWeightTensors,
  checkWeights,
  formatPlan,
  limitsOf,
  type Split,
  splitBatch,
  type StagePlan,
} from "./plan.ts";
import { timeBertMicroBatch } from "./warmup.ts";
import type { CheckpointDev, FineTuneOptions, FineTuneResult } from "./finetune_options.ts";

export type { CheckpointDev, FineTuneOptions, FineTuneResult } from "./finetune_options.ts";
import { writeLogitRows } from "../data/logit_rows.ts";
import {
  PRECISION_DEFAULTS,
  type PrecisionChoice,
  precisionFix,
  resumePrecision,
} from "./precision.ts";
import {
  batchesPerEpoch,
  checkDevice,
  checkpointSteps,
  EarlyStopping,
  enterStage,
  exitIfAsked,
  JsonLog,
  type LogEntry,
  LossWindow,
  mainMetric,
  stageError,
  stepsFor,
  stepsSince,
  Throughput,
} from "./loop.ts";
import {
  acquireLock,
  finishOverwrite,
  readMarker,
  readOverwrite,
  removeMarker,
  settingsDiff,
  settingsMismatch,
  startOverwrite,
  writeFileAtomic,
  writeJsonAtomic,
  writeMarker,
} from "../data/output/mod.ts";
import {
  type CheckpointMarker,
  type DevFingerprint,
  loadOptimizer,
  readJson,
  removeRun,
  runSettings,
  saveCheckpoint,
  type TrainerState,
} from "./finetune_checkpoint.ts";

/** a + b of two scalar losses, without the tape; both are disposed. */
function sumLosses(a: Tensor, b: Tensor): Tensor {
  const s = keep(noGrad(() => add(a, b)));
  a.dispose();
  b.dispose();
  return s;
}

/**
 * The forward and backward of one training step over the rows `which` of `rows`, as
 * micro-batches of at most `micro` rows: each micro-batch's loss is weighted by its share of the
 * rows and back-propagated, so the parameters' gradients add up to the whole batch's (dropout
 * masks too: each row draws its place in the batch). Returns the step's loss (a kept scalar
 * tensor); the caller takes the optimizer step. With `scaler` (f16-mixed) the forward runs under
 * autocast and backward starts from the loss scale, so the gradients carry it (the optimizer
 * given the same scaler unscales them); the returned loss is unscaled.
 */
export function fineTuneStep(
  bert: BertModel,
  head: BertHead,
  kind: TaskKind,
  rows: TaskRows,
  which: Int32Array,
  micro: number,
  o: { step: number; dropout: number; seed: number; scaler?: GradScaler | null },
): Tensor {
  let loss: Tensor | null = null;
  for (let r0 = 0; r0 < which.length; r0 += micro) {
    const part = which.subarray(r0, r0 + micro);
    const { batch, labels } = pickBatch(rows, part);
    const file = (rows as Partial<SplitRows>).dataFile;
    const where = (i: number) => `${file ? `${file}: ` : ""}example ${rows.idx[part[i]]}`;
    const weight = part.length / which.length;
    const l = scope(() => {
      const drop = { rate: o.dropout, seed: o.seed, step: o.step, rowOffset: r0 };
      const run = () => {
        const out = bert.forward(batch, { ...drop, dropout: o.dropout, hidden: "last" });
        return kind.loss(head.forward(out, drop), labels, where);
      };
      const lp = o.scaler ? autocast(run) : run();
      const weighted = weight === 1 ? lp : scale(lp, weight);
      if (o.scaler) {
        const seed = o.scaler.seed(weighted.shape);
        backward(weighted, seed);
        seed.dispose();
      } else backward(weighted);
      return keep(weighted);
    });
    loss = loss ? sumLosses(loss, l) : l;
  }
  return loss!;
}

/** The BERT head a task's kind asks for. */
export function bertHeadFor(
  kind: TaskKind,
  hidden: number,
  seed: number,
  saved?: Parameters<typeof BertHead.create>[3],
): BertHead {
  return BertHead.create(
    {
      readout: kind.readout,
      outputs: kind.outputs,
      names: kind.bertHeadNames,
      what: `task ${kind.task.name}`,
    },
    hidden,
    seed,
    saved,
  );
}

/** Dev predictions of a model: logits in the saved layout, metrics, answers for SQuAD. */
export interface DevResult extends Scored {
  /** Row-major, in the kind's saved layout ([n, C], SQuAD [n, T, 2]). */
  logits: Float32Array;
  shape: number[];
}

/**
 * Runs BERT + head over every row (no dropout, no tape) in batches and scores them with the
 * task's metrics. Logits are read back per batch (a metric needs them).
 */
export async function evaluateBert(
  bert: BertModel,
  head: BertHead,
  kind: TaskKind,
  rows: SplitRows,
  batchSize = 32,
  onBatch?: (done: number) => void,
): Promise<DevResult> {
  const shape = kind.logitsShape(rows.n, rows.seq);
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  const logits = new Float32Array(rows.n * width);
  for (let s = 0; s < rows.n; s += batchSize) {
    const count = Math.min(batchSize, rows.n - s);
    const out = await noGrad(() =>
      scope(async () => await head.forward(bert.forward(rangeBatch(rows, s, count))).readF32())
    ).catch((e) => {
      throw stageError(e, {
        stage: `evaluate ${kind.task.name} ${rows.split}`,
        batch: `rows ${s}–${s + count - 1}`,
        batchSize,
      });
    });
    logits.set(kind.toSaved(out, count, rows.seq), s * width);
    onBatch?.(s + count);
  }
  return { ...kind.score(logits, rows), logits, shape };
}

type Resolved = Required<
  Omit<
    FineTuneOptions,
    | "devSplits"
    | "docStride"
    | "squad"
    | "preset"
    | "silent"
    | "stopAfterSteps"
    | "noEval"
    | "task"
    | "maxBindingMiB"
    | "breakLock"
    | "overwrite"
  >
>;

/** A dev split evaluated at each checkpoint: its rows and the prefix of its files. */
interface DevSet {
  split: string;
  /** `dev` when it is the only one, else the split's name (`dev_matched_logits.npy`). */
  prefix: string;
  rows: SplitRows;
}

/** Everything a fine-tuning run needs before it starts: options, data rows, model and plan. */
interface Prepared {
  task: Task;
  kind: TaskKind;
  o: Resolved & FineTuneOptions;
  /** The effective training settings and where each came from (given, preset, default). */
  trainSettings: ResolvedSettings;
  settings: ReturnType<typeof runSettings>;
  state: TrainerState | null;
  /** With `overwrite`: how the run found in `outDir` differs (it is replaced). */
  replaced: string[] | null;
  statePath: string;
  train: SplitRows;
  /** The first dev split's rows (null without evaluation). */
  devRows: SplitRows | null;
  /** Every dev split evaluated at each checkpoint. */
  devSets: DevSet[];
  config: BertConfig;
  /** The training and evaluation splits into micro-batches. */
  trainSplit: Split;
  evalSplit: Split;
  plan: StagePlan[];
  /** The run's precision and why. */
  precision: PrecisionChoice;
}

async function prepare(opts: FineTuneOptions): Promise<Prepared> {
  const gpu = await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  // Tokens per row: given, else with `preset` the seed's BERT length, else the kind's default.
  const seedSeq = opts.preset ? seedSeqLength(task.name, "bert") : undefined;
  const seqFrom = opts.maxSeqLength !== undefined
    ? opts.maxSeqLengthFrom ?? "--max-seq-length"
    : seedSeq
    ? `preset: ${seedSeq.from}`
    : "default";
  // With `preset`, the seed's data where it differs from the task's default (MRPC: msr_train).
  const seedData = opts.preset ? presetFor(task.name) : undefined;
  const o = {
    ...FINETUNE_DEFAULTS,
    maxSeqLength: seedSeq?.value ?? kind.defaultMaxSeqLength,
    limit: -1,
    devLimit: -1,
    devSplit: task.devSplits[0],
    trainSplit: seedData?.trainSplit?.value ?? "train",
    ...given, // options passed as undefined keep their defaults
  } as Resolved & FineTuneOptions;
  // The training settings: resolved by the command (`settings`), or here: given, else the task's
  // seed preset (`preset`), else the defaults.
  const trainSettings = opts.settings ?? resolveSettings(
    task.name,
    "bert",
    opts,
    !!opts.preset,
    FINETUNE_DEFAULTS,
  );
  Object.assign(o, trainSettings.values);
  o.saveAt = [...(opts.saveAt ?? [o.epochs])].sort((a, b) => a - b);
  for (const e of o.saveAt) {
    if (!(e > 0 && e <= o.epochs + 1e-9)) {
      throw new RangeError(`--save-at ${e} must be within (0, --epochs ${o.epochs}]`);
    }
  }
  const statePath = `${o.outDir}/trainer_state.json`;
  let state: Prepared["state"] = null;
  let replaced: string[] | null = null;
  try {
    regularFileExists(statePath); // a FIFO there would block the read
    state = JSON.parse(await Deno.readTextFile(statePath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`${statePath}: unreadable (${e})`);
  }

  const cache = opts.rows ?? new RowsCache();
  const rowsOf = (split: string, limit: number, training: boolean) =>
    cache.load(task, o.modelDir, {
      split,
      dataDir: isSplitFile(split) ? undefined : o.dataDir,
      dataFile: isSplitFile(split) ? split : undefined,
      maxSeqLength: o.maxSeqLength,
      limit: limit >= 0 ? limit : undefined,
      numWorkers: opts.numWorkers,
      training,
      docStride: opts.docStride,
      ...squadRowsFor(task, opts.squad, !!opts.preset),
    });
  const train = await rowsOf(o.trainSplit, o.limit, true);
  const devNames = opts.noEval ? [] : pickDevSplits(task, {
    only: opts.devSplit,
    asked: opts.devSplits,
    seed: seedData?.devSplits?.value,
  });
  const devSets: DevSet[] = [];
  for (const split of devNames) {
    const prefix = devNames.length > 1 ? split : "dev";
    devSets.push({ split, prefix, rows: await rowsOf(split, o.devLimit, false) });
  }
  const devRows = devSets[0]?.rows ?? null;
  const weights = await weightsHashOf(o.modelDir);
  // An overwrite a kill interrupted is continued (data/output/overwrite.ts): while it was still
  // removing the old run, what is left of that run is no state to resume from.
  const pending = await readOverwrite(o.outDir);
  if (pending?.phase === "removing") {
    replaced = [`continues the interrupted overwrite (${pending.command})`];
    state = null;
  }
  // Given (or the caller's choice), else the run found here's own (float32 for one saved before
  // `--precision` existed), so a rerun without the flag resumes it as made; else the preset
  // (also for a run being replaced: --overwrite, or an interrupted overwrite continued).
  const foundSettings: unknown = state?.settings;
  const precision = typeof opts.precision === "object" ? opts.precision : resumePrecision(
    gpu,
    opts.precision,
    !opts.overwrite && !pending && typeof foundSettings === "object" && foundSettings !== null &&
      !Array.isArray(foundSettings)
      ? {
        what: `the fine-tuning run in ${o.outDir}`,
        settings: foundSettings as Record<string, unknown>,
      }
      : null,
  );
  const settings = runSettings(task, o, weights, train, precision.precision);
  const diff = state
    ? settingsDiff(state.settings ?? {}, settings, undefined, PRECISION_DEFAULTS)
    : [];
  if (diff.length) {
    if (!opts.overwrite && !pending) {
      throw settingsMismatch(
        `${o.outDir} (a fine-tuning run, ${statePath})`,
        diff,
        precisionFix(diff, "use another --out, or --overwrite to replace that run"),
      );
    }
    replaced = diff;
    state = null; // the run is removed once the lock is held (fineTuneLocked)
  }

  const config = await readBertConfig(state ? state.checkpoint : o.modelDir);
  const limits = limitsOf(gpu, opts.maxBindingMiB);
  const stage = `fine-tune ${task.name}`;
  checkWeights(stage, bertWeightTensors(config), limits);
  const rowTensors = bertRowTensors(config, o.maxSeqLength);
  // Weights, gradients and AdamW's two moments: four copies of the parameters.
  const fixed = 4 * bertParamBytes(config);
  const mixed = precision.precision === "f16-mixed";
  const trainMemory = bertTrainMemory(config, o.maxSeqLength, { mixed, dropout: o.dropout > 0 });
  const trainSplit = splitBatch(stage, o.batchSize, rowTensors, limits, trainMemory);
  const evalSplit = splitBatch(`evaluate ${task.name}`, o.batchSize * 2, rowTensors, limits, {
    fixed,
    perRow: bertRowPeakBytes(config, o.maxSeqLength, false),
  });
  const steps = stepsFor(o.epochs, batchesPerEpoch(train.n, o.batchSize));
  const plan: StagePlan[] = [{
    stage,
    rows: train.n,
    examples: train.nExamples,
    split: trainSplit,
    peakBytes: trainMemory.fixed + trainMemory.perRow * trainSplit.micro,
    notes: [
      `${steps} steps, checkpoints at epochs ${o.saveAt.join(", ")} in ${o.outDir}`,
      `precision ${precision.precision} (${precision.why})` +
      (precision.precision === "f16-mixed"
        ? ": matmul operands in f16 with float32 accumulation and loss scaling; the backward " +
          "keeps f16 copies of the matmul operands and GELU's input (peak counts them); " +
          "LayerNorm, softmax, weights and AdamW state stay float32"
        : ""),
      ...describeSettings(trainSettings),
      ...squadPlanLines(task, opts.squad, !!opts.preset),
      `tokens ${o.maxSeqLength} (${seqFrom})`,
      ...(seedData?.trainSplit && opts.trainSplit === undefined
        ? [`train ${o.trainSplit} (preset: ${seedData.trainSplit.from})`]
        : []),
      ...(seedData?.devSplits && opts.devSplit === undefined && opts.devSplits === undefined
        ? [`dev ${devNames.join(",")} (preset: ${seedData.devSplits.from})`]
        : []),
      ...rowNotes(train),
      ...(replaced ? [`replaces the run there (--overwrite): ${replaced.join("; ")}`] : []),
    ],
  }];
  for (const { rows } of devSets) {
    plan.push({
      stage: `evaluate ${task.name} ${rows.split} (at each checkpoint)`,
      rows: rows.n,
      examples: rows.nExamples,
      split: evalSplit,
      peakBytes: bertPeakBytes(config, o.maxSeqLength, evalSplit.micro, fixed, false),
    });
  }
  return {
    task,
    kind,
    o,
    trainSettings,
    settings,
    state,
    replaced,
    statePath,
    train,
    devRows,
    devSets,
    config,
    trainSplit,
    evalSplit,
    plan,
    precision,
  };
}

/**
 * The plan of a fine-tuning run (`--dry-run`): rows, micro-batches, peak GPU bytes, and with
 * `time` seconds estimated from one measured training micro-batch. Writes nothing.
 */
export async function planFineTune(
  opts: FineTuneOptions,
  time = true,
): Promise<StagePlan[]> {
  const p = await prepare(opts);
  if (time) {
    const ck = await loadBertCheckpoint(p.state ? p.state.checkpoint : p.o.modelDir);
    const step = await timeBertMicroBatch(
      ck.config,
      ck.weights,
      p.trainSplit.micro,
      p.o.maxSeqLength,
      true,
    );
    const steps = stepsFor(p.o.epochs, batchesPerEpoch(p.train.n, p.o.batchSize));
    p.plan[0].seconds = step * p.trainSplit.parts * steps;
    if (p.devSets.length) {
      const fwd = await timeBertMicroBatch(
        ck.config,
        ck.weights,
        p.evalSplit.micro,
        p.o.maxSeqLength,
        false,
      );
      p.devSets.forEach((d, i) => {
        p.plan[1 + i].seconds = fwd * Math.ceil(d.rows.n / p.evalSplit.micro) * p.o.saveAt.length;
      });
    }
  }
  return p.plan;
}

/**
 * Fine-tunes BERT on a task. Rerun with the same options after an interruption, it resumes from
 * the last checkpoint (weights and optimizer state) and ends with the same weights as an
 * uninterrupted run; with other options it refuses to touch the output directory. A batch too
 * large for the device runs as micro-batches with accumulated gradients (train/plan.ts).
 */
export async function fineTune(opts: FineTuneOptions): Promise<FineTuneResult> {
  const t0 = performance.now();
  // One writer per output directory, taken before anything in it is read or written.
  const lock = acquireLock(opts.outDir, "dir", { breakLock: opts.breakLock });
  if (lock.tookOver && !opts.silent) console.error(lock.tookOver);
  try {
    return await fineTuneLocked(opts, t0);
  } finally {
    lock.release();
  }
}

async function fineTuneLocked(opts: FineTuneOptions, t0: number): Promise<FineTuneResult> {
  const p = await prepare(opts);
  const { task, kind, o, settings, state, statePath, train, devRows, devSets } = p;
  if (!opts.silent) console.error(formatPlan(p.plan));
  // The old run is marked invalid before anything of it goes; the mark goes when this one ends.
  if (p.replaced) {
    await startOverwrite(o.outDir, "fine-tune --overwrite", () => removeRun(o.outDir));
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  enterStage(Math.max(...p.plan.map((s) => s.peakBytes)), 4 * bertParamBytes(p.config));

  const start = await loadBertCheckpoint(state ? state.checkpoint : o.modelDir);
  const bert = BertModel.fromHost(start.config, start.weights, true);
  const head = bertHeadFor(kind, start.config.hiddenSize, o.seed, start.extra);
  const params = [...bert.parameters(), ...head.parameters()];
  // By name, as the seed's `no_decay = ['bias', 'LayerNorm.bias', 'LayerNorm.weight']`.
  const noDecay = (t: Tensor) =>
    !o.decayBiases && (t.name.endsWith(".bias") || t.name.includes("LayerNorm"));
  const scaler = p.precision.precision === "f16-mixed" ? new GradScaler() : null;
  const opt = new AdamW([
    { params: params.filter((p) => !noDecay(p)), weightDecay: o.l2 },
    { params: params.filter(noDecay), weightDecay: 0 },
  ], {
    lr: o.lr,
    maxGradNorm: o.maxGradNorm,
    eps: o.adamEps,
    biasCorrection: o.biasCorrection,
    scaler: scaler ?? undefined,
  });
  if (state) await loadOptimizer(opt, `${state.checkpoint}/optimizer.safetensors`, state.step);

  const perEpoch = batchesPerEpoch(train.n, o.batchSize);
  const total = stepsFor(o.epochs, perEpoch);
  const saveSteps = checkpointSteps(o.saveAt, perEpoch);
  const result: FineTuneResult = {
    steps: total,
    checkpoints: {},
    dev: {},
    devBySplit: {},
    losses: [],
    wallSeconds: 0,
    bertParams: bert.numParams,
    resumed: !!state,
    stepsRun: 0,
    split: p.trainSplit,
    settings: p.trainSettings.values,
  };
  const prints = devSets.map(({ rows }): DevFingerprint => ({
    file: rows.dataFile,
    rows: rows.n,
    hash: rows.hash,
  }));
  const devPrint = prints.length === 0 ? null : prints.length === 1 ? prints[0] : prints;
  /** Dev evaluation of a saved checkpoint on each dev split, then its completion marker, last. */
  const finishCheckpoint = async (
    dir: string,
    at: { step: number; label: string },
    model: BertModel,
    modelHead: BertHead,
  ) => {
    const done: CheckpointDev[] = [];
    for (const d of devSets) {
      const dev = await evaluateBert(model, modelHead, kind, d.rows, p.evalSplit.micro);
      const logits = `${dir}/${d.prefix}_logits.npy`;
      await writeFileAtomic(logits, encodeNpy(dev.logits, dev.shape));
      // Which rows these are (data/logit_rows.ts): what `ensemble` checks the runs agree on.
      await writeLogitRows(logits, {
        dataFile: d.rows.dataFile,
        inputsHash: d.rows.hash,
        source: `BERT's own rows of ${d.rows.dataFile}`,
        idx: d.rows.idx,
        ids: d.rows.inputIds,
        tokens: d.rows.seq,
      });
      exitIfAsked("logits", at.label);
      await writeJsonAtomic(`${dir}/${d.prefix}_metrics.json`, dev.metrics);
      if (dev.answers) await writeJsonAtomic(`${dir}/${d.prefix}_predictions.json`, dev.answers);
      exitIfAsked("metrics", at.label);
      done.push({ split: d.split, metrics: dev.metrics, logits });
    }
    if (done.length) {
      result.dev[at.label] = done[0].metrics;
      result.devBySplit[at.label] = done;
      await log.write({
        step: at.step,
        dev: done[0].metrics,
        ...(done.length > 1
          ? { devSplits: Object.fromEntries(done.map((d) => [d.split, d.metrics])) }
          : {}),
      });
    }
    const marker: CheckpointMarker = { step: at.step, label: at.label, dev: devPrint };
    await writeMarker(dir, marker);
    exitIfAsked("marker", at.label);
  };
  const log = new JsonLog(`${o.outDir}/train_log.jsonl`);
  // Checkpoints saved before a restart: reported, and any without its completion marker (killed
  // during its evaluation) or evaluated on other dev rows is evaluated now.
  for (const s of saveSteps) {
    if (!state || s.step > state.step) continue;
    const dir = `${o.outDir}/checkpoint-${s.label}`;
    result.checkpoints[s.label] = dir;
    const marker = await readMarker<CheckpointMarker>(dir);
    const sameDev = !devRows || !settingsDiff({ dev: marker?.dev }, { dev: devPrint }).length;
    if (marker && sameDev) {
      const done: CheckpointDev[] = [];
      for (const d of devSets) {
        const metrics = await readJson(`${dir}/${d.prefix}_metrics.json`);
        done.push({ split: d.split, metrics, logits: `${dir}/${d.prefix}_logits.npy` });
      }
      if (done.length) {
        result.dev[s.label] = done[0].metrics;
        result.devBySplit[s.label] = done;
      }
      continue; // complete (with no evaluation asked for, whatever dev results it has stay)
    }
    if (!opts.silent) {
      console.error(
        `checkpoint-${s.label}: ` + (marker ? "evaluating on the new dev rows" : "finishing"),
      );
    }
    if (s.label === state.label) {
      await finishCheckpoint(dir, s, bert, head);
    } else {
      const ck = await loadBertCheckpoint(dir);
      const b = BertModel.fromHost(ck.config, ck.weights, false);
      const h = bertHeadFor(kind, ck.config.hiddenSize, o.seed, ck.extra);
      try {
        await finishCheckpoint(dir, s, b, h);
      } finally {
        b.dispose();
        h.dispose();
      }
    }
  }
  // Early stopping counts the checkpoints' dev results in order; those saved before a restart
  // count first, so a stop survives it (and a rerun with more patience goes on from there).
  const early = devRows && o.patience > 0
    ? o.earlyStop === "loss"
      ? new EarlyStopping("dev_loss", o.patience, true)
      : new EarlyStopping(task.primaryMetric, o.patience)
    : null;
  const track = async (label: string) => {
    const metrics = result.dev[label];
    if (!early || !metrics) return;
    if (o.earlyStop === "loss") {
      // The first dev split's loss, from the checkpoint's saved logits.
      const path = result.devBySplit[label][0].logits;
      const logits = decodeNpy(await Deno.readFile(path), path).data as Float32Array;
      early.add(label, kind.meanLoss(logits, devRows!.labels, devRows!.n, devRows!.seq));
      return;
    }
    const m = mainMetric(metrics, task.primaryMetric);
    early.state.metric = m.key;
    early.add(label, m.value);
  };
  for (const s of saveSteps) if (state && s.step <= state.step) await track(s.label);
  const stoppedBefore = early?.stop ?? false;
  const bar = new Progress({
    label: `fine-tune ${task.name}`,
    total,
    unit: "step",
    silent: opts.silent,
  }, state?.step ?? 0);
  const window = new LossWindow(Math.max(1, o.logEvery));
  const speed = new Throughput();
  let lastGood = state?.checkpoint ?? "(none yet)";
  let lr = 0;
  const divergence = {
    total,
    perEpoch,
    what: `fine-tuning ${task.name}`,
    hint: () =>
      `last good checkpoint: ${lastGood}. Try a lower --lr (now ${o.lr.toExponential(3)}).`,
  };
  const flush = async (done: number) => {
    const loss = await window.mean(divergence);
    if (Number.isNaN(loss)) return;
    const entry: LogEntry = {
      step: done,
      epoch: done / perEpoch,
      loss,
      lr,
      ...speed.entry(),
      gpuBytes: gpu().heldBytes,
    };
    result.losses.push({ step: done, loss });
    await log.write(entry);
    bar.tick(0, { loss, "ex/s": entry.examplesPerSecond });
  };
  let stepsHere = 0;
  let at = state?.step ?? 0; // the step being run, for errors
  let clean = at; // steps proven free of device errors (by a readback)
  try {
    for (let step = stoppedBefore ? total : state?.step ?? 0; step < total; step++) {
      at = step;
      const which = batchRows(train.n, o.batchSize, o.seed, step);
      lr = o.lr * linearSchedule(step, total, o.warmupProportion);
      const loss = fineTuneStep(bert, head, kind, train, which, p.trainSplit.micro, {
        step,
        dropout: o.dropout,
        seed: o.seed,
        scaler,
      });
      opt.step(lr); // under f16-mixed, skipped on the GPU on an overflow (lr still advances)
      window.push(step, loss);
      await checkDevice();
      speed.add(which.length);
      bar.tick(1);
      const save = saveSteps.find((s) => s.step === step + 1);
      if (window.full || save || step === total - 1) {
        await flush(step + 1);
        clean = step + 1;
      }
      if (save) {
        // Weights and optimizer state, then the state that resumes from them, then the dev
        // results and the completion marker: a kill between any two resumes to the same files.
        const dir = `${o.outDir}/checkpoint-${save.label}`;
        await removeMarker(dir); // a checkpoint rewritten after a restart is incomplete until done
        await saveCheckpoint(dir, start.config, bert, head, kind, opt, o.modelDir);
        exitIfAsked("saved", save.label);
        lastGood = dir;
        const st: TrainerState = { settings, step: step + 1, checkpoint: dir, label: save.label };
        await writeJsonAtomic(statePath, st);
        exitIfAsked("state", save.label);
        result.checkpoints[save.label] = dir;
        await finishCheckpoint(dir, save, bert, head);
        await track(save.label);
        if (early) await writeJsonAtomic(statePath, { ...st, earlyStop: early.state });
      }
      stepsHere++;
      result.stepsRun = stepsHere;
      if (early?.stop) break; // out of patience (the seed's early stop)
      if (
        opts.stopAfterSteps !== undefined && stepsHere >= opts.stopAfterSteps && step + 1 < total
      ) {
        result.stopped = true;
        break;
      }
    }
    bar.done();
  } catch (e) {
    throw stageError(e, {
      stage: `fine-tune ${task.name}`,
      batch: stepsSince(clean, at, total),
      batchSize: o.batchSize,
    });
  } finally {
    window.dispose();
    opt.dispose();
    scaler?.dispose();
    bert.dispose();
    head.dispose();
  }
  const stop = early?.state;
  if (stop) {
    result.earlyStop = stop;
    if (stop.stoppedAt !== undefined && !opts.silent) {
      console.error(
        `stopped early after checkpoint-${stop.stoppedAt}: ${stop.patience} evaluation(s) ` +
          `without improving ${stop.metric}; the best is checkpoint-${stop.best!.at} ` +
          `(${stop.metric} ${stop.best!.value})`,
      );
    }
  }
  await gpu().sync();
  if (!result.stopped) await finishOverwrite(o.outDir);
  result.wallSeconds = (performance.now() - t0) / 1000;
  return result;
}
