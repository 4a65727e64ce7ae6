/**
 * Device errors, thrown rather than printed: the {@linkcode DeviceError} type, the message helper
 * {@linkcode describeDeviceError}, and {@linkcode DeviceErrors}, which routes every WebGPU error
 * of one device into a single failed state, plus the injected out-of-memory test hook.
 *
 * WebGPU reports out-of-memory, validation and internal errors asynchronously, and a failed call
 * leaves an invalid object behind that poisons later work, so a run could go on and report
 * numbers computed from nothing. Here every error reaches the `Gpu` through error scopes: one
 * around each buffer creation (its label and size name what failed), one around each kernel
 * compile, and a rolling scope (popped and pushed again at each submit) that catches everything
 * else, such as a bad copy or bind group, naming the kernels of that submit. The first error is
 * kept as a {@linkcode DeviceError} (later scopes' errors are counted) and the device counts as
 * failed from then on: `Gpu.check` and every later `acquire`, `dispatch`, `copy`, `clear`,
 * `upload`, `flush`, `read` and `sync` throw it. When it surfaces: `read` and `sync` wait for
 * every scope opened before them, so an error made by any earlier call is thrown by the next
 * `read`/`sync` at the latest; the other calls throw it once its scope has resolved (a microtask
 * after the failing call in Deno, so usually by the next call after an `await`). An
 * `uncapturederror` listener and `device.lost` are the backstop for anything outside the scopes.
 * Scopes cost a few microseconds per buffer creation and per submit, none per dispatch.
 * {@linkcode DeviceErrors.injectFault} (or `BERTVISION_INJECT_OOM_AFTER_MIB`) is the test hook
 * that provokes an out-of-memory error, which software adapters cannot.
 *
 * Checked by kernels/device_test.ts (compile, validation and injected out-of-memory errors
 * surfacing as DeviceErrors that keep throwing, the message helper, the environment hook).
 * @module
 */

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
 * A WebGPU error on a `Gpu`: out of memory, a validation error or an internal error, with
 * WebGPU's message and what the device was doing. The `Gpu` that raised it is failed: it throws
 * this error from every later call (see the module note).
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

/** The injected-fault environment hook, read when a `Gpu` is created. */
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

/** Which filter a GPUError belongs to. */
function kindOf(e: GPUError): DeviceErrorKind {
  const name = (e as { constructor?: { name?: string } }).constructor?.name ?? "";
  if (name === "GPUOutOfMemoryError") return "out-of-memory";
  if (name === "GPUInternalError") return "internal";
  return "validation";
}

/**
 * The error state of one device: the rolling error scopes, the scopes around buffer creations
 * and compiles, the first {@linkcode DeviceError} and the count of later ones, and the injected
 * fault. Owned by a `Gpu`, which forwards its public error calls here.
 */
export class DeviceErrors {
  readonly #device: GPUDevice;
  /** The first device error (compile, validation, out-of-memory, internal); thrown from then on. */
  #error: DeviceError | null = null;
  #errorCount = 0;
  /** Error scopes popped and not yet settled; `read` and `sync` wait for them. */
  #waiting = new Set<Promise<void>>();
  /** An injected fault (test hook), fired by the first buffer creation past `afterBytes`. */
  #fault: { kind: DeviceErrorKind; afterBytes: number } | null = null;

  /**
   * Opens the rolling error scopes on `device`, listens for uncaptured errors and device loss,
   * and reads the {@linkcode INJECT_OOM_ENV} test hook (throwing on a value that is not a number).
   */
  constructor(device: GPUDevice) {
    this.#device = device;
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

  /** The first device error, or null while the device is healthy. */
  get error(): DeviceError | null {
    return this.#error;
  }

  /** Device errors reported so far (the first is kept in {@linkcode DeviceErrors.error}). */
  get errorCount(): number {
    return this.#errorCount;
  }

  /** Throws the device's first error, if one has surfaced; a failed device stays failed. */
  check(): void {
    if (this.#error) throw this.#error;
  }

  /**
   * Test hook: the first buffer creation ({@linkcode DeviceErrors.createBuffer}) that takes the
   * held bytes past `afterBytes` reports a `kind` error through the same error-scope path as a
   * real one. Fires once.
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
  watch(popped: Promise<GPUError | null>, during: string | (() => string)): void {
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
  async settle(): Promise<void> {
    while (this.#waiting.size) await Promise.all([...this.#waiting]);
  }

  /** The rolling scopes: everything outside the buffer and kernel scopes lands in them. */
  #pushScopes(): void {
    this.#device.pushErrorScope("internal");
    this.#device.pushErrorScope("out-of-memory");
    this.#device.pushErrorScope("validation");
  }

  /** Pops the rolling scopes (after a submit) and opens new ones. */
  rollScopes(during: () => string): void {
    for (let i = 0; i < 3; i++) this.watch(this.#device.popErrorScope(), during);
    this.#pushScopes();
  }

  /**
   * Creates a buffer inside out-of-memory and validation scopes whose errors name `during`;
   * fires the injected fault when `heldBytes` plus the new size passes its threshold.
   */
  createBuffer(desc: GPUBufferDescriptor, heldBytes: number, during: () => string): GPUBuffer {
    const d = this.#device;
    const fault = this.#fault && heldBytes + desc.size > this.#fault.afterBytes
      ? this.#fault
      : null;
    if (fault) this.#fault = null;
    d.pushErrorScope("out-of-memory");
    d.pushErrorScope("validation");
    const buffer = d.createBuffer(desc);
    const validation = d.popErrorScope(), oom = d.popErrorScope();
    this.watch(validation, during);
    this.watch(
      fault
        ? oom.then((e) => e ?? gpuErrorOf(fault.kind, "not enough memory left (injected)"))
        : oom,
      during,
    );
    return buffer;
  }
}
