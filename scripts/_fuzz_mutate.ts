/**
 * Seeded mutations of valid files for `deno task fuzz` (scripts/fuzz.ts): byte-level (truncation,
 * bit flips, insertions, deletions, splices of two inputs, invalid UTF-8, interesting integers),
 * line-level for text (duplicated, dropped or swapped lines, swapped fields, stray tabs and
 * carriage returns, odd numbers) and structural for JSON (wrong types, huge numbers, NaN and
 * Infinity literals, deep nesting, duplicated and prototype-named keys, swapped values), also
 * inside a safetensors header and a .npy header. Every mutation is named in the result, so a
 * failure says what was done to which seed.
 * @module
 */
import { Rng } from "../data/rng.ts";

/** How a format's files are built, which decides the mutations that make sense. */
export type MutationKind = "text" | "json" | "safetensors" | "npy" | "zip" | "binary";

/** A mutated input and the steps that made it. */
export interface Mutated {
  /** The input. */
  bytes: Uint8Array;
  /** Seed index, then one description per step. */
  steps: string[];
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes and byte strings that tend to break parsers. */
const INTERESTING_BYTES = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x5B, 0x7B];
const INVALID_UTF8: number[][] = [
  [0xFF],
  [0x80],
  [0xC3],
  [0xC0, 0x80],
  [0xE9],
  [0xED, 0xA0, 0x80],
  [0xF0, 0x9F, 0x98],
  [0xF5, 0x80, 0x80, 0x80],
];
/** Text that replaces a number or is inserted into a text file. */
const ODD_TOKENS = [
  "NaN",
  "Infinity",
  "-Infinity",
  "1e400",
  "-1e400",
  "0x10",
  "-0",
  "-1",
  "-0.5",
  "5.5",
  "4294967296",
  "9007199254740993",
  "1e-400",
  "123456789012345678901234567890",
  "1_000",
  "",
  " ",
  "\t",
  "\r",
  "\r\n",
  "\uFEFF",
  "\u0000",
  "\u2028",
  "😀",
  "constructor",
  "__proto__",
  "[CLS]",
  "##",
];
/** Little-endian integers written over binary headers (sizes, offsets, counts). */
const INTERESTING_INTS: bigint[] = [
  0n,
  1n,
  0x7Fn,
  0x80n,
  0xFFn,
  0x7FFFn,
  0xFFFFn,
  0x7FFFFFFFn,
  0xFFFFFFFFn,
  0x100000000n,
  0x7FFFFFFFFFFFFFFFn,
  0xFFFFFFFFFFFFFFFFn,
];

/** Inputs are cut to 4 MiB: repeating a 100 KB string 5,000 times tests memory, not parsers. */
export const MAX_INPUT = 1 << 22;

const pick = <T>(rng: Rng, a: readonly T[]): T => a[rng.nextU32() % a.length];
const below = (rng: Rng, n: number): number => (n <= 0 ? 0 : rng.nextU32() % n);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** A position, biased to the first `hot` bytes half the time (where binary headers live). */
function position(rng: Rng, n: number, hot: number): number {
  return rng.nextU32() % 2 === 0 ? below(rng, Math.min(n, hot) + 1) : below(rng, n + 1);
}

type ByteMutator = (
  rng: Rng,
  b: Uint8Array,
  other: Uint8Array,
  hot: number,
) => [Uint8Array, string];

