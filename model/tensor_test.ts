// Autograd end to end (attention built from the ops against TF.js), scopes and disposal, errors
// thrown before dispatch, and determinism.
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn } from "../tests/helpers.ts";
import {
  add,
  crossEntropy,
  dropout,
  layerNorm,
  linear,
  matmul,
  mse,
  mul,
  permute,
  softmax,
  sumAll,
} from "./ops.ts";
import { backward, gpu, initGpu, keep, noGrad, scope, tapeLength, Tensor } from "./tensor.ts";

const tf = await oracle();

Deno.test("multi-head attention built from the ops matches TF.js, forward and every gradient", async () => {
  const [B, S, A, d] = [2, 7, 3, 5];
  const H = A * d;
  const mask = new Float32Array(B * S);
  for (let k = 5; k < S; k++) mask[S + k] = -10000; // second sequence has 5 real tokens
  const heads = (t: Tensor) => permute(t.reshape([B, S, A, d]), [0, 2, 1, 3]);
  await checkOp(
    "attention",
    [
      { data: randn(1, B * S * H), shape: [B, S, H] },
      { data: randn(2, H * H, 0.3), shape: [H, H] },
      { data: randn(3, H * H, 0.3), shape: [H, H] },
      { data: randn(4, H * H, 0.3), shape: [H, H] },
      { data: randn(5, H), shape: [H] },
      { data: mask, shape: [B, S], grad: false },
    ],
    (x, wq, wk, wv, bq, m) => {
      const q = heads(linear(x, wq, bq)), k = heads(linear(x, wk)), v = heads(linear(x, wv));
      const p = softmax(matmul(q, k, { transB: true, alpha: 1 / Math.sqrt(d) }), m);
      return permute(matmul(p, v), [0, 2, 1, 3]).reshape([B, S, H]);
    },
    (x, wq, wk, wv, bq, m) => {
      const th = (t: import("@tensorflow/tfjs").Tensor) =>
        tf.transpose(t.reshape([B, S, A, d]), [0, 2, 1, 3]);
      const x2 = x.reshape([B * S, H]);
      const q = th(tf.add(tf.matMul(x2, wq, false, true), bq));
      const k = th(tf.matMul(x2, wk, false, true)), v = th(tf.matMul(x2, wv, false, true));
      const sc = tf.add(
        tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)),
        m.reshape([B, 1, 1, S]),
      );
      return tf.transpose(tf.matMul(tf.softmax(sc), v), [0, 2, 1, 3]).reshape([B, S, H]);
    },
    // Three chained matmuls of width ≤ 15 plus a softmax: rounding ~1e-6.
    { atol: 2e-6, rtol: 1e-5, gradAtol: 5e-6, gradRtol: 1e-4 },
  );
});

Deno.test("scope frees intermediates, keeps results; tape-held tensors survive for backward", async () => {
  await initGpu();
  const x = Tensor.from(randn(1, 64), [8, 8], { requiresGrad: true });
  const live0 = gpu().liveBytes;
  const y = scope(() => {
    const a = mul(x, x);
    const b = add(a, x);
    return sumAll(b);
  });
  ok(!y.disposed);
  ok(gpu().liveBytes > live0, "tape keeps intermediates alive until backward");
  backward(y);
  deepStrictEqual(tapeLength(), 0);
  const g = await x.grad!.readF32();
  const xv = await x.readF32();
  g.forEach((v, i) => ok(Math.abs(v - (2 * xv[i] + 1)) < 1e-5));
  const r = noGrad(() => scope(() => sumAll(mul(x, x))));
  deepStrictEqual(tapeLength(), 0, "noGrad records nothing");
  r.dispose();
  y.dispose();
  x.grad!.dispose();
  x.dispose();
});

