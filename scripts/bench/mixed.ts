/**
 * Mixed precision against float32, ours against ours, same adapter, same run (`--only mixed`):
 *
 *   matmul     GFLOP/s of the f16-operand matmul (operands already f16; `extra` adds the figure
 *              with both operands cast from float32 each time, as autocast does) vs float32
 *   forward    seq/s of BertModel.forward under model/ops.ts `autocast` vs float32
 *   step       ex/s of a fine-tuning step (forward, backward, AdamW with clipping) with the
 *              GradScaler and autocast vs float32; `note` gives the measured peak GPU bytes of
 *              both and the f16 operand copies the planner adds (train/plan.ts)
 *   capture    seq/s of train/capture.ts `captureRows` (forward, f16 store bits converted on
 *              the GPU straight from each layer's states, read back as f16; no file) with the
 *              forward under autocast vs float32, tiny BERT, seq 128, batch 16; `note` gives the
 *              measured peak GPU bytes of both and the capture plan's (`captureMemory`)
 * The "peer" column is our float32, so the ratio is the mixed/f32 speed-up. Tiny BERT by default;
 * BERT-base shapes on hardware GPUs or with --full.
 * @module
 */
import type { BertConfig } from "../../model/config.ts";
import { BertModel } from "../../model/bert.ts";
import { bertHeadFor } from "../../train/finetune.ts";
import { bertTrainMemory } from "../../train/plan.ts";
import { AdamW, GradScaler } from "../../model/optim.ts";
import { autocast } from "../../model/ops.ts";
import { backward, initGpu, scope } from "../../model/tensor.ts";
import { matmul, type MatmulShape } from "../../kernels/matmul.ts";
import { castToF16, f16Bytes } from "../../kernels/cast.ts";
import { getTask, kindOf } from "../../tasks/mod.ts";
import { randomHostWeights } from "../../tests/oracle/tf_bert.ts";
import { type BenchContext, randomData, type Section, selected, timeIterations } from "./common.ts";
import { benchBatch, BERT_BASE, BERT_TINY, timeOurBert } from "./bert.ts";
import { syntheticInputs } from "./capture.ts";
import { captureMemory, captureRows } from "../../train/capture.ts";

const PEER = "ours float32";

async function matmulRows(ctx: BenchContext): Promise<void> {
  const { gpu, args } = ctx;
  const shapes: [number, number, number][] = gpu.isFallback && !args.full
    ? [[256, 768, 768], [256, 768, 3072]]
    : [[4096, 768, 768], [4096, 768, 3072], [4096, 3072, 768]];
  for (const [M, K, N] of args.quick ? shapes.slice(0, 1) : shapes) {
    const name = `mixed matmul ${M}x${K}x${N} NT`;
    if (!selected(args, name)) continue;
    const shape: MatmulShape = { batch: 1, M, N, K, transA: false, transB: true };
    const a = gpu.acquire(M * K * 4), b = gpu.acquire(K * N * 4), c = gpu.acquire(M * N * 4);
    const ha = gpu.acquire(f16Bytes(M * K)), hb = gpu.acquire(f16Bytes(K * N));
    gpu.upload(a.buffer, randomData(M * K, 1));
    gpu.upload(b.buffer, randomData(K * N, 2));
    castToF16(gpu, a.buffer, ha.buffer, M * K);
    castToF16(gpu, b.buffer, hb.buffer, K * N);
    const gflop = (2 * M * N * K) / 1e9;
    const time = async (f: () => void) => {
      f();
      await gpu.sync();
      const t = await timeIterations(async (n) => {
        for (let i = 0; i < n; i++) f();
        await gpu.sync();
      }, { minSeconds: args.minSeconds });
      return (gflop * t.iters) / t.seconds;
    };
    ctx.log(`  ${name} …`);
    const f32 = await time(() => matmul(gpu, a.buffer, b.buffer, c.buffer, shape));
    const f16 = await time(() => matmul(gpu, ha.buffer, hb.buffer, c.buffer, shape, { f16: true }));
    const withCasts = await time(() => {
      castToF16(gpu, a.buffer, ha.buffer, M * K);
      castToF16(gpu, b.buffer, hb.buffer, K * N);
      matmul(gpu, ha.buffer, hb.buffer, c.buffer, shape, { f16: true });
    });
    for (const x of [a, b, c, ha, hb]) gpu.release(x);
    ctx.emit({
      section: "mixed",
      name,
      shape: [M, K, N],
      ours: f16,
      peer: f32,
      peerName: PEER,
      unit: "GFLOP/s",
      adapter: gpu.adapterName,
      extra: { "f16 incl. casts": withCasts },
    });
  }
}

