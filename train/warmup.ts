/**
 * Short measured warm-ups for plans (`--dry-run`): the time of one micro-batch of the stage's
 * real model on synthetic rows of the planned shape, after one untimed run (pipelines compiled,
 * pool filled). Nothing is written. Checked by train/plan_test.ts.
 * @module
 */
import type { BertConfig, HostWeights } from "../model/config.ts";
import { BertModel } from "../model/bert.ts";
import { autocast, sumAll } from "../model/ops.ts";
import { backward, gpu, initGpu, noGrad, scope } from "../model/tensor.ts";

/**
 * Seconds of one forward (with `train`, forward with dropout and backward) of `rows` rows of
 * `seq` tokens through BERT with these weights; with `mixed`, under autocast (f16-mixed: f16
 * matmul operands), as the stage timed will run.
 */
export async function timeBertMicroBatch(
  config: BertConfig,
  weights: HostWeights,
  rows: number,
  seq: number,
  train: boolean,
  mixed = false,
): Promise<number> {
  await initGpu();
  const model = BertModel.fromHost(config, weights, train);
  const n = rows * seq;
  const batch = {
    inputIds: Int32Array.from(
      { length: n },
      (_, i) => (i % seq === 0 ? 2 : 5 + (i * 7919) % 1000) % config.vocabSize,
    ),
    tokenTypeIds: new Int32Array(n),
    attentionMask: new Int32Array(n).fill(1),
    batch: rows,
    seq,
  };
  const cast = <T>(f: () => T): T => mixed ? autocast(f) : f();
  const once = async () => {
    if (train) {
      scope(() => {
        const out = cast(() => model.forward(batch, { dropout: 0.1, seed: 1, step: 0 }));
        backward(sumAll(out.pooled));
      });
      for (const p of model.parameters()) {
        p.grad?.dispose();
        p.grad = null;
      }
    } else noGrad(() => scope(() => void cast(() => model.forward(batch))));
    await gpu().sync();
  };
  try {
    await once();
    const t0 = performance.now();
    await once();
    return (performance.now() - t0) / 1000;
  } finally {
    model.dispose();
  }
}
