/**
 * Checks an op forward and backward against TF.js (CPU backend, its own autodiff): the forward
 * values, then the gradients of the scalar Σ op(x)·W for a fixed random W (a reduction to a
 * scalar that weights every output differently, so a gradient routed to the wrong element shows).
 * @module
 */
import type * as tfType from "@tensorflow/tfjs";
import { assertClose, oracle, randn } from "./helpers.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";
import { mul, sumAll } from "../model/ops.ts";

/** Tolerances: values and gradients separately (tinygrad's atol/rtol vs grad_atol/grad_rtol). */
export interface Tols {
  atol: number;
  rtol: number;
  gradAtol?: number;
  gradRtol?: number;
}

/** One input: its data and shape; `grad: false` for inputs that take no gradient. */
export interface Input {
  data: Float32Array;
  shape: number[];
  grad?: boolean;
}

/**
 * Runs `ours` on GPU tensors and `theirs` on TF.js tensors with the same inputs and compares
 * outputs and input gradients.
 */
export async function checkOp(
  name: string,
  inputs: Input[],
  ours: (...xs: Tensor[]) => Tensor,
  theirs: (...xs: tfType.Tensor[]) => tfType.Tensor,
  tol: Tols,
  seed = 7,
): Promise<void> {
  await initGpu();
  const tf = await oracle();
  const ts = inputs.map((i) => Tensor.from(i.data, i.shape, { requiresGrad: i.grad !== false }));
  const result = await scope(async () => {
    const y = ours(...ts);
    const w = Tensor.from(randn(seed + 1000, y.size), y.shape);
    const loss = sumAll(mul(y, w));
    backward(loss);
    return { y: await y.readF32(), w: await w.readF32() };
  });
  const grads = await Promise.all(ts.map((t) => t.grad ? t.grad.readF32() : null));
  ts.forEach((t) => {
    t.grad?.dispose();
    t.dispose();
  });

  const txs = inputs.map((i) => tf.tensor(i.data, i.shape));
  const ty = theirs(...txs);
  assertClose(result.y, ty.dataSync(), tol, `${name} forward`);
  const W = tf.tensor(result.w, ty.shape);
  const gradIdx = inputs.map((i, k) => (i.grad !== false ? k : -1)).filter((k) => k >= 0);
  const f = (...xs: tfType.Tensor[]) => {
    const all = txs.map((t, k) => (gradIdx.includes(k) ? xs[gradIdx.indexOf(k)] : t));
    return tf.sum(tf.mul(theirs(...all), W)) as tfType.Scalar;
  };
  const tgrads = tf.grads(f)(gradIdx.map((k) => txs[k]));
  const gtol = { atol: tol.gradAtol ?? tol.atol, rtol: tol.gradRtol ?? tol.rtol };
  gradIdx.forEach((k, j) => {
    const g = grads[k];
    if (!g) throw new Error(`${name}: input ${k} got no gradient`);
    assertClose(g, tgrads[j].dataSync(), gtol, `${name} d/dinput${k}`);
  });
  tf.dispose([...txs, ty, W, ...tgrads]);
}
