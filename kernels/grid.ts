/**
 * Dispatch grids shared by the kernels: the 1-D workgroup size, the workgroup counts of a 1-D
 * kernel (split over x and y so no dimension exceeds 65,535) and of one workgroup per row, and
 * the WGSL that recovers the flat index from such a grid.
 *
 * Checked through the kernels that use them: kernels/elementwise_test.ts and the other 1-D
 * kernels' tests (grid1d, INDEX_1D), kernels/softmax_test.ts and kernels/layernorm_test.ts
 * (rowGrid).
 * @module
 */

/** Workgroup size of the 1-D kernels. */
export const WG1 = 256;

/**
 * Workgroup counts for `n` invocations of a 1-D kernel, split over x and y so no dimension
 * exceeds the 65,535 limit. The kernel recovers the index with {@linkcode INDEX_1D}.
 */
export function grid1d(n: number, wg = WG1): [number, number] {
  const groups = Math.ceil(n / wg);
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}

/** Workgroup counts for one workgroup per row (`row = wid.x + wid.y · nwg.x` in the kernel). */
export function rowGrid(rows: number): [number, number] {
  const x = Math.min(rows, 65535);
  return [x, Math.ceil(rows / x)];
}

/** WGSL computing the flat index `i` of a 1-D kernel dispatched with {@linkcode grid1d}. */
export const INDEX_1D =
  `@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>`;
/** The statement that defines `i` from {@linkcode INDEX_1D}'s builtins. */
export const LET_I = `let i = gid.x + gid.y * nwg.x * ${WG1}u;`;

/**
 * How a row-wise kernel (softmax, the LayerNorm forward) is laid out: a workgroup per row with
 * tree reductions behind barriers (GPUs), or an invocation per row with no barrier (software
 * adapters, where every barrier splits the kernel into coroutines).
 */
export type RowLayout = "workgroup" | "row";

let forcedLayout: RowLayout | undefined;

/** Forces one layout on every adapter (tests check both); `undefined` restores the choice. */
export function forceRowLayout(v: RowLayout | undefined): void {
  forcedLayout = v;
}

/** The layout for an adapter: an invocation per row on software adapters, else a workgroup. */
export function rowLayout(gpu: { isFallback: boolean }): RowLayout {
  return forcedLayout ?? (gpu.isFallback ? "row" : "workgroup");
}
