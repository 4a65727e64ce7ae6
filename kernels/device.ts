/**
 * The WebGPU runtime every kernel runs on: the {@linkcode Gpu} facade and its accessors
 * {@linkcode getGpu} and {@linkcode createGpu}. A `Gpu` composes one part per job, each in its
 * own file with the details in its module note:
 *
 *   kernels/adapter.ts        the adapter, its full limits, the buffer size check
 *   kernels/device_errors.ts  DeviceError, error scopes, the injected out-of-memory hook
 *   kernels/pool.ts           the bounded buffer pool (cap, held/peak accounting)
 *   kernels/pipelines.ts      KernelSpec, the WGSL preamble, the pipeline cache
 *   kernels/dispatch.ts       dispatch batching into one encoder per submit, readback
 *
 * Every export of those files that callers use is re-exported here, so code outside the runtime
 * imports from this file only.
 *
 * Checked by kernels/device_test.ts (pool reuse, accounting, the cap, peak tracking and trimming
 * with pending work, the generated WGSL preamble, the pipeline cache, size and dispatch checks,
 * the ordering model, compile, validation and injected out-of-memory errors surfacing as
 * DeviceErrors that keep throwing, the message helper, the environment hook).
 * @module
 */
import { adapterFacts, checkBufferSize, requestDevice } from "./adapter.ts";
import { type DeviceError, type DeviceErrorKind, DeviceErrors } from "./device_errors.ts";
import { BufferPool, type PoolClass, type PooledBuffer } from "./pool.ts";
import { type Kernel, type KernelSpec, PipelineCache } from "./pipelines.ts";
import { type Binding, Recorder, type Workgroups } from "./dispatch.ts";
import { TEXTURE_WIDTH, TextureStage } from "./textures.ts";

export { NoAdapterError } from "./adapter.ts";
export type { Binding, Workgroups } from "./dispatch.ts";
export {
  describeDeviceError,
  DeviceError,
  type DeviceErrorContext,
  type DeviceErrorKind,
  INJECT_OOM_ENV,
} from "./device_errors.ts";
export {
  DEFAULT_POOL_CAP_FLOOR,
  fmtBytes,
  type PoolClass,
  type PooledBuffer,
  roundSize,
  STORAGE_USAGE,
} from "./pool.ts";
export {
  type Access,
  type Kernel,
  kernelSource,
  type KernelSpec,
  type ParamType,
} from "./pipelines.ts";

