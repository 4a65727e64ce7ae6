/**
 * Row gather (embedding lookup, [CLS] selection) with a deterministic scatter-add backward,
 * and axis permutation.
 *
 *   gather:   table (V, C), idx (N) → out (N, C),  out[n] = table[idx[n]]
 *   scatter:  dOut (N, C) → dTable (V, C),  dTable[v] = Σ_{n: idx[n] = v} dOut[n]
 *   permute:  x with shape s (up to 4 axes) → y with shape s[perm]
 * The scatter-add uses no float atomics: the host (which owns the ids) groups positions by id
 * into CSR form (unique ids, offsets, positions in increasing order), and one invocation per
 * (unique id, column) sums its positions in that fixed order, so results are identical run to
 * run. Rows of ids that never occur stay zero. Checked by kernels/gather_test.ts (gather, its
 * scatter-add gradient and permute against TF.js; the gradient bit-identical run to run).
 * @module
 */
import type { Gpu, KernelSpec } from "./device.ts";
import { grid1d, INDEX_1D, LET_I, WG1 } from "./grid.ts";

/** The gather kernel, on vec4s when the row length is a multiple of 4 (BERT's always is). */
function gatherSpec(vec4: boolean): KernelSpec {
  const t = vec4 ? "vec4<f32>" : "f32";
  return {
    name: `gather_rows${vec4 ? "_v4" : ""}`,
    bindings: [["table", "read", t], ["idx", "read", "i32"], ["out", "rw", t]],
    params: [["n", "u32"], ["cols", "u32"]],
    workgroupSize: [WG1],
    body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.n * p.cols) { return; }
  let r = i / p.cols;
  let c = i % p.cols;
  out[i] = table[u32(idx[r]) * p.cols + c];
}`,
  };
}

const SCATTER: KernelSpec = {
  name: "scatter_add_rows",
  bindings: [
    ["dOut", "read"],
    ["uniq", "read", "i32"],
    ["offsets", "read", "i32"],
    ["positions", "read", "i32"],
    ["dTable", "rw"],
  ],
  params: [["nUniq", "u32"], ["cols", "u32"]],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.nUniq * p.cols) { return; }
  let u = i / p.cols;
  let c = i % p.cols;
  var s = 0.0;
  for (var k = offsets[u]; k < offsets[u + 1u]; k++) {
    s += dOut[u32(positions[k]) * p.cols + c];
  }
  dTable[u32(uniq[u]) * p.cols + c] = s;
}`,
};

/** Records out[n] = table[idx[n]] for n < N (idx an i32 buffer). */
export function gatherRows(
  gpu: Gpu,
  table: GPUBuffer,
  idx: GPUBuffer,
  out: GPUBuffer,
  n: number,
  cols: number,
): void {
  const v = cols % 4 === 0;
  const c = v ? cols / 4 : cols; // in vec4s on the vec4 path
  gpu.dispatch(gpu.kernel(gatherSpec(v)), [table, idx, out], [n, c], grid1d(n * c));
}

/** Host-built grouping of positions by id for {@linkcode scatterAddRows}. */
export interface Csr {
  uniq: Int32Array;
  offsets: Int32Array;
  positions: Int32Array;
}

/** Throws naming the position of the first index outside [0, rows). */
export function checkIndices(idx: Int32Array, rows: number, what = "ids"): void {
  for (let i = 0; i < idx.length; i++) {
    if (!(idx[i] >= 0 && idx[i] < rows)) {
      throw new RangeError(`${what}: value ${idx[i]} at position ${i} is outside [0, ${rows})`);
    }
  }
}

/**
 * Groups positions by id: ids sorted ascending, positions ascending within an id. Throws
 * naming the position when an id is outside [0, rows).
 */
export function buildCsr(idx: Int32Array, rows: number, what = "ids"): Csr {
  checkIndices(idx, rows, what);
  const order = Array.from(idx.keys());
  order.sort((a, b) => idx[a] - idx[b] || a - b);
  const uniq: number[] = [], offsets: number[] = [];
  order.forEach((pos, k) => {
    if (k === 0 || idx[pos] !== idx[order[k - 1]]) {
      uniq.push(idx[pos]);
      offsets.push(k);
    }
  });
  offsets.push(order.length);
  return {
    uniq: Int32Array.from(uniq),
    offsets: Int32Array.from(offsets),
    positions: Int32Array.from(order),
  };
}

/**
 * Records dTable[uniq[u]] = Σ dOut[positions[offsets[u]..offsets[u+1])] for each unique id.
 * dTable must be zeroed first (rows of absent ids are not written).
 */
export function scatterAddRows(
  gpu: Gpu,
  dOut: GPUBuffer,
  csr: { uniq: GPUBuffer; offsets: GPUBuffer; positions: GPUBuffer; nUniq: number },
  dTable: GPUBuffer,
  cols: number,
): void {
  gpu.dispatch(
    gpu.kernel(SCATTER),
    [dOut, csr.uniq, csr.offsets, csr.positions, dTable],
    [csr.nUniq, cols],
    grid1d(csr.nUniq * cols),
  );
}

const PERMUTE: KernelSpec = {
  name: "permute4",
  bindings: [["x", "read"], ["y", "rw"]],
  // Output shape (o0..o3) and, for each output axis, the stride of the input axis it reads.
  params: [
    ["o0", "u32"],
    ["o1", "u32"],
    ["o2", "u32"],
    ["o3", "u32"],
    ["s0", "u32"],
    ["s1", "u32"],
    ["s2", "u32"],
    ["s3", "u32"],
  ],
  workgroupSize: [WG1],
  body: `
@compute @workgroup_size(WG)
fn main(${INDEX_1D}) {
  ${LET_I}
  if (i >= p.o0 * p.o1 * p.o2 * p.o3) { return; }
  let i3 = i % p.o3;
  let i2 = (i / p.o3) % p.o2;
  let i1 = (i / (p.o3 * p.o2)) % p.o1;
  let i0 = i / (p.o3 * p.o2 * p.o1);
  y[i] = x[i0 * p.s0 + i1 * p.s1 + i2 * p.s2 + i3 * p.s3];
}`,
};

/** Records y = x with axes permuted (y's axis d is x's axis perm[d]); up to 4 axes. */
export function permute(
  gpu: Gpu,
  x: GPUBuffer,
  y: GPUBuffer,
  shape: readonly number[],
  perm: readonly number[],
): void {
  if (shape.length > 4 || perm.length !== shape.length) {
    throw new RangeError(`permute: shape [${shape}] with perm [${perm}] (at most 4 axes)`);
  }
  const pad = 4 - shape.length;
  const s4 = [...Array(pad).fill(1), ...shape];
  const p4 = [...Array(pad).keys(), ...perm.map((a) => a + pad)];
  const strides = [0, 0, 0, 0];
  for (let d = 3, acc = 1; d >= 0; d--) {
    strides[d] = acc;
    acc *= s4[d];
  }
  const out = p4.map((a) => s4[a]);
  const inStrides = p4.map((a) => strides[a]);
  const n = out.reduce((a, b) => a * b, 1);
  gpu.dispatch(gpu.kernel(PERMUTE), [x, y], [...out, ...inStrides], grid1d(n));
}
