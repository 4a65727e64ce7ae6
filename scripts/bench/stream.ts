/**
 * Head training from stored activations against streamed ones: examples/s of adapter-pooler
 * training steps whose input comes from a full-layout float32 HDF5 store (`StoreSource`: read,
 * upload) or from BERT computing the hidden states now (`StreamSource`: a forward per batch, no
 * disk). "ours" is the store, `extra.stream` the stream (no peer: TF.js has neither); their ratio
 * is what streaming costs (or saves, where reading is slower than the forward). Tiny BERT on
 * software adapters; BERT-base on GPUs or with `--full`.
 * @module
 */
import type { BertConfig } from "../../model/config.ts";
import { BertModel } from "../../model/bert.ts";
import { BvHead } from "../../model/heads.ts";
import { randomBertWeights } from "../../model/init.ts";
import { backward, initGpu, scope } from "../../model/tensor.ts";
import { H5Store } from "../../data/h5_store.ts";
import { getTask, kindOf } from "../../tasks/mod.ts";
import { captureRows } from "../../train/capture.ts";
import { headConfigFor } from "../../train/heads/mod.ts";
import { type ActivationSource, StoreSource, StreamSource } from "../../train/sources.ts";
import type { SplitRows } from "../../train/rows.ts";
import { type BenchContext, type Section, selected, timeIterations } from "./common.ts";
import { BERT_BASE, BERT_TINY } from "./bert.ts";

function rows(n: number, seq: number, vocab: number): SplitRows {
  let s = 3;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  return {
    n,
    seq,
    inputIds: Int32Array.from(
      { length: n * seq },
      (_, i) => i % seq === 0 ? 101 : 1000 + Math.floor(rand() * (vocab - 1000)),
    ),
    tokenTypeIds: new Int32Array(n * seq),
    attentionMask: new Int32Array(n * seq).fill(1),
    labels: Float64Array.from({ length: n }, (_, i) => i % 2),
    labelWidth: 1,
    idx: Float64Array.from({ length: n }, (_, i) => i),
    nExamples: n,
    split: "train",
    dataFile: "synthetic",
    path: "synthetic",
    hash: "",
  };
}

/** The stream section. */
export const streamSection: Section = {
  name: "stream",
  title: "head training ex/s from a float32 store (ours) and from a stream of BERT's states",
  async run(ctx: BenchContext): Promise<void> {
    await initGpu();
    const big = !ctx.gpu.isFallback || ctx.args.full;
    const [tag, cfg]: [string, BertConfig] = big ? ["base", BERT_BASE] : ["tiny", BERT_TINY];
    const seq = 128, batch = 16, n = ctx.args.quick ? 32 : 128;
    const name = `AP head ${tag} b${batch} s${seq} full`;
    if (!selected(ctx.args, name)) return;
    const kind = kindOf(getTask("sst2"));
    const model = BertModel.fromHost(cfg, randomBertWeights(cfg, 1));
    const data = rows(n, seq, cfg.vocabSize);
    const dir = await Deno.makeTempDir({ prefix: "bench_stream_" });
    const path = `${dir}/train.h5`;
    try {
      const store = await H5Store.create(path, {
        n,
        layers: cfg.numHiddenLayers + 1,
        tokens: seq,
        hidden: cfg.hiddenSize,
        layout: "full",
        dtype: "f32",
      });
      await captureRows(model, data, {
        layout: "full",
        batchSize: batch,
        write: (start, count, embeds) =>
          store.writeRows(start, {
            embeds,
            inputIds: data.inputIds.subarray(start * seq, (start + count) * seq),
            tokenTypeIds: data.tokenTypeIds.subarray(start * seq, (start + count) * seq),
            attentionMask: data.attentionMask.subarray(start * seq, (start + count) * seq),
            labels: data.labels.subarray(start, start + count),
            idx: data.idx.subarray(start, start + count),
          }),
      });
      await store.close();
      const time = async (source: ActivationSource) => {
        const head = BvHead.create(headConfigFor(source.shape, kind, { adapterDim: 8 }), 1);
        let at = 0;
        try {
          const t = await timeIterations(async (k) => {
            for (let i = 0; i < k; i++) {
              const which = Int32Array.from({ length: batch }, (_, j) => (at + j) % n);
              at += batch;
              scope(() => {
                const d = source.take(which);
                backward(kind.loss(head.forward(d.x), d.labels, (r) => `row ${r}`));
              });
              for (const p of head.parameters()) {
                p.grad?.dispose();
                p.grad = null;
              }
            }
            await ctx.gpu.sync();
          }, { minSeconds: ctx.args.minSeconds, maxIters: 100 });
          return (t.iters * batch) / t.seconds;
        } finally {
          head.dispose();
          source.close();
        }
      };
      const stored = await time(await StoreSource.open(path));
      const streamed = await time(
        new StreamSource(model, data, kind, { layout: "full", modelName: tag, weightsHash: tag }),
      );
      ctx.emit({
        section: "stream",
        name,
        shape: [batch, seq],
        ours: stored,
        peer: null,
        unit: "ex/s",
        adapter: ctx.gpu.adapterName,
        extra: { stream: streamed },
        note: `stream (a BERT forward per batch, nothing on disk): ${streamed.toFixed(1)} ex/s, ` +
          `${(streamed / stored).toFixed(2)}× the store`,
      });
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
};
