/**
 * Reading and writing the safetensors format (Hugging Face's weight files).
 *
 * Layout: 8-byte little-endian header length `n`, `n` bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {k: v}}`, then the data
 * section; offsets are relative to the start of the data section. The reader validates every
 * field against the file before it reads a byte of tensor data, so a truncated or hostile file
 * fails with an error naming the file and the tensor instead of yielding garbage weights (an
 * `InputError`, data/errors.ts), and so does a float tensor holding NaN or an infinity.
 * Float tensors (F32, F16, BF16) are returned as Float32Array; I32/I64 (e.g. `position_ids`)
 * as Int32Array/BigInt64Array. Assumes a little-endian host, as the format does.
 * @module
 */

import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from "../data/half.ts";
import { InputError, preview } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { writeFileAtomic } from "../data/output/mod.ts";

/** Element types this reader accepts. */
export type SafetensorsDtype = "F32" | "F16" | "BF16" | "I32" | "I64";

const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

/** One tensor as read: float dtypes decoded to float32, integer dtypes kept as integers. */
export interface SafetensorsTensor {
  /** The dtype stored in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
  /** Tensors in file order of their data offsets. */
  tensors: Map<string, SafetensorsTensor>;
}

/** Host tensors to write (float32; the same shape as {@linkcode HostWeights} entries). */
export type WritableTensors = Map<string, { shape: number[]; data: Float32Array }>;

/** Options for {@linkcode writeSafetensors}. */
export interface WriteSafetensorsOptions {
  /** Stored element type. Default "F32"; "F16" halves the file (rounding to nearest even). */
  dtype?: "F32" | "F16";
}

/** Largest header we accept (the Rust reference implementation uses 100 MB too). */
const MAX_HEADER = 100_000_000;

/**
 * Parses safetensors bytes. `where` (the file path) prefixes every error message.
 * Throws an `InputError` on a truncated file, a header length beyond the file, malformed JSON,
 * an unknown dtype, a shape whose size does not match its byte range, ranges outside the data
 * section or overlapping each other, or a float tensor with a NaN or infinite value.
 */
