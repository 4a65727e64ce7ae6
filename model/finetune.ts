/**
 * Fine-tuning BERT for a task through the WGSL autograd: the task's head (classification on the
 * pooled [CLS] with dropout, STS-B regression, SQuAD start/end spans), AdamW with weight decay
 * off for biases and LayerNorm, linear warmup then decay, dropout 0.1, global-norm clipping at
 * 1.0, fractional epochs, checkpoints at fractions in the Hugging Face layout with the optimizer
 * state beside them, resume from the last one, dev evaluation and saved dev logits.
 *
 * A training step is one scope: forward, backward and the optimizer update are recorded into the
 * pending command encoder; the loss is read back only every `logEvery` steps (for the progress
 * bar, the log and the NaN check) and at checkpoints.
 * @module
 */
import { type BertConfig, type HostWeights } from "./config.ts";
import { type BertBatch, BertModel } from "./bert.ts";
import { loadBertCheckpoint, saveBertCheckpoint } from "./checkpoint.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { AdamW } from "./optim.ts";
import { add, crossEntropy, dropout, gatherRows, linear, mse, permute, scale } from "./ops.ts";
import { backward, gpu, initGpu, keep, noGrad, scope, Tensor } from "./tensor.ts";
import { Rng } from "./init.ts";
import { batchRows, linearSchedule, takeRows } from "../data/batches.ts";
import { encodeNpy } from "../data/npy.ts";
import { featurize, featurizeParallel } from "../data/features.ts";
import { type SquadFeature, squadFeatures } from "../data/features.ts";
import { type BertTokenizerLike, loadTokenizer } from "../data/tokenize.ts";
import { Progress } from "../data/progress.ts";
import {
  evaluateSquad,
  getTask,
  type GlueTask,
  isGlueTask,
  type SquadExample,
  squadPostprocess,
  type Task,
} from "../tasks/mod.ts";

/** Token rows of a split, ready to batch: GLUE examples or SQuAD windows. */
export interface TaskRows {
  n: number;
  seq: number;
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  /** GLUE: (n) class index or score. SQuAD: (n, 2) start, end token. */
  labels: Float64Array;
  /** SQuAD only: the examples and their windows, for post-processing. */
  squad?: { examples: SquadExample[]; features: SquadFeature[] };
  /** Row → example index in the split's file. */
  idx: Int32Array;
}

/**
 * Reads and featurises a split of a task (first `limit` examples when given). `split` may also
 * be a file path (ending in .tsv or .json), read with the task's reader.
 */
export async function loadTaskRows(
  task: Task,
  dataDir: string,
  split: string,
  tok: BertTokenizerLike,
  maxSeqLength: number,
  limit?: number,
  workers?: { modelDir: string; count: number },
): Promise<TaskRows> {
  const isFile = /\.(tsv|json)$/.test(split);
  if (isGlueTask(task)) {
    let ex = isFile ? (await task.readFile(split)).examples : await task.readSplit(dataDir, split);
    if (limit !== undefined) ex = ex.slice(0, limit);
    if (!ex.length) throw new Error(`${task.name} ${split}: no examples in ${dataDir}`);
    const f = workers && workers.count > 1
      ? await featurizeParallel(ex, workers.modelDir, tok, maxSeqLength, workers.count)
      : featurize(ex, tok, maxSeqLength);
    return { ...f, seq: maxSeqLength, idx: Int32Array.from(ex, (e) => e.idx) };
  }
  let examples =
    (isFile ? await task.readFile(split) : await task.readSplit(dataDir, split)) as SquadExample[];
  if (limit !== undefined) examples = examples.slice(0, limit);
  const { features } = squadFeatures(examples, tok, { maxSeqLength });
  const n = features.length, S = maxSeqLength;
  const rows: TaskRows = {
    n,
    seq: S,
    inputIds: new Int32Array(n * S),
    tokenTypeIds: new Int32Array(n * S),
    attentionMask: new Int32Array(n * S),
    labels: new Float64Array(n * 2),
    squad: { examples, features },
    idx: Int32Array.from(features, (f) => f.exampleIndex),
  };
  features.forEach((f, i) => {
    rows.inputIds.set(f.inputIds, i * S);
    rows.tokenTypeIds.set(f.tokenTypeIds, i * S);
    rows.attentionMask.set(f.attentionMask, i * S);
    rows.labels[2 * i] = f.startPosition;
    rows.labels[2 * i + 1] = f.endPosition;
  });
  return rows;
}

