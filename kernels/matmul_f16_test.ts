// f16 kernels against float32 oracles: the f32 ↔ f16 casts (kernels/cast.ts) bit for bit against
// the platform's Float16Array, and every matmul variant with f16 operands (float32 accumulation)
// against TF.js's float32 matmul of the unrounded operands, at awkward shapes, every transpose.
// The f16 words are packed u32s unpacked with core WGSL, so these run on every adapter,
// `shader-f16` or not (llvmpipe of Mesa 22, SwiftShader).
import { deepStrictEqual } from "node:assert/strict";
import { oracle, randn } from "../tests/helpers.ts";
import { initGpu } from "../model/tensor.ts";
import { matmul, MATMUL_VARIANTS } from "./matmul.ts";
import { castToF16, castToF32, f16Bytes } from "./cast.ts";
import type { Gpu } from "./device.ts";

const gpu = await initGpu();
const tf = await oracle();
const F16 = (globalThis as unknown as { Float16Array: Float32ArrayConstructor }).Float16Array;

/** Uploads `x` as f32, casts to f16 on the GPU; returns the f16 buffer (caller releases). */
function toF16(g: Gpu, x: Float32Array) {
  const src = g.acquire(Math.max(4, x.byteLength)),
    dst = g.acquire(Math.max(4, f16Bytes(x.length)));
  g.upload(src.buffer, x);
  castToF16(g, src.buffer, dst.buffer, x.length);
  g.release(src);
  return dst;
}

Deno.test(`cast f32 → f16 → f32: bit-identical to Float16Array`, async () => {
  // Normal values at several scales, subnormal halves, overflow to ±Inf, ±0, NaN; odd length.
  const x = new Float32Array([
    ...randn(1, 501, 1),
    ...randn(2, 300, 1e-6),
    ...randn(3, 200, 3e4),
    65504,
    65519.99,
    65520,
    -1e9,
    0,
    -0,
    NaN,
    Infinity,
    -Infinity,
  ]);
  const h = toF16(gpu, x);
  const bits = new Uint16Array(await gpu.read(h.buffer, f16Bytes(x.length)), 0, x.length);
  const want = new Uint16Array(new F16(x).buffer);
  deepStrictEqual(bits, want);
  const back = gpu.acquire(x.byteLength);
  castToF32(gpu, h.buffer, back.buffer, x.length);
  const y = new Float32Array(await gpu.read(back.buffer, x.byteLength));
  const wantY = Float32Array.from(new F16(x));
  // WGSL lets a driver flush subnormal halves to zero in `unpack2x16float`: allowed there only.
  const subnormal = (v: number) => v !== 0 && Math.abs(v) < 2 ** -14;
  const bad = [...y.keys()].filter((i) =>
    !Object.is(y[i], wantY[i]) && !(subnormal(wantY[i]) && y[i] === 0) &&
    !(Number.isNaN(y[i]) && Number.isNaN(wantY[i]))
  );
  deepStrictEqual(bad.map((i) => [x[i], y[i], wantY[i]]), []);
  gpu.release(h);
  gpu.release(back);
});

// [batch, M, N, K]: tile edges, odd sizes, vec4-aligned (reg4 proper), a long reduction.
const CASES: [number, number, number, number][] = [
  [1, 1, 1, 1],
  [1, 3, 17, 63],
  [2, 65, 33, 129],
  [2, 36, 44, 20],
  [1, 8, 12, 768],
];

/**
 * Tolerance per element of C = A·B from f16 operands accumulated in float32, against float32 of
 * the exact operands: rounding each operand to f16 moves a product a·b by at most
 * (2u + u²)|a||b| with u = 2^-11 (f16's unit roundoff), so the sum moves by at most
 * (2u + u²) Σ_k |a_ik||b_kj|; the float32 accumulation (ours and the oracle's, in other orders)
 * adds at most K·2^-24 · Σ|a||b| each (the classic γ_K bound). Plus 1e-6 for C ≈ 0.
 */
function bound(a: Float32Array, b: Float32Array, M: number, N: number, K: number) {
  const u = 2 ** -11;
  const c = 2 * u + u * u + 2 * K * 2 ** -24;
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += Math.abs(a[i * K + k] * b[k * N + j]);
      out[i * N + j] = c * s + 1e-6;
    }
  }
  return out;
}

for (const variant of MATMUL_VARIANTS) {
  for (const [batch, M, N, K] of CASES) {
    // The workgroup-memory variants compile slowly on llvmpipe: NN and TT cover each of their
    // operand load paths (A and B, plain and transposed); the others run all four.
    const layouts = variant === "tile" || variant === "tile128"
      ? [[false, false], [true, true]]
      : [[false, false], [false, true], [true, false], [true, true]];
    for (const [ta, tb] of layouts) {
      const name = `matmul f16 ${variant} b${batch} ${M}x${N}x${K} ${ta ? "T" : "N"}${
        tb ? "T" : "N"
      }`;
      Deno.test(name, async () => {
        const a = randn(11 + M, batch * M * K), b = randn(12 + N, batch * K * N);
        const aT = tf.tensor3d(a, [batch, ...(ta ? [K, M] : [M, K])] as [number, number, number]);
        const bT = tf.tensor3d(b, [batch, ...(tb ? [N, K] : [K, N])] as [number, number, number]);
        const want = await tf.matMul(aT, bT, ta, tb).data() as Float32Array;
        // The bound needs A as (M, K) and B as (K, N) per batch entry.
        const aN = await (ta ? tf.transpose(aT, [0, 2, 1]) : aT).data() as Float32Array;
        const bN = await (tb ? tf.transpose(bT, [0, 2, 1]) : bT).data() as Float32Array;
        const ha = toF16(gpu, a), hb = toF16(gpu, b);
        const c = gpu.acquire(batch * M * N * 4);
        matmul(gpu, ha.buffer, hb.buffer, c.buffer, { batch, M, N, K, transA: ta, transB: tb }, {
          variant,
          f16: true,
        });
        const got = new Float32Array(await gpu.read(c.buffer, batch * M * N * 4));
        for (let e = 0; e < batch; e++) {
          const tol = bound(
            aN.subarray(e * M * K, (e + 1) * M * K),
            bN.subarray(e * K * N, (e + 1) * K * N),
            M,
            N,
            K,
          );
          for (let i = 0; i < M * N; i++) {
            const d = Math.abs(got[e * M * N + i] - want[e * M * N + i]);
            if (!(d <= tol[i])) {
              throw new Error(
                `${name}: C[${e}][${i}] = ${got[e * M * N + i]}, float32 ${
                  want[e * M * N + i]
                }, off by ${d} > bound ${tol[i]}`,
              );
            }
          }
        }
        for (const x of [ha, hb, c]) gpu.release(x);
      });
    }
  }
}