/**
 * The device and everything that caches on it. Get the shared one with {@linkcode getGpu}, or
 * a separate one with {@linkcode createGpu}. Code that pushes error scopes of its own on
 * `device` must pop them before the next submit (the rolling scopes are popped there).
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

  readonly #errors: DeviceErrors;
  readonly #pool: BufferPool;
  readonly #pipelines: PipelineCache;
  readonly #recorder: Recorder;
  readonly #textures: TextureStage;

  /**
   * Wraps a device: opens the rolling error scopes, listens for uncaptured errors and device
   * loss, and reads the {@linkcode INJECT_OOM_ENV} test hook. Most code calls
   * {@linkcode getGpu} or {@linkcode createGpu} instead.
   */
  constructor(adapter: GPUAdapter, device: GPUDevice) {
    this.device = device;
    const facts = adapterFacts(adapter, device);
    this.adapterName = facts.adapterName;
    this.isFallback = facts.isFallback;
    this.hasF16 = facts.hasF16;
    this.hasTimestamps = facts.hasTimestamps;
    this.#errors = new DeviceErrors(device);
    this.#pool = new BufferPool(this.#errors, {
      checkSize: (bytes, what) => this.checkSize(bytes, what),
      pending: () => this.#recorder.pending,
    });
    this.#pipelines = new PipelineCache(device, this.#errors);
    this.#recorder = new Recorder(device, this.#errors, this.#pool);
    this.#textures = new TextureStage(device, (t) => this.#recorder.destroyAfterSubmit(t));
  }

  /** Device limits in force (the adapter's maxima, requested at creation). */
  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** Dispatches recorded since the device was created (for tests and benchmarks). */
  get totalDispatches(): number {
    return this.#recorder.totalDispatches;
  }

  /** Command buffers submitted since the device was created. */
  get totalSubmits(): number {
    return this.#recorder.totalSubmits;
  }

  /** Pooled buffers created since the device was created. */
  get createdBuffers(): number {
    return this.#pool.createdBuffers;
  }

  /** Pooled buffers destroyed (by the cap or {@linkcode Gpu.trimPool}) since creation. */
  get destroyedBuffers(): number {
    return this.#pool.destroyedBuffers;
  }

  // ---- errors (kernels/device_errors.ts) ----

  /** The first device error, or null while the device is healthy. */
  get error(): DeviceError | null {
    return this.#errors.error;
  }

  /** Device errors reported so far (the first is kept in {@linkcode Gpu.error}). */
  get errorCount(): number {
    return this.#errors.errorCount;
  }

  /**
   * Throws the device's first error, if one has surfaced; a failed device stays failed. Cheap
   * (a field read): called at the start of every call that records or submits work.
   */
  check(): void {
    this.#errors.check();
  }

  /**
   * Test hook: the first buffer creation that takes {@linkcode Gpu.heldBytes} past `afterBytes`
   * reports a `kind` error (default out-of-memory) through the same error-scope path as a real
   * one, so it surfaces as a {@linkcode DeviceError} by the next `read`/`sync` (the buffer itself
   * is valid). Fires once. `BERTVISION_INJECT_OOM_AFTER_MIB=N` in the environment arms it at
   * device creation, for whole runs: software adapters use host memory and never run out.
   */
  injectFault(kind: DeviceErrorKind = "out-of-memory", afterBytes = 0): void {
    this.#errors.injectFault(kind, afterBytes);
  }

  // ---- memory (kernels/pool.ts) ----

  /** Bytes currently held by live (not pooled) buffers. */
  get liveBytes(): number {
    return this.#pool.liveBytes;
  }

  /** Bytes held idle in the pool. */
  get pooledBytes(): number {
    return this.#pool.pooledBytes;
  }

  /** Bytes of every pooled buffer not yet destroyed: live + pooled. */
  get heldBytes(): number {
    return this.#pool.heldBytes;
  }

  /** The most bytes held at once since creation or {@linkcode Gpu.resetPeak}. */
  get peakHeldBytes(): number {
    return this.#pool.peakHeldBytes;
  }

  /** The most bytes live at once since creation or {@linkcode Gpu.resetPeak} (no idle ones). */
  get peakLiveBytes(): number {
    return this.#pool.peakLiveBytes;
  }

  /** Starts peak tracking afresh from the bytes held (and live) now. */
  resetPeak(): void {
    this.#pool.resetPeak();
  }

  /**
   * The most idle bytes the pool keeps: as set by {@linkcode Gpu.setPoolCap}, else the larger of
   * {@linkcode DEFAULT_POOL_CAP_FLOOR} and the most bytes ever live at once.
   */
  get poolCap(): number {
    return this.#pool.poolCap;
  }

  /**
   * Caps the idle bytes the pool keeps (`undefined` restores the default) and trims to it: idle
   * buffers are destroyed least recently released first. A buffer released since the last submit
   * while work is pending is destroyed after the next submit (see kernels/pool.ts). A cap below
   * a loop's working set makes it recreate buffers every step.
   */
  setPoolCap(bytes: number | undefined): void {
    this.#pool.setPoolCap(bytes);
  }

  /** Live and idle buffers per size, smallest first. */
  poolClasses(): PoolClass[] {
    return this.#pool.poolClasses();
  }

  /**
   * Checks that a buffer of `bytes` can exist on this device, before anything is created or
   * dispatched; the error names `what` and the limit.
   */
  checkSize(bytes: number, what: string): void {
    checkBufferSize(this.limits, this.adapterName, bytes, what);
  }

  /**
   * Takes a storage buffer of at least `bytes` from the pool (or creates one, inside error
   * scopes that name `what`). Throws the device's error if it has failed.
   */
  acquire(bytes: number, what = "tensor"): PooledBuffer {
    return this.#pool.acquire(bytes, what);
  }

  /** Returns a buffer to the pool for reuse; trims the pool to its cap. Never throws. */
  release(b: PooledBuffer): void {
    this.#pool.release(b);
  }

  /**
   * Destroys every idle pooled buffer (frees device memory), submitting pending work first. On a
   * failed device the pending work is dropped instead, and nothing is thrown.
   */
  trimPool(): void {
    if (this.#errors.error) {
      this.#recorder.drop();
      this.#pool.markSubmitted(); // the dropped work will never run: every idle buffer is free
    } else this.flush();
    this.#pool.trim(0);
    this.#textures.destroyAll(); // nothing pending uses them now
  }

  // ---- kernels (kernels/pipelines.ts) ----

  /** Compiles (once) and returns the kernel for `spec`; its name must name the specialisation. */
  kernel(spec: KernelSpec): Kernel {
    return this.#pipelines.kernel(spec);
  }

  /** Number of compiled pipelines in the cache. */
  get cachedKernels(): number {
    return this.#pipelines.size;
  }

  // ---- recording and readback (kernels/dispatch.ts) ----

  /**
   * Records one dispatch into the pending encoder. `params` are the uniform values in the
   * order the spec declares them. Throws the device's error if it has failed.
   */
  dispatch(kernel: Kernel, buffers: Binding[], params: number[], groups: Workgroups): void {
    this.#recorder.dispatch(kernel, buffers, params, groups);
  }

  /** Records `src → dst` copy of `bytes` into the pending encoder (in order with dispatches). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#recorder.copy(src, srcOffset, dst, dstOffset, bytes);
  }

  /**
   * Records a copy of the first `vec4s` vec4s of `src` into the input texture of `slot` (see
   * kernels/textures.ts) and returns that texture, to bind to a `texture` binding of a later
   * dispatch. The slot's contents stay valid until the next copy into the same slot.
   */
  toTexture(src: GPUBuffer, vec4s: number, slot: number): GPUTexture {
    const t = this.#textures.texture(slot, vec4s);
    this.#recorder.copyToTexture(src, t, vec4s, TEXTURE_WIDTH);
    return t;
  }

  /** Most vec4s an input texture holds on this device (see {@linkcode Gpu.toTexture}). */
  get maxTextureVec4s(): number {
    return this.#textures.maxVec4s;
  }

  /** Bytes held by the input textures (freed by {@linkcode Gpu.trimPool}). */
  get textureBytes(): number {
    return this.#textures.bytes;
  }

  /** Records a zero fill of `bytes` at `offset` (a multiple of 4) into the pending encoder. */
  clear(dst: GPUBuffer, offset = 0, bytes?: number): void {
    this.#recorder.clear(dst, offset, bytes);
  }

  /**
   * Records an upload of `data` into `dst` through a fresh staging buffer, in order with the
   * pending work (see kernels/dispatch.ts on why not `queue.writeBuffer`).
   */
  upload(dst: GPUBuffer, data: ArrayBufferView, dstOffset = 0): void {
    this.#recorder.upload(dst, data, dstOffset);
  }

  /**
   * Submits everything recorded so far as one command buffer, then trims the pool to its cap.
   * Throws the device's error if it has failed (nothing more is submitted).
   */
  flush(): void {
    this.#recorder.flush();
  }

  /** Dispatches recorded but not yet submitted. */
  get pendingDispatches(): number {
    return this.#recorder.pendingDispatches;
  }

  /**
   * Reads `bytes` of `src` back to the host: records a copy into a staging buffer and submits
   * everything recorded, then waits for it (see {@linkcode Gpu.enqueueRead}).
   */
  read(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    return this.#recorder.read(src, bytes, offset);
  }

  /**
   * Starts a readback: records the copy of `bytes` of `src` into a staging buffer and submits
   * everything recorded, without waiting; `wait()` maps the staging buffer and returns the bytes.
   * In Deno 2.9.6 mapping blocks until every submitted command has run, so a caller that wants
   * the GPU to work while the host does (capture's double buffering) records the next batch,
   * waits for this one, submits the next (`flush`), and only then works on this one's bytes.
   */
  enqueueRead(src: GPUBuffer, bytes: number, offset = 0): { wait(): Promise<ArrayBuffer> } {
    return this.#recorder.enqueueRead(src, bytes, offset);
  }

  /**
   * Waits until the GPU has finished all submitted work; throws the device's error, including
   * any made by an earlier call.
   */
  sync(): Promise<void> {
    return this.#recorder.sync();
  }
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

/**
 * A new, separate GPU (its own device, pool, pipeline cache and error state), requested as
 * {@linkcode getGpu} describes. For tests that make a device fail on purpose, and for tools that
 * want a device of their own; everything else shares {@linkcode getGpu}'s. End it with
 * `gpu.device.destroy()`.
 */
export async function createGpu(): Promise<Gpu> {
  const { adapter, device } = await requestDevice();
  return new Gpu(adapter, device);
}
