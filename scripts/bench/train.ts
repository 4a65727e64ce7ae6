/**
 * Training throughput.
 *
 *   finetune  examples/s of full BERT fine-tuning steps (forward with dropout 0.1, backward,
 *             AdamW with clipping; train/finetune.ts bertHeadFor + model/optim.ts) against the same
 *             model trained by TF.js on its WebGPU backend (tfBertForward + classifier,
 *             tf.variableGrads, tf.train.adam; no dropout, which the oracle lacks), same adapter.
 *             Tiny config by default; BERT-base shapes on GPUs or with --full.
 *   ap        examples/s and MB/s of adapter-pooler training streamed from an HDF5 activation
 *             file (model/ap_train.ts), against the raw read speed of the same file (the peer
 *             column is raw MB/s, ours is MB/s of activations consumed by training).
 *   probe     MB/s of a probe pass (a linear probe per layer, one read per epoch) against one AP
 *             head's training on the same store.
 * @module
 */
import type { BertConfig } from "../../model/config.ts";
import { BertModel } from "../../model/bert.ts";
import { bertHeadFor } from "../../train/finetune.ts";
import { AdamW } from "../../model/optim.ts";
import { backward, initGpu, scope } from "../../model/tensor.ts";
import { trainAp } from "../../train/heads/mod.ts";
import { trainProbes } from "../../train/heads/probe.ts";
import { H5Store } from "../../data/h5_store.ts";
import { getTask, kindOf } from "../../tasks/mod.ts";
import { randomHostWeights, tfBertForward, toTfWeights } from "../../tests/oracle/tf_bert.ts";
import { tfClassifierLoss } from "../../tests/oracle/tf_heads.ts";
import { type BenchContext, type Section, selected, timeIterations } from "./common.ts";
import { benchBatch, BERT_BASE, BERT_TINY } from "./bert.ts";
import { tf, tfSync, tfWebgpu } from "./tf_webgpu.ts";

async function oursFinetune(cfg: BertConfig, batch: number, seq: number, minSeconds: number) {
  await initGpu();
  const bert = BertModel.fromHost(cfg, randomHostWeights(cfg, 1), true);
  const kind = kindOf(getTask("sst2"));
  const head = bertHeadFor(kind, cfg.hiddenSize, 1);
  const opt = new AdamW([{
    params: [...bert.parameters(), ...head.parameters()],
    weightDecay: 0.01,
  }], {
    lr: 2e-5,
    maxGradNorm: 1,
  });
  const b = benchBatch(cfg, batch, seq);
  const labels = Float64Array.from({ length: batch }, (_, i) => i % 2);
  let step = 0;
  try {
    const t = await timeIterations(async (n) => {
      for (let i = 0; i < n; i++) {
        scope(() => {
          const s = step++;
          const out = bert.forward(b, { dropout: 0.1, seed: 1, step: s });
          const logits = head.forward(out, { rate: 0.1, seed: 1, step: s });
          backward(kind.loss(logits, labels, (i) => `row ${i}`));
          opt.step();
        });
      }
      await opt.gradNorm.read(); // one wait for every submitted step
    }, { minSeconds, maxIters: 200 });
    return (batch * t.iters) / t.seconds;
  } finally {
    opt.dispose();
    bert.dispose();
    head.dispose();
  }
}

async function peerFinetune(cfg: BertConfig, batch: number, seq: number, minSeconds: number) {
  await tfWebgpu();
  const vars = toTfWeights(randomHostWeights(cfg, 1), { trainable: true });
  const w = tf.variable(tf.randomNormal([2, cfg.hiddenSize], 0, 0.02));
  const bias = tf.variable(tf.zeros([2]));
  const b = benchBatch(cfg, batch, seq);
  const labels = Int32Array.from({ length: batch }, (_, i) => i % 2);
  const opt = tf.train.adam(2e-5);
  const step = () =>
    opt.minimize(() => {
      const o = tfBertForward(cfg, vars, b.inputIds, b.tokenTypeIds, b.attentionMask, batch, seq);
      return tfClassifierLoss(o.pooled, w, bias, labels);
    }, true) as import("@tensorflow/tfjs").Scalar;
  try {
    const t = await timeIterations(async (n) => {
      let last: import("@tensorflow/tfjs").Scalar | null = null;
      for (let i = 0; i < n; i++) {
        last?.dispose();
        last = step();
      }
      await tfSync(last!);
      last!.dispose();
    }, { minSeconds, maxIters: 200 });
    return (batch * t.iters) / t.seconds;
  } finally {
    tf.dispose([...Object.values(vars), w, bias]);
    opt.dispose();
  }
}

/** A full-layout f32 store of `n` random rows [L1, T, H], labels alternating (sst2). */
async function writeBenchStore(
  path: string,
  n: number,
  L1: number,
  T: number,
  H: number,
  split = "train",
) {
  const store = await H5Store.create(path, {
    n,
    layers: L1,
    tokens: T,
    hidden: H,
    layout: "full",
    dtype: "f32",
    attrs: { task: "sst2", split, model_id: "bench" },
  });
  let s = 7;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5;
  for (let r = 0; r < n; r += 64) {
    const k = Math.min(64, n - r);
    await store.writeRows(r, {
      embeds: Float32Array.from({ length: k * L1 * T * H }, rand),
      inputIds: new Int32Array(k * T),
      tokenTypeIds: new Int32Array(k * T),
      attentionMask: new Int32Array(k * T).fill(1),
      labels: Float64Array.from({ length: k }, (_, i) => (r + i) % 2),
      idx: Float64Array.from({ length: k }, (_, i) => r + i),
    });
  }
  await store.close();
}

