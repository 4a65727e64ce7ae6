/**
 * The WebGPU runtime every kernel runs on: device acquisition with the adapter's full limits,
 * a bounded buffer pool keyed by size, a pipeline cache keyed by specialisation, a recorder that
 * gathers many dispatches into one command encoder and submits them at once, and device errors
 * that are thrown, not printed.
 *
 * Ordering model: all GPU work goes through one queue, in recording order. Work is recorded
 * into the pending encoder and submitted by {@linkcode Gpu.flush} (called by readbacks). A
 * buffer returned to the pool can be handed out again while the pending encoder still reads
 * its old contents: this is safe because every later use is recorded after the earlier reads.
 * Uploads are therefore recorded as copies from fresh staging buffers, never as
 * `queue.writeBuffer` into a pooled buffer (which would jump ahead of the pending encoder).
 *
 * Errors: WebGPU reports out-of-memory, validation and internal errors asynchronously, and a
 * failed call leaves an invalid object behind that poisons later work, so a run could go on and
 * report numbers computed from nothing. Here every error reaches the {@linkcode Gpu} through
 * error scopes: one around each buffer creation (its label and size name what failed), one
 * around each kernel compile, and a rolling scope (popped and pushed again at each submit) that
 * catches everything else, such as a bad copy or bind group, naming the kernels of that submit.
 * The first error is kept as a {@linkcode DeviceError} (later scopes' errors are counted) and the
 * device counts as failed from then on: {@linkcode Gpu.check} and every later `acquire`, `dispatch`,
 * `copy`, `clear`, `upload`, `flush`, `read` and `sync` throw it. When it surfaces: `read` and
 * `sync` wait for every scope opened before them, so an error made by any earlier call is thrown
 * by the next `read`/`sync` at the latest; the other calls throw it once its scope has resolved
 * (a microtask after the failing call in Deno, so usually by the next call after an `await`).
 * An `uncapturederror` listener and `device.lost` are the backstop for anything outside the
 * scopes. Scopes cost a few microseconds per buffer creation and per submit, none per dispatch.
 * {@linkcode describeDeviceError} turns one into a message naming the stage, the batch and the
 * fixes; {@linkcode Gpu.injectFault} (or `BERTVISION_INJECT_OOM_AFTER_MIB`) is the test hook
 * that provokes an out-of-memory error, which software adapters cannot.
 *
 * Memory: `heldBytes` = live + pooled (idle). Idle buffers are destroyed, least recently
 * released first, whenever pooled bytes exceed the pool cap ({@linkcode Gpu.setPoolCap}; by
 * default the larger of 256 MiB and the most bytes ever live at once). Destroying a buffer that
 * the pending encoder still uses would invalidate the submit, so one released since the last
 * submit while work is pending is destroyed right after the next submit instead: pooled ≤ cap
 * (so held ≤ live + cap) after every call when nothing is pending, and after every submit
 * otherwise. Staging, readback and uniform buffers are transient and not counted.
 * Simulated on the acquire/release trace of a fine-tune → capture → AP run (2-layer BERT,
 * hidden 256, batch 16 × 128 tokens: 8.8k acquires, 252 MiB live at the peak, 531 MiB held
 * uncapped): the default cap held at most 410 MiB for 21% more bytes created; with every size ×8
 * (2 GiB live) a fixed 256 MiB cap thrashed (8× the bytes created) while the default created
 * 1.4× and held at most 1.5× the live peak (uncapped: 2.1×). Sizes are exact (16-byte
 * granularity): power-of-two classes above 1 MiB created 16% fewer bytes but wasted 16% of the
 * live peak in rounding; quarter-octave classes saved 0.2% for 3% waste.
 *
 * Checked by kernels/device_test.ts (pool reuse, accounting, the cap, peak tracking and trimming
 * with pending work, the generated WGSL preamble, the pipeline cache, size and dispatch checks,
 * the ordering model, compile, validation and injected out-of-memory errors surfacing as
 * DeviceErrors that keep throwing, the message helper, the environment hook).
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

/** The three kinds of WebGPU error (the error scope filters). */
export type DeviceErrorKind = "out-of-memory" | "validation" | "internal";