Deno.test("a forward in an inner scope, backward outside it: the tensors backward reads survive", async () => {
  // LayerNorm's statistics, cross-entropy's labels and MSE's target are read by their backward
  // closures but are neither inputs nor outputs of their op: the tape must keep them alive.
  await initGpu();
  const x = keep(Tensor.from(randn(3, 4 * 6), [4, 6], { requiresGrad: true }));
  const gamma = keep(Tensor.from(randn(5, 6, 0.2).map((v) => 1 + v), [6], { requiresGrad: true }));
  const beta = keep(Tensor.zeros([6]));
  const w = keep(Tensor.from(randn(4, 3 * 6, 0.5), [3, 6], { requiresGrad: true }));
  const forward = () => {
    const z = linear(layerNorm(x, gamma, beta), w); // [4, 3]
    const target = Tensor.from(randn(6, 12), [12]);
    return add(crossEntropy(z, Int32Array.of(0, 2, 1, 2)), mse(z.reshape([12]), target));
  };
  const grads = async (inner: boolean) => {
    const ps = [x, gamma, w];
    await scope(async () => {
      const loss = inner ? scope(forward) : forward();
      backward(loss);
      await gpu().sync();
    });
    const out = await Promise.all(ps.map((p) => p.grad!.readF32()));
    for (const p of ps) {
      p.grad!.dispose();
      p.grad = null;
    }
    return out;
  };
  const live = gpu().liveBytes;
  const outer = await grads(false);
  const inner = await grads(true);
  deepStrictEqual(inner, outer, "same gradients whether the forward ran in an inner scope or not");
  deepStrictEqual(gpu().liveBytes, live, "and nothing leaks");
  deepStrictEqual(tapeLength(), 0);
  [x, gamma, beta, w].forEach((t) => t.dispose());
});

Deno.test("use after dispose names the tensor", async () => {
  await initGpu();
  const t = Tensor.from([1, 2, 3], [3], { name: "weights" });
  t.dispose();
  throws(() => add(t, t), /tensor 'weights' \[3\] f32 used after dispose/);
  await rejects(() => t.read(), /used after dispose/);
});

Deno.test("errors are thrown before anything is dispatched", async () => {
  await initGpu();
  const a = Tensor.from(randn(1, 6), [2, 3]);
  const before = gpu().totalDispatches;
  throws(() => add(a, Tensor.from([1, 2], [2])), /shapes \[2, 3\] and \[2\] do not match/);
  throws(
    () => layerNorm(a, Tensor.from([1, 1], [2]), Tensor.from([0, 0], [2])),
    /gamma and beta of 3/,
  );
  throws(() => Tensor.from([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
  throws(() => permute(a, [0, 0]), /not a permutation/);
  const maxBytes = Math.min(gpu().limits.maxBufferSize, gpu().limits.maxStorageBufferBindingSize);
  const rows = Math.ceil(maxBytes / 4 / 1024) + 1;
  throws(
    () => Tensor.empty([rows, 1024], "f32", "activations"),
    /activations.*over this device's limit.*smaller batch/,
  );
  const big = Tensor.from(randn(2, 4 * 1024), [4, 1024]);
  throws(() => matmul(big, big), /inner sizes 1024 and 4/);
  deepStrictEqual(gpu().totalDispatches, before, "nothing was dispatched");
  [a, big].forEach((t) => t.dispose());
});

Deno.test("determinism: the same seeded step twice gives bit-identical gradients", async () => {
  await initGpu();
  const run = async () => {
    const w = keep(Tensor.from(randn(9, 65 * 63, 0.2), [63, 65], { requiresGrad: true }));
    const g = keep(Tensor.from(new Float32Array(63).fill(1), [63], { requiresGrad: true }));
    await scope(async () => {
      const x = Tensor.from(randn(8, 17 * 65), [17, 65]);
      const h = dropout(layerNorm(linear(x, w), g, Tensor.zeros([63])), 0.1, 42, 3);
      backward(sumAll(mul(h, h)));
      await w.grad!.read();
    });
    const out = [await w.grad!.readF32(), await g.grad!.readF32()];
    [w.grad!, g.grad!, w, g].forEach((t) => t.dispose());
    return out;
  };
  deepStrictEqual(await run(), await run());
});

Deno.test("a forward is recorded into one command buffer until a readback", async () => {
  await initGpu();
  await gpu().sync();
  const submits = gpu().totalSubmits;
  const x = Tensor.from(randn(1, 17 * 65), [17, 65]);
  const w = Tensor.from(randn(2, 65 * 65), [65, 65]);
  let h = x;
  for (let i = 0; i < 20; i++) h = linear(h, w); // 20 dispatches, no submit
  deepStrictEqual(gpu().totalSubmits, submits);
  await h.read();
  deepStrictEqual(gpu().totalSubmits, submits + 1, "one submit for 20 matmuls and the copy");
});
