/**
 * Elementwise kernels, forward and backward, from one table of formulas (the habit of
 * webgpu-torch's op_table): each unary op gives its forward `y = f(x)` and its backward
 * `dx = dy · f'(x, y)` as WGSL expressions; the kernels are generated from the table.
 *
 *   x, y, dy, dx (n)          unary ops, any shape flattened
 *   a (n), b (n or n % |b|)   binary ops; b broadcasts when its size divides a's (a bias row)
 * Checked by kernels/elementwise_test.ts against TF.js and a float64 reference.
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

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

function unarySpec(op: string, dir: "fwd" | "bwd"): KernelSpec {
  const u = UNARY[op];
  if (!u) throw new Error(`unknown unary op '${op}'`);
  const fwd = dir === "fwd";
  return {
    name: `unary_${op}_${dir}`,
    bindings: fwd
      ? [["xs", "read"], ["ys", "rw"]]
      : [["xs", "read"], ["ys", "read"], ["dys", "read"], [
        "dxs",
        "rw",
      ]],
    params: [["n", "u32"], ["c", "f32"]],
    workgroupSize: [WG1],
    body: `${u.helpers ?? ""}
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let c = p.c;
  let x = xs[i];
  ${fwd ? `ys[i] = ${u.forward};` : `let y = ys[i]; let dy = dys[i]; dxs[i] = ${u.backward};`}
}`,
  };
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
  gpu.dispatch(gpu.kernel(unarySpec(op, "fwd")), [x, y], [n, c], grid1d(n));
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
  gpu.dispatch(gpu.kernel(unarySpec(op, "bwd")), [x, y, dy, dx], [n, c], grid1d(n));
}

/** Binary ops: `out = a ∘ b[i % nb]` (b broadcasts when it is a suffix row of a). */
export const BINARY: Record<string, string> = {
  add: "a + b",
  sub: "a - b",
  mul: "a * b",
};

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
  const expr = BINARY[op];
  if (!expr) throw new Error(`unknown binary op '${op}'`);
  const spec: KernelSpec = {
    name: `binary_${op}`,
    bindings: [["as_", "read"], ["bs", "read"], ["out", "rw"]],
    params: [["n", "u32"], ["nb", "u32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n) { return; }
  let a = as_[i];
  let b = bs[i % p.nb];
  out[i] = ${expr};
}`,
  };
  gpu.dispatch(gpu.kernel(spec), [a, b, out], [n, nb], grid1d(n));
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
