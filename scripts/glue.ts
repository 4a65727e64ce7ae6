/**
 * glue (and squad): the seed's two training commands in one.
 *
 * ```
 * # 1. fine-tune BERT (python -m models.sst --dataset SST ...)
 * deno task glue --task sst2 --model bert --bert bert-base-uncased --data-dir glue_data \
 *   --batch-size 16 --epochs 1 --lr 2e-5 --l2 0.01 --save-at 0.3,1 --out runs/sst2-bert
 * # 2. train the adapter-pooler on captured activations (python -m models.ap_sst --dataset SSTH5)
 * deno task glue --dataset SSTH5 --h5 train.h5 --dev-h5 dev.h5 --adapter-dim 32 \
 *   --batch-size 16 --epochs 1 --lr 1e-3 --out runs/sst2-ap
 * ```
 * `--model bert` fine-tunes (checkpoints, dev metrics and dev logits per checkpoint, resumable);
 * `--model ap|lp|avg` (or the seed's `--dataset ...H5`) trains a BERTVision head from HDF5 files
 * written by `deno task capture`, or with `--activations stream --bert CKPT --data-dir D` from
 * hidden states the checkpoint computes on the fly (no disk). `--dry-run` prints the plan and
 * writes nothing. Flags and defaults: `deno task glue --help`, README "Flags".
 *
 * Expected result (BERT-base uncased, 1 epoch, batch 16; the seed's table): SST-2 BERT 0.9163,
 * AP 0.9128 accuracy. Cost on one GPU: BERT-base fine-tuning is one pass over the training set
 * (SST-2: 67,349 examples); the AP head trains in seconds to minutes from the HDF5 file.
 * @module
 */
import { parseCommand, runMain, tuneKernels } from "./_cli.ts";
import { resolveModel } from "../model/checkpoint.ts";
import type { Pooling } from "../model/heads.ts";
import { fineTune, planFineTune } from "../train/finetune.ts";
import { planHeads, trainAp, type TrainApOptions } from "../train/ap_train.ts";
import { formatPlan } from "../train/plan.ts";

/** Parses and runs one glue/squad command (`command` is "glue" or "squad"). */
export async function main(args: string[], command = "glue"): Promise<void> {
  const { mode, values: v } = parseCommand(command, args);
  await tuneKernels();
  const task = v.task as string;
  const n = (name: string) => v[name] as number | undefined;
  const s = (name: string) => v[name] as string | undefined;
  const common = {
    batchSize: n("batch-size"),
    epochs: n("epochs"),
    lr: n("lr"),
    l2: n("l2"),
    warmupProportion: n("warmup-proportion"),
    seed: n("seed"),
    breakLock: !!v["break-lock"],
    overwrite: !!v.overwrite,
    silent: !!v.quiet,
  };
  if (mode === "glue:bert") {
    const ft = {
      ...common,
      modelDir: await resolveModel(s("bert") ?? "bert-base-uncased"),
      task,
      dataDir: s("data-dir")!,
      trainSplit: s("train-file"),
      devSplit: s("dev-file"),
      outDir: s("out") ?? `runs/${task}-bert`,
      maxSeqLength: n("max-seq-length"),
      saveAt: v["save-at"] as number[] | undefined,
      limit: n("limit"),
      devLimit: n("dev-limit"),
      numWorkers: n("num-workers"),
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
      dev: r.dev,
      steps: r.steps,
      wallSeconds: r.wallSeconds,
    };
    console.log(JSON.stringify(out, null, 2));
    return;
  }
  const model = (v.model as Pooling | undefined) ?? "ap";
  const stream = mode === "glue:stream"
    ? {
      model: s("bert")!,
      dataDir: s("data-dir"),
      trainFile: s("train-file"),
      devFile: s("dev-file"),
      maxSeqLength: n("max-seq-length"),
      layout: v.layout as "full" | "cls" | undefined,
      limit: n("limit"),
      devLimit: n("dev-limit"),
      numWorkers: n("num-workers"),
    }
    : undefined;
  const head: TrainApOptions = {
    ...common,
    trainH5: s("h5"),
    devH5: s("dev-h5"),
    stream,
    task,
    model,
    adapterDim: n("adapter-dim"),
    shared: !v["no-shared"],
    skip: !!v.skip,
    trainFraction: n("train-fraction"),
    layout: v.layout as "full" | "cls" | undefined,
    outDir: s("out") ?? `runs/${task}-${model}`,
  };
  if (v["dry-run"]) {
    console.log(formatPlan(await planHeads(head)));
    return;
  }
  const r = await trainAp(head);
  const out = {
    task,
    model,
    params: r.params,
    paramReport: r.paramReport,
    dev: r.devMetrics,
    head: r.headPath,
    wallSeconds: r.wallSeconds,
  };
  r.head.dispose();
  console.log(JSON.stringify(out, null, 2));
}

if (import.meta.main) await runMain("glue", () => main(Deno.args));
