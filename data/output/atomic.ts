/**
 * Atomic writes: every file an output writes whole (JSON results, settings, markers, sidecars,
 * charts, pages, safetensors) goes to a temporary file named by the writer's pid and host beside
 * its target, then is renamed over it, so a reader sees the old file or the new one, never half.
 *
 * On failure (a full disk, a missing folder, a read-only mount) the temporary file is removed,
 * never left behind, and the error is one {@linkcode InputError} line naming the target path.
 * Checked by data/output/output_test.ts (an injected write failure into every kind of output).
 * @module
 */
import { InputError } from "../errors.ts";
import { checkOutputWrite } from "./lock.ts";

/**
 * The temporary file a write of `path` goes through: `PATH.tmp-<pid>-<host>`. The host keeps
 * apart two writers on a shared file system whose pids are equal (cluster nodes writing the
 * shared files of a study folder).
 */
export function tempPathOf(path: string): string {
  return `${path}.tmp-${Deno.pid}-${Deno.hostname()}`;
}

/** A test hook: `BERTVISION_TEST_WRITE_FAIL` set to a substring of a path fails its writes. */
function injectedFailure(path: string): Error | null {
  const want = Deno.env.get("BERTVISION_TEST_WRITE_FAIL");
  return want && path.includes(want)
    ? new Error("injected write failure (BERTVISION_TEST_WRITE_FAIL)")
    : null;
}

/** The one error shape of a failed write: `PATH: cannot write it (why)`. */
export function writeError(path: string, cause: unknown): InputError {
  return new InputError(`${path}: cannot write it (${(cause as Error)?.message ?? cause})`, {
    file: path,
    cause,
  });
}

/** Writes `bytes` to `path` atomically (temporary file + rename). */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  checkOutputWrite(path); // a holder that lost the output's lock stops here
  const tmp = tempPathOf(path);
  try {
    const injected = injectedFailure(path);
    if (injected) throw injected;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw writeError(path, e);
  }
}

/** Synchronous {@linkcode writeFileAtomic}, for exit handlers and synchronous writers. */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  checkOutputWrite(path); // a holder that lost the output's lock stops here
  const tmp = tempPathOf(path);
  try {
    const injected = injectedFailure(path);
    if (injected) throw injected;
    Deno.writeFileSync(tmp, bytes);
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* never created */ }
    throw writeError(path, e);
  }
}

/** Writes text to `path` atomically. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Writes `value` as indented JSON (with a final newline) to `path` atomically. */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeTextAtomic(path, JSON.stringify(value, null, 2) + "\n");
}
