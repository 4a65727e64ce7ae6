/**
 * Resumable, size- and hash-checked HTTP downloads for datasets and model weights.
 *
 * A download streams into `dest + ".part"`; an interrupted run (or a dropped connection, which
 * is retried in-process) resumes from the bytes already there with an HTTP `Range` request, and
 * starts over when the server ignores `Range`. The file appears at `dest` only once complete
 * and checked (size, optional sha256), by an atomic rename. A file of the wrong size or hash is
 * a {@linkcode ChecksumError} naming the file and both sizes and hashes (a server that announces
 * fewer bytes than expected is read to the end to name what it served; one that announces more is
 * refused before its body is read).
 * @module
 */

import { createHash } from "node:crypto";
import { Progress } from "./progress.ts";
import { assertRegularFile } from "./files.ts";

/** Options for {@linkcode downloadFile}. */
export interface DownloadOptions {
  /** Size in bytes the file must have; checked against the server's length and the result. */
  expectedSize?: number;
  /** Lower-case hex sha256 the file must have. */
  sha256?: string;
  /** Draw no progress bar. */
  silent?: boolean;
  /** Attempts after a dropped connection, each resuming from what was written. Default 3. */
  retries?: number;
  /** Label for the progress bar. Default: the file name of `dest`. */
  label?: string;
}

/** Sha256 of a file as lower-case hex, streamed (works for files larger than memory). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  assertRegularFile(path, { what: "download" }); // a FIFO would block the read
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(1 << 20);
  while (true) {
    const n = await f.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? (i === 0 ? "/" : ".") : path.slice(0, i);
}

function baseOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** An error the caller cannot fix by retrying (HTTP status, size or hash mismatch). */
class FatalDownloadError extends Error {}

/**
 * The file downloaded is not the one expected: its size or sha256 differ. The message names the
 * file, the URL and both sizes and hashes; the download has been deleted.
 */
export class ChecksumError extends FatalDownloadError {
  /** Builds the error for `dest` downloaded from `url`. */
  constructor(
    readonly dest: string,
    readonly url: string,
    readonly expected: { size?: number; sha256: string },
    readonly got: { size: number; sha256: string },
  ) {
    const sz = (n?: number) => (n === undefined ? "" : ` (${n} bytes)`);
    super(
      `${dest}: sha256 ${got.sha256}${sz(got.size)} does not match the expected ` +
        `${expected.sha256}${sz(expected.size)} (downloaded from ${url}); the download was ` +
        `deleted`,
    );
  }
}

/** The server announces a size other than the expected one (nothing is downloaded). */
export class SizeError extends FatalDownloadError {}

/** The server answered with an HTTP error status (404, 401, ...); `status` says which. */
export class HttpStatusError extends FatalDownloadError {
  /** Builds the error for `url` answered with `status`. */
  constructor(readonly url: string, readonly status: number, statusText: string) {
    super(`GET ${url} failed: HTTP ${status} ${statusText}`);
  }
}

/**
 * Downloads `url` to `dest`, resuming a previous partial download when there is one.
 *
 * Skips the download when `dest` already exists (and has `expectedSize` / `sha256` when
 * given). Throws naming the URL on an HTTP error, and naming the file on a size or sha256
 * mismatch; a mismatching partial file is deleted so the next run starts clean.
 *
 * @example
 * ```ts ignore
 * import { downloadFile } from "./download.ts";
 * await downloadFile("https://example.com/data.zip", "/tmp/data.zip", { expectedSize: 1234 });
 * ```
 */
