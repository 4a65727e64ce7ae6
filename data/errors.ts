/**
 * The project's error for bad input, and the small helpers every reader shares to raise it.
 *
 * {@linkcode InputError} means "the input is wrong, not the program": a file that is missing,
 * unreadable, not UTF-8 or malformed, or a flag value that names no such thing. Its message
 * always names the file (with `:line` for text files, or the JSON path of the entry), so the CLI
 * (scripts/_cli.ts `runMain`) prints it as one line without a stack trace. Readers throw nothing
 * else for malformed input: `deno task fuzz` (scripts/fuzz.ts) feeds every reader mutated files
 * and fails on any other exception.
 * @module
 */

/** Where in its file an {@linkcode InputError} is, when known. */
export interface InputErrorOptions {
  /** The file (or directory) at fault. */
  file?: string;
  /** 1-based line of a text file. */
  line?: number;
  /** JSON path of the offending entry, e.g. `data[0].paragraphs[2].qas[1].id`. */
  jsonPath?: string;
  /** The underlying error (an OS error, a JSON syntax error, ...). */
  cause?: unknown;
}

/**
 * Bad input: a file, its content, or a flag value. The message names the file (and line or JSON
 * path when known); the fields repeat them for programs.
 *
 * `name` stays `"Error"`, so `String(e)` reads `Error: <file>: ...` as before this class existed.
 *
 * @example
 * ```ts
 * import { InputError } from "./errors.ts";
 * const e = new InputError("dev.tsv:3: expected 2 columns, got 1", { file: "dev.tsv", line: 3 });
 * console.assert(e instanceof Error && e.line === 3 && e.message.startsWith("dev.tsv:3"));
 * ```
 */
export class InputError extends Error {
  /** The file (or directory) at fault, when known. */
  readonly file?: string;
  /** 1-based line, when known. */
  readonly line?: number;
  /** JSON path of the entry, when known. */
  readonly jsonPath?: string;

  /** `message` names the file (and line or entry); `opts` repeats them as fields. */
  constructor(message: string, opts: InputErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (opts.file !== undefined) this.file = opts.file;
    if (opts.line !== undefined) this.line = opts.line;
    if (opts.jsonPath !== undefined) this.jsonPath = opts.jsonPath;
  }
}

/** Position of the first byte that is not valid UTF-8, or null when all of `bytes` is. */
export interface Utf8Fault {
  /** Byte offset of the first invalid byte. */
  offset: number;
  /** 1-based line (counting `\n`) it is on. */
  line: number;
  /** 1-based byte column within that line. */
  column: number;
  /** The byte itself. */
  byte: number;
}

/**
 * Finds the first byte of `bytes` that starts an invalid UTF-8 sequence (null when there is
 * none): a stray continuation byte, a lead byte whose sequence is cut short or overlong, a
 * surrogate or a code point past U+10FFFF, as the WHATWG decoder judges them.
 */
export function findUtf8Fault(bytes: Uint8Array): Utf8Fault | null {
  const n = bytes.length;
  let offset = -1;
  for (let i = 0; i < n && offset < 0;) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let need = 0, lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) need = 1;
    else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b === 0xE0) lo = 0xA0; // overlong
      if (b === 0xED) hi = 0x9F; // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b === 0xF0) lo = 0x90; // overlong
      if (b === 0xF4) hi = 0x8F; // past U+10FFFF
    } else {
      offset = i;
      break;
    }
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (i + k >= n || c < (k === 1 ? lo : 0x80) || c > (k === 1 ? hi : 0xBF)) {
        offset = i;
        break;
      }
    }
    i += need + 1;
  }
  if (offset < 0) return null;
  let line = 1, lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (bytes[i] === 0x0A) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1, byte: bytes[offset] };
}

/**
 * Decodes `bytes` as UTF-8 (a leading byte-order mark is dropped); throws an
 * {@linkcode InputError} naming `file:line` and the byte when they are not UTF-8, rather than
 * turning them into U+FFFD.
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const f = findUtf8Fault(bytes) ?? { line: 1, column: 1, byte: bytes[0] ?? 0 };
    throw new InputError(
      `${file}:${f.line}: not UTF-8 (byte 0x${
        f.byte.toString(16).toUpperCase().padStart(2, "0")
      } at column ${f.column}); save the file as UTF-8`,
      { file, line: f.line },
    );
  }
}

// Whole-file reads live in data/files.ts (which refuses FIFOs and devices before opening);
// re-exported here for the readers that import them with InputError.
export { readInput, type ReadInputOptions, readInputText } from "./files.ts";

/**
 * A short, safe rendering of a value from an untrusted JSON file for an error message: at most
 * `max` characters, nesting shown to depth 3 (never recursing deeper, so a hostile file nested
 * a million levels deep cannot overflow the stack as `JSON.stringify` would).
 *
 * @example
 * ```ts
 * import { preview } from "./errors.ts";
 * console.assert(preview([1, [2, [3, [4]]]]) === "[1,[2,[3,[…]]]]");
 * console.assert(preview("x".repeat(100), 10) === '"xxxxxxxx…');
 * ```
 */
export function preview(value: unknown, max = 80): string {
  const out: string[] = [];
  let len = 0;
  const put = (s: string) => {
    out.push(s);
    len += s.length;
  };
  const walk = (v: unknown, depth: number): void => {
    if (len > max) return;
    if (Array.isArray(v)) {
      if (depth >= 3) return put("[…]");
      put("[");
      for (let i = 0; i < v.length && len <= max; i++) {
        if (i) put(",");
        walk(v[i], depth + 1);
      }
      put("]");
    } else if (typeof v === "object" && v !== null) {
      if (depth >= 3) return put("{…}");
      put("{");
      let first = true;
      for (const k in v) {
        if (!Object.hasOwn(v, k) || len > max) continue;
        if (!first) put(",");
        first = false;
        put(`${JSON.stringify(k)}:`);
        walk((v as Record<string, unknown>)[k], depth + 1);
      }
      put("}");
    } else if (typeof v === "bigint" || typeof v === "number") {
      put(String(v)); // Infinity and NaN as such (JSON.stringify writes null)
    } else {
      put(JSON.stringify(v) ?? String(v));
    }
  };
  walk(value, 0);
  const s = out.join("");
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}

/**
 * A JSON object from an untrusted file as a prototype-free record, so that keys such as
 * `__proto__`, `constructor` or `toString` are plain data: absent keys read as undefined and
 * never as Object.prototype's members.
 */
export function plainRecord(v: Record<string, unknown>): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(v)) out[k] = v[k];
  return out;
}
