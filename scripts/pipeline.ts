/**
 * The whole BERTVision reproduction for one task, as library calls: fine-tune BERT → capture its
 * hidden states on train and dev → train the adapter-pooler on them → evaluate both → ensemble →
 * `results.json`, `results.md` and `chart.svg`. Every stage resumes: rerunning the same command
 * after an interruption continues where it stopped (fine-tuning from its last checkpoint,
 * capture after its last complete chunk).
 * @module
 */
import { resolveModel } from "../model/checkpoint.ts";
import { fineTune } from "../model/finetune.ts";
import { capture } from "../model/capture.ts";
import { loadCaptureInputs } from "../model/capture.ts";
import { type SpanMetricsFn, trainAp } from "../model/ap_train.ts";
import { ensembleClassification, ensembleRegression, ensembleSpan } from "../model/ensemble.ts";
import { type Pooling } from "../model/heads.ts";
import { gpu, initGpu } from "../model/tensor.ts";
import { decodeNpy } from "../data/npy.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { type ResultRow, type Results, writeResults } from "../data/report.ts";
import { evaluateSquad, getTask, isGlueTask, squadPostprocess } from "../tasks/mod.ts";
import { splitSpanLogits } from "../model/ap_train.ts";

/** Options of {@linkcode reproduce}; the seed's flags keep their meaning. */
export interface ReproduceOptions {
  task: string;
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
  const task = getTask(o.task);
  const span = task.kind === "span";
  const dir = `${o.out ?? "results"}/${task.name}`;
  const modelDir = await resolveModel(o.model);
  const seq = o.maxSeqLength ?? (span ? 384 : 128);
  const seed = o.seed ?? 42;
  const stageSeconds: Record<string, number> = {};
  const log = (s: string) => o.silent || console.error(s);
  const timed = async <T>(name: string, f: () => T | Promise<T>): Promise<T> => {
    const t0 = performance.now();
    log(`== ${name}`);
    const r = await f();
    stageSeconds[name] = (performance.now() - t0) / 1000;
    return r;
  };
  const epochs = o.epochs ?? 1;
  const captureAt = o.captureAt ?? epochs;
  if (!(captureAt > 0 && captureAt <= epochs)) {
    throw new RangeError(`--capture-at ${captureAt} must be within (0, --epochs ${epochs}]`);
  }

