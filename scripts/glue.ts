/**
 * glue (and squad): the seed's two training commands in one.
 *
 * ```
 * # 1. fine-tune BERT (python -m models.sst --dataset SST ...)
 * deno task glue --task sst2 --model bert --bert bert-base-uncased --data-dir glue_data \
 *   --batch-size 16 --epochs 1 --lr 2e-5 --l2 0.01 --save-at 0.3,1 --out runs/sst2-bert
 * # 2. train the adapter-pooler on captured activations (python -m models.ap_sst --dataset SSTH5)
 * deno task glue --task sst2 --model ap --h5 train.h5 --dev-h5 dev.h5 --adapter-dim 32 \
 *   --batch-size 16 --epochs 1 --lr 1e-3 --out runs/sst2-ap
 * ```
 * `--model bert` fine-tunes (checkpoints, dev metrics and dev logits per checkpoint, resumable);
 * `--model ap|lp|avg` trains a BERTVision head from HDF5 files written by `deno task capture`.
 *
 * Expected result (BERT-base uncased, 1 epoch, batch 16; the seed's table): SST-2 BERT 0.9163,
 * AP 0.9128 accuracy. Cost on one GPU: BERT-base fine-tuning is one pass over the training set
 * (SST-2: 67,349 examples); the AP head trains in seconds to minutes from the HDF5 file.
 * @module
 */
import {
  choice,
  num,
  numList,
  parseFlags,
  required,
  runMain,
  tuneKernels,
  UsageError,
} from "./_cli.ts";
import { resolveModel } from "../model/checkpoint.ts";
import { fineTune } from "../model/finetune.ts";
import { trainAp } from "../model/ap_train.ts";
import { TASK_NAMES } from "../tasks/types.ts";

const USAGE = `usage: deno task glue --task T --model bert|ap|lp|avg [flags]
  T: ${TASK_NAMES.join(" ")}   (--dataset is accepted as an alias of --task)
  common:      --batch-size 16 --epochs 1 --lr (bert 2e-5, heads 1e-3) --l2 (bert 0.01, heads 0)
               --warmup-proportion 0.1 --seed 42 --out DIR --quiet
               --num-workers N (parallel tokenization workers)
  --model bert --bert M (dir or hub id; bert-base-uncased) --data-dir D [--max-seq-length 128|384]
               [--save-at 0.3,1] [--limit N] [--dev-limit N] [--train-file F] [--dev-file F]
  --model ap   --h5 TRAIN.h5 [--dev-h5 DEV.h5] [--adapter-dim 32] [--no-shared] [--skip]
               [--train-fraction 1] [--layout full|cls]`;

const SPEC = {
  task: { type: "string" },
  dataset: { type: "string" },
  model: { type: "string" },
  bert: { type: "string" },
  "data-dir": { type: "string" },
  "train-file": { type: "string" },
  "dev-file": { type: "string" },
  out: { type: "string" },
  "batch-size": { type: "string" },
  epochs: { type: "string" },
  lr: { type: "string" },
  l2: { type: "string" },
  "warmup-proportion": { type: "string" },
  seed: { type: "string" },
  "max-seq-length": { type: "string" },
  "save-at": { type: "string" },
  limit: { type: "string" },
  "dev-limit": { type: "string" },
  "num-workers": { type: "string" },
  h5: { type: "string" },
  "dev-h5": { type: "string" },
  "adapter-dim": { type: "string" },
  "no-shared": { type: "boolean" },
  skip: { type: "boolean" },
  "train-fraction": { type: "string" },
  layout: { type: "string" },
  quiet: { type: "boolean" },
} as const;

/** Parses and runs one glue/squad command; `forcedTask` is set by `deno task squad`. */
export async function main(args: string[], forcedTask?: string): Promise<void> {
  const v = parseFlags(args, SPEC, USAGE);
  await tuneKernels();
  const task = forcedTask ?? (v.task ?? v.dataset) as string | undefined;
  if (!task) throw new UsageError(`missing --task\n${USAGE}`);
  const model = choice(v, "model", ["bert", "ap", "lp", "avg"] as const, "bert");
  const common = {
    batchSize: num(v, "batch-size", { min: 1, int: true }),
    epochs: num(v, "epochs", { min: 1e-6 }),
    lr: num(v, "lr", { min: 0 }),
    l2: num(v, "l2", { min: 0 }),
    warmupProportion: num(v, "warmup-proportion", { min: 0, max: 1 }),
    seed: num(v, "seed", { int: true }),
    silent: !!v.quiet,
  };
  const numWorkers = num(v, "num-workers", { min: 0, int: true });
  if (model === "bert") {
    required(v, ["data-dir"], USAGE);
    const r = await fineTune({
      ...common,
      modelDir: await resolveModel((v.bert as string) ?? "bert-base-uncased"),
      task,
      dataDir: v["data-dir"] as string,
      trainSplit: v["train-file"] as string | undefined,
      devSplit: v["dev-file"] as string | undefined,
      outDir: (v.out as string) ?? `runs/${task}-bert`,
      maxSeqLength: num(v, "max-seq-length", { min: 8, int: true }),
      saveAt: numList(v, "save-at"),
      limit: num(v, "limit", { min: 1, int: true }),
      devLimit: num(v, "dev-limit", { min: 1, int: true }),
      numWorkers,
    });
    console.log(
      JSON.stringify(
        {
          task,
          model,
          checkpoints: r.checkpoints,
          dev: r.dev,
          steps: r.steps,
          wallSeconds: r.wallSeconds,
        },
        null,
        2,
      ),
    );
    return;
  }
  required(v, ["h5"], USAGE);
  const r = await trainAp({
    ...common,
    trainH5: v.h5 as string,
    devH5: v["dev-h5"] as string | undefined,
    task,
    model,
    adapterDim: num(v, "adapter-dim", { min: 1, int: true }),
    shared: !v["no-shared"],
    skip: !!v.skip,
    trainFraction: num(v, "train-fraction", { min: 1e-9, max: 1 }),
    layout: v.layout ? choice(v, "layout", ["full", "cls"] as const, "full") : undefined,
    outDir: (v.out as string) ?? `runs/${task}-${model}`,
  });
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

if (import.meta.main) await runMain(() => main(Deno.args));