const BYTE_MUTATORS: ByteMutator[] = [
  (rng, b, _o, hot) => {
    const at = position(rng, b.length, hot);
    return [b.slice(0, at), `truncate at ${at}`];
  },
  (rng, b, _o, hot) => {
    const out = b.slice();
    const k = 1 + below(rng, 8);
    const where: number[] = [];
    for (let i = 0; i < k && out.length; i++) {
      const at = Math.min(position(rng, out.length, hot), out.length - 1);
      out[at] ^= 1 << below(rng, 8);
      where.push(at);
    }
    return [out, `flip bits at ${where.join(",")}`];
  },
  (rng, b, _o, hot) => {
    const at = position(rng, b.length, hot);
    const n = 1 + below(rng, 16);
    const ins = Uint8Array.from(
      { length: n },
      () => rng.nextU32() % 2 ? pick(rng, INTERESTING_BYTES) : below(rng, 256),
    );
    return [concat(b.subarray(0, at), ins, b.subarray(at)), `insert ${n} bytes at ${at}`];
  },
  (rng, b, _o, hot) => {
    const at = position(rng, b.length, hot);
    const n = 1 + below(rng, rng.nextU32() % 4 ? 8 : Math.max(1, b.length >> 2));
    return [concat(b.subarray(0, at), b.subarray(at + n)), `delete ${n} bytes at ${at}`];
  },
  (rng, b, o) => {
    const i = below(rng, b.length + 1), j = below(rng, o.length + 1);
    return [concat(b.subarray(0, i), o.subarray(j)), `splice [0,${i}) + other [${j},end)`];
  },
  (rng, b, _o, hot) => {
    const from = below(rng, b.length), n = 1 + below(rng, 64);
    const at = position(rng, b.length, hot);
    return [
      concat(b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)),
      `copy [${from},+${n}) to ${at}`,
    ];
  },
  (rng, b, _o, hot) => {
    const out = b.slice();
    const at = position(rng, b.length, hot);
    const v = pick(rng, INTERESTING_INTS);
    const width = pick(rng, [1, 2, 4, 8]);
    for (let k = 0; k < width && at + k < out.length; k++) {
      out[at + k] = Number((v >> BigInt(8 * k)) & 0xFFn);
    }
    return [out, `write ${width}-byte 0x${v.toString(16)} at ${at}`];
  },
  (rng, b, _o, hot) => {
    const at = position(rng, b.length, hot);
    const bad = pick(rng, INVALID_UTF8);
    return [
      concat(b.subarray(0, at), Uint8Array.from(bad), b.subarray(at)),
      `insert invalid UTF-8 ${bad.map((x) => x.toString(16)).join(" ")} at ${at}`,
    ];
  },
];

type TextMutator = (rng: Rng, lines: string[]) => string;

function numberSpans(s: string): [number, number][] {
  return [...s.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)].map((m) => [m.index!, m[0].length]);
}

const TEXT_MUTATORS: TextMutator[] = [
  (rng, l) => {
    const i = below(rng, l.length);
    l.splice(i, 0, l[i] ?? "");
    return `duplicate line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    l.splice(i, 1);
    return `delete line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length), j = below(rng, l.length);
    [l[i], l[j]] = [l[j], l[i]];
    return `swap lines ${i + 1} and ${j + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const f = (l[i] ?? "").split("\t");
    const a = below(rng, f.length), c = below(rng, f.length);
    [f[a], f[c]] = [f[c], f[a]];
    l[i] = f.join("\t");
    return `swap fields ${a} and ${c} of line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const s = l[i] ?? "";
    const at = below(rng, s.length + 1);
    const t = pick(rng, ["\t", "\r", "\t\t", "\n", "\r\n"]);
    l[i] = s.slice(0, at) + t + s.slice(at);
    return `insert ${JSON.stringify(t)} in line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const s = l[i] ?? "";
    const tabs = [...s.matchAll(/\t/g)].map((m) => m.index!);
    if (!tabs.length) return "no tab to drop";
    const at = pick(rng, tabs);
    l[i] = s.slice(0, at) + s.slice(at + 1);
    return `drop a tab of line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const s = l[i] ?? "";
    const spans = numberSpans(s);
    const t = pick(rng, ODD_TOKENS);
    if (!spans.length) {
      const at = below(rng, s.length + 1);
      l[i] = s.slice(0, at) + t + s.slice(at);
      return `insert ${JSON.stringify(t)} in line ${i + 1}`;
    }
    const [at, n] = pick(rng, spans);
    l[i] = s.slice(0, at) + t + s.slice(at + n);
    return `number ${s.slice(at, at + n)} -> ${JSON.stringify(t)} in line ${i + 1}`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const f = (l[i] ?? "").split("\t");
    const k = below(rng, f.length);
    f[k] = pick(rng, ODD_TOKENS);
    l[i] = f.join("\t");
    return `field ${k} of line ${i + 1} -> ${JSON.stringify(f[k])}`;
  },
  (rng, l) => {
    const keep = below(rng, Math.min(l.length, 2) + 1);
    l.splice(keep);
    return `keep ${keep} lines`;
  },
  (rng, l) => {
    const i = below(rng, l.length);
    const s = l[i] ?? "";
    l[i] = s.repeat(Math.min(1 + below(rng, 50), Math.floor(MAX_INPUT / Math.max(1, s.length))));
    return `repeat line ${i + 1}`;
  },
];

/** A JSON value that may hold raw text (numbers JSON.stringify cannot write, broken literals)
 * and objects as entry lists (so a key can repeat). */
type J = null | boolean | number | string | Raw | J[] | Obj;
class Raw {
  constructor(readonly text: string) {}
}
class Obj {
  constructor(readonly entries: [string, J][]) {}
}

