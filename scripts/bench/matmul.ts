/**
 * Matmul throughput (GFLOP/s) at BERT-base shapes: ours (`kernels/matmul.ts`, the variant
 * {@linkcode pickMatmulVariant} picks for the adapter, plus each variant's own figure) against
 * `tf.matMul` on TF.js's WebGPU backend, same adapter, same process.
 *
 * Layout "NT" is a Linear layer, x·Wᵀ: A [M, K] row-major, B [N, K] (PyTorch's [out, in]);
 * "NN" is A [M, K] · B [K, N]. M is the token count (batch × 128).
 *
 * Fairness: both sides get the same inputs, are warmed up (pipelines compiled, pools filled),
 * then submit n back-to-back matmuls into fresh-or-reused outputs and wait for the device once
 * (ours: `gpu.sync()`; TF.js: submit its encoder and await `onSubmittedWorkDone`), with n
 * chosen so the timed run lasts at least `--min-seconds`.
 * @module
 */
import {
  matmul,
  type MatmulShape,
  type MatmulVariant,
  pickMatmulVariant,
  reg4Applies,
} from "../../kernels/matmul.ts";
import type { Gpu } from "../../kernels/device.ts";
import { type BenchContext, randomData, type Section, selected, timeIterations } from "./common.ts";
import { tf, tfSync, tfWebgpu } from "./tf_webgpu.ts";

/** One matmul case: C [M, N] = A [M, K] · op(B). */
export interface MatmulCase {
  name: string;
  M: number;
  K: number;
  N: number;
  transB: boolean;
  /** Skipped by default on a software adapter (see {@linkcode matmulSection}). */
  big?: boolean;
}

function mmCase(M: number, K: number, N: number, transB = true): MatmulCase {
  const name = `matmul ${M}x${K}x${N} ${transB ? "NT" : "NN"}`;
  return { name, M, K, N, transB, big: M > 1024 };
}

/**
 * BERT-base's Linear shapes at 8 and 32 sequences of 128 tokens, then 1024³ and 4096³ (the H100
 * goal's shape: 40% of FP32 peak) in both layouts; 4096³ is "big" (GPUs, or --full).
 */
export const MATMUL_CASES: MatmulCase[] = [
  ...[8 * 128, 32 * 128].flatMap((t) => [
    mmCase(t, 768, 768), // Q, K, V and attention output projections
    mmCase(t, 768, 3072), // FFN up
    mmCase(t, 3072, 768), // FFN down
  ]),
  mmCase(1024, 1024, 1024, true),
  mmCase(1024, 1024, 1024, false),
  mmCase(4096, 4096, 4096, true),
  mmCase(4096, 4096, 4096, false),
];

/** On a software adapter the other variants are measured only up to this size. */
const SOFT_VARIANT_MAX_GFLOP = 1.3;

async function oursGflops(
  gpu: Gpu,
  bufs: { a: GPUBuffer; b: GPUBuffer; c: GPUBuffer },
  shape: MatmulShape,
  variant: MatmulVariant,
  minSeconds: number,
): Promise<number> {
  const t = await timeIterations(async (n) => {
    for (let i = 0; i < n; i++) matmul(gpu, bufs.a, bufs.b, bufs.c, shape, { variant });
    await gpu.sync();
  }, { minSeconds });
  return (2 * shape.M * shape.N * shape.K * t.iters) / t.seconds / 1e9;
}

