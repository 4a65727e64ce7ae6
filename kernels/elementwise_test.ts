// Elementwise ops forward and backward against TF.js, at awkward sizes and extreme inputs.
import { checkOp } from "../tests/op_check.ts";
import { assertClose, oracle, randn, uniform } from "../tests/helpers.ts";
import { add, gelu, mul, relu, scale, square, sub, tanh } from "../model/ops.ts";
import { backward, initGpu, Tensor } from "../model/tensor.ts";
import { sumAll } from "../model/ops.ts";
import { forceInputLayout, type InputLayout, TEXTURE_WIDTH } from "./textures.ts";
import { binary } from "./elementwise.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";

const tf = await oracle();

/**
 * Registers `fn` once per input layout (kernels/textures.ts): storage-buffer loads (GPUs) and
 * texel fetches from input textures (software adapters), forced so both run on every adapter.
 */
function bothLayouts(name: string, fn: () => Promise<void>): void {
  for (const layout of ["buffer", "texture"] as InputLayout[]) {
    Deno.test(`${name} (${layout} inputs)`, async () => {
      forceInputLayout(layout);
      try {
        await fn();
      } finally {
        forceInputLayout(undefined);
      }
    });
  }
}
// Exact ops (add, mul, scale) agree to float32 rounding of one operation: rtol 2ε.
const EXACT = { atol: 1e-7, rtol: 2.4e-7 };

// 8212 = 4·(2·1024 + 5): two full texture rows and a partial third.
const TEXTURE_ROWS_N = 4 * (2 * TEXTURE_WIDTH + 5);

for (const n of [1, 3, 17, 63, 65, 127, 129, 768, 3072, TEXTURE_ROWS_N]) {
  bothLayouts(`add/sub/mul same shape n=${n}`, async () => {
    const ins = [{ data: randn(n, n), shape: [n] }, { data: randn(n + 1, n), shape: [n] }];
    await checkOp(`add ${n}`, ins, add, (a, b) => tf.add(a, b), EXACT);
    await checkOp(`sub ${n}`, ins, sub, (a, b) => tf.sub(a, b), EXACT);
    await checkOp(`mul ${n}`, ins, mul, (a, b) => tf.mul(a, b), EXACT);
  });
}

bothLayouts("add/mul broadcasting a bias row over (3, 17, 65)", async () => {
  const ins = [{ data: randn(1, 3 * 17 * 65), shape: [3, 17, 65] }, {
    data: randn(2, 65),
    shape: [65],
  }];
  // The bias gradient sums 51 rows: rounding of a 51-term sum, atol 51·ε·|terms| ≈ 3e-6.
  const tol = { ...EXACT, gradAtol: 3e-6, gradRtol: 1e-6 };
  await checkOp("add bias", ins, add, (a, b) => tf.add(a, b), tol);
  await checkOp("mul bias", ins, mul, (a, b) => tf.mul(a, b), tol);
});

bothLayouts(
  "add/sub/mul broadcasting a vec4 bias row over (5, 7, 64), a row of 4, and rows of 3 texture rows",
  async () => {
    // Sizes that are multiples of 4 take the vec4 kernels (broadcast index once per vec4).
    for (const [rows, cols] of [[35, 64], [9, 4], [3, 4 * TEXTURE_WIDTH + 8]]) {
      const ins = [{ data: randn(3, rows * cols), shape: [rows, cols] }, {
        data: randn(4, cols),
        shape: [cols],
      }];
      // The bias gradient sums `rows` terms: atol rows·ε·|terms| ≈ 3e-6 at 35 rows.
      const tol = { ...EXACT, gradAtol: 3e-6, gradRtol: 1e-6 };
      await checkOp(`add bias ${cols}`, ins, add, (a, b) => tf.add(a, b), tol);
      await checkOp(`sub bias ${cols}`, ins, sub, (a, b) => tf.sub(a, b), tol);
      await checkOp(`mul bias ${cols}`, ins, mul, (a, b) => tf.mul(a, b), tol);
    }
  },
);

// Values in ±40: GELU and tanh at extremes (erfc tails, tanh saturation, no overflow to NaN).
const extreme = (n: number, seed: number) => {
  const x = uniform(seed, n, -40, 40);
  x[0] = -30;
  x[1] = 30;
  x[2] = 0;
  if (n > 4) x[3] = -100;
  if (n > 5) x[4] = 100;
  return x;
};

