/**
 * The resolution and plan of a BERTVision reproduction (train/reproduce.ts runs it): its
 * options ({@linkcode ReproduceOptions}), the one resolution of them that the run and its plan
 * share ({@linkcode resolveRun}), the store-or-stream choice for the activations
 * ({@linkcode chooseActivations}), and the printed plan ({@linkcode planReproduce},
 * `reproduce --dry-run`). Writes nothing.
 * @module
 */
import { loadBertCheckpoint, resolveModel } from "../model/checkpoint.ts";
import { fmtBytes } from "../kernels/device.ts";
import { type Pooling } from "../model/heads.ts";
import { gpu, initGpu } from "../model/tensor.ts";
import { kindOf, pickDevSplits, resolveTask, type Task } from "../tasks/mod.ts";
import { type FineTuneOptions, planFineTune } from "./finetune.ts";
import { captureMemory, captureRowBytes } from "./capture.ts";
import { checkFractions } from "../data/batches.ts";
import { rowNotes, RowsCache } from "./rows.ts";
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
export const rowsDir = (dir: string) => `${dir}/.rows`;

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
export async function resolveRun(o: ReproduceOptions) {
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
  const devSplits = pickDevSplits(task, {
    only: o.devFile !== undefined ? task.devSplits[0] : undefined,
    asked: o.devSplits,
    seed: preset?.devSplits?.value,
  });
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
export async function chooseActivations(
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
