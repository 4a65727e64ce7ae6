// The WebGPU runtime (kernels/device.ts) on its own: the buffer pool's reuse and accounting, the
// generated WGSL preamble, the pipeline cache, the checks that throw before anything is
// dispatched, the ordering model (an upload recorded after a dispatch does not overtake it), and
// a WGSL compile error surfacing at the next readback.
import { deepStrictEqual, equal, match, notEqual, ok, rejects, throws } from "node:assert/strict";
import { fmtBytes, getGpu, Gpu, kernelSource, type KernelSpec, roundSize } from "./device.ts";

/** y[i] = x[i] + p.add: enough of a kernel to see which data a dispatch read. */
const ADD: KernelSpec = {
  name: "device_test_add",
  bindings: [["x", "read"], ["y", "rw"]],
  params: [["n", "u32"], ["add", "f32"]],
  workgroupSize: [64],
  body: `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < p.n) { y[i] = x[i] + p.add; }
}`,
};

Deno.test("device: roundSize keeps buffers vec4-sized; fmtBytes picks the unit", () => {
  deepStrictEqual([0, 1, 16, 17, 100, 4096].map(roundSize), [16, 16, 16, 32, 112, 4096]);
  deepStrictEqual(
    [512, 1536, 3 * 2 ** 20, 2.5 * 2 ** 30].map(fmtBytes),
    ["512 B", "1.5 KiB", "3.0 MiB", "2.50 GiB"],
  );
});

Deno.test("device: kernelSource declares the params struct and bindings, and fills WG", () => {
  const src = kernelSource({
    ...ADD,
    bindings: [["x", "read"], ["idx", "read", "i32"], ["y", "rw"]],
  });
  const lines = src.split("\n");
  deepStrictEqual(lines.slice(0, 8), [
    "struct Params {",
    "  n: u32,",
    "  add: f32,",
    "};",
    // The uniform binding follows the storage bindings.
    "@group(0) @binding(3) var<uniform> p: Params;",
    "@group(0) @binding(0) var<storage, read> x: array<f32>;",
    "@group(0) @binding(1) var<storage, read> idx: array<i32>;",
    "@group(0) @binding(2) var<storage, read_write> y: array<f32>;",
  ]);
  ok(src.includes("@compute @workgroup_size(64)"), "WG replaced by the workgroup size");
  ok(!src.includes("enable f16;"), "no f16 unless asked");
  const bare = kernelSource({ ...ADD, params: [], f16: true, workgroupSize: [16, 16] });
  ok(bare.startsWith("enable f16;\n@group(0) @binding(0)"), "no struct without params");
  ok(bare.includes("@workgroup_size(16, 16)"));
});

Deno.test("device: the pool hands a released buffer back for the same rounded size", async () => {
  const gpu = await getGpu();
  const live0 = gpu.liveBytes, pooled0 = gpu.pooledBytes;
  const a = gpu.acquire(100, "pool test");
  equal(a.size, 112);
  equal(gpu.liveBytes, live0 + 112);
  gpu.release(a);
  equal(gpu.liveBytes, live0);
  equal(gpu.pooledBytes, pooled0 + 112);
  const b = gpu.acquire(112); // rounds to the same size: the same GPUBuffer comes back
  ok(b.buffer === a.buffer, "released buffer reused");
  equal(gpu.pooledBytes, pooled0);
  const c = gpu.acquire(128); // another size: a new buffer
  notEqual(c.buffer, b.buffer);
  gpu.release(b);
  gpu.release(c);
  gpu.trimPool();
  equal(gpu.pooledBytes, 0);
  equal(gpu.liveBytes, live0);
});

Deno.test("device: checkSize and acquire refuse a buffer over the limit, naming it", async () => {
  const gpu = await getGpu();
  const max = Math.min(gpu.limits.maxBufferSize, gpu.limits.maxStorageBufferBindingSize);
  gpu.checkSize(max, "at the limit"); // does not throw
  throws(
    () => gpu.checkSize(max + 1, "activations [8, 13, 128, 768]"),
    (e: Error) =>
      e instanceof RangeError && e.message.startsWith("activations [8, 13, 128, 768]: needs") &&
      e.message.includes(fmtBytes(max)) && e.message.includes(gpu.adapterName),
  );
  const live0 = gpu.liveBytes;
  throws(() => gpu.acquire(max + 16, "huge"), /huge: needs a buffer of/);
  equal(gpu.liveBytes, live0, "nothing allocated");
});