async function forwardSeqPerSec(
  cfg: BertConfig,
  batch: number,
  seq: number,
  mixed: boolean,
  minSeconds: number,
): Promise<number> {
  return (await timeOurBert(cfg, batch, seq, minSeconds, { mixed })).seqPerSec;
}

async function stepExPerSec(
  cfg: BertConfig,
  batch: number,
  seq: number,
  mixed: boolean,
  minSeconds: number,
): Promise<{ exPerSec: number; peak: number }> {
  const gpu = await initGpu();
  const bert = BertModel.fromHost(cfg, randomHostWeights(cfg, 1), true);
  const kind = kindOf(getTask("sst2"));
  const head = bertHeadFor(kind, cfg.hiddenSize, 1);
  const scaler = mixed ? new GradScaler() : null;
  const opt = new AdamW([{
    params: [...bert.parameters(), ...head.parameters()],
    weightDecay: 0.01,
  }], { lr: 2e-5, maxGradNorm: 1, scaler: scaler ?? undefined });
  const b = benchBatch(cfg, batch, seq);
  const labels = Float64Array.from({ length: batch }, (_, i) => i % 2);
  let step = 0;
  gpu.resetPeak();
  try {
    const t = await timeIterations(async (n) => {
      for (let i = 0; i < n; i++) {
        scope(() => {
          const s = step++;
          const run = () => {
            const out = bert.forward(b, { dropout: 0.1, seed: 1, step: s, hidden: "last" });
            return kind.loss(head.forward(out, { rate: 0.1, seed: 1, step: s }), labels, String);
          };
          const loss = scaler ? autocast(run) : run();
          if (scaler) {
            const seed = scaler.seed(loss.shape);
            backward(loss, seed);
            seed.dispose();
          } else backward(loss);
          opt.step();
        });
      }
      await opt.gradNorm.read();
    }, { minSeconds, maxIters: 200 });
    return { exPerSec: (batch * t.iters) / t.seconds, peak: gpu.peakLiveBytes };
  } finally {
    opt.dispose();
    scaler?.dispose();
    bert.dispose();
    head.dispose();
  }
}