function toJ(v: unknown, depth = 0): J {
  if (depth > 200) return null;
  if (Array.isArray(v)) return v.map((x) => toJ(x, depth + 1));
  if (v && typeof v === "object") {
    return new Obj(Object.entries(v).map(([k, x]) => [k, toJ(x, depth + 1)]));
  }
  return v as J;
}

function writeJ(v: J, out: string[]): void {
  if (v instanceof Raw) out.push(v.text);
  else if (v instanceof Obj) {
    out.push("{");
    v.entries.forEach(([k, x], i) => {
      if (i) out.push(",");
      out.push(JSON.stringify(k), ":");
      writeJ(x, out);
    });
    out.push("}");
  } else if (Array.isArray(v)) {
    out.push("[");
    v.forEach((x, i) => {
      if (i) out.push(",");
      writeJ(x, out);
    });
    out.push("]");
  } else out.push(JSON.stringify(v));
}

/** Every container of `v` with a path, for picking one at random. */
function containers(v: J, path = "$", out: [J[] | Obj, string][] = []): [J[] | Obj, string][] {
  if (v instanceof Obj) {
    out.push([v, path]);
    for (const [k, x] of v.entries) containers(x, `${path}.${k}`, out);
  } else if (Array.isArray(v)) {
    out.push([v, path]);
    v.forEach((x, i) => containers(x, `${path}[${i}]`, out));
  }
  return out;
}

const WRONG: (() => J)[] = [
  () => null,
  () => true,
  () => 0,
  () => -1,
  () => 1.5,
  () => "",
  () => "x",
  () => [],
  () => new Obj([]),
  () => new Raw("1e400"),
  () => new Raw("-1e400"),
  () => new Raw("-0"),
  () => new Raw("NaN"),
  () => new Raw("Infinity"),
  () => new Raw("123456789012345678901234567890"),
  () => new Raw("9007199254740993"),
  () => 2 ** 53,
  () => -(2 ** 31),
  () => 4294967295,
  () => "\uFEFF",
  () => "a".repeat(100_000),
];

/** `leaf` nested `depth` deep, as raw text (so writing it needs no deep recursion). */
function nested(depth: number, leaf: J, obj: boolean): J {
  const inner: string[] = [];
  writeJ(leaf, inner);
  return new Raw(
    obj
      ? '{"a":'.repeat(depth) + inner.join("") + "}".repeat(depth)
      : "[".repeat(depth) + inner.join("") + "]".repeat(depth),
  );
}

type JsonMutator = (rng: Rng, c: J[] | Obj, path: string) => string;

/** Gets / sets the slot `i` of a container (entry value of an object). */
function slots(c: J[] | Obj): number {
  return c instanceof Obj ? c.entries.length : c.length;
}
function getSlot(c: J[] | Obj, i: number): J {
  return c instanceof Obj ? c.entries[i][1] : c[i];
}
function setSlot(c: J[] | Obj, i: number, v: J): void {
  if (c instanceof Obj) c.entries[i][1] = v;
  else c[i] = v;
}
function slotName(c: J[] | Obj, path: string, i: number): string {
  return c instanceof Obj ? `${path}.${c.entries[i]?.[0]}` : `${path}[${i}]`;
}

