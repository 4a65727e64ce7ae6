/**
 * glue (and squad): the seed's two training commands in one.
 *
 * ```
 * # 1. fine-tune BERT (python -m models.sst --dataset SST ... --lr 1e-5)
 * deno task glue --task sst2 --model bert --bert bert-base-uncased --data-dir glue_data \
 *   --save-at 0.3,1 --out runs/sst2-bert
 * # 2. train the adapter-pooler on captured activations (python -m models.ap_sst --dataset SSTH5)
 * deno task glue --dataset SSTH5 --h5 train.h5 --dev-h5 dev.h5 --out runs/sst2-ap
 * ```
 * Settings not given are the task's preset: the seed's command for it (train/presets.ts, README
 * "The seed's settings"; here batch 16, 1 epoch, lr 1e-5, l2 0.01, seed 1, warmup 0.1, patience
 * 3, and the AP adapter size = the store's token count); `--dry-run` shows each value and where
 * it came from, and explicit flags override.
 * `--model bert` fine-tunes (checkpoints, dev metrics and dev logits per checkpoint, resumable);
 * MNLI evaluates dev_matched and dev_mismatched and reports both (`MNLI-m`, `MNLI-mm`);
 * `--dev-split` picks the dev splits (MRPC `msr_test`: the MSR test file the seed evaluated on);
 * `--model ap|lp|avg` (or the seed's `--dataset ...H5`) trains a BERTVision head from HDF5 files
 * written by `deno task capture`, or with `--activations stream --bert CKPT --data-dir D` from
 * hidden states the checkpoint computes on the fly (no disk). `--dry-run` prints the plan and
 * writes nothing. Flags and defaults: `deno task glue --help`, README "Flags".
 * `--train-fractions 0.1,0.3,1` trains one head per share of the training rows (nested seeded
 * subsets, OUT/fraction-F each) from one pass over the data, and writes the less-data table and
 * curve (OUT/fractions.{json,md,svg}; README "Less training data"); a rerun skips finished
 * fractions.
 *
 * What the seed reported with these settings (BERT-base uncased; its table, not a number this
 * implementation has reproduced): SST-2 BERT 0.9163, AP 0.9128 accuracy. Cost on one GPU: BERT-base fine-tuning is one pass over the training set
 * (SST-2: 67,349 examples); the AP head trains in seconds to minutes from the HDF5 file.
 * @module
 */
import {
  optimizerOptions,
  outputOptions,
  parseCommand,
  rowSourceOptions,
  runMain,
  squadSettings,
  streamOptions,
  tuneKernels,
  UsageError,
} from "./_cli.ts";
import { resolveSettings } from "../train/presets.ts";
import { FINETUNE_DEFAULTS } from "../train/defaults.ts";
import { getTask, mergeDevMetrics } from "../tasks/mod.ts";
import { dryRunModel, resolveModel } from "../model/checkpoint.ts";
import type { Pooling } from "../model/heads.ts";
import { fineTune, planFineTune } from "../train/finetune.ts";
import { planHeads, trainAp, type TrainApOptions } from "../train/heads/mod.ts";
import { removeHeadFiles } from "../train/heads/output.ts";
import { planFractions, trainFractions } from "../train/heads/fractions.ts";
import { parseShard } from "../data/shard.ts";
import { formatPlan } from "../train/plan.ts";
import {
  acquireLock,
  finishOverwrite,
  readOverwrite,
  removePaths,
  resumeOverwrite,
  startOverwrite,
} from "../data/output/mod.ts";

