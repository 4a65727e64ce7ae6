/**
 * The strongest same-adapter peer: onnxruntime-web's WebGPU execution provider (what
 * transformers.js runs on WebGPU) against our BERT forward, with TF.js's BERT beside them, on
 * the same weights, the same inputs and the same adapter, in one run.
 *
 *   bert tiny  b8 × s128, the final hidden state and the pooled output read back
 *   bert base  b8 × s128, the same outputs
 *   bert base  b16 × s384, every layer's hidden state read back (the seed's capture shape)
 * On a software adapter the BERT-base cases run only with `--full`, at batch 1 (a BERT-base
 * forward takes tens of seconds there), and without TF.js (its BERT-base took over 20 minutes
 * for one batch there); the case name says the batch.
 *
 * The weights are generated (no pretrained weights exist here), written as a Hugging Face
 * checkpoint (`model.safetensors` + `config.json`) and loaded back by `loadBertCheckpoint`;
 * ours and the ONNX model (scripts/bench/onnx_bert.ts) are both made from what was loaded, and
 * TF.js's BERT (`tfBertBenchmark`) from the same generator and seed. Each side is timed as the
 * bert section does: n forwards back to back, the last one's outputs read back, after a warm-up
 * (onnxruntime keeps its outputs on the GPU until then: `preferredOutputLocation: "gpu-buffer"`).
 * After timing, ours and onnxruntime's outputs are compared element-wise; the note says
 * `RESULT MISMATCH` where they differ beyond the tolerance.
 *
 * Results: seq/s, `peer` is onnxruntime-web, `extra["TF.js webgpu"]` is TF.js's figure.
 * Bench only: nothing in the product imports onnxruntime (pinned in deno.json).
 * @module
 */
import * as ort from "onnxruntime-web/webgpu";
import type { BertConfig, HostWeights } from "../../model/config.ts";
import { loadBertCheckpoint, saveBertCheckpoint } from "../../model/checkpoint.ts";
import { randomHostWeights, tfBertBenchmark } from "../../tests/oracle/tf_bert.ts";
import { benchBatch, BERT_BASE, BERT_TINY, timeOurBert } from "./bert.ts";
import { type BenchContext, type Section, selected, timeIterations } from "./common.ts";
import { bertOnnx } from "./onnx_bert.ts";
import { tfWebgpu } from "./tf_webgpu.ts";

/** onnxruntime-web's name in the results. */
export const ORT_PEER = "onnxruntime-web webgpu";

/**
 * Hidden states are LayerNorm outputs of order 1 after up to 12 layers, computed in float32 in
 * other orders on each side (matmul tiling, reductions, erf): |ours - ort| ≤ 2e-4 + 1e-3·|ort|.
 */
export const ORT_TOL = { atol: 2e-4, rtol: 1e-3 };

/** One case: a model, a batch and which outputs are read back. */
interface OrtCase {
  cfg: BertConfig;
  tag: string;
  batch: number;
  seq: number;
  /** Every layer's hidden state (the capture shape), else the final one and the pooled output. */
  allLayers: boolean;
}

/** A session on `bytes`, on the WebGPU provider (or another, for tests). */
export async function ortSession(
  bytes: Uint8Array,
  provider: "webgpu" | "wasm" = "webgpu",
  outputsOnGpu = provider === "webgpu",
): Promise<ort.InferenceSession> {
  ort.env.logLevel = "error";
  return await ort.InferenceSession.create(bytes, {
    executionProviders: [provider],
    logSeverityLevel: 3, // errors only: not the note that shape ops run on the CPU
    ...(outputsOnGpu ? { preferredOutputLocation: "gpu-buffer" as const } : {}),
  });
}

/** The int64 feeds of a batch. */
export function ortFeeds(
  b: { inputIds: Int32Array; tokenTypeIds: Int32Array; attentionMask: Int32Array },
  batch: number,
  seq: number,
): Record<string, ort.Tensor> {
  const t = (a: Int32Array) => new ort.Tensor("int64", BigInt64Array.from(a, BigInt), [batch, seq]);
  return {
    input_ids: t(b.inputIds),
    token_type_ids: t(b.tokenTypeIds),
    attention_mask: t(b.attentionMask),
  };
}

/** The output names a case reads back. */
function fetchNames(c: OrtCase): string[] {
  const L = c.cfg.numHiddenLayers;
  return c.allLayers
    ? [...Array.from({ length: L + 1 }, (_, l) => `hidden_${l}`), "pooled"]
    : [`hidden_${L}`, "pooled"];
}

/** The worst element of `ours` against `peer` beyond the tolerance, or null. */
export function worstMismatch(
  ours: Float32Array,
  peer: Float32Array,
  tol = ORT_TOL,
): string | null {
  if (ours.length !== peer.length) return `length ${ours.length} vs ${peer.length}`;
  let worst = -1, excess = 0;
  for (let i = 0; i < ours.length; i++) {
    const d = Math.abs(ours[i] - peer[i]);
    const over = Number.isNaN(d) ? Infinity : d - tol.atol - tol.rtol * Math.abs(peer[i]);
    if (over > excess) [worst, excess] = [i, over];
  }
  return worst < 0 ? null : `[${worst}] ${ours[worst]} vs ${peer[worst]}`;
}

