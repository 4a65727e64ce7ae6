/**
 * The whole BERTVision reproduction for one task, as library calls: fine-tune BERT → capture its
 * hidden states on train and dev → train the adapter-pooler on them → evaluate both → ensemble →
 * `results.json`, `results.md` and `chart.svg`. Every stage resumes: rerunning the same command
 * after an interruption continues where it stopped (fine-tuning from its last checkpoint,
 * capture after its last complete chunk). The plan is printed first ({@linkcode planReproduce},
 * `--dry-run` alone); when the activation stores would not fit on the disk, the head trains from
 * a stream of the checkpoint's hidden states instead (nothing stored).
 * @module
 */
import { loadBertCheckpoint, readBertConfig, resolveModel } from "../model/checkpoint.ts";
import { fmtBytes } from "../kernels/device.ts";
import { type Pooling } from "../model/heads.ts";
import { gpu, initGpu } from "../model/tensor.ts";
import { decodeNpy } from "../data/npy.ts";
import { readInput } from "../data/files.ts";
import {
  acquireLock,
  finishOverwrite,
  removePaths,
  resumeOverwrite,
  startOverwrite,
} from "../data/output/mod.ts";
import { type ResultRow, type Results, writeResults } from "../report/report.ts";
import {
  checkDevSplits,
  devMetricKeys,
  kindOf,
  mergeDevMetrics,
  resolveTask,
  type Task,
} from "../tasks/mod.ts";
import { fineTune, type FineTuneOptions, planFineTune } from "./finetune.ts";
import { capture, captureMemory, captureRowBytes } from "./capture.ts";
import { trainAp, type TrainApOptions } from "./heads/mod.ts";
import { trainFractions } from "./heads/fractions.ts";
import { trainProbes } from "./heads/probe.ts";
import { ablateHead } from "./heads/ablate.ts";
import { ablationSummary, probeSummary } from "../report/layers.ts";
import { checkFractions } from "../data/batches.ts";
import { ensembleScores } from "./ensemble.ts";
import { rowNotes, RowsCache, type SplitRows } from "./rows.ts";
import { CAPTURE_DEFAULTS, FINETUNE_DEFAULTS, HEAD_DEFAULTS } from "./defaults.ts";
import {
  describeSettings,
  type EarlyStopOn,
  presetFor,
  resolveSettings,
  seedSeqLength,
} from "./presets.ts";
import { resolveSquadSettings, squadRowsFor } from "./squad_settings.ts";
import type { DeviceOptions, OutputOptions, RowSourceOptions } from "./options.ts";
import {
  bertParamBytes,
  bertPeakBytes,
  bertRowPeakBytes,
  bertRowTensors,
  formatPlan,
  freeDiskBytes,
  limitsOf,
  splitBatch,
  type StagePlan,
  storeBytes,
} from "./plan.ts";
import { timeBertMicroBatch } from "./warmup.ts";
import { type Precision, type PrecisionChoice, resumePrecision } from "./precision.ts";
import { regularFileExists } from "../data/files.ts";