/** Parses and runs one glue/squad command (`command` is "glue" or "squad"). */
export async function main(args: string[], command = "glue"): Promise<void> {
  const { mode, values: v } = parseCommand(command, args);
  await tuneKernels();
  const task = v.task as string;
  const n = (name: string) => v[name] as number | undefined;
  const s = (name: string) => v[name] as string | undefined;
  const devSplits = s("dev-split")?.split(",").map((x) => x.trim());
  // Every dev split's metrics as report columns (MNLI: MNLI-m, MNLI-mm; one split: as they are).
  const columns = (ds: { split: string; metrics: Record<string, number> }[]) =>
    mergeDevMetrics(getTask(task), ds.map((d) => [d.split, d.metrics] as const));
  if (v["dry-run"] && (mode === "glue:bert" || s("bert") !== undefined)) {
    // A dry run downloads nothing: a hub id is planned from the cache, or said unsizable.
    const model = await dryRunModel(s("bert") ?? "bert-base-uncased");
    if (model === null) return;
    v.bert = model;
  }
  if (devSplits && s("dev-file")) {
    throw new UsageError(
      `give --dev-split (splits under --data-dir) or --dev-file (one file), not both`,
    );
  }
  const common = {
    batchSize: n("batch-size"),
    epochs: n("epochs"),
    lr: n("lr"),
    l2: n("l2"),
    warmupProportion: n("warmup-proportion"),
    seed: n("seed"),
    patience: n("patience"),
    ...optimizerOptions(v),
    precision: s("precision") as "f32" | "f16-mixed" | undefined,
    preset: true, // settings not given: the task's seed preset (train/presets.ts)
    ...outputOptions(v),
  };
  if (mode === "glue:bert") {
    const ft = {
      ...common,
      ...rowSourceOptions(v),
      // The training settings resolved here, once: given, else the task's preset.
      settings: resolveSettings(task, "bert", common, true, FINETUNE_DEFAULTS),
      modelDir: await resolveModel(s("bert") ?? "bert-base-uncased"),
      task,
      dataDir: s("data-dir")!,
      trainSplit: s("train-file"),
      devSplit: s("dev-file"),
      devSplits,
      outDir: s("out") ?? `runs/${task}-bert`,
      saveAt: v["save-at"] as number[] | undefined,
      devLimit: n("dev-limit"),
    };
    if (v["dry-run"]) {
      console.log(formatPlan(await planFineTune(ft)));
      return;
    }
    const r = await fineTune(ft);
    const out = {
      task,
      model: "bert",
      checkpoints: r.checkpoints,
      dev: Object.fromEntries(Object.entries(r.devBySplit).map(([at, ds]) => [at, columns(ds)])),
      steps: r.steps,
      settings: r.settings,
      ...(r.earlyStop ? { earlyStop: r.earlyStop } : {}),
      wallSeconds: r.wallSeconds,
    };
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  if (mode === "glue:head" && n("num-workers") !== undefined) {
    // The seed's flag (its DataLoader workers): a head reads its stores in this process.
    console.error(`${command}: --num-workers ${n("num-workers")}: unused by a head on stores`);
  }
  const model = (v.model as Pooling | undefined) ?? "ap";
  const stream = mode === "glue:stream" ? streamOptions(v, devSplits) : undefined;
  // Early stopping counts dev evaluations: a head trained from stores needs a dev store for it.
  if (mode === "glue:head" && n("patience") && !v["dev-h5"]) {
    throw new UsageError(
      `--patience ${n("patience")} stops on dev evaluations: give --dev-h5 (or --patience 0)`,
    );
  }
  // A SQuAD head's dev store holds windows, not questions: its answers need the file it came from.
  if (
    mode === "glue:head" && v["dev-h5"] && !s("dev-file") &&
    getTask(task).format === "squad-json"
  ) {
    throw new UsageError(
      `--dev-h5 of ${task}: give --dev-file DEV.json, the file the store was captured from ` +
        `(its answers are scored by the official EM/F1 and written to predictions.json)`,
    );
  }
  const head: TrainApOptions = {
    ...common,
    trainH5: s("h5"),
    devH5: v["dev-h5"] as string[] | undefined,
    squad: squadSettings(v),
    stream,
    task,
    model,
    adapterDim: n("adapter-dim"),
    shared: !v["no-shared"],
    skip: !!v.skip,
    trainFraction: n("train-fraction"),
    dataSeed: n("data-seed"),
    layout: v.layout as "full" | "cls" | undefined,
    outDir: s("out") ?? `runs/${task}-${model}`,
    devFile: mode === "glue:head" ? s("dev-file") : undefined,
    devModel: mode === "glue:head" ? s("bert") : undefined,
  };
  const fractions = v["train-fractions"] as number[] | undefined;
  if (fractions && n("train-fraction") !== undefined) {
    throw new UsageError(
      `give --train-fraction (one head) or --train-fractions (a curve), not both`,
    );
  }
  if (!fractions && v.shard !== undefined) {
    throw new UsageError(
      `--shard on ${command} splits a --train-fractions sweep between array tasks: give that ` +
        `too (capture takes --shard for activations)`,
    );
  }
  if (!fractions && n("bert-score") !== undefined) {
    throw new UsageError(`--bert-score is the line of the --train-fractions curve: give that too`);
  }
  if (fractions) {
    // The less-data curve: one head per fraction in OUT/fraction-F, the table and the SVG in OUT.
    const sweep = {
      ...head,
      fractions,
      bertScore: n("bert-score"),
      shard: v.shard === undefined ? undefined : parseShard(v.shard as string),
    };
    if (v["dry-run"]) {
      console.log(formatPlan(await planFractions(sweep)));
      return;
    }
    // Unsharded, --overwrite marks the old curve invalid before removing it (a sharded sweep's
    // array tasks share the folder: each replaces only its own heads, as before).
    const overwriting = !sweep.shard &&
      await overwriteOutput(head.outDir!, !!head.overwrite, "glue --overwrite", removeCurve);
    const r = await trainFractions({ ...sweep, overwrite: sweep.overwrite || overwriting });
    if (overwriting) await finishOverwrite(head.outDir!);
    for (const h of r.heads) h.head.dispose();
    console.log(JSON.stringify(
      {
        task,
        model,
        fractions: r.curve.points,
        bert: r.curve.references,
        files: r.files,
      },
      null,
      2,
    ));
    return;
  }
  if (v["dry-run"]) {
    console.log(formatPlan(await planHeads(head)));
    return;
  }
  // --overwrite marks the old head invalid before removing it; a rerun continues that.
  const outDir = head.outDir!;
  const overwriting = await overwriteOutput(
    outDir,
    !!head.overwrite,
    "glue --overwrite",
    removeHeadFiles,
  );
  const r = await trainAp({ ...head, overwrite: head.overwrite || overwriting });
  if (overwriting) await finishOverwrite(outDir);
  const out = {
    task,
    model,
    params: r.params,
    paramReport: r.paramReport,
    dev: r.devBySplit && columns(r.devBySplit),
    predictions: r.devBySplit?.[0].predictionsPath,
    naProbs: r.devBySplit?.[0].naProbsPath,
    head: r.headPath,
    settings: { ...r.settings, adapterDim: r.head.config.adapterDim },
    ...(r.earlyStop ? { earlyStop: r.earlyStop } : {}),
    wallSeconds: r.wallSeconds,
  };
  r.head.dispose();
  console.log(JSON.stringify(out, null, 2));
}

/** A less-data curve's files (fractions.json first) and its heads' folders. */
async function removeCurve(dir: string): Promise<void> {
  const heads: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory && e.name.startsWith("fraction-")) heads.push(`${dir}/${e.name}`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await removePaths(["json", "md", "svg"].map((x) => `${dir}/fractions.${x}`));
  for (const h of heads.sort()) await removeHeadFiles(h); // each head's results.json first
  await removePaths(heads);
}

/**
 * Starts (`--overwrite`) or continues (a rerun of an interrupted one) the overwrite of a head's
 * or a curve's directory, under its lock (data/output/overwrite.ts); whether one is under way.
 */
async function overwriteOutput(
  dir: string,
  overwrite: boolean,
  command: string,
  remove: (dir: string) => Promise<void>,
): Promise<boolean> {
  if (!overwrite && !(await readOverwrite(dir))) return false;
  const lock = acquireLock(dir, "dir");
  try {
    if (overwrite) await startOverwrite(dir, command, () => remove(dir));
    else await resumeOverwrite(dir, () => remove(dir));
  } finally {
    lock.release();
  }
  return true;
}

if (import.meta.main) await runMain("glue", () => main(Deno.args));