/** Context a caller added to a {@linkcode DeviceError}: the stage and what it was at. */
export interface DeviceErrorContext {
  /** E.g. "fine-tune", "capture dev". */
  stage: string;
  /** E.g. "step 12 of 500, batch size 32". */
  detail: string;
}

/**
 * A WebGPU error on a {@linkcode Gpu}: out of memory, a validation error or an internal error,
 * with WebGPU's message and what the device was doing. The `Gpu` that raised it is failed: it
 * throws this error from every later call (see the module note).
 *
 * @example
 * ```ts
 * import { DeviceError } from "./device.ts";
 * const e = new DeviceError("out-of-memory", "not enough memory left", "creating buffer 'x'");
 * console.log(e.withContext("fine-tune", "step 3").message);
 * // fine-tune (step 3): WebGPU out-of-memory error: creating buffer 'x': not enough memory left
 * ```
 */
export class DeviceError extends Error {
  /** Which of WebGPU's error filters caught it. */
  readonly kind: DeviceErrorKind;
  /** WebGPU's own message. */
  readonly gpuMessage: string;
  /** What the device was doing: the buffer, kernel or submit, by label and size. */
  readonly during: string;
  /** Context added by callers, outermost first. */
  readonly context: readonly DeviceErrorContext[];
  /** Errors the same device reported after this one (only the first is kept). */
  laterErrors = 0;

  constructor(
    kind: DeviceErrorKind,
    gpuMessage: string,
    during: string,
    context: readonly DeviceErrorContext[] = [],
  ) {
    const where = context.map((c) => `${c.stage} (${c.detail}): `).join("");
    super(`${where}WebGPU ${kind} error: ${during}: ${gpuMessage || "(no message)"}`);
    this.name = "DeviceError";
    this.kind = kind;
    this.gpuMessage = gpuMessage;
    this.during = during;
    this.context = context;
  }

  /** A copy of this error with `stage (detail): ` in front of its message. */
  withContext(stage: string, detail: string): DeviceError {
    const e = new DeviceError(this.kind, this.gpuMessage, this.during, [
      { stage, detail },
      ...this.context,
    ]);
    e.laterErrors = this.laterErrors;
    return e;
  }
}

/**
 * One message for a device error in a loop: the stage, the batch, what failed, and the fixes
 * (a smaller `--batch-size`, `BERTVISION_MAX_BINDING_MIB` to split large tensors into smaller
 * buffers, `--dtype f16` where the stage stores activations). `batch` names the batch (an index
 * or "12/500"); `batchSize`, when given, suggests half of it.
 *
 * @example
 * ```ts
 * import { DeviceError, describeDeviceError } from "./device.ts";
 * const e = new DeviceError("out-of-memory", "not enough memory left", "creating buffer 'x'");
 * console.log(describeDeviceError(e, { stage: "capture train", batch: 7, batchSize: 64 }));
 * ```
 */
export function describeDeviceError(
  e: DeviceError,
  where: { stage: string; batch: number | string; batchSize?: number },
): string {
  const size = where.batchSize ? ` (now ${where.batchSize})` : "";
  const smaller = where.batchSize && where.batchSize > 1
    ? `--batch-size ${Math.max(1, Math.floor(where.batchSize / 2))}`
    : "a smaller --batch-size";
  const fixes = `${smaller}${size}; BERTVISION_MAX_BINDING_MIB=N (e.g. 64) to split the large ` +
    `tensors into buffers of at most N MiB; --dtype f16 to halve stored activations (capture)`;
  const what = e.kind === "out-of-memory"
    ? "the GPU ran out of memory"
    : e.kind === "validation"
    ? "WebGPU rejected the work (a validation error: usually a tensor over a device limit, " +
      "else a bug worth reporting with BERTVISION_DEBUG=1)"
    : "the GPU reported an internal error";
  const later = e.laterErrors ? ` (${e.laterErrors} later device errors not shown)` : "";
  return `${where.stage}, batch ${where.batch}: ${what}. ${e.message}${later}. ` +
    `The device is not used again in this run. To fit, try: ${fixes}.`;
}

/** A pooled GPU buffer with its byte size (a multiple of 4, at least 4). */
export interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
}

