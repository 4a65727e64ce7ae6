// Row gather with its scatter-add backward, and axis permutation (kernels/gather.ts, through
// model/ops.ts `gatherRows` and `permute`): against TF.js, and the embedding gradient's
// run-to-run determinism with heavily repeated ids.
import { deepStrictEqual } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn } from "../tests/helpers.ts";
import { gatherRows, mul, permute, sumAll } from "../model/ops.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";

const tf = await oracle();

// Rows of 65 take the scalar kernel, rows of 64 and of 4 the vec4 one.
for (const C of [65, 64, 4]) {
  Deno.test(`gatherRows (embedding, rows of ${C}) with repeated ids: scatter-add gradient`, async () => {
    const V = 129;
    const ids = Int32Array.from([5, 0, 128, 5, 5, 7, 0, 64, 3, 5, 127, 1, 2, 5, 9, 9, 100]);
    await checkOp(
      "embedding",
      [{ data: randn(1, V * C), shape: [V, C] }],
      (t) => gatherRows(t, ids),
      (t) => tf.gather(t, tf.tensor1d(ids, "int32")),
      // Gather is exact; the scatter sums ≤ 5 rows: atol 5·ε·|W·1|.
      { atol: 0, rtol: 0, gradAtol: 1e-6, gradRtol: 1e-6 },
    );
  });
}

Deno.test("embedding gradient is bit-identical run to run (no float atomics)", async () => {
  await initGpu();
  const V = 50, C = 33, N = 400;
  const ids = Int32Array.from({ length: N }, (_, i) => (i * 7919) % 11); // heavy repetition
  const run = async () => {
    const t = Tensor.from(randn(2, V * C), [V, C], { requiresGrad: true });
    await scope(async () => {
      const w = Tensor.from(randn(3, N * C), [N, C]);
      backward(sumAll(mul(gatherRows(t, ids), w)));
      await t.grad!.read();
    });
    const g = await t.grad!.readF32();
    t.grad!.dispose();
    t.dispose();
    return g;
  };
  deepStrictEqual(await run(), await run());
});

for (
  const [shape, perm] of [
    [[3, 17], [1, 0]],
    [[2, 3, 5, 7], [0, 2, 1, 3]],
    [[4, 1, 63], [2, 0, 1]],
    [[2, 3, 5, 7], [3, 2, 1, 0]],
  ] as [
    number[],
    number[],
  ][]
) {
  Deno.test(`permute [${shape}] by [${perm}]`, async () => {
    const n = shape.reduce((a, b) => a * b);
    await checkOp(
      `permute ${perm}`,
      [{ data: randn(n, n), shape }],
      (x) => permute(x, perm),
      (x) => tf.transpose(x, perm),
      { atol: 0, rtol: 0 },
    );
  });
}