const JSON_MUTATORS: JsonMutator[] = [
  (rng, c, p) => {
    if (!slots(c)) return "empty container";
    const i = below(rng, slots(c));
    const v = pick(rng, WRONG)();
    setSlot(c, i, v);
    const shown = v instanceof Raw ? v.text : v instanceof Obj ? "{}" : JSON.stringify(v);
    return `${slotName(c, p, i)} = ${shown?.slice(0, 20)}`;
  },
  (rng, c, p) => {
    if (!slots(c)) return "empty container";
    const i = below(rng, slots(c));
    const depth = pick(rng, [64, 1_000, 100_000]);
    setSlot(c, i, nested(depth, getSlot(c, i), rng.nextU32() % 2 === 0));
    return `nest ${slotName(c, p, i)} ${depth} deep`;
  },
  (rng, c, p) => {
    if (!(c instanceof Obj) || !c.entries.length) return "no object";
    const i = below(rng, c.entries.length);
    const [k, v] = c.entries[i];
    c.entries.splice(below(rng, c.entries.length + 1), 0, [
      k,
      rng.nextU32() % 2 ? v : pick(rng, WRONG)(),
    ]);
    return `duplicate key ${p}.${k}`;
  },
  (rng, c, p) => {
    if (!slots(c)) return "empty container";
    const i = below(rng, slots(c));
    const name = slotName(c, p, i);
    if (c instanceof Obj) c.entries.splice(i, 1);
    else c.splice(i, 1);
    return `delete ${name}`;
  },
  (rng, c, p) => {
    const k = pick(rng, ["__proto__", "constructor", "toString", "", "hasOwnProperty", "x"]);
    const v = pick(rng, WRONG)();
    if (c instanceof Obj) c.entries.push([k, v]);
    else c.push(v);
    return `add ${c instanceof Obj ? `key ${JSON.stringify(k)} to` : "element to"} ${p}`;
  },
  (rng, c, p) => {
    if (slots(c) < 2) return "fewer than 2 slots";
    const i = below(rng, slots(c)), j = below(rng, slots(c));
    const a = getSlot(c, i);
    setSlot(c, i, getSlot(c, j));
    setSlot(c, j, a);
    return `swap ${slotName(c, p, i)} and ${slotName(c, p, j)}`;
  },
  (rng, c, p) => {
    if (!(c instanceof Obj) || !c.entries.length) return "no object";
    const i = below(rng, c.entries.length);
    const old = c.entries[i][0];
    c.entries[i][0] = pick(rng, [old.toUpperCase(), old + "_", "__proto__", "constructor", ""]);
    return `rename key ${p}.${old} to ${JSON.stringify(c.entries[i][0])}`;
  },
  (rng, c, p) => {
    if (!slots(c)) return "empty container";
    const i = below(rng, slots(c));
    const v = getSlot(c, i);
    const size: string[] = [];
    writeJ(v, size);
    // As many copies as fit in MAX_INPUT: a bigger file tests memory, not the parser.
    const fit = Math.max(2, Math.floor(MAX_INPUT / Math.max(1, size.join("").length)));
    const n = Math.min(pick(rng, [2, 100, 5_000]), fit);
    if (Array.isArray(c)) c.splice(i, 0, ...Array.from({ length: n - 1 }, () => v));
    else setSlot(c, i, Array.from({ length: n }, () => v));
    return `repeat ${slotName(c, p, i)} ${n} times`;
  },
];

function mutateJsonText(rng: Rng, text: string): [string, string] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [text, "not JSON (left as is)"];
  }
  const root = toJ(v);
  const cs = containers(root);
  if (!cs.length) {
    return [pick(rng, ["{}", "[]", "null", "1e400", ""]), "scalar replaced"];
  }
  const [c, path] = pick(rng, cs);
  const what = pick(rng, JSON_MUTATORS)(rng, c, path);
  const out: string[] = [];
  writeJ(root, out);
  return [out.join(""), what];
}

function mutateText(rng: Rng, b: Uint8Array): [Uint8Array, string] {
  const lines = dec.decode(b).split("\n");
  const what = pick(rng, TEXT_MUTATORS)(rng, lines);
  return [enc.encode(lines.join("\n")), what];
}

function mutateSafetensorsHeader(rng: Rng, b: Uint8Array): [Uint8Array, string] {
  if (b.length < 8) return [b, "too short for a header"];
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  if (n > b.length - 8) return [b, "header length past the end"];
  const [json, what] = mutateJsonText(rng, dec.decode(b.subarray(8, 8 + n)));
  const h = enc.encode(json);
  const len = new Uint8Array(8);
  // Usually the right length; sometimes the old one, so the header and data disagree.
  const keep = rng.nextU32() % 8 === 0;
  new DataView(len.buffer).setBigUint64(0, BigInt(keep ? n : h.length), true);
  return [concat(len, h, b.subarray(8 + n)), `header: ${what}${keep ? " (old length)" : ""}`];
}

function mutateSafetensorsData(rng: Rng, b: Uint8Array): [Uint8Array, string] {
  if (b.length < 8) return [b, "too short for a header"];
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const start = 8 + n;
  if (start + 4 > b.length) return [b, "no data"];
  const out = b.slice();
  const at = start + 2 * below(rng, (b.length - start) >> 1);
  const bits = pick(rng, [0x7FC00000, 0x7F800000, 0xFF800000, 0x7C00, 0xFC00, 0x7E00]);
  const dv = new DataView(out.buffer);
  if (bits > 0xFFFF && at + 4 <= out.length) dv.setUint32(at, bits, true);
  else dv.setUint16(at, bits & 0xFFFF, true);
  return [out, `data at ${at} = NaN/Inf bits 0x${bits.toString(16)}`];
}

