/**
 * Fine-tuning BERT for a task through the WGSL autograd: the head the task's kind asks for
 * (model/bert_head.ts), AdamW with weight decay off for biases and LayerNorm, linear warmup then
 * decay, dropout 0.1, global-norm clipping at 1.0, fractional epochs, checkpoints at fractions in
 * the Hugging Face layout with the optimizer state beside them, resume from the last one, dev
 * evaluation and saved dev logits.
 *
 * A training step is one scope: forward, backward and the optimizer update are recorded into the
 * pending command encoder; losses stay on the GPU and are read back every `logEvery` steps and at
 * checkpoints (train/loop.ts).
 * @module
 */
import type { BertConfig } from "../model/config.ts";
import { BertModel } from "../model/bert.ts";
import { BertHead } from "../model/bert_head.ts";
import { loadBertCheckpoint, saveBertCheckpoint } from "../model/checkpoint.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import { AdamW } from "../model/optim.ts";
import { backward, gpu, initGpu, keep, noGrad, scope, type Tensor } from "../model/tensor.ts";
import { batchRows, linearSchedule } from "../data/batches.ts";
import { encodeNpy } from "../data/npy.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { Progress } from "../data/progress.ts";
import { kindOf, resolveTask, type Scored, type Task, type TaskKind } from "../tasks/mod.ts";
import { isSplitFile, loadRows, pickBatch, rangeBatch, type SplitRows } from "./rows.ts";
import { FINETUNE_DEFAULTS } from "./defaults.ts";
import {
  batchesPerEpoch,
  checkpointSteps,
  JsonLog,
  type LogEntry,
  LossWindow,
  stepsFor,
  Throughput,
  writeJsonAtomic,
} from "./loop.ts";

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
    );
    logits.set(kind.toSaved(out, count, rows.seq), s * width);
    onBatch?.(s + count);
  }
  return { ...kind.score(logits, rows), logits, shape };
}

/** Options of {@linkcode fineTune}; defaults in train/defaults.ts `FINETUNE_DEFAULTS`. */
export interface FineTuneOptions {
  /** Local Hugging Face model directory (config.json, model.safetensors, vocab). */
  modelDir: string;
  /** A task name, or a task module of the caller's. */
  task: string | Task;
  /** GLUE/SQuAD distribution root (SST-2/train.tsv, squad/...). */
  dataDir: string;
  /** Where checkpoints, logs and dev logits go. */
  outDir: string;
  batchSize?: number;
  /** Fractional epochs allowed (0.3 = three tenths of one). */
  epochs?: number;
  lr?: number;
  /** AdamW weight decay (not on biases and LayerNorm). */
  l2?: number;
  warmupProportion?: number;
  seed?: number;
  /** Default: the task's head kind's (128 for GLUE, 384 for SQuAD). */
  maxSeqLength?: number;
  /** Checkpoints at these epochs (default: at the end). */
  saveAt?: number[];
  dropout?: number;
  maxGradNorm?: number;
  /** Train on the first N training examples. */
  limit?: number;
  /** Evaluate on the first N dev examples. */
  devLimit?: number;
  /** Dev split (default the task's first), or a file path. */
  devSplit?: string;
  /** Training split (default "train"), or a file path. */
  trainSplit?: string;
  /** Skip dev evaluation at checkpoints. */
  noEval?: boolean;
  /** Read the losses back every N steps (progress, log, NaN check). */
  logEvery?: number;
  silent?: boolean;
  /** Parallel tokenization workers (the seed's `--num-workers`); 0 or 1 = this thread. */
  numWorkers?: number;
  /** Stop (as if killed) after this many steps in this process: tests of resume. */
  stopAfterSteps?: number;
}

/** What {@linkcode fineTune} returns. */
export interface FineTuneResult {
  steps: number;
  /** Checkpoint directories by epoch label, e.g. {"0.3": ".../checkpoint-0.3"}. */
  checkpoints: Record<string, string>;
  /** Dev metrics per checkpoint label. */
  dev: Record<string, Record<string, number>>;
  /** Mean loss of each logged window, at its last step. */
  losses: { step: number; loss: number }[];
  wallSeconds: number;
  bertParams: number;
  /** Whether this call resumed from a checkpoint. */
  resumed: boolean;
  /** Steps this call ran (0 when a finished run was found). */
  stepsRun: number;
  /** Set when stopAfterSteps cut the run short. */
  stopped?: boolean;
}

