/**
 * Downloads the canonical GLUE and SQuAD 2.0 files into the GLUE distribution layout
 * (`DIR/SST-2/dev.tsv`, ..., `DIR/squad/dev-v2.0.json`): the logic of `deno task fetch-data`,
 * given each task's {@linkcode DataSource} (tasks/fetch.ts maps task names to them).
 *
 * GLUE comes as the zips of the official download script (dl.fbaipublicfiles.com), unpacked by a
 * small ZIP reader (stored and deflate entries, `DecompressionStream("deflate-raw")`, CRC-32
 * checked); MRPC is rebuilt from the MSR paraphrase files and `dev_ids.tsv` exactly as that script
 * does, and the MSR files stay beside them: `MRPC/msr_paraphrase_test.txt` is the labelled test
 * set the seed evaluated MSR on (MRPC's `msr_test` split). Downloads go through `data/download.ts` (resumable, atomic); a task whose files are all
 * present is skipped, so rerunning resumes. SQuAD's sizes and sha256 are pinned (the GLUE zips
 * publish none).
 *
 * The base URL can point at a mirror (`--base-url` or `BERTVISION_DATA_URL`), laid out as
 * `BASE/glue/data/<zip>`, `BASE/glue/data/mrpc_dev_ids.tsv`,
 * `BASE/senteval/senteval_data/msr_paraphrase_{train,test}.txt` and `BASE/squad/<file>`.
 * @module
 */

import { downloadFile } from "./download.ts";

/**
 * Where one task's files come from and where they go under the data root; each task module
 * declares its own (tasks/*.ts `source`), so this module knows no task names.
 * - `glue-zip`: a zip of the GLUE download script, unpacked into `dir`, which must then hold
 *   every name in `files`.
 * - `msr-paraphrase`: MRPC, rebuilt from the MSR paraphrase files as that script does; the
 *   downloaded `msr_paraphrase_{train,test}.txt` are kept (the labelled test file is a split).
 * - `pinned`: files downloaded as they are into `dir`, each with its size and sha256
 *   (SQuAD 2.0; `host` picks the URL scheme of {@linkcode DataUrls}).
 * - `none`: no download (a task whose files the user provides).
 */
export type DataSource =
  | { type: "glue-zip"; zip: string; dir: string; files: string[] }
  | { type: "msr-paraphrase"; dir: string }
  | {
    type: "pinned";
    host: "squad";
    dir: string;
    files: Record<string, { size: number; sha256: string }>;
  }
  | { type: "none" };

/** Pinned sizes and sha256 of the SQuAD 2.0 files (rajpurkar.github.io). */
export const SQUAD_FILES: Record<string, { size: number; sha256: string }> = {
  "train-v2.0.json": {
    size: 42123633,
    sha256: "68dcfbb971bd3e96d5b46c7177b16c1a4e7d4bdef19fb204502738552dede002",
  },
  "dev-v2.0.json": {
    size: 4370528,
    sha256: "80a5225e94905956a6446d296ca1093975c4d3b3260f1d6c8f68bc2ab77182d8",
  },
};

/** Where each file comes from. */
export interface DataUrls {
  glueZip(zip: string): string;
  mrpc(file: "msr_paraphrase_train.txt" | "msr_paraphrase_test.txt" | "dev_ids.tsv"): string;
  squad(file: string): string;
}

/** The canonical URLs, or a mirror at `base` (layout in the module doc). */
export function dataUrls(base?: string): DataUrls {
  if (base) {
    const b = base.replace(/\/+$/, "");
    return {
      glueZip: (zip) => `${b}/glue/data/${zip}`,
      mrpc: (f) =>
        f === "dev_ids.tsv"
          ? `${b}/glue/data/mrpc_dev_ids.tsv`
          : `${b}/senteval/senteval_data/${f}`,
      squad: (f) => `${b}/squad/${f}`,
    };
  }
  return {
    glueZip: (zip) => `https://dl.fbaipublicfiles.com/glue/data/${zip}`,
    mrpc: (f) =>
      f === "dev_ids.tsv"
        ? "https://firebasestorage.googleapis.com/v0/b/mtl-sentence-representations.appspot.com/o/data%2Fmrpc_dev_ids.tsv?alt=media&token=ec5c0836-31d5-48f4-b431-7480817f1adc"
        : `https://dl.fbaipublicfiles.com/senteval/senteval_data/${f}`,
    squad: (f) => `https://rajpurkar.github.io/SQuAD-explorer/dataset/${f}`,
  };
}