/** The rows `rows` of a split as a BERT batch. */
export function batchOf(r: TaskRows, rows: ArrayLike<number>): BertBatch {
  return {
    inputIds: takeRows(r.inputIds, r.seq, rows),
    tokenTypeIds: takeRows(r.tokenTypeIds, r.seq, rows),
    attentionMask: takeRows(r.attentionMask, r.seq, rows),
    batch: rows.length,
    seq: r.seq,
  };
}

/** A task head on BERT with Hugging Face names (`classifier.*` or `qa_outputs.*`). */
export class TaskHead {
  readonly task: Task;
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(task: Task, weight: Tensor, bias: Tensor) {
    this.task = task;
    this.weight = weight;
    this.bias = bias;
  }

  /** The head's tensor names as Hugging Face writes them. */
  static names(task: Task): [string, string] {
    return task.kind === "span"
      ? ["qa_outputs.weight", "qa_outputs.bias"]
      : ["classifier.weight", "classifier.bias"];
  }

  /**
   * A head from saved tensors (`extra` of a checkpoint) when present and shaped for this task,
   * else freshly initialised like Hugging Face (N(0, 0.02), zero bias) from `seed`. A saved head
   * for another label count is an error naming both.
   */
  static create(task: Task, hidden: number, seed: number, saved?: HostWeights): TaskHead {
    const [wn, bn] = TaskHead.names(task);
    const out = task.kind === "span" ? 2 : task.numLabels;
    const w = saved?.get(wn), b = saved?.get(bn);
    let wd: Float32Array, bd: Float32Array;
    if (w && b) {
      if (w.shape[0] !== out || w.shape[1] !== hidden) {
        throw new Error(
          `checkpoint head '${wn}' is [${w.shape}] but task ${task.name} needs [${out}, ${hidden}] ` +
            `(a model fine-tuned for another task? start from the base model instead)`,
        );
      }
      wd = w.data;
      bd = b.data;
    } else {
      const rng = new Rng(seed, "head");
      wd = Float32Array.from({ length: out * hidden }, () => 0.02 * rng.normal());
      bd = new Float32Array(out);
    }
    return new TaskHead(
      task,
      keep(Tensor.from(wd, [out, hidden], { requiresGrad: true, name: wn })),
      keep(Tensor.from(bd, [out], { requiresGrad: true, name: bn })),
    );
  }

  /**
   * Logits: (B, numLabels) from the pooled output (dropout first when training), or for spans
   * start and end logits, each (B, S), from the last hidden state.
   */
  forward(
    out: { hidden: Tensor[]; pooled: Tensor },
    train?: { rate: number; seed: number; step: number },
  ): { logits?: Tensor; start?: Tensor; end?: Tensor } {
    if (this.task.kind !== "span") {
      const pooled = train
        ? dropout(out.pooled, train.rate, train.seed, train.step * 4096 + 4095)
        : out.pooled;
      return { logits: linear(pooled, this.weight, this.bias) };
    }
    const last = out.hidden[out.hidden.length - 1];
    const [B, S, H] = last.shape;
    const z = linear(last.reshape([B * S, H]), this.weight, this.bias); // (B·S, 2)
    const both = permute(z.reshape([B * S, 2]), [1, 0]); // (2, B·S)
    const start = gatherRows(both, Int32Array.of(0)).reshape([B, S]);
    const end = gatherRows(both, Int32Array.of(1)).reshape([B, S]);
    return { start, end };
  }

