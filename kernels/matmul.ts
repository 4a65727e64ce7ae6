/**
 * Batched matrix multiply: C[b] = alpha · op(A[b]) · op(B[b]) (+ bias), op = identity or
 * transpose, in float32.
 *
 *   A (batch, M, K), or (batch, K, M) when transA
 *   B (batch, K, N), or (batch, N, K) when transB; batch 1 broadcasts over C's batch
 *   bias (N), optional, added to every row
 *   C (batch, M, N), row-major
 *
 * Four variants, chosen per adapter by measurement ({@linkcode pickMatmulVariant}):
 * - `reg4`: register-tiled, each invocation computes an 8×8 block of C with vec4 loads along
 *   each operand's contiguous axis, no workgroup memory. Fastest on CPU adapters (llvmpipe),
 *   where barriers are costly. Needs K and the contiguous extents to be multiples of 4.
 * - `tile`: 64×64 output tile per workgroup staged through workgroup memory in K-steps of 16,
 *   each invocation 4×4 outputs.
 * - `tile128`: 128×128 output tile, K-steps of 8, each invocation an 8×8 block read as vec4s
 *   from workgroup memory: the classic SGEMM shape real GPUs favour (the default guess there).
 * - `scalar`: the register-tiled kernel with scalar loads and bounds checks; any shape.
 * Backward passes are matmuls of the same kernel with other transposes (see model/ops.ts).
 * Each variant also has an f16-operand form (`f16`: A and B binary16, float32 accumulation and
 * output), checked by kernels/matmul_f16_test.ts.
 * Checked by kernels/matmul_test.ts against TF.js at awkward shapes, every variant.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { writeJsonAtomic } from "../data/output/mod.ts";

/** A matmul implementation strategy. */
export type MatmulVariant = "reg4" | "tile" | "tile128" | "scalar";

/** All variants (tests run each). */
export const MATMUL_VARIANTS: MatmulVariant[] = ["reg4", "tile", "tile128", "scalar"];

/** Shape and layout of one batched matmul call. */
export interface MatmulShape {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  /** B has one matrix shared by every batch entry. */
  broadcastB?: boolean;
}

const PARAMS: [string, "u32" | "f32"][] = [
  ["M", "u32"],
  ["N", "u32"],
  ["K", "u32"],
  ["aBatch", "u32"],
  ["bBatch", "u32"],
  ["alpha", "f32"],
];

/** Whether `reg4` can run this shape (vec4 loads stay aligned and in bounds). */
export function reg4Applies(s: MatmulShape): boolean {
  const aContig = s.transA ? s.M : s.K;
  const bContig = s.transB ? s.K : s.N;
  return s.K % 4 === 0 && aContig % 4 === 0 && bContig % 4 === 0;
}

/** Rows and columns of C one `reg4` invocation computes (an 8×8 block: 16 vec4 accumulators). */
const R4 = 8;

/**
 * The name suffix and WGSL of operand loads (`s`: one element `buf[idx]`, `v`: a vec4 of four
 * at `buf[idx4]`). f16 operands are packed two per u32 word (element 2i in the low half, as
 * kernels/cast.ts writes them) and widen to f32 with `unpack2x16float`, core WGSL: exact, and
 * no `shader-f16` feature needed, so the same kernels run on every adapter.
 */
function loader(h: boolean): {
  sfx: string;
  s: (e: string) => string;
  v: (e: string) => string;
  fns: string;
} {
  const split = (e: string) => [e.slice(0, e.indexOf("[")), e.slice(e.indexOf("[") + 1, -1)];
  return h
    ? {
      sfx: "_h",
      s: (e) => {
        const [buf, idx] = split(e);
        return `unpack2x16float(${buf}[(${idx}) >> 1u])[(${idx}) & 1u]`;
      },
      v: (e) => `h4(${e})`,
      fns: `
fn h4(w: vec2<u32>) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}`,
    }
    : { sfx: "", s: (e) => e, v: (e) => e, fns: "" };
}