  const ft = await timed("fine-tune BERT", () =>
    fineTune({
      modelDir,
      task: task.name,
      dataDir: o.dataDir,
      outDir: `${dir}/bert`,
      trainSplit: o.trainFile,
      devSplit: o.devFile,
      batchSize: o.batchSize ?? 16,
      epochs,
      saveAt: [...new Set([captureAt, epochs])],
      lr: o.lr ?? 2e-5,
      l2: o.l2 ?? 0.01,
      warmupProportion: o.warmupProportion ?? 0.1,
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

  const layout = o.layout ?? "full";
  const dtype = o.dtype ?? "f32";
  const h5 = (split: string) => `${dir}/activations/${split}_${layout}_${dtype}.h5`;
  for (
    const [split, file, limit] of [["train", o.trainFile, o.limit], [
      task.devSplits[0],
      o.devFile,
      o.devLimit,
    ]] as const
  ) {
    await timed(`capture ${split}`, () =>
      capture({
        model: ckpt,
        task: task.name,
        split,
        dataDir: o.dataDir,
        dataFile: file,
        out: h5(split),
        layout,
        dtype,
        maxSeqLength: seq,
        batchSize: o.batchSize ?? 16,
        limit,
        numWorkers: o.numWorkers,
        silent: o.silent,
      }));
  }

  // The dev rows as captured: labels for the ensemble's metrics and, for SQuAD, the windows and
  // offset maps that post-process AP and ensemble logits.
  const devRows = await loadCaptureInputs({
    task: task.name,
    split: task.devSplits[0],
    dataDir: o.dataDir,
    dataFile: o.devFile,
    tokenizer: await loadTokenizer(ckpt),
    maxSeqLength: seq,
    limit: o.devLimit,
  });
  const squadDev = devRows.squad;
  const spanMetrics: SpanMetricsFn | undefined = span
    ? ({ start, end }) => squadMetrics(squadDev!, start, end)
    : undefined;

  const ap = await timed("train BERTVision head", () =>
    trainAp({
      trainH5: h5("train"),
      devH5: h5(task.devSplits[0]),
      task: task.name,
      model: o.apModel ?? "ap",
      adapterDim: o.adapterDim,
      shared: o.shared ?? true,
      skip: o.skip ?? false,
      batchSize: o.apBatchSize ?? o.batchSize ?? 16,
      epochs: o.apEpochs ?? 1,
      lr: o.apLr ?? 1e-3,
      seed,
      trainFraction: o.trainFraction ?? 1,
      outDir: `${dir}/ap`,
      layout,
      bertParams: ft.bertParams,
      spanMetrics,
      silent: o.silent,
    }));
  const apLogits = decodeNpy(await Deno.readFile(ap.devLogitsPath!), ap.devLogitsPath!);
  const adapterDim = ap.head.config.adapterDim;
  ap.head.dispose();
  if (apLogits.data.length !== bertLogits.data.length) {
    throw new Error(
      `ensemble: AP dev logits [${apLogits.shape}] and BERT dev logits [${bertLogits.shape}] ` +
        `cover different rows; were both made from the same dev split and --dev-limit?`,
    );
  }

  const ensemble = await timed("ensemble", () => {
    const a = apLogits.data as Float32Array, b = bertLogits.data as Float32Array;
    if (span) {
      const n = apLogits.shape[0], T = apLogits.shape[1];
      const e = ensembleSpan(splitSpanLogits(a, n, T), splitSpanLogits(b, n, T));
      return squadMetrics(squadDev!, e.start, e.end);
    }
    if (!isGlueTask(task)) throw new Error("unreachable");
    const preds = task.kind === "regression"
      ? ensembleRegression(a, b)
      : ensembleClassification(a, b, devRows.n, task.numLabels).preds;
    return task.metrics(preds, devRows.labels);
  });

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
      model: `BERTVision (${(o.apModel ?? "ap").toUpperCase()})${atLabel(captureAt)}`,
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
  const metricKeys = span
    ? ["exact", "f1", "HasAns_exact", "NoAns_exact"]
    : Object.keys(bertDev).sort((
      x,
      y,
    ) => (x === task.primaryMetric ? -1 : y === task.primaryMetric ? 1 : 0));
  const results: Results = {
    task: task.name,
    metricKeys,
    rows,
    stageSeconds,
    adapter: gpu().adapterName,
    model: o.model,
    settings: {
      epochs,
      captureAt,
      batchSize: o.batchSize ?? 16,
      lr: o.lr ?? 2e-5,
      l2: o.l2 ?? 0.01,
      maxSeqLength: seq,
      seed,
      limit: o.limit ?? null,
      devLimit: o.devLimit ?? null,
      layout,
      dtype,
      apModel: o.apModel ?? "ap",
      adapterDim,
      shared: o.shared ?? true,
      apEpochs: o.apEpochs ?? 1,
      apLr: o.apLr ?? 1e-3,
      trainFraction: o.trainFraction ?? 1,
    },
    finished: new Date().toISOString(),
    notes: o.notes ?? [],
  };
  const files = await writeResults(dir, results);
  return { results, files };
}

/** SQuAD EM/F1 of per-feature start/end logits, through the official post-processing. */
function squadMetrics(
  squad: NonNullable<Awaited<ReturnType<typeof loadCaptureInputs>>["squad"]>,
  start: ArrayLike<number>[],
  end: ArrayLike<number>[],
): Record<string, number> {
  const pp = squadPostprocess(squad.examples, squad.features, start, end);
  const gold = squad.examples.map((e) => ({
    id: e.id,
    answers: e.isImpossible ? [] : e.answers.map((a) => a.text),
  }));
  return evaluateSquad(gold, pp.predictions, {
    naProbs: pp.nullOdds,
    warn: () => {},
  }) as unknown as Record<
    string,
    number
  >;
}
