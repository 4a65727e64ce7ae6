/**
 * The seed's real shapes on the adapter at hand, with generated weights (`--only scale`; never
 * in the default run or the tests: on a software adapter it takes tens of minutes):
 *
 * - BERT-base SQuAD capture at batch 16 × 384 tokens (full layout) for a handful of windows,
 *   as the planner splits it;
 * - one BERT-base fine-tuning step (span head) at batch 16 × 128, and one at 32 × 384, each as
 *   the planner splits it (micro-batches with accumulated gradients), in float32 and f16-mixed;
 * - on GPUs, or with `--full`, the same for BERT-large.
 *
 * Each row reports examples/s (windows for capture) and, in its note, the micro-batches and the
 * planner's peak GPU bytes against the measured peak (`Gpu.peakHeldBytes` with the pool capped
 * at nothing idle, so held = live). No peer: nothing else runs these shapes on WebGPU here.
 * @module
 */
import type { BertConfig } from "../../model/config.ts";
import { BertModel } from "../../model/bert.ts";
import { randomBertWeights } from "../../model/init.ts";
import { AdamW, GradScaler } from "../../model/optim.ts";
import { initGpu } from "../../model/tensor.ts";
import { fmtBytes, type Gpu } from "../../kernels/device.ts";
import { getTask, kindOf, type TaskRows } from "../../tasks/mod.ts";
import { captureRows } from "../../train/capture.ts";
import { bertHeadFor, fineTuneStep } from "../../train/finetune.ts";
import {
  bertParamBytes,
  bertPeakBytes,
  bertRowPeakBytes,
  bertRowTensors,
  bertTrainMemory,
  limitsOf,
  splitBatch,
} from "../../train/plan.ts";
import { type BenchContext, type Section, selected } from "./common.ts";
import { BERT_BASE } from "./bert.ts";

const BERT_LARGE: BertConfig = {
  ...BERT_BASE,
  hiddenSize: 1024,
  numHiddenLayers: 24,
  numAttentionHeads: 16,
  intermediateSize: 4096,
};

/** `n` synthetic rows of `seq` tokens: random ids, the second half of each row segment 1. */
function rows(n: number, seq: number, vocab: number): TaskRows {
  let s = 7;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const ids = Int32Array.from(
    { length: n * seq },
    (_, i) => i % seq === 0 ? 101 : 1000 + Math.floor(rand() * (vocab - 1000)),
  );
  const labels = Float64Array.from({ length: 2 * n }, () => Math.floor(rand() * seq));
  return {
    n,
    seq,
    inputIds: ids,
    tokenTypeIds: Int32Array.from({ length: n * seq }, (_, i) => (i % seq) < seq / 2 ? 0 : 1),
    attentionMask: new Int32Array(n * seq).fill(1),
    labels,
    labelWidth: 2,
    idx: Float64Array.from({ length: n }, (_, i) => i),
    nExamples: n,
  };
}

/** The scale section. */
export const scaleSection: Section = {
  name: "scale",
  title: "the seed's real shapes (BERT-base; BERT-large on GPUs) as the planner splits them",
  onlyWhenAsked: true,
  async run(ctx: BenchContext): Promise<void> {
    const gpu = await initGpu();
    try {
      await runScale(ctx, gpu);
    } finally {
      gpu.setPoolCap(undefined);
    }
  },
};