/** The matmul section. */
export const matmulSection: Section = {
  name: "matmul",
  title: "matmul GFLOP/s at BERT shapes vs tf.matMul on TF.js webgpu",
  async run(ctx: BenchContext): Promise<void> {
    const { gpu, args } = ctx;
    const gflopOf = (c: MatmulCase) => (2 * c.M * c.N * c.K) / 1e9;
    let cases = (args.quick ? MATMUL_CASES.slice(0, 1) : MATMUL_CASES).filter((c) =>
      selected(args, c.name)
    );
    if (gpu.isFallback && !args.full && !args.shapes.length) {
      // llvmpipe runs ~1 GFLOP/s here and TF.js ~0.3: the 32·128-token cases (43 GFLOP a pass,
      // each side runs two) would take ~6 minutes on their own.
      const slow = cases.filter((c) => c.big);
      if (slow.length) {
        ctx.log(
          `matmul: software adapter: skipping ${slow.map((c) => c.name).join(", ")} ` +
            `(use --full or --shapes to run them)`,
        );
        cases = cases.filter((c) => !slow.includes(c));
      }
    }
    if (!cases.length) return;
    const pick = await pickMatmulVariant(gpu);
    ctx.log(
      `matmul: pickMatmulVariant chose "${pick.variant}" (` +
        Object.entries(pick.gflops).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(", ") +
        " GFLOP/s at 512x768x768 NT)",
    );
    const peerAdapter = await tfWebgpu();
    ctx.log(`matmul: TF.js ${tf.version.tfjs} backend "${tf.getBackend()}" on ${peerAdapter}`);
    for (const mc of cases) {
      const { M, K, N, transB } = mc;
      const gflop = gflopOf(mc);
      const aData = randomData(M * K, 1), bData = randomData(K * N, 2);
      const shape: MatmulShape = { batch: 1, M, N, K, transA: false, transB };
      const a = gpu.acquire(M * K * 4), b = gpu.acquire(K * N * 4), c = gpu.acquire(M * N * 4);
      gpu.upload(a.buffer, aData);
      gpu.upload(b.buffer, bData);
      const bufs = { a: a.buffer, b: b.buffer, c: c.buffer };
      const extra: Record<string, number> = {};
      // The picked variant is always among those measured (tile128 is, where it is picked), so
      // `ours` always has a figure.
      const variants: MatmulVariant[] = ["reg4", "tile", "scalar"];
      if (!variants.includes(pick.variant)) variants.push(pick.variant);
      for (const v of variants) {
        const cheap = !args.quick && (!gpu.isFallback || gflop <= SOFT_VARIANT_MAX_GFLOP);
        if (v !== pick.variant && !cheap) continue;
        if (v === "reg4" && !reg4Applies(shape)) continue;
        ctx.log(`  ${mc.name}: ours ${v} …`);
        extra[v] = await oursGflops(gpu, bufs, shape, v, args.minSeconds);
      }
      // Leave C holding the chosen variant's result for the check below.
      matmul(gpu, bufs.a, bufs.b, bufs.c, shape, { variant: pick.variant });
      const ours = extra[pick.variant];

      ctx.log(`  ${mc.name}: peer tf.matMul …`);
      const ta = tf.tensor2d(aData, [M, K]);
      const tb = tf.tensor2d(bData, transB ? [N, K] : [K, N]);
      let out: tf.Tensor | null = null;
      const t = await timeIterations(async (n) => {
        for (let i = 0; i < n; i++) {
          out?.dispose();
          out = tf.matMul(ta, tb, false, transB);
        }
        await tfSync(out!);
      }, { minSeconds: args.minSeconds });
      const peer = (gflop * t.iters) / t.seconds;

      // Both sides must have computed the same product, or the figures mean nothing.
      const mine = new Float32Array(await gpu.read(c.buffer, M * N * 4));
      const theirs = await (out as unknown as tf.Tensor).data() as Float32Array;
      let worst = 0;
      for (let i = 0; i < mine.length; i++) {
        worst = Math.max(worst, Math.abs(mine[i] - theirs[i]));
      }
      const tol = 4e-7 * K + 1e-5; // as kernels/matmul_test.ts, for |entries| ≤ 1
      (out as unknown as tf.Tensor).dispose();
      tf.dispose([ta, tb]);
      gpu.release(a);
      gpu.release(b);
      gpu.release(c);
      ctx.emit({
        section: "matmul",
        name: mc.name,
        shape: [M, K, N],
        ours,
        peer,
        unit: "GFLOP/s",
        adapter: gpu.adapterName,
        extra,
        note: worst > tol
          ? `RESULT MISMATCH: max |ours - tf| = ${worst.toExponential(2)}`
          : `ours=${pick.variant}`,
      });
    }
    gpu.trimPool();
  },
};