for (const n of [3, 129, 3072, TEXTURE_ROWS_N]) {
  bothLayouts(`gelu n=${n} against TF.js, normal and extreme inputs`, async () => {
    // tf.erf is Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), ours erfc with relative error
    // ≤ 1.2e-7; GELU = 0.5·x·(1 + erf) carries the oracle's error times |x|/2: atol 4e-7·|x|max.
    const tfGelu = (x: import("@tensorflow/tfjs").Tensor) =>
      tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
    await checkOp(`gelu ${n}`, [{ data: randn(n, n, 3), shape: [n] }], gelu, tfGelu, {
      atol: 2e-6,
      rtol: 1e-6,
      gradAtol: 2e-6,
      gradRtol: 1e-5,
    });
    await checkOp(`gelu extreme ${n}`, [{ data: extreme(n, n), shape: [n] }], gelu, tfGelu, {
      atol: 2e-5,
      rtol: 1e-6,
      gradAtol: 2e-6,
      gradRtol: 1e-5,
    });
  });
  bothLayouts(`tanh/scale/square/relu n=${n}`, async () => {
    // tanh through exp: a few ulps (rtol 1e-6); saturates to exactly ±1 beyond ±9. Its
    // gradient 1 - y² cancels near saturation: y's rounding (ε = 6e-8) leaves 2ε absolute
    // in 1 - y², times |W| ≤ 4 here: gradAtol 5e-7.
    const tol = { atol: 1e-7, rtol: 1e-6, gradAtol: 5e-7, gradRtol: 1e-6 };
    await checkOp(
      `tanh ${n}`,
      [{ data: extreme(n, n + 1), shape: [n] }],
      tanh,
      (x) => tf.tanh(x),
      tol,
    );
    await checkOp(
      `tanh normal ${n}`,
      [{ data: randn(n, n), shape: [n] }],
      tanh,
      (x) => tf.tanh(x),
      tol,
    );
    const ins = [{ data: randn(n + 2, n), shape: [n] }];
    await checkOp(`scale ${n}`, ins, (x) => scale(x, -1.75), (x) => tf.mul(x, -1.75), EXACT);
    await checkOp(`square ${n}`, ins, square, (x) => tf.square(x), EXACT);
    await checkOp(`relu ${n}`, ins, relu, (x) => tf.relu(x), EXACT);
  });
}

bothLayouts(
  "gelu against a float64 reference: relative accuracy in the negative tail",
  async () => {
    await initGpu();
    const xs = Float32Array.from([-12, -8, -5, -3, -1, -0.1, 0, 0.1, 1, 3, 5, 8, 12, 30, -30, 0.5]);
    const y = await gelu(Tensor.from(xs, [xs.length])).readF32();
    // float64 Φ(x) by Simpson's rule on the normal density (20k steps from -40: error < 1e-12).
    const phi = (x: number) => {
      if (x > 8) return 1;
      const lo = -40, steps = 20000, h = (x - lo) / steps;
      let s = 0;
      for (let i = 0; i <= steps; i++) {
        const t = lo + i * h;
        const w = i === 0 || i === steps ? 1 : i % 2 ? 4 : 2;
        s += w * Math.exp(-t * t / 2);
      }
      return s * h / 3 / Math.sqrt(2 * Math.PI);
    };
    // Relative accuracy holds in the tail (x = -12 gives GELU ≈ -2e-32), limited by float32 exp:
    // rounding its argument -x²/2 costs x²/2·ε relative, so rtol = 1e-6 + x²·6e-8 per element.
    xs.forEach((x, i) => {
      const ref = x * phi(x);
      assertClose(
        [y[i]],
        [ref],
        { atol: 1e-37, rtol: 1e-6 + x * x * 6e-8 },
        `gelu(${x}) vs float64`,
      );
    });
  },
);

Deno.test("autograd: a tensor used twice accumulates both gradients", async () => {
  await initGpu();
  const x = Tensor.from([1, -2, 3], [3], { requiresGrad: true });
  backward(sumAll(mul(x, x))); // d/dx Σx² = 2x, through two uses of x
  assertClose(await x.grad!.readF32(), [2, -4, 6], { atol: 0, rtol: 0 }, "d Σ x·x");
  backward(sumAll(add(x, x))); // accumulates: + 2
  assertClose(await x.grad!.readF32(), [4, -2, 8], { atol: 0, rtol: 0 }, "accumulated");
});

Deno.test("texture inputs: a slot grown between two ops of one submit, and freed by trimPool", async () => {
  const g = await initGpu();
  g.trimPool(); // no textures left by earlier tests
  forceInputLayout("texture");
  try {
    // small (1 row), big (3 rows: the slots grow and the 1-row textures are retired while the
    // first op is still unsubmitted), small again; one submit, then every output is checked.
    const sizes = [16, TEXTURE_ROWS_N, 8];
    const runs = sizes.map((n, k) => {
      const a = randn(10 + k, n), b = randn(20 + k, n);
      const [ba, bb, out] = [g.acquire(n * 4), g.acquire(n * 4), g.acquire(n * 4)];
      g.upload(ba.buffer, a);
      g.upload(bb.buffer, b);
      binary(g, "sub", ba.buffer, bb.buffer, out.buffer, n, n);
      return { n, a, b, bufs: [ba, bb, out] };
    });
    // Two slots (a, b) of 3 rows of 16-byte texels; the 1-row ones were retired.
    assertEquals(g.textureBytes, 2 * 3 * TEXTURE_WIDTH * 16);
    for (const r of runs) {
      const got = new Float32Array(await g.read(r.bufs[2].buffer, r.n * 4));
      const want = r.a.map((v, i) => Math.fround(v - r.b[i]));
      assertClose(got, want, { atol: 0, rtol: 0 }, `sub n=${r.n} after the slots grew`);
      for (const b of r.bufs) g.release(b);
    }
    g.trimPool();
    assertEquals(g.textureBytes, 0); // trimPool freed the input textures
  } finally {
    forceInputLayout(undefined);
  }
});
