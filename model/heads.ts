/**
 * The BERTVision models trained on stored activations, as GPU modules: the adapter-pooler (AP)
 * with its GLUE and SQuAD heads, learned pooling (LP) and average pooling (AvgP), each with a
 * Linear read-out on top. One class, {@linkcode BvHead}, picked by `pooling` ("ap" | "lp" |
 * "avg") and `readout` ("pooled": one output vector per row, as GLUE heads; "token": one per
 * token, as SQuAD's start/end). Which read-out and how many outputs a task needs is its head
 * kind's business (tasks/kinds/); this module knows no task.
 *
 *   input  x [B, L, T, F] stored hidden states (layout "full"), or [B, L, F] (layout "cls",
 *          read as T = 1)
 *   AP     a[b, t, d, l] = GELU(Σ_f x[b, l, t, f]·W[d, f] + bias[d])   W [D, F] shared, or
 *          W [L, D, F] / bias [L, D] one Linear per layer; laid out [B, T, D, L] as BERTVision
 *   LP     p[b, t, f] = scale · Σ_l softmax(layerLogits)_l · x[b, l, t, f]
 *   AvgP   p[b, t, f] = mean_l x[b, l, t, f]
 *   pooled logits [B, N] = Linear(flatten(a or p))   (AP_GLUE; N = 1 for STS-B regression)
 *   token  logits [B, N, T] = Linear(a[b, t] as D·L features → N), or Linear(p[b, t] → N);
 *          optional skip: + Linear_skip(x[b, L-1, t] → N)   (AP_SQuAD: N = 2, start and end)
 *
 * Choices documented here because BERTVision's code leaves them open:
 * - LP/AvgP GLUE heads flatten all T·F pooled features like AP_GLUE flattens T·D·L (with the
 *   "cls" layout that is exactly the [CLS] vector).
 * - The skip connection is tests/oracle/tf_heads.ts `tfApSquad`'s: a second Linear(F → 2) on
 *   the last stored layer added to the logits (BERTVision's "add the final sequence output" does
 *   not type-check when D·L ≠ F). Available for every pooling with the "token" read-out.
 * - Token logits come out [B, N, T] so SQuAD's `crossEntropy` over its 2B rows with labels
 *   [s0, e0, s1, e1, ...] is exactly (CE(start) + CE(end)) / 2.
 *
 * Initialisation is PyTorch's nn.Linear default, U(-1/√in, 1/√in) for weights and biases, from
 * a seeded {@linkcode Rng} with one stream per parameter name; LP's layer logits are N(0, 0.1)
 * and its scale 1 (BERTVision's `BertConcat`).
 *
 * Checked against the TF.js references (values and every parameter's gradient) by
 * model/heads_test.ts.
 * @module
 */
import { Rng } from "../data/rng.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { add, gatherRows, gelu, linear, matmul, mean, mul, permute, softmax } from "./ops.ts";
import { keep, numel, Tensor } from "./tensor.ts";

/** Which pooling sits on the stored layers. */
export type Pooling = "ap" | "lp" | "avg";
/** AP adapter size of pooled read-outs when none is given (token read-outs use the token count). */
export const DEFAULT_ADAPTER_DIM = 8;

/** The read-out: one output vector per row ("pooled") or one per token ("token"). */
export type Readout = "pooled" | "token";

/** Everything that fixes a head's parameter shapes (saved with its weights). */
export interface HeadConfig {
  /** "ap" adapter-pooler (default), "lp" learned pooling, "avg" average pooling. */
  pooling: Pooling;
  /** "pooled" (a row's logits from every token's features) or "token" (logits per token). */
  readout: Readout;
  /** Output units: per row (pooled) or per token (token); e.g. classes, 1, or 2 for SQuAD. */
  outputs: number;
  /** Stored layers L (L+1 of BERT). */
  layers: number;
  /** Tokens T per row (1 for the "cls" layout). */
  tokens: number;
  /** Features F per token (BERT's hidden size). */
  features: number;
  /** AP adapter size D. Default: `tokens` for the token read-out (BERTVision's "adapter size
   * 386"), else 8. */
  adapterDim?: number;
  /** AP: one Linear shared by every layer (default true, the paper's best) or one per layer. */
  shared?: boolean;
  /** Token read-out only: add Linear(F → outputs) of the last stored layer. Default false. */
  skip?: boolean;
}

/** Parameter count and its share of BERT's. */
export interface ParamReport {
  params: number;
  bertParams: number;
  /** params / bertParams (e.g. 0.001 = 0.1%). */
  fraction: number;
}

