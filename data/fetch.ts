/**
 * Downloads the canonical GLUE and SQuAD 2.0 files into the GLUE distribution layout
 * (`DIR/SST-2/dev.tsv`, ..., `DIR/squad/dev-v2.0.json`): the logic of `deno task fetch-data`,
 * given each task's {@linkcode DataSource} (tasks/fetch.ts maps task names to them).
 *
 * GLUE comes as the zips of the official download script (dl.fbaipublicfiles.com), unpacked by
 * data/zip.ts (streaming to disk, each entry stopped at its declared size, a cap per zip, CRC-32
 * checked) into `DIR/.downloads/` first and moved into place only once every entry checked out.
 * MRPC is rebuilt from the MSR paraphrase files and `dev_ids.tsv` exactly as that script does,
 * and the MSR files stay beside them: `MRPC/msr_paraphrase_test.txt` is the labelled test set the
 * seed evaluated MSR on (MRPC's `msr_test` split). Downloads go through `data/download.ts`
 * (resumable, atomic); a task whose files are all present is skipped, so rerunning resumes.
 *
 * Checksums are always on, mirror or not: SQuAD's sizes and sha256 are pinned
 * ({@linkcode SQUAD_FILES}); the GLUE zips and the MSR files publish none, so the sha256 and size
 * of their first download that unpacks (or formats) cleanly are recorded in
 * `DIR/.downloads/hashes.json` ({@linkcode HASHES_FILE}) and every later download is checked
 * against them. A cached zip in `DIR/.downloads/` that fails to unpack (truncated, a CRC or
 * directory error, a zip bomb, files missing) is deleted, with a message naming it, so the next
 * run downloads it again.
 *
 * The base URL can point at a mirror (`--base-url` or `BERTVISION_DATA_URL`), laid out as
 * `BASE/glue/data/<zip>`, `BASE/glue/data/mrpc_dev_ids.tsv`,
 * `BASE/senteval/senteval_data/msr_paraphrase_{train,test}.txt` and `BASE/squad/<file>`; it must
 * serve the same bytes as the canonical hosts.
 * @module
 */

import { ChecksumError, downloadFile, sha256File, SizeError } from "./download.ts";
import { InputError } from "./errors.ts";
import { regularFileExists } from "./files.ts";
import { writeJsonAtomic } from "./output/atomic.ts";
import { extractZip, ZipError } from "./zip.ts";

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

/** Options of {@linkcode fetchSources}. */
export interface FetchOptions {
  /** Mirror base URL; default the canonical hosts (or `BERTVISION_DATA_URL` in the CLI). */
  baseUrl?: string;
  /** No progress bars or messages. */
  silent?: boolean;
  /** Most bytes one zip may unpack to (data/zip.ts `ZIP_MAX_BYTES` by default). */
  maxZipBytes?: number;
}

/**
 * The file under `OUT/.downloads/` that records the sha256 and size of each file no host
 * publishes a hash for, at its first clean download: `{"glue/data/SST-2.zip": {"sha256", "size",
 * "url", "recorded"}, ...}` (keys are the paths of the mirror layout).
 */
export const HASHES_FILE = "hashes.json";

/** One recorded download in {@linkcode HASHES_FILE}. */
export interface RecordedHash {
  /** Lower-case hex sha256 of the file. */
  sha256: string;
  /** Its size in bytes. */
  size: number;
  /** Where it was first downloaded from. */
  url: string;
  /** When (ISO 8601). */
  recorded: string;
}

