/**
 * The whole BERTVision reproduction for one task, as library calls: fine-tune BERT → capture its
 * hidden states on train and dev → train the adapter-pooler on them → evaluate both → ensemble →
 * `results.json`, `results.md` and `chart.svg`. Every stage resumes: rerunning the same command
 * after an interruption continues where it stopped (fine-tuning from its last checkpoint,
 * capture after its last complete chunk).
 * @module
 */
import { resolveModel } from "../model/checkpoint.ts";
import { type Pooling } from "../model/heads.ts";
import { gpu, initGpu } from "../model/tensor.ts";
import { decodeNpy } from "../data/npy.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { type ResultRow, type Results, writeResults } from "../data/report.ts";
import { kindOf, resolveTask, type Task } from "../tasks/mod.ts";
import { fineTune } from "./finetune.ts";
import { capture } from "./capture.ts";
import { trainAp } from "./ap_train.ts";
import { ensembleScores } from "./ensemble.ts";
import { loadRows } from "./rows.ts";
import { CAPTURE_DEFAULTS, FINETUNE_DEFAULTS, HEAD_DEFAULTS } from "./defaults.ts";

/** Options of {@linkcode reproduce}; the seed's flags keep their meaning. */
export interface ReproduceOptions {
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
  maxSeqLength?: number;
  seed?: number;
  /** Use the first N training / dev examples (smoke runs, the demo). */
  limit?: number;
  devLimit?: number;
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
  apBatchSize?: number;
  trainFraction?: number;
  /** Parallel tokenization workers (the seed's `--num-workers`). */
  numWorkers?: number;
  /** Lines printed under the table. */
  notes?: string[];
  silent?: boolean;
}

