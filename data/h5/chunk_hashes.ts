/**
 * Per-chunk hashes of a store's rows, so that bytes changed on disk or in transit are found when
 * they are read, not later as a NaN loss. HDF5's own Fletcher-32 filter cannot do it here:
 * h5wasm 0.10.3 does not throw on a bad checksum (it prints a diagnostic and returns the bytes).
 *
 * The dataset `chunk_hashes` [ceil(N / R), 6] int64 holds, for each block of R rows (its
 * attribute `rows`; R = the store's `chunkRows`) and each of the datasets {@linkcode HASHED}
 * in that order, the first 8 bytes (little-endian int64) of the sha256 of those rows' bytes as
 * stored. A block's hashes are written when its last row is written (before the flush that
 * claims it in `rows_complete`), so every block of complete rows has them; the writer
 * ({@linkcode ChunkHasher}) streams rows into the hash as they come, re-reading a block's rows
 * from the file after a resume in its middle.
 *
 * sha256 through node:crypto (OpenSSL): about 520 MB/s on the 2-core development machine under
 * load, 8 MiB hashed in 1 MiB blocks (crypto.subtle: 390 MB/s, md5 230 MB/s) — well above what a
 * capture writes or a head reads.
 * Checked by data/h5_store_errors_test.ts (bytes overwritten in a store and in a shard).
 * @module
 */
import { createHash, type Hash } from "node:crypto";

/** The name of the dataset of per-chunk hashes. */
export const CHUNK_HASHES = "chunk_hashes";

/** The datasets hashed, in the order of a `chunk_hashes` row. */
export const HASHED = [
  "embeds",
  "input_ids",
  "token_type_ids",
  "attention_mask",
  "labels",
  "idx",
] as const;

/** One of {@linkcode HASHED}. */
export type HashedName = typeof HASHED[number];

/** Rows of every hashed dataset, as stored (typed arrays, row-major). */
export type RawRows = Record<HashedName, ArrayBufferView>;

/** The bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The first 8 bytes of a sha256 digest as the int64 `chunk_hashes` stores. */
function digest64(h: Hash): bigint {
  const d = h.digest();
  return new DataView(d.buffer, d.byteOffset, 8).getBigInt64(0, true);
}

/** The hashes of one block of rows: one int64 per dataset of {@linkcode HASHED}. */
export function hashRows(rows: RawRows, from = 0, count?: number): BigInt64Array {
  const out = new BigInt64Array(HASHED.length);
  HASHED.forEach((name, k) => {
    const b = bytesOf(rows[name]);
    const h = createHash("sha256");
    if (count === undefined) h.update(b);
    else {
      // Rows [from, from + count) of a block holding `total` rows.
      const per = b.length / rowsIn(rows);
      h.update(b.subarray(from * per, (from + count) * per));
    }
    out[k] = digest64(h);
  });
  return out;
}

/** Rows in a block (from `idx`, one value per row). */
export function rowsIn(rows: RawRows): number {
  return rows.idx.byteLength / 8;
}

/**
 * The writer's side: takes rows in order, in blocks of any size, and gives each hash block's
 * hashes when its last row has come (the last block may be shorter: it ends at `n`).
 */
export class ChunkHasher {
  readonly rowsPerHash: number;
  readonly n: number;
  #at: number;
  #hashes: Hash[] | null = null;

  /** A hasher whose next row is `at`, which must start a block (see {@linkcode resume}). */
  constructor(rowsPerHash: number, n: number, at = 0) {
    this.rowsPerHash = rowsPerHash;
    this.n = n;
    this.#at = at;
  }

  /**
   * A hasher to continue at row `at`: the rows of its block before `at` (read back from the
   * file by `read`, as stored) are hashed first.
   */
  static resume(
    rowsPerHash: number,
    n: number,
    at: number,
    read: (start: number, count: number) => RawRows,
  ): ChunkHasher {
    const start = at - (at % rowsPerHash);
    const h = new ChunkHasher(rowsPerHash, n, start);
    if (at > start) h.add(start, read(start, at - start));
    return h;
  }

  /**
   * Adds rows `start`.. (the next rows); returns `[block, hashes]` for each block they end.
   */
  add(start: number, rows: RawRows): [number, BigInt64Array][] {
    if (start !== this.#at) {
      throw new Error(`ChunkHasher: rows from ${start} given, but the next is ${this.#at}`);
    }
    const count = rowsIn(rows);
    const done: [number, BigInt64Array][] = [];
    const per = HASHED.map((name) => rows[name].byteLength / count);
    let i = 0;
    while (i < count) {
      const block = Math.floor(this.#at / this.rowsPerHash);
      const end = Math.min((block + 1) * this.rowsPerHash, this.n);
      const take = Math.min(count - i, end - this.#at);
      this.#hashes ??= HASHED.map(() => createHash("sha256"));
      HASHED.forEach((name, k) =>
        this.#hashes![k].update(bytesOf(rows[name]).subarray(i * per[k], (i + take) * per[k]))
      );
      i += take;
      this.#at += take;
      if (this.#at === end) {
        done.push([block, BigInt64Array.from(this.#hashes, digest64)]);
        this.#hashes = null;
      }
    }
    return done;
  }
}