/** Options of {@linkcode reproduce}; the seed's flags keep their meaning. */
export interface ReproduceOptions extends OutputOptions, RowSourceOptions, DeviceOptions {
  /** A task name, or a task module of the caller's. */
  task: string | Task;
  /** BERT to start from: a Hugging Face directory or hub id. */
  model: string;
  /** GLUE/SQuAD distribution root. */
  dataDir: string;
  /** Results go to `${out}/${task}` (default `results`). */
  out?: string;
  /** SQuAD: read these files instead of `dataDir/squad/{train,dev}-v2.0.json`. */
  trainFile?: string;
  devFile?: string;
  /**
   * Dev splits evaluated and reported, by name (`--dev-split`); default every dev split of the
   * task: MNLI's dev_matched and dev_mismatched, as two columns (`MNLI-m`, `MNLI-mm`), each
   * captured to its own store. MRPC `msr_test` is the seed's MSR dev set.
   */
  devSplits?: string[];
  /**
   * Fill every training setting not given from the task's seed preset (train/presets.ts): the
   * seed's BERT command for fine-tuning, its AP command for the head (lr, l2, batch, epochs),
   * the seed's defaults (seed 1, warmup 0.1, patience 3) and the AP adapter size =
   * `maxSeqLength`, as `deno task reproduce` does; otherwise train/defaults.ts.
   */
  preset?: boolean;
  /**
   * Early stopping for BERT (checkpoint evaluations) and the head (epochs) without improvement
   * of the main dev metric (`--patience`); 0 never stops early.
   */
  patience?: number;
  /** What early stopping watches, for BERT and the head (`--early-stop loss|metric`). */
  earlyStop?: EarlyStopOn;
  /** AdamW bias correction, BERT and the head (`--bias-correction on|off`). */
  biasCorrection?: boolean;
  /** AdamW epsilon, BERT and the head (`--adam-eps`). */
  adamEps?: number;
  /** Gradient-norm clipping, BERT and the head (`--max-grad-norm`; 0 never clips). */
  maxGradNorm?: number;
  /** Weight decay on biases and LayerNorm too, BERT and the head (`--decay-biases on|off`). */
  decayBiases?: boolean;
  /**
   * The head's tokens per row (`--ap-max-seq-length`): the rows are tokenized again at this
   * length for capture (or the stream) from the BERT fine-tuned at `maxSeqLength`. Default
   * `maxSeqLength` when given, else with the preset the seed's head length (QNLI and MNLI 100,
   * STS-B 70), else BERT's.
   */
  apMaxSeqLength?: number;
  // Fine-tuning (BERT)
  epochs?: number;
  /**
   * Capture from the checkpoint at this many epochs (default: the end), e.g. 0.3 for the paper's
   * "BERT at 3/10 epoch → AP" experiment; BERT is still trained to `epochs` and reported at both.
   */
  captureAt?: number;
  batchSize?: number;
  lr?: number;
  l2?: number;
  warmupProportion?: number;
  seed?: number;
  /** Use the first N dev examples (smoke runs, the demo; `limit`: training examples). */
  devLimit?: number;
  /**
   * `--precision` of every training the run does (fine-tuning, heads, probes; capture, evaluation
   * stay float32): f16-mixed or f32. Default: the precision of the fine-tuning run found in
   * `${out}/${task}/bert` (float32 for one made before `--precision` existed), else the preset
   * (train/precision.ts). A run found with the other precision is refused, naming it.
   */
  precision?: Precision;
  // Capture
  layout?: "full" | "cls";
  dtype?: "f32" | "f16";
  // BERTVision head
  apModel?: Pooling;
  adapterDim?: number;
  shared?: boolean;
  skip?: boolean;
  apEpochs?: number;
  apLr?: number;
  /** The head's AdamW weight decay (`--ap-l2`). */
  apL2?: number;
  apBatchSize?: number;
  trainFraction?: number;
  /**
   * The less-data curve (`--train-fractions`): one head per share of the training rows, from one
   * pass (train/fractions.ts), in `${out}/${task}/fractions/fraction-F`, with the table and the
   * curve against BERT's dev score in `fractions/fractions.{json,md,svg}`. The results table's
   * head (and ensembles) is the largest fraction's.
   */
  trainFractions?: number[];
  /**
   * Which layers carry the task (`--probe`, store mode): a linear probe per stored layer on the
   * captured stores (train/heads/probe.ts, in `${out}/${task}/probe`, with BERT's and the head's
   * dev metrics as lines) and the head's layer ablation (train/heads/ablate.ts, `ablate.*` in
   * the head's directory); their summaries join the results' notes.
   */
  probe?: boolean;
  /**
   * Where the head's hidden states come from: "store" (capture to HDF5, then train), "stream"
   * (computed on the fly by the checkpoint, nothing written). Default: store, unless the stores
   * would not fit in the free disk space.
   */
  activations?: "store" | "stream";
  /** Lines printed under the table. */
  notes?: string[];
  /**
   * The run's rows (train/rows.ts): the plan and every stage read each split from it, so each is
   * tokenized once; default one made by {@linkcode reproduce} (or the plan) for the run.
   */
  rows?: RowsCache;
}

/** Where a reproduction's rows over the resident budget are cached (train/rows.ts). */
const rowsDir = (dir: string) => `${dir}/.rows`;

/**
 * The settings recorded by the fine-tuning run in `dir` (its `trainer_state.json`), or null when
 * there is none, or it cannot be read (the fine-tuning stage then says why, naming the file).
 */
async function foundRun(
  dir: string,
): Promise<{ what: string; settings: Record<string, unknown> } | null> {
  const path = `${dir}/trainer_state.json`;
  try {
    regularFileExists(path); // a FIFO there would block the read
    const st = JSON.parse(await Deno.readTextFile(path));
    const settings = st?.settings;
    if (typeof settings !== "object" || settings === null || Array.isArray(settings)) return null;
    return { what: `the fine-tuning run in ${dir}`, settings };
  } catch {
    return null;
  }
}

