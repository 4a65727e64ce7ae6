/**
 * A small ZIP reader for the GLUE zips of `fetch-data` (data/fetch.ts): stored and deflate
 * entries, no ZIP64, no encryption. Every zip is hostile until it has unpacked and checked:
 *
 * - The zip is read from disk through a file handle (its tail, its central directory, then each
 *   entry's bytes in small pieces), never as a whole.
 * - An entry is inflated streaming to disk and stops at the size its directory declares: output
 *   past that is an error naming the zip and the entry, and the inflater is fed so little at a
 *   time that at most {@linkcode INFLATE_SLACK} bytes more than the declared size are ever
 *   inflated (deflate expands at most 1,032:1). A 1 KB entry that inflates to gigabytes (a zip
 *   bomb) costs a few hundred kilobytes of work, not gigabytes of memory.
 * - The declared sizes of the entries unpacked must add up to at most a cap per zip
 *   ({@linkcode ZIP_MAX_BYTES} unless the caller gives one), checked before anything is
 *   inflated; with the per-entry stop, that bounds what one zip can write.
 * - Every structural fault (no end record, a central directory outside the file, a truncated
 *   entry, a size or CRC-32 mismatch) is a {@linkcode ZipError} naming the zip, the entry where
 *   there is one, what is wrong and the fix (download the file again).
 * @module
 */

import { InputError } from "./errors.ts";
import { assertRegularFile } from "./files.ts";

// deno-lint-ignore no-control-regex
const CONTROL_CHARS = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * A zip that cannot be unpacked: `what` is the fault alone, the message adds the zip's path
 * (and the entry) in front and the fix behind, so a caller that deletes the file can say so
 * instead (data/fetch.ts).
 */
export class ZipError extends InputError {
  /** Builds the error for the zip at `file`; `what` says what is wrong (and which entry). */
  constructor(readonly zipFile: string, what: string) {
    // An OS error quoting a hostile entry's path must not put control characters on a terminal.
    what = what.replace(
      CONTROL_CHARS,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
    super(`${zipFile}: ${what} (a truncated or corrupt download: delete it and download again)`, {
      file: zipFile,
    });
    this.what = what;
  }

  /** What is wrong (and with which entry), without the zip's path and the fix. */
  readonly what: string;
}

/** One entry of a ZIP central directory. */
export interface ZipEntry {
  /** Its path inside the zip. */
  name: string;
  /** 0 stored, 8 deflate (others are refused when unpacked). */
  method: number;
  /** General-purpose flags (bit 0: encrypted). */
  flags: number;
  /** CRC-32 of the uncompressed bytes. */
  crc32: number;
  /** Bytes of its data in the zip. */
  compressedSize: number;
  /** Bytes it declares once unpacked. */
  size: number;
  /** Where its local header starts. */
  localOffset: number;
}

/** Default cap on the bytes one zip may unpack to: 4 GiB (the GLUE zips need well under it). */
export const ZIP_MAX_BYTES = 4 * 1024 ** 3;

/** Input bytes fed to the inflater at most at once (its output is at most 1,032× that). */
const MAX_FEED = 16 * 1024;
/** Input bytes fed at least at once, near the end of an entry's declared size. */
const MIN_FEED = 256;
/** Deflate's largest expansion: 258 bytes out per 2 bits in. */
const MAX_RATIO = 1032;
/**
 * How many bytes past its declared size an entry may inflate before it is stopped: the output
 * of the (at most two) smallest pieces in flight.
 */
export const INFLATE_SLACK = 2 * MAX_RATIO * MIN_FEED;

/** An entry's name as messages show it: quoted (escaped) when it holds control characters. */
function shown(name: string): string {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f-\x9f\ufffd]/.test(name) || name === "" ? JSON.stringify(name) : name;
}

const EOCD_SIG = 0x06054b50;
const CEN_SIG = 0x02014b50;
const LOC_SIG = 0x04034b50;

/** Finds the end-of-central-directory record in `tail` (the last bytes of the file). */
function findEocd(tail: Uint8Array): number {
  const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  for (let i = tail.length - 22; i >= Math.max(0, tail.length - 22 - 0xFFFF); i--) {
    if (dv.getUint32(i, true) === EOCD_SIG) return i;
  }
  return -1;
}

/** The end record's numbers: how many entries, and where the central directory lies. */
interface EndRecord {
  count: number;
  cdSize: number;
  cdOffset: number;
}

/**
 * Reads the end record from `tail`, the file's last bytes (from offset `base` to its end,
 * `fileSize`); checks that the central directory it points at lies inside the file.
 */