export async function downloadFile(
  url: string,
  dest: string,
  opts: DownloadOptions = {},
): Promise<void> {
  const existing = await fileSize(dest);
  if (existing !== null) {
    const sizeOk = opts.expectedSize === undefined || existing === opts.expectedSize;
    if (sizeOk && (opts.sha256 === undefined || (await sha256File(dest)) === opts.sha256)) return;
    // A stale or foreign file: download again and replace it only once the new one checks out.
  }
  await Deno.mkdir(dirOf(dest), { recursive: true });
  const part = dest + ".part";
  const retries = opts.retries ?? 3;
  let lastError: unknown;
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      await fetchInto(url, part, opts);
      lastError = undefined;
      break;
    } catch (e) {
      if (e instanceof FatalDownloadError) throw e;
      lastError = e;
      if (attempt < retries) await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
    }
  }
  if (lastError !== undefined) {
    const have = (await fileSize(part)) ?? 0;
    throw new Error(
      `download of ${url} failed after ${retries + 1} attempts (${have} bytes kept in ${part}; ` +
        `rerun to resume): ${lastError instanceof Error ? lastError.message : lastError}`,
    );
  }
  if (opts.sha256 !== undefined) {
    const got = await sha256File(part);
    const size = (await fileSize(part)) ?? 0;
    const sizeOk = opts.expectedSize === undefined || size === opts.expectedSize;
    if (got !== opts.sha256.toLowerCase() || !sizeOk) {
      await Deno.remove(part);
      throw new ChecksumError(dest, url, { size: opts.expectedSize, sha256: opts.sha256 }, {
        size,
        sha256: got,
      });
    }
  }
  await Deno.rename(part, dest);
}

/** One HTTP attempt: appends to `part` (or restarts it) until the server's length is reached. */
async function fetchInto(url: string, part: string, opts: DownloadOptions): Promise<void> {
  let have = (await fileSize(part)) ?? 0;
  if (opts.expectedSize !== undefined && have > opts.expectedSize) {
    await Deno.remove(part);
    have = 0;
  }
  if (opts.expectedSize !== undefined && have === opts.expectedSize && have > 0) return;
  const headers: HeadersInit = have > 0 ? { Range: `bytes=${have}-` } : {};
  const res = await fetch(url, { headers });
  if (res.status === 416 && have > 0) {
    // Our partial file is at least as long as the resource: it is complete or it is junk.
    await res.body?.cancel();
    const head = await fetch(url, { method: "HEAD" });
    const len = Number(head.headers.get("content-length"));
    if (head.ok && len === have) return;
    await Deno.remove(part);
    throw new Error(`server refused range ${have}- for ${url}; partial file deleted`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new HttpStatusError(url, res.status, res.statusText);
  }
  let start = 0;
  let total: number | undefined;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
    if (m && Number(m[1]) === have) {
      start = have;
      if (m[3] !== "*") total = Number(m[3]);
    } else {
      // A range we did not ask for: do not splice it in.
      await res.body?.cancel();
      await Deno.remove(part);
      throw new Error(`unexpected Content-Range "${res.headers.get("content-range")}" from ${url}`);
    }
  } else {
    const len = res.headers.get("content-length");
    if (len !== null) total = Number(len);
  }
  // Fewer bytes than expected with a hash to check: read them, to name what was served.
  const short = total !== undefined && opts.expectedSize !== undefined &&
    total < opts.expectedSize && opts.sha256 !== undefined;
  if (
    total !== undefined && opts.expectedSize !== undefined && total !== opts.expectedSize && !short
  ) {
    await res.body?.cancel();
    throw new SizeError(
      `${part.slice(0, -5)}: ${url}: server reports ${total} bytes but ${opts.expectedSize} ` +
        `were expected (wrong URL or the file changed upstream); nothing was downloaded`,
    );
  }
  total ??= opts.expectedSize;
  // start === 0 truncates: either a fresh download or a server that ignored our Range.
  using f = await Deno.open(part, {
    write: true,
    create: true,
    append: start > 0,
    truncate: start === 0,
  });
  const bar = new Progress({
    label: opts.label ?? baseOf(part.slice(0, -5)),
    total: total ?? 0,
    unit: "B",
    silent: opts.silent,
  }, start);
  let written = start;
  if (res.body) {
    for await (const chunk of res.body) {
      // A server sending past the announced (or expected) length is stopped there, not read on.
      if (total !== undefined && written + chunk.length > total) {
        written += chunk.length;
        break;
      }
      let off = 0;
      while (off < chunk.length) off += await f.write(chunk.subarray(off));
      written += chunk.length;
      bar.tick(chunk.length);
    }
  }
  bar.done();
  if (total !== undefined && written !== total) {
    if (written > total) {
      await Deno.remove(part);
      throw new FatalDownloadError(
        `${url}: sent more than the ${total} bytes announced or expected (stopped after ` +
          `${written}); partial file deleted`,
      );
    }
    // Short read without a stream error: treat like a dropped connection and resume.
    throw new Error(`connection closed after ${written} of ${total} bytes`);
  }
}
