/**
 * Tensors in GPU buffers and a tape-based autograd you can read in one sitting.
 *
 * - A {@linkcode Tensor} owns a pooled GPU buffer; `dispose()` returns it to the pool.
 * - Every op whose inputs need gradients appends a node to the tape: its inputs, its output,
 *   a closure mapping the output's gradient to the inputs' gradients, and the other tensors that
 *   closure reads (kept alive while the node is on the tape, whatever scope made them).
 * - {@linkcode backward} walks the tape in reverse, accumulating gradients with `+=`, so a
 *   tensor used twice receives both contributions. Leaves that require gradients get `.grad`.
 * - {@linkcode scope} disposes every tensor created inside it except those it returns or that
 *   were kept; {@linkcode noGrad} records nothing.
 * @module
 */
import { getGpu, type Gpu, type PooledBuffer } from "../kernels/device.ts";
import { binary, fill } from "../kernels/elementwise.ts";

/**
 * Element type of a tensor. "f16" tensors hold binary16 values packed two per u32 word
 * (kernels/cast.ts): the f16 copies mixed precision keeps for a backward (model/ops.ts
 * `autocast`); ops other than matmul refuse them.
 */
export type DType = "f32" | "i32" | "f16";

/** One recorded op: the output's gradient → the inputs' gradients (null where none). */
interface Node {
  inputs: Tensor[];
  output: Tensor;
  backward: (grad: Tensor) => (Tensor | null)[];
  /** Other tensors the backward reads: kept alive across scopes while the node is on the tape. */
  saved: Tensor[];
  /** Of `saved`, those the node owns: disposed once it has run (or the tape is cleared). */
  owned: Tensor[];
  /**
   * The tensors whose contents the backward reads (of the inputs, the output and `saved`): a
   * scope ending keeps these alive; inputs and outputs not among them stay on the tape only as
   * names for routing gradients, and their buffers are freed with their scope.
   */
  reads: Tensor[];
}

let tape: Node[] = [];
let gradEnabled = true;
const scopes: Set<Tensor>[] = [];
let nextId = 1;
let gpuRef: Gpu | null = null;

/** Initialises (once) and returns the GPU that tensors live on. */
export async function initGpu(): Promise<Gpu> {
  gpuRef ??= await getGpu();
  return gpuRef;
}

/** The GPU tensors live on; {@linkcode initGpu} must have been awaited first. */
export function gpu(): Gpu {
  if (!gpuRef) throw new Error("GPU not initialised: `await initGpu()` before creating tensors");
  return gpuRef;
}