/** Idle and live buffers of one size in the pool (see {@linkcode Gpu.poolClasses}). */
export interface PoolClass {
  /** Buffer size in bytes. */
  size: number;
  /** Buffers of this size handed out and not yet released. */
  live: number;
  /** Buffers of this size idle in the pool. */
  idle: number;
}

/** The floor of the default pool cap: 256 MiB of idle buffers. */
export const DEFAULT_POOL_CAP_FLOOR = 256 * 2 ** 20;

/** The injected-fault environment hook, read when a {@linkcode Gpu} is created. */
export const INJECT_OOM_ENV = "BERTVISION_INJECT_OOM_AFTER_MIB";

/** The GPUError subclasses where the runtime has them (Deno does), else plain errors. */
function gpuErrorOf(kind: DeviceErrorKind, message: string): GPUError {
  const g = globalThis as unknown as Record<string, new (m: string) => GPUError>;
  const name = kind === "out-of-memory"
    ? "GPUOutOfMemoryError"
    : kind === "validation"
    ? "GPUValidationError"
    : "GPUInternalError";
  if (typeof g[name] === "function") return new g[name](message);
  const e = new Error(message) as unknown as GPUError;
  Object.defineProperty(e, "constructor", { value: { name } });
  return e;
}

/** What a submit held, for an error caught by the rolling scopes. */
function describeSubmit(submit: number, dispatches: number, copies: number, kernels: Set<string>) {
  const names = [...kernels].slice(0, 8).join(", ") + (kernels.size > 8 ? ", …" : "");
  return `submit ${submit} (since the previous submit: ${dispatches} dispatch` +
    `${dispatches === 1 ? "" : "es"}, ${copies} copies/clears/uploads; kernels: ${
      names || "none"
    })`;
}