async function captureRow(ctx: BenchContext): Promise<void> {
  const cfg = BERT_TINY, batch = 16, seq = 128;
  const n = ctx.args.quick ? 32 : ctx.gpu.isFallback && !ctx.args.full ? 64 : 256;
  const name = `mixed capture L${cfg.numHiddenLayers} H${cfg.hiddenSize} n${n} s${seq} f16 store`;
  if (!selected(ctx.args, name)) return;
  ctx.log(`  ${name} …`);
  await initGpu();
  const model = BertModel.fromHost(cfg, randomHostWeights(cfg, 1));
  const inputs = syntheticInputs(n, seq, cfg.vocabSize);
  const time = async (mixed: boolean) => {
    const f = () =>
      captureRows(model, inputs, {
        layout: "full",
        dtype: "f16",
        mixed,
        batchSize: batch,
        write: () => {},
      });
    await f(); // warm-up: pipelines, pools
    ctx.gpu.resetPeak();
    const t0 = performance.now();
    await f();
    return { seqPerSec: n / ((performance.now() - t0) / 1000), peak: ctx.gpu.peakLiveBytes };
  };
  try {
    const f32 = await time(false);
    const f16 = await time(true);
    const mib = (x: number) => (x / 2 ** 20).toFixed(1);
    const planned = (mixed: boolean) => {
      const m = captureMemory(cfg, seq, "full", "f16", mixed);
      return m.fixed + Math.min(batch, n) * m.perRow;
    };
    ctx.emit({
      section: "mixed",
      name,
      shape: [n, seq, cfg.numHiddenLayers, cfg.hiddenSize],
      ours: f16.seqPerSec,
      peer: f32.seqPerSec,
      peerName: PEER,
      unit: "seq/s",
      adapter: ctx.gpu.adapterName,
      note: `peak live MiB: mixed ${mib(f16.peak)}, f32 ${mib(f32.peak)}; planned: mixed ` +
        `${mib(planned(true))}, f32 ${mib(planned(false))}`,
    });
  } finally {
    model.dispose();
  }
}

/** The mixed-precision section. */
export const mixedSection: Section = {
  name: "mixed",
  title: "f16-mixed vs float32 (ours both): matmul, BERT forward, a fine-tuning step, capture",
  async run(ctx: BenchContext): Promise<void> {
    await matmulRows(ctx);
    const big = !ctx.args.quick && (!ctx.gpu.isFallback || ctx.args.full);
    const [cfg, batch, seq]: [BertConfig, number, number] = big
      ? [BERT_BASE, ctx.gpu.isFallback ? 1 : 32, 128]
      : [BERT_TINY, 8, 64];
    const tag = `L${cfg.numHiddenLayers} H${cfg.hiddenSize} b${batch} s${seq}`;
    const shape = [batch, seq, cfg.numHiddenLayers, cfg.hiddenSize, cfg.numAttentionHeads];
    const fwd = `mixed bert forward ${tag}`;
    if (selected(ctx.args, fwd)) {
      ctx.log(`  ${fwd} …`);
      const f32 = await forwardSeqPerSec(cfg, batch, seq, false, ctx.args.minSeconds);
      const f16 = await forwardSeqPerSec(cfg, batch, seq, true, ctx.args.minSeconds);
      ctx.emit({
        section: "mixed",
        name: fwd,
        shape,
        ours: f16,
        peer: f32,
        peerName: PEER,
        unit: "seq/s",
        adapter: ctx.gpu.adapterName,
      });
    }
    const st = `mixed finetune step ${tag}`;
    if (selected(ctx.args, st)) {
      ctx.log(`  ${st} …`);
      const f32 = await stepExPerSec(cfg, batch, seq, false, ctx.args.minSeconds);
      const f16 = await stepExPerSec(cfg, batch, seq, true, ctx.args.minSeconds);
      // The fine-tuning plan's peaks (train/finetune.ts): weights, gradients and AdamW's moments,
      // the activations (an upper bound), and under f16-mixed the f16 copies' net bytes.
      const planned = (mixed: boolean) => {
        const m = bertTrainMemory(cfg, seq, { mixed, dropout: true });
        return m.fixed + batch * m.perRow;
      };
      const f32Plan = planned(false), mixedPlan = planned(true);
      const mib = (x: number) => (x / 2 ** 20).toFixed(1);
      ctx.emit({
        section: "mixed",
        name: st,
        shape,
        ours: f16.exPerSec,
        peer: f32.exPerSec,
        peerName: PEER,
        unit: "ex/s",
        adapter: ctx.gpu.adapterName,
        note: `peak live MiB: mixed ${mib(f16.peak)} (planned ${mib(mixedPlan)}), ` +
          `f32 ${mib(f32.peak)} (planned ${mib(f32Plan)})`,
      });
    }
    await captureRow(ctx);
    ctx.gpu.trimPool();
  },
};