Deno.test("device: a spec compiles once; dispatch checks buffers and workgroup counts", async () => {
  const gpu = await getGpu();
  const k = gpu.kernel(ADD);
  const cached = gpu.cachedKernels;
  ok(gpu.kernel(ADD) === k, "same name, same pipeline");
  equal(gpu.cachedKernels, cached);
  const x = gpu.acquire(16), y = gpu.acquire(16);
  const dispatches = gpu.totalDispatches;
  throws(
    () => gpu.dispatch(k, [x.buffer], [4, 0], [1]),
    /device_test_add: expected 2 buffers, got 1/,
  );
  const maxG = gpu.limits.maxComputeWorkgroupsPerDimension;
  throws(() => gpu.dispatch(k, [x.buffer, y.buffer], [4, 0], [1, maxG + 1]), RangeError);
  gpu.dispatch(k, [x.buffer, y.buffer], [4, 0], [0]); // an empty grid records nothing
  equal(gpu.totalDispatches, dispatches, "nothing recorded");
  gpu.release(x);
  gpu.release(y);
});

Deno.test("device: recorded work keeps its order; one flush submits it all", async () => {
  const gpu = await getGpu();
  const n = 300; // 5 workgroups of 64, the last one partial
  const x = gpu.acquire(n * 4), y = gpu.acquire(n * 4), z = gpu.acquire(n * 4);
  const ones = new Float32Array(n).fill(1), twos = new Float32Array(n).fill(2);
  const k = gpu.kernel(ADD);
  await gpu.sync();
  const submits = gpu.totalSubmits;
  gpu.upload(x.buffer, ones);
  gpu.dispatch(k, [x.buffer, y.buffer], [n, 10], [Math.ceil(n / 64)]); // y = 1 + 10
  // Recorded after the dispatch, so it must not overtake it (no queue.writeBuffer jump-ahead).
  gpu.upload(x.buffer, twos);
  gpu.dispatch(k, [x.buffer, z.buffer], [n, 100], [Math.ceil(n / 64)]); // z = 2 + 100
  equal(gpu.pendingDispatches, 2);
  const [ys, zs] = [
    new Float32Array(await gpu.read(y.buffer, n * 4)),
    new Float32Array(await gpu.read(z.buffer, n * 4)),
  ];
  deepStrictEqual(ys, new Float32Array(n).fill(11), "the first dispatch read the first upload");
  deepStrictEqual(zs, new Float32Array(n).fill(102));
  equal(gpu.pendingDispatches, 0);
  // The first read submitted everything recorded so far in one command buffer; the second
  // only its own copy.
  equal(gpu.totalSubmits, submits + 2);
  // A partial read at an offset.
  deepStrictEqual(new Float32Array(await gpu.read(z.buffer, 8, 16)), Float32Array.of(102, 102));
  for (const b of [x, y, z]) gpu.release(b);
});

Deno.test("device: a WGSL compile error surfaces at the next readback, naming the kernel", async () => {
  // A private device: the first compile error is kept for the device's lifetime, and the shared
  // one must stay clean for the other tests.
  const adapter = await navigator.gpu.requestAdapter();
  ok(adapter, "a WebGPU adapter");
  const device = await adapter.requestDevice();
  const gpu = new Gpu(adapter, device);
  try {
    const bad: KernelSpec = {
      ...ADD,
      name: "device_test_broken",
      body: `@compute @workgroup_size(WG) fn main() { let v: f32 = no_such_function(); }`,
    };
    gpu.kernel(bad);
    const b = gpu.acquire(16);
    await rejects(gpu.read(b.buffer, 16), (e: Error) => {
      match(e.message, /kernel 'device_test_broken' failed to compile/);
      return true;
    });
  } finally {
    device.destroy();
  }
});
