// Shard sets read as one store and merged into one, on synthetic stores (no GPU): a set named by
// a glob, a manifest or its files reads every row (consecutive, shuffled, input ids) exactly as
// the single store of the same rows, with its attributes and fingerprint; merge-shards writes
// that store value for value (f32 and f16, int64 and float labels, SQuAD-like rows of several
// windows per example); gaps, duplicates, overlaps, mixed settings, incomplete or foreign
// files are refused naming the file.
import assert from "node:assert/strict";
import { H5Reader, type H5Rows, H5Store, type H5StoreSettings } from "./h5_store.ts";
import { type Shard, shardRows } from "./shard.ts";
import { mergeShards, openStore, shardAttrs, ShardSetReader, shardStatus } from "./shard_set.ts";
import { InputError } from "./errors.ts";

const root = await Deno.makeTempDir({ prefix: "shard_set_test_" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const T = 4, L = 2, Hd = 3;

/** Seeded rows of a split: `windows[k]` rows for example k (SQuAD-like when > 1). */
function makeRows(windows: number[], labelWidth: number, floatLabels: boolean, seed: number) {
  const idx: number[] = [];
  windows.forEach((w, k) => {
    for (let i = 0; i < w; i++) idx.push(10 + 2 * k);
  });
  const n = idx.length;
  let x = seed;
  const r = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  return {
    n,
    embeds: Float32Array.from({ length: n * L * T * Hd }, () => r() * 4 - 2),
    inputIds: Int32Array.from({ length: n * T }, () => Math.floor(r() * 1000)),
    tokenTypeIds: Int32Array.from({ length: n * T }, () => Math.floor(r() * 2)),
    attentionMask: Int32Array.from({ length: n * T }, () => 1),
    labels: Array.from(
      { length: n * labelWidth },
      () => floatLabels ? Math.round(r() * 500) / 100 : Math.floor(r() * 3),
    ),
    idx,
  };
}
type Rows = ReturnType<typeof makeRows>;

function slice(rows: Rows, a: number, b: number, lw: number): H5Rows {
  const row = L * T * Hd;
  return {
    embeds: rows.embeds.subarray(a * row, b * row),
    inputIds: rows.inputIds.subarray(a * T, b * T),
    tokenTypeIds: rows.tokenTypeIds.subarray(a * T, b * T),
    attentionMask: rows.attentionMask.subarray(a * T, b * T),
    labels: rows.labels.slice(a * lw, b * lw),
    idx: rows.idx.slice(a, b),
  };
}

interface Made {
  single: string;
  shards: string[];
  rows: Rows;
  settings: H5StoreSettings;
}

/**
 * Writes `rows` as one store and as N shards (cut as capture cuts them), under `dir`; `tweak`
 * changes one shard's settings (a foreign shard), `partial` leaves one unfinished.
 */
async function make(
  dir: string,
  o: {
    N: number;
    windows?: number[];
    dtype?: "f32" | "f16";
    labelWidth?: number;
    floatLabels?: boolean;
    tweak?: (i: number, s: H5StoreSettings) => void;
    partial?: number;
  },
): Promise<Made> {
  await Deno.mkdir(dir, { recursive: true });
  const lw = o.labelWidth ?? 1;
  const rows = makeRows(o.windows ?? Array(11).fill(1), lw, o.floatLabels ?? false, 7);
  const settings: H5StoreSettings = {
    n: rows.n,
    layers: L,
    tokens: T,
    hidden: Hd,
    layout: "full",
    dtype: o.dtype ?? "f32",
    labelType: o.floatLabels ? "float32" : "int64",
    labelWidth: lw,
    attrs: { task: "sst2", split: "train", weights_hash: "w1", inputs_hash: "h1", n_examples: 11 },
  };
  const single = `${dir}/single.h5`;
  const s = await H5Store.create(single, settings, { adapter: "gpu A" });
  await s.writeRows(0, slice(rows, 0, rows.n, lw));
  await s.close();
  const shards: string[] = [];
  for (let i = 0; i < o.N; i++) {
    const shard: Shard = { index: i, count: o.N };
    const cut = shardRows(rows.idx, shard);
    const ss: H5StoreSettings = {
      ...settings,
      n: cut.rowEnd - cut.rowStart,
      attrs: { ...settings.attrs, ...shardAttrs(shard, cut, rows.n) },
    };
    o.tweak?.(i, ss);
    const path = `${dir}/part-${i}.h5`;
    const w = await H5Store.create(path, ss, { adapter: i === 1 ? "gpu B" : "gpu A" });
    const end = o.partial === i ? cut.rowStart + 1 : cut.rowEnd;
    await w.writeRows(0, slice(rows, cut.rowStart, end, lw));
    await w.close();
    shards.push(path);
  }
  return { single, shards, rows, settings };
}

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { attrs: r.attrs, rows: r.readRowsRaw(0, r.shape.n), fingerprint: r.fingerprint };
  } finally {
    r.close();
  }
}

