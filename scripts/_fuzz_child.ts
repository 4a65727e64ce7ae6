/**
 * The child process of `deno task fuzz` (scripts/fuzz.ts): sets up one format's fixtures, then
 * runs each input it is sent through that format's readers (scripts/_fuzz_formats.ts) and
 * reports how each reader call ended. A process of its own, so that the fuzzer can stop an input
 * that hangs and contain what libhdf5 does to its WebAssembly memory: a Worker would do, but
 * Deno 2.9 cannot stop a Worker caught in a synchronous loop (it keeps a core busy until the
 * process exits; denoland/deno PR #35657), and libhdf5 loops on some corrupt files.
 *
 * Protocol: stdin carries frames `[u32 length][JSON header]` (`{type: "init", format, dir}` or
 * `{type: "run", id}`), a run's frame followed by `[u32 length][input bytes]`; stdout carries
 * lines `@@fuzz <JSON>` ({@linkcode FromChild}); anything else there is ignored.
 *
 * Outcomes: "valid" (every call returned a valid result or an InputError naming the input
 * file), else "failure" with the first offending call's error: another exception (TypeError,
 * RangeError, ...), an InputError that does not name the file, an invalid result, or an
 * unhandled rejection.
 * @module
 */
import { InputError } from "../data/errors.ts";
import { formatByName, type FuzzContext, type FuzzFormat } from "./_fuzz_formats.ts";

/** Marks the child's protocol lines on stdout. */
export const MARK = "@@fuzz ";

/** How one input ended. */
export interface Outcome {
  /** "valid": only valid results and InputErrors naming the file; else a "failure". */
  outcome: "valid" | "failure";
  /** Reader calls that ended in an InputError (0 when all gave valid results). */
  inputErrors: number;
  /** Reader calls that returned a valid result. */
  valid: number;
  /** The failure: the error's class, message and stack (first lines). */
  error?: { name: string; message: string; stack: string };
  /** The child should be replaced (libhdf5's WebAssembly aborted: its state is lost). */
  restart?: boolean;
}

/** A message from the child (seeds base64-encoded). */
export type FromChild =
  | { type: "ready"; seeds: string[] }
  | ({ type: "result"; id: number } & Outcome)
  | { type: "crash"; id: number; error: { name: string; message: string; stack: string } };

let format: FuzzFormat;
let ctx: FuzzContext;
let current = -1;

const describe = (e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  return {
    name: err instanceof InputError ? "InputError" : err.constructor?.name ?? err.name,
    message: err.message.slice(0, 2000),
    stack: (err.stack ?? "").split("\n").slice(0, 12).join("\n"),
  };
};

/** Whether `e` (or what caused it) is WebAssembly giving up: the module must be reloaded. */
function wasmDied(e: unknown): boolean {
  for (let x = e, k = 0; x && k < 4; x = (x as Error).cause, k++) {
    if (x instanceof WebAssembly.RuntimeError) return true;
    if (x instanceof Error && /Aborted\(|program has already aborted/.test(x.message)) return true;
  }
  return false;
}

async function run(id: number, bytes: Uint8Array): Promise<Outcome> {
  const path = format.inputPath(ctx, id);
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeFile(path, bytes);
  let inputErrors = 0, valid = 0, restart = false;
  try {
    for (const probe of format.probes(ctx, path)) {
      try {
        await probe();
        valid++;
      } catch (e) {
        restart ||= wasmDied(e);
        const names = format.names?.(path) ?? [path];
        if (e instanceof InputError && names.some((n) => e.message.includes(n))) {
          inputErrors++;
          continue;
        }
        const error = describe(e);
        if (e instanceof InputError) error.name = "InputError (does not name the file)";
        return { outcome: "failure", inputErrors, valid, error, restart };
      }
    }
    return { outcome: "valid", inputErrors, valid, restart };
  } finally {
    await (format.cleanup ?? ((_c, p) => Deno.remove(p).catch(() => {})))(ctx, path);
  }
}

/** Writes one protocol line (the readers' own console output is switched off below). */
const write = Deno.stdout.writeSync.bind(Deno.stdout);
function send(m: FromChild): void {
  const line = new TextEncoder().encode(MARK + JSON.stringify(m) + "\n");
  for (let o = 0; o < line.length;) o += write(line.subarray(o));
}

const b64 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
};

/** Reads stdin in frames of `[u32 length][bytes]`. */
class Frames {
  #r = Deno.stdin.readable.getReader();
  #buf = new Uint8Array(0);

  /** Exactly `n` bytes, or null at the end of stdin. */
  async #take(n: number): Promise<Uint8Array | null> {
    while (this.#buf.length < n) {
      const { value, done } = await this.#r.read();
      if (done) return null;
      const b = new Uint8Array(this.#buf.length + value.length);
      b.set(this.#buf);
      b.set(value, this.#buf.length);
      this.#buf = b;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  async next(): Promise<Uint8Array | null> {
    const len = await this.#take(4);
    return len && await this.#take(new DataView(len.buffer).getUint32(0, true));
  }
}

if (import.meta.main) {
  // Readers warn on stderr (skipped rows, answers not at their start): not the fuzzer's output.
  console.warn = () => {};
  console.log = () => {};
  console.error = () => {};
  globalThis.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    send({ type: "crash", id: current, error: describe(ev.reason) });
  });
  const frames = new Frames();
  for (;;) {
    const h = await frames.next();
    if (!h) break;
    const m = JSON.parse(new TextDecoder().decode(h)) as
      | { type: "init"; format: string; dir: string }
      | { type: "run"; id: number };
    if (m.type === "init") {
      format = formatByName(m.format);
      ctx = { dir: m.dir };
      await Deno.mkdir(m.dir, { recursive: true });
      send({ type: "ready", seeds: (await format.setup(ctx)).map(b64) });
      continue;
    }
    const bytes = await frames.next();
    if (!bytes) break;
    current = m.id;
    let out: Outcome;
    try {
      out = await run(m.id, bytes);
    } catch (e) {
      out = { outcome: "failure", inputErrors: 0, valid: 0, error: describe(e), restart: true };
    }
    send({ type: "result", id: m.id, ...out });
  }
}
