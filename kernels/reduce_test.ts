// Deterministic axis sums (kernels/reduce.ts, through model/ops.ts `sum` and `mean`): forward and
// backward against TF.js over leading, middle and trailing axes, including the long axes that
// take the two-pass (split) path.
import { checkOp } from "../tests/op_check.ts";
import { oracle, randn } from "../tests/helpers.ts";
import { mean, sum } from "../model/ops.ts";

const tf = await oracle();

for (
  const [shape, axis] of [[[17, 63], 0], [[3, 129, 5], 1], [[2, 3, 1000], 2], [[3000, 2], 0]] as [
    number[],
    number,
  ][]
) {
  Deno.test(`sum/mean over axis ${axis} of [${shape}]`, async () => {
    const n = shape.reduce((a, b) => a * b);
    const n_ax = shape[axis];
    // A sum of n_ax unit normals: rounding grows like √n_ax·ε·√n_ax: atol 2e-7·n_ax.
    const tol = { atol: 2e-7 * n_ax + 1e-7, rtol: 1e-6 };
    const ins = [{ data: randn(n, n), shape }];
    await checkOp(`sum ${shape}`, ins, (x) => sum(x, axis), (x) => tf.sum(x, axis), tol);
    await checkOp(`mean ${shape}`, ins, (x) => mean(x, axis), (x) => tf.mean(x, axis), tol);
  });
}
