/**
 * BERT forward throughput (sequences/s at seq 128) on a tiny config: ours (`model/bert.ts`
 * `BertModel.forward` on the kernels) against the TF.js-ops BERT of `tests/oracle/tf_bert.ts`
 * on TF.js's WebGPU backend (`tfBertBenchmark`), same adapter, same weights and inputs.
 *
 * Both sides time the same thing: n forwards submitted back to back, then the last one's final
 * hidden state and pooled output read back (what `tfBertBenchmark` does), after a warm-up.
 * @module
 */
import type { BertConfig, HostWeights } from "../../model/config.ts";
import { type BertBatch, BertModel } from "../../model/bert.ts";
import { initGpu, noGrad, scope, type Tensor } from "../../model/tensor.ts";
import { mulberry32, randomHostWeights, tfBertBenchmark } from "../../tests/oracle/tf_bert.ts";
import { autocast } from "../../model/ops.ts";
import { type BenchContext, type Section, selected, timeIterations } from "./common.ts";
import { tfWebgpu } from "./tf_webgpu.ts";

/** 2 layers, hidden 128, 2 heads, intermediate 512 (BERT's vocabulary and positions). */
export const BERT_TINY: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 128,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  intermediateSize: 512,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

/** BERT-base's shapes (12 layers, hidden 768, 12 heads, intermediate 3072). */
export const BERT_BASE: BertConfig = {
  ...BERT_TINY,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
};

/** The inputs `tfBertBenchmark` builds (same seed, same ids), as a {@linkcode BertBatch}. */
export function benchBatch(cfg: BertConfig, batch: number, seq: number): BertBatch {
  const rand = mulberry32(2);
  const n = batch * seq;
  return {
    inputIds: Int32Array.from({ length: n }, () => Math.floor(rand() * cfg.vocabSize)),
    tokenTypeIds: Int32Array.from({ length: n }, (_, i) => (i % seq) < seq / 2 ? 0 : 1),
    attentionMask: new Int32Array(n).fill(1),
    batch,
    seq,
  };
}

/**
 * Times our forward for `cfg` at `batch` × `seq` (n forwards back to back, the last one's outputs
 * read back) and returns seq/s and those outputs: the final hidden state and the pooled output,
 * or with `allLayers` every hidden state then the pooled output. `weights` default to the
 * generated ones TF.js's side uses; `mixed` runs the forward under autocast (f16 matmuls).
 */
export async function timeOurBert(
  cfg: BertConfig,
  batch: number,
  seq: number,
  minSeconds: number,
  opts: { weights?: HostWeights; allLayers?: boolean; mixed?: boolean } = {},
): Promise<{ seqPerSec: number; outputs: Float32Array[] }> {
  await initGpu();
  const model = BertModel.fromHost(cfg, opts.weights ?? randomHostWeights(cfg, 1));
  const b = benchBatch(cfg, batch, seq);
  let outputs: Float32Array[] = [];
  try {
    const t = await timeIterations(async (n) => {
      let last: Tensor[] = [];
      for (let i = 0; i < n; i++) {
        for (const x of last) x.dispose();
        last = noGrad(() =>
          scope(() => {
            const run = () => model.forward(b);
            const out = opts.mixed ? autocast(run) : run();
            return opts.allLayers
              ? [...out.hidden, out.pooled]
              : [out.hidden[out.hidden.length - 1], out.pooled];
          })
        );
      }
      outputs = [];
      for (const x of last) outputs.push(await x.readF32());
      for (const x of last) x.dispose();
    }, { minSeconds });
    return { seqPerSec: (batch * t.iters) / t.seconds, outputs };
  } finally {
    model.dispose();
  }
}

/** Our forward throughput (seq/s) for `cfg` at `batch` × `seq`. */
export async function oursBertSeqPerSec(
  cfg: BertConfig,
  batch: number,
  seq: number,
  minSeconds: number,
): Promise<number> {
  return (await timeOurBert(cfg, batch, seq, minSeconds)).seqPerSec;
}

/** The BERT forward section. */
export const bertSection: Section = {
  name: "bert",
  title: "BERT forward seq/s (tiny config) vs TF.js-ops BERT on webgpu",
  async run(ctx: BenchContext): Promise<void> {
    // Tiny always; BERT-base shapes on GPUs (batch 32, the H100 goal's shape) or with --full
    // on a software adapter (batch 1: a BERT-base forward there takes tens of seconds).
    const cases: [BertConfig, number][] = [[BERT_TINY, 8]];
    if (!ctx.args.quick && (!ctx.gpu.isFallback || ctx.args.full)) {
      cases.push([BERT_BASE, ctx.gpu.isFallback ? 1 : 32]);
    }
    const seq = 128;
    for (const [cfg, batch] of cases) {
      const name = `bert forward L${cfg.numHiddenLayers} H${cfg.hiddenSize} ` +
        `A${cfg.numAttentionHeads} I${cfg.intermediateSize} b${batch} s${seq}`;
      if (!selected(ctx.args, name)) continue;
      ctx.log(`  ${name}: ours BertModel.forward …`);
      const ours = await oursBertSeqPerSec(cfg, batch, seq, ctx.args.minSeconds);
      await tfWebgpu();
      ctx.log(`  ${name}: peer tfBertBenchmark …`);
      // tfBertBenchmark warms up once itself; a first short call calibrates the iteration count.
      const probe = await tfBertBenchmark(cfg, batch, seq, 1, "webgpu");
      const iters = Math.max(1, Math.ceil(ctx.args.minSeconds * probe.seqPerSec / batch));
      const peer = (await tfBertBenchmark(cfg, batch, seq, iters, "webgpu")).seqPerSec;
      ctx.emit({
        section: "bert",
        name,
        shape: [batch, seq, cfg.numHiddenLayers, cfg.hiddenSize, cfg.numAttentionHeads],
        ours,
        peer,
        unit: "seq/s",
        adapter: ctx.gpu.adapterName,
      });
    }
  },
};
