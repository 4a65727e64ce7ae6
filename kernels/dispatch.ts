/**
 * Dispatch batching and readback for one device: a recorder that gathers many dispatches,
 * copies, clears and uploads into one command encoder, with one uniform buffer per submit, and
 * submits them at once; readbacks that submit and then map a staging buffer.
 *
 * Ordering model: all GPU work goes through one queue, in recording order. Work is recorded
 * into the pending encoder and submitted by {@linkcode Recorder.flush} (called by readbacks). A
 * buffer returned to the pool can be handed out again while the pending encoder still reads
 * its old contents: this is safe because every later use is recorded after the earlier reads.
 * Uploads are therefore recorded as copies from fresh staging buffers, never as
 * `queue.writeBuffer` into a pooled buffer (which would jump ahead of the pending encoder).
 *
 * Checked by kernels/device_test.ts (dispatch checks, batching into one submit, the ordering
 * model, validation errors naming the submit's kernels, readback and sync).
 * @module
 */
import type { DeviceErrors } from "./device_errors.ts";
import type { Kernel } from "./pipelines.ts";
import { BUFFER_USAGE, type BufferPool, roundSize } from "./pool.ts";

const { COPY_SRC, COPY_DST, MAP_READ, UNIFORM } = BUFFER_USAGE;

/** Uniform slots are aligned to the adapter's `minUniformBufferOffsetAlignment` (256 typical). */
const UNIFORM_SLOT = 256;

/** One view per texture, made on first use. */
const views = new WeakMap<GPUTexture, GPUTextureView>();
function viewOf(t: GPUTexture): GPUTextureView {
  let v = views.get(t);
  if (!v) views.set(t, v = t.createView());
  return v;
}

/** What a submit held, for an error caught by the rolling scopes. */
function describeSubmit(submit: number, dispatches: number, copies: number, kernels: Set<string>) {
  const names = [...kernels].slice(0, 8).join(", ") + (kernels.size > 8 ? ", …" : "");
  return `submit ${submit} (since the previous submit: ${dispatches} dispatch` +
    `${dispatches === 1 ? "" : "es"}, ${copies} copies/clears/uploads; kernels: ${
      names || "none"
    })`;
}

/** What a dispatch binds: a storage buffer, or a texture for a `texture` binding. */
export type Binding = GPUBuffer | GPUTexture;

/** Workgroup counts of one dispatch: x, then y and z (default 1). */
export type Workgroups = [number, number?, number?];