/** The config with every default filled in and checked. */
export function resolveHeadConfig(c: HeadConfig): Required<HeadConfig> {
  const pooling = c.pooling ?? "ap";
  if (!["ap", "lp", "avg"].includes(pooling)) {
    throw new Error(`head: pooling must be "ap", "lp" or "avg", got ${JSON.stringify(pooling)}`);
  }
  if (c.readout !== "pooled" && c.readout !== "token") {
    throw new Error(`head: readout must be "pooled" or "token", got ${JSON.stringify(c.readout)}`);
  }
  const tokenwise = c.readout === "token";
  const adapterDim = c.adapterDim ?? (tokenwise ? c.tokens : DEFAULT_ADAPTER_DIM);
  for (
    const [k, v] of [
      ["outputs", c.outputs],
      ["layers", c.layers],
      ["tokens", c.tokens],
      ["features", c.features],
      ["adapterDim", adapterDim],
    ] as const
  ) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`head: ${k} must be a positive integer`);
  }
  const skip = c.skip ?? false;
  if (skip && !tokenwise) {
    throw new Error(`head: skip is only defined for the token read-out (span heads)`);
  }
  return {
    pooling,
    readout: c.readout,
    outputs: c.outputs,
    layers: c.layers,
    tokens: c.tokens,
    features: c.features,
    adapterDim,
    shared: c.shared ?? true,
    skip,
  };
}

/**
 * Parameter names and shapes of a head, in a fixed order:
 * `adapter.weight` [D, F] | [L, D, F], `adapter.bias` [D] | [L, D] (AP);
 * `pooling.layer_logits` [L], `pooling.scale` [1] (LP);
 * `classifier.weight` [N, in], `classifier.bias` [N] (pooled) or `qa_outputs.weight` [N, in],
 * `qa_outputs.bias` [N] (token); `skip.weight` [N, F], `skip.bias` [N] (token with skip).
 */
export function headParamShapes(config: HeadConfig): Map<string, number[]> {
  const c = resolveHeadConfig(config);
  const { layers: L, tokens: T, features: F, adapterDim: D, outputs: N } = c;
  const m = new Map<string, number[]>();
  if (c.pooling === "ap") {
    m.set("adapter.weight", c.shared ? [D, F] : [L, D, F]);
    m.set("adapter.bias", c.shared ? [D] : [L, D]);
  } else if (c.pooling === "lp") {
    m.set("pooling.layer_logits", [L]);
    m.set("pooling.scale", [1]);
  }
  const perToken = c.pooling === "ap" ? D * L : F;
  if (c.readout === "token") {
    m.set("qa_outputs.weight", [N, perToken]);
    m.set("qa_outputs.bias", [N]);
    if (c.skip) {
      m.set("skip.weight", [N, F]);
      m.set("skip.bias", [N]);
    }
  } else {
    m.set("classifier.weight", [N, T * perToken]);
    m.set("classifier.bias", [N]);
  }
  return m;
}

/** Number of parameters of a head with this config (no GPU needed). */
export function headParamCount(config: HeadConfig): number {
  let n = 0;
  for (const s of headParamShapes(config).values()) n += numel(s);
  return n;
}

/** Fan-in of a Linear parameter (the bound of PyTorch's default init is 1/√fanIn). */
function fanIn(name: string, shapes: Map<string, number[]>): number {
  const w = shapes.get(name.replace(/\.bias$/, ".weight"))!;
  return w[w.length - 1];
}

/**
 * Seeded initial values: PyTorch nn.Linear's default U(-1/√in, 1/√in) for every Linear weight
 * and bias (per-layer adapters: each layer's Linear(F → D) alike), LP layer logits N(0, 0.1),
 * LP scale 1. Each tensor draws from its own stream (seed, name), so values do not depend on
 * which other parameters exist.
 */
export function initHeadWeights(
  config: HeadConfig,
  seed: number,
): Map<string, { shape: number[]; data: Float32Array }> {
  const shapes = headParamShapes(config);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of shapes) {
    const data = new Float32Array(numel(shape));
    const rng = new Rng(seed, `bertvision-head/${name}`);
    if (name === "pooling.scale") data.fill(1);
    else if (name === "pooling.layer_logits") {
      for (let i = 0; i < data.length; i++) data[i] = 0.1 * rng.normal();
    } else {
      const bound = 1 / Math.sqrt(fanIn(name, shapes));
      for (let i = 0; i < data.length; i++) data[i] = (2 * rng.uniform() - 1) * bound;
    }
    out.set(name, { shape, data });
  }
  return out;
}

