/**
 * Capture throughput (sequences/s) against the forward alone, on the tiny config of the `bert`
 * section (L2 H128, seq 128, batch 16): how much the readback and the HDF5 writes cost once
 * double-buffered (train/capture.ts `captureRows`). Goal: write overhead under 10%.
 *
 *   forward    every batch's forward recorded and submitted, one sync at the end
 *   readback   captureRows with a no-op writer (forward + [B, L+1, S, H] copies + readback;
 *              for f16 also the GPU conversion to half bits, read back at half the bytes)
 *   capture    captureRows into an H5Store in a temp dir (full f32, and cls f16)
 * `ours` is the capture figure; `extra` holds the others; the note gives the overhead
 * (capture time / forward time − 1). No peer: TF.js has no capture to compare with.
 * @module
 */
import { BertModel } from "../../model/bert.ts";
import { type CaptureLayout, captureRows } from "../../train/capture.ts";
import { rangeBatch } from "../../train/rows.ts";
import type { TaskRows } from "../../tasks/mod.ts";
import { randomBertWeights } from "../../model/init.ts";
import { initGpu, noGrad, scope } from "../../model/tensor.ts";
import { H5Store } from "../../data/h5_store.ts";
import { type BenchContext, type Section, selected } from "./common.ts";
import { BERT_TINY } from "./bert.ts";

/** Synthetic rows: random ids, half of each row padding after a random length. */
export function syntheticInputs(n: number, seq: number, vocab: number): TaskRows {
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const inputIds = new Int32Array(n * seq), tokenTypeIds = new Int32Array(n * seq);
  const attentionMask = new Int32Array(n * seq);
  for (let r = 0; r < n; r++) {
    const len = 8 + Math.floor(rand() * (seq - 8));
    for (let t = 0; t < len; t++) {
      inputIds[r * seq + t] = t === 0 ? 101 : 1000 + Math.floor(rand() * (vocab - 1000));
      attentionMask[r * seq + t] = 1;
    }
  }
  return {
    n,
    seq,
    inputIds,
    tokenTypeIds,
    attentionMask,
    labels: new Float64Array(n),
    labelWidth: 1,
    idx: Float64Array.from({ length: n }, (_, i) => i),
    nExamples: n,
  };
}

/** The capture section. */
export const captureSection: Section = {
  name: "capture",
  title: "capture seq/s (forward + readback + HDF5 write, double-buffered) vs forward alone",
  async run(ctx: BenchContext): Promise<void> {
    const cfg = BERT_TINY, batch = 16, seq = 128;
    const n = ctx.args.quick ? 32 : ctx.gpu.isFallback && !ctx.args.full ? 64 : 256;
    const L1 = cfg.numHiddenLayers + 1, H = cfg.hiddenSize;
    await initGpu();
    const model = BertModel.fromHost(cfg, randomBertWeights(cfg, 1));
    const inputs = syntheticInputs(n, seq, cfg.vocabSize);
    const dir = await Deno.makeTempDir({ prefix: "bench_capture_" });
    const time = async (f: () => Promise<void>) => {
      await f(); // warm-up: pipelines, pools, page cache
      const t0 = performance.now();
      await f();
      return (performance.now() - t0) / 1000;
    };
    const forward = async () => {
      for (let s = 0; s < n; s += batch) {
        noGrad(() => scope(() => void model.forward(rangeBatch(inputs, s, batch))));
        ctx.gpu.flush();
      }
      await ctx.gpu.sync();
    };
    const readback = (layout: CaptureLayout, dtype: "f32" | "f16") => () =>
      captureRows(model, inputs, { layout, dtype, batchSize: batch, write: () => {} });
    let run = 0;
    const toStore = (layout: CaptureLayout, dtype: "f32" | "f16") => async () => {
      const path = `${dir}/run${run++}.h5`;
      const store = await H5Store.create(path, {
        n,
        layers: L1,
        tokens: seq,
        hidden: H,
        layout,
        dtype,
      }, { flushEveryRows: batch });
      await captureRows(model, inputs, {
        layout,
        dtype,
        batchSize: batch,
        write: (start, count, embeds) => {
          const r = rangeBatch(inputs, start, count);
          return store.writeRows(start, {
            embeds,
            inputIds: r.inputIds,
            tokenTypeIds: r.tokenTypeIds,
            attentionMask: r.attentionMask,
            labels: inputs.labels.subarray(start, start + count),
            idx: inputs.idx.subarray(start, start + count),
          });
        },
      });
      await store.close();
      await Deno.remove(path);
      await Deno.remove(`${path}.state.json`);
    };
    try {
      for (
        const [layout, dtype] of [["full", "f32"], ["cls", "f16"]] as [
          CaptureLayout,
          "f32" | "f16",
        ][]
      ) {
        const name = `capture ${layout} ${dtype} L${cfg.numHiddenLayers} H${H} b${batch} s${seq}`;
        if (!selected(ctx.args, name)) continue;
        ctx.log(`  ${name}: ${n} rows …`);
        const tf = await time(forward);
        const tr = await time(readback(layout, dtype));
        const tc = await time(toStore(layout, dtype));
        const overhead = (tc / tf - 1) * 100;
        ctx.emit({
          section: "capture",
          name,
          shape: [n, L1, layout === "full" ? seq : 1, H],
          ours: n / tc,
          peer: null,
          unit: "seq/s",
          adapter: ctx.gpu.adapterName,
          extra: { forward: n / tf, "forward+readback": n / tr },
          note: `write overhead ${overhead.toFixed(1)}% vs forward (readback alone ` +
            `${((tr / tf - 1) * 100).toFixed(1)}%); goal < 10%`,
        });
      }
    } finally {
      model.dispose();
      await Deno.remove(dir, { recursive: true });
    }
  },
};