/** The head stage's precision line (fine-tuning's own plan says the same for BERT). */
const precisionLine = (p: PrecisionChoice) =>
  `precision ${p.precision} (${p.why})` +
  (p.precision === "f16-mixed" ? ": the head's matmuls in f16, loss scaling" : "");

/** The shared resolution of a reproduction's options (the run and its plan agree). */
async function resolveRun(o: ReproduceOptions) {
  await initGpu();
  const task = resolveTask(o.task);
  const kind = kindOf(task);
  const dir = `${o.out ?? "results"}/${task.name}`;
  const modelDir = await resolveModel(o.model);
  // Tokens per row: BERT's for fine-tuning, the head's for capture (each given, else the seed's
  // with the preset, else the kind's default), with where each came from.
  const seedBert = o.preset ? seedSeqLength(task.name, "bert") : undefined;
  const seedHead = o.preset ? seedSeqLength(task.name, "ap") : undefined;
  const seq = o.maxSeqLength ?? seedBert?.value ?? kind.defaultMaxSeqLength;
  const seqFrom = o.maxSeqLength !== undefined
    ? "--max-seq-length"
    : seedBert
    ? `preset: ${seedBert.from}`
    : "default";
  const headSeq = o.apMaxSeqLength ?? o.maxSeqLength ?? seedHead?.value ?? seq;
  const headSeqFrom = o.apMaxSeqLength !== undefined
    ? "--ap-max-seq-length"
    : o.maxSeqLength !== undefined
    ? "--max-seq-length"
    : seedHead
    ? `preset: ${seedHead.from}`
    : "= BERT's";
  const preset = o.preset ? presetFor(task.name) : undefined;
  const seqLines = [
    `tokens: BERT ${seq} (${seqFrom}), head ${headSeq} (${headSeqFrom})`,
    ...(headSeq !== seq
      ? [
        `  the head's rows are tokenized again at ${headSeq} and captured from the BERT ` +
        `fine-tuned at ${seq}` +
        (preset?.ap.note && o.apMaxSeqLength === undefined && o.maxSeqLength === undefined
          ? ` (${preset.ap.note})`
          : ""),
      ]
      : preset?.ap.note && o.maxSeqLength === undefined
      ? [`  ${preset.ap.note}`]
      : []),
  ];
  // The training settings of both stages: given, else the task's preset, else the defaults.
  // `--batch-size`, `--seed`, `--warmup-proportion`, `--patience` and the optimizer's switches
  // apply to both.
  const bert = resolveSettings(
    task.name,
    "bert",
    o,
    !!o.preset,
    FINETUNE_DEFAULTS,
  );
  const head = resolveSettings(
    task.name,
    "ap",
    {
      batchSize: o.apBatchSize ?? o.batchSize,
      epochs: o.apEpochs,
      lr: o.apLr,
      l2: o.apL2,
      warmupProportion: o.warmupProportion,
      seed: o.seed,
      patience: o.patience,
      earlyStop: o.earlyStop,
      biasCorrection: o.biasCorrection,
      adamEps: o.adamEps,
      maxGradNorm: o.maxGradNorm,
      decayBiases: o.decayBiases,
    },
    !!o.preset,
    HEAD_DEFAULTS,
  );
  const epochs = bert.values.epochs;
  const captureAt = o.captureAt ?? epochs;
  if (!(captureAt > 0 && captureAt <= epochs)) {
    throw new RangeError(`--capture-at ${captureAt} must be within (0, --epochs ${epochs}]`);
  }
  const layout = o.layout ?? CAPTURE_DEFAULTS.layout;
  const dtype = o.dtype ?? CAPTURE_DEFAULTS.dtype;
  if (o.trainFractions) checkFractions(o.trainFractions); // before any stage runs
  // The dev splits, in report order; `devFile` stands for the task's first. With the preset, the
  // seed's (MRPC: msr_test) and its training file (MRPC: msr_train), unless given.
  const devSplits = o.devFile !== undefined
    ? [task.devSplits[0]]
    : o.devSplits !== undefined
    ? checkDevSplits(task, o.devSplits)
    : preset?.devSplits
    ? checkDevSplits(task, preset.devSplits.value)
    : task.devSplits;
  const trainFile = o.trainFile ??
    (preset?.trainSplit
      ? `${o.dataDir.replace(/\/+$/, "")}/${task.fileFor(preset.trainSplit.value)}`
      : undefined);
  const dataLines = preset?.trainSplit || preset?.devSplits
    ? [
      `data: train ${trainFile ?? "train"} (${
        o.trainFile !== undefined
          ? "--train-file"
          : preset.trainSplit
          ? `preset: ${preset.trainSplit.from}`
          : "default"
      }), dev ${devSplits.join(",")} (${
        o.devFile !== undefined || o.devSplits !== undefined
          ? o.devFile !== undefined ? "--dev-file" : "--dev-split"
          : preset.devSplits
          ? `preset: ${preset.devSplits.from}`
          : "default"
      })`,
    ]
    : [];
  // The option groups every stage shares, resolved once and spread into each stage's options.
  const output: OutputOptions = {
    breakLock: o.breakLock,
    overwrite: o.overwrite,
    silent: o.silent,
  };
  const source: RowSourceOptions = {
    dataDir: o.dataDir,
    maxSeqLength: seq,
    docStride: o.docStride,
    numWorkers: o.numWorkers,
    // SQuAD's question length and answer rule, resolved once for every stage.
    squad: task.format === "squad-json"
      ? o.squad ?? resolveSquadSettings(undefined, !!o.preset)
      : undefined,
  };
  squadRowsFor(task, o.squad, false); // another task: a SQuAD setting given is an error
  const device: DeviceOptions = { maxBindingMiB: o.maxBindingMiB };
  // Every training's precision, resolved once: given, else the resumed fine-tuning run's own.
  const precision = resumePrecision(
    gpu(),
    o.precision,
    o.overwrite ? null : await foundRun(`${dir}/bert`),
  );
  // A plan alone (a dry run) writes nothing: its rows say where a split would be cached.
  const rows = o.rows ?? new RowsCache({ dir: rowsDir(dir), write: false });
  const ft: FineTuneOptions = {
    ...output,
    ...source,
    ...device,
    dataDir: o.dataDir,
    modelDir,
    task,
    outDir: `${dir}/bert`,
    trainSplit: trainFile,
    devSplit: o.devFile,
    devSplits: o.devFile === undefined ? devSplits : undefined,
    settings: bert, // resolved above: fine-tuning does not resolve them again
    maxSeqLengthFrom: seqFrom,
    saveAt: [...new Set([captureAt, epochs])],
    limit: o.limit,
    devLimit: o.devLimit,
    rows,
    precision,
  };
  return {
    precision,
    rows,
    output,
    source,
    device,
    task,
    kind,
    dir,
    modelDir,
    seq,
    headSeq,
    seqLines,
    dataLines,
    trainFile,
    epochs,
    captureAt,
    layout,
    dtype,
    devSplits,
    ft,
    bert,
    head,
  };
}

