/**
 * Which layers carry the task: a linear probe on each stored layer's features (layer 0 = the
 * embeddings, L = BERT's last), all trained from one read of the store per epoch, and the dev
 * metric per layer as a table and a curve, with BERT's and the BERTVision head's dev scores as
 * lines when given (Tenney et al. 2019; Liu et al. 2019's per-layer probes).
 *
 *   deno task probe --task T --h5 TRAIN.h5 --dev-h5 DEV.h5 --out DIR [--pool cls|mean]
 *     [--bert-score X] [--ap-score X | --ap-head DIR] [--shard I/N] [--epochs E] [--lr LR]
 *     [--precision f32|f16-mixed]
 *   deno task probe --task T --activations stream --bert CKPT --data-dir D --out DIR [...]
 *
 * With `--activations stream` no store is read: the frozen checkpoint computes each batch's
 * hidden states once for every layer's probe (and the dev rows once), pooled on the GPU as the
 * stores are pooled on the host, so the probes equal those trained on float32 stores captured
 * from the same checkpoint and rows (train/heads/probe_stream_test.ts).
 * Writes DIR/layer-K/ per layer (head, log, dev logits, results.json last) and DIR/probe.json,
 * probe.md, probe.svg. A rerun keeps the layers finished with the same settings; `--shard I/N`
 * trains a contiguous share of the layers (array jobs), the same command without it then draws.
 * `--pool mean` averages each layer over the real tokens: it needs a full-layout store. Span
 * tasks (SQuAD) probe every token, scored by EM/F1 with `--dev-file` (the dev store's source
 * file), else by start/end token accuracy. Expected: the dev metric rises with depth on a fine-tuned
 * BERT, the last layers near the BERTVision head; costs about one head's training (the store is
 * read once per epoch, the probes are a Linear each). `--precision` as for a head (f16-mixed
 * preset on a hardware GPU with shader-f16, float32 on software adapters, else the probes found in
 * DIR); a rerun with the other precision is refused, naming it.
 * @module
 */
import { parseShard } from "../data/shard.ts";
import { trainProbes } from "../train/heads/probe.ts";
import { outputOptions, parseCommand, runMain, streamOptions } from "./_cli.ts";

if (import.meta.main) {
  await runMain("probe", async () => {
    const { mode, values: v } = parseCommand("probe", Deno.args);
    const stream = mode === "probe:stream"
      ? streamOptions(v, (v["dev-split"] as string | undefined)?.split(",").map((x) => x.trim()))
      : undefined;
    if (v["ap-score"] !== undefined && v["ap-head"] !== undefined) {
      throw new Error(`give the head's line with --ap-score or with --ap-head, not both`);
    }
    const n = (name: string) => v[name] as number | undefined;
    const r = await trainProbes({
      ...outputOptions(v),
      task: v.task as string,
      trainH5: v.h5 as string,
      devH5: v["dev-h5"] as string[],
      outDir: v.out as string,
      stream,
      devFile: stream ? undefined : v["dev-file"] as string | undefined,
      pool: v.pool as "cls" | "mean" | undefined,
      batchSize: n("batch-size"),
      epochs: n("epochs"),
      lr: n("lr"),
      l2: n("l2"),
      seed: n("seed"),
      dataSeed: n("data-seed"),
      bertScore: n("bert-score"),
      apScore: n("ap-score"),
      apHead: v["ap-head"] as string | undefined,
      precision: v.precision as "f32" | "f16-mixed" | undefined,
      shard: v.shard === undefined ? undefined : parseShard(v.shard as string),
    });
    for (const p of r.probes) p.head.dispose();
    if (r.files.length) console.log(await Deno.readTextFile(r.files[1]));
  });
}
