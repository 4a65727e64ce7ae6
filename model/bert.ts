/**
 * BERT on the kernel library, as Hugging Face's `BertModel` computes it, differentiable through
 * the tape: embeddings (word + position + token type, LayerNorm), L encoder layers (multi-head
 * self-attention with the padding mask, output projection + residual + LayerNorm, exact-GELU
 * feed-forward + residual + LayerNorm) and the pooler (tanh dense on [CLS]).
 *
 *   inputs  ids, token types, attention mask (B, S) host Int32Arrays
 *   hidden  L+1 tensors (B, S, H): the embedding output, then each layer's output
 *   pooled  (B, H)
 * Checked by model/bert_test.ts against the TF.js BERT in tests/oracle (values and gradients).
 * @module
 */
import type { BertConfig, HostWeights } from "./config.ts";
import { bertWeightShapes } from "./config.ts";
import {
  add,
  dropout,
  gatherRows,
  gelu,
  layerNorm,
  linear,
  matmul,
  permute,
  softmax,
  tanh,
} from "./ops.ts";
import { keep, numel, release, scope, Tensor } from "./tensor.ts";

/** The additive attention-mask value for padded keys: scores += (1 - mask) · MASK_VALUE. */
export const MASK_VALUE = -10000;

/** A padded batch of token ids (B, S), row-major host arrays. */
export interface BertBatch {
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  batch: number;
  seq: number;
}

/** Options of {@linkcode BertModel.forward}. */
export interface ForwardOptions {
  /** Dropout rate on hidden states and attention probabilities (0 = inference). */
  dropout?: number;
  /** Dropout seed (with `step`, picks every mask). */
  seed?: number;
  /** Training step (a new dropout stream per step). */
  step?: number;
  /**
   * Rows of the step's batch before this one (a micro-batch's place in its batch): each row
   * draws the dropout masks it would draw in the whole batch, so a split step equals the
   * unsplit one.
   */
  rowOffset?: number;
  /**
   * Which hidden states to return: "all" L+1 (default), or "last" only (fine-tuning, whose
   * heads read the last): the others are then freed once the backward no longer reads them
   * (under f16-mixed, as soon as their layer ends: the backward keeps f16 copies).
   */
  hidden?: "all" | "last";
}

/** What a forward returns. */
export interface BertOutput {
  /** L+1 hidden states (B, S, H), or the last alone (`hidden: "last"`). */
  hidden: Tensor[];
  /** The pooler output (B, H). */
  pooled: Tensor;
}

/** BERT's parameters on the GPU with a forward pass. */
export class BertModel {
  readonly config: BertConfig;
  /** Parameters by Hugging Face name (no `bert.` prefix). */
  readonly params: Map<string, Tensor>;

  private constructor(config: BertConfig, params: Map<string, Tensor>) {
    this.config = config;
    this.params = params;
  }

  /**
   * Uploads host weights. Every tensor of {@linkcode bertWeightShapes} must be present with its
   * shape (error naming the tensor otherwise). `trainable` marks them as requiring gradients.
   */
  static fromHost(config: BertConfig, weights: HostWeights, trainable = false): BertModel {
    const params = new Map<string, Tensor>();
    const shapes = bertWeightShapes(config);
    for (const [name, shape] of shapes) {
      const w = weights.get(name);
      if (!w) throw new Error(`BERT weights: missing tensor '${name}' of shape [${shape}]`);
      if (w.data.length !== numel(shape)) {
        throw new Error(
          `BERT weights: '${name}' has ${w.data.length} values, expected shape [${shape}]`,
        );
      }
    }
    for (const [name, shape] of shapes) {
      const t = Tensor.from(weights.get(name)!.data, shape, { requiresGrad: trainable, name });
      params.set(name, keep(t));
    }
    return new BertModel(config, params);
  }

  /** Parameter count. */
  get numParams(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** Every parameter tensor. */
  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  #p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`BERT: no parameter '${name}'`);
    return t;
  }