function reg4Spec(transA: boolean, transB: boolean, bias: boolean, h = false): KernelSpec {
  const L = loader(h);
  // Per K-step of 4, an invocation loads 8 vec4 of A and 8 of B and does 256 multiply-adds.
  // On llvmpipe every storage load is a per-lane gather, so loads per multiply-add decide the
  // speed: an 8×8 block halves them against 4×4 (measured about 1.8× faster on llvmpipe).
  // Row block: a<r> = A[m0 + r, k..k+3] as a vec4 over k (r = 0..7).
  const rows = [...Array(R4).keys()];
  const loadA = transA
    // A stored (K, M): two vec4 over m per k-row, then transposed in registers.
    ? [0, 1, 2, 3].map((j) =>
      `let e${j}0 = ${L.v(`a[(aBase + (k + ${j}u) * p.M + mA0) / 4u]`)};
      let e${j}1 = ${L.v(`a[(aBase + (k + ${j}u) * p.M + mA1) / 4u]`)};`
    ).join("\n      ") + "\n      " + rows.map((r) => {
      const h = r >> 2, c = "xyzw"[r & 3];
      return `let a${r} = vec4<f32>(e0${h}.${c}, e1${h}.${c}, e2${h}.${c}, e3${h}.${c});`;
    }).join("\n      ")
    : rows.map((r) => `let a${r} = ${L.v(`a[(aBase + r${r} * p.K + k) / 4u]`)};`).join("\n      ");
  // Column block: b<j>_<g> = B[k + j, n0 + 4g .. n0 + 4g + 3] as a vec4 over n (j = 0..3).
  const loadB = transB
    // B stored (N, K): one vec4 over k per column, then transposed in registers.
    ? rows.map((c) => `let d${c} = ${L.v(`b[(bBase + nc${c} * p.K + k) / 4u]`)};`).join(
      "\n      ",
    ) +
      "\n      " + [0, 1, 2, 3].flatMap((j) =>
        [0, 1].map((g) => {
          const x = "xyzw"[j], q = 4 * g;
          return `let b${j}_${g} = vec4<f32>(d${q}.${x}, d${q + 1}.${x}, d${q + 2}.${x}, d${
            q + 3
          }.${x});`;
        })
      ).join("\n      ")
    : [0, 1, 2, 3].flatMap((j) =>
      [0, 1].map((g) => `let b${j}_${g} = ${L.v(`b[(bBase + (k + ${j}u) * p.N + nB${g}) / 4u]`)};`)
    ).join("\n      ");
  const fma = rows.flatMap((r) =>
    [0, 1].map((g) =>
      `acc${r}_${g} += a${r}.x * b0_${g} + a${r}.y * b1_${g} + a${r}.z * b2_${g} + a${r}.w * b3_${g};`
    )
  ).join("\n      ");
  return {
    name: `matmul_reg4_${transA ? "t" : "n"}${transB ? "t" : "n"}${bias ? "_bias" : ""}${L.sfx}`,
    bindings: [
      ["a", "read", h ? "vec2<u32>" : "vec4<f32>"],
      ["b", "read", h ? "vec2<u32>" : "vec4<f32>"],
      ...(bias ? [["bias", "read"] as [string, "read"]] : []),
      ["c", "rw"],
    ],
    params: PARAMS,
    workgroupSize: [8, 8],
    body: `${L.fns}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * ${R4}u;
  let m0 = gid.y * ${R4}u;
  let bat = gid.z;
  if (n0 >= p.N || m0 >= p.M) { return; }
  let aBase = bat * p.aBatch;
  let bBase = bat * p.bBatch;
  // Clamped indices keep out-of-range rows/columns reading valid memory; they are not stored.
  // The contiguous extents are multiples of 4, so a clamped vec4 start stays aligned.
  ${rows.map((r) => `let r${r} = min(m0 + ${r}u, p.M - 1u);`).join("\n  ")}
  ${rows.map((c) => `let nc${c} = min(n0 + ${c}u, p.N - 1u);`).join("\n  ")}
  let mA0 = m0;
  let mA1 = min(m0 + 4u, max(p.M, 4u) - 4u);
  let nB0 = n0;
  let nB1 = min(n0 + 4u, max(p.N, 4u) - 4u);
  ${rows.flatMap((r) => [0, 1].map((g) => `var acc${r}_${g} = vec4<f32>(0.0);`)).join("\n  ")}
  for (var k = 0u; k < p.K; k += 4u) {
      ${loadA}
      ${loadB}
      ${fma}
  }
  ${
      bias
        ? `var bv0 = vec4<f32>(0.0);
  var bv1 = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (n0 + j < p.N) { bv0[j] = bias[n0 + j]; }
    if (n0 + 4u + j < p.N) { bv1[j] = bias[n0 + 4u + j]; }
  }`
        : `let bv0 = vec4<f32>(0.0);
  let bv1 = vec4<f32>(0.0);`
    }
  let cBase = bat * p.M * p.N;
  let accs = array<vec4<f32>, ${2 * R4}>(${
      rows.flatMap((r) => [0, 1].map((g) => `acc${r}_${g}`)).join(", ")
    });
  for (var i = 0u; i < ${R4}u; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    let v0 = accs[2u * i] * p.alpha + bv0;
    let v1 = accs[2u * i + 1u] * p.alpha + bv1;
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < p.N) { c[cBase + m * p.N + n0 + j] = v0[j]; }
      if (n0 + 4u + j < p.N) { c[cBase + m * p.N + n0 + 4u + j] = v1[j]; }
    }
  }
}`,
  };
}