Deno.test("a shard set reads as the single store: rows, shuffled rows, input ids, attrs, fingerprint", async () => {
  for (
    const [name, windows] of [["glue", undefined], ["squad", [
      3,
      1,
      2,
      4,
      1,
      1,
      2,
      3,
      1,
      2,
      2,
    ]]] as const
  ) {
    const m = await make(`${root}/read-${name}`, {
      N: 3,
      windows: windows as number[] | undefined,
    });
    const one = await H5Reader.open(m.single);
    // A glob, a manifest and the files themselves name the same set.
    await Deno.writeTextFile(
      `${root}/read-${name}/set.txt`,
      "# the shards\n\npart-2.h5\npart-0.h5\n" + `${root}/read-${name}/part-1.h5\n`,
    );
    for (
      const spec of [
        `${root}/read-${name}/part-*.h5`,
        `${root}/read-${name}/set.txt`,
        [...m.shards].reverse(),
      ]
    ) {
      const set = await ShardSetReader.open(spec);
      try {
        assert.deepEqual(set.files, m.shards, "shard order, whatever the naming order");
        assert.deepEqual(set.shape, one.shape);
        assert.equal(set.fingerprint, one.fingerprint);
        assert.equal(set.labelWidth, one.labelWidth);
        const { adapter, ...attrs } = set.attrs;
        const { adapter: _, ...single } = one.attrs;
        assert.deepEqual(attrs, single);
        assert.equal(adapter, "gpu A; gpu B");
        const n = one.shape.n;
        assert.deepEqual(set.readRows(0, n), one.readRows(0, n));
        assert.deepEqual(set.readRows(2, n - 4), one.readRows(2, n - 4));
        const shuffled = [n - 1, 0, 5, 5, 3, 1, n - 2];
        assert.deepEqual(set.readIndices(shuffled), one.readIndices(shuffled));
        assert.deepEqual(set.readInputIds(), one.readInputIds());
        assert.deepEqual(set.readInputIds(3, 4), one.readInputIds(3, 4));
      } finally {
        set.close();
      }
    }
    one.close();
    // openStore: one plain file as it is; a set when given a glob.
    const plain = await openStore(m.single);
    assert.ok(plain instanceof H5Reader);
    plain.close();
    const set = await openStore(`${root}/read-${name}/part-?.h5`);
    assert.ok(set instanceof ShardSetReader);
    set.close();
  }
});

Deno.test("merge-shards writes the single store value for value (f32/f16, int/float/span labels) and resumes", async () => {
  const cases = [
    { name: "f32", o: { N: 3 } },
    { name: "f16-float", o: { N: 2, dtype: "f16" as const, floatLabels: true } },
    { name: "span", o: { N: 4, windows: [2, 2, 1, 3, 1, 1, 2, 1], labelWidth: 2 } },
  ];
  for (const c of cases) {
    const m = await make(`${root}/merge-${c.name}`, c.o);
    const out = `${root}/merge-${c.name}/merged.h5`;
    const r = await mergeShards(`${root}/merge-${c.name}/part-*.h5`, out, { silent: true });
    assert.equal(r.n, m.rows.n);
    const [got, want] = [await readAll(out), await readAll(m.single)];
    assert.deepEqual(got.rows, want.rows, c.name);
    assert.equal(got.fingerprint, want.fingerprint);
    const { adapter, ...ga } = got.attrs;
    const { adapter: _, ...wa } = want.attrs;
    assert.deepEqual(ga, wa);
    assert.equal(adapter, c.o.N > 1 ? "gpu A; gpu B" : "gpu A");
    // Done: a rerun finds it complete.
    const again = await mergeShards(m.shards, out, { silent: true });
    assert.equal(again.rowsBefore, m.rows.n);
  }
  // Interrupted (a store with only its first rows) resumes to the same file.
  const m = await make(`${root}/merge-resume`, { N: 3 });
  const out = `${root}/merge-resume/merged.h5`;
  const set = await ShardSetReader.open(m.shards);
  const w = await H5Store.create(out, set.settings, { flushEveryRows: 2 });
  await w.writeRows(0, set.readRowsRaw(0, 5));
  await w.close();
  set.close();
  const r = await mergeShards(m.shards, out, { silent: true, blockBytes: 1 });
  assert.equal(r.rowsBefore, 5);
  assert.deepEqual((await readAll(out)).rows, (await readAll(m.single)).rows);
});