/** Options of {@linkcode fetchData}. */
export interface FetchOptions {
  /** Mirror base URL; default the canonical hosts (or `BERTVISION_DATA_URL` in the CLI). */
  baseUrl?: string;
  /** Check SQuAD sizes/sha256 (default: only for the canonical hosts). */
  verify?: boolean;
  /** No progress bars or messages. */
  silent?: boolean;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Fetches the files of each named source into `outDir`. Returns the paths written; sources whose
 * files are all present are skipped, so rerunning resumes.
 */
export async function fetchSources(
  sources: { name: string; source: DataSource }[],
  outDir: string,
  opts: FetchOptions = {},
): Promise<string[]> {
  const out = outDir.replace(/\/+$/, "");
  const urls = dataUrls(opts.baseUrl);
  const verify = opts.verify ?? !opts.baseUrl;
  const log = (m: string) => {
    if (!opts.silent) console.error(m);
  };
  const written: string[] = [];
  const tmp = `${out}/.downloads`;
  await Deno.mkdir(tmp, { recursive: true });
  for (const { name: n, source: src } of sources) {
    if (src.type === "none") {
      log(`${n}: no download; put its files under ${out}/ yourself`);
    } else if (src.type === "pinned") {
      for (const [file, pin] of Object.entries(src.files)) {
        const dest = `${out}/${src.dir}/${file}`;
        await Deno.mkdir(`${out}/${src.dir}`, { recursive: true });
        await downloadFile(urls[src.host](file), dest, {
          expectedSize: verify ? pin.size : undefined,
          sha256: verify ? pin.sha256 : undefined,
          silent: opts.silent,
        });
        written.push(dest);
      }
    } else if (src.type === "msr-paraphrase") {
      const dir = `${out}/${src.dir}`;
      // The labelled MSR test file is kept: the seed's MSR "dev" set (split msr_test).
      const want = [
        "train.tsv",
        "dev.tsv",
        "test.tsv",
        "msr_paraphrase_test.txt",
        "msr_paraphrase_train.txt", // split msr_train: the seed's MSR training set
      ]
        .map((f) => `${dir}/${f}`);
      if ((await Promise.all(want.map(exists))).every(Boolean)) {
        log(`${n}: ${dir} complete, skipped`);
        continue;
      }
      await Deno.mkdir(dir, { recursive: true });
      for (
        const f of ["msr_paraphrase_train.txt", "msr_paraphrase_test.txt", "dev_ids.tsv"] as const
      ) {
        await downloadFile(urls.mrpc(f), `${dir}/${f}`, { silent: opts.silent });
      }
      const files = formatMrpc(
        await Deno.readTextFile(`${dir}/msr_paraphrase_train.txt`),
        await Deno.readTextFile(`${dir}/msr_paraphrase_test.txt`),
        await Deno.readTextFile(`${dir}/dev_ids.tsv`),
      );
      for (const [f, text] of Object.entries(files)) {
        await Deno.writeTextFile(`${dir}/${f}.part`, text);
        await Deno.rename(`${dir}/${f}.part`, `${dir}/${f}`);
      }
      written.push(...want);
    } else {
      const want = src.files.map((f) => `${out}/${src.dir}/${f}`);
      if ((await Promise.all(want.map(exists))).every(Boolean)) {
        log(`${n}: ${out}/${src.dir} complete, skipped`);
        continue;
      }
      const zipPath = `${tmp}/${src.zip}`;
      await downloadFile(urls.glueZip(src.zip), zipPath, { silent: opts.silent });
      const got = await extractZip(zipPath, out, src.dir);
      const missing = want.filter((w) => !got.includes(w));
      if (missing.length) {
        throw new Error(
          `${zipPath}: the zip has no ${missing.map((m) => m.slice(out.length + 1)).join(", ")}`,
        );
      }
      await Deno.remove(zipPath);
      written.push(...want);
    }
  }
  await Deno.remove(tmp).catch(() => {});
  return written;
}

/**
 * MRPC train/dev/test TSVs from the MSR paraphrase files, as GLUE's download script builds them
 * (the header, with its byte-order mark, is copied; dev = the pairs listed in dev_ids.tsv).
 */
export function formatMrpc(
  trainTxt: string,
  testTxt: string,
  devIdsTsv: string,
): Record<"train.tsv" | "dev.tsv" | "test.tsv", string> {
  const rows = (t: string) => t.split(/\r?\n/);
  const devIds = new Set(
    rows(devIdsTsv).filter((r) => r.trim()).map((r) => r.trim().split("\t").join("\t")),
  );
  const [header, ...train] = rows(trainTxt);
  let tr = header.replace(/\r$/, "") + "\n", dev = tr;
  train.forEach((row, i) => {
    if (row === "" && i === train.length - 1) return;
    const f = row.trim().split("\t");
    if (f.length !== 5) throw new Error(`msr_paraphrase_train.txt:${i + 2}: expected 5 columns`);
    const line = f.join("\t") + "\n";
    if (devIds.has(`${f[1]}\t${f[2]}`)) dev += line;
    else tr += line;
  });
  const [, ...test] = rows(testTxt);
  let te = "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n";
  let idx = 0;
  test.forEach((row, i) => {
    if (row === "" && i === test.length - 1) return;
    const f = row.trim().split("\t");
    if (f.length !== 5) throw new Error(`msr_paraphrase_test.txt:${i + 2}: expected 5 columns`);
    te += `${idx++}\t${f.slice(1).join("\t")}\n`;
  });
  return { "train.tsv": tr, "dev.tsv": dev, "test.tsv": te };
}

/** One entry of a ZIP central directory. */
export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

/** Reads the central directory of a ZIP file held in `bytes` (no ZIP64). */
export function zipEntries(bytes: Uint8Array, file = "zip"): ZipEntry[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a ZIP file (no end of central directory)`);
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  const dec = new TextDecoder();
  const entries: ZipEntry[] = [];
  for (let k = 0; k < count; k++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new Error(`${file}: corrupt central directory`);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const e: ZipEntry = {
      method: dv.getUint16(p + 10, true),
      crc32: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localOffset: dv.getUint32(p + 42, true),
      name: dec.decode(bytes.subarray(p + 46, p + 46 + nameLen)),
    };
    if (e.size === 0xFFFFFFFF || e.compressedSize === 0xFFFFFFFF) {
      throw new Error(`${file}: ${e.name} is a ZIP64 entry (not supported)`);
    }
    entries.push(e);
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
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

/** The uncompressed bytes of one entry (stored or deflate), CRC-checked. */
export async function readZipEntry(
  bytes: Uint8Array,
  e: ZipEntry,
  file = "zip",
): Promise<Uint8Array> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(e.localOffset, true) !== 0x04034b50) {
    throw new Error(`${file}: ${e.name}: bad local header`);
  }
  const start = e.localOffset + 30 + dv.getUint16(e.localOffset + 26, true) +
    dv.getUint16(e.localOffset + 28, true);
  const raw = bytes.subarray(start, start + e.compressedSize);
  let data: Uint8Array;
  if (e.method === 0) data = raw;
  else if (e.method === 8) {
    const stream = new Blob([raw as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
      new DecompressionStream("deflate-raw"),
    );
    try {
      data = new Uint8Array(await new Response(stream).arrayBuffer());
    } catch (err) {
      throw new Error(`${file}: ${e.name}: ${(err as Error).message} (corrupt download?)`);
    }
  } else throw new Error(`${file}: ${e.name}: compression method ${e.method} not supported`);
  if (data.length !== e.size || crc32(data) !== e.crc32) {
    throw new Error(`${file}: ${e.name}: size or CRC-32 mismatch (corrupt download?)`);
  }
  return data;
}

/**
 * Unpacks every file of a ZIP under `outDir`, its top folder renamed to `topDir` (QNLIv2.zip
 * may hold `QNLIv2/`); `__MACOSX/` and unsafe paths are skipped. Returns the paths written.
 */
export async function extractZip(
  zipPath: string,
  outDir: string,
  topDir: string,
): Promise<string[]> {
  const bytes = await Deno.readFile(zipPath);
  const written: string[] = [];
  for (const e of zipEntries(bytes, zipPath)) {
    if (e.name.endsWith("/") || e.name.startsWith("__MACOSX/")) continue;
    const parts = e.name.split("/");
    if (parts.some((p) => p === ".." || p === "") || e.name.startsWith("/")) continue;
    if (parts.length > 1) parts[0] = topDir;
    else parts.unshift(topDir);
    const dest = `${outDir}/${parts.join("/")}`;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(`${dest}.part`, await readZipEntry(bytes, e, zipPath));
    await Deno.rename(`${dest}.part`, dest);
    written.push(dest);
  }
  return written;
}
