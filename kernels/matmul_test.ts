// Matmul forward and backward against TF.js, every variant, at shapes that are not multiples of
// any tile (1, 3, 17, 63, 65, 127, 129) and at vec4-aligned ones where reg4 runs.
import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { checkOp } from "../tests/op_check.ts";
import { randn } from "../tests/helpers.ts";
import { MATMUL_VARIANTS, reg4Applies } from "./matmul.ts";
import { linear, matmul } from "../model/ops.ts";
import { initGpu, Tensor } from "../model/tensor.ts";

// Tolerance: float32 sums of K products of unit normals accumulated in different orders differ
// like a random walk of K roundings of partial sums of size ~√K: σ ≈ ε·√K·√K = 6e-8·K, so
// 6σ ≈ 4e-7·K. The gradients are matmuls over M, N or K, so they take the largest of the three.
const tolFor = (...dims: number[]) => {
  const K = Math.max(...dims);
  return { atol: 4e-7 * K + 1e-6, rtol: 1e-5 };
};

const CASES: [number, number, number, number][] = [
  // [batch, M, N, K]
  [1, 1, 1, 1],
  [1, 3, 17, 63],
  [2, 65, 127, 129],
  [1, 129, 63, 17],
  [3, 64, 68, 132], // vec4-aligned: reg4 proper runs
  [1, 17, 64, 768],
  [2, 36, 44, 20], // reg4 with 8×8 blocks: M and N ≡ 4 (mod 8), clamped second half
];

for (const variant of MATMUL_VARIANTS) {
  for (const [batch, M, N, K] of CASES) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]]) {
      const name = `matmul ${variant} b${batch} ${M}x${N}x${K} ${ta ? "T" : "N"}${tb ? "T" : "N"}`;
      Deno.test(name, async () => {
        const aShape = [batch, ...(ta ? [K, M] : [M, K])];
        const bShape = [batch, ...(tb ? [N, K] : [K, N])];
        await checkOp(
          name,
          [
            { data: randn(1, batch * M * K), shape: aShape },
            { data: randn(2, batch * K * N), shape: bShape },
          ],
          (a, b) => matmul(a, b, { transA: ta, transB: tb, variant }),
          (a, b) => tfMatmul(a, b, ta, tb),
          tolFor(M, N, K),
        );
      });
    }
  }
  for (const [B, S, I, O] of [[3, 17, 65, 63], [2, 9, 64, 68]]) {
    Deno.test(`matmul ${variant}: shared weight with bias and alpha (linear ${I}→${O})`, async () => {
      await checkOp(
        `linear ${variant}`,
        [
          { data: randn(3, B * S * I), shape: [B, S, I] },
          { data: randn(4, O * I, 0.1), shape: [O, I] },
          { data: randn(5, O), shape: [O] },
        ],
        (x, w, b) => matmul(x, w, { transB: true, bias: b, alpha: 0.5, variant }),
        (x, w, b) => {
          const tf = tfRef!;
          return tf.add(tf.mul(tf.matMul(x.reshape([B * S, I]), w, false, true), 0.5), b).reshape([
            B,
            S,
            O,
          ]);
        },
        tolFor(B * S, I, O),
      );
    });
  }
}

import type * as tfType from "@tensorflow/tfjs";
import { oracle } from "../tests/helpers.ts";
let tfRef: typeof tfType | null = null;
tfRef = await oracle();
function tfMatmul(a: tfType.Tensor, b: tfType.Tensor, ta: boolean, tb: boolean): tfType.Tensor {
  return tfRef!.matMul(a as tfType.Tensor3D, b as tfType.Tensor3D, ta, tb);
}

Deno.test("matmul: reg4 applies only to vec4-aligned shapes", () => {
  assertEquals(reg4Applies({ batch: 1, M: 3, N: 8, K: 8, transA: false, transB: false }), true);
  assertEquals(reg4Applies({ batch: 1, M: 3, N: 8, K: 8, transA: true, transB: false }), false);
  assertEquals(reg4Applies({ batch: 1, M: 4, N: 6, K: 8, transA: false, transB: false }), false);
  assertEquals(reg4Applies({ batch: 1, M: 4, N: 6, K: 8, transA: false, transB: true }), true);
});

Deno.test("matmul: mismatched shapes throw before dispatch, naming both", async () => {
  await initGpu();
  const a = Tensor.from(randn(1, 6), [2, 3]);
  const b = Tensor.from(randn(2, 8), [4, 2]);
  assertThrows(() => matmul(a, b), /\[2, 3\] · \[4, 2\]: inner sizes 3 and 4/);
  assertThrows(() => linear(a, Tensor.from(randn(3, 4), [2, 2])), /inner sizes 3 and 2/);
  a.dispose();
  b.dispose();
});