function mutateNpyHeader(rng: Rng, b: Uint8Array): [Uint8Array, string] {
  if (b.length < 10) return [b, "too short for a header"];
  const hlen = new DataView(b.buffer, b.byteOffset).getUint16(8, true);
  const header = dec.decode(b.subarray(10, 10 + hlen));
  const lines = [header];
  const what = pick(rng, TEXT_MUTATORS.slice(6, 8))(rng, lines); // numbers and fields
  const h = enc.encode(lines.join(""));
  const out = concat(b.subarray(0, 10), h, b.subarray(10 + hlen));
  if (rng.nextU32() % 4) new DataView(out.buffer).setUint16(8, Math.min(h.length, 0xFFFF), true);
  return [out, `header: ${what}`];
}

/** Header fields of a zip's records worth lying in: [offset in the record, width]. */
const ZIP_FIELDS: Record<number, [string, number, number][]> = {
  0x06054b50: [
    ["entries", 8, 2],
    ["entries on disk", 10, 2],
    ["cd size", 12, 4],
    ["cd offset", 16, 4],
    ["comment length", 20, 2],
  ],
  0x02014b50: [
    ["flags", 8, 2],
    ["method", 10, 2],
    ["crc", 16, 4],
    ["compressed size", 20, 4],
    ["size", 24, 4],
    ["name length", 28, 2],
    ["extra length", 30, 2],
    ["local offset", 42, 4],
  ],
  0x04034b50: [["method", 8, 2], ["name length", 26, 2], ["extra length", 28, 2]],
};

/**
 * A zip's record header field (end record, central entry, local header) overwritten: a small
 * declared size (a bomb), an odd offset or count, an interesting integer.
 */
function mutateZipHeader(rng: Rng, b: Uint8Array): [Uint8Array, string] {
  const at: [number, number][] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i + 4 <= b.length; i++) {
    const sig = dv.getUint32(i, true);
    if (sig in ZIP_FIELDS) at.push([i, sig]);
  }
  if (!at.length) return [b, "no zip record"];
  const [pos, sig] = pick(rng, at);
  const [name, off, width] = pick(rng, ZIP_FIELDS[sig]);
  const out = b.slice();
  const small = [0, 1, 7, 1000, b.length, pos, pos + 1, b.length - 22];
  const v = rng.nextU32() % 2
    ? BigInt(pick(rng, small))
    : pick(rng, INTERESTING_INTS) & (width === 2 ? 0xFFFFn : 0xFFFFFFFFn);
  for (let k = 0; k < width && pos + off + k < out.length; k++) {
    out[pos + off + k] = Number((v >> BigInt(8 * k)) & 0xFFn);
  }
  return [out, `zip record 0x${sig.toString(16)} at ${pos}: ${name} = ${v}`];
}

/**
 * One mutated input: a seed (chosen by `rng`) with 1–4 mutations that suit `kind` applied in
 * turn; `hot` is the length of the region byte mutations favour (binary headers).
 */
export function mutate(
  rng: Rng,
  seeds: readonly Uint8Array[],
  kind: MutationKind,
  hot = 256,
): Mutated {
  const s = below(rng, seeds.length);
  let b = seeds[s];
  const steps = [`seed ${s}`];
  const n = 1 + (rng.nextU32() % 8 === 0 ? below(rng, 4) : below(rng, 2));
  for (let k = 0; k < n; k++) {
    const other = seeds[below(rng, seeds.length)];
    const structural = rng.nextU32() % 3 !== 0;
    let what: string;
    try {
      if (structural && (kind === "json" || kind === "text")) {
        if (kind === "json") {
          const [t, w] = mutateJsonText(rng, dec.decode(b));
          [b, what] = [enc.encode(t), w];
        } else [b, what] = mutateText(rng, b);
      } else if (structural && kind === "safetensors") {
        [b, what] = rng.nextU32() % 4
          ? mutateSafetensorsHeader(rng, b)
          : mutateSafetensorsData(rng, b);
      } else if (structural && kind === "npy") {
        [b, what] = mutateNpyHeader(rng, b);
      } else if (structural && kind === "zip") {
        [b, what] = mutateZipHeader(rng, b);
      } else {
        [b, what] = pick(rng, BYTE_MUTATORS)(rng, b, other, hot);
      }
    } catch (e) {
      // A step that would build a string past V8's limit (or any other trouble of the
      // mutator's own) is skipped: the fuzzer tests the readers, not itself.
      what = `step skipped (${(e as Error).name})`;
    }
    if (b.length > MAX_INPUT) {
      b = b.slice(0, MAX_INPUT);
      what += ` (cut to ${MAX_INPUT} bytes)`;
    }
    steps.push(what);
  }
  return { bytes: b, steps };
}
