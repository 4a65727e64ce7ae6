/**
 * The WebGPU runtime every kernel runs on: device acquisition with the adapter's full limits,
 * a buffer pool keyed by size, a pipeline cache keyed by specialisation, and a recorder that
 * gathers many dispatches into one command encoder and submits them at once.
 *
 * Ordering model: all GPU work goes through one queue, in recording order. Work is recorded
 * into the pending encoder and submitted by {@linkcode Gpu.flush} (called by readbacks). A
 * buffer returned to the pool can be handed out again while the pending encoder still reads
 * its old contents: this is safe because every later use is recorded after the earlier reads.
 * Uploads are therefore recorded as copies from fresh staging buffers, never as
 * `queue.writeBuffer` into a pooled buffer (which would jump ahead of the pending encoder).
 *
 * Checked by kernels/device_test.ts (pool reuse and accounting, the generated WGSL preamble, the
 * pipeline cache, size and dispatch checks, the ordering model, compile errors at readback).
 * @module
 */

/** A storage binding: read-only or read-write. */
export type Access = "read" | "rw";

/** One scalar field of a kernel's uniform parameter struct. */
export type ParamType = "u32" | "i32" | "f32";

/**
 * Declares a compute kernel once, in TypeScript: its bindings, its uniform struct, its workgroup
 * size and its WGSL body. The runtime prepends the binding and struct declarations, so the body
 * reads `p.<field>` and the buffers by their names.
 */
export interface KernelSpec {
  /** Unique name; with the specialisation key it names the cached pipeline. */
  name: string;
  /** Storage buffers in binding order: [name, access, element type (default f32)]. */
  bindings: [string, Access, string?][];
  /** Uniform fields in order (all 4 bytes): [name, type]. */
  params: [string, ParamType][];
  /** Workgroup size, e.g. [64] or [16, 16]. */
  workgroupSize: number[];
  /** WGSL code: helpers plus `@compute @workgroup_size(WG) fn main(...)`; `WG` is substituted. */
  body: string;
  /** Set when the body needs `enable f16;`. */
  f16?: boolean;
}

/** A compiled kernel, ready to dispatch. */
export interface Kernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

const STORAGE = 0x0080; // GPUBufferUsage.STORAGE
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const MAP_READ = 0x0001;
const UNIFORM = 0x0040;

/** Usage of every pooled storage buffer: it can be bound, copied from and copied into. */
export const STORAGE_USAGE = STORAGE | COPY_SRC | COPY_DST;

/** Uniform slots are aligned to the adapter's `minUniformBufferOffsetAlignment` (256 typical). */
const UNIFORM_SLOT = 256;

/** Thrown when WebGPU is unavailable, with what to install. */
export class NoAdapterError extends Error {
  constructor() {
    super(
      "No WebGPU adapter found. On a GPU server install the vendor's Vulkan driver " +
        "(NVIDIA: the driver's Vulkan ICD, nvidia_icd.json); on a CPU-only Linux machine install " +
        "Mesa's software Vulkan: `apt-get install -y mesa-vulkan-drivers libvulkan1` (adapter " +
        "'llvmpipe'). Check with `vulkaninfo --summary`.",
    );
    this.name = "NoAdapterError";
  }
}

/** A pooled GPU buffer with its byte size (a multiple of 4, at least 4). */
export interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
}

/**
 * The device and everything that caches on it. Get the shared one with {@linkcode getGpu}.
 */