type Resolved = Required<Omit<FineTuneOptions, "silent" | "stopAfterSteps" | "noEval" | "task">>;

/** The settings a resumed run must share with the run it continues. */
function runSettings(task: Task, o: Resolved) {
  return {
    modelDir: o.modelDir,
    task: task.name,
    batchSize: o.batchSize,
    epochs: o.epochs,
    lr: o.lr,
    l2: o.l2,
    warmupProportion: o.warmupProportion,
    seed: o.seed,
    maxSeqLength: o.maxSeqLength,
    dropout: o.dropout,
    maxGradNorm: o.maxGradNorm,
    limit: o.limit,
    saveAt: o.saveAt,
    trainSplit: o.trainSplit,
  };
}

/**
 * Fine-tunes BERT on a task. Rerun with the same options after an interruption, it resumes from
 * the last checkpoint (weights and optimizer state) and ends with the same weights as an
 * uninterrupted run; with other options it refuses to touch the output directory.
 */
export async function fineTune(opts: FineTuneOptions): Promise<FineTuneResult> {
  const t0 = performance.now();
  await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o = {
    ...FINETUNE_DEFAULTS,
    maxSeqLength: kind.defaultMaxSeqLength,
    limit: -1,
    devLimit: -1,
    devSplit: task.devSplits[0],
    trainSplit: "train",
    ...given, // options passed as undefined keep their defaults
  } as Resolved & FineTuneOptions;
  o.saveAt = [...(opts.saveAt ?? [o.epochs])].sort((a, b) => a - b);
  const settings = runSettings(task, o);
  for (const e of o.saveAt) {
    if (!(e > 0 && e <= o.epochs + 1e-9)) {
      throw new RangeError(`--save-at ${e} must be within (0, --epochs ${o.epochs}]`);
    }
  }
  await Deno.mkdir(o.outDir, { recursive: true });
  const statePath = `${o.outDir}/trainer_state.json`;
  let state: { settings: unknown; step: number; checkpoint: string; label: string } | null = null;
  try {
    state = JSON.parse(await Deno.readTextFile(statePath));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw new Error(`${statePath}: unreadable (${e})`);
  }
  if (state && JSON.stringify(state.settings) !== JSON.stringify(settings)) {
    throw new Error(
      `${o.outDir} holds a run with other settings (${statePath}); use another --out or delete it.\n` +
        `  there: ${JSON.stringify(state.settings)}\n  now:   ${JSON.stringify(settings)}`,
    );
  }

  const tok = await loadTokenizer(o.modelDir);
  const workers = { modelDir: o.modelDir, count: opts.numWorkers ?? 0 };
  const rowsOf = (split: string, limit: number) =>
    loadRows(task, {
      split,
      dataDir: isSplitFile(split) ? undefined : o.dataDir,
      dataFile: isSplitFile(split) ? split : undefined,
      tokenizer: tok,
      maxSeqLength: o.maxSeqLength,
      limit: limit >= 0 ? limit : undefined,
      workers,
    });
  const train = await rowsOf(o.trainSplit, o.limit);
  const devRows = opts.noEval ? null : await rowsOf(o.devSplit, o.devLimit);

  const start = await loadBertCheckpoint(state ? state.checkpoint : o.modelDir);
  const bert = BertModel.fromHost(start.config, start.weights, true);
  const head = bertHeadFor(kind, start.config.hiddenSize, o.seed, start.extra);
  const params = [...bert.parameters(), ...head.parameters()];
  const noDecay = (t: Tensor) => t.name.endsWith(".bias") || t.name.includes("LayerNorm");
  const opt = new AdamW([
    { params: params.filter((p) => !noDecay(p)), weightDecay: o.l2 },
    { params: params.filter(noDecay), weightDecay: 0 },
  ], { lr: o.lr, maxGradNorm: o.maxGradNorm, eps: 1e-8 });
  if (state) await loadOptimizer(opt, `${state.checkpoint}/optimizer.safetensors`, state.step);

  const perEpoch = batchesPerEpoch(train.n, o.batchSize);
  const total = stepsFor(o.epochs, perEpoch);
  const saveSteps = checkpointSteps(o.saveAt, perEpoch);
  const result: FineTuneResult = {
    steps: total,
    checkpoints: {},
    dev: {},
    losses: [],
    wallSeconds: 0,
    bertParams: bert.numParams,
    resumed: !!state,
    stepsRun: 0,
  };
  // Earlier checkpoints of a resumed run are reported too.
  for (const s of saveSteps) {
    const dir = `${o.outDir}/checkpoint-${s.label}`;
    if (state && s.step <= state.step) {
      result.checkpoints[s.label] = dir;
      try {
        result.dev[s.label] = JSON.parse(await Deno.readTextFile(`${dir}/dev_metrics.json`));
      } catch { /* evaluated later or not at all */ }
    }
  }
  const log = new JsonLog(`${o.outDir}/train_log.jsonl`);
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
    const entry: LogEntry = { step: done, epoch: done / perEpoch, loss, lr, ...speed.entry() };
    result.losses.push({ step: done, loss });
    await log.write(entry);
    bar.tick(0, { loss, "ex/s": entry.examplesPerSecond });
  };
  let stepsHere = 0;
  try {
    for (let step = state?.step ?? 0; step < total; step++) {
      const which = batchRows(train.n, o.batchSize, o.seed, step);
      const { batch, labels } = pickBatch(train, which);
      const where = (i: number) => `${train.dataFile}: example ${train.idx[which[i]]}`;
      lr = o.lr * linearSchedule(step, total, o.warmupProportion);
      const loss = scope(() => {
        const drop = { rate: o.dropout, seed: o.seed, step };
        const out = bert.forward(batch, { dropout: o.dropout, seed: o.seed, step });
        const l = kind.loss(head.forward(out, drop), labels, where);
        backward(l);
        opt.step(lr);
        return keep(l);
      });
      window.push(step, loss);
      speed.add(batch.batch);
      bar.tick(1);
      const save = saveSteps.find((s) => s.step === step + 1);
      if (window.full || save || step === total - 1) await flush(step + 1);
      if (save) {
        const dir = `${o.outDir}/checkpoint-${save.label}`;
        await saveCheckpoint(dir, start.config, bert, head, kind, opt, o.modelDir);
        lastGood = dir;
        const st = { settings, step: step + 1, checkpoint: dir, label: save.label };
        await writeJsonAtomic(statePath, st);
        result.checkpoints[save.label] = dir;
        if (devRows) {
          const dev = await evaluateBert(bert, head, kind, devRows, o.batchSize * 2);
          await Deno.writeFile(`${dir}/dev_logits.npy`, encodeNpy(dev.logits, dev.shape));
          await writeJsonAtomic(`${dir}/dev_metrics.json`, dev.metrics);
          if (dev.answers) await writeJsonAtomic(`${dir}/dev_predictions.json`, dev.answers);
          result.dev[save.label] = dev.metrics;
          await log.write({ step: step + 1, dev: dev.metrics });
        }
      }
      stepsHere++;
      result.stepsRun = stepsHere;
      if (
        opts.stopAfterSteps !== undefined && stepsHere >= opts.stopAfterSteps && step + 1 < total
      ) {
        result.stopped = true;
        break;
      }
    }
    bar.done();
  } finally {
    window.dispose();
    opt.dispose();
    bert.dispose();
    head.dispose();
  }
  await gpu().sync();
  result.wallSeconds = (performance.now() - t0) / 1000;
  return result;
}