function readEnd(tail: Uint8Array, base: number, fileSize: number, file: string): EndRecord {
  const fail = (what: string): never => {
    throw new ZipError(file, what);
  };
  if (fileSize < 22) fail(`not a ZIP file (${fileSize} bytes, shorter than an end record)`);
  const e = findEocd(tail);
  if (e < 0) fail("not a ZIP file (no end of central directory record)");
  const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  const eocdAt = base + e;
  if (dv.getUint16(e + 4, true) !== 0 || dv.getUint16(e + 6, true) !== 0) {
    fail("a multi-disk ZIP file (not supported)");
  }
  const count = dv.getUint16(e + 10, true);
  const cdSize = dv.getUint32(e + 12, true);
  const cdOffset = dv.getUint32(e + 16, true);
  if (cdOffset === 0xFFFFFFFF || count === 0xFFFF) fail("a ZIP64 file (not supported)");
  if (cdOffset + cdSize > eocdAt) {
    fail(
      `bad central directory offset: ${cdSize} bytes at ${cdOffset} run past its end record ` +
        `at ${eocdAt} (the file is ${fileSize} bytes)`,
    );
  }
  return { count, cdSize, cdOffset };
}

/** Parses the central directory `cd` (its bytes only) of `end`; every field is bounds-checked. */
function parseEntries(cd: Uint8Array, end: EndRecord, file: string): ZipEntry[] {
  const fail = (what: string): never => {
    throw new ZipError(file, what);
  };
  const { count, cdOffset } = end;
  const dv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const dec = new TextDecoder();
  const entries: ZipEntry[] = [];
  let q = 0;
  for (let k = 0; k < count; k++) {
    if (q + 46 > cd.length) fail(`central directory truncated at entry ${k + 1} of ${count}`);
    if (dv.getUint32(q, true) !== CEN_SIG) {
      fail(
        `corrupt central directory (entry ${k + 1} of ${count} at ${cdOffset + q} has no ` +
          `signature)`,
      );
    }
    const nameLen = dv.getUint16(q + 28, true);
    const extraLen = dv.getUint16(q + 30, true);
    const commentLen = dv.getUint16(q + 32, true);
    if (q + 46 + nameLen + extraLen + commentLen > cd.length) {
      fail(`central directory truncated in entry ${k + 1} of ${count}`);
    }
    const z: ZipEntry = {
      flags: dv.getUint16(q + 8, true),
      method: dv.getUint16(q + 10, true),
      crc32: dv.getUint32(q + 16, true),
      compressedSize: dv.getUint32(q + 20, true),
      size: dv.getUint32(q + 24, true),
      localOffset: dv.getUint32(q + 42, true),
      name: dec.decode(cd.subarray(q + 46, q + 46 + nameLen)),
    };
    if (z.size === 0xFFFFFFFF || z.compressedSize === 0xFFFFFFFF) {
      fail(`${shown(z.name)}: a ZIP64 entry (not supported)`);
    }
    if (z.localOffset + 30 > cdOffset) {
      fail(`${shown(z.name)}: its data offset ${z.localOffset} lies outside the file's data`);
    }
    entries.push(z);
    q += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Reads the central directory of a ZIP file held in `bytes` (no ZIP64). */
export function zipEntries(bytes: Uint8Array, file = "zip"): ZipEntry[] {
  const end = readEnd(bytes, 0, bytes.length, file);
  return parseEntries(bytes.subarray(end.cdOffset, end.cdOffset + end.cdSize), end, file);
}

/** Reads exactly `n` bytes at `pos` (fewer only at the end of the file). */
async function readAt(
  f: Deno.FsFile,
  pos: number,
  n: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(n);
  await f.seek(pos, Deno.SeekMode.Start);
  let got = 0;
  while (got < n) {
    const r = await f.read(out.subarray(got));
    if (r === null) break;
    got += r;
  }
  return got === n ? out : out.subarray(0, got);
}

/**
 * The central directory of the zip open as `f` (`size` bytes), read without the rest (its tail,
 * then the directory's own bytes), and where it starts (the end of the entries' data).
 */
async function fileEntries(
  f: Deno.FsFile,
  size: number,
  file: string,
): Promise<{ entries: ZipEntry[]; cdOffset: number }> {
  const tailStart = Math.max(0, size - 22 - 0xFFFF);
  const tail = await readAt(f, tailStart, size - tailStart);
  const end = readEnd(tail, tailStart, size, file);
  const cd = end.cdOffset >= tailStart
    ? tail.subarray(end.cdOffset - tailStart, end.cdOffset - tailStart + end.cdSize)
    : await readAt(f, end.cdOffset, end.cdSize);
  return { entries: parseEntries(cd, end, file), cdOffset: end.cdOffset };
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ZIP/PNG polynomial) of `data`, continuing from `crc`. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xFF] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Counts of what {@linkcode extractZip} did, updated as it goes (also when it throws). */
export interface ZipStats {
  /** Bytes read out of the inflater (and out of stored entries). */
  inflated: number;
  /** Bytes written to disk. */
  written: number;
}

/** Options of {@linkcode extractZip}. */
export interface ExtractOptions {
  /** Most bytes the unpacked entries may declare in all; default {@linkcode ZIP_MAX_BYTES}. */
  maxBytes?: number;
  /** Filled in as entries are unpacked (a test's measure of the work done). */
  stats?: ZipStats;
}

/**
 * Unpacks entry `e` of the zip open as `f` into `dest`, streaming: stops with a
 * {@linkcode ZipError} as soon as the output passes the declared size, and checks the CRC-32.
 */
async function unpackEntry(
  f: Deno.FsFile,
  e: ZipEntry,
  cdOffset: number,
  dest: string,
  file: string,
  stats: ZipStats,
): Promise<void> {
  const fail = (what: string): never => {
    throw new ZipError(file, `${shown(e.name)}: ${what}`);
  };
  if (e.flags & 1) fail("encrypted (not supported)");
  if (e.method !== 0 && e.method !== 8) fail(`compression method ${e.method} (not supported)`);
  const loc = await readAt(f, e.localOffset, 30);
  const lv = new DataView(loc.buffer, loc.byteOffset, loc.byteLength);
  if (loc.length < 30 || lv.getUint32(0, true) !== LOC_SIG) fail("bad local header");
  const start = e.localOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
  if (start + e.compressedSize > cdOffset) {
    fail(
      `its ${e.compressedSize} bytes at ${start} run past the entries' data (which ends at ` +
        `${cdOffset})`,
    );
  }
  if (e.method === 0 && e.compressedSize !== e.size) {
    fail(`stored with ${e.compressedSize} bytes but declares ${e.size}`);
  }
  using out = await Deno.open(dest, { write: true, create: true, truncate: true }).catch(
    (err) => fail(`cannot write ${shown(dest)} (${(err as Error).message})`),
  );
  let crc = 0, produced = 0;
  const take = async (chunk: Uint8Array) => {
    stats.inflated += chunk.length;
    produced += chunk.length;
    if (produced > e.size) {
      fail(
        `inflates to more than the ${e.size} bytes its directory declares (stopped after ` +
          `${produced}; a zip bomb or a corrupt download)`,
      );
    }
    crc = crc32(chunk, crc);
    for (let o = 0; o < chunk.length;) o += await out.write(chunk.subarray(o));
    stats.written += chunk.length;
  };
  let pos = start, left = e.compressedSize;
  if (e.method === 0) {
    while (left > 0) {
      const n = Math.min(left, 1 << 20);
      const b = await readAt(f, pos, n);
      if (b.length < n) fail("the file ends inside its data");
      await take(b);
      pos += n;
      left -= n;
    }
  } else {
    const ds = new DecompressionStream("deflate-raw");
    const writer = ds.writable.getWriter();
    const reader = ds.readable.getReader();
    let stopped = false;
    // Feeds the inflater in pieces sized so that what they can expand to stays within half of
    // what the entry may still produce: at most INFLATE_SLACK past the declared size.
    const pump = (async () => {
      while (left > 0 && !stopped) {
        const room = Math.max(0, e.size - produced);
        const n = Math.min(left, Math.max(MIN_FEED, Math.min(MAX_FEED, room / (2 * MAX_RATIO))));
        const b = await readAt(f, pos, Math.floor(n));
        if (b.length === 0) break;
        pos += b.length;
        left -= b.length;
        await writer.write(b);
      }
      await writer.close();
    })();
    pump.catch(() => {});
    try {
      for (;;) {
        let r;
        try {
          r = await reader.read();
        } catch (err) {
          fail(`${(err as Error).message} (not valid deflate data)`);
        }
        if (r!.done) break;
        await take(r!.value);
      }
      await pump;
    } finally {
      stopped = true;
      await reader.cancel().catch(() => {});
      await writer.abort().catch(() => {});
      await pump.catch(() => {});
    }
  }
  if (produced !== e.size) fail(`inflates to ${produced} bytes, not the ${e.size} it declares`);
  if (crc !== e.crc32) fail("CRC-32 mismatch");
}

/**
 * Unpacks every file of a ZIP under `outDir`, its top folder renamed to `topDir` (QNLIv2.zip
 * may hold `QNLIv2/`); `__MACOSX/` and unsafe paths are skipped. Returns the paths written.
 * Throws a {@linkcode ZipError} naming the zip (and entry) on any fault; an entry that failed
 * leaves no file behind, the entries before it stay (unpack into a folder of your own).
 */
export async function extractZip(
  zipPath: string,
  outDir: string,
  topDir: string,
  opts: ExtractOptions = {},
): Promise<string[]> {
  const stats = opts.stats ?? { inflated: 0, written: 0 };
  const cap = opts.maxBytes ?? ZIP_MAX_BYTES;
  assertRegularFile(zipPath, { what: "zip" }); // a FIFO would block the read
  using f = await Deno.open(zipPath, { read: true });
  const size = (await f.stat()).size;
  const { entries, cdOffset } = await fileEntries(f, size, zipPath);
  const jobs: { e: ZipEntry; dest: string }[] = [];
  for (const e of entries) {
    if (e.name.endsWith("/") || e.name.startsWith("__MACOSX/")) continue;
    const parts = e.name.split("/");
    if (parts.some((p) => p === ".." || p === "" || p === ".") || e.name.startsWith("/")) continue;
    if (e.name.includes("\\") || e.name.includes("\0")) continue;
    if (parts.length > 1) parts[0] = topDir;
    else parts.unshift(topDir);
    jobs.push({ e, dest: `${outDir}/${parts.join("/")}` });
  }
  const declared = jobs.reduce((s, j) => s + j.e.size, 0);
  if (declared > cap) {
    throw new ZipError(
      zipPath,
      `its entries declare ${declared} bytes unpacked, more than the cap of ${cap} per zip ` +
        `(a zip bomb or the wrong file)`,
    );
  }
  const written: string[] = [];
  for (const { e, dest } of jobs) {
    const dir = dest.slice(0, dest.lastIndexOf("/"));
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      throw new ZipError(
        zipPath,
        `${shown(e.name)}: cannot make ${shown(dir)} (${(err as Error).message})`,
      );
    }
    try {
      await unpackEntry(f, e, cdOffset, `${dest}.part`, zipPath, stats);
      await Deno.rename(`${dest}.part`, dest);
    } catch (err) {
      await Deno.remove(`${dest}.part`).catch(() => {});
      if (err instanceof ZipError) throw err;
      throw new ZipError(
        zipPath,
        `${shown(e.name)}: cannot write ${shown(dest)} (${(err as Error).message})`,
      );
    }
    written.push(dest);
  }
  return written;
}