/**
 * A BERTVision model on the GPU: parameters (named, requiring gradients) and a forward on
 * stored activations.
 *
 * @example
 * ```ts ignore
 * await initGpu();
 * const head = BvHead.create({ pooling: "ap", readout: "pooled", outputs: 2,
 *   layers: 13, tokens: 128, features: 768, adapterDim: 8 }, 42);
 * const logits = head.forward(x);            // x [B, 13, 128, 768] → [B, 2]
 * console.log(head.report(bertParams));      // { params, bertParams, fraction }
 * ```
 */
export class BvHead {
  /** The resolved config. */
  readonly config: Required<HeadConfig>;
  /** Parameters by name ({@linkcode headParamShapes} order). */
  readonly params: Map<string, Tensor>;

  private constructor(config: Required<HeadConfig>, params: Map<string, Tensor>) {
    this.config = config;
    this.params = params;
  }

  /** A freshly initialised head ({@linkcode initHeadWeights}) on the GPU. */
  static create(config: HeadConfig, seed: number): BvHead {
    return BvHead.fromHost(config, initHeadWeights(config, seed));
  }

  /**
   * Uploads host weights; every parameter of {@linkcode headParamShapes} must be present with
   * its shape (the error names it). Parameters require gradients.
   */
  static fromHost(
    config: HeadConfig,
    weights: Map<string, { shape: readonly number[]; data: Float32Array }>,
  ): BvHead {
    const c = resolveHeadConfig(config);
    const shapes = headParamShapes(c);
    for (const [name, shape] of shapes) {
      const w = weights.get(name);
      if (!w) throw new Error(`head weights: missing '${name}' of shape [${shape}]`);
      if (w.shape.join() !== shape.join() || w.data.length !== numel(shape)) {
        throw new Error(
          `head weights: '${name}' has shape [${w.shape}] (${w.data.length} values), expected ` +
            `[${shape}] for ${describeConfig(c)}`,
        );
      }
    }
    for (const name of weights.keys()) {
      if (!shapes.has(name)) {
        throw new Error(`head weights: unexpected '${name}' for ${describeConfig(c)}`);
      }
    }
    const params = new Map<string, Tensor>();
    for (const [name, shape] of shapes) {
      params.set(
        name,
        keep(Tensor.from(weights.get(name)!.data, shape, { requiresGrad: true, name })),
      );
    }
    return new BvHead(c, params);
  }

  /** Parameter count. */
  get numParams(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** Parameter count and its share of BERT's `bertParams`. */
  report(bertParams: number): ParamReport {
    return { params: this.numParams, bertParams, fraction: this.numParams / bertParams };
  }

  /** Every parameter. */
  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  /**
   * AdamW groups, chosen by parameter name: the Linear weights (`*.weight`: the adapter's, the
   * classifier's, the span and skip read-outs') decay by `weightDecay`; the biases (a per-layer
   * adapter bias [L, D] included) and LP's layer logits and scale do not, as BERT fine-tuning
   * excludes biases; with `decayAll` every parameter decays (the seed's heads:
   * `AdamW(model.parameters(), weight_decay=args.l2)`).
   */
  paramGroups(
    weightDecay: number,
    decayAll = false,
  ): { params: Tensor[]; weightDecay: number }[] {
    const named = [...this.params];
    const decays = ([name]: [string, Tensor]) => decayAll || name.endsWith(".weight");
    return [
      { params: named.filter(decays).map(([, p]) => p), weightDecay },
      { params: named.filter((e) => !decays(e)).map(([, p]) => p), weightDecay: 0 },
    ];
  }

  #p(name: string): Tensor {
    return this.params.get(name)!;
  }

