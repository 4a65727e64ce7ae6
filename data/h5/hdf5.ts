/**
 * h5wasm, loaded once and made to fail in one line: HDF5's error stack becomes one
 * {@linkcode InputError} naming the file and what was being done ({@linkcode h5Do}), and the
 * checks a path gets before HDF5 opens it (a directory, no HDF5 signature).
 * Checked by data/h5_store_errors_test.ts (corrupt, truncated and foreign files, a full disk).
 * @module
 */
import type H5Wasm from "h5wasm/node";
import { InputError } from "../errors.ts";
import { assertRegularFile } from "../files.ts";
import { statePath } from "./state.ts";

/** An open HDF5 file. */
export type H5File = InstanceType<typeof H5Wasm.File>;
/** An HDF5 dataset of an open file. */
export type H5Dataset = InstanceType<typeof H5Wasm.Dataset>;

/** h5wasm, loaded by {@linkcode h5Ready} (every use of it comes after). */
let h5wasm: typeof H5Wasm;

/** h5wasm, once {@linkcode h5Ready} has loaded it. */
export function h5lib(): typeof H5Wasm {
  return h5wasm;
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Throws an InputError naming `path` when it is a directory (an `--out` or `--h5` mistake) or
 * something else that is not a regular file (a FIFO, a device, a socket: opening one could block
 * for ever); a path that does not exist passes.
 */
export async function refuseDirectory(path: string): Promise<void> {
  const st = await Deno.stat(path).catch(() => null);
  if (st?.isDirectory) {
    throw new InputError(
      `${path}: is a directory, not an HDF5 file; name the file itself (e.g. ${
        path.replace(/\/+$/, "")
      }/train.h5)`,
      { file: path },
    );
  }
  if (st && !st.isFile) assertRegularFile(path, { what: "HDF5 file" });
}

/**
 * Throws naming `path` unless it starts with the HDF5 signature (at 0, 512, 1024, ...). The
 * error says it is not an activation store; `advice` (the writer's, resuming its own `--out`)
 * replaces the hint on what to name instead.
 */
export async function assertHdf5(path: string, advice?: string): Promise<void> {
  await refuseDirectory(path);
  assertRegularFile(path, { what: "HDF5 file" });
  let f: Deno.FsFile;
  try {
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: no such file`, { file: path, cause: e });
    }
    throw new InputError(`${path}: cannot open it (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  try {
    const size = (await f.stat()).size;
    const buf = new Uint8Array(8);
    for (let off = 0; off + 8 <= size; off = off === 0 ? 512 : off * 2) {
      await f.seek(off, Deno.SeekMode.Start);
      let got = 0;
      while (got < 8) {
        const n = await f.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      if (got === 8 && HDF5_SIGNATURE.every((b, i) => buf[i] === b)) return;
      if (off >= 1 << 20) break;
    }
  } finally {
    f.close();
  }
  throw new InputError(
    `${path}: not an HDF5 file (no HDF5 signature), so not an activation store; ` +
      (advice ?? "name a .h5 file written by capture (or merge-shards)"),
    { file: path },
  );
}

/**
 * What h5wasm printed (its `err`, bound to console.error when it loads): libhdf5 aborting on a
 * corrupt file says `Aborted(...)` there before it throws. Kept (the last few lines) rather than
 * printed: the error that follows names the file.
 */
const h5Printed: string[] = [];

/**
 * Loads h5wasm once and switches HDF5's error reporting from printing its error stack on stderr
 * (dozens of HDF5-DIAG lines, after which h5wasm carries on with a negative id or unread data)
 * to throwing it as a JS Error, which {@linkcode h5Do} turns into one line naming the file.
 */
export async function h5Ready(): Promise<void> {
  if (h5wasm) return;
  const printErr = console.error;
  console.error = (...a: unknown[]) => {
    h5Printed.push(a.join(" "));
    if (h5Printed.length > 8) h5Printed.shift();
  };
  let mod: typeof H5Wasm;
  try {
    mod = (await import("h5wasm/node")).default;
  } finally {
    console.error = printErr;
  }
  const m = await mod.ready;
  (m as unknown as { activate_throwing_error_handler(): number })
    .activate_throwing_error_handler();
  h5wasm = mod;
}

/**
 * The gist of an h5wasm failure: the OS's message when HDF5 quotes one (a full disk), else the
 * innermost entry of HDF5's error stack (the cause), else the first line of the message.
 */
function h5Summary(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const os = /error message = '([^']*)'/.exec(msg)?.[1];
  if (os) return os;
  // Stack entries read "  #003: <source> line N in FUNC(): what went wrong".
  const entries = [...msg.matchAll(/#\d+: .* in [\w.]+\(\): (.*)$/gm)].map((m) => m[1].trim());
  const gist = entries.at(-1) ?? msg.split("\n").find((l) => l.trim() !== "") ?? "unknown error";
  return gist.length > 200 ? gist.slice(0, 199) + "…" : gist;
}

/**
 * Runs an h5wasm call for `path`; a failure of HDF5 (or of h5wasm on a corrupt file) becomes one
 * InputError line naming the file and `what` was being done. Our own InputErrors pass through.
 */
export function h5Do<T>(path: string, what: string, fn: () => T, advice?: string): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw new InputError(
      `${path}: HDF5 could not ${what} (${h5Summary(e)}); ` +
        (advice ?? "the file is corrupt (e.g. a capture killed mid-write) — capture it again"),
      { file: path, cause: e },
    );
  }
}

/**
 * Makes a writer's dataset reads and writes, and its file's flush, fail with one line naming the
 * file (a full disk: `HDF5 could not write "embeds" (No space left on device)`).
 */
export function guardWrites(path: string, file: H5File, ds: Record<string, H5Dataset>): void {
  const full = "is there space left on its disk?";
  for (const [name, d] of Object.entries(ds)) {
    const write = d.write_slice.bind(d);
    d.write_slice = (ranges, data) =>
      h5Do(path, `write "${name}"`, () => write(ranges, data), full);
  }
  const flush = file.flush.bind(file);
  file.flush = () => h5Do(path, "flush it to disk", flush, full);
}

/**
 * Opens `path` with HDF5 in `mode`; a failure is one InputError saying what to do (a file that
 * cannot be created, or one too corrupt to open).
 */
export function openH5(path: string, mode: "r" | "a" | "w"): H5File {
  const failed = (why: string) =>
    new InputError(
      mode === "w"
        ? `${path}: HDF5 could not create it${
          why ? ` (${why})` : ""
        }; is its folder writable and its disk not full?`
        : `${path}: HDF5 could not open it (mode "${mode}"${
          why ? `: ${why}` : ""
        }): corrupt (e.g. killed mid-flush) or unreadable — delete it (and ${
          statePath(path)
        }) and rerun`,
      { file: path },
    );
  let f: H5File;
  try {
    f = new h5wasm.File(path, mode);
  } catch (e) {
    throw failed(h5Summary(e));
  }
  // h5wasm reports a failed open as a negative id rather than throwing.
  if ((f as unknown as { file_id: bigint }).file_id < 0n) throw failed("");
  return f;
}