/** Stores acc0..acc3 (rows m0..m0+3, columns n0..n0+3) with alpha, bias and bounds checks. */
function storeBlock(bias: boolean): string {
  const bv = bias
    ? `var bv = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { if (n0 + j < p.N) { bv[j] = bias[n0 + j]; } }`
    : `let bv = vec4<f32>(0.0);`;
  return `${bv}
  let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
  let cBase = bat * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + i;
    if (m >= p.M) { break; }
    let v = rows[i] * p.alpha + bv;
    for (var j = 0u; j < 4u; j++) {
      if (n0 + j < p.N) { c[cBase + m * p.N + n0 + j] = v[j]; }
    }
  }`;
}

/** Name, bindings (a, b, optional bias, c) and params shared by the scalar-load variants. */
function specHead(
  kind: string,
  transA: boolean,
  transB: boolean,
  bias: boolean,
  h: boolean,
): Pick<KernelSpec, "name" | "bindings" | "params"> {
  return {
    name: `matmul_${kind}_${transA ? "t" : "n"}${transB ? "t" : "n"}${bias ? "_bias" : ""}${
      h ? "_h" : ""
    }`,
    bindings: [
      ["a", "read", h ? "u32" : "f32"],
      ["b", "read", h ? "u32" : "f32"],
      ...(bias ? [["bias", "read"] as [string, "read"]] : []),
      [
        "c",
        "rw",
      ],
    ],
    params: PARAMS,
  };
}

function scalarSpec(transA: boolean, transB: boolean, bias: boolean, h = false): KernelSpec {
  const L = loader(h);
  const aIdx = (m: string) => transA ? `aBase + k * p.M + ${m}` : `aBase + ${m} * p.K + k`;
  const bIdx = (n: string) => transB ? `bBase + ${n} * p.K + k` : `bBase + k * p.N + ${n}`;
  const ld = (buf: "a" | "b", idx: string) => L.s(`${buf}[${idx}]`);
  return {
    ...specHead("scalar", transA, transB, bias, h),
    workgroupSize: [8, 8],
    body: `${L.fns}
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n0 = gid.x * 4u;
  let m0 = gid.y * 4u;
  let bat = gid.z;
  if (n0 >= p.N || m0 >= p.M) { return; }
  let aBase = bat * p.aBatch;
  let bBase = bat * p.bBatch;
  let r0 = m0;
  let r1 = min(m0 + 1u, p.M - 1u);
  let r2 = min(m0 + 2u, p.M - 1u);
  let r3 = min(m0 + 3u, p.M - 1u);
  let c0 = n0;
  let c1 = min(n0 + 1u, p.N - 1u);
  let c2 = min(n0 + 2u, p.N - 1u);
  let c3 = min(n0 + 3u, p.N - 1u);
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  for (var k = 0u; k < p.K; k++) {
    let bv = vec4<f32>(${ld("b", bIdx("c0"))}, ${ld("b", bIdx("c1"))}, ${ld("b", bIdx("c2"))}, ${
      ld("b", bIdx("c3"))
    });
    acc0 += ${ld("a", aIdx("r0"))} * bv;
    acc1 += ${ld("a", aIdx("r1"))} * bv;
    acc2 += ${ld("a", aIdx("r2"))} * bv;
    acc3 += ${ld("a", aIdx("r3"))} * bv;
  }
  ${storeBlock(bias)}
}`,
  };
}

/** Tile sizes of the workgroup-memory variant: 64×64 outputs, K-steps of 16, 16×16 threads. */
const TM = 64, TN = 64, TK = 16;