export class Gpu {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** Adapter description, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)" or "NVIDIA H100 80GB HBM3". */
  readonly adapterName: string;
  /** Whether the adapter is a software fallback (llvmpipe). */
  readonly isFallback: boolean;
  /** Whether `shader-f16` was enabled. */
  readonly hasF16: boolean;
  /** Whether `timestamp-query` was enabled. */
  readonly hasTimestamps: boolean;

  #pool = new Map<number, GPUBuffer[]>();
  #pooledBytes = 0;
  #liveBytes = 0;
  #kernels = new Map<string, Kernel>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #uniforms: Uint32Array<ArrayBuffer> = new Uint32Array(UNIFORM_SLOT * 64 / 4);
  #uniformUsed = 0;
  #uniformBuffers: GPUBuffer[] = [];
  #uniformFree: Map<number, GPUBuffer[]> = new Map();
  #staging: GPUBuffer[] = [];
  #dispatches = 0;
  #deferredGroups: {
    kernel: Kernel;
    buffers: GPUBuffer[];
    uniformOffset: number;
    groups: [number, number, number];
  }[] = [];

  /** The first kernel compile error, thrown at the next readback. */
  #error: Error | null = null;

  /** Dispatches recorded since the device was created (for tests and benchmarks). */
  totalDispatches = 0;
  /** Command buffers submitted since the device was created. */
  totalSubmits = 0;

  constructor(adapter: GPUAdapter, device: GPUDevice) {
    this.device = device;
    const info = adapter.info;
    this.adapterName = info.description || `${info.vendor} ${info.architecture} ${info.device}`;
    this.isFallback = !!(info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ||
      /llvmpipe|swiftshader|lavapipe/i.test(this.adapterName);
    this.hasF16 = device.features.has("shader-f16");
    this.hasTimestamps = device.features.has("timestamp-query");
  }

  /** Device limits in force (the adapter's maxima, requested at creation). */
  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Bytes currently held by live (not pooled) buffers. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** Bytes held idle in the pool. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /**
   * Checks that a buffer of `bytes` can exist on this device, before anything is created or
   * dispatched; the error names `what` and the limit.
   */
  checkSize(bytes: number, what: string): void {
    const max = Math.min(this.limits.maxBufferSize, this.limits.maxStorageBufferBindingSize);
    if (bytes > max) {
      throw new RangeError(
        `${what}: needs a buffer of ${fmtBytes(bytes)}, over this device's limit of ` +
          `${fmtBytes(max)} (maxStorageBufferBindingSize on ${this.adapterName}). ` +
          `Use a smaller batch size or sequence length.`,
      );
    }
  }

  /** Takes a storage buffer of at least `bytes` from the pool (or creates one). */
  acquire(bytes: number, what = "tensor"): PooledBuffer {
    const size = roundSize(bytes);
    this.checkSize(size, what);
    const free = this.#pool.get(size);
    let buffer = free?.pop();
    if (buffer) {
      this.#pooledBytes -= size;
    } else {
      buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label: what });
    }
    this.#liveBytes += size;
    return { buffer, size };
  }

  /** Returns a buffer to the pool for reuse. */
  release(b: PooledBuffer): void {
    this.#liveBytes -= b.size;
    this.#pooledBytes += b.size;
    let list = this.#pool.get(b.size);
    if (!list) this.#pool.set(b.size, list = []);
    list.push(b.buffer);
  }

  /** Destroys every idle pooled buffer (frees device memory). */
  trimPool(): void {
    this.flush();
    for (const list of this.#pool.values()) for (const b of list) b.destroy();
    this.#pool.clear();
    this.#pooledBytes = 0;
  }

  /** Compiles (once) and returns the kernel for `spec`; its name must name the specialisation. */
  kernel(spec: KernelSpec): Kernel {
    let k = this.#kernels.get(spec.name);
    if (k) return k;
    const code = kernelSource(spec);
    this.device.pushErrorScope("validation");
    const module = this.device.createShaderModule({ code, label: spec.name });
    const layout = this.device.createBindGroupLayout({
      label: spec.name,
      entries: [
        ...spec.bindings.map((b, i) => ({
          binding: i,
          visibility: 4, // GPUShaderStage.COMPUTE
          buffer: {
            type: b[1] === "read" ? "read-only-storage" : "storage",
          } as GPUBufferBindingLayout,
        })),
        ...(spec.params.length
          ? [{
            binding: spec.bindings.length,
            visibility: 4,
            buffer: { type: "uniform" } as GPUBufferBindingLayout,
          }]
          : []),
      ],
    });
    const pipeline = this.device.createComputePipeline({
      label: spec.name,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    this.device.popErrorScope().then((e) => {
      if (e) this.#error ??= new Error(`kernel '${spec.name}' failed to compile: ${e.message}`);
    });
    k = { spec, pipeline, layout };
    this.#kernels.set(spec.name, k);
    return k;
  }

  /** Number of compiled pipelines in the cache. */
  get cachedKernels(): number {
    return this.#kernels.size;
  }

  #ensureEncoder(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /**
   * Records one dispatch into the pending encoder. `params` are the uniform values in the
   * order the spec declares them.
   */
  dispatch(
    kernel: Kernel,
    buffers: GPUBuffer[],
    params: number[],
    groups: [number, number?, number?],
  ): void {
    const spec = kernel.spec;
    if (buffers.length !== spec.bindings.length) {
      throw new Error(
        `${spec.name}: expected ${spec.bindings.length} buffers, got ${buffers.length}`,
      );
    }
    const g: [number, number, number] = [groups[0], groups[1] ?? 1, groups[2] ?? 1];
    const maxG = this.limits.maxComputeWorkgroupsPerDimension;
    if (g.some((n) => n > maxG)) {
      throw new RangeError(
        `${spec.name}: dispatch ${g.join("×")} exceeds ${maxG} workgroups per dimension`,
      );
    }
    if (g.some((n) => n === 0)) return;
    let uniformOffset = -1;
    if (spec.params.length) {
      uniformOffset = this.#uniformUsed;
      const words = this.#uniformUsed / 4;
      if (words + UNIFORM_SLOT / 4 > this.#uniforms.length) {
        const bigger = new Uint32Array(this.#uniforms.length * 2);
        bigger.set(this.#uniforms);
        this.#uniforms = bigger;
      }
      const f32 = new Float32Array(this.#uniforms.buffer);
      const i32 = new Int32Array(this.#uniforms.buffer);
      spec.params.forEach(([, t], i) => {
        const v = params[i];
        if (t === "f32") f32[words + i] = v;
        else if (t === "i32") i32[words + i] = v;
        else this.#uniforms[words + i] = v >>> 0;
      });
      this.#uniformUsed += UNIFORM_SLOT;
    }
    this.#deferredGroups.push({ kernel, buffers, uniformOffset, groups: g });
    this.#dispatches++;
    this.totalDispatches++;
    // Bind groups need the uniform buffer, which is only sized at flush; keep the queue short.
    if (this.#deferredGroups.length >= 4096) this.#recordDeferred();
  }

  /** Encodes the deferred dispatches into the pending encoder with one uniform upload. */
  #recordDeferred(): void {
    if (!this.#deferredGroups.length) return;
    let ubuf: GPUBuffer | null = null;
    if (this.#uniformUsed > 0) {
      const size = this.#uniformUsed;
      const cap = 1 << Math.ceil(Math.log2(size));
      ubuf = this.#uniformFree.get(cap)?.pop() ??
        this.device.createBuffer({ size: cap, usage: UNIFORM | COPY_DST, label: "uniforms" });
      this.#uniformBuffers.push(ubuf);
      // The uniform buffer is private to this submission, so writing it ahead is safe.
      this.device.queue.writeBuffer(ubuf, 0, this.#uniforms.buffer, 0, size);
    }
    const enc = this.#ensureEncoder();
    if (!this.#pass) this.#pass = enc.beginComputePass();
    for (const d of this.#deferredGroups) {
      const entries: GPUBindGroupEntry[] = d.buffers.map((buffer, i) => ({
        binding: i,
        resource: { buffer },
      }));
      if (d.uniformOffset >= 0) {
        entries.push({
          binding: d.buffers.length,
          resource: {
            buffer: ubuf!,
            offset: d.uniformOffset,
            size: d.kernel.spec.params.length * 4,
          },
        });
      }
      const bg = this.device.createBindGroup({ layout: d.kernel.layout, entries });
      this.#pass.setPipeline(d.kernel.pipeline);
      this.#pass.setBindGroup(0, bg);
      this.#pass.dispatchWorkgroups(...d.groups);
    }
    this.#deferredGroups = [];
    this.#uniformUsed = 0;
  }

  /** Records `src → dst` copy of `bytes` into the pending encoder (in order with dispatches). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#recordDeferred();
    this.#endPass();
    this.#ensureEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Records a zero fill of `bytes` at `offset` (a multiple of 4) into the pending encoder. */
  clear(dst: GPUBuffer, offset = 0, bytes?: number): void {
    this.#recordDeferred();
    this.#endPass();
    this.#ensureEncoder().clearBuffer(dst, offset, bytes);
  }

  /**
   * Records an upload of `data` into `dst` through a fresh staging buffer, in order with the
   * pending work (see the module note on why not `queue.writeBuffer`).
   */
  upload(dst: GPUBuffer, data: ArrayBufferView, dstOffset = 0): void {
    const bytes = roundSize(data.byteLength);
    const staging = this.device.createBuffer({
      size: bytes,
      usage: COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#staging.push(staging);
    this.copy(staging, 0, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far as one command buffer. */
  flush(): void {
    this.#recordDeferred();
    this.#endPass();
    if (!this.#encoder) return;
    this.device.queue.submit([this.#encoder.finish()]);
    this.totalSubmits++;
    this.#encoder = null;
    this.#dispatches = 0;
    for (const s of this.#staging) s.destroy();
    this.#staging = [];
    const done = this.#uniformBuffers;
    this.#uniformBuffers = [];
    // Uniform buffers go back once the GPU has finished with them.
    this.device.queue.onSubmittedWorkDone().then(() => {
      for (const b of done) {
        let l = this.#uniformFree.get(b.size);
        if (!l) this.#uniformFree.set(b.size, l = []);
        l.push(b);
      }
    });
  }

  /** Dispatches recorded but not yet submitted. */
  get pendingDispatches(): number {
    return this.#dispatches;
  }

  /** Reads `bytes` of `src` back to the host, submitting the pending work first. */
  async read(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = roundSize(bytes);
    const dst = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST });
    this.copy(src, offset, dst, 0, size);
    this.flush();
    await dst.mapAsync(1 /* GPUMapMode.READ */);
    if (this.#error) throw this.#error;
    const out = dst.getMappedRange().slice(0, bytes);
    dst.unmap();
    dst.destroy();
    return out;
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }
}

/** Byte size rounded up to a multiple of 16 (at least 16), so vec4 views stay in bounds. */
export function roundSize(bytes: number): number {
  return Math.max(16, Math.ceil(bytes / 16) * 16);
}

/** Formats a byte count as KiB/MiB/GiB. */
export function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** The full WGSL of a kernel: enables, params struct, bindings, then the body. */
export function kernelSource(spec: KernelSpec): string {
  const lines: string[] = [];
  if (spec.f16) lines.push("enable f16;");
  if (spec.params.length) {
    lines.push(`struct Params {\n${spec.params.map(([n, t]) => `  ${n}: ${t},`).join("\n")}\n};`);
    lines.push(`@group(0) @binding(${spec.bindings.length}) var<uniform> p: Params;`);
  }
  spec.bindings.forEach(([name, access, type], i) => {
    const mode = access === "read" ? "read" : "read_write";
    lines.push(`@group(0) @binding(${i}) var<storage, ${mode}> ${name}: array<${type ?? "f32"}>;`);
  });
  lines.push(spec.body.replaceAll("WG", spec.workgroupSize.join(", ")));
  return lines.join("\n");
}

let shared: Promise<Gpu> | null = null;

/**
 * The process-wide GPU: requests a high-performance adapter with its maximum buffer and
 * workgroup limits, and enables `shader-f16` and `timestamp-query` when offered.
 * Throws {@linkcode NoAdapterError} with install instructions when there is no adapter.
 *
 * @example
 * ```ts
 * import { getGpu } from "./device.ts";
 * const gpu = await getGpu();
 * console.log(gpu.adapterName);
 * ```
 */
export function getGpu(): Promise<Gpu> {
  if (!shared) shared = createGpu();
  return shared;
}

async function createGpu(): Promise<Gpu> {
  // Mesa warns on stderr when this is unset; the value does not matter for compute.
  if (!Deno.env.get("XDG_RUNTIME_DIR")) Deno.env.set("XDG_RUNTIME_DIR", "/tmp");
  const gpu = (globalThis.navigator as Navigator & { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
  if (!adapter) throw new NoAdapterError();
  const want: (keyof GPUSupportedLimits)[] = [
    "maxStorageBufferBindingSize",
    "maxBufferSize",
    "maxStorageBuffersPerShaderStage",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
    "maxComputeWorkgroupSizeX",
    "maxComputeWorkgroupSizeY",
    "maxComputeWorkgroupsPerDimension",
  ];
  const requiredLimits: Record<string, number> = {};
  for (const k of want) requiredLimits[k] = adapter.limits[k] as number;
  const features: GPUFeatureName[] = [];
  for (const f of ["shader-f16", "timestamp-query"] as GPUFeatureName[]) {
    if (adapter.features.has(f)) features.push(f);
  }
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  device.addEventListener("uncapturederror", (e) => {
    console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`);
  });
  return new Gpu(adapter, device);
}