  /**
   * Runs BERT on a padded batch. Returns all L+1 hidden states and the pooled output; with
   * `dropout` > 0 it trains (dropout on embeddings, attention probabilities and each sublayer).
   */
  forward(b: BertBatch, o: ForwardOptions = {}): BertOutput {
    const c = this.config;
    const { batch: B, seq: S } = b;
    const H = c.hiddenSize, A = c.numAttentionHeads, d = H / A;
    const n = B * S;
    for (
      const [k, v] of [["inputIds", b.inputIds], ["tokenTypeIds", b.tokenTypeIds], [
        "attentionMask",
        b.attentionMask,
      ]] as const
    ) {
      if (v.length !== n) {
        throw new RangeError(`BERT batch: ${k} has ${v.length} entries, expected ${B}×${S}`);
      }
    }
    if (S > c.maxPositionEmbeddings) {
      throw new RangeError(
        `BERT batch: sequence length ${S} exceeds max_position_embeddings ${c.maxPositionEmbeddings}`,
      );
    }
    const rate = o.dropout ?? 0;
    const seed = o.seed ?? 0;
    let site = 0;
    const row0 = o.rowOffset ?? 0;
    const drop = (t: Tensor) =>
      dropout(t, rate, seed, ((o.step ?? 0) * 4096 + site++) >>> 0, row0 * (t.size / B));

    const positions = new Int32Array(n);
    for (let i = 0; i < n; i++) positions[i] = i % S;
    const eps = c.layerNormEps;
    // In a scope of its own: what no backward reads (the lookups, their sums) is freed at once.
    let x = scope(() => {
      const emb = add(
        add(
          gatherRows(this.#p("embeddings.word_embeddings.weight"), b.inputIds, "input_ids"),
          gatherRows(this.#p("embeddings.position_embeddings.weight"), positions, "positions"),
        ),
        gatherRows(
          this.#p("embeddings.token_type_embeddings.weight"),
          b.tokenTypeIds,
          "token_type_ids",
        ),
      );
      return drop(
        layerNorm(
          emb,
          this.#p("embeddings.LayerNorm.weight"),
          this.#p("embeddings.LayerNorm.bias"),
          eps,
        ),
      );
    });
    const all = o.hidden !== "last";
    const hidden = all ? [x.reshape([B, S, H])] : [];

    const maskAdd = new Float32Array(n);
    for (let i = 0; i < n; i++) maskAdd[i] = (1 - b.attentionMask[i]) * MASK_VALUE;
    const mask = Tensor.from(maskAdd, [B, S], { name: "attention_mask" });
    const heads = (t: Tensor) => permute(t.reshape([B, S, A, d]), [0, 2, 1, 3]);
    /** Layer `l` on x → its output and that output as [B, S, H]. */
    const layer = (l: number, x: Tensor): [Tensor, Tensor | null] => {
      const p = (s: string) => this.#p(`encoder.layer.${l}.${s}`);
      const q = heads(linear(x, p("attention.self.query.weight"), p("attention.self.query.bias")));
      const k = heads(linear(x, p("attention.self.key.weight"), p("attention.self.key.bias")));
      const v = heads(linear(x, p("attention.self.value.weight"), p("attention.self.value.bias")));
      const probs = drop(softmax(matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(d) }), mask));
      const ctx = permute(matmul(probs, v), [0, 2, 1, 3]).reshape([n, H]);
      const attn = drop(
        linear(ctx, p("attention.output.dense.weight"), p("attention.output.dense.bias")),
      );
      const h1 = layerNorm(
        add(attn, x),
        p("attention.output.LayerNorm.weight"),
        p("attention.output.LayerNorm.bias"),
        eps,
      );
      const inter = gelu(linear(h1, p("intermediate.dense.weight"), p("intermediate.dense.bias")));
      const out = drop(linear(inter, p("output.dense.weight"), p("output.dense.bias")));
      const y = layerNorm(
        add(out, h1),
        p("output.LayerNorm.weight"),
        p("output.LayerNorm.bias"),
        eps,
      );
      return [y, all ? y.reshape([B, S, H]) : null];
    };

    // Each layer in its own scope: what the backward does not read (model/tensor.ts `record`'s
    // `reads`) is freed as the layer ends, not when the step does.
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const [next, state] = scope(() => layer(l, x));
      if (!all) release(x);
      x = next;
      if (state) hidden.push(state);
    }
    mask.dispose();
    if (!all) hidden.push(x.reshape([B, S, H]));

    const clsRows = Int32Array.from({ length: B }, (_, i) => i * S);
    const cls = gatherRows(x, clsRows, "[CLS] rows");
    const pooled = tanh(linear(cls, this.#p("pooler.dense.weight"), this.#p("pooler.dense.bias")));
    return { hidden, pooled };
  }

  /** Reads the weights back to the host (checkpointing). */
  async toHost(): Promise<HostWeights> {
    const out: HostWeights = new Map();
    for (const [name, t] of this.params) {
      out.set(name, { shape: [...t.shape], data: await t.readF32() });
    }
    return out;
  }

  /** Frees every parameter (and its gradient). */
  dispose(): void {
    for (const t of this.params.values()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}
