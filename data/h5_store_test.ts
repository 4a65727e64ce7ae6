import assert from "node:assert/strict";
import h5wasm from "h5wasm/node";
import { H5Reader, type H5Rows, H5Store, type H5StoreSettings, statePath } from "./h5_store.ts";
import { makeRows } from "./_h5_store_child.ts";
import { f32ToF16Bits, roundToHalf } from "./half.ts";

const ATTRS = { model_id: "tiny", weights_hash: "abcd1234", task: "RTE", split: "train" };
const FULL: H5StoreSettings = {
  n: 10,
  layers: 3,
  tokens: 6,
  hidden: 4,
  layout: "full",
  dtype: "f32",
  chunkRows: 3,
  attrs: ATTRS,
};

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes all rows of `s` in batches of `b`, closing at the end. */
async function writeAll(
  path: string,
  s: H5StoreSettings,
  b: number,
  rows: (start: number, count: number) => H5Rows = (start, count) => makeRows(s, start, count),
): Promise<void> {
  const st = await H5Store.create(path, s, { flushEveryRows: b });
  for (let i = 0; i < s.n; i += b) await st.writeRows(i, rows(i, Math.min(b, s.n - i)));
  await st.close();
}

/** Every dataset of two stores equal, row for row. */
async function assertSameStore(a: string, b: string): Promise<void> {
  const ra = await H5Reader.open(a), rb = await H5Reader.open(b);
  try {
    assert.deepEqual(ra.shape, rb.shape);
    assert.deepEqual(ra.readRows(0, ra.shape.n), rb.readRows(0, rb.shape.n));
  } finally {
    ra.close();
    rb.close();
  }
}

/** Two HDF5 files hold the same datasets (raw stored values, dtypes, shapes, attributes). */
async function assertSameDatasets(a: string, b: string, what: string): Promise<void> {
  await h5wasm.ready;
  const fa = new h5wasm.File(a, "r"), fb = new h5wasm.File(b, "r");
  try {
    const attrs = (x: { attrs: Record<string, { value: unknown }> }) =>
      Object.fromEntries(Object.entries(x.attrs).map(([k, v]) => [k, v.value]));
    assert.deepEqual(attrs(fa), attrs(fb), `${what}: file attributes`);
    assert.deepEqual(fa.keys().sort(), fb.keys().sort(), `${what}: datasets`);
    for (const name of fa.keys()) {
      const da = fa.get(name) as InstanceType<typeof h5wasm.Dataset>;
      const db = fb.get(name) as InstanceType<typeof h5wasm.Dataset>;
      assert.equal(da.dtype, db.dtype, `${what}: ${name} dtype`);
      assert.deepEqual(da.shape, db.shape, `${what}: ${name} shape`);
      assert.deepEqual(attrs(da), attrs(db), `${what}: ${name} attributes`);
      assert.deepEqual(da.value, db.value, `${what}: ${name} values`);
    }
  } finally {
    fa.close();
    fb.close();
  }
}