/**
 * Store or stream: stream when asked, or when the two stores would not fit in the free disk
 * space of the results directory (with the reason, for the plan and the log).
 */
async function chooseActivations(
  o: ReproduceOptions,
  dir: string,
  bytes: number,
): Promise<{ mode: "store" | "stream"; why: string }> {
  const free = await freeDiskBytes(dir);
  const need = `the stores take ${fmtBytes(bytes)}` +
    (free === undefined ? "" : `, ${fmtBytes(free)} free on ${dir}`);
  if (o.activations) {
    return { mode: o.activations, why: `--activations ${o.activations} (${need})` };
  }
  if (free !== undefined && bytes > 0.95 * free) {
    return { mode: "stream", why: `stream, since ${need}: nothing is stored` };
  }
  return { mode: "store", why: `store (${need})` };
}

/**
 * The plan of a whole reproduction (`reproduce --dry-run`): fine-tuning, capture of train and
 * dev, the head and its evaluation, with micro-batches, peak GPU bytes, bytes written, free
 * disk and, with `time`, times from short measured warm-ups on the starting model (the
 * fine-tuned checkpoint has its shapes). Writes nothing.
 */
export async function planReproduce(
  o: ReproduceOptions,
  time = true,
): Promise<{ text: string; stages: StagePlan[] }> {
  const r = await resolveRun(o);
  const stages = await planFineTune(r.ft, time);
  const ck = await loadBertCheckpoint(r.modelDir);
  const c = ck.config;
  const limits = limitsOf(gpu(), o.maxBindingMiB);
  // The rows as the head reads them (at its token count).
  const rowsOf = (split: string, file: string | undefined, limit: number | undefined) =>
    r.rows.load(r.task, r.modelDir, {
      ...r.source,
      maxSeqLength: r.headSeq,
      split,
      dataFile: file,
      limit,
      training: split === "train",
      ...squadRowsFor(r.task, r.source.squad, false),
    });
  const splits: [string, Awaited<ReturnType<typeof rowsOf>>][] = [
    ["train", await rowsOf("train", r.trainFile, o.limit)],
  ];
  for (const split of r.devSplits) splits.push([split, await rowsOf(split, o.devFile, o.devLimit)]);
  const batch = r.bert.values.batchSize;
  const hs = r.headSeq;
  const capRow = bertRowTensors(c, hs, r.layout).at(-1)!.bytesPerRow;
  const forwardMemory = (extra: number) => ({
    fixed: bertParamBytes(c),
    perRow: bertRowPeakBytes(c, hs, false) + extra,
  });
  // Capture runs in float32 (its preset): planned as capture's own plan plans it.
  const capMemory = captureMemory(c, hs, r.layout, r.dtype, false);
  const capRows = [...bertRowTensors(c, hs), captureRowBytes(c, hs, r.layout, r.dtype).tensor];
  const capSplit = splitBatch("capture", batch, capRows, limits, capMemory);
  const fwd = time ? await timeBertMicroBatch(c, ck.weights, capSplit.micro, hs, false) : 0;
  let storeTotal = 0;
  const capStages: StagePlan[] = splits.map(([name, rows]) => {
    const bytes = storeBytes(c, rows.n, hs, r.layout, r.dtype, r.kind.labelWidth);
    storeTotal += bytes;
    return {
      stage: `capture ${name} (${r.layout}, ${r.dtype})`,
      rows: rows.n,
      examples: rows.nExamples,
      split: capSplit,
      peakBytes: capMemory.fixed + Math.min(capSplit.micro, rows.n) * capMemory.perRow,
      writes: { path: `${r.dir}/activations/${name}_${r.layout}_${r.dtype}.h5`, bytes },
      notes: rowNotes(rows),
      seconds: time ? fwd * Math.ceil(rows.n / capSplit.micro) : undefined,
    };
  });
  const acts = await chooseActivations(o, r.dir, storeTotal);
  const apEpochs = r.head.values.epochs;
  const stream = acts.mode === "stream";
  const headSplit = splitBatch(
    "train head",
    o.apBatchSize ?? batch,
    stream ? bertRowTensors(c, hs, r.layout) : bertRowTensors(c, hs, r.layout).slice(-1),
    limits,
    stream ? forwardMemory(3 * capRow) : { fixed: 0, perRow: 3 * capRow },
  );
  const trainRows = splits[0][1].n;
  const head: StagePlan = {
    stage: `train BERTVision head (${o.apModel ?? HEAD_DEFAULTS.model}, ${apEpochs} epochs)`,
    rows: trainRows,
    split: headSplit,
    peakBytes: 3 * headSplit.micro * headSplit.largest.bytesPerRow +
      (stream ? bertPeakBytes(c, hs, headSplit.micro, bertParamBytes(c), false) : 0),
    seconds: time && stream ? fwd * Math.ceil(trainRows / capSplit.micro) * apEpochs : undefined,
    notes: [
      stream
        ? `stream: ${apEpochs} extra pass(es) over train, 1 over each dev split; nothing stored`
        : `from the stores (${fmtBytes(storeTotal)})`,
      precisionLine(r.precision),
      ...(o.trainFractions
        ? [
          `--train-fractions ${o.trainFractions.join(",")}: ${o.trainFractions.length} heads ` +
          `(${r.dir}/fractions/fraction-F) from one pass over the largest fraction's rows; each ` +
          `head evaluated on dev`,
        ]
        : []),
      ...describeSettings(
        r.head,
        { lr: "--ap-lr", l2: "--ap-l2", epochs: "--ap-epochs" },
        (o.apModel ?? HEAD_DEFAULTS.model) !== "ap" ? [] : [
          o.adapterDim !== undefined
            ? `adapter ${o.adapterDim} (--adapter-dim)`
            : o.preset || r.kind.readout === "token"
            ? `adapter ${hs} (= the head's tokens, ${o.preset ? "preset" : "default"})`
            : `adapter ${HEAD_DEFAULTS.adapterDim} (default)`,
        ],
      ),
    ],
  };
  const all = [...stages, ...(stream ? [] : capStages), head];
  return {
    text: formatPlan(all, [
      ...r.seqLines,
      ...r.dataLines,
      `activations: ${acts.why}`,
      r.rows.describe(),
      `results: ${r.dir}`,
    ]),
    stages: all,
  };
}

