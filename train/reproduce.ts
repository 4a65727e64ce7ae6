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
import { readBertConfig } from "../model/checkpoint.ts";
import { gpu } from "../model/tensor.ts";
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
import { devMetricKeys, mergeDevMetrics, resolveTask } from "../tasks/mod.ts";
import { fineTune } from "./finetune.ts";
import { capture } from "./capture.ts";
import { trainAp, type TrainApOptions } from "./heads/mod.ts";
import { trainFractions } from "./heads/fractions.ts";
import { trainProbes } from "./heads/probe.ts";
import { ablateHead } from "./heads/ablate.ts";
import { ablationSummary, probeSummary } from "../report/layers.ts";
import { ensembleScores } from "./ensemble.ts";
import { RowsCache, type SplitRows } from "./rows.ts";
import { HEAD_DEFAULTS } from "./defaults.ts";
import { squadRowsFor } from "./squad_settings.ts";
import { storeBytes } from "./plan.ts";
import {
  chooseActivations,
  planReproduce,
  type ReproduceOptions,
  resolveRun,
  rowsDir,
} from "./reproduce_plan.ts";

/** The options and plan of a reproduction (train/reproduce_plan.ts), where callers import them. */
export { planReproduce, type ReproduceOptions };

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
