/**
 * AdamW with per-parameter-group weight decay and global-norm gradient clipping, all on the
 * GPU: one step records the sum-of-squares partials, the norm and the updates into the pending
 * command encoder, with no readback.
 * @module
 */
import { adamwUpdate, normFromPartials, normSlots, sumSquares } from "../kernels/optim.ts";
import { gpu, keep, Tensor } from "./tensor.ts";

/** A group of parameters sharing a weight decay (e.g. 0 for biases and LayerNorm). */
export interface ParamGroup {
  params: Tensor[];
  weightDecay: number;
}

/** AdamW settings (torch.optim.AdamW defaults, BERT's eps). */
export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Clip the global gradient norm to this value; 0 disables. */
  maxGradNorm?: number;
  /**
   * true (default): torch.optim.AdamW (bias-corrected moments, decay before the update). false:
   * transformers.AdamW(correct_bias=False), the seed's optimizer: no bias correction, and the
   * weight decay applied after the Adam update, on the updated weights (transformers' order).
   */
  biasCorrection?: boolean;
}

/**
 * AdamW (decoupled weight decay, bias correction switchable) over parameter groups.
 *
 * @example
 * ```ts ignore
 * const opt = new AdamW([{ params: weights, weightDecay: 0.01 }, { params: biases, weightDecay: 0 }],
 *   { lr: 2e-5, maxGradNorm: 1 });
 * backward(loss);
 * opt.step();      // uses and then clears each parameter's .grad
 * ```
 */
export class AdamW {
  readonly groups: ParamGroup[];
  readonly opts: Required<AdamWOptions>;
  /** Number of steps taken (for bias correction; restored from checkpoints). */
  stepCount = 0;
  #m = new Map<Tensor, Tensor>();
  #v = new Map<Tensor, Tensor>();
  #partials: Tensor;
  #norm: Tensor;
  #slots: number;

  constructor(groups: ParamGroup[], opts: AdamWOptions) {
    this.groups = groups;
    this.opts = {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-6,
      maxGradNorm: 0,
      biasCorrection: true,
      ...opts,
    };
    for (const p of this.params) {
      this.#m.set(p, keep(Tensor.zeros(p.shape, "f32", `${p.name}.adam_m`)));
      this.#v.set(p, keep(Tensor.zeros(p.shape, "f32", `${p.name}.adam_v`)));
    }
    this.#slots = this.params.reduce((s, p) => s + normSlots(p.size), 0);
    this.#partials = keep(Tensor.zeros([Math.max(1, this.#slots)], "f32", "grad_norm_partials"));
    this.#norm = keep(Tensor.zeros([1], "f32", "grad_norm"));
  }

  /** Every parameter, group order. */
  get params(): Tensor[] {
    return this.groups.flatMap((g) => g.params);
  }

  /** The global gradient norm of the last step, in a GPU buffer (read it only when logging). */
  get gradNorm(): Tensor {
    return this.#norm;
  }

  /**
   * One update of every parameter from its `.grad` (a parameter without a gradient counts as
   * zero in the norm and is left unchanged), with learning rate `lr` (default: the options').
   * Disposes the gradients afterwards.
   */
  step(lr = this.opts.lr): void {
    const g = gpu();
    this.stepCount++;
    let offset = 0;
    g.clear(this.#partials.buffer);
    for (const p of this.params) {
      if (p.grad) sumSquares(g, p.grad.buffer, p.size, this.#partials.buffer, offset);
      offset += normSlots(p.size);
    }
    normFromPartials(g, this.#partials.buffer, this.#norm.buffer, this.#slots);
    for (const group of this.groups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        adamwUpdate(
          g,
          p.buffer,
          p.grad.buffer,
          this.#m.get(p)!.buffer,
          this.#v.get(p)!.buffer,
          this.#norm.buffer,
          p.size,
          {
            lr,
            beta1: this.opts.beta1,
            beta2: this.opts.beta2,
            eps: this.opts.eps,
            weightDecay: group.weightDecay,
            step: this.stepCount,
            maxNorm: this.opts.maxGradNorm,
            biasCorrection: this.opts.biasCorrection,
          },
        );
      }
    }
    this.zeroGrad();
  }

  /** Disposes every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** The moment estimates, by parameter name (checkpointing). */
  state(): { m: Map<string, Tensor>; v: Map<string, Tensor> } {
    const m = new Map<string, Tensor>(), v = new Map<string, Tensor>();
    for (const p of this.params) {
      m.set(p.name, this.#m.get(p)!);
      v.set(p.name, this.#v.get(p)!);
    }
    return { m, v };
  }

  /** Restores moments saved by {@linkcode AdamW.state} (host arrays by parameter name). */
  loadState(step: number, m: Map<string, Float32Array>, v: Map<string, Float32Array>): void {
    this.stepCount = step;
    for (const p of this.params) {
      const mm = m.get(p.name), vv = v.get(p.name);
      if (!mm || !vv || mm.length !== p.size || vv.length !== p.size) {
        throw new Error(`optimizer state: missing or mis-sized moments for parameter '${p.name}'`);
      }
      gpu().upload(this.#m.get(p)!.buffer, mm);
      gpu().upload(this.#v.get(p)!.buffer, vv);
    }
  }

  /** Frees the optimizer's GPU state. */
  dispose(): void {
    for (const t of [...this.#m.values(), ...this.#v.values(), this.#partials, this.#norm]) {
      t.dispose();
    }
  }
}
