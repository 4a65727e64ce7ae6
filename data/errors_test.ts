import assert from "node:assert/strict";
import { decodeUtf8, findUtf8Fault, InputError, plainRecord, preview } from "./errors.ts";
import { Rng } from "./rng.ts";

Deno.test("findUtf8Fault agrees with the WHATWG decoder on random and tricky bytes", () => {
  const rng = new Rng(3, "utf8");
  const fatal = new TextDecoder("utf-8", { fatal: true });
  const cases: Uint8Array[] = [
    new TextEncoder().encode("ascii é 日本 😀"),
    Uint8Array.from([0xC0, 0x80]), // overlong
    Uint8Array.from([0xE0, 0x9F, 0xBF]), // overlong
    Uint8Array.from([0xED, 0xA0, 0x80]), // surrogate
    Uint8Array.from([0xF4, 0x90, 0x80, 0x80]), // past U+10FFFF
    Uint8Array.from([0x61, 0xF0, 0x9F, 0x98]), // cut off at the end
  ];
  for (let i = 0; i < 3000; i++) {
    const n = rng.nextU32() % 12;
    // Mostly valid-looking lead/continuation bytes, so faults sit at every position.
    cases.push(Uint8Array.from({ length: n }, () => {
      const r = rng.nextU32();
      return r % 3 === 0 ? 0x80 | (r >>> 8) % 64 : r % 3 === 1 ? 0xC0 | (r >>> 8) % 64 : r % 128;
    }));
  }
  for (const b of cases) {
    let ok = true;
    try {
      fatal.decode(b);
    } catch {
      ok = false;
    }
    const f = findUtf8Fault(b);
    assert.equal(f === null, ok, `[${b}]`);
    if (f) {
      // Everything before the fault decodes; the sequence starting at the fault does not.
      fatal.decode(b.subarray(0, f.offset));
      assert.throws(() => fatal.decode(b.subarray(f.offset, f.offset + 4)), `[${b}] @${f.offset}`);
    }
  }
  assert.deepEqual(findUtf8Fault(new TextEncoder().encode("ab\ncd\n\u00e9")), null);
  assert.deepEqual(findUtf8Fault(Uint8Array.from([0x61, 0x0A, 0x62, 0x63, 0xE9, 0x0A])), {
    offset: 4,
    line: 2,
    column: 3,
    byte: 0xE9,
  });
  assert.throws(() => decodeUtf8(Uint8Array.from([0x0A, 0xFF]), "f.txt"), (e: Error) => {
    assert.ok(e instanceof InputError);
    assert.equal(e.message, "f.txt:2: not UTF-8 (byte 0xFF at column 1); save the file as UTF-8");
    assert.equal((e as InputError).line, 2);
    return true;
  });
  assert.equal(decodeUtf8(Uint8Array.from([0xEF, 0xBB, 0xBF, 0x61]), "bom.txt"), "a");
});

Deno.test("preview: short, never recursing past depth 3, numbers as written", () => {
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  assert.equal(preview(deep), "[[[[…]]]]");
  assert.equal(preview({ a: [1, { b: 2 }], c: "x" }), '{"a":[1,{"b":2}],"c":"x"}');
  assert.equal(preview([Infinity, -Infinity, NaN, -0, 10n]), "[Infinity,-Infinity,NaN,0,10]");
  assert.equal(preview(undefined), "undefined");
  assert.equal(preview("y".repeat(500)).length, 80);
  const r = plainRecord(JSON.parse('{"__proto__": 1, "a": 2}'));
  assert.equal(r.__proto__, 1);
  assert.equal(r.toString, undefined);
  assert.deepEqual(Object.keys(r), ["__proto__", "a"]);
});