/** Runs the reproduction; returns the results and the files written. */
export async function reproduce(
  o: ReproduceOptions,
): Promise<{ results: Results; files: string[] }> {
  await initGpu();
  const task = resolveTask(o.task);
  const kind = kindOf(task);
  const dir = `${o.out ?? "results"}/${task.name}`;
  const modelDir = await resolveModel(o.model);
  const seq = o.maxSeqLength ?? kind.defaultMaxSeqLength;
  const seed = o.seed ?? FINETUNE_DEFAULTS.seed;
  const batchSize = o.batchSize ?? FINETUNE_DEFAULTS.batchSize;
  const stageSeconds: Record<string, number> = {};
  const log = (s: string) => o.silent || console.error(s);
  const timed = async <T>(name: string, f: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    log(`== ${name}`);
    const r = await f();
    stageSeconds[name] = (performance.now() - t0) / 1000;
    return r;
  };
  const epochs = o.epochs ?? FINETUNE_DEFAULTS.epochs;
  const captureAt = o.captureAt ?? epochs;
  if (!(captureAt > 0 && captureAt <= epochs)) {
    throw new RangeError(`--capture-at ${captureAt} must be within (0, --epochs ${epochs}]`);
  }
  const devSplit = task.devSplits[0];

  const ft = await timed("fine-tune BERT", () =>
    fineTune({
      modelDir,
      task,
      dataDir: o.dataDir,
      outDir: `${dir}/bert`,
      trainSplit: o.trainFile,
      devSplit: o.devFile,
      batchSize,
      epochs,
      saveAt: [...new Set([captureAt, epochs])],
      lr: o.lr,
      l2: o.l2,
      warmupProportion: o.warmupProportion,
      maxSeqLength: seq,
      seed,
      limit: o.limit,
      devLimit: o.devLimit,
      numWorkers: o.numWorkers,
      silent: o.silent,
    }));
  if (ft.stepsRun === 0) {
    stageSeconds["fine-tune BERT (found finished)"] = stageSeconds["fine-tune BERT"];
    delete stageSeconds["fine-tune BERT"];
  }
  const label = String(captureAt);
  const ckpt = ft.checkpoints[label];
  const bertDev = ft.dev[label];
  const atLabel = (e: number) => (captureAt === epochs ? "" : ` (${e} ep)`);
  const bertLogits = decodeNpy(
    await Deno.readFile(`${ckpt}/dev_logits.npy`),
    `${ckpt}/dev_logits.npy`,
  );

  const layout = o.layout ?? CAPTURE_DEFAULTS.layout;
  const dtype = o.dtype ?? CAPTURE_DEFAULTS.dtype;
  const h5 = (split: string) => `${dir}/activations/${split}_${layout}_${dtype}.h5`;
  for (
    const [split, file, limit] of [
      ["train", o.trainFile, o.limit],
      [devSplit, o.devFile, o.devLimit],
    ] as const
  ) {
    await timed(`capture ${split}`, () =>
      capture({
        model: ckpt,
        task,
        split,
        dataDir: o.dataDir,
        dataFile: file,
        out: h5(split),
        layout,
        dtype,
        maxSeqLength: seq,
        batchSize,
        limit,
        numWorkers: o.numWorkers,
        silent: o.silent,
      }));
  }

  // The dev rows as captured: labels for the ensemble's metrics and, for SQuAD, the windows and
  // offset maps that turn AP and ensemble logits into answers.
  const devRows = await loadRows(task, {
    split: devSplit,
    dataDir: o.dataDir,
    dataFile: o.devFile,
    tokenizer: await loadTokenizer(ckpt),
    maxSeqLength: seq,
    limit: o.devLimit,
  });

  const apModel = o.apModel ?? HEAD_DEFAULTS.model;
  const ap = await timed("train BERTVision head", () =>
    trainAp({
      trainH5: h5("train"),
      devH5: h5(devSplit),
      task,
      model: apModel,
      adapterDim: o.adapterDim,
      shared: o.shared,
      skip: o.skip,
      batchSize: o.apBatchSize ?? batchSize,
      epochs: o.apEpochs,
      lr: o.apLr,
      seed,
      trainFraction: o.trainFraction,
      outDir: `${dir}/ap`,
      layout,
      bertParams: ft.bertParams,
      devRows,
      silent: o.silent,
    }));
  const apLogits = decodeNpy(await Deno.readFile(ap.devLogitsPath!), ap.devLogitsPath!);
  const headConfig = ap.head.config;
  ap.head.dispose();

  const ensemble = await timed("ensemble", () =>
    ensembleScores(
      task,
      apLogits.data as Float32Array,
      bertLogits.data as Float32Array,
      devRows,
    ).metrics);

  const bertParams = ft.bertParams;
  const rows: ResultRow[] = [
    { model: `BERT${atLabel(captureAt)}`, params: bertParams, share: 1, metrics: bertDev },
    ...(captureAt === epochs ? [] : [{
      model: `BERT${atLabel(epochs)}`,
      params: bertParams,
      share: 1,
      metrics: ft.dev[String(epochs)],
    }]),
    {
      model: `BERTVision (${apModel.toUpperCase()})${atLabel(captureAt)}`,
      params: ap.params,
      share: ap.params / bertParams,
      metrics: ap.devMetrics ?? {},
    },
    {
      model: `Ensemble${atLabel(captureAt)}`,
      params: bertParams + ap.params,
      share: 1 + ap.params / bertParams,
      metrics: ensemble,
    },
  ];
  const results: Results = {
    task: task.name,
    metricKeys: task.reportMetrics,
    rows,
    stageSeconds,
    adapter: gpu().adapterName,
    model: o.model,
    settings: {
      epochs,
      captureAt,
      batchSize,
      lr: o.lr ?? FINETUNE_DEFAULTS.lr,
      l2: o.l2 ?? FINETUNE_DEFAULTS.l2,
      maxSeqLength: seq,
      seed,
      limit: o.limit ?? null,
      devLimit: o.devLimit ?? null,
      layout,
      dtype,
      apModel,
      adapterDim: headConfig.adapterDim,
      shared: headConfig.shared,
      apEpochs: o.apEpochs ?? HEAD_DEFAULTS.epochs,
      apLr: o.apLr ?? HEAD_DEFAULTS.lr,
      trainFraction: o.trainFraction ?? HEAD_DEFAULTS.trainFraction,
    },
    finished: new Date().toISOString(),
    notes: o.notes ?? [],
  };
  const files = await writeResults(dir, results);
  return { results, files };
}
