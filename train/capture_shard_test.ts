// capture --shard in process (tiny BERT, the fixture's SST-2 and SQuAD files): N shard captures
// read as a set equal the single capture row for row and value for value, with its fingerprint;
// SQuAD shards hold whole questions; a shard records where it lies and the adapter; {shard}
// without a shard, and a shard resumed as another, are refused.
import assert from "node:assert/strict";
import { capture } from "./capture.ts";
import { writeFixture } from "./_capture_fixture.ts";
import { H5Reader } from "../data/h5_store.ts";
import { mergeShards, ShardSetReader } from "../data/shard_set.ts";
import { InputError } from "../data/errors.ts";

const root = await Deno.makeTempDir({ prefix: "capture_shard_test_" });
const fx = await writeFixture(root);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { attrs: r.attrs, rows: r.readRows(0, r.shape.n), fingerprint: r.fingerprint };
  } finally {
    r.close();
  }
}

for (
  const c of [
    { task: "sst2", N: 3, seq: 16, layout: "full" as const, dtype: "f32" as const },
    { task: "squad", N: 2, seq: 32, layout: "full" as const, dtype: "f16" as const },
  ]
) {
  Deno.test(`capture --shard: ${c.task} in ${c.N} shards reads and merges as the single capture`, async () => {
    const common = {
      model: fx.model,
      task: c.task,
      split: "dev",
      dataDir: fx.glue,
      layout: c.layout,
      dtype: c.dtype,
      maxSeqLength: c.seq,
      batchSize: 2,
      silent: true,
    };
    const single = `${root}/${c.task}-single.h5`;
    await capture({ ...common, out: single });
    const paths: string[] = [];
    for (let i = c.N - 1; i >= 0; i--) {
      const r = await capture({
        ...common,
        out: `${root}/${c.task}-{shard}.h5`,
        shard: { index: i, count: c.N },
      });
      assert.equal(r.out, `${root}/${c.task}-${i}.h5`);
      paths.unshift(r.out);
    }
    const want = await readAll(single);
    if (c.task === "squad") {
      assert.ok(
        want.rows.idx.length > Number(want.attrs.n_examples),
        "questions of several windows",
      );
    }
    const set = await ShardSetReader.open(`${root}/${c.task}-[0-9].h5`);
    try {
      assert.deepEqual(set.files, paths);
      assert.equal(set.fingerprint, want.fingerprint);
      assert.deepEqual(set.readRows(0, set.shape.n), want.rows);
    } finally {
      set.close();
    }
    let examplesBefore = -1;
    for (const [i, p] of paths.entries()) {
      const a = (await readAll(p)).attrs;
      assert.equal(a.shard_index, i);
      assert.equal(a.shard_count, c.N);
      assert.equal(a.total_rows, want.rows.idx.length);
      assert.equal(typeof a.adapter, "string");
      assert.equal(a.inputs_hash, want.attrs.inputs_hash, "the whole split's");
      // Whole examples: no example's rows in two shards.
      const idx = (await readAll(p)).rows.idx;
      assert.ok(idx[0] > examplesBefore, `shard ${i} starts after shard ${i - 1}'s examples`);
      examplesBefore = idx.at(-1)!;
    }
    const merged = `${root}/${c.task}-merged.h5`;
    await mergeShards(paths, merged, { silent: true });
    const got = await readAll(merged);
    assert.deepEqual(got.rows, want.rows);
    assert.equal(got.fingerprint, want.fingerprint);
    assert.deepEqual(got.attrs, want.attrs);
  });
}

Deno.test("capture --shard: {shard} needs a shard; a shard file resumed as another shard is refused", async () => {
  const common = {
    model: fx.model,
    task: "sst2",
    split: "dev",
    dataDir: fx.glue,
    maxSeqLength: 16,
    layout: "cls" as const,
    silent: true,
  };
  await assert.rejects(
    capture({ ...common, out: `${root}/x-{shard}.h5` }),
    (e) =>
      e instanceof InputError &&
      /\{shard\} stands for the shard's index, but no --shard/.test(e.message),
  );
  const out = `${root}/fixed.h5`;
  await capture({ ...common, out, shard: { index: 0, count: 2 } });
  await assert.rejects(
    capture({ ...common, out, shard: { index: 1, count: 2 } }),
    /fixed\.h5 was made with other settings \(.*attrs\.shard_index: 0 → 1/,
  );
  await assert.rejects(
    capture({ ...common, out: `${root}/many.h5`, shard: { index: 0, count: 12 } }),
    /--shard 0\/12: shard \d+ would hold no rows: the split has 11 examples/,
  );
});