export function parseSafetensors(bytes: Uint8Array, where = "<bytes>"): SafetensorsFile {
  const fail = (msg: string): never => {
    throw new InputError(`${where}: ${msg}`, { file: where });
  };
  if (bytes.length < 8) {
    fail(
      `truncated: ${bytes.length} bytes, shorter than the 8-byte header length; ` +
        `the file is incomplete or not safetensors — download it again`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) {
    fail(
      `header length ${n} exceeds the file (${bytes.length} bytes): the file is truncated or ` +
        `not safetensors — download it again`,
    );
  }
  if (n > BigInt(MAX_HEADER)) fail(`header length ${n} is larger than ${MAX_HEADER} bytes`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(
      bytes.subarray(8, 8 + headerLen),
    );
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${(e as Error).message}); the file is corrupt`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(`header must be a JSON object, got ${preview(header)}`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: {
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    b: number;
    e: number;
  }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        fail(`__metadata__ must be an object of strings`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__.${k} must be a string, got ${typeof v}`);
        metadata[k] = v as string;
      }
      continue;
    }
    const t = `tensor "${name}"`;
    if (typeof raw !== "object" || raw === null) fail(`${t}: entry must be an object`);
    const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      fail(
        `${t}: unsupported dtype ${preview(dtype)} (supported: ${
          Object.keys(DTYPE_BYTES).join(", ")
        })`,
      );
    }
    if (
      !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)
    ) fail(`${t}: shape must be an array of non-negative integers, got ${preview(shape)}`);
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`${t}: data_offsets must be [begin, end] integers, got ${preview(offs)}`);
    }
    const [b, e] = offs as number[];
    if (b > e) fail(`${t}: data_offsets [${b}, ${e}] has begin after end`);
    if (e > dataLen) {
      fail(
        `${t}: data_offsets [${b}, ${e}] run past the data section (${dataLen} bytes): ` +
          `the file is truncated — download it again`,
      );
    }
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    const want = count * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (want !== e - b) {
      fail(
        `${t}: shape [${shape}] of ${dtype} needs ${want} bytes but data_offsets [${b}, ${e}] ` +
          `span ${e - b}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], b, e });
  }
  entries.sort((x, y) => x.b - y.b || x.e - y.e);
  for (let i = 1; i < entries.length; i++) {
    const p = entries[i - 1], c = entries[i];
    if (c.b < p.e) {
      fail(
        `tensors "${p.name}" [${p.b}, ${p.e}] and "${c.name}" [${c.b}, ${c.e}] overlap in the ` +
          `data section; the file is corrupt`,
      );
    }
  }
  const tensors = new Map<string, SafetensorsTensor>();
  for (const { name, dtype, shape, b, e } of entries) {
    // slice() copies into a fresh, aligned buffer: typed arrays need element alignment.
    const raw = bytes.slice(dataStart + b, dataStart + e);
    let data: SafetensorsTensor["data"];
    switch (dtype) {
      case "F32":
        data = new Float32Array(raw.buffer);
        break;
      case "F16":
        data = f16BitsToF32(new Uint16Array(raw.buffer));
        break;
      case "BF16":
        data = bf16BitsToF32(new Uint16Array(raw.buffer));
        break;
      case "I32":
        data = new Int32Array(raw.buffer);
        break;
      case "I64":
        data = new BigInt64Array(raw.buffer);
        break;
    }
    if (data instanceof Float32Array) {
      let bad = 0, first = -1;
      for (let i = 0; i < data.length; i++) {
        if (!Number.isFinite(data[i])) {
          bad++;
          if (first < 0) first = i;
        }
      }
      if (bad) {
        fail(
          `tensor "${name}" holds ${bad} NaN or infinite values of ${data.length} (the first at ` +
            `index ${first}: ${data[first]}); the weights are corrupt (a diverged run?)`,
        );
      }
    }
    tensors.set(name, { dtype, shape, data });
  }
  return { metadata, tensors };
}

/** Reads and validates a safetensors file (see {@linkcode parseSafetensors}). */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  regularFileExists(path, { what: "safetensors file" }); // never open a FIFO: it blocks
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new InputError(`${path}: no such file`, { file: path, cause: e });
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new InputError(`${path}: is a directory, not a file`, { file: path, cause: e });
    }
    throw e;
  }
  return parseSafetensors(bytes, path);
}

/**
 * Serialises tensors to safetensors bytes. Tensors are written sorted by name so the same
 * weights always give the same bytes; the header is space-padded to a multiple of 8 so the
 * data section is 8-byte aligned (as the reference writer does).
 */
export function encodeSafetensors(
  tensors: WritableTensors,
  metadata?: Record<string, string>,
  opts: WriteSafetensorsOptions = {},
): Uint8Array {
  const dtype = opts.dtype ?? "F32";
  const size = DTYPE_BYTES[dtype];
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const name of names) {
    const { shape, data } = tensors.get(name)!;
    const count = shape.reduce((a, d) => a * d, 1);
    if (count !== data.length) {
      throw new Error(
        `tensor "${name}": shape [${shape}] has ${count} elements but data has ${data.length}`,
      );
    }
    header[name] = { dtype, shape, data_offsets: [off, off + count * size] };
    off += count * size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const name of names) {
    const { data } = tensors.get(name)!;
    const enc = dtype === "F16" ? f32ToF16Bits(data) : data;
    out.set(new Uint8Array(enc.buffer, enc.byteOffset, enc.byteLength), pos);
    pos += enc.byteLength;
  }
  return out;
}

/**
 * Writes tensors as a safetensors file, atomically: the bytes go to a temporary file beside
 * `path` which is then renamed over it (data/output's {@linkcode writeFileAtomic}), so a crash
 * never leaves a half-written weights file, and a failed write is `PATH: cannot write it (why)`.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = await Deno.makeTempFile({ suffix: ".safetensors" });
 * await writeSafetensors(path, new Map([["w", { shape: [2], data: new Float32Array([1, 2]) }]]));
 * const { tensors } = await readSafetensors(path);
 * console.assert(tensors.get("w")!.data[1] === 2);
 * await Deno.remove(path);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: WritableTensors,
  metadata?: Record<string, string>,
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata, opts));
}