/**
 * A probe pass (train/heads/probe.ts: a linear probe per layer on the [CLS] vectors, all from one
 * read per epoch) against a single AP head's training on the same store, both one epoch: MB/s
 * of activations consumed (ours = the pass, peer = the head).
 */
async function probeBench(ctx: BenchContext): Promise<void> {
  const n = ctx.args.quick ? 64 : 512, L1 = 13, T = 32, H = 64;
  const name = `probe pass vs one AP head, HDF5 full f32 [N${n}, L${L1}, T${T}, H${H}] b16`;
  if (!selected(ctx.args, name)) return;
  const dir = await Deno.makeTempDir({ prefix: "bench_probe_" });
  try {
    const path = `${dir}/train.h5`;
    await writeBenchStore(path, n, L1, T, H);
    await writeBenchStore(`${dir}/dev.h5`, 64, L1, T, H, "dev");
    const bytes = n * L1 * T * H * 4;
    const base = {
      trainH5: path,
      devH5: `${dir}/dev.h5`,
      task: "sst2",
      batchSize: 16,
      silent: true,
    };
    // Warm: the kernels both use compiled, the file in the page cache.
    await trainAp({ ...base, devH5: undefined, outDir: `${dir}/warm`, epochs: 0.1 })
      .then((r) => r.head.dispose());
    ctx.log(`  ${name}: one AP head …`);
    let t0 = performance.now();
    const h = await trainAp({ ...base, outDir: `${dir}/ap`, adapterDim: 8 });
    const headSec = (performance.now() - t0) / 1000;
    h.head.dispose();
    ctx.log(`  ${name}: probe pass (${L1} probes) …`);
    t0 = performance.now();
    const p = await trainProbes({ ...base, outDir: `${dir}/probe` });
    const probeSec = (performance.now() - t0) / 1000;
    for (const q of p.probes) q.head.dispose();
    ctx.emit({
      section: "train",
      name,
      shape: [n, L1, T, H],
      ours: bytes / 1e6 / probeSec,
      peer: bytes / 1e6 / headSec,
      unit: "MB/s",
      adapter: ctx.gpu.adapterName,
      extra: { "probe pass s": probeSec, "one head s": headSec },
      note: `ours = ${L1} [CLS] probes from one pass, peer = one AP head D8; each with its dev ` +
        `evaluation(s) of 64 rows`,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function apBench(ctx: BenchContext): Promise<void> {
  const n = ctx.args.quick ? 64 : 512, L1 = 3, T = 128, H = 128;
  const name = `ap train from HDF5 full f32 [N${n}, L${L1}, T${T}, H${H}] D8 b16`;
  if (!selected(ctx.args, name)) return;
  const dir = await Deno.makeTempDir({ prefix: "bench_ap_" });
  try {
    const path = `${dir}/train.h5`;
    await writeBenchStore(path, n, L1, T, H);
    const bytes = n * L1 * T * H * 4;
    ctx.log(`  ${name}: raw read …`);
    let t0 = performance.now();
    const raw = await Deno.readFile(path);
    const rawMBs = raw.byteLength / 1e6 / ((performance.now() - t0) / 1000);
    ctx.log(`  ${name}: training …`);
    await trainAp({ trainH5: path, task: "sst2", outDir: `${dir}/warm`, epochs: 0.1, silent: true })
      .then((r) => r.head.dispose());
    t0 = performance.now();
    const r = await trainAp({
      trainH5: path,
      task: "sst2",
      outDir: `${dir}/ap`,
      adapterDim: 8,
      batchSize: 16,
      silent: true,
    });
    const sec = (performance.now() - t0) / 1000;
    r.head.dispose();
    ctx.emit({
      section: "train",
      name,
      shape: [n, L1, T, H],
      ours: bytes / 1e6 / sec,
      peer: rawMBs,
      unit: "MB/s",
      adapter: ctx.gpu.adapterName,
      extra: { "examples/s": n / sec },
      note:
        "peer = raw read of the same file (Deno.readFile); ours = activations consumed by training",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The training section. */
export const trainSection: Section = {
  name: "train",
  title: "training examples/s: BERT fine-tuning vs TF.js webgpu; AP from HDF5 vs raw read",
  async run(ctx: BenchContext): Promise<void> {
    const big = !ctx.gpu.isFallback || ctx.args.full;
    const cases: [string, BertConfig, number, number][] = [["tiny", BERT_TINY, 8, 128]];
    if (big && !ctx.args.quick) cases.push(["base", BERT_BASE, ctx.gpu.isFallback ? 1 : 32, 128]);
    for (const [label, cfg, batch, seq] of cases) {
      const name = `finetune ${label} L${cfg.numHiddenLayers} H${cfg.hiddenSize} b${batch} s${seq}`;
      if (!selected(ctx.args, name)) continue;
      ctx.log(`  ${name}: ours …`);
      const ours = await oursFinetune(cfg, batch, seq, ctx.args.minSeconds);
      ctx.log(`  ${name}: peer …`);
      let peer: number | null = null;
      try {
        peer = await peerFinetune(cfg, batch, seq, ctx.args.minSeconds);
      } catch (e) {
        ctx.log(`  peer failed: ${(e as Error).message}`);
      }
      ctx.emit({
        section: "train",
        name,
        shape: [batch, seq, cfg.numHiddenLayers, cfg.hiddenSize],
        ours,
        peer,
        unit: "ex/s",
        adapter: ctx.gpu.adapterName,
        note: "peer: TF.js Adam without dropout",
      });
    }
    await apBench(ctx);
    await probeBench(ctx);
  },
};
