/**
 * The head fine-tuning puts on BERT, as Hugging Face's `BertFor*` classes do, with no knowledge
 * of tasks: a Linear read-out of `outputs` units under the names the task's head kind gives.
 *
 *   pooled  logits [B, N] = Linear(dropout(pooled [B, H]))      (BertForSequenceClassification)
 *   token   logits [B, N, S] = Linear(last hidden [B, S, H])ᵀ     (BertForQuestionAnswering: N = 2,
 *           row 0 start, row 1 end)
 *
 * The token read-out is laid out [B, N, S] like the BERTVision heads' (model/heads.ts), so one
 * loss and one saved-logits layout serve both. Checked by tests/adamw_bert_test.ts (with BERT,
 * against TF.js) and train/finetune_test.ts.
 * @module
 */
import type { HostWeights } from "./config.ts";
import type { Readout } from "./heads.ts";
import type { BertOutput } from "./bert.ts";
import { dropout, linear, permute } from "./ops.ts";
import { keep, Tensor } from "./tensor.ts";
import { Rng } from "../data/rng.ts";

/** What a BERT head is: its read-out, its width and its tensors' names. */
export interface BertHeadSpec {
  /** "pooled" (the [CLS] pooler output) or "token" (every token of the last layer). */
  readout: Readout;
  /** Output units N. */
  outputs: number;
  /** Hugging Face names of the weight [N, H] and the bias [N]. */
  names: readonly [string, string];
  /** Names the head in errors, e.g. "task sst2". */
  what: string;
}

/** Dropout on the pooled output while training (Hugging Face's classifier dropout). */
export interface HeadDropout {
  rate: number;
  seed: number;
  /** The training step (the mask's stream). */
  step: number;
  /** Rows of the step's batch before this micro-batch (see model/bert.ts `rowOffset`). */
  rowOffset?: number;
}

/** A Linear head on BERT's output. */
export class BertHead {
  readonly spec: BertHeadSpec;
  readonly weight: Tensor;
  readonly bias: Tensor;

  constructor(spec: BertHeadSpec, weight: Tensor, bias: Tensor) {
    this.spec = spec;
    this.weight = weight;
    this.bias = bias;
  }

  /**
   * A head from saved tensors (`extra` of a checkpoint) when present, else initialised like
   * Hugging Face (N(0, 0.02) weight, zero bias) from `seed`. A saved head of another shape is an
   * error naming both.
   */
  static create(spec: BertHeadSpec, hidden: number, seed: number, saved?: HostWeights): BertHead {
    const [wn, bn] = spec.names;
    const out = spec.outputs;
    const w = saved?.get(wn), b = saved?.get(bn);
    let wd: Float32Array, bd: Float32Array;
    if (w && b) {
      if (w.shape[0] !== out || w.shape[1] !== hidden) {
        throw new Error(
          `checkpoint head '${wn}' is [${w.shape}] but ${spec.what} needs [${out}, ${hidden}] ` +
            `(a model fine-tuned for another task? start from the base model instead)`,
        );
      }
      wd = w.data;
      bd = b.data;
    } else {
      const rng = new Rng(seed, "head");
      wd = Float32Array.from({ length: out * hidden }, () => 0.02 * rng.normal());
      bd = new Float32Array(out);
    }
    return new BertHead(
      spec,
      keep(Tensor.from(wd, [out, hidden], { requiresGrad: true, name: wn })),
      keep(Tensor.from(bd, [out], { requiresGrad: true, name: bn })),
    );
  }

  /** Logits [B, N] (pooled; dropout first when `train` is given) or [B, N, S] (token). */
  forward(out: BertOutput, train?: HeadDropout): Tensor {
    if (this.spec.readout === "pooled") {
      const H = out.pooled.shape[1];
      const pooled = train
        ? dropout(
          out.pooled,
          train.rate,
          train.seed,
          train.step * 4096 + 4095,
          (train.rowOffset ?? 0) * H,
        )
        : out.pooled;
      return linear(pooled, this.weight, this.bias);
    }
    const last = out.hidden[out.hidden.length - 1]; // [B, S, H]
    return permute(linear(last, this.weight, this.bias), [0, 2, 1]);
  }

  /** Both tensors as host weights under their Hugging Face names. */
  async toHost(): Promise<HostWeights> {
    const [wn, bn] = this.spec.names;
    return new Map([
      [wn, { shape: [...this.weight.shape], data: await this.weight.readF32() }],
      [bn, { shape: [...this.bias.shape], data: await this.bias.readF32() }],
    ]);
  }

  /** Parameters. */
  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }

  /** Frees the head. */
  dispose(): void {
    for (const t of this.parameters()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}
