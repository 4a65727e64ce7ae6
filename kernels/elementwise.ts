/**
 * Elementwise kernels, forward and backward, from one table of formulas (the habit of
 * webgpu-torch's op_table): each unary op gives its forward `y = f(x)` and its backward
 * `dx = dy · f'(x, y)` as WGSL expressions; the kernels are generated from the table.
 *
 *   x, y, dy, dx (n)          unary ops, any shape flattened
 *   a (n), b (n or n % |b|)   binary ops; b broadcasts when its size divides a's (a bias row)
 * Every op runs on vec4s when the sizes are multiples of 4 (BERT's always are), as TF.js's
 * kernels do, and a binary op of equal shapes skips the broadcast index.
 * On software adapters the vec4 kernels read their inputs from textures, each filled by a
 * buffer-to-texture copy just before (kernels/textures.ts: llvmpipe's storage-buffer loads are
 * per-lane loops, its texel fetches are not); GPUs read the buffers.
 * Checked by kernels/elementwise_test.ts against TF.js and a float64 reference, on both input
 * layouts.
 * @module
 */
import type { Access, Binding, Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";
import { inputLayout, texelWgsl } from "./textures.ts";

/**
 * erfc(x) in float32 with fractional error below 1.2e-7 everywhere (Numerical Recipes'
 * Chebyshev fit `erfcc`). Computing GELU through erfc keeps relative accuracy for large
 * negative inputs, where 1 + erf(x) would cancel.
 */
export const ERFC_WGSL = `
fn erfc_(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
  return select(2.0 - r, r, x >= 0.0);
}`;

/** A unary op: WGSL for y from x (and constant c), and for dx from x, y, dy (and c). */
export interface UnaryOp {
  forward: string;
  backward: string;
  helpers?: string;
}

/** The table of unary ops. `c` is the op's scalar constant (e.g. the scale factor). */
export const UNARY: Record<string, UnaryOp> = {
  // Exact GELU as BERT uses it: x · Φ(x) = 0.5 · x · erfc(-x / √2).
  gelu: {
    forward: "0.5 * x * erfc_(-x * 0.70710678118654752)",
    // Φ(x) + x · φ(x)
    backward:
      "dy * (0.5 * erfc_(-x * 0.70710678118654752) + x * 0.3989422804014327 * exp(-0.5 * x * x))",
    helpers: ERFC_WGSL,
  },
  // tanh through exp(-2|x|), which never overflows (tanh(x) = (e^2x-1)/(e^2x+1) does past 44).
  tanh: {
    forward: "sign(x) * (1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x)))",
    backward: "dy * (1.0 - y * y)",
  },
  scale: { forward: "c * x", backward: "c * dy" },
  square: { forward: "x * x", backward: "2.0 * x * dy" },
  relu: { forward: "max(x, 0.0)", backward: "select(0.0, dy, x > 0.0)" },
};

/**
 * Whether a 1-D op over n elements can run on vec4s: n a multiple of 4 (every binding then
 * holds whole vec4s; the pool rounds buffer sizes up to 16 bytes).
 */
export function vec4Fits(n: number): boolean {
  return n % 4 === 0 && n > 0;
}

/** WGSL applying a scalar function `name` to each lane of vec4 arguments `args`. */
function lanes(name: string, args: string[]): string {
  const lane = (k: string) => `${name}(${args.map((a) => `${a}.${k}`).join(", ")}, c)`;
  return `vec4<f32>(${["x", "y", "z", "w"].map(lane).join(", ")})`;
}

/** Whether the WGSL expression `expr` reads the variable `name`. */
function reads(expr: string, name: string): boolean {
  return new RegExp(`\\b${name}\\b`).test(expr);
}

/**
 * WGSL loading element `i` of input `name` into `let <name>v`: a storage-buffer load, or on the
 * texture layout (vec4 only) a texel fetch (kernels/textures.ts).
 */
function load(name: string, tex: boolean): string {
  return `let ${name}v = ${tex ? texelWgsl(name, "i") : `${name}[i]`};`;
}

function unarySpec(op: string, dir: "fwd" | "bwd", vec4: boolean, tex: boolean): KernelSpec {
  const u = UNARY[op];
  if (!u) throw new Error(`unknown unary op '${op}'`);
  const fwd = dir === "fwd";
  const t = vec4 ? "vec4<f32>" : "f32";
  // The formula as a scalar function; the vec4 kernel applies it lane by lane (WGSL's builtins
  // would need vec4 constants in each formula), which the compiler inlines.
  const fn = fwd
    ? `fn f_(x: f32, c: f32) -> f32 { return ${u.forward}; }`
    : `fn f_(x: f32, y: f32, dy: f32, c: f32) -> f32 { return ${u.backward}; }`;
  const ins = fwd ? ["xs"] : ["xs", "ys", "dys"];
  const args = ins.map((n) => `${n}v`);
  const apply = vec4 ? lanes("f_", args) : `f_(${args.join(", ")}, c)`;
  const inAccess = tex ? "texture" : "read";
  return {
    name: `unary_${op}_${dir}${vec4 ? "_v4" : ""}${tex ? "_tex" : ""}`,
    bindings: [
      ...ins.map((n): [string, Access, string] => [n, inAccess, t]),
      [fwd ? "ys" : "dxs", "rw", t],
    ],
    params: [["n", "u32"], ["c", "f32"]],
    workgroupSize: [WG1],
    body: `${u.helpers ?? ""}
${fn}
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let c = p.c;
  ${ins.map((n) => load(n, tex)).join("\n  ")}
  ${fwd ? "ys" : "dxs"}[i] = ${apply};
}`,
  };
}

/**
 * Whether a 1-D op over n elements reads its inputs from textures on this adapter: the texture
 * layout (software adapters) and a vec4 path within the textures' size.
 */
function useTextures(gpu: Gpu, n: number): boolean {
  return inputLayout(gpu) === "texture" && vec4Fits(n) && n / 4 <= gpu.maxTextureVec4s;
}

/**
 * Dispatches a 1-D kernel over n elements, on vec4s when n allows (n / 4 invocations). With
 * `tex`, the inputs (all but the last binding) are first copied into input textures, slot k
 * for input k; an input the formula does not read (`used[k]` false) is not copied, and its
 * binding gets another input's texture (the kernel never loads it).
 */
function dispatch1d(
  gpu: Gpu,
  spec: (vec4: boolean, tex: boolean) => KernelSpec,
  buffers: GPUBuffer[],
  n: number,
  rest: number[],
  used: boolean[] = buffers.map(() => true),
): void {
  const v = vec4Fits(n);
  const len = v ? n / 4 : n;
  const tex = useTextures(gpu, n);
  let bound: Binding[] = buffers;
  if (tex) {
    const ins = buffers.slice(0, -1);
    const textures = ins.map((b, k) => used[k] ? gpu.toTexture(b, len, k) : null);
    const any = textures.find((t) => t !== null)!;
    bound = [...textures.map((t) => t ?? any), buffers[buffers.length - 1]];
  }
  gpu.dispatch(gpu.kernel(spec(v, tex)), bound, [len, ...rest], grid1d(len));
}

/** Records y = op(x) over n elements. */
export function unaryForward(
  gpu: Gpu,
  op: string,
  x: GPUBuffer,
  y: GPUBuffer,
  n: number,
  c = 0,
): void {
  dispatch1d(gpu, (v, t) => unarySpec(op, "fwd", v, t), [x, y], n, [c]);
}

/** Records dx = dy · op'(x, y) over n elements. */
export function unaryBackward(
  gpu: Gpu,
  op: string,
  x: GPUBuffer,
  y: GPUBuffer,
  dy: GPUBuffer,
  dx: GPUBuffer,
  n: number,
  c = 0,
): void {
  const u = UNARY[op];
  if (!u) throw new Error(`unknown unary op '${op}'`);
  const used = ["x", "y", "dy"].map((k) => reads(u.backward, k));
  if (!used.some(Boolean)) used[2] = true; // a constant gradient: bind dy anyway
  dispatch1d(gpu, (v, t) => unarySpec(op, "bwd", v, t), [x, y, dy, dx], n, [c], [...used, true]);
}

/** Binary ops: `out = a ∘ b[i % nb]` (b broadcasts when it is a suffix row of a). */
export const BINARY: Record<string, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
};

