/**
 * capture: runs a (fine-tuned) BERT over one task split and writes all L+1 hidden states per
 * row to HDF5 in BERTVision's layout (step 2 of its pipeline), for the adapter-pooler models.
 *
 * ```
 * deno task capture --model M --task T --split S --data-dir D --out FILE.h5 \
 *   [--layout full|cls] [--dtype f32|f16] [--max-seq-length 128] [--batch-size 16] [--limit N] \
 *   [--data-file FILE] [--shard I/N|auto/N]
 * ```
 * M: a Hugging Face BERT directory or hub id; D: the GLUE distribution root (D/SST-2/dev.tsv,
 * D/squad/dev-v2.0.json); --data-file reads that split file instead. Flags and defaults:
 * `deno task capture --help`, README "Flags".
 *
 * Expected result: FILE.h5 with `embeds` [N, L+1, T, H] (full) or [N, L+1, H] (cls), the
 * inputs, `labels`, `idx` and attrs naming model, weights hash, task, split; rerunning the same
 * command after an interruption resumes to an identical file. With `--shard I/N` (`auto/N`: I from
 * `SLURM_ARRAY_TASK_ID` or `JOB_COMPLETION_INDEX`) only shard I of the split's rows, to `--out`
 * with `{shard}` replaced by I; the N files read as one store (`--h5 'DIR/train-*.h5'`) and
 * `deno task merge-shards` joins them (README "On a cluster").
 * Cost: BERT-base, SST-2 dev (872 rows), full f32: 872 × 13 × 128 × 768 × 4 B ≈ 4.5 GB on disk;
 * cls f16: 17 MB. Time is one inference pass plus writing (overlapped).
 * @module
 */

import { capture, type CaptureOptions, planCapture } from "../train/capture.ts";
import { outputOptions, parseCommand, rowSourceOptions, runMain, tuneKernels } from "./_cli.ts";
import { parseShard } from "../data/shard.ts";
import { dryRunModel } from "../model/checkpoint.ts";

if (import.meta.main) {
  await runMain("capture", async () => {
    const { values: v } = parseCommand("capture", Deno.args);
    const n = (name: string) => v[name] as number | undefined;
    const stopAfter = n("stop-after-batches"), hangAfter = n("hang-after-batches");
    // Before anything slow: a bad --shard (an array task without its index) fails at once.
    const shard = v.shard === undefined ? undefined : parseShard(v.shard as string);
    await tuneKernels();
    const opts: CaptureOptions = {
      ...outputOptions(v),
      ...rowSourceOptions(v),
      model: v.model as string,
      task: v.task as string,
      split: v.split as string,
      dataFile: v["data-file"] as string | undefined,
      out: v.out as string,
      shard,
      layout: v.layout as "full" | "cls" | undefined,
      dtype: v.dtype as "f32" | "f16" | undefined,
      precision: v.precision as "f32" | "f16-mixed" | undefined,
      batchSize: n("batch-size"),
      ignoreDiskSpace: v["ignore-disk-space"] as boolean | undefined,
      onBatchWritten: stopAfter === undefined && hangAfter === undefined
        ? undefined
        : async (k, rows) => {
          if (k === stopAfter) {
            console.log(`stopped after ${k} batches (${rows} rows done)`);
            Deno.exit(3);
          }
          if (k === hangAfter) {
            // A task to kill mid-run (tests of a cluster's kill and resubmission).
            console.log(`hanging after ${k} batches (${rows} rows done)`);
            await new Promise(() => setInterval(() => {}, 1 << 30));
          }
        },
    };
    if (v["dry-run"]) {
      // A dry run downloads nothing: a hub id is planned from the cache, or said unsizable.
      const model = await dryRunModel(opts.model);
      if (model === null) return;
      console.log(await planCapture({ ...opts, model }));
      return;
    }
    const r = await capture(opts);
    const s = r.settings;
    const a = s.attrs ?? {};
    console.log(
      `wrote ${r.out}: ${r.n} rows × ${s.layers} layers × ` +
        `${
          s.layout === "full" ? `${s.tokens} tokens × ` : ""
        }${s.hidden} (${s.layout}, ${s.dtype})` +
        (shard
          ? `, shard ${shard.index}/${shard.count}: rows ${a.shard_row_start}–` +
            `${Number(a.shard_row_end) - 1} of ${a.total_rows}`
          : "") +
        (r.rowsBefore ? `, resumed at row ${r.rowsBefore}` : "") +
        (r.rowsCaptured
          ? `, ${(r.rowsCaptured / Math.max(r.seconds, 1e-9)).toFixed(1)} rows/s`
          : ", already complete"),
    );
  });
}
