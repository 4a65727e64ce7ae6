import assert from "node:assert/strict";
import {
  encodeSafetensors,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from "./safetensors.ts";

/** Builds a safetensors file from a raw header object and data bytes (for hostile inputs). */
function rawFile(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

Deno.test("safetensors: F32 round trip through a file, with metadata, atomic write", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/m.safetensors`;
    const w = new Map([
      ["b", { shape: [3], data: new Float32Array([0.5, -1, 3e-8]) }],
      ["a.weight", { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.25]) }],
      ["empty", { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    await writeSafetensors(path, w, { format: "pt" });
    const f = await readSafetensors(path);
    assert.deepEqual(f.metadata, { format: "pt" });
    assert.deepEqual([...f.tensors.keys()].sort(), ["a.weight", "b", "empty"]);
    for (const [k, v] of w) {
      const t = f.tensors.get(k)!;
      assert.equal(t.dtype, "F32");
      assert.deepEqual(t.shape, v.shape);
      assert.deepEqual(t.data, v.data);
    }
    const bytes = await Deno.readFile(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0, "header padded so the data section is 8-byte aligned");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["m.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: F16 output rounds to half and reads back as float32", () => {
  const data = new Float32Array([1, 0.1, -65504, 1e-8]);
  const f = parseSafetensors(
    encodeSafetensors(new Map([["x", { shape: [4], data }]]), undefined, { dtype: "F16" }),
  );
  const t = f.tensors.get("x")!;
  assert.equal(t.dtype, "F16");
  assert.deepEqual(Array.from(t.data as Float32Array), [1, 0.0999755859375, -65504, 0]);
});

Deno.test("safetensors: F16, BF16, I32 and I64 decode to hand values", () => {
  const f16 = new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001]); // 1, -2, 0.333251953125, 2^-24
  const bf16 = new Uint16Array([0x3f80, 0xbfc0, 0x4049]); // 1, -1.5, 3.140625
  const i32 = new Int32Array([7, -1]);
  const i64 = new BigInt64Array([0n, 1n, 511n]);
  const data = new Uint8Array(8 + 6 + 8 + 24);
  data.set(bytesOf(f16), 0);
  data.set(bytesOf(bf16), 8);
  data.set(bytesOf(i32), 14);
  data.set(bytesOf(i64), 22);
  const f = parseSafetensors(rawFile({
    h: { dtype: "F16", shape: [2, 2], data_offsets: [0, 8] },
    b: { dtype: "BF16", shape: [3], data_offsets: [8, 14] },
    i: { dtype: "I32", shape: [2], data_offsets: [14, 22] },
    position_ids: { dtype: "I64", shape: [1, 3], data_offsets: [22, 46] },
  }, data));
  assert.deepEqual(Array.from(f.tensors.get("h")!.data as Float32Array), [
    1,
    -2,
    0.333251953125,
    2 ** -24,
  ]);
  assert.deepEqual(Array.from(f.tensors.get("b")!.data as Float32Array), [1, -1.5, 3.140625]);
  assert.deepEqual(f.tensors.get("i")!.data, i32);
  assert.deepEqual(f.tensors.get("position_ids")!.data, i64);
  assert.deepEqual(f.tensors.get("position_ids")!.shape, [1, 3]);
});

Deno.test("safetensors: every corruption is an error naming the file and the tensor", async (t) => {
  const where = "/models/x/model.safetensors";
  const ok = { w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };
  const good = rawFile(ok, new Uint8Array(8));
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty file", new Uint8Array(3), /truncated: 3 bytes, shorter than the 8-byte header/],
    [
      "header length beyond the file",
      (() => {
        const b = good.slice();
        new DataView(b.buffer).setBigUint64(0, 10_000n, true);
        return b;
      })(),
      /header length 10000 exceeds the file \(\d+ bytes\)/,
    ],
    ["bad JSON", rawFile(null, new Uint8Array(8), '{"w": {"dtype": "F32",'), /not valid JSON/],
    ["header not an object", rawFile([1, 2], new Uint8Array(0)), /must be a JSON object/],
    [
      "truncated data",
      good.subarray(0, good.length - 3),
      /tensor "w": data_offsets \[0, 8\] run past the data section \(5 bytes\).*truncated/,
    ],
    [
      "offsets out of range",
      rawFile({ w: { dtype: "F32", shape: [2], data_offsets: [16, 24] } }, new Uint8Array(8)),
      /tensor "w": data_offsets \[16, 24\] run past the data section \(8 bytes\)/,
    ],
    [
      "begin after end",
      rawFile({ w: { dtype: "F32", shape: [0], data_offsets: [8, 4] } }, new Uint8Array(8)),
      /tensor "w": data_offsets \[8, 4\] has begin after end/,
    ],
    [
      "overlapping ranges",
      rawFile({
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      }, new Uint8Array(12)),
      /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
    ],
    [
      "shape/size mismatch",
      rawFile({ w: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor "w": shape \[3\] of F32 needs 12 bytes but data_offsets \[0, 8\] span 8/,
    ],
    [
      "unknown dtype",
      rawFile({ w: { dtype: "F8_E4M3", shape: [8], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor "w": unsupported dtype "F8_E4M3"/,
    ],
    [
      "bad shape",
      rawFile({ w: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /tensor "w": shape must be an array of non-negative integers/,
    ],
    [
      "bad metadata",
      rawFile({ __metadata__: { n: 3 }, ...ok }, new Uint8Array(8)),
      /__metadata__\.n must be a string/,
    ],
  ];
  for (const [name, bytes, re] of cases) {
    await t.step(name, () => {
      assert.throws(() => parseSafetensors(bytes, where), (e: Error) => {
        assert.ok(e.message.startsWith(where + ": "), e.message);
        assert.match(e.message, re);
        return true;
      });
    });
  }
  await t.step("the good file parses", () => {
    assert.deepEqual(parseSafetensors(good, where).tensors.get("w")!.shape, [2]);
  });
  await t.step("missing file names the path", async () => {
    await assert.rejects(readSafetensors("/nonexistent/m.safetensors"), /m\.safetensors: no such/);
  });
});

Deno.test("safetensors: writer refuses data that does not match its shape", () => {
  assert.throws(
    () => encodeSafetensors(new Map([["w", { shape: [2, 2], data: new Float32Array(3) }]])),
    /tensor "w": shape \[2,2\] has 4 elements but data has 3/,
  );
});