/** Which filter a GPUError belongs to. */
function kindOf(e: GPUError): DeviceErrorKind {
  const name = (e as { constructor?: { name?: string } }).constructor?.name ?? "";
  if (name === "GPUOutOfMemoryError") return "out-of-memory";
  if (name === "GPUInternalError") return "internal";
  return "validation";
}

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

  /** Idle buffers per size, least recently released first. */
  #pool = new Map<number, GPUBuffer[]>();
  /** Every idle buffer in release order (oldest first), with its size and submit epoch. */
  #idle = new Map<GPUBuffer, { size: number; epoch: number }>();
  /** Live buffers per size. */
  #liveCount = new Map<number, number>();
  #pooledBytes = 0;
  #liveBytes = 0;
  #peakHeld = 0;
  #highWaterLive = 0;
  #cap: number | undefined;
  /**
   * Submits so far. A buffer released before the last submit (or while nothing was pending) is
   * not used by the pending encoder and can be destroyed at once.
   */
  #epoch = 0;
  #kernels = new Map<string, Kernel>();
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #uniforms: Uint32Array<ArrayBuffer> = new Uint32Array(UNIFORM_SLOT * 64 / 4);
  #uniformUsed = 0;
  #uniformBuffers: GPUBuffer[] = [];
  #uniformFree: Map<number, GPUBuffer[]> = new Map();
  /** Uniform buffers of submitted work not yet known to be done (see `flush`). */
  #inflightUniforms: GPUBuffer[] = [];
  #staging: GPUBuffer[] = [];
  #dispatches = 0;
  #copies = 0;
  /** Kernels recorded since the last submit, to name them in an error. */
  #recorded = new Set<string>();
  #deferredGroups: {
    kernel: Kernel;
    buffers: GPUBuffer[];
    uniformOffset: number;
    groups: [number, number, number];
  }[] = [];

  /** The first device error (compile, validation, out-of-memory, internal); thrown from then on. */
  #error: DeviceError | null = null;
  #errorCount = 0;
  /** Error scopes popped and not yet settled; `read` and `sync` wait for them. */
  #waiting = new Set<Promise<void>>();
  /** An injected fault (test hook), fired by the first buffer creation past `afterBytes`. */
  #fault: { kind: DeviceErrorKind; afterBytes: number } | null = null;

  /** Dispatches recorded since the device was created (for tests and benchmarks). */
  totalDispatches = 0;
  /** Command buffers submitted since the device was created. */
  totalSubmits = 0;
  /** Pooled buffers created since the device was created. */
  createdBuffers = 0;
  /** Pooled buffers destroyed (by the cap or {@linkcode Gpu.trimPool}) since creation. */
  destroyedBuffers = 0;

  /**
   * Wraps a device: opens the rolling error scopes, listens for uncaptured errors and device
   * loss, and reads the {@linkcode INJECT_OOM_ENV} test hook. Most code calls
   * {@linkcode getGpu} or {@linkcode createGpu} instead.
   */
  constructor(adapter: GPUAdapter, device: GPUDevice) {
    this.device = device;
    const info = adapter.info;
    this.adapterName = info.description || `${info.vendor} ${info.architecture} ${info.device}`;
    this.isFallback = !!(info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ||
      /llvmpipe|swiftshader|lavapipe/i.test(this.adapterName);
    this.hasF16 = device.features.has("shader-f16");
    this.hasTimestamps = device.features.has("timestamp-query");
    this.#pushScopes();
    device.addEventListener("uncapturederror", (e) => {
      e.preventDefault();
      const err = (e as GPUUncapturedErrorEvent).error;
      this.#record(new DeviceError(kindOf(err), err.message, "outside the runtime's scopes"));
    });
    device.lost.then((info) => {
      // destroy() is deliberate (tests end private devices that way); anything else is fatal.
      if (info.reason !== "destroyed") {
        this.#record(new DeviceError("internal", info.message, "the device was lost"));
      }
    });
    let env: string | undefined;
    try {
      env = Deno.env.get(INJECT_OOM_ENV);
    } catch {
      env = undefined; // no --allow-env: no hook
    }
    if (env) {
      const mib = Number(env);
      if (!(mib >= 0)) throw new Error(`${INJECT_OOM_ENV} must be a number of MiB, got "${env}"`);
      this.injectFault("out-of-memory", mib * 2 ** 20);
    }
  }

  /** Device limits in force (the adapter's maxima, requested at creation). */
  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  // ---- errors ----

  /** The first device error, or null while the device is healthy. */
  get error(): DeviceError | null {
    return this.#error;
  }

  /** Device errors reported so far (the first is kept in {@linkcode Gpu.error}). */
  get errorCount(): number {
    return this.#errorCount;
  }

  /**
   * Throws the device's first error, if one has surfaced; a failed device stays failed. Cheap
   * (a field read): called at the start of every call that records or submits work.
   */
  check(): void {
    if (this.#error) throw this.#error;
  }

  /**
   * Test hook: the first buffer creation that takes {@linkcode Gpu.heldBytes} past `afterBytes`
   * reports a `kind` error (default out-of-memory) through the same error-scope path as a real
   * one, so it surfaces as a {@linkcode DeviceError} by the next `read`/`sync` (the buffer itself
   * is valid). Fires once. `BERTVISION_INJECT_OOM_AFTER_MIB=N` in the environment arms it at
   * device creation, for whole runs: software adapters use host memory and never run out.
   */
  injectFault(kind: DeviceErrorKind = "out-of-memory", afterBytes = 0): void {
    this.#fault = { kind, afterBytes };
  }

  #record(e: DeviceError): void {
    this.#errorCount++;
    if (this.#error) this.#error.laterErrors++;
    else this.#error = e;
  }

  /** Records the error (if any) a popped scope resolves to, as having happened `during`. */
  #watch(popped: Promise<GPUError | null>, during: string | (() => string)): void {
    const what = () => typeof during === "string" ? during : during();
    const w = popped.then(
      (err) => {
        if (err) this.#record(new DeviceError(kindOf(err), err.message, what()));
      },
      (err) => this.#record(new DeviceError("internal", String(err?.message ?? err), what())),
    ).finally(() => this.#waiting.delete(w));
    this.#waiting.add(w);
  }

  /** Waits until every popped scope has been recorded. */
  async #settle(): Promise<void> {
    while (this.#waiting.size) await Promise.all([...this.#waiting]);
  }

  /** The rolling scopes: everything outside the buffer and kernel scopes lands in them. */
  #pushScopes(): void {
    this.device.pushErrorScope("internal");
    this.device.pushErrorScope("out-of-memory");
    this.device.pushErrorScope("validation");
  }

  /** Pops the rolling scopes (after a submit) and opens new ones. */
  #rollScopes(during: () => string): void {
    for (let i = 0; i < 3; i++) this.#watch(this.device.popErrorScope(), during);
    this.#pushScopes();
  }

  // ---- memory ----

  /** Bytes currently held by live (not pooled) buffers. */
  get liveBytes(): number {
    return this.#liveBytes;
  }

  /** Bytes held idle in the pool. */
  get pooledBytes(): number {
    return this.#pooledBytes;
  }

  /** Bytes of every pooled buffer not yet destroyed: live + pooled. */
  get heldBytes(): number {
    return this.#liveBytes + this.#pooledBytes;
  }

  /** The most bytes held at once since creation or {@linkcode Gpu.resetPeak}. */
  get peakHeldBytes(): number {
    return this.#peakHeld;
  }

  /** Starts peak tracking afresh from the bytes held now. */
  resetPeak(): void {
    this.#peakHeld = this.heldBytes;
  }

  /**
   * The most idle bytes the pool keeps: as set by {@linkcode Gpu.setPoolCap}, else the larger of
   * {@linkcode DEFAULT_POOL_CAP_FLOOR} and the most bytes ever live at once.
   */
  get poolCap(): number {
    return this.#cap ?? Math.max(DEFAULT_POOL_CAP_FLOOR, this.#highWaterLive);
  }

  /**
   * Caps the idle bytes the pool keeps (`undefined` restores the default) and trims to it: idle
   * buffers are destroyed least recently released first. A buffer released since the last submit
   * while work is pending is destroyed after the next submit (see the module note). A cap below
   * a loop's working set makes it recreate buffers every step.
   */
  setPoolCap(bytes: number | undefined): void {
    if (bytes !== undefined && !(bytes >= 0)) {
      throw new RangeError(`pool cap must be ≥ 0 bytes, got ${bytes}`);
    }
    this.#cap = bytes;
    this.#trim();
  }

  /** Live and idle buffers per size, smallest first. */
  poolClasses(): PoolClass[] {
    const sizes = new Set([...this.#pool.keys(), ...this.#liveCount.keys()]);
    return [...sizes].sort((a, b) => a - b).map((size) => ({
      size,
      live: this.#liveCount.get(size) ?? 0,
      idle: this.#pool.get(size)?.length ?? 0,
    })).filter((c) => c.live || c.idle);
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

  /**
   * Takes a storage buffer of at least `bytes` from the pool (or creates one, inside error
   * scopes that name `what`). Throws the device's error if it has failed.
   */
  acquire(bytes: number, what = "tensor"): PooledBuffer {
    this.check();
    const size = roundSize(bytes);
    this.checkSize(size, what);
    const buffer = this.#pool.get(size)?.pop();
    if (buffer) {
      this.#pooledBytes -= size;
      this.#idle.delete(buffer);
    }
    const b = buffer ?? this.#create(size, what);
    this.#liveBytes += size;
    this.#liveCount.set(size, (this.#liveCount.get(size) ?? 0) + 1);
    if (this.#liveBytes > this.#highWaterLive) this.#highWaterLive = this.#liveBytes;
    if (this.heldBytes > this.#peakHeld) this.#peakHeld = this.heldBytes;
    return { buffer: b, size };
  }

  #create(size: number, what: string): GPUBuffer {
    const d = this.device;
    const [live, idle] = [this.#liveBytes, this.#pooledBytes];
    const during = () =>
      `creating buffer '${what}' of ${fmtBytes(size)} (${fmtBytes(live + idle)} held: ` +
      `${fmtBytes(live)} live, ${fmtBytes(idle)} idle)`;
    const fault = this.#fault && this.heldBytes + size > this.#fault.afterBytes
      ? this.#fault
      : null;
    if (fault) this.#fault = null;
    d.pushErrorScope("out-of-memory");
    d.pushErrorScope("validation");
    const buffer = d.createBuffer({ size, usage: STORAGE_USAGE, label: what });
    const validation = d.popErrorScope(), oom = d.popErrorScope();
    this.#watch(validation, during);
    this.#watch(
      fault
        ? oom.then((e) => e ?? gpuErrorOf(fault.kind, "not enough memory left (injected)"))
        : oom,
      during,
    );
    this.createdBuffers++;
    return buffer;
  }

  /** Returns a buffer to the pool for reuse; trims the pool to its cap. Never throws. */
  release(b: PooledBuffer): void {
    this.#liveBytes -= b.size;
    this.#liveCount.set(b.size, (this.#liveCount.get(b.size) ?? 1) - 1);
    this.#pooledBytes += b.size;
    let list = this.#pool.get(b.size);
    if (!list) this.#pool.set(b.size, list = []);
    list.push(b.buffer);
    // Released while nothing is pending, no later encoder can use it: count it as older.
    const pending = this.#encoder !== null || this.#deferredGroups.length > 0;
    this.#idle.set(b.buffer, { size: b.size, epoch: pending ? this.#epoch : this.#epoch - 1 });
    if (this.#pooledBytes > this.poolCap) this.#trim();
  }

  /**
   * Destroys idle buffers, least recently released first, until pooled bytes are within `cap`;
   * stops at the first one released since the last submit while work is pending (the pending
   * encoder may use it; {@linkcode Gpu.flush} trims again after submitting).
   */
  #trim(cap = this.poolCap): void {
    if (this.#pooledBytes <= cap) return;
    const pending = this.#encoder !== null || this.#deferredGroups.length > 0;
    for (const [buffer, { size, epoch }] of this.#idle) {
      if (this.#pooledBytes <= cap || (pending && epoch === this.#epoch)) break;
      this.#idle.delete(buffer);
      const list = this.#pool.get(size)!;
      // Within a size, release order is stack order: the oldest idle buffer is at the bottom.
      if (list[0] === buffer) list.shift();
      else list.splice(list.indexOf(buffer), 1);
      if (!list.length) this.#pool.delete(size);
      this.#pooledBytes -= size;
      buffer.destroy();
      this.destroyedBuffers++;
    }
  }

  /**
   * Destroys every idle pooled buffer (frees device memory), submitting pending work first. On a
   * failed device the pending work is dropped instead, and nothing is thrown.
   */
  trimPool(): void {
    if (this.#error) {
      this.#pass = null;
      this.#encoder = null;
      this.#deferredGroups = [];
      this.#uniformUsed = 0;
      this.#epoch++; // the dropped work will never run: every idle buffer is free to go
    } else this.flush();
    this.#trim(0);
  }

  // ---- kernels and recording ----

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
    this.#watch(this.device.popErrorScope(), `kernel '${spec.name}' failed to compile`);
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
   * order the spec declares them. Throws the device's error if it has failed.
   */
  dispatch(
    kernel: Kernel,
    buffers: GPUBuffer[],
    params: number[],
    groups: [number, number?, number?],
  ): void {
    this.check();
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
    this.#recorded.add(spec.name);
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
    this.check();
    this.#recordDeferred();
    this.#endPass();
    this.#ensureEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.#copies++;
  }

  /** Records a zero fill of `bytes` at `offset` (a multiple of 4) into the pending encoder. */
  clear(dst: GPUBuffer, offset = 0, bytes?: number): void {
    this.check();
    this.#recordDeferred();
    this.#endPass();
    this.#ensureEncoder().clearBuffer(dst, offset, bytes);
    this.#copies++;
  }

  /**
   * Records an upload of `data` into `dst` through a fresh staging buffer, in order with the
   * pending work (see the module note on why not `queue.writeBuffer`).
   */
  upload(dst: GPUBuffer, data: ArrayBufferView, dstOffset = 0): void {
    this.check();
    const bytes = roundSize(data.byteLength);
    const staging = this.device.createBuffer({
      size: bytes,
      usage: COPY_SRC,
      mappedAtCreation: true,
      label: "staging",
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    this.#staging.push(staging);
    this.copy(staging, 0, dst, dstOffset, bytes);
  }

  /**
   * Submits everything recorded so far as one command buffer, then trims the pool to its cap.
   * Throws the device's error if it has failed (nothing more is submitted).
   */
  flush(): void {
    this.check();
    this.#recordDeferred();
    this.#endPass();
    if (!this.#encoder) return;
    this.device.queue.submit([this.#encoder.finish()]);
    this.totalSubmits++;
    this.#epoch++;
    const kernels = this.#recorded;
    const [n, c, submit] = [this.#dispatches, this.#copies, this.totalSubmits];
    this.#rollScopes(() => describeSubmit(submit, n, c, kernels));
    this.#recorded = new Set();
    this.#encoder = null;
    this.#dispatches = 0;
    this.#copies = 0;
    for (const s of this.#staging) s.destroy();
    this.#staging = [];
    // Uniform buffers go back to the free list once the GPU is known to have finished with
    // them: after the next completed readback or sync (which wait for all submitted work). Not
    // `queue.onSubmittedWorkDone()` here: in Deno 2.9.6 that call blocks until the GPU is idle
    // (measured: a flush of 1.9 s of matmuls took 1.9 s), which would make every submit
    // synchronous and let the host never run ahead of the GPU.
    this.#inflightUniforms.push(...this.#uniformBuffers);
    this.#uniformBuffers = [];
    // Nothing pending now uses an idle buffer: what the cap held back can go.
    this.#trim();
  }

  /** Returns the uniform buffers of completed submissions to the free list. */
  #recycleUniforms(): void {
    for (const b of this.#inflightUniforms) {
      let l = this.#uniformFree.get(b.size);
      if (!l) this.#uniformFree.set(b.size, l = []);
      l.push(b);
    }
    this.#inflightUniforms = [];
  }

  /** Dispatches recorded but not yet submitted. */
  get pendingDispatches(): number {
    return this.#dispatches;
  }

  /**
   * Reads `bytes` of `src` back to the host: records a copy into a staging buffer and submits
   * everything recorded, then waits for it (see {@linkcode Gpu.enqueueRead}).
   */
  async read(src: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    return await this.enqueueRead(src, bytes, offset).wait();
  }

  /**
   * Starts a readback: records the copy of `bytes` of `src` into a staging buffer and submits
   * everything recorded, without waiting; `wait()` maps the staging buffer and returns the bytes.
   * In Deno 2.9.6 mapping blocks until every submitted command has run, so a caller that wants
   * the GPU to work while the host does (capture's double buffering) records the next batch,
   * waits for this one, submits the next (`flush`), and only then works on this one's bytes.
   */
  enqueueRead(src: GPUBuffer, bytes: number, offset = 0): { wait(): Promise<ArrayBuffer> } {
    this.check();
    const size = roundSize(bytes);
    const dst = this.device.createBuffer({ size, usage: MAP_READ | COPY_DST, label: "readback" });
    try {
      this.copy(src, offset, dst, 0, size);
      this.flush();
    } catch (e) {
      dst.destroy();
      throw e;
    }
    let waited: Promise<ArrayBuffer> | null = null;
    const wait = async () => {
      try {
        try {
          await dst.mapAsync(1 /* GPUMapMode.READ */);
        } catch (e) {
          await this.#settle();
          this.check(); // the device error that made the map fail, if any
          throw e;
        }
        this.#recycleUniforms(); // everything submitted before the copy has run
        await this.#settle();
        this.check();
        const out = dst.getMappedRange().slice(0, bytes);
        dst.unmap();
        return out;
      } finally {
        dst.destroy();
      }
    };
    return { wait: () => (waited ??= wait()) };
  }

  /**
   * Waits until the GPU has finished all submitted work; throws the device's error, including
   * any made by an earlier call.
   */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.#recycleUniforms();
    await this.#settle();
    this.check();
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

/**
 * A new, separate GPU (its own device, pool, pipeline cache and error state), requested as
 * {@linkcode getGpu} describes. For tests that make a device fail on purpose, and for tools that
 * want a device of their own; everything else shares {@linkcode getGpu}'s. End it with
 * `gpu.device.destroy()`.
 */
export async function createGpu(): Promise<Gpu> {
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
  return new Gpu(adapter, device);
}