Deno.test("h5 store: f32 full layout round trip — shapes, dtypes, attrs, exact values", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/train.h5`;
    await writeAll(path, FULL, 4);
    const r = await H5Reader.open(path);
    try {
      assert.deepEqual(r.shape, { n: 10, layers: 3, tokens: 6, hidden: 4, layout: "full" });
      assert.equal(r.dtype, "f32");
      assert.equal(r.rowsComplete, 10);
      assert.equal(r.attrs.model_id, "tiny");
      assert.equal(r.attrs.weights_hash, "abcd1234");
      assert.equal(r.attrs.task, "RTE");
      assert.equal(r.attrs.split, "train");
      assert.equal(r.attrs.layout, "full");
      assert.equal(r.attrs.dtype, "f32");
      assert.equal(r.attrs.max_seq_length, 6);
      assert.equal(r.attrs.rows_complete, 10);
      const want = makeRows(FULL, 2, 5);
      const got = r.readRows(2, 5);
      assert.deepEqual(got.embeds, want.embeds);
      assert.deepEqual(got.inputIds, want.inputIds);
      assert.deepEqual(got.tokenTypeIds, want.tokenTypeIds);
      assert.deepEqual(got.attentionMask, want.attentionMask);
      assert.deepEqual(Array.from(got.labels), want.labels);
      assert.deepEqual(Array.from(got.idx), want.idx);
      // A shuffled batch (with a repeat) comes back in the order asked for.
      const idx = [7, 1, 2, 9, 1];
      const batch = r.readIndices(idx);
      idx.forEach((row, k) => {
        const one = r.readRows(row, 1);
        assert.deepEqual(batch.embeds.subarray(k * 72, (k + 1) * 72), one.embeds);
        assert.equal(batch.idx[k], 1000 + row);
      });
      assert.throws(() => r.readRows(8, 3), /rows 8\.\.11 requested but only 10 of 10/);
    } finally {
      r.close();
    }
    // What h5py sees: the dataset types on disk.
    await h5wasm.ready;
    const f = new h5wasm.File(path, "r");
    const ds = (n: string) => f.get(n) as InstanceType<typeof h5wasm.Dataset>;
    assert.deepEqual(ds("embeds").shape, [10, 3, 6, 4]);
    assert.equal(ds("embeds").dtype, "<f");
    assert.deepEqual(ds("input_ids").shape, [10, 6]);
    assert.equal(ds("input_ids").dtype, "<i");
    assert.equal(ds("labels").dtype, "<q");
    assert.equal(ds("idx").dtype, "<q");
    f.close();
  });
});

Deno.test("h5 store: f16 cls layout decodes to float16-rounded input; float32 labels [N, 2]", async () => {
  await withDir(async (dir) => {
    const s: H5StoreSettings = {
      n: 7,
      layers: 4,
      tokens: 5,
      hidden: 8,
      layout: "cls",
      dtype: "f16",
      labelType: "float32",
      labelWidth: 2,
      chunkRows: 2,
    };
    const path = `${dir}/dev.h5`;
    await writeAll(path, s, 3);
    const r = await H5Reader.open(path);
    try {
      assert.deepEqual(r.shape, { n: 7, layers: 4, tokens: 5, hidden: 8, layout: "cls" });
      assert.equal(r.dtype, "f16");
      assert.equal(r.labelWidth, 2);
      const got = r.readRows(0, 7);
      const want = makeRows(s, 0, 7);
      const rounded = Float32Array.from(want.embeds, roundToHalf);
      assert.deepEqual(got.embeds, rounded);
      assert.ok(got.embeds.some((x, i) => x !== want.embeds[i]), "f16 actually rounds");
      assert.ok(got.labels instanceof Float32Array);
      assert.deepEqual(Array.from(got.labels), want.labels);
    } finally {
      r.close();
    }
    await h5wasm.ready;
    const f = new h5wasm.File(path, "r");
    const e = f.get("embeds") as InstanceType<typeof h5wasm.Dataset>;
    assert.equal(e.dtype, "<H");
    assert.equal(e.attrs.encoding.value, "float16-bits");
    assert.deepEqual((f.get("labels") as InstanceType<typeof h5wasm.Dataset>).shape, [7, 2]);
    f.close();
  });
});

Deno.test("h5 store: f16 embeds given as half bits write the same file as float32 values", async () => {
  await withDir(async (dir) => {
    for (const layout of ["full", "cls"] as const) {
      const s: H5StoreSettings = { ...FULL, layout, dtype: "f16", n: 7, chunkRows: 2 };
      const rows = (start: number, count: number) => {
        const r = makeRows(s, start, count);
        // Values the rounding must get right: ties, overflow, subnormals, ±0, ±Inf, NaN.
        r.embeds.set(
          [65520, -65519.99, 2 ** -25, 3 * 2 ** -25, -0, Infinity, -Infinity, NaN, 1 + 2 ** -11],
          0,
        );
        return r;
      };
      const viaF32 = `${dir}/${layout}_f32.h5`, viaBits = `${dir}/${layout}_bits.h5`;
      await writeAll(viaF32, s, 3, rows);
      // Half bits from the host's conversion (kernels/half_test.ts shows the GPU's is identical);
      // one batch as float32 values to show the two forms mix within a store.
      await writeAll(viaBits, s, 3, (start, count) => {
        const r = rows(start, count);
        return start === 3 ? r : { ...r, embeds: f32ToF16Bits(r.embeds as Float32Array) };
      });
      // The files' bytes differ only where HDF5 stamps object times (seconds) and checksums, so
      // compare what they hold: every dataset's stored values (embeds as raw uint16 bits, NaN
      // patterns included), dtype, shape and attributes, and the file's attributes.
      await assertSameDatasets(viaBits, viaF32, layout);
      await assertSameStore(viaBits, viaF32);
    }
    // An f32 store refuses half bits rather than storing them as numbers.
    const st = await H5Store.create(`${dir}/f32.h5`, FULL);
    const r = makeRows(FULL, 0, 1);
    await assert.rejects(
      st.writeRows(0, { ...r, embeds: f32ToF16Bits(r.embeds as Float32Array) }),
      /half bits \(Uint16Array\) to a f32 store/,
    );
    await st.close();
  });
});

Deno.test("h5 store: dropped handle (not closed) resumes to a file identical to an uninterrupted run", async () => {
  await withDir(async (dir) => {
    await writeAll(`${dir}/ref.h5`, FULL, 3);
    const path = `${dir}/run.h5`;
    const a = await H5Store.create(path, FULL, { flushEveryRows: 3 });
    await a.writeRows(0, makeRows(FULL, 0, 3));
    await a.writeRows(3, makeRows(FULL, 3, 3));
    await a.writeRows(6, makeRows(FULL, 6, 2)); // unflushed: must be redone
    // `a` is dropped without close().
    const b = await H5Store.openForResume(path, FULL, { flushEveryRows: 3 });
    assert.equal(b.rowsDone, 6);
    for (let i = b.rowsDone; i < FULL.n; i += 3) {
      await b.writeRows(i, makeRows(FULL, i, Math.min(3, FULL.n - i)));
    }
    await b.close();
    await assertSameStore(path, `${dir}/ref.h5`);
    const state = JSON.parse(await Deno.readTextFile(statePath(path)));
    assert.equal(state.rowsDone, 10);
    assert.equal(state.complete, true);
  });
});

Deno.test("h5 store: a writer killed with SIGKILL resumes to an identical file", async () => {
  await withDir(async (dir) => {
    const s: H5StoreSettings = { ...FULL, dtype: "f16", n: 12, chunkRows: 2 };
    await writeAll(`${dir}/ref.h5`, s, 4);
    const path = `${dir}/killed.h5`;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        new URL("./_h5_store_child.ts", import.meta.url).pathname,
        path,
        JSON.stringify(s),
        "2",
        "4",
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.getReader();
    let out = "";
    while (!out.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    child.kill("SIGKILL");
    reader.releaseLock();
    await child.stdout.cancel();
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    assert.ok(out.includes("ready"), "child reached its kill point");

    const st = await H5Store.openForResume(path, s, { flushEveryRows: 4 });
    assert.equal(st.rowsDone, 8, "the sidecar claims only flushed rows");
    const partial = await H5Reader.open(path);
    assert.equal(partial.rowsComplete, 8);
    assert.throws(() => partial.readRows(6, 4), /only 8 of 12 are complete .*rerun it to finish/);
    partial.close();
    for (let i = st.rowsDone; i < s.n; i += 4) await st.writeRows(i, makeRows(s, i, 4));
    await st.close();
    await assertSameStore(path, `${dir}/ref.h5`);
  });
});

Deno.test("h5 store: other settings, a non-HDF5 file and misuse are clear errors", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.h5`;
    const st = await H5Store.create(path, FULL);
    await st.close();
    await assert.rejects(
      H5Store.openForResume(path, { ...FULL, dtype: "f16", attrs: { ...ATTRS, split: "dev" } }),
      (e: Error) => {
        assert.match(e.message, new RegExp(`^${path} was made with other settings \\(`));
        assert.match(e.message, /dtype: "f32" → "f16"/);
        assert.match(e.message, /attrs\.split: "train" → "dev"/);
        assert.match(e.message, /choose another --out, or --overwrite to replace it/);
        return true;
      },
    );
    await assert.rejects(H5Store.create(path, FULL), /exists already/);
    await assert.rejects(H5Store.openOrCreate(path, { ...FULL, n: 11 }), /n: 10 → 11/);
    // --overwrite replaces a store made with other settings: a new, empty one.
    const replaced = await H5Store.openOrCreate(path, { ...FULL, n: 11 }, { overwrite: true });
    assert.equal(replaced.rowsDone, 0);
    await replaced.close();
    const r = await H5Reader.open(path);
    assert.equal(r.shape.n, 11);
    r.close();

    const junk = `${dir}/junk.h5`;
    await Deno.writeTextFile(junk, "this is not hdf5 at all, just text");
    await assert.rejects(H5Reader.open(junk), new RegExp(`${junk}: not an HDF5 file`));
    await Deno.writeTextFile(
      statePath(junk),
      JSON.stringify({
        format: "bertvision-h5-state/1",
        settings: FULL,
        rowsDone: 0,
      }),
    );
    await assert.rejects(
      H5Store.openForResume(junk, FULL),
      new RegExp(`${junk}: not an HDF5 file`),
    );
    await assert.rejects(H5Reader.open(`${dir}/none.h5`), /none\.h5: no such file/);
    await Deno.writeFile(`${dir}/orphan.h5`, new Uint8Array(10));
    await assert.rejects(H5Store.openForResume(`${dir}/orphan.h5`, FULL), /has no .*state\.json/);

    const w = await H5Store.create(`${dir}/b.h5`, FULL);
    await assert.rejects(w.writeRows(3, makeRows(FULL, 3, 1)), /out of order; .* next is 0/);
    await assert.rejects(
      w.writeRows(0, { ...makeRows(FULL, 0, 2), inputIds: new Int32Array(5) }),
      /inputIds has 5 values, expected 12/,
    );
    await assert.rejects(
      w.writeRows(0, { ...makeRows(FULL, 0, 1), embeds: new Float32Array(70) }),
      /embeds has 70 values, not a positive multiple of 72/,
    );
    await w.close();
  });
});