/** Reads {@linkcode HASHES_FILE} (none yet: empty); a malformed one is an error naming it. */
async function readHashes(path: string): Promise<Map<string, RecordedHash>> {
  if (!regularFileExists(path, { what: "record of download hashes" })) return new Map();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Map();
    throw new InputError(`${path}: cannot read it (${(e as Error).message})`, { file: path });
  }
  const bad = (why: string) =>
    new InputError(
      `${path}: ${why}; it records the sha256 of the first downloads of the GLUE and MSR files: ` +
        `fix it, or delete it to record them again at the next downloads`,
      { file: path },
    );
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`not JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad("not a JSON object");
  const out = new Map<string, RecordedHash>();
  for (const [k, r] of Object.entries(v)) {
    const x = r as Partial<RecordedHash> | null;
    if (
      typeof x !== "object" || x === null || typeof x.sha256 !== "string" ||
      !/^[0-9a-f]{64}$/.test(x.sha256) || !Number.isSafeInteger(x.size) || x.size! < 0
    ) {
      throw bad(`entry ${JSON.stringify(k)} is not {"sha256": 64 hex digits, "size": bytes}`);
    }
    out.set(k, {
      sha256: x.sha256,
      size: x.size!,
      url: String(x.url ?? ""),
      recorded: String(x.recorded ?? ""),
    });
  }
  return out;
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
  const log = (m: string) => {
    if (!opts.silent) console.error(m);
  };
  const written: string[] = [];
  const tmp = `${out}/.downloads`;
  await Deno.mkdir(tmp, { recursive: true });
  const hashesPath = `${tmp}/${HASHES_FILE}`;
  const hashes = await readHashes(hashesPath);
  const mirror = opts.baseUrl
    ? ` A mirror (--base-url ${opts.baseUrl}) must serve the same bytes as the canonical host: ` +
      `fix the mirror or drop --base-url.`
    : "";

  /** Downloads `key` (a path of the mirror layout) to `dest`, checked against its hash. */
  const get = async (url: string, dest: string, key: string, pin?: RecordedHash) => {
    const rec = pin ?? hashes.get(key);
    try {
      await downloadFile(url, dest, {
        silent: opts.silent,
        expectedSize: rec?.size,
        sha256: rec?.sha256,
      });
    } catch (e) {
      if (!(e instanceof ChecksumError || e instanceof SizeError)) throw e;
      const why = pin
        ? `The expected size and hash are the published ones.${mirror}`
        : `The expected hash was recorded at the first download of ${key} (${rec!.recorded}, ` +
          `from ${rec!.url}) in ${hashesPath}.${mirror} If the file really changed upstream, ` +
          `delete its entry there and rerun.`;
      throw new InputError(`${e.message}. ${why}`, { file: dest, cause: e });
    }
  };
  /** Records the hash of a file downloaded from `url` that checked out, unless known. */
  const record = async (key: string, path: string, url: string) => {
    if (hashes.has(key)) return;
    hashes.set(key, {
      sha256: await sha256File(path),
      size: (await Deno.stat(path)).size,
      url,
      recorded: new Date().toISOString(),
    });
    await writeJsonAtomic(hashesPath, Object.fromEntries(hashes));
  };

  for (const { name: n, source: src } of sources) {
    if (src.type === "none") {
      log(`${n}: no download; put its files under ${out}/ yourself`);
    } else if (src.type === "pinned") {
      for (const [file, pin] of Object.entries(src.files)) {
        const dest = `${out}/${src.dir}/${file}`;
        await Deno.mkdir(`${out}/${src.dir}`, { recursive: true });
        await get(urls[src.host](file), dest, `${src.host}/${file}`, {
          ...pin,
          url: "",
          recorded: "",
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
      const inputs = [
        ["msr_paraphrase_train.txt", "senteval/senteval_data/msr_paraphrase_train.txt"],
        ["msr_paraphrase_test.txt", "senteval/senteval_data/msr_paraphrase_test.txt"],
        ["dev_ids.tsv", "glue/data/mrpc_dev_ids.tsv"],
      ] as const;
      for (const [f, key] of inputs) await get(urls.mrpc(f), `${dir}/${f}`, key);
      let files;
      try {
        files = formatMrpc(
          await Deno.readTextFile(`${dir}/msr_paraphrase_train.txt`),
          await Deno.readTextFile(`${dir}/msr_paraphrase_test.txt`),
          await Deno.readTextFile(`${dir}/dev_ids.tsv`),
        );
      } catch (e) {
        // A bad download must not be reused by every rerun: discard the three.
        for (const [f] of inputs) await Deno.remove(`${dir}/${f}`).catch(() => {});
        throw new InputError(
          `${dir}/${(e as Error).message}; ${inputs.map(([f]) => f).join(", ")} were deleted ` +
            `from ${dir}: rerun fetch-data to download them again`,
          { file: dir, cause: e },
        );
      }
      for (const [f, key] of inputs) await record(key, `${dir}/${f}`, urls.mrpc(f));
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
      const key = `glue/data/${src.zip}`;
      await get(urls.glueZip(src.zip), zipPath, key);
      written.push(...await unpackInto(zipPath, out, src.dir, want, opts.maxZipBytes));
      await record(key, zipPath, urls.glueZip(src.zip));
      await Deno.remove(zipPath);
    }
  }
  await Deno.remove(tmp).catch(() => {});
  return written;
}

/**
 * Unpacks `zipPath` into a folder beside it, checks that it holds `want` (paths under `out`),
 * then moves its files into `out/dir`. A zip that fails (any {@linkcode ZipError}, or files
 * missing) is deleted with a message naming it, so the next run downloads it again.
 */
async function unpackInto(
  zipPath: string,
  out: string,
  dir: string,
  want: string[],
  maxBytes?: number,
): Promise<string[]> {
  const stage = `${zipPath}.unpacked`;
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  const discard = async (what: string, cause?: unknown): Promise<never> => {
    await Deno.remove(stage, { recursive: true }).catch(() => {});
    await Deno.remove(zipPath).catch(() => {});
    throw new InputError(
      `${zipPath}: ${what}; the file was deleted: rerun fetch-data to download it again`,
      { file: zipPath, cause },
    );
  };
  let got: string[] = [];
  try {
    got = await extractZip(zipPath, stage, dir, { maxBytes });
  } catch (e) {
    if (!(e instanceof ZipError)) {
      await Deno.remove(stage, { recursive: true }).catch(() => {});
      throw e;
    }
    await discard(e.what, e);
  }
  const rel = got.map((g) => g.slice(stage.length + 1));
  const missing = want.map((w) => w.slice(out.length + 1)).filter((w) => !rel.includes(w));
  if (missing.length) await discard(`the zip has no ${missing.join(", ")}`);
  for (const r of rel) {
    const dest = `${out}/${r}`;
    await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
    await Deno.rename(`${stage}/${r}`, dest);
  }
  await Deno.remove(stage, { recursive: true }).catch(() => {});
  return want;
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
