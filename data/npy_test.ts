import assert from "node:assert/strict";
import { decodeNpy, encodeNpy } from "./npy.ts";
import { InputError } from "./errors.ts";

/** A .npy file with `header` (padded as NumPy pads it) and `body` bytes. */
function npy(header: string, body = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(header + " ".repeat(63 - ((10 + header.length) % 64)) + "\n");
  const out = new Uint8Array(10 + h.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, h.length, true);
  out.set(h, 10);
  out.set(body, 10 + h.length);
  return out;
}

Deno.test("decodeNpy: round trip, and malformed files are InputErrors naming the file", () => {
  const { data, shape } = decodeNpy(encodeNpy(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]));
  assert.deepEqual(shape, [2, 3]);
  assert.deepEqual([...data], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(decodeNpy(encodeNpy(new Int32Array(0), [0, 7])).shape, [0, 7]);
  const bad: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /x.npy: not a .npy file/],
    // Found by `deno task fuzz`: a zero dimension beside a huge one passed as an empty array.
    [
      npy(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 123456789012345678901234567890), }",
      ),
      /x.npy: shape \(0, 123456789012345678901234567890\) is not a tuple of sizes/,
    ],
    [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }"), /not a tuple of sizes/],
    [npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), /not a tuple of sizes/],
    [
      npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)),
      /<f8 is not supported/,
    ],
    [
      npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", new Uint8Array(4)),
      /unsupported .npy header/,
    ],
    [
      npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new Uint8Array(8)),
      /8 data bytes for shape \[3\]/,
    ],
    [
      encodeNpy(new Float32Array(4), [4]).slice(0, 40),
      /header of 118 bytes runs past the end|data bytes/,
    ],
  ];
  for (const [bytes, re] of bad) {
    assert.throws(() => decodeNpy(bytes, "x.npy"), (e: Error) => {
      assert.ok(e instanceof InputError, String(e));
      assert.match(e.message, re);
      return true;
    });
  }
});