  /** The task's loss for a batch with host labels (float64 values as in {@linkcode TaskRows}). */
  loss(o: { logits?: Tensor; start?: Tensor; end?: Tensor }, labels: Float64Array): Tensor {
    const t = this.task;
    if (t.kind === "classification") {
      return crossEntropy(o.logits!, Int32Array.from(labels, checkLabel(t)));
    }
    if (t.kind === "regression") {
      const target = Tensor.from(Float32Array.from(labels), [labels.length]);
      return mse(o.logits!.reshape([labels.length]), target);
    }
    const B = labels.length / 2;
    const sp = Int32Array.from({ length: B }, (_, i) => labels[2 * i]);
    const ep = Int32Array.from({ length: B }, (_, i) => labels[2 * i + 1]);
    return scale(add(crossEntropy(o.start!, sp), crossEntropy(o.end!, ep)), 0.5);
  }

  /** Both tensors as host weights under their Hugging Face names. */
  async toHost(): Promise<HostWeights> {
    const [wn, bn] = TaskHead.names(this.task);
    return new Map([
      [wn, { shape: [...this.weight.shape], data: await this.weight.readF32() }],
      [bn, { shape: [...this.bias.shape], data: await this.bias.readF32() }],
    ]);
  }

  /** Parameters. */
  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }

  /** Frees the head. */
  dispose(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

function checkLabel(t: Task) {
  return (v: number, i: number) => {
    if (!Number.isInteger(v)) {
      throw new Error(
        `${t.name}: row ${i} has label ${v}; training needs labelled data (not a test split)`,
      );
    }
    return v;
  };
}

/** Dev predictions of a model: logits (and for SQuAD the predicted answers). */
export interface DevResult {
  metrics: Record<string, number>;
  /** (n, numLabels) or, for SQuAD, (n, S, 2) start/end logits; row-major. */
  logits: Float32Array;
  shape: number[];
  /** SQuAD: {question id: answer text}. */
  answers?: Record<string, string>;
}

/**
 * Runs BERT + head over every row (no dropout, no tape) in batches and scores them with the
 * task's metrics. Logits are read back per batch (a metric needs them).
 */
export async function evaluateRows(
  bert: BertModel,
  head: TaskHead,
  rows: TaskRows,
  batchSize = 32,
  onBatch?: (done: number) => void,
): Promise<DevResult> {
  const task = head.task;
  const span = task.kind === "span";
  const width = span ? rows.seq * 2 : task.numLabels;
  const logits = new Float32Array(rows.n * width);
  for (let s = 0; s < rows.n; s += batchSize) {
    const idx = Int32Array.from({ length: Math.min(batchSize, rows.n - s) }, (_, i) => s + i);
    const values = await noGrad(() =>
      scope(async () => {
        const o = head.forward(bert.forward(batchOf(rows, idx)));
        if (!span) return await o.logits!.readF32();
        // (B, S) start and end → (B, S, 2) as saved.
        const st = await o.start!.readF32(), en = await o.end!.readF32();
        const out = new Float32Array(st.length * 2);
        for (let i = 0; i < st.length; i++) {
          out[2 * i] = st[i];
          out[2 * i + 1] = en[i];
        }
        return out;
      })
    );
    logits.set(values, s * width);
    onBatch?.(s + idx.length);
  }
  const shape = span ? [rows.n, rows.seq, 2] : [rows.n, task.numLabels];
  return { ...scoreLogits(task, rows, logits), logits, shape };
}

/** Metrics of row logits (GLUE: argmax or the regression value; SQuAD: post-processed spans). */
export function scoreLogits(
  task: Task,
  rows: TaskRows,
  logits: Float32Array,
): { metrics: Record<string, number>; answers?: Record<string, string> } {
  if (isGlueTask(task)) {
    const preds = glueArgmax(task, logits, rows.n);
    return { metrics: task.metrics(preds, rows.labels) };
  }
  const S = rows.seq;
  const starts: Float32Array[] = [], ends: Float32Array[] = [];
  for (let i = 0; i < rows.n; i++) {
    const st = new Float32Array(S), en = new Float32Array(S);
    for (let t = 0; t < S; t++) {
      st[t] = logits[(i * S + t) * 2];
      en[t] = logits[(i * S + t) * 2 + 1];
    }
    starts.push(st);
    ends.push(en);
  }
  const { examples, features } = rows.squad!;
  const pp = squadPostprocess(examples, features, starts, ends);
  const gold = examples.map((e) => ({
    id: e.id,
    answers: e.isImpossible ? [] : e.answers.map((a) => a.text),
  }));
  const metrics = evaluateSquad(gold, pp.predictions, { naProbs: pp.nullOdds, warn: () => {} });
  return { metrics: metrics as unknown as Record<string, number>, answers: pp.predictions };
}

/** Predictions from GLUE logits: the argmax class, or the value for regression. */
export function glueArgmax(task: GlueTask, logits: Float32Array, n: number): Float64Array {
  const k = task.kind === "regression" ? 1 : task.numLabels;
  return Float64Array.from({ length: n }, (_, i) => {
    if (k === 1) return logits[i];
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
    return best;
  });
}

/** Options of {@linkcode fineTune}; defaults follow BERTVision's fine-tuning. */
export interface FineTuneOptions {
  /** Local Hugging Face model directory (config.json, model.safetensors, vocab). */
  modelDir: string;
  task: string;
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
  /** 128 for GLUE, 384 for SQuAD by default. */
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
  /** Read the loss back every N steps (progress, log, NaN check). */
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
  /** Loss at each logged step. */
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

/** The settings a resumed run must share with the run it continues. */
function runSettings(
  o: Required<Omit<FineTuneOptions, "silent" | "stopAfterSteps" | "logEvery" | "noEval">>,
) {
  return {
    modelDir: o.modelDir,
    task: o.task,
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
  const task = getTask(opts.task);
  const o = {
    batchSize: 16,
    epochs: 1,
    lr: 2e-5,
    l2: 0.01,
    warmupProportion: 0.1,
    seed: 42,
    maxSeqLength: task.kind === "span" ? 384 : 128,
    dropout: 0.1,
    maxGradNorm: 1,
    limit: -1,
    devLimit: -1,
    devSplit: task.devSplits[0],
    trainSplit: "train",
    // Options passed as undefined keep their defaults.
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as
    & Required<Omit<FineTuneOptions, "silent" | "stopAfterSteps" | "logEvery" | "noEval">>
    & FineTuneOptions;
  o.saveAt = [...(opts.saveAt ?? [o.epochs])].sort((a, b) => a - b);
  const logEvery = opts.logEvery ?? 10;
  const settings = runSettings(o as Parameters<typeof runSettings>[0]);
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
  const limit = o.limit >= 0 ? o.limit : undefined;
  const workers = { modelDir: o.modelDir, count: opts.numWorkers ?? 0 };
  const train = await loadTaskRows(
    task,
    o.dataDir,
    o.trainSplit,
    tok,
    o.maxSeqLength,
    limit,
    workers,
  );
  const devRows = o.noEval ? null : await loadTaskRows(
    task,
    o.dataDir,
    o.devSplit,
    tok,
    o.maxSeqLength,
    o.devLimit >= 0 ? o.devLimit : undefined,
    workers,
  );

  const start = state
    ? await loadBertCheckpoint(state.checkpoint)
    : await loadBertCheckpoint(o.modelDir);
  const bert = BertModel.fromHost(start.config, start.weights, true);
  const head = TaskHead.create(task, start.config.hiddenSize, o.seed, start.extra);
  const params = [...bert.parameters(), ...head.parameters()];
  const noDecay = (t: Tensor) => t.name.endsWith(".bias") || t.name.includes("LayerNorm");
  const opt = new AdamW([
    { params: params.filter((p) => !noDecay(p)), weightDecay: o.l2 },
    { params: params.filter(noDecay), weightDecay: 0 },
  ], { lr: o.lr, maxGradNorm: o.maxGradNorm, eps: 1e-8 });
  if (state) await loadOptimizer(opt, `${state.checkpoint}/optimizer.safetensors`, state.step);

  const perEpoch = Math.ceil(train.n / o.batchSize);
  const total = Math.max(1, Math.round(o.epochs * perEpoch));
  const saveSteps = o.saveAt.map((e) => ({
    label: String(e),
    step: Math.max(1, Math.round(e * perEpoch)),
  }));
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
  const logFile = await Deno.open(`${o.outDir}/train_log.jsonl`, { create: true, append: true });
  const enc = new TextEncoder();
  const bar = new Progress({
    label: `fine-tune ${task.name}`,
    total,
    unit: "step",
    silent: opts.silent,
  }, state?.step ?? 0);
  let lastGood = state?.checkpoint ?? "(none yet)";
  let stepsHere = 0;
  let tLog = performance.now(), stepsSinceLog = 0;
  try {
    for (let step = state?.step ?? 0; step < total; step++) {
      const rows = batchRows(train.n, o.batchSize, o.seed, step);
      const batch = batchOf(train, rows);
      const labels = takeRows(train.labels, task.kind === "span" ? 2 : 1, rows);
      const lr = o.lr * linearSchedule(step, total, o.warmupProportion);
      const wantLoss = (step + 1) % logEvery === 0 || step === total - 1 ||
        saveSteps.some((s) => s.step === step + 1);
      const loss = await scope(async () => {
        const drop = { rate: o.dropout, seed: o.seed, step };
        const out = bert.forward(batch, { dropout: o.dropout, seed: o.seed, step });
        const l = head.loss(head.forward(out, drop), labels);
        backward(l);
        opt.step(lr);
        return wantLoss ? await l.item() : NaN;
      });
      stepsSinceLog++;
      if (wantLoss) {
        if (!Number.isFinite(loss)) {
          throw new Error(
            `loss is ${loss} at step ${step + 1} of ${total} (lr ${lr.toExponential(3)}); ` +
              `last good checkpoint: ${lastGood}. Try a lower --lr.`,
          );
        }
        const now = performance.now();
        const exPerSec = (stepsSinceLog * o.batchSize) / ((now - tLog) / 1000);
        tLog = now;
        stepsSinceLog = 0;
        result.losses.push({ step: step + 1, loss });
        const line = {
          step: step + 1,
          epoch: (step + 1) / perEpoch,
          loss,
          lr,
          examples_per_s: exPerSec,
        };
        await logFile.write(enc.encode(JSON.stringify(line) + "\n"));
        bar.tick(0, { loss, "ex/s": exPerSec });
      }
      bar.tick(1);
      const save = saveSteps.find((s) => s.step === step + 1);
      if (save) {
        const dir = `${o.outDir}/checkpoint-${save.label}`;
        await saveCheckpoint(dir, start.config, bert, head, opt, o.modelDir);
        lastGood = dir;
        const st = { settings, step: step + 1, checkpoint: dir, label: save.label };
        await writeJsonAtomic(statePath, st);
        result.checkpoints[save.label] = dir;
        if (devRows) {
          const dev = await evaluateRows(bert, head, devRows, o.batchSize * 2);
          await Deno.writeFile(`${dir}/dev_logits.npy`, encodeNpy(dev.logits, dev.shape));
          await writeJsonAtomic(`${dir}/dev_metrics.json`, dev.metrics);
          if (dev.answers) await writeJsonAtomic(`${dir}/dev_predictions.json`, dev.answers);
          result.dev[save.label] = dev.metrics;
          await logFile.write(
            enc.encode(JSON.stringify({ step: step + 1, dev: dev.metrics }) + "\n"),
          );
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
    logFile.close();
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
  head: TaskHead,
  opt: AdamW,
  modelDir: string,
): Promise<void> {
  await saveBertCheckpoint(dir, config, await bert.toHost(), await head.toHost());
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

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
  await Deno.rename(tmp, path);
}