  /**
   * The forward pass. `x` is [B, L, T, F] (or [B, L, F] for the "cls" layout when T = 1).
   * Returns logits [B, N] ("pooled") or [B, N, T] ("token"; SQuAD: row 0 start, row 1 end).
   */
  forward(x: Tensor): Tensor {
    const c = this.config;
    const { layers: L, tokens: T, features: F } = c;
    const ok = (x.shape.length === 4 && x.shape[1] === L && x.shape[2] === T &&
      x.shape[3] === F) ||
      (x.shape.length === 3 && T === 1 && x.shape[1] === L && x.shape[2] === F);
    if (!ok) {
      throw new RangeError(
        `head forward: input ${x.describe()} does not match [B, L=${L}, T=${T}, F=${F}]` +
          (T === 1 ? ` (or [B, ${L}, ${F}])` : ""),
      );
    }
    const B = x.shape[0];
    const x4 = x.shape.length === 4 ? x : x.reshape([B, L, 1, F]);
    let feats: Tensor; // [B, T, perToken]
    if (c.pooling === "ap") {
      feats = this.adapterPooler(x4).reshape([B, T, c.adapterDim * L]);
    } else if (c.pooling === "avg") {
      feats = mean(x4, 1);
    } else {
      // Σ_l w_l x[b, l, t, f] as [B, T, F, L] · wᵀ with w = softmax(logits) as a [1, L] Linear.
      const w = softmax(this.#p("pooling.layer_logits").reshape([1, L]));
      const xp = permute(x4, [0, 2, 3, 1]);
      feats = mul(linear(xp, w), this.#p("pooling.scale")).reshape([B, T, F]);
    }
    if (c.readout === "pooled") {
      return linear(
        feats.reshape([B, T * feats.shape[2]]),
        this.#p("classifier.weight"),
        this.#p("classifier.bias"),
      );
    }
    let logits = linear(feats, this.#p("qa_outputs.weight"), this.#p("qa_outputs.bias"));
    if (c.skip) {
      const rows = Int32Array.from({ length: B }, (_, b) => b * L + L - 1);
      const last = gatherRows(x4.reshape([B * L, T * F]), rows, "last stored layer").reshape([
        B,
        T,
        F,
      ]);
      logits = add(logits, linear(last, this.#p("skip.weight"), this.#p("skip.bias")));
    }
    return permute(logits, [0, 2, 1]); // [B, N, T]
  }

  /** The adapter-pooler alone: x [B, L, T, F] → [B, T, D, L] (as `tfAdapterPooler`). */
  adapterPooler(x: Tensor): Tensor {
    const c = this.config;
    if (c.pooling !== "ap") throw new Error(`adapterPooler on a "${c.pooling}" head`);
    const [B, L, T, F] = x.shape;
    const D = c.adapterDim;
    const w = this.#p("adapter.weight"), b = this.#p("adapter.bias");
    if (c.shared) {
      return permute(gelu(linear(x, w, b)), [0, 2, 3, 1]);
    }
    // One Linear per layer: batched over L, [L, B·T, F] · [L, D, F]ᵀ → [L, B·T, D]; the bias
    // [L, D] broadcasts as a trailing shape once layers sit next to D.
    const xl = permute(x, [1, 0, 2, 3]).reshape([L, B * T, F]);
    const y = permute(matmul(xl, w, { transB: true }), [1, 0, 2]); // [B·T, L, D]
    const a = gelu(add(y, b)).reshape([B, T, L, D]);
    return permute(a, [0, 1, 3, 2]);
  }

  /** Reads the weights back to the host (saving). */
  async toHost(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, t] of this.params) {
      out.set(name, { shape: [...t.shape], data: await t.readF32() });
    }
    return out;
  }

  /** Frees every parameter (and gradient). */
  dispose(): void {
    for (const t of this.params.values()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** "ap shared D=8 pooled(2) on [L=13, T=128, F=768]" for messages. */
export function describeConfig(c: Required<HeadConfig>): string {
  const pool = c.pooling === "ap"
    ? `ap ${c.shared ? "shared" : "per-layer"} D=${c.adapterDim}`
    : c.pooling;
  return `${pool} ${c.readout}(${c.outputs})${c.skip ? " +skip" : ""} on [L=${c.layers}, ` +
    `T=${c.tokens}, F=${c.features}]`;
}

const META_KEY = "bertvision_head";

/**
 * Saves a head's weights and config as safetensors (config JSON in the metadata under
 * `bertvision_head`, plus any `extra` metadata strings), atomically.
 */
export async function saveHead(
  path: string,
  head: BvHead,
  extra: Record<string, string> = {},
): Promise<void> {
  await writeSafetensors(path, await head.toHost(), {
    ...extra,
    [META_KEY]: JSON.stringify(head.config),
  });
}

/**
 * Loads a head written by {@linkcode saveHead}: config from the metadata, weights checked
 * against it (errors name the file and the tensor).
 */
export async function loadHead(path: string): Promise<BvHead> {
  const f = await readSafetensors(path);
  const raw = f.metadata[META_KEY];
  if (!raw) throw new Error(`${path}: no ${META_KEY} metadata; not a head saved by saveHead`);
  let config: HeadConfig;
  try {
    config = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${path}: ${META_KEY} metadata is not JSON (${(e as Error).message})`);
  }
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of f.tensors) {
    if (!(t.data instanceof Float32Array)) {
      throw new Error(`${path}: tensor '${name}' is ${t.dtype}, expected a float type`);
    }
    weights.set(name, { shape: t.shape, data: t.data });
  }
  try {
    return BvHead.fromHost(config, weights);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