async function runScale(ctx: BenchContext, gpu: Gpu): Promise<void> {
  const limits = limitsOf(gpu);
  const models: [string, BertConfig][] = [["base", BERT_BASE]];
  if (!ctx.gpu.isFallback || ctx.args.full) models.push(["large", BERT_LARGE]);
  const kind = kindOf(getTask("squad"));
  for (const [tag, cfg] of models) {
    const weights = randomBertWeights(cfg, 1);
    const measure = async (
      name: string,
      shape: number[],
      plannedPeak: number,
      parts: number,
      micro: number,
      run: () => Promise<number>,
      check?: () => Promise<string>,
    ) => {
      if (!selected(ctx.args, name)) return;
      ctx.log(`  ${name}: ${parts} micro-batch(es) of ≤ ${micro}`);
      gpu.trimPool();
      gpu.setPoolCap(0); // held = live: the measured peak is what the stage needs
      gpu.resetPeak();
      const t0 = performance.now();
      const examples = await run();
      const seconds = (performance.now() - t0) / 1000;
      const peak = gpu.peakHeldBytes;
      gpu.setPoolCap(undefined);
      const checked = check ? `; ${await check()}` : "";
      ctx.emit({
        section: "scale",
        name,
        shape,
        ours: examples / seconds,
        peer: null,
        unit: "ex/s",
        adapter: ctx.gpu.adapterName,
        note: `${parts} × ≤ ${micro} rows; peak planned ${fmtBytes(plannedPeak)}, measured ` +
          `${fmtBytes(peak)} (${(peak / plannedPeak).toFixed(2)}×); ${seconds.toFixed(1)} s` +
          checked,
      });
    };

    // Capture: SQuAD windows at 16 × 384, full layout, a handful of windows.
    {
      const n = ctx.args.quick ? 2 : 16, seq = 384, batch = 16;
      const capTensors = bertRowTensors(cfg, seq, "full");
      const split = splitBatch("capture", batch, capTensors, limits, {
        fixed: bertParamBytes(cfg),
        perRow: bertRowPeakBytes(cfg, seq, false) + 2 * capTensors.at(-1)!.bytesPerRow,
      });
      const rowsAtOnce = Math.min(split.micro, n);
      const peak = bertPeakBytes(cfg, seq, rowsAtOnce, bertParamBytes(cfg), false) +
        2 * rowsAtOnce * split.largest.bytesPerRow;
      const model = BertModel.fromHost(cfg, weights);
      const data = rows(n, seq, cfg.vocabSize);
      let first: Float32Array | null = null, last: Float32Array | null = null;
      try {
        await measure(
          `capture ${tag} ${n} windows b${batch} s${seq} full`,
          [n, seq],
          peak,
          split.parts,
          split.micro,
          async () => {
            await captureRows(model, data, {
              layout: "full",
              batchSize: split.micro,
              write: (start, count, embeds) => {
                // Keep the first and last rows to check against rows captured alone.
                const per = embeds.length / count;
                if (start === 0) first = (embeds as Float32Array).slice(0, per);
                if (start + count === n) last = (embeds as Float32Array).slice(-per);
              },
            });
            return n;
          },
          async () => {
            // The split capture against an unsplit reference: each of those rows alone.
            let diff = 0;
            for (const [row, got] of [[0, first], [n - 1, last]] as const) {
              const out: Float32Array[] = [];
              await captureRows(model, data, {
                layout: "full",
                batchSize: 1,
                start: row,
                end: row + 1,
                write: (_s, _c, e) => void out.push(e as Float32Array),
              });
              for (let i = 0; i < out[0].length; i++) {
                diff = Math.max(diff, Math.abs(out[0][i] - got![i]));
              }
            }
            return `rows split vs alone: max |diff| ${diff}`;
          },
        );
      } finally {
        model.dispose();
      }
    }

    // One fine-tuning step at each of the seed's shapes, in float32 and in f16-mixed (the seed's
    // autocast + GradScaler: f16 copies kept for the backward, train/plan.ts bertTrainMemory).
    const steps = ctx.args.quick ? [[2, 128]] : [[16, 128], [32, 384]];
    for (const [batch, seq] of steps) {
      for (const mixed of [false, true]) {
        const name = `fine-tune step ${tag} b${batch} s${seq}${mixed ? " f16-mixed" : ""}`;
        if (!selected(ctx.args, name)) continue;
        const memory = bertTrainMemory(cfg, seq, { mixed, dropout: true });
        const split = splitBatch("fine-tune", batch, bertRowTensors(cfg, seq), limits, memory);
        const bert = BertModel.fromHost(cfg, weights, true);
        const head = bertHeadFor(kind, cfg.hiddenSize, 1);
        const scaler = mixed ? new GradScaler() : null;
        const opt = new AdamW([{
          params: [...bert.parameters(), ...head.parameters()],
          weightDecay: 0.01,
        }], { lr: 2e-5, maxGradNorm: 1, scaler: scaler ?? undefined });
        const data = rows(batch, seq, cfg.vocabSize);
        const which = Int32Array.from({ length: batch }, (_, i) => i);
        try {
          await measure(
            name,
            [batch, seq],
            memory.fixed + split.micro * memory.perRow,
            split.parts,
            split.micro,
            async () => {
              const loss = fineTuneStep(bert, head, kind, data, which, split.micro, {
                step: 0,
                dropout: 0.1,
                seed: 1,
                scaler,
              });
              opt.step();
              await loss.item();
              loss.dispose();
              return batch;
            },
          );
        } finally {
          opt.dispose();
          scaler?.dispose();
          head.dispose();
          bert.dispose();
        }
      }
    }
  }
}
