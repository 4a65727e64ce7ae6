/**
 * reproduce: one task's whole BERTVision pipeline — fine-tune BERT, capture its hidden states on
 * train and dev, train the adapter-pooler on them, evaluate both, ensemble — and write
 * `results/<task>/results.json`, `results.md` (the seed's table) and `chart.svg`.
 *
 * ```
 * deno task reproduce --task sst2 --model bert-base-uncased --data-dir glue_data
 * deno task reproduce --task squad --model bert-base-uncased --data-dir glue_data --dtype f16
 * ```
 * Expected result (BERT-base uncased, 1 epoch, batch 16): the seed's table, e.g. SST-2 BERT
 * 0.9163 / AP 0.9128 accuracy; MRPC 0.7519 / 0.7820; SQuAD 2.0 EM 70.40 / 70.06. Cost on one GPU:
 * one fine-tuning epoch, two inference passes, and full-layout activations of
 * N·(L+1)·T·H·4 bytes (SST-2 train: 344 GB in f32 — use --dtype f16 and/or --limit on small disks).
 * Rerunning the same command resumes each stage.
 * @module
 */
import { choice, num, parseFlags, required, runMain, tuneKernels } from "./_cli.ts";
import { reproduce } from "./pipeline.ts";
import { resultsMarkdown } from "../data/report.ts";
import { TASK_NAMES } from "../tasks/types.ts";

const USAGE = `usage: deno task reproduce --task T --data-dir D [--model M] [flags]
  T: ${TASK_NAMES.join(" ")}   M: BERT directory or hub id (bert-base-uncased)
  BERT:    --epochs 1 --capture-at E (capture from the checkpoint at E epochs, e.g. 0.3)
           --batch-size 16 --lr 2e-5 --l2 0.01 --warmup-proportion 0.1
           --max-seq-length 128|384 --seed 42 --limit N --dev-limit N
  capture: --layout full|cls --dtype f32|f16
  head:    --ap-model ap|lp|avg --adapter-dim 32 --no-shared --skip --ap-epochs 1 --ap-lr 1e-3
           --train-fraction 1
  files:   --out results --train-file F --dev-file F (SQuAD files outside D/squad/)
  --num-workers N  parallel tokenization workers`;

const SPEC = {
  task: { type: "string" },
  model: { type: "string" },
  "data-dir": { type: "string" },
  "train-file": { type: "string" },
  "dev-file": { type: "string" },
  out: { type: "string" },
  epochs: { type: "string" },
  "capture-at": { type: "string" },
  "batch-size": { type: "string" },
  lr: { type: "string" },
  l2: { type: "string" },
  "warmup-proportion": { type: "string" },
  "max-seq-length": { type: "string" },
  seed: { type: "string" },
  limit: { type: "string" },
  "dev-limit": { type: "string" },
  layout: { type: "string" },
  dtype: { type: "string" },
  "ap-model": { type: "string" },
  "adapter-dim": { type: "string" },
  "no-shared": { type: "boolean" },
  skip: { type: "boolean" },
  "ap-epochs": { type: "string" },
  "ap-lr": { type: "string" },
  "train-fraction": { type: "string" },
  "num-workers": { type: "string" },
  quiet: { type: "boolean" },
} as const;

if (import.meta.main) {
  await runMain(async () => {
    const v = parseFlags(Deno.args, SPEC, USAGE);
    await tuneKernels();
    required(v, ["task", "data-dir"], USAGE);
    const { results, files } = await reproduce({
      task: v.task as string,
      model: (v.model as string) ?? "bert-base-uncased",
      dataDir: v["data-dir"] as string,
      trainFile: v["train-file"] as string | undefined,
      devFile: v["dev-file"] as string | undefined,
      out: v.out as string | undefined,
      epochs: num(v, "epochs", { min: 1e-6 }),
      captureAt: num(v, "capture-at", { min: 1e-6 }),
      batchSize: num(v, "batch-size", { min: 1, int: true }),
      lr: num(v, "lr", { min: 0 }),
      l2: num(v, "l2", { min: 0 }),
      warmupProportion: num(v, "warmup-proportion", { min: 0, max: 1 }),
      maxSeqLength: num(v, "max-seq-length", { min: 8, int: true }),
      seed: num(v, "seed", { int: true }),
      limit: num(v, "limit", { min: 1, int: true }),
      devLimit: num(v, "dev-limit", { min: 1, int: true }),
      layout: choice(v, "layout", ["full", "cls"] as const, "full"),
      dtype: choice(v, "dtype", ["f32", "f16"] as const, "f32"),
      apModel: choice(v, "ap-model", ["ap", "lp", "avg"] as const, "ap"),
      adapterDim: num(v, "adapter-dim", { min: 1, int: true }),
      shared: !v["no-shared"],
      skip: !!v.skip,
      apEpochs: num(v, "ap-epochs", { min: 1e-6 }),
      apLr: num(v, "ap-lr", { min: 0 }),
      trainFraction: num(v, "train-fraction", { min: 1e-9, max: 1 }),
      numWorkers: num(v, "num-workers", { min: 0, int: true }),
      silent: !!v.quiet,
    });
    console.log(resultsMarkdown(results));
    console.log(files.join("\n"));
  });
}
