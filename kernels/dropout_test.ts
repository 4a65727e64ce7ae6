// Counter-based dropout (kernels/dropout.ts, through model/ops.ts `dropout`): the drop rate,
// inverted scaling, the GPU mask against the host mirror of its hash, the same mask in backward,
// determinism per (seed, stream), and identity at rate 0.
import { deepStrictEqual, ok } from "node:assert/strict";
import { dropout, sumAll } from "../model/ops.ts";
import { backward, initGpu, Tensor } from "../model/tensor.ts";
import { hashHost } from "./dropout.ts";

Deno.test("dropout: rate, inverted scaling, host-mirrored mask, same mask in backward", async () => {
  await initGpu();
  const n = 20000, rate = 0.1, seed = 1234, stream = 7;
  const x = Tensor.from(new Float32Array(n).fill(1), [n], { requiresGrad: true });
  const y = dropout(x, rate, seed, stream);
  const yv = await y.readF32();
  const threshold = Math.round(rate * 2 ** 32);
  let dropped = 0;
  for (let i = 0; i < n; i++) {
    const keep = hashHost(seed, stream, i) >= threshold;
    if (!keep) dropped++;
    // Kept elements are scaled by 1/(1-rate) exactly as float32 computes it.
    if (yv[i] !== (keep ? Math.fround(1 / (1 - rate)) : 0)) {
      throw new Error(`element ${i}: ${yv[i]} but the host mask says keep=${keep}`);
    }
  }
  // Binomial(20000, 0.1): σ ≈ 42, so ±200 is > 4.5σ.
  ok(Math.abs(dropped - n * rate) < 200, `dropped ${dropped} of ${n}`);
  backward(sumAll(y));
  deepStrictEqual(await x.grad!.readF32(), yv, "backward uses the forward's mask");
  const again = await dropout(x, rate, seed, stream).readF32();
  deepStrictEqual(again, yv, "same seed, same mask");
  const other = await dropout(x, rate, seed, stream + 1).readF32();
  ok(other.some((v, i) => v !== yv[i]), "another stream, another mask");
  ok(dropout(x, 0, seed, stream) === x, "rate 0 is the identity");
  x.grad!.dispose();
  x.dispose();
});
