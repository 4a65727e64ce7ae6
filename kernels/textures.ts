/**
 * Input textures for the elementwise kernels on software adapters: a buffer's vec4s copied into
 * an rgba32float texture (row-major, {@linkcode TEXTURE_WIDTH} texels a row) and read in the
 * kernel with `textureLoad`.
 *
 * Why: llvmpipe runs 8 invocations as SIMD lanes and turns each storage-buffer load into a loop
 * over the lanes with a branch and a bounds check per lane and component; a texel fetch is a
 * straight-line gather. On llvmpipe (Mesa 22.3.6, 2 vCPUs) a vec4 copy kernel moved 2.4–3× the
 * bytes per second reading a texture, the buffer-to-texture copy (a memcpy) included, than
 * reading a storage buffer (BENCHMARKS.md, "Memory-bound kernels"). GPUs keep the buffer loads
 * ({@linkcode inputLayout}); both layouts are tested on every adapter.
 *
 * One texture per slot (an operand position: x, y, dy, or a, b), grown as needed (rows rounded
 * up by at most 25%) and reused by every later op: the copies and reads of successive ops are
 * ordered by the queue, so a slot can be overwritten by the next op's copy. Textures replaced by
 * a bigger one are destroyed after the next submit, and all by `Gpu.trimPool` (after submitting
 * the pending work). The pool's byte accounting does not see them: at most three slots, each about the size
 * of the largest elementwise input, on software adapters only (`Gpu.textureBytes`).
 *
 * Checked by kernels/elementwise_test.ts (both layouts, sizes that end in a partial row).
 * @module
 */

/** Texels (vec4s) per texture row: 16 KiB rows, a multiple of the 256-byte copy alignment. */
export const TEXTURE_WIDTH = 1024;

/**
 * How an elementwise kernel reads its inputs: storage buffers (GPUs), or textures filled by a
 * buffer-to-texture copy (software adapters; see the module note).
 */
export type InputLayout = "buffer" | "texture";

let forcedInput: InputLayout | undefined;

/** Forces one input layout on every adapter (tests check both); `undefined` restores it. */
export function forceInputLayout(v: InputLayout | undefined): void {
  forcedInput = v;
}

/** The input layout for an adapter: textures on software adapters, else buffers. */
export function inputLayout(gpu: { isFallback: boolean }): InputLayout {
  return forcedInput ?? (gpu.isFallback ? "texture" : "buffer");
}

/** WGSL: the texel of flat vec4 index `i` in a texture laid out by {@linkcode TextureStage}. */
export function texelWgsl(texture: string, i: string): string {
  return `textureLoad(${texture}, vec2<u32>((${i}) % ${TEXTURE_WIDTH}u, (${i}) / ${TEXTURE_WIDTH}u), 0)`;
}

/** GPUTextureUsage.COPY_DST | GPUTextureUsage.TEXTURE_BINDING. */
const TEXTURE_USAGE = 0x02 | 0x04;

/** The per-slot input textures of one device. Owned by a `Gpu`. */
export class TextureStage {
  readonly #device: GPUDevice;
  readonly #retire: (t: GPUTexture) => void;
  #slots: (GPUTexture | undefined)[] = [];

  /**
   * An empty stage on `device`; a texture replaced by a bigger one goes to `retire`, which
   * destroys it once the pending work that may use it is submitted.
   */
  constructor(device: GPUDevice, retire: (t: GPUTexture) => void) {
    this.#device = device;
    this.#retire = retire;
  }

  /** The most vec4s a slot can hold on this device. */
  get maxVec4s(): number {
    return TEXTURE_WIDTH * this.#device.limits.maxTextureDimension2D;
  }

  /**
   * The texture of `slot`, with room for `vec4s` texels (created or grown as needed). Throws a
   * RangeError past {@linkcode TextureStage.maxVec4s}.
   */
  texture(slot: number, vec4s: number): GPUTexture {
    if (!(vec4s > 0 && vec4s <= this.maxVec4s)) {
      throw new RangeError(`texture slot ${slot}: ${vec4s} vec4s (at most ${this.maxVec4s})`);
    }
    const rows = Math.ceil(vec4s / TEXTURE_WIDTH);
    const have = this.#slots[slot];
    if (have && have.height >= rows) return have;
    if (have) this.#retire(have);
    // Rows rounded up to a quarter of their power of two (at most 25% spare; few regrowths).
    const q = 2 ** Math.max(0, Math.floor(Math.log2(rows)) - 2);
    const height = Math.min(Math.ceil(rows / q) * q, this.#device.limits.maxTextureDimension2D);
    const t = this.#device.createTexture({
      label: `input texture ${slot}`,
      size: [TEXTURE_WIDTH, height],
      format: "rgba32float",
      usage: TEXTURE_USAGE,
    });
    this.#slots[slot] = t;
    return t;
  }

  /** Bytes held by the current textures. */
  get bytes(): number {
    return this.#slots.reduce(
      (s, t) => s + (t ? t.width * t.height * 16 : 0),
      0,
    );
  }

  /** Destroys every texture; call only after the work using them is submitted (or dropped). */
  destroyAll(): void {
    for (const t of this.#slots) t?.destroy();
    this.#slots = [];
  }
}