function tileSpec(transA: boolean, transB: boolean, bias: boolean, h = false): KernelSpec {
  const L = loader(h);
  // Each thread loads 4 elements of the A tile (TM×TK) and 4 of the B tile (TK×TN) per K-step.
  const aLoad = transA
    ? `let kk = e / ${TM}u; let mm = e % ${TM}u; let gm = tileM + mm; let gk = k0 + kk;
       var v = 0.0; if (gm < p.M && gk < p.K) { v = ${L.s(`a[aBase + gk * p.M + gm]`)}; }
       As[kk * ${TM}u + mm] = v;`
    : `let mm = e / ${TK}u; let kk = e % ${TK}u; let gm = tileM + mm; let gk = k0 + kk;
       var v = 0.0; if (gm < p.M && gk < p.K) { v = ${L.s(`a[aBase + gm * p.K + gk]`)}; }
       As[kk * ${TM}u + mm] = v;`;
  const bLoad = transB
    ? `let nn = e / ${TK}u; let kk = e % ${TK}u; let gn = tileN + nn; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = ${L.s(`b[bBase + gn * p.K + gk]`)}; }
       Bs[kk * ${TN}u + nn] = v;`
    : `let kk = e / ${TN}u; let nn = e % ${TN}u; let gn = tileN + nn; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = ${L.s(`b[bBase + gk * p.N + gn]`)}; }
       Bs[kk * ${TN}u + nn] = v;`;
  return {
    ...specHead("tile", transA, transB, bias, h),
    workgroupSize: [16, 16],
    body: `${L.fns}
var<workgroup> As: array<f32, ${TM * TK}>;
var<workgroup> Bs: array<f32, ${TK * TN}>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileN = wid.x * ${TN}u;
  let tileM = wid.y * ${TM}u;
  let bat = wid.z;
  let aBase = bat * p.aBatch;
  let bBase = bat * p.bBatch;
  // Thread (lid.x, lid.y) owns rows lid.y + 16i and columns lid.x + 16j: strided so that the
  // reads of workgroup memory by neighbouring threads fall in different banks.
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < p.K; k0 += ${TK}u) {
    for (var t = 0u; t < 4u; t++) {
      let e = li + t * 256u;
      { ${aLoad} }
      { ${bLoad} }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let bv = vec4<f32>(Bs[kk * ${TN}u + lid.x], Bs[kk * ${TN}u + lid.x + 16u],
                         Bs[kk * ${TN}u + lid.x + 32u], Bs[kk * ${TN}u + lid.x + 48u]);
      for (var i = 0u; i < 4u; i++) {
        acc[i] += As[kk * ${TM}u + lid.y + 16u * i] * bv;
      }
    }
    workgroupBarrier();
  }
  let cBase = bat * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let m = tileM + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = tileN + lid.x + 16u * j;
      if (n < p.N) {
        ${
      bias
        ? "c[cBase + m * p.N + n] = acc[i][j] * p.alpha + bias[n];"
        : "c[cBase + m * p.N + n] = acc[i][j] * p.alpha;"
    }
      }
    }
  }
}`,
  };
}

/** Output tile of `tile128`: 128×128 per workgroup of 16×16, K-steps of 8. */
const T128 = 128, TK8 = 8;

/**
 * `tile128`: the classic SGEMM shape for GPUs. A 128×128 output tile per 256-invocation
 * workgroup; each invocation accumulates an 8×8 block (rows ty·4+i and 64+ty·4+i, columns
 * likewise) in 16 vec4 registers. A and B tiles of 128×8 are staged through workgroup memory
 * k-major, so each K-step reads 4 vec4s from workgroup memory for 64 FMAs (`tile` reads 8
 * scalars for 16). Global loads are scalar and bounds-checked, so any shape and layout runs.
 */