/** Number of elements of a shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A float32 or int32 array living in a GPU buffer. */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient (leaves with `requiresGrad`, after {@linkcode backward}). */
  grad: Tensor | null = null;
  /** A name for error messages (parameters carry theirs). */
  name: string;
  readonly id = nextId++;
  /** The buffer, shared by reshape views; returned to the pool when the last one is disposed. */
  #store: { buf: PooledBuffer; refs: number } | null;

  /** Wraps a pooled buffer; most code calls {@linkcode Tensor.empty} or the ops instead. */
  constructor(
    shape: readonly number[],
    buf: PooledBuffer,
    opts: { dtype?: DType; requiresGrad?: boolean; name?: string } = {},
    store?: { buf: PooledBuffer; refs: number },
  ) {
    this.shape = [...shape];
    this.dtype = opts.dtype ?? "f32";
    this.requiresGrad = opts.requiresGrad ?? false;
    this.name = opts.name ?? "";
    this.#store = store ?? { buf, refs: 0 };
    this.#store.refs++;
    scopes.at(-1)?.add(this);
  }

  /** An uninitialised tensor (its contents are whatever the pooled buffer held). */
  static empty(shape: readonly number[], dtype: DType = "f32", name = ""): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new RangeError(`${name || "tensor"}: invalid shape [${shape.join(", ")}]`);
      }
    }
    const bytes = dtype === "f16" ? Math.ceil(numel(shape) / 2) * 4 : numel(shape) * 4;
    const buf = gpu().acquire(bytes, `${name || "tensor"} [${shape.join("×")}]`);
    return new Tensor(shape, buf, { dtype, name });
  }

  /** A tensor filled with zeros. */
  static zeros(shape: readonly number[], dtype: DType = "f32", name = ""): Tensor {
    const t = Tensor.empty(shape, dtype, name);
    gpu().clear(t.buffer, 0, t.buf.size);
    return t;
  }

  /** Uploads host data; its length must match the shape. */
  static from(
    data: ArrayLike<number> | Float32Array | Int32Array,
    shape: readonly number[],
    opts: { dtype?: DType; requiresGrad?: boolean; name?: string } = {},
  ): Tensor {
    const dtype = opts.dtype ?? (data instanceof Int32Array ? "i32" : "f32");
    if (dtype === "f16") {
      throw new TypeError(
        `${opts.name || "tensor"}: f16 tensors are made on the GPU, not uploaded`,
      );
    }
    if (data.length !== numel(shape)) {
      throw new RangeError(
        `${opts.name || "tensor"}: ${data.length} values do not fill shape [${shape.join(", ")}] ` +
          `(${numel(shape)} elements)`,
      );
    }
    const t = Tensor.empty(shape, dtype, opts.name);
    const typed = dtype === "i32"
      ? (data instanceof Int32Array ? data : Int32Array.from(data))
      : (data instanceof Float32Array ? data : Float32Array.from(data));
    if (typed.length) gpu().upload(t.buffer, typed);
    t.requiresGrad = opts.requiresGrad ?? false;
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** The pooled buffer; throws when the tensor was disposed. */
  get buf(): PooledBuffer {
    if (!this.#store) {
      throw new Error(
        `${this.describe()} used after dispose (keep it out of the scope, or clone it first)`,
      );
    }
    return this.#store.buf;
  }

  /** The GPU buffer (throws after dispose). */
  get buffer(): GPUBuffer {
    return this.buf.buffer;
  }

  /** Whether dispose() was called. */
  get disposed(): boolean {
    return this.#store === null;
  }

  /** "tensor 'name' [2, 3] f32" for messages. */
  describe(): string {
    return `tensor${this.name ? ` '${this.name}'` : ""} [${this.shape.join(", ")}] ${this.dtype}`;
  }

  /** Returns the buffer to the pool. Safe to call twice. */
  dispose(): void {
    if (!this.#store) return;
    if (--this.#store.refs === 0) gpu().release(this.#store.buf);
    this.#store = null;
    for (const s of scopes) s.delete(this);
  }

  /** Reads the values back (submits pending GPU work). */
  async read(): Promise<Float32Array | Int32Array> {
    if (this.dtype === "f16") {
      throw new TypeError(`${this.describe()}: read an f16 tensor widened (kernels/cast.ts)`);
    }
    const bytes = await gpu().read(this.buffer, this.size * 4);
    return this.dtype === "i32" ? new Int32Array(bytes) : new Float32Array(bytes);
  }

  /** Reads a float tensor back as Float32Array. */
  async readF32(): Promise<Float32Array> {
    if (this.dtype !== "f32") {
      throw new TypeError(`${this.describe()}: readF32 on a ${this.dtype} tensor`);
    }
    return await this.read() as Float32Array;
  }

  /** Reads a single-element tensor back as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`${this.describe()}: item() needs one element`);
    return (await this.read())[0];
  }

  /** Another handle on the same buffer and shape (its own dispose; no tape record). */
  alias(): Tensor {
    return new Tensor(this.shape, this.buf, { dtype: this.dtype, name: this.name }, this.#store!);
  }

  /**
   * A view with another shape over the same buffer (same element count). Gradients flow back
   * through it. The buffer is freed when the base and all its views are disposed.
   */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape(shape, this.size, this);
    const v = new Tensor(resolved, this.buf, { dtype: this.dtype, name: this.name }, this.#store!);
    record([this], v, (g) => [g.reshape(this.shape)], { reads: [] });
    return v;
  }
}

function resolveShape(shape: readonly number[], size: number, t: Tensor): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) out[free] = size / numel(out.filter((_, i) => i !== free));
  if (numel(out) !== size || !out.every(Number.isInteger)) {
    throw new RangeError(`${t.describe()}: cannot reshape to [${shape.join(", ")}]`);
  }
  return out;
}

// ------------------------------------------------------------------------------------ scopes

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors in its result
 * (a tensor, or an array/object of them), those passed to {@linkcode keep}, and those the tape
 * still needs for a later {@linkcode backward} (they move to the enclosing scope). Async `fn` is
 * supported; the scope ends when its promise settles.
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopes.push(created);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(created, undefined);
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (r) => (endScope(created, r), r),
      (e) => {
        endScope(created, undefined);
        throw e;
      },
    ) as T;
  }
  endScope(created, result);
  return result;
}

function endScope(created: Set<Tensor>, result: unknown): void {
  const i = scopes.lastIndexOf(created);
  if (i >= 0) scopes.splice(i, 1);
  const keepers = new Set<Tensor>();
  collect(result, keepers);
  for (const n of tape) for (const t of n.reads) keepers.add(t);
  const outer = scopes.at(-1);
  for (const t of created) {
    if (keepers.has(t)) outer?.add(t);
    else t.dispose();
  }
}

function collect(v: unknown, out: Set<Tensor>): void {
  if (v instanceof Tensor) out.add(v);
  else if (Array.isArray(v)) { for (const x of v) collect(x, out); }
  else if (v && typeof v === "object" && !(v instanceof Promise)) {
    for (const x of Object.values(v)) collect(x, out);
  }
}