async function saveCheckpoint(
  dir: string,
  config: BertConfig,
  bert: BertModel,
  head: BertHead,
  kind: TaskKind,
  opt: AdamW,
  modelDir: string,
): Promise<void> {
  await saveBertCheckpoint(dir, config, await bert.toHost(), await head.toHost(), kind.hfConfig);
  // The tokenizer travels with the checkpoint so capture and other tools can load it alone.
  for (const f of ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]) {
    try {
      await Deno.copyFile(`${modelDir}/${f}`, `${dir}/${f}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const { m, v } = opt.state();
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of m) {
    tensors.set(`m.${name}`, { shape: [...t.shape], data: await t.readF32() });
  }
  for (const [name, t] of v) {
    tensors.set(`v.${name}`, { shape: [...t.shape], data: await t.readF32() });
  }
  await writeSafetensors(`${dir}/optimizer.safetensors`, tensors, { step: String(opt.stepCount) });
}

async function loadOptimizer(opt: AdamW, path: string, step: number): Promise<void> {
  const st = await readSafetensors(path);
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const [name, t] of st.tensors) {
    const target = name.startsWith("m.") ? m : name.startsWith("v.") ? v : null;
    if (target) target.set(name.slice(2), t.data as Float32Array);
  }
  opt.loadState(step, m, v);
}