/** One file of {@linkcode encodeZip}. */
export interface ZipInput {
  /** Its path inside the zip. */
  name: string;
  /** Its bytes (or text). */
  data: Uint8Array | string;
  /** Stored (method 0) instead of deflated. */
  store?: boolean;
  /** The size its headers declare, when not its true size (a zip bomb's lie). */
  declaredSize?: number;
}

/**
 * Builds a ZIP file (tests and `deno task fuzz` seeds): one local header and central entry per
 * input, deflated unless `store`, with a true CRC-32 and the size it is told to declare.
 */
export async function encodeZip(files: ZipInput[]): Promise<Uint8Array<ArrayBuffer>> {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [], centrals: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const data = (typeof f.data === "string" ? enc.encode(f.data) : f.data) as Uint8Array<
      ArrayBuffer
    >;
    const nameB = enc.encode(f.name);
    const comp = f.store ? data : new Uint8Array(
      await new Response(
        new Blob([data]).stream().pipeThrough(new CompressionStream("deflate-raw")),
      ).arrayBuffer(),
    );
    const crc = crc32(data), size = f.declaredSize ?? data.length, method = f.store ? 0 : 8;
    const local = new Uint8Array(30 + nameB.length + comp.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, LOC_SIG, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, comp.length, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, nameB.length, true);
    local.set(nameB, 30);
    local.set(comp, 30 + nameB.length);
    const central = new Uint8Array(46 + nameB.length);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, CEN_SIG, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, comp.length, true);
    cv.setUint32(24, size, true);
    cv.setUint16(28, nameB.length, true);
    cv.setUint32(42, offset, true);
    central.set(nameB, 46);
    locals.push(local);
    centrals.push(central);
    offset += local.length;
  }
  const cdSize = centrals.reduce((s, c) => s + c.length, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, EOCD_SIG, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let p = 0;
  for (const part of [...locals, ...centrals, eocd]) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}