/** Writes generated weights as a Hugging Face checkpoint and loads them back. */
async function checkpointWeights(cfg: BertConfig): Promise<HostWeights> {
  const dir = await Deno.makeTempDir({ prefix: "bertvision-ort-" });
  try {
    await saveBertCheckpoint(dir, cfg, randomHostWeights(cfg, 1));
    return (await loadBertCheckpoint(dir)).weights;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Times onnxruntime-web; returns seq/s and the last run's outputs, in `fetchNames` order. */
async function timeOrt(c: OrtCase, weights: HostWeights, minSeconds: number) {
  const session = await ortSession(bertOnnx(c.cfg, weights, c.seq));
  const feeds = ortFeeds(benchBatch(c.cfg, c.batch, c.seq), c.batch, c.seq);
  const names = fetchNames(c);
  let outputs: Float32Array[] = [];
  try {
    const t = await timeIterations(async (n) => {
      let last: ort.InferenceSession.OnnxValueMapType = {};
      for (let i = 0; i < n; i++) {
        for (const v of Object.values(last)) v.dispose();
        last = await session.run(feeds, names);
      }
      outputs = [];
      for (const name of names) outputs.push((await last[name].getData()) as Float32Array);
      for (const v of Object.values(last)) v.dispose();
    }, { minSeconds });
    return { seqPerSec: (c.batch * t.iters) / t.seconds, outputs };
  } finally {
    await session.release();
  }
}

/** The cases for this adapter and these flags. */
function cases(ctx: BenchContext): OrtCase[] {
  const soft = ctx.gpu.isFallback;
  const out: OrtCase[] = [{ cfg: BERT_TINY, tag: "tiny", batch: 8, seq: 128, allLayers: false }];
  if (!ctx.args.quick && (!soft || ctx.args.full)) {
    out.push({ cfg: BERT_BASE, tag: "base", batch: soft ? 1 : 8, seq: 128, allLayers: false });
    out.push({ cfg: BERT_BASE, tag: "base", batch: soft ? 1 : 16, seq: 384, allLayers: true });
  }
  return out;
}

/** The onnxruntime-web section. */
export const ortSection: Section = {
  name: "ort",
  title: `BERT forward seq/s: ours vs ${ORT_PEER} (and TF.js webgpu), same weights`,
  async run(ctx: BenchContext): Promise<void> {
    for (const c of cases(ctx)) {
      const { cfg } = c;
      const name = `bert ${c.tag} L${cfg.numHiddenLayers} H${cfg.hiddenSize} b${c.batch} ` +
        `s${c.seq}${c.allLayers ? " all layers" : ""}`;
      if (!selected(ctx.args, name)) continue;
      ctx.log(`  ${name}: weights through a Hugging Face checkpoint …`);
      const weights = await checkpointWeights(cfg);
      ctx.log(`  ${name}: ours …`);
      const ours = await timeOurBert(cfg, c.batch, c.seq, ctx.args.minSeconds, {
        weights,
        allLayers: c.allLayers,
      });
      ctx.log(`  ${name}: ${ORT_PEER} …`);
      let peer: number | null = null;
      let note = "";
      try {
        const o = await timeOrt(c, weights, ctx.args.minSeconds);
        peer = o.seqPerSec;
        const names = fetchNames(c);
        const bad = names.map((n, i) => [n, worstMismatch(ours.outputs[i], o.outputs[i])])
          .filter(([, m]) => m);
        note = bad.length
          ? `RESULT MISMATCH ${bad.map(([n, m]) => `${n} ${m}`).join("; ")}`
          : `outputs agree (${names.length} tensors, atol ${ORT_TOL.atol}, rtol ${ORT_TOL.rtol})`;
      } catch (e) {
        note = `${ORT_PEER} failed: ${(e as Error).message.split("\n")[0]}`;
      }
      let tfjs: number | null = null;
      // TF.js's BERT-base on a software adapter ran past 20 minutes for one batch: left out there.
      const skipTf = ctx.gpu.isFallback && cfg.hiddenSize > BERT_TINY.hiddenSize;
      if (skipTf) {
        note += "; TF.js left out (a BERT-base forward takes over 20 min on this adapter)";
      } else {
        try {
          await tfWebgpu();
          ctx.log(`  ${name}: TF.js tfBertBenchmark …`);
          const probe = await tfBertBenchmark(cfg, c.batch, c.seq, 1, "webgpu");
          const iters = Math.max(1, Math.ceil(ctx.args.minSeconds * probe.seqPerSec / c.batch));
          tfjs = (await tfBertBenchmark(cfg, c.batch, c.seq, iters, "webgpu")).seqPerSec;
        } catch (e) {
          note += `; TF.js failed: ${(e as Error).message.split("\n")[0]}`;
        }
      }
      ctx.emit({
        section: "ort",
        name,
        shape: [c.batch, c.seq, cfg.numHiddenLayers, cfg.hiddenSize, cfg.numAttentionHeads],
        ours: ours.seqPerSec,
        peer,
        peerName: ORT_PEER,
        unit: "seq/s",
        adapter: ctx.gpu.adapterName,
        extra: tfjs === null ? undefined : { "TF.js webgpu": tfjs },
        note: c.allLayers ? `${note}; TF.js reads the final hidden state and pooled only` : note,
      });
    }
  },
};