/**
 * The kernel of one binary op: `same` when b has a's size (no index arithmetic), otherwise b
 * broadcasts as `b[i % nb]`; on vec4s when both sizes allow (the modulo then runs once per four
 * elements). TF.js's binary kernel takes the same two shortcuts.
 */
function binarySpec(op: string, same: boolean, vec4: boolean, tex: boolean): KernelSpec {
  const expr = BINARY[op];
  if (!expr) throw new Error(`unknown binary op '${op}'`);
  const t = vec4 ? "vec4<f32>" : "f32";
  const at = (name: string, i: string) => tex ? texelWgsl(name, i) : `${name}[${i}]`;
  const inAccess: Access = tex ? "texture" : "read";
  return {
    name: `binary_${op}${same ? "_same" : "_bcast"}${vec4 ? "_v4" : ""}${tex ? "_tex" : ""}`,
    bindings: [["as_", inAccess, t], ["bs", inAccess, t], ["out", "rw", t]],
    params: [["n", "u32"], ["nb", "u32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let a = ${at("as_", "i")};
  let b = ${at("bs", same ? "i" : "i % p.nb")};
  out[i] = ${expr};
}`,
  };
}

/** Records out[i] = a[i] ∘ b[i % nb] for i < n. */
export function binary(
  gpu: Gpu,
  op: string,
  a: GPUBuffer,
  b: GPUBuffer,
  out: GPUBuffer,
  n: number,
  nb: number,
): void {
  const same = nb === n;
  const v = vec4Fits(n) && vec4Fits(nb);
  const len = v ? n / 4 : n, lenB = v ? nb / 4 : nb;
  const tex = v && useTextures(gpu, n);
  const bound: Binding[] = tex ? [gpu.toTexture(a, len, 0), gpu.toTexture(b, lenB, 1), out] : [
    a,
    b,
    out,
  ];
  gpu.dispatch(gpu.kernel(binarySpec(op, same, v, tex)), bound, [len, lenB], grid1d(len));
}

/** Records acc += alpha · b over n elements (in place: gradient accumulation, updates). */
export function axpy(gpu: Gpu, acc: GPUBuffer, b: GPUBuffer, n: number, alpha: number): void {
  const spec: KernelSpec = {
    name: "axpy",
    bindings: [["acc", "rw"], ["bs", "read"]],
    params: [["n", "u32"], ["alpha", "f32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  acc[i] = acc[i] + p.alpha * bs[i];
}`,
  };
  gpu.dispatch(gpu.kernel(spec), [acc, b], [n, alpha], grid1d(n));
}

/** Records out[i] = value for i < n. */
export function fill(gpu: Gpu, out: GPUBuffer, n: number, value: number): void {
  const spec: KernelSpec = {
    name: "fill",
    bindings: [["out", "rw"]],
    params: [["n", "u32"], ["v", "f32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  out[i] = p.v;
}`,
  };
  gpu.dispatch(gpu.kernel(spec), [out], [n, value], grid1d(n));
}
