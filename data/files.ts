/**
 * Reading the files a user (or a shared results folder, a mirror, a downloaded model) hands us:
 * one place that refuses anything that is not a regular file BEFORE opening it.
 *
 * Opening a FIFO (named pipe) for reading blocks until a writer appears, which may be never; a
 * character device such as `/dev/zero` or `/dev/urandom` never ends; a socket cannot be read as
 * a file. So every read of a path that came from outside goes through
 * {@linkcode assertRegularFile} (a `stat`, which follows symbolic links, then a check that the
 * target is a regular file), and whole-file reads through {@linkcode readInput} /
 * {@linkcode readInputText}, which do that check first. The refusal is an
 * {@linkcode InputError} naming the path and what it is instead.
 *
 * Checked by data/files_test.ts (FIFOs made with `mkfifo`, each read run in a child process
 * with a kill timer, so that a regression fails instead of hanging the suite).
 * @module
 */
import { decodeUtf8, InputError } from "./errors.ts";

/** Options of {@linkcode assertRegularFile} and {@linkcode readInput}. */
export interface ReadInputOptions {
  /** The message when the file does not exist (default `<path>: no such file`). */
  notFound?: string;
  /** What the file is, for messages (e.g. "manifest of shard files"); default "file". */
  what?: string;
}

/** What a stat result says a non-regular file is, in words. */
function kindOf(st: Deno.FileInfo): string {
  if (st.isDirectory) return "a directory";
  if (st.isFifo) return "a FIFO (named pipe)";
  if (st.isCharDevice) return "a character device";
  if (st.isBlockDevice) return "a block device";
  if (st.isSocket) return "a socket";
  return "not a regular file";
}

/**
 * Throws an {@linkcode InputError} naming `path` unless it is a regular file (after following
 * symbolic links): missing, a directory, a FIFO, a device or a socket. Never opens the file, so
 * a FIFO cannot block it.
 *
 * @example
 * ```ts
 * import { assertRegularFile } from "./files.ts";
 * let msg = "";
 * try {
 *   assertRegularFile("/dev/null");
 * } catch (e) {
 *   msg = (e as Error).message;
 * }
 * console.assert(msg.startsWith("/dev/null: a character device"));
 * ```
 */
export function assertRegularFile(path: string, opts: ReadInputOptions = {}): void {
  let st: Deno.FileInfo;
  try {
    st = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(opts.notFound ?? `${path}: no such file`, { file: path, cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new InputError(`${path}: permission denied (${e.message})`, { file: path, cause: e });
    }
    throw new InputError(`${path}: cannot look at it (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  if (st.isFile) return;
  const what = opts.what ?? "file";
  const kind = kindOf(st);
  throw new InputError(
    st.isDirectory
      ? `${path}: is a directory, not a file; name the ${what} itself`
      : `${path}: ${kind}, not a regular file; reading it could block or never end — name a ` +
        `regular ${what} (copy the data into one)`,
    { file: path },
  );
}

/**
 * Reads a whole input file after {@linkcode assertRegularFile}; a missing file, a directory, a
 * FIFO or device, or an unreadable file is an {@linkcode InputError} naming it.
 */
export async function readInput(path: string, opts: ReadInputOptions = {}): Promise<Uint8Array> {
  assertRegularFile(path, opts);
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(opts.notFound ?? `${path}: no such file`, { file: path, cause: e });
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new InputError(`${path}: is a directory, not a file`, { file: path, cause: e });
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new InputError(`${path}: permission denied (${e.message})`, { file: path, cause: e });
    }
    throw e;
  }
}

/** {@linkcode readInput} then {@linkcode decodeUtf8}: a text file's content, or an InputError. */
export async function readInputText(path: string, opts: ReadInputOptions = {}): Promise<string> {
  return decodeUtf8(await readInput(path, opts), path);
}

/**
 * Whether `path` exists, as a regular file: false when nothing is there, an
 * {@linkcode InputError} naming it when it is a directory, a FIFO, a device or a socket (a FIFO
 * planted where a sidecar, a marker or a log is expected). Never opens it.
 */
export function regularFileExists(path: string, opts: ReadInputOptions = {}): boolean {
  try {
    Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return false;
  }
  assertRegularFile(path, opts);
  return true;
}

/**
 * A file's text when it exists, or undefined when it does not; an {@linkcode InputError} naming
 * it when it is there but not a regular file ({@linkcode regularFileExists}). Not decoded
 * strictly: for the project's own bookkeeping files (sidecars, markers, logs).
 */
export async function readTextIfExists(
  path: string,
  opts: ReadInputOptions = {},
): Promise<string | undefined> {
  if (!regularFileExists(path, opts)) return undefined;
  return await Deno.readTextFile(path);
}