/**
 * Disposes `t` now unless a recorded op's backward reads it (then it stays, and its scope frees
 * it as before): for a tensor its maker no longer needs, such as a layer's input once the next
 * layer has run, which under f16-mixed the backward keeps only as an f16 copy.
 */
export function release(t: Tensor): void {
  for (const n of tape) if (n.reads.includes(t)) return;
  t.dispose();
}

/** Removes tensors from every open scope so they outlive it (parameters, optimizer state). */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopes) s.delete(x);
  return t;
}

// -------------------------------------------------------------------------------------- tape

/**
 * Records an op on the tape when any input needs gradients and grad mode is on; marks the
 * output as requiring gradients. Ops call this after creating their output.
 *
 * `saved` lists the other tensors the backward closure reads (LayerNorm's statistics, a loss's
 * labels or target): the tape keeps them alive across scopes like inputs and outputs. Those in
 * `owned` belong to the node (temporaries the op made for its backward) and are disposed once
 * the node has run or the tape is cleared; when nothing is recorded they are disposed at once.
 *
 * `reads`, when given, lists which of the inputs and the output the backward reads the contents
 * of (default: all of them). The others stay on the tape only as names to route gradients by:
 * a {@linkcode scope} ending frees their buffers, which is how a forward holds no more than its
 * backward needs (a permute's input, the scores a softmax replaced, a matmul's float32 operands
 * once f16 copies are saved). A backward that reads a freed tensor throws "used after dispose".
 */
export function record(
  inputs: Tensor[],
  output: Tensor,
  backward: (grad: Tensor) => (Tensor | null)[],
  saved: { saved?: Tensor[]; owned?: Tensor[]; reads?: Tensor[] } = {},
): void {
  const owned = saved.owned ?? [];
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) {
    for (const t of owned) t.dispose();
    return;
  }
  output.requiresGrad = true;
  const kept = [...(saved.saved ?? []), ...owned];
  const reads = [...(saved.reads ?? [...inputs, output]), ...kept];
  tape.push({ inputs, output, backward, saved: kept, owned, reads });
}

/** Whether an op on `inputs` would be recorded (grad mode on and an input requires grad). */
export function wouldRecord(inputs: Tensor[]): boolean {
  return gradEnabled && inputs.some((t) => t.requiresGrad);
}

/** Whether ops are being recorded (grad mode on). */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording any op (inference, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** a + b of two same-size f32 tensors, straight on the kernel (no tape): gradient accumulation. */
function accumulate(a: Tensor, b: Tensor): Tensor {
  const out = Tensor.empty(a.shape);
  binary(gpu(), "add", a.buffer, b.buffer, out.buffer, a.size, b.size);
  return out;
}

/**
 * Back-propagates from `loss` (a scalar unless `grad` is given) through the tape, accumulating
 * into `.grad` of every leaf that requires gradients, then clears the tape.
 */
export function backward(loss: Tensor, grad?: Tensor): void {
  if (!grad && loss.size !== 1) {
    throw new RangeError(`backward: ${loss.describe()} is not a scalar; pass its gradient`);
  }
  const grads = new Map<Tensor, Tensor>();
  noGrad(() => {
    if (grad) grads.set(loss, grad);
    else {
      const one = Tensor.empty(loss.shape);
      fill(gpu(), one.buffer, 1, 1);
      grads.set(loss, one);
    }
    const nodes = tape;
    tape = [];
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i];
      const g = grads.get(n.output);
      if (g) {
        grads.delete(n.output);
        const gin = n.backward(g);
        n.inputs.forEach((x, j) => {
          const gx = gin[j];
          if (!gx || !x.requiresGrad) return;
          // An alias per use: one gradient tensor may feed several inputs (x + x).
          const mine = gx.alias();
          const prev = grads.get(x);
          if (prev) {
            grads.set(x, accumulate(prev, mine));
            prev.dispose();
            mine.dispose();
          } else grads.set(x, mine);
        });
        for (const t of new Set([g, ...gin])) if (t && t !== grad) t.dispose();
      }
      for (const t of n.owned) t.dispose();
    }
    // What remains are gradients of leaves (tensors no recorded op produced).
    for (const [t, g] of grads) {
      if (t === loss && !t.requiresGrad) continue;
      if (t.grad) {
        const sum = accumulate(t.grad, g);
        t.grad.dispose();
        g.dispose();
        t.grad = sum;
      } else {
        t.grad = g;
      }
      keep(t.grad);
    }
  });
}

/** Drops the tape without back-propagating (e.g. after an evaluation forward with grads on). */
export function clearTape(): void {
  for (const n of tape) for (const t of n.owned) t.dispose();
  tape = [];
}

/** Number of nodes on the tape (tests). */
export function tapeLength(): number {
  return tape.length;
}
