/**
 * NumPy `.npy` files (version 1.0, little-endian float32/int32): how predictions and logits are
 * saved, so `numpy.load` reads them directly.
 * @module
 */

import { InputError } from "./errors.ts";

/** Encodes a float32 or int32 array with its shape as `.npy` bytes. */
export function encodeNpy(data: Float32Array | Int32Array, shape: readonly number[]): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw new RangeError(`npy: ${data.length} values for shape [${shape}]`);
  const descr = data instanceof Float32Array ? "<f4" : "<i4";
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(", ");
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  // Magic (6) + version (2) + length (2) + header + '\n' must be a multiple of 64.
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/**
 * Decodes `.npy` bytes written by {@linkcode encodeNpy} (or NumPy, for <f4 / <i4 C order);
 * anything else is an {@linkcode InputError} naming `where` (the file).
 */
export function decodeNpy(bytes: Uint8Array, where = "npy"): {
  data: Float32Array | Int32Array;
  shape: number[];
} {
  const fail = (msg: string): never => {
    throw new InputError(`${where}: ${msg}`, { file: where });
  };
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) {
    fail("not a .npy file (bad magic)");
  }
  const hlen = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
  if (10 + hlen > bytes.length) {
    fail(`header of ${hlen} bytes runs past the end of the file (${bytes.length} bytes)`);
  }
  const header = new TextDecoder("latin1").decode(bytes.subarray(10, 10 + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined || /'fortran_order':\s*True/.test(header)) {
    fail(`unsupported .npy header ${JSON.stringify(header.trim().slice(0, 120))}`);
  }
  const dims = shapeText!.split(",").map((s) => s.trim());
  if (dims.at(-1) === "") dims.pop(); // (3,) has a trailing comma
  if (!dims.every((d) => /^\d+$/.test(d) && Number.isSafeInteger(Number(d)))) {
    fail(`shape (${shapeText}) is not a tuple of sizes`);
  }
  const shape = dims.map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(10 + hlen);
  if (!Number.isSafeInteger(n) || body.byteLength !== n * 4) {
    fail(`${body.byteLength} data bytes for shape [${shape}] of ${descr}`);
  }
  if (descr === "<f4") return { data: new Float32Array(body.buffer), shape };
  if (descr === "<i4") return { data: new Int32Array(body.buffer), shape };
  return fail(`dtype ${descr} is not supported (float32 or int32 only)`);
}