/** The pending work of one device and its submission. Owned by a `Gpu`. */
export class Recorder {
  readonly #device: GPUDevice;
  readonly #errors: DeviceErrors;
  readonly #pool: BufferPool;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #uniforms: Uint32Array<ArrayBuffer> = new Uint32Array(UNIFORM_SLOT * 64 / 4);
  #uniformUsed = 0;
  #uniformBuffers: GPUBuffer[] = [];
  #uniformFree: Map<number, GPUBuffer[]> = new Map();
  /** Uniform buffers of submitted work not yet known to be done (see `flush`). */
  #inflightUniforms: GPUBuffer[] = [];
  #staging: GPUBuffer[] = [];
  /** Textures to destroy once the pending work that may use them is submitted. */
  #retired: GPUTexture[] = [];
  #dispatches = 0;
  #copies = 0;
  /** Kernels recorded since the last submit, to name them in an error. */
  #recorded = new Set<string>();
  #deferredGroups: {
    kernel: Kernel;
    buffers: Binding[];
    uniformOffset: number;
    groups: [number, number, number];
  }[] = [];

  /** Dispatches recorded since the device was created (for tests and benchmarks). */
  totalDispatches = 0;
  /** Command buffers submitted since the device was created. */
  totalSubmits = 0;

  /** A recorder on `device`; submits roll `errors`' scopes and trim `pool`. */
  constructor(device: GPUDevice, errors: DeviceErrors, pool: BufferPool) {
    this.#device = device;
    this.#errors = errors;
    this.#pool = pool;
  }

  /** Whether work is recorded and not yet submitted (an encoder or deferred dispatches). */
  get pending(): boolean {
    return this.#encoder !== null || this.#deferredGroups.length > 0;
  }

  /** Forgets the pending work without submitting it (for a failed device). */
  drop(): void {
    this.#pass = null;
    this.#encoder = null;
    this.#deferredGroups = [];
    this.#uniformUsed = 0;
    for (const t of this.#retired) t.destroy(); // the work that used them will never run
    this.#retired = [];
  }

  #ensureEncoder(): GPUCommandEncoder {
    if (!this.#encoder) this.#encoder = this.#device.createCommandEncoder();
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
  dispatch(kernel: Kernel, buffers: Binding[], params: number[], groups: Workgroups): void {
    this.#errors.check();
    const spec = kernel.spec;
    if (buffers.length !== spec.bindings.length) {
      throw new Error(
        `${spec.name}: expected ${spec.bindings.length} buffers, got ${buffers.length}`,
      );
    }
    const g: [number, number, number] = [groups[0], groups[1] ?? 1, groups[2] ?? 1];
    const maxG = this.#device.limits.maxComputeWorkgroupsPerDimension;
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
        this.#device.createBuffer({ size: cap, usage: UNIFORM | COPY_DST, label: "uniforms" });
      this.#uniformBuffers.push(ubuf);
      // The uniform buffer is private to this submission, so writing it ahead is safe.
      this.#device.queue.writeBuffer(ubuf, 0, this.#uniforms.buffer, 0, size);
    }
    const enc = this.#ensureEncoder();
    if (!this.#pass) this.#pass = enc.beginComputePass();
    for (const d of this.#deferredGroups) {
      const entries: GPUBindGroupEntry[] = d.buffers.map((b, i) => ({
        binding: i,
        resource: d.kernel.spec.bindings[i][1] === "texture"
          ? viewOf(b as GPUTexture)
          : { buffer: b as GPUBuffer },
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
      const bg = this.#device.createBindGroup({ layout: d.kernel.layout, entries });
      this.#pass.setPipeline(d.kernel.pipeline);
      this.#pass.setBindGroup(0, bg);
      this.#pass.dispatchWorkgroups(...d.groups);
    }
    this.#deferredGroups = [];
    this.#uniformUsed = 0;
  }

  /** Records `src → dst` copy of `bytes` into the pending encoder (in order with dispatches). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.#errors.check();
    this.#recordDeferred();
    this.#endPass();
    this.#ensureEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    this.#copies++;
  }

  /**
   * Records a copy of `vec4s` 16-byte texels of `src` (from offset 0) into the rgba32float
   * texture `dst`, row-major in rows of `width` texels: the full rows in one copy, the rest of
   * a row in a second (in order with dispatches).
   */
  copyToTexture(src: GPUBuffer, dst: GPUTexture, vec4s: number, width: number): void {
    this.#errors.check();
    this.#recordDeferred();
    this.#endPass();
    const enc = this.#ensureEncoder();
    const rows = Math.floor(vec4s / width), rest = vec4s - rows * width;
    if (rows > 0) {
      enc.copyBufferToTexture({ buffer: src, bytesPerRow: width * 16 }, { texture: dst }, [
        width,
        rows,
      ]);
    }
    if (rest > 0) {
      enc.copyBufferToTexture(
        { buffer: src, offset: rows * width * 16, bytesPerRow: width * 16 },
        { texture: dst, origin: [0, rows] },
        [rest, 1],
      );
    }
    this.#copies++;
  }

  /** Destroys `t` after the next submit (now, when nothing is pending). */
  destroyAfterSubmit(t: GPUTexture): void {
    if (this.pending) this.#retired.push(t);
    else t.destroy();
  }

  /** Records a zero fill of `bytes` at `offset` (a multiple of 4) into the pending encoder. */
  clear(dst: GPUBuffer, offset = 0, bytes?: number): void {
    this.#errors.check();
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
    this.#errors.check();
    const bytes = roundSize(data.byteLength);
    const staging = this.#device.createBuffer({
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
    this.#errors.check();
    this.#recordDeferred();
    this.#endPass();
    if (!this.#encoder) return;
    this.#device.queue.submit([this.#encoder.finish()]);
    this.totalSubmits++;
    this.#pool.markSubmitted();
    const kernels = this.#recorded;
    const [n, c, submit] = [this.#dispatches, this.#copies, this.totalSubmits];
    this.#errors.rollScopes(() => describeSubmit(submit, n, c, kernels));
    this.#recorded = new Set();
    this.#encoder = null;
    this.#dispatches = 0;
    this.#copies = 0;
    for (const s of this.#staging) s.destroy();
    this.#staging = [];
    for (const t of this.#retired) t.destroy(); // submitted work keeps what it uses alive
    this.#retired = [];
    // Uniform buffers go back to the free list once the GPU is known to have finished with
    // them: after the next completed readback or sync (which wait for all submitted work). Not
    // `queue.onSubmittedWorkDone()` here: in Deno 2.9.6 that call blocks until the GPU is idle
    // (measured: a flush of 1.9 s of matmuls took 1.9 s), which would make every submit
    // synchronous and let the host never run ahead of the GPU.
    this.#inflightUniforms.push(...this.#uniformBuffers);
    this.#uniformBuffers = [];
    // Nothing pending now uses an idle buffer: what the cap held back can go.
    this.#pool.trim();
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
   * everything recorded, then waits for it (see {@linkcode Recorder.enqueueRead}).
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
    this.#errors.check();
    const size = roundSize(bytes);
    const dst = this.#device.createBuffer({
      size,
      usage: MAP_READ | COPY_DST,
      label: "readback",
    });
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
          await this.#errors.settle();
          this.#errors.check(); // the device error that made the map fail, if any
          throw e;
        }
        this.#recycleUniforms(); // everything submitted before the copy has run
        await this.#errors.settle();
        this.#errors.check();
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
    await this.#device.queue.onSubmittedWorkDone();
    this.#recycleUniforms();
    await this.#errors.settle();
    this.#errors.check();
  }
}