function tile128Spec(transA: boolean, transB: boolean, bias: boolean, h = false): KernelSpec {
  const L = loader(h);
  // Element e (0..1023) of the A tile: transA reads along m (contiguous), else along k.
  const aLoad = transA
    ? `let kk = e / ${T128}u; let mm = e % ${T128}u;
       let gm = tileM + mm; let gk = k0 + kk;
       var v = 0.0; if (gm < p.M && gk < p.K) { v = ${L.s(`a[aBase + gk * p.M + gm]`)}; }`
    : `let mm = e / ${TK8}u; let kk = e % ${TK8}u;
       let gm = tileM + mm; let gk = k0 + kk;
       var v = 0.0; if (gm < p.M && gk < p.K) { v = ${L.s(`a[aBase + gm * p.K + gk]`)}; }`;
  const bLoad = transB
    ? `let nn = e / ${TK8}u; let kk = e % ${TK8}u;
       let gn = tileN + nn; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = ${L.s(`b[bBase + gn * p.K + gk]`)}; }`
    : `let kk = e / ${T128}u; let nn = e % ${T128}u;
       let gn = tileN + nn; let gk = k0 + kk;
       var v = 0.0; if (gn < p.N && gk < p.K) { v = ${L.s(`b[bBase + gk * p.N + gn]`)}; }`;
  // acc[2i + h] holds row r(i) (i < 8) and columns of half h (0: tx·4.., 1: 64 + tx·4..).
  const fma: string[] = [];
  for (let i = 0; i < 8; i++) {
    const av = i < 4 ? `a0[${i}]` : `a1[${i - 4}]`;
    fma.push(`acc${2 * i} += ${av} * b0; acc${2 * i + 1} += ${av} * b1;`);
  }
  const decl = Array.from({ length: 16 }, (_, k) => `var acc${k} = vec4<f32>(0.0);`).join(" ");
  const rows = Array.from({ length: 16 }, (_, k) => `acc${k}`).join(", ");
  return {
    ...specHead("tile128", transA, transB, bias, h),
    workgroupSize: [16, 16],
    body: `${L.fns}
var<workgroup> As: array<vec4<f32>, ${(T128 * TK8) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(T128 * TK8) / 4}>;
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let tileN = wid.x * ${T128}u;
  let tileM = wid.y * ${T128}u;
  let bat = wid.z;
  let aBase = bat * p.aBatch;
  let bBase = bat * p.bBatch;
  let tx = lid.x;
  let ty = lid.y;
  ${decl}
  for (var k0 = 0u; k0 < p.K; k0 += ${TK8}u) {
    for (var t = 0u; t < 4u; t++) {
      let e = li * 4u + t;
      { ${aLoad} let at = kk * ${T128}u + mm; As[at / 4u][at % 4u] = v; }
      { ${bLoad} let bt = kk * ${T128}u + nn; Bs[bt / 4u][bt % 4u] = v; }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK8}u; kk++) {
      let a0 = As[kk * 32u + ty];
      let a1 = As[kk * 32u + 16u + ty];
      let b0 = Bs[kk * 32u + tx];
      let b1 = Bs[kk * 32u + 16u + tx];
      ${fma.join("\n      ")}
    }
    workgroupBarrier();
  }
  let accs = array<vec4<f32>, 16>(${rows});
  let cBase = bat * p.M * p.N;
  for (var i = 0u; i < 8u; i++) {
    let m = tileM + select(64u + ty * 4u + i - 4u, ty * 4u + i, i < 4u);
    if (m >= p.M) { continue; }
    for (var h = 0u; h < 2u; h++) {
      let v = accs[2u * i + h] * p.alpha;
      for (var j = 0u; j < 4u; j++) {
        let n = tileN + h * 64u + tx * 4u + j;
        if (n < p.N) {
          ${bias ? "c[cBase + m * p.N + n] = v[j] + bias[n];" : "c[cBase + m * p.N + n] = v[j];"}
        }
      }
    }
  }
}`,
  };
}

/**
 * Records C = alpha · op(A) · op(B) (+ bias) into the pending encoder.
 * `variant` falls back to `scalar` when `reg4` does not apply to the shape. With `f16`, A and B
 * are stored as IEEE binary16 (kernels/cast.ts makes them) and widen to float32 as they load:
 * products and sums are float32 (autocast's matmul: f16 operands, f32 accumulation), the bias
 * and C stay float32. The f16 words are unpacked with core WGSL, so any adapter runs them.
 */