/** Runs the reproduction; returns the results and the files written. */
export async function reproduce(
  o: ReproduceOptions,
): Promise<{ results: Results; files: string[] }> {
  // The plan printed below shares the run's rows; splits over the resident budget are cached
  // in the results directory, and the files go when the run ends.
  const own = o.rows ? undefined : new RowsCache({
    dir: rowsDir(`${o.out ?? "results"}/${resolveTask(o.task).name}`),
  });
  o = { ...o, rows: o.rows ?? own };
  const r = await resolveRun(o); // reads no rows
  // One writer per results directory (each stage also locks its own output inside it).
  const lock = acquireLock(r.dir, "dir", { breakLock: o.breakLock });
  if (lock.tookOver && !o.silent) console.error(lock.tookOver);
  try {
    return await reproduceLocked(o, r);
  } finally {
    await own?.close(); // while the directory is still ours
    lock.release();
  }
}

async function reproduceLocked(
  o: ReproduceOptions,
  r: Awaited<ReturnType<typeof resolveRun>>,
): Promise<{ results: Results; files: string[] }> {
  const { task, kind, dir, seq, headSeq, epochs, captureAt, layout, dtype, devSplits } = r;
  const { output, device } = r;
  const seed = r.bert.values.seed, batchSize = r.bert.values.batchSize;
  const stageSeconds: Record<string, number> = {};
  const log = (s: string) => o.silent || console.error(s);
  const timed = async <T>(name: string, f: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    log(`== ${name}`);
    const r = await f();
    stageSeconds[name] = (performance.now() - t0) / 1000;
    return r;
  };
  if (!o.silent) console.error((await planReproduce(o, false)).text);
  // --overwrite marks the old reproduction invalid (its results, and everything under it for
  // readers) before any stage replaces anything; a rerun continues an interrupted one. Each stage
  // then replaces what differs in its own output, and the mark goes once results.json is new.
  const removeResults = () =>
    removePaths(["results.json", "results.md", "chart.svg"].map((f) => `${dir}/${f}`));
  if (o.overwrite) await startOverwrite(dir, "reproduce --overwrite", removeResults);
  else if (await resumeOverwrite(dir, removeResults)) {
    output.overwrite = true;
    r.ft.overwrite = true;
  }

  const ft = await timed(
    "fine-tune BERT",
    () => fineTune(r.ft),
  );
  if (ft.stepsRun === 0) {
    stageSeconds["fine-tune BERT (found finished)"] = stageSeconds["fine-tune BERT"];
    delete stageSeconds["fine-tune BERT"];
  }
  const label = String(captureAt);
  const ckpt = ft.checkpoints[label];
  const atLabel = (e: number) => (captureAt === epochs ? "" : ` (${e} ep)`);
  // Each dev split's metrics as report columns (MNLI: MNLI-m, MNLI-mm; one split: as they are).
  const columns = (bySplit: Record<string, number>[]) =>
    mergeDevMetrics(task, devSplits.map((s, i) => [s, bySplit[i]] as const));
  const readLogits = async (path: string) =>
    decodeNpy(await readInput(path), path).data as Float32Array;
  /** BERT's dev logits at a checkpoint, one array per dev split (in `devSplits` order). */
  const bertLogitsAt = (at: number) =>
    Promise.all(ft.devBySplit[String(at)].map((d) => readLogits(d.logits)));
  const bertDevAt = (at: number) => columns(ft.devBySplit[String(at)].map((d) => d.metrics));

  // The rows as captured: the dev labels for the ensemble's metrics and, for SQuAD, the windows
  // and offset maps that turn AP and ensemble logits into answers; the train row count for the
  // stores' size. The run's rows: the checkpoint carries the starting model's tokenizer files,
  // so these are the rows fine-tuning read, not tokenized again.
  const rowsOf = (split: string, file: string | undefined, limit: number | undefined) =>
    r.rows.load(task, ckpt, {
      ...r.source,
      maxSeqLength: headSeq,
      split,
      dataFile: file,
      limit,
      training: split === "train",
      ...squadRowsFor(task, r.source.squad, false),
    });
  const devRowsList: SplitRows[] = [];
  for (const split of devSplits) devRowsList.push(await rowsOf(split, o.devFile, o.devLimit));
  const devRows = devRowsList[0];
  const trainN = (await rowsOf("train", r.trainFile, o.limit)).n;
  const config = await readBertConfig(ckpt);
  const acts = await chooseActivations(
    o,
    dir,
    [trainN, ...devRowsList.map((d) => d.n)]
      .reduce((a, n) => a + storeBytes(config, n, headSeq, layout, dtype, kind.labelWidth), 0),
  );
  // Streaming because the disk is too small changes what the run costs: always said.
  if (acts.mode === "stream" && !o.activations) console.error(`activations: ${acts.why}`);
  else log(`activations: ${acts.why}`);
  const h5 = (split: string) => `${dir}/activations/${split}_${layout}_${dtype}.h5`;
  if (acts.mode === "store") {
    for (
      const [split, file, limit] of [
        ["train", r.trainFile, o.limit] as const,
        ...devSplits.map((s) => [s, o.devFile, o.devLimit] as const),
      ]
    ) {
      await timed(`capture ${split}`, () =>
        capture({
          ...output,
          ...r.source,
          maxSeqLength: headSeq, // the head's tokens (BERT was fine-tuned at `seq`)
          ...device,
          rows: r.rows,
          model: ckpt,
          task,
          split,
          dataFile: file,
          out: h5(split),
          layout,
          dtype,
          batchSize,
          limit,
          // Asked for by --activations store: the plan said the space (and said it was short).
          ignoreDiskSpace: o.activations === "store",
        }));
    }
  }

  const apModel = o.apModel ?? HEAD_DEFAULTS.model;
  const source = acts.mode === "store" ? { trainH5: h5("train"), devH5: devSplits.map(h5) } : {
    stream: {
      ...r.source,
      maxSeqLength: headSeq,
      model: ckpt,
      trainFile: r.trainFile,
      devFile: o.devFile,
      devSplits: o.devFile === undefined ? devSplits : undefined,
      layout,
      limit: o.limit,
      devLimit: o.devLimit,
      rows: r.rows,
    },
  };
  const headOpts: TrainApOptions = {
    ...source,
    task,
    model: apModel,
    adapterDim: o.adapterDim,
    shared: o.shared,
    skip: o.skip,
    preset: o.preset, // the adapter size (the settings are resolved: r.head)
    squad: r.source.squad,
    batchSize: r.head.values.batchSize,
    epochs: r.head.values.epochs,
    lr: r.head.values.lr,
    l2: r.head.values.l2,
    warmupProportion: r.head.values.warmupProportion,
    patience: r.head.values.patience,
    earlyStop: r.head.values.earlyStop,
    biasCorrection: r.head.values.biasCorrection,
    adamEps: r.head.values.adamEps,
    maxGradNorm: r.head.values.maxGradNorm,
    decayBiases: r.head.values.decayBiases,
    seed,
    outDir: `${dir}/ap`,
    layout,
    bertParams: ft.bertParams,
    devRows,
    precision: r.precision,
    ...device,
    ...output,
  };
  // The less-data curve: a head per fraction from one pass, BERT's checkpoints as its lines; the
  // table's head is the largest fraction's.
  const fractionFiles: string[] = [];
  const ap = o.trainFractions
    ? await timed("train BERTVision heads (fractions)", async () => {
      const sweep = await trainFractions({
        ...headOpts,
        fractions: o.trainFractions!,
        outDir: `${dir}/fractions`,
        bert: [...new Set([captureAt, epochs])].map((at) => ({
          label: `BERT${atLabel(at)}`,
          metrics: bertDevAt(at),
        })),
      });
      fractionFiles.push(...sweep.files);
      for (const h of sweep.heads.slice(0, -1)) h.head.dispose();
      return sweep.heads.at(-1)!;
    })
    : await timed(
      "train BERTVision head",
      () => trainAp({ ...headOpts, trainFraction: o.trainFraction }),
    );
  // Which layers carry the task: a probe per layer on the stores, the head's ablation.
  const layerFiles: string[] = [];
  const layerNotes: string[] = [];
  if (o.probe && acts.mode !== "store") {
    layerNotes.push(`--probe: skipped (the probes read stored activations; this run streamed)`);
  } else if (o.probe) {
    await timed("probe the layers", async () => {
      const p = await trainProbes({
        ...output,
        ...device,
        task,
        trainH5: h5("train"),
        devH5: devSplits.map(h5),
        outDir: `${dir}/probe`,
        batchSize: r.head.values.batchSize,
        epochs: r.head.values.epochs,
        lr: r.head.values.lr,
        l2: r.head.values.l2,
        seed,
        precision: r.precision,
        references: [
          { label: `BERT${atLabel(captureAt)}`, metrics: bertDevAt(captureAt) },
          {
            label: `BERTVision (${apModel.toUpperCase()})`,
            metrics: columns(ap.devBySplit!.map((d) => d.metrics)),
          },
        ],
      });
      for (const q of p.probes) q.head.dispose();
      layerFiles.push(...p.files);
      layerNotes.push(...probeSummary(p.curve).map((l) => `Probe: ${l}`));
      const a = await ablateHead({
        ...output,
        task,
        head: o.trainFractions ? ap.headPath.replace(/\/head\.safetensors$/, "") : `${dir}/ap`,
        devH5: devSplits.map(h5),
        trainH5: h5("train"),
      });
      layerFiles.push(...a.files);
      layerNotes.push(...ablationSummary(a).map((l) => `Ablation: ${l}`));
    });
  }
  // The head's dev logits per dev split, in `devSplits` order (like BERT's).
  const apLogits = await Promise.all(ap.devBySplit!.map((d) => readLogits(d.logitsPath!)));
  const headConfig = ap.head.config;
  ap.head.dispose();
  /** The head ensembled with BERT at a checkpoint, on every dev split. */
  const ensembleAt = async (at: number) => {
    const bert = await bertLogitsAt(at);
    return columns(
      devRowsList.map((rows, i) => ensembleScores(task, apLogits[i], bert[i], rows).metrics),
    );
  };

  const ensemble = await timed("ensemble", () => ensembleAt(captureAt));
  // The paper's "BERT 2 epochs + AP on 1-epoch activations": every later BERT checkpoint
  // ensembled with the head too (one row each).
  const laterEnsembles: { at: number; metrics: Record<string, number> }[] = [];
  for (const at of captureAt === epochs ? [] : [epochs]) {
    laterEnsembles.push({ at, metrics: await ensembleAt(at) });
  }

  const bertParams = ft.bertParams;
  const apShare = o.trainFractions ? Math.max(...o.trainFractions) : 1;
  const rows: ResultRow[] = [
    {
      model: `BERT${atLabel(captureAt)}`,
      params: bertParams,
      share: 1,
      metrics: bertDevAt(captureAt),
    },
    ...(captureAt === epochs ? [] : [{
      model: `BERT${atLabel(epochs)}`,
      params: bertParams,
      share: 1,
      metrics: bertDevAt(epochs),
    }]),
    {
      model: `BERTVision (${apModel.toUpperCase()})${atLabel(captureAt)}${
        o.trainFractions && apShare < 1 ? ` (${Math.round(apShare * 1000) / 10}% of train)` : ""
      }`,
      params: ap.params,
      share: ap.params / bertParams,
      metrics: columns(ap.devBySplit!.map((d) => d.metrics)),
    },
    ...[{ at: captureAt, metrics: ensemble }, ...laterEnsembles].map(({ at, metrics }) => ({
      model: captureAt === epochs
        ? "Ensemble"
        : `Ensemble (BERT ${at} ep + ${apModel.toUpperCase()} ${captureAt} ep)`,
      params: bertParams + ap.params,
      share: 1 + ap.params / bertParams,
      metrics,
    })),
  ];
  const results: Results = {
    task: task.name,
    metricKeys: devMetricKeys(task, devSplits),
    rows,
    stageSeconds,
    adapter: gpu().adapterName,
    model: o.model,
    settings: {
      epochs,
      captureAt,
      batchSize,
      lr: r.bert.values.lr,
      l2: r.bert.values.l2,
      warmupProportion: r.bert.values.warmupProportion,
      patience: r.bert.values.patience,
      preset: !!o.preset,
      maxSeqLength: seq,
      apMaxSeqLength: headSeq,
      earlyStop: r.bert.values.earlyStop,
      biasCorrection: r.bert.values.biasCorrection,
      adamEps: r.bert.values.adamEps,
      maxGradNorm: r.bert.values.maxGradNorm,
      decayBiases: r.bert.values.decayBiases,
      apDecayBiases: r.head.values.decayBiases,
      apEarlyStop: r.head.values.earlyStop,
      seed,
      limit: o.limit ?? null,
      devLimit: o.devLimit ?? null,
      devSplits,
      layout,
      dtype,
      activations: acts.mode,
      apModel,
      adapterDim: headConfig.adapterDim,
      shared: headConfig.shared,
      apEpochs: r.head.values.epochs,
      apLr: r.head.values.lr,
      apL2: r.head.values.l2,
      trainFraction: o.trainFraction ?? HEAD_DEFAULTS.trainFraction,
      trainFractions: o.trainFractions ?? null,
      ...(o.probe ? { probe: true } : {}),
      // Only when mixed (results made before `--precision` existed are float32).
      ...(r.precision.precision === "f16-mixed" ? { precision: r.precision.precision } : {}),
    },
    finished: new Date().toISOString(),
    notes: [...o.notes ?? [], ...layerNotes],
  };
  const files = [...await writeResults(dir, results), ...fractionFiles, ...layerFiles];
  await finishOverwrite(dir);
  return { results, files };
}