Deno.test("shard sets refuse gaps, duplicates, overlaps, mixed settings, incomplete and foreign files, naming the file", async () => {
  const refused = async (spec: string | string[], re: RegExp) => {
    await assert.rejects(
      ShardSetReader.open(spec),
      (e) => e instanceof InputError && re.test(e.message) || assert.fail(String(e)),
    );
  };
  const d = `${root}/refuse`;
  const m = await make(`${d}/ok`, { N: 3 });
  // A gap: shard 1 missing; the lone shard 1 given as --h5 is a set with gaps too.
  await refused(
    [m.shards[0], m.shards[2]],
    /shard 1 of 3 missing .*capture it \(--shard 1\/3, or resubmit array index 1\)/,
  );
  await assert.rejects(openStore(m.shards[1]), /shards 0, 2 of 3 missing/);
  // Named twice; a copy of a shard (a duplicate).
  await refused([...m.shards, m.shards[1]], /part-1\.h5: named twice/);
  await Deno.copyFile(m.shards[2], `${d}/ok/copy-2.h5`);
  await refused(
    [...m.shards, `${d}/ok/copy-2.h5`],
    /copy-2\.h5 and .*part-2\.h5 are both shard 2\/3: a duplicate/,
  );
  // Mixed settings: another model's weights, another dtype, another sequence length.
  for (
    const [what, tweak, re] of [
      [
        "weights",
        (s: H5StoreSettings) => s.attrs!.weights_hash = "w2",
        /attrs\.weights_hash: "w1" → "w2"/,
      ],
      ["dtype", (s: H5StoreSettings) => s.dtype = "f16", /dtype: "f32" → "f16"/],
      ["split", (s: H5StoreSettings) => s.attrs!.split = "dev", /attrs\.split: "train" → "dev"/],
    ] as const
  ) {
    const x = await make(`${d}/mixed-${what}`, { N: 3, tweak: (i, s) => i === 2 && tweak(s) });
    await refused(
      x.shards,
      new RegExp(
        `part-2\\.h5 was made with other settings \\(.*${re.source}.*\\); the first shard named, .*part-0\\.h5, has the values before each →`,
      ),
    );
  }
  // Another N.
  const four = await make(`${d}/four`, { N: 4 });
  await refused(
    [m.shards[0], m.shards[1], four.shards[2]],
    /part-2\.h5 is shard 2 of 4 but .*part-0\.h5 is of 3/,
  );
  // Overlap: shard 1 claiming to start a row early.
  const lap = await make(`${d}/overlap`, {
    N: 3,
    tweak: (i, s) => {
      if (i === 1) {
        s.attrs!.shard_row_start = Number(s.attrs!.shard_row_start) - 1;
        s.attrs!.shard_example_start = Number(s.attrs!.shard_example_start) - 1;
      }
    },
  });
  await refused(
    lap.shards,
    /part-1\.h5: shard 1\/3 starts at row 2 \(example 2\) but shard 0 .* ends at row 3 .*overlap/,
  );
  // Incomplete: an interrupted shard names the index to rerun.
  const part = await make(`${d}/partial`, { N: 3, partial: 1 });
  await refused(
    part.shards,
    /part-1\.h5: shard 1\/3 is incomplete \(1 of 4 rows.*resubmit array index 1/,
  );
  // A whole capture among shards; a glob matching nothing.
  await refused([m.single, ...m.shards], /single\.h5: not a shard \(no shard_index attribute/);
  await refused(`${d}/ok/nothing-*.h5`, /no file matches .*nothing-\*\.h5/);
  await refused(`${d}/none.txt`, /none\.txt: cannot read this manifest/);
  // A manifest line naming a file that is no store: the manifest is named, then the file.
  await Deno.writeTextFile(`${d}/notes.md`, "not a store");
  await Deno.writeTextFile(`${d}/list.txt`, "ok/part-0.h5\nnotes.md\n");
  await refused(`${d}/list.txt`, /list\.txt:\d+: names .*notes\.md: /);
  // One line naming a missing file; a glob JavaScript cannot compile (fuzz, seed 11).
  await Deno.writeTextFile(`${d}/one.txt`, "/nowhere/part-0.h5\n");
  await assert.rejects(openStore(`${d}/one.txt`), /one\.txt:\d+: names \/nowhere\/part-0\.h5/);
  await Deno.writeTextFile(`${d}/class.txt`, "ok/part-[z-a].h5\n");
  await refused(`${d}/class.txt`, /class\.txt: .*part-\[z-a\]\.h5 is not a glob this reads/);
});

Deno.test("shardStatus (merge-shards --dry-run): each shard's state and the indices to capture again", async () => {
  const part = await make(`${root}/status`, { N: 4, partial: 1 });
  await Deno.remove(part.shards[3]);
  const st = await shardStatus(`${root}/status/part-*.h5`);
  assert.equal(st.count, 4);
  assert.deepEqual(st.missing, [3]);
  assert.deepEqual(st.rerun, [1, 3]);
  assert.deepEqual(st.shards.map((s) => s.complete), [true, false, true]);
  assert.match(st.lines[1], /^shard 1\/4 .*part-1\.h5 {2}incomplete: 1 of \d+ rows final$/);
  assert.match(st.lines.at(-1)!, /^not ready: capture again 1,3 \(sbatch --array=1,3\); /);
  const ok = await make(`${root}/status-ok`, { N: 2 });
  const done = await shardStatus(ok.shards);
  assert.equal(done.problem, undefined);
  assert.match(done.lines.at(-1)!, /^the set is complete: 11 rows in 2 shards$/);
});

Deno.test("merge-shards --out inside its own glob: reruns and --h5 GLOB leave the merged file out", async () => {
  const m = await make(`${root}/own-glob`, { N: 3 });
  const glob = `${root}/own-glob/*.h5`; // the shards, and the merged file once written
  await Deno.remove(m.single); // only the shards under the glob at first
  const out = `${root}/own-glob/merged.h5`;
  const first = await mergeShards(glob, out, { silent: true });
  assert.equal(first.rowsBefore, 0);
  // The rerun's glob matches the merged file: left out, and the merge is found complete.
  const again = await mergeShards(glob, out, { silent: true });
  assert.deepEqual([first.leftOut, again.leftOut], [[], [out]]);
  assert.equal(again.rowsBefore, m.rows.n);
  assert.deepEqual(again.shards, m.shards);
  // --h5 GLOB (openStore) reads the shards as one store, the merged file left out.
  const set = await openStore(glob);
  try {
    assert.ok(set instanceof ShardSetReader);
    assert.deepEqual((set as ShardSetReader).files, m.shards);
    assert.deepEqual((set as ShardSetReader).leftOut, [out]);
    const merged = await readAll(out);
    assert.deepEqual(set.readRowsRaw(0, set.shape.n), merged.rows);
    assert.equal(set.fingerprint, merged.fingerprint);
  } finally {
    set.close();
  }
  // An interrupted merge under the glob (a whole store, rows not all final) is left out too.
  await Deno.remove(out);
  const s0 = await ShardSetReader.open(m.shards);
  const w = await H5Store.create(out, s0.settings, { flushEveryRows: 2 });
  await w.writeRows(0, s0.readRowsRaw(0, 4));
  await w.close();
  s0.close();
  const resumed = await mergeShards(glob, out, { silent: true });
  assert.equal(resumed.rowsBefore, 4);
  assert.deepEqual(resumed.leftOut, [out]);
  // --dry-run lists it as left out; the set is complete.
  const st = await shardStatus(glob);
  assert.equal(st.problem, undefined, st.lines.join("\n"));
  assert.match(st.lines.join("\n"), /left out {2}.*merged\.h5 {2}a whole store the glob also/);
  assert.match(st.lines.at(-1)!, /^the set is complete: 11 rows in 3 shards$/);
  // Named as such (not matched by a glob), a whole store among shards is still refused.
  await assert.rejects(ShardSetReader.open([out, ...m.shards]), /merged\.h5: not a shard/);
});

Deno.test("a manifest naming a file that is not a store (/etc/passwd) names the manifest line and never says 'delete it'", async () => {
  const dir = `${root}/manifest-foreign`;
  const { shards } = await make(dir, { N: 2 });
  const passwd = `${dir}/passwd`; // a copy: the test must not depend on the machine's own
  await Deno.writeTextFile(passwd, "root:x:0:0:root:/root:/bin/bash\n");
  const manifest = `${dir}/set.txt`;
  await Deno.writeTextFile(manifest, `# the shards\n${shards[0]}\n\n${passwd}\n`);
  const re = new RegExp(
    `^${manifest}:4: names ${passwd}: not an HDF5 file \\(no HDF5 signature\\), so not an ` +
      `activation store; name a \\.h5 file written by capture`,
  );
  for (const open of [() => openStore(manifest), () => ShardSetReader.open(manifest)]) {
    await assert.rejects(open(), (e: Error) => {
      assert.ok(e instanceof InputError, String(e));
      assert.match(e.message, re);
      assert.ok(!/delete/.test(e.message), e.message);
      assert.equal([e.file, e.line].join(), `${manifest},4`);
      return true;
    });
  }
  // Named directly (--h5 FILE), the same without a manifest line.
  await assert.rejects(
    openStore(passwd),
    (e: Error) =>
      new RegExp(`^${passwd}: not an HDF5 file .*so not an activation store`).test(e.message) &&
      !/delete/.test(e.message),
  );
});
