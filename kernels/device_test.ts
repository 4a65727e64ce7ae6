// The WebGPU runtime (kernels/device.ts) on its own: the buffer pool's reuse and accounting, the
// generated WGSL preamble, the pipeline cache, the checks that throw before anything is
// dispatched, the ordering model (an upload recorded after a dispatch does not overtake it), and
// a WGSL compile error surfacing at the next readback. Device errors: a real validation error and
// an injected out-of-memory error (by the API and by the environment hook) surface as
// DeviceErrors and keep throwing; the message helper. The bounded pool: the cap under churn, with
// and without pending work, trimming a buffer the pending encoder still reads, peak tracking.
// Tests that fail a device or change its pool cap use a device of their own (createGpu), so the
// shared one stays clean for the other tests in the process.
import { deepStrictEqual, equal, match, notEqual, ok, rejects, throws } from "node:assert/strict";
import {
  createGpu,
  DEFAULT_POOL_CAP_FLOOR,
  describeDeviceError,
  DeviceError,
  fmtBytes,
  getGpu,
  Gpu,
  INJECT_OOM_ENV,
  kernelSource,
  type KernelSpec,
  type PooledBuffer,
  roundSize,
} from "./device.ts";

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

Deno.test("device: a texture binding is declared as a texture_2d and bound to a texture", async () => {
  const spec: KernelSpec = {
    name: "device_test_texture_add",
    bindings: [["x", "texture"], ["y", "rw"]],
    params: [["n", "u32"], ["add", "f32"]],
    workgroupSize: [64],
    body: `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i < p.n) { y[i] = textureLoad(x, vec2<u32>(i / 4u, 0u), 0)[i % 4u] + p.add; }
}`,
  };
  ok(kernelSource(spec).includes("@group(0) @binding(0) var x: texture_2d<f32>;"));
  const gpu = await getGpu();
  const [x, y] = [gpu.acquire(32), gpu.acquire(32)];
  gpu.upload(x.buffer, Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  gpu.dispatch(gpu.kernel(spec), [gpu.toTexture(x.buffer, 2, 0), y.buffer], [8, 0.5], [1]);
  const got = [...new Float32Array(await gpu.read(y.buffer, 32))];
  deepStrictEqual(got, [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5]);
  gpu.release(x);
  gpu.release(y);
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

/** Runs `f` on a device of its own, destroyed afterwards whatever happens. */
async function withOwnGpu(f: (gpu: Gpu) => Promise<void> | void): Promise<void> {
  const gpu = await createGpu();
  try {
    await f(gpu);
  } finally {
    gpu.device.destroy();
  }
}

/** Asserts that `e` is `expected` (the kept device error, thrown again). */
function isSame(expected: DeviceError): (e: unknown) => boolean {
  return (e) => e === expected;
}

Deno.test("device: a validation error surfaces as a DeviceError at the next read, and keeps throwing", async () => {
  await withOwnGpu(async (gpu) => {
    const k = gpu.kernel(ADD);
    const a = gpu.acquire(16, "buffer a"), b = gpu.acquire(16, "buffer b");
    gpu.upload(a.buffer, Float32Array.of(1, 2, 3, 4));
    // A copy past the end of both 16-byte buffers: WebGPU invalidates the whole command buffer,
    // so without the check the read below would return whatever b held.
    gpu.copy(a.buffer, 0, b.buffer, 0, 32);
    gpu.dispatch(k, [a.buffer, b.buffer], [4, 1], [1]);
    equal(gpu.error, null, "not known yet: WebGPU reports errors asynchronously");
    let err: DeviceError | null = null;
    await rejects(gpu.read(b.buffer, 16), (e: unknown) => {
      ok(e instanceof DeviceError, `a DeviceError, got ${e}`);
      err = e;
      return true;
    });
    const e = err! as DeviceError;
    equal(e.kind, "validation");
    match(e.gpuMessage, /overrunning the bounds/);
    // What the device was doing: the submit and the kernels recorded in it.
    // The upload, the bad copy and the read's own copy.
    match(e.during, /^submit \d+ \(since the previous submit: 1 dispatch, 3 copies/);
    match(e.during, /kernels: device_test_add\)/);
    ok(e.message.startsWith("WebGPU validation error: submit "), e.message);
    equal(gpu.error, e);
    equal(gpu.errorCount, 1);
    // A failed device is not used again silently: every call that records or reads throws it.
    throws(() => gpu.check(), isSame(e));
    throws(() => gpu.acquire(16), isSame(e));
    throws(() => gpu.dispatch(k, [a.buffer, b.buffer], [4, 1], [1]), isSame(e));
    throws(() => gpu.copy(a.buffer, 0, b.buffer, 0, 16), isSame(e));
    throws(() => gpu.clear(a.buffer), isSame(e));
    throws(() => gpu.upload(a.buffer, Float32Array.of(1)), isSame(e));
    throws(() => gpu.flush(), isSame(e));
    await rejects(gpu.read(a.buffer, 16), isSame(e));
    await rejects(gpu.sync(), isSame(e));
    // Releasing and trimming still work, so cleanup in `finally` blocks does not throw.
    gpu.release(a);
    gpu.release(b);
    gpu.trimPool();
    equal(gpu.heldBytes, 0);
    // Context for the loops: a copy with the stage in front, the kept error unchanged.
    const c = e.withContext("fine-tune", "step 3 of 10");
    ok(c instanceof DeviceError && c.kind === "validation" && c.gpuMessage === e.gpuMessage);
    ok(c.message.startsWith("fine-tune (step 3 of 10): WebGPU validation error: submit "));
    deepStrictEqual(c.context, [{ stage: "fine-tune", detail: "step 3 of 10" }]);
    ok(!e.message.startsWith("fine-tune"));
  });
  // The shared device never saw any of it.
  equal((await getGpu()).error, null);
});

Deno.test("device: a dispatch binding one buffer as read and read-write names the kernel", async () => {
  await withOwnGpu(async (gpu) => {
    const k = gpu.kernel(ADD);
    const a = gpu.acquire(16, "aliased");
    gpu.dispatch(k, [a.buffer, a.buffer], [4, 1], [1]); // an in-place call of an out-of-place kernel
    await rejects(gpu.sync(), (e: unknown) => {
      ok(e instanceof DeviceError && e.kind === "validation", String(e));
      match(e.gpuMessage, /'aliased' label with conflicting usages/);
      match(e.during, /kernels: device_test_add/);
      return true;
    });
  });
});

Deno.test("device: an injected out-of-memory error surfaces like a real one, naming the buffer", async () => {
  await withOwnGpu(async (gpu) => {
    gpu.injectFault("out-of-memory", 4096);
    const small = gpu.acquire(2048, "fits");
    gpu.release(small);
    equal(gpu.acquire(2048, "reused").buffer, small.buffer, "a pool hit creates nothing");
    await gpu.sync(); // 2 KiB held: under the threshold, no error
    const big = gpu.acquire(4096, "activations [8×128]"); // 6 KiB held: over it
    gpu.upload(big.buffer, new Float32Array(1024));
    await rejects(gpu.sync(), (e: unknown) => {
      ok(e instanceof DeviceError, String(e));
      equal(e.kind, "out-of-memory");
      match(e.gpuMessage, /not enough memory left/);
      equal(
        e.during,
        "creating buffer 'activations [8×128]' of 4.0 KiB (2.0 KiB held: 2.0 KiB live, 0 B idle)",
      );
      return true;
    });
    throws(() => gpu.acquire(16), (e: unknown) => e instanceof DeviceError);
    await rejects(gpu.read(big.buffer, 16), (e: unknown) => e === gpu.error);
  });
});

Deno.test("device: BERTVISION_INJECT_OOM_AFTER_MIB arms the fault when a device is created", async () => {
  // A child process: the variable is read at device creation, and changing this process's
  // environment would reach devices that tests running in parallel create.
  const device = new URL("./device.ts", import.meta.url).href;
  const code = `
import { createGpu } from "${device}";
const gpu = await createGpu();
gpu.acquire(2 ** 19, "half a MiB");
await gpu.sync();
gpu.acquire(2 ** 20, "one MiB");
try {
  await gpu.sync();
  console.log("no error");
} catch (e) {
  console.log(JSON.stringify({ name: e.name, kind: e.kind, during: e.during }));
}
gpu.device.destroy();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    env: { [INJECT_OOM_ENV]: "1", XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  ok(out.success, new TextDecoder().decode(out.stderr));
  const got = JSON.parse(stdout);
  equal(got.name, "DeviceError");
  equal(got.kind, "out-of-memory");
  match(got.during, /^creating buffer 'one MiB' of 1\.0 MiB/);
});

Deno.test("device: describeDeviceError names the stage, the batch and the three fixes", () => {
  const oom = new DeviceError("out-of-memory", "not enough memory left", "creating buffer 'x'");
  oom.laterErrors = 2;
  const msg = describeDeviceError(oom, { stage: "capture train", batch: "7/120", batchSize: 64 });
  ok(msg.startsWith("capture train, batch 7/120: the GPU ran out of memory."), msg);
  ok(msg.includes("creating buffer 'x': not enough memory left"), msg);
  ok(msg.includes("--batch-size 32 (now 64)"), msg);
  ok(msg.includes("BERTVISION_MAX_BINDING_MIB"), msg);
  ok(msg.includes("--dtype f16"), msg);
  ok(msg.includes("2 later device errors"), msg);
  const val = describeDeviceError(
    new DeviceError("validation", "bad copy", "submit 4").withContext("fine-tune", "step 2"),
    { stage: "fine-tune", batch: 2 },
  );
  ok(val.startsWith("fine-tune, batch 2: WebGPU rejected the work (a validation error"), val);
  ok(val.includes("fine-tune (step 2): WebGPU validation error: submit 4: bad copy"), val);
  for (const fix of ["a smaller --batch-size", "BERTVISION_MAX_BINDING_MIB", "--dtype f16"]) {
    ok(val.includes(fix), `${fix} in ${val}`);
  }
});

/** A seeded generator of sizes: many distinct sizes from 16 B to 64 KiB. */
function sizes(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return 16 + (s % 4096) * 16;
  };
}

Deno.test("device: the pool cap bounds idle bytes under churn; held ≤ live + cap", async () => {
  await withOwnGpu(async (gpu) => {
    equal(gpu.poolCap, DEFAULT_POOL_CAP_FLOOR, "default: 256 MiB until more was ever live");
    const cap = 256 * 1024;
    gpu.setPoolCap(cap);
    equal(gpu.poolCap, cap);
    const next = sizes(1);
    const held: PooledBuffer[] = [];
    const invariant = (when: string) => {
      ok(gpu.pooledBytes <= cap, `${when}: ${gpu.pooledBytes} idle bytes over the cap`);
      ok(gpu.heldBytes <= gpu.liveBytes + cap, when);
    };
    // Nothing recorded: every idle buffer can go at once, so the bound holds after every call.
    for (let i = 0; i < 600; i++) {
      held.push(gpu.acquire(next(), "churn"));
      if (held.length > 8) gpu.release(held.splice(i % held.length, 1)[0]);
      invariant(`step ${i}`);
    }
    ok(gpu.destroyedBuffers > 0, "the cap destroyed idle buffers");
    ok(
      gpu.createdBuffers - gpu.destroyedBuffers === held.length + gpu.poolClasses()
            .reduce((n, c) => n + c.idle, 0),
    );
    // With work recorded on the buffers, the ones released since the last submit wait for it;
    // after each submit the bound holds again.
    for (let i = 0; i < 300; i++) {
      const b = gpu.acquire(next(), "churn");
      gpu.clear(b.buffer);
      held.push(b);
      if (held.length > 8) gpu.release(held.splice(i % held.length, 1)[0]);
      if (i % 10 === 9) {
        gpu.flush();
        invariant(`after submit ${i}`);
      }
    }
    for (const b of held) gpu.release(b);
    await gpu.sync();
    invariant("at the end");
    // Per-size counts add up to the bytes.
    const classes = gpu.poolClasses();
    equal(classes.reduce((n, c) => n + c.idle * c.size, 0), gpu.pooledBytes);
    equal(classes.reduce((n, c) => n + c.live, 0), 0);
    // Lowering the cap trims at once; undefined restores the default.
    gpu.setPoolCap(0);
    equal(gpu.pooledBytes, 0);
    gpu.setPoolCap(undefined);
    equal(gpu.poolCap, DEFAULT_POOL_CAP_FLOOR);
    throws(() => gpu.setPoolCap(-1), RangeError);
  });
});

Deno.test("device: trimming a buffer the pending encoder reads waits for the submit", async () => {
  await withOwnGpu(async (gpu) => {
    const n = 300;
    const k = gpu.kernel(ADD);
    const x = gpu.acquire(n * 4, "input"), y = gpu.acquire(n * 4, "output");
    gpu.upload(x.buffer, new Float32Array(n).fill(1));
    gpu.dispatch(k, [x.buffer, y.buffer], [n, 10], [Math.ceil(n / 64)]);
    // x is still read by the unsubmitted dispatch: destroying it now would invalidate the submit.
    gpu.release(x);
    gpu.setPoolCap(0);
    equal(gpu.pooledBytes, x.size, "kept until the pending work is submitted");
    const destroyed = gpu.destroyedBuffers;
    deepStrictEqual(
      new Float32Array(await gpu.read(y.buffer, n * 4)),
      new Float32Array(n).fill(11),
    );
    equal(gpu.error, null);
    equal(gpu.pooledBytes, 0, "destroyed right after the submit");
    equal(gpu.destroyedBuffers, destroyed + 1);
    // A buffer released before the pending work was recorded goes at once.
    gpu.setPoolCap(undefined);
    const z = gpu.acquire(64, "idle before the work");
    gpu.release(z);
    const w = gpu.acquire(n * 4, "output 2");
    gpu.dispatch(k, [y.buffer, w.buffer], [n, 1], [Math.ceil(n / 64)]);
    gpu.setPoolCap(0);
    equal(gpu.pooledBytes, 0);
    equal(gpu.pendingDispatches, 1, "without submitting the pending work");
    deepStrictEqual(new Float32Array(await gpu.read(w.buffer, 8)), Float32Array.of(12, 12));
    // trimPool with pending work submits it first, as before.
    gpu.dispatch(k, [y.buffer, w.buffer], [n, 1], [Math.ceil(n / 64)]);
    gpu.release(w);
    gpu.trimPool();
    equal(gpu.pendingDispatches, 0);
    await gpu.sync();
  });
});

Deno.test("device: peakHeldBytes tracks the most bytes held; resetPeak starts afresh", async () => {
  await withOwnGpu((gpu) => {
    const MiB = 2 ** 20;
    equal(gpu.peakHeldBytes, 0);
    const a = gpu.acquire(MiB), b = gpu.acquire(MiB);
    equal(gpu.peakHeldBytes, 2 * MiB);
    gpu.release(a);
    equal(gpu.heldBytes, 2 * MiB, "a released buffer is still held (idle)");
    const c = gpu.acquire(MiB / 2); // another size: created, so held grows
    equal(gpu.peakHeldBytes, 2.5 * MiB);
    gpu.release(b);
    gpu.release(c);
    equal(gpu.peakHeldBytes, 2.5 * MiB, "the peak stays");
    gpu.trimPool();
    equal(gpu.heldBytes, 0);
    equal(gpu.peakHeldBytes, 2.5 * MiB);
    gpu.resetPeak();
    equal(gpu.peakHeldBytes, 0);
    gpu.release(gpu.acquire(MiB / 4));
    equal(gpu.peakHeldBytes, MiB / 4);
    deepStrictEqual(gpu.poolClasses(), [{ size: MiB / 4, live: 0, idle: 1 }]);
  });
});