export function matmul(
  gpu: Gpu,
  a: GPUBuffer,
  b: GPUBuffer,
  c: GPUBuffer,
  s: MatmulShape,
  opts: { bias?: GPUBuffer; alpha?: number; variant?: MatmulVariant; f16?: boolean } = {},
): void {
  let variant = opts.variant ?? defaultVariant(gpu);
  if (variant === "reg4" && !reg4Applies(s)) variant = "scalar";
  const bias = !!opts.bias;
  const h = !!opts.f16;
  const spec = variant === "reg4"
    ? reg4Spec(s.transA, s.transB, bias, h)
    : variant === "tile"
    ? tileSpec(s.transA, s.transB, bias, h)
    : variant === "tile128"
    ? tile128Spec(s.transA, s.transB, bias, h)
    : scalarSpec(s.transA, s.transB, bias, h);
  const kernel = gpu.kernel(spec);
  const buffers = opts.bias ? [a, b, opts.bias, c] : [a, b, c];
  const params = [s.M, s.N, s.K, s.M * s.K, s.broadcastB ? 0 : s.K * s.N, opts.alpha ?? 1];
  const groups: [number, number, number] = variant === "tile"
    ? [Math.ceil(s.N / TN), Math.ceil(s.M / TM), s.batch]
    : variant === "tile128"
    ? [Math.ceil(s.N / T128), Math.ceil(s.M / T128), s.batch]
    : variant === "reg4"
    ? [Math.ceil(s.N / (8 * R4)), Math.ceil(s.M / (8 * R4)), s.batch]
    : [Math.ceil(s.N / 32), Math.ceil(s.M / 32), s.batch];
  gpu.dispatch(kernel, buffers, params, groups);
}

const chosen = new WeakMap<Gpu, MatmulVariant>();

/** The variants {@linkcode pickMatmulVariant} races (`scalar` is only a fallback). */
const MEASURED: MatmulVariant[] = ["reg4", "tile", "tile128"];

/** The variant in force on this device: measured by {@linkcode pickMatmulVariant}, else a guess. */
export function defaultVariant(gpu: Gpu): MatmulVariant {
  return chosen.get(gpu) ?? (gpu.isFallback ? "reg4" : "tile128");
}

/** Forces a variant on this device (benchmarks and tests). */
export function setMatmulVariant(gpu: Gpu, v: MatmulVariant): void {
  chosen.set(gpu, v);
}

/**
 * Measures `reg4` and `tile` on a BERT-like shape and keeps the faster for this device;
 * the choice is cached on disk per adapter name (`cachePath`), so it is measured once.
 */
export async function pickMatmulVariant(
  gpu: Gpu,
  cachePath?: string,
): Promise<{ variant: MatmulVariant; gflops: Record<string, number> }> {
  const key = gpu.adapterName;
  if (cachePath) {
    try {
      const cache = JSON.parse(await Deno.readTextFile(cachePath));
      // A cache from before a variant was added is measured again.
      if (cache[key]?.variant && MEASURED.every((v) => v in (cache[key].gflops ?? {}))) {
        chosen.set(gpu, cache[key].variant);
        return cache[key];
      }
    } catch { /* no cache yet */ }
  }
  const M = 512, N = 768, K = 768;
  const a = gpu.acquire(M * K * 4), b = gpu.acquire(K * N * 4), c = gpu.acquire(M * N * 4);
  const gflops: Record<string, number> = {};
  for (const v of MEASURED) {
    const shape = { batch: 1, M, N, K, transA: false, transB: true };
    matmul(gpu, a.buffer, b.buffer, c.buffer, shape, { variant: v });
    await gpu.sync();
    const reps = 3;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) matmul(gpu, a.buffer, b.buffer, c.buffer, shape, { variant: v });
    await gpu.sync();
    gflops[v] = (2 * M * N * K * reps) / ((performance.now() - t0) * 1e6);
  }
  gpu.release(a);
  gpu.release(b);
  gpu.release(c);
  const variant = (Object.keys(gflops) as MatmulVariant[])
    .reduce((best, v) => (gflops[v] > gflops[best] ? v : best), "reg4" as MatmulVariant);
  chosen.set(gpu, variant);
  if (cachePath) {
    let cache: Record<string, unknown> = {};
    try {
      cache = JSON.parse(await Deno.readTextFile(cachePath));
    } catch { /* new */ }
    cache[key] = { variant, gflops };
    await Deno.mkdir(cachePath.replace(/\/[^/]*$/, ""), { recursive: true }).catch(() => {});
    // Atomic: CLIs started together read the cache while one of them writes it. A cache that
    // cannot be written is measured again next time, not an error.
    await writeJsonAtomic(cachePath, cache).catch(() => {});
  }
  return { variant, gflops };
}
