/**
 * reproduce: one task's whole BERTVision pipeline — fine-tune BERT, capture its hidden states on
 * train and dev, train the adapter-pooler on them, evaluate both, ensemble — and write
 * `results/<task>/results.json`, `results.md` (the seed's table) and `chart.svg`.
 *
 * ```
 * deno task reproduce --task sst2 --model bert-base-uncased --data-dir glue_data
 * deno task reproduce --task squad --model bert-base-uncased --data-dir glue_data --dtype f16
 * ```
 * Every setting not given is the task's preset, the seed's own command for it (train/presets.ts,
 * README "The seed's settings": batch 16, 1 epoch, the task's lr and l2 for BERT and the head,
 * seed 1, warmup 0.1, patience 3, AP adapter size = --max-seq-length); `--dry-run` shows each
 * value and where it came from. What the seed reported with them (BERT-base uncased; its table,
 * not a number this implementation has reproduced): e.g. SST-2 BERT 0.9163 / AP 0.9128
 * accuracy; MRPC 0.7519 / 0.7820; SQuAD 2.0 EM 70.40 / 70.06. Cost on one GPU:
 * one fine-tuning epoch, two inference passes, and full-layout activations of
 * N·(L+1)·T·H·4 bytes (SST-2 train: 344 GB in f32 — use --dtype f16 and/or --limit on small disks).
 * Rerunning the same command resumes each stage. `--train-fractions 0.1,0.3,1` adds the paper's
 * less-data curve: one head per share of the training rows from one pass, the table and the SVG
 * against BERT's dev score in `results/<task>/fractions/` (README "Less training data"). `--probe`
 * adds which layers carry the task: a linear probe per stored layer (`results/<task>/probe/`) and
 * the head's layer ablation (`ablate.*` in its directory), README "Which layers carry the task".
 * @module
 */
import {
  optimizerOptions,
  outputOptions,
  parseCommand,
  rowSourceOptions,
  runMain,
  tuneKernels,
  UsageError,
} from "./_cli.ts";
import { planReproduce, reproduce, type ReproduceOptions } from "../train/reproduce.ts";
import type { Pooling } from "../model/heads.ts";
import { resultsMarkdown } from "../report/report.ts";
import { dryRunModel } from "../model/checkpoint.ts";

/**
 * The options of a `reproduce` command line (what its flags give; the task's preset fills the
 * rest), and whether it is a dry run. Refuses conflicting flags.
 */
export function reproduceOptions(args: string[]): { opts: ReproduceOptions; dryRun: boolean } {
  const { values: v } = parseCommand("reproduce", args);
  const n = (name: string) => v[name] as number | undefined;
  const s = (name: string) => v[name] as string | undefined;
  if (v["train-fractions"] && n("train-fraction") !== undefined) {
    throw new UsageError(
      `give --train-fraction (one head) or --train-fractions (a curve), not both`,
    );
  }
  if (s("dev-split") && s("dev-file")) {
    throw new UsageError(
      `give --dev-split (splits under --data-dir) or --dev-file (one file), not both`,
    );
  }
  const opts: ReproduceOptions = {
    ...outputOptions(v),
    ...rowSourceOptions(v),
    task: v.task as string,
    model: s("model") ?? "bert-base-uncased",
    dataDir: s("data-dir")!,
    trainFile: s("train-file"),
    devFile: s("dev-file"),
    devSplits: s("dev-split")?.split(",").map((x) => x.trim()),
    out: s("out"),
    epochs: n("epochs"),
    captureAt: n("capture-at"),
    batchSize: n("batch-size"),
    lr: n("lr"),
    l2: n("l2"),
    warmupProportion: n("warmup-proportion"),
    seed: n("seed"),
    devLimit: n("dev-limit"),
    precision: s("precision") as "f32" | "f16-mixed" | undefined,
    layout: v.layout as "full" | "cls" | undefined,
    dtype: v.dtype as "f32" | "f16" | undefined,
    apModel: v["ap-model"] as Pooling | undefined,
    adapterDim: n("adapter-dim"),
    shared: v["no-shared"] ? false : undefined,
    skip: v.skip ? true : undefined,
    apEpochs: n("ap-epochs"),
    apLr: n("ap-lr"),
    apL2: n("ap-l2"),
    patience: n("patience"),
    ...optimizerOptions(v),
    apMaxSeqLength: n("ap-max-seq-length"),
    preset: true, // settings not given: the task's seed preset (train/presets.ts)
    trainFraction: n("train-fraction"),
    trainFractions: v["train-fractions"] as number[] | undefined,
    activations: v.activations as "store" | "stream" | undefined,
    probe: !!v.probe,
  };
  return { opts, dryRun: !!v["dry-run"] };
}

if (import.meta.main) {
  await runMain("reproduce", async () => {
    const { opts, dryRun } = reproduceOptions(Deno.args);
    await tuneKernels();
    if (dryRun) {
      // A dry run downloads nothing: a hub id is planned from the cache, or said unsizable.
      const model = await dryRunModel(opts.model);
      if (model === null) return;
      console.log((await planReproduce({ ...opts, model })).text);
      return;
    }
    const { results, files } = await reproduce(opts);
    console.log(resultsMarkdown(results));
    console.log(files.join("\n"));
  });
}
