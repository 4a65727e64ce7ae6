/**
 * The bounded buffer pool of one device: storage buffers keyed by exact size, with live, idle,
 * held and peak accounting and a cap on idle bytes.
 *
 * Memory: `heldBytes` = live + pooled (idle). Idle buffers are destroyed, least recently
 * released first, whenever pooled bytes exceed the pool cap (`Gpu.setPoolCap`; by default the
 * larger of 256 MiB and the most bytes ever live at once). Destroying a buffer that the pending
 * encoder still uses would invalidate the submit, so one released since the last submit while
 * work is pending is destroyed right after the next submit instead: pooled ≤ cap (so held ≤
 * live + cap) after every call when nothing is pending, and after every submit otherwise.
 * Staging, readback and uniform buffers are transient and not counted.
 * Simulated on the acquire/release trace of a fine-tune → capture → AP run (2-layer BERT,
 * hidden 256, batch 16 × 128 tokens: 8.8k acquires, 252 MiB live at the peak, 531 MiB held
 * uncapped): the default cap held at most 410 MiB for 21% more bytes created; with every size ×8
 * (2 GiB live) a fixed 256 MiB cap thrashed (8× the bytes created) while the default created
 * 1.4× and held at most 1.5× the live peak (uncapped: 2.1×). Sizes are exact (16-byte
 * granularity): power-of-two classes above 1 MiB created 16% fewer bytes but wasted 16% of the
 * live peak in rounding; quarter-octave classes saved 0.2% for 3% waste.
 *
 * Checked by kernels/device_test.ts (pool reuse, accounting, the cap, peak tracking and trimming
 * with pending work, injected out-of-memory errors on creation) and tests/memory_test.ts.
 * @module
 */
import type { DeviceErrors } from "./device_errors.ts";

/** WebGPU buffer usage flags (the values of `GPUBufferUsage`) used by the runtime. */
export const BUFFER_USAGE = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
} as const;

/** Usage of every pooled storage buffer: it can be bound, copied from and copied into. */
export const STORAGE_USAGE = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;

/** A pooled GPU buffer with its byte size (a multiple of 4, at least 4). */
export interface PooledBuffer {
  buffer: GPUBuffer;
  size: number;
}

/** Idle and live buffers of one size in the pool (see `Gpu.poolClasses`). */
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

/** What the pool needs from the rest of the runtime. */
export interface PoolHooks {
  /** Throws if a buffer of `bytes` cannot exist on the device, naming `what`. */
  checkSize(bytes: number, what: string): void;
  /** Whether recorded work is waiting to be submitted (it may still use idle buffers). */
  pending(): boolean;
}

/** The storage buffers of one device, live and idle. Owned by a `Gpu`. */
export class BufferPool {
  readonly #errors: DeviceErrors;
  readonly #hooks: PoolHooks;
  /** Idle buffers per size, least recently released first. */
  #pool = new Map<number, GPUBuffer[]>();
  /** Every idle buffer in release order (oldest first), with its size and submit epoch. */
  #idle = new Map<GPUBuffer, { size: number; epoch: number }>();
  /** Live buffers per size. */
  #liveCount = new Map<number, number>();
  #pooledBytes = 0;
  #liveBytes = 0;
  #peakHeld = 0;
  #peakLive = 0;
  #highWaterLive = 0;
  #cap: number | undefined;
  /**
   * Submits so far. A buffer released before the last submit (or while nothing was pending) is
   * not used by the pending encoder and can be destroyed at once.
   */
  #epoch = 0;

  /** Pooled buffers created since the device was created. */
  createdBuffers = 0;
  /** Pooled buffers destroyed (by the cap or `Gpu.trimPool`) since creation. */
  destroyedBuffers = 0;

  /** An empty pool; creation errors are recorded in `errors`. */
  constructor(errors: DeviceErrors, hooks: PoolHooks) {
    this.#errors = errors;
    this.#hooks = hooks;
  }

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

  /** The most bytes held at once since creation or {@linkcode BufferPool.resetPeak}. */
  get peakHeldBytes(): number {
    return this.#peakHeld;
  }

  /**
   * The most bytes live (acquired, not yet released) at once since creation or
   * {@linkcode BufferPool.resetPeak}: what the work itself needed, whatever the pool kept idle.
   */
  get peakLiveBytes(): number {
    return this.#peakLive;
  }

  /** Starts peak tracking afresh from the bytes held (and live) now. */
  resetPeak(): void {
    this.#peakHeld = this.heldBytes;
    this.#peakLive = this.#liveBytes;
  }

  /**
   * The most idle bytes the pool keeps: as set by {@linkcode BufferPool.setPoolCap}, else the
   * larger of {@linkcode DEFAULT_POOL_CAP_FLOOR} and the most bytes ever live at once.
   */
  get poolCap(): number {
    return this.#cap ?? Math.max(DEFAULT_POOL_CAP_FLOOR, this.#highWaterLive);
  }

  /** Caps the idle bytes the pool keeps (`undefined` restores the default) and trims to it. */
  setPoolCap(bytes: number | undefined): void {
    if (bytes !== undefined && !(bytes >= 0)) {
      throw new RangeError(`pool cap must be ≥ 0 bytes, got ${bytes}`);
    }
    this.#cap = bytes;
    this.trim();
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
   * Takes a storage buffer of at least `bytes` from the pool (or creates one, inside error
   * scopes that name `what`). Throws the device's error if it has failed.
   */
  acquire(bytes: number, what = "tensor"): PooledBuffer {
    this.#errors.check();
    const size = roundSize(bytes);
    this.#hooks.checkSize(size, what);
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
    if (this.#liveBytes > this.#peakLive) this.#peakLive = this.#liveBytes;
    return { buffer: b, size };
  }

  #create(size: number, what: string): GPUBuffer {
    const [live, idle] = [this.#liveBytes, this.#pooledBytes];
    const during = () =>
      `creating buffer '${what}' of ${fmtBytes(size)} (${fmtBytes(live + idle)} held: ` +
      `${fmtBytes(live)} live, ${fmtBytes(idle)} idle)`;
    const buffer = this.#errors.createBuffer(
      { size, usage: STORAGE_USAGE, label: what },
      this.heldBytes,
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
    const pending = this.#hooks.pending();
    this.#idle.set(b.buffer, { size: b.size, epoch: pending ? this.#epoch : this.#epoch - 1 });
    if (this.#pooledBytes > this.poolCap) this.trim();
  }

  /** Notes a submit (or dropped pending work): buffers released before it are free to go. */
  markSubmitted(): void {
    this.#epoch++;
  }

  /**
   * Destroys idle buffers, least recently released first, until pooled bytes are within `cap`;
   * stops at the first one released since the last submit while work is pending (the pending
   * encoder may use it; `Gpu.flush` trims again after submitting).
   */
  trim(cap: number = this.poolCap): void {
    if (this.#pooledBytes <= cap) return;
    const pending = this.#hooks.pending();
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
}