Deno.test("h5 store: completion is explicit — a copy without its sidecar is incomplete and resumes from the file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/partial.h5`, copy = `${dir}/copy.h5`;
    const st = await H5Store.create(path, FULL, { flushEveryRows: 1 });
    await st.writeRows(0, makeRows(FULL, 0, 3)); // flushed: rows_complete = 3 in the file
    // A killed capture's file, copied without its sidecar.
    await Deno.copyFile(path, copy);
    await st.close(); // (this one is left incomplete: 3 of 10)
    const r = await H5Reader.open(copy);
    try {
      assert.equal(r.complete, false);
      assert.equal(r.rowsComplete, 3);
      assert.equal(r.fingerprint, undefined);
      assert.throws(() => r.readRows(0, 10), /only 3 of 10 are complete/);
      assert.deepEqual([...r.readRows(0, 3).idx], Array.from(makeRows(FULL, 0, 3).idx, Number));
    } finally {
      r.close();
    }
    // The same settings resume it from the file's own count, to the uninterrupted store.
    const again = await H5Store.openForResume(copy, FULL, { flushEveryRows: 3 });
    assert.equal(again.rowsDone, 3);
    for (let i = 3; i < 10; i += 3) {
      await again.writeRows(i, makeRows(FULL, i, Math.min(3, 10 - i)));
    }
    await again.close();
    await writeAll(`${dir}/whole.h5`, FULL, 3);
    await assertSameDatasets(copy, `${dir}/whole.h5`, "resumed without a sidecar");
    const done = await H5Reader.open(copy);
    try {
      assert.equal(done.complete, true);
      assert.equal(done.rowsComplete, 10);
      assert.match(done.fingerprint!, /^[0-9a-f]{16}$/);
    } finally {
      done.close();
    }
    // Other settings are still refused, sidecar or not.
    await Deno.remove(statePath(copy));
    await assert.rejects(
      H5Store.openForResume(copy, { ...FULL, dtype: "f16" }),
      /was made with other settings \(.*dtype: "f32" → "f16"/,
    );
  });
});
