/**
 * The activation store on bad files and bad places: a corrupt store, an `--out` that is a
 * directory, a read-only file system and a full disk each give one InputError line naming the
 * file, with nothing from HDF5 on stderr, and leave no empty `.tmp-PID` sidecar behind. The
 * read-only and full-disk cases mount a small tmpfs and are skipped where that is not allowed
 * (not root); the full disk is also simulated everywhere with a sidecar that links to /dev/full.
 */
import assert from "node:assert/strict";
import { H5Reader, H5Store, type H5StoreSettings, statePath } from "./h5_store.ts";
import { tempPathOf } from "./output/mod.ts";
import { makeRows } from "./_h5_store_child.ts";
import { InputError } from "./errors.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const S: H5StoreSettings = { n: 6, layers: 2, tokens: 4, hidden: 8, layout: "full", dtype: "f32" };

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeStore(path: string, s: H5StoreSettings = S): Promise<void> {
  const st = await H5Store.create(path, s);
  await st.writeRows(0, makeRows(s, 0, s.n));
  await st.close();
}

/** Asserts `p` rejects with a one-line InputError whose message matches `re`. */
async function rejectsOneLine(p: Promise<unknown>, re: RegExp): Promise<string> {
  let message = "";
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof InputError, String(e));
    assert.ok(!e.message.includes("\n"), e.message);
    assert.match(e.message, re);
    message = e.message;
    return true;
  });
  return message;
}

/**
 * Runs `code` (with `H5Reader`, `H5Store`, `makeRows` in scope) in a fresh Deno and returns its
 * stdout and stderr: HDF5 prints its error stack from a fresh process's first failure.
 */
async function child(code: string): Promise<{ out: string; err: string }> {
  const prelude = `import { H5Reader, H5Store } from "./data/h5_store.ts";\n` +
    `import { makeRows } from "./data/_h5_store_child.ts";\n`;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["eval", prelude + code],
    cwd: ROOT,
  }).output();
  const dec = new TextDecoder();
  return { out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Mounts a tmpfs of `size` (with `ro` when asked) at a new folder; null where not allowed. */
async function tmpfs(
  size: string,
  ro = false,
): Promise<{ dir: string; done(): Promise<void> } | null> {
  if (Deno.build.os !== "linux") return null;
  const dir = await Deno.makeTempDir();
  const opts = `size=${size}${ro ? ",ro" : ""}`;
  const r = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", opts, "tmpfs", dir] })
    .output().catch(() => null);
  if (!r?.success) {
    await Deno.remove(dir);
    return null;
  }
  return {
    dir,
    async done() {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir);
    },
  };
}

const canMount = await (async () => {
  const m = await tmpfs("64k");
  await m?.done();
  return m !== null;
})();

Deno.test("h5 read: a corrupt store is one InputError line naming it, and HDF5 prints nothing", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/cut.h5`;
    await writeStore(path);
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const msg = await rejectsOneLine(
      H5Reader.open(path),
      new RegExp(`^${path}: HDF5 could not open it \\(mode "r": .*truncated file`),
    );
    assert.doesNotMatch(msg, /HDF5-DIAG/);
    const r = await child(
      `try { await H5Reader.open(${JSON.stringify(path)}); } catch (e) { console.log(e.message); }`,
    );
    assert.equal(r.err, "", "nothing from HDF5 on stderr");
    assert.equal(r.out, msg + "\n");
  });
});

Deno.test("h5 read: a store whose datasets are not what H5Store writes is refused, naming the dataset", async () => {
  await withDir(async (dir) => {
    // A structurally valid HDF5 file with the right names but the wrong layout.
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    const path = `${dir}/foreign.h5`;
    const f = new h5wasm.File(path, "w");
    f.create_dataset({ name: "embeds", data: new Float32Array(24), shape: [2, 3, 4] });
    f.create_dataset({ name: "input_ids", data: new BigInt64Array(10), shape: [2, 5] });
    for (const name of ["token_type_ids", "attention_mask"]) {
      f.create_dataset({ name, data: new Int32Array(10), shape: [2, 5], dtype: "<i" });
    }
    f.create_dataset({ name: "labels", data: new BigInt64Array(2), shape: [2] });
    f.create_dataset({ name: "idx", data: new BigInt64Array(2), shape: [2] });
    f.close();
    await rejectsOneLine(
      H5Reader.open(path),
      new RegExp(`^${path}: dataset "input_ids" has dtype "<q", not <i; not a BERTVision`),
    );
  });
});

Deno.test("h5 write: an --out that is a directory is one line saying so (not 'delete it')", async () => {
  await withDir(async (dir) => {
    const out = `${dir}/out.h5`;
    await Deno.mkdir(out);
    for (const open of [() => H5Store.openOrCreate(out, S), () => H5Store.create(out, S)]) {
      const msg = await rejectsOneLine(
        open(),
        new RegExp(`^${out}: is a directory, not an HDF5 file; name the file itself`),
      );
      assert.doesNotMatch(msg, /delete/);
    }
    await rejectsOneLine(H5Reader.open(out), new RegExp(`^${out}: is a directory`));
    assert.deepEqual([...Deno.readDirSync(out)], [], "nothing written into it");
  });
});

Deno.test("h5 write: a sidecar that cannot be written (full disk) leaves no empty .tmp-PID and no half store", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.h5`;
    // The sidecar's temporary file links to /dev/full: every write to it fails with ENOSPC.
    const tmp = tempPathOf(statePath(path));
    await Deno.symlink("/dev/full", tmp);
    await rejectsOneLine(
      H5Store.create(path, S),
      new RegExp(`^${statePath(path)}: cannot write it \\(No space left on device`),
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [], "nothing left behind");
    // The same on a flush of a store being written.
    const st = await H5Store.create(path, S, { flushEveryRows: 2 });
    await Deno.symlink("/dev/full", tmp);
    await rejectsOneLine(
      st.writeRows(0, makeRows(S, 0, 2)),
      new RegExp(`^${statePath(path)}: cannot write it`),
    );
    await assert.rejects(Deno.lstat(tmp), Deno.errors.NotFound);
    await st.close();
  });
});

Deno.test({
  name: "h5 write: a read-only file system is one line naming the file (tmpfs, root only)",
  ignore: !canMount,
  async fn() {
    const m = (await tmpfs("1m", true))!;
    try {
      const path = `${m.dir}/out.h5`;
      await rejectsOneLine(
        H5Store.openOrCreate(path, S),
        new RegExp(`^${path}: cannot create it \\(Read-only file system`),
      );
    } finally {
      await m.done();
    }
  },
});

Deno.test({
  name:
    "h5 write: a full disk is one line naming the file, no HDF5-DIAG, no .tmp-PID (1 MiB tmpfs)",
  ignore: !canMount,
  async fn() {
    const m = (await tmpfs("1m"))!;
    try {
      const path = `${m.dir}/out.h5`;
      // 160 rows of 12 KiB: more than the disk holds.
      const big = { ...S, n: 160, layers: 3, tokens: 16, hidden: 64 };
      const r = await child(`
        const s = ${JSON.stringify(big)};
        const st = await H5Store.openOrCreate(${JSON.stringify(path)}, s, { flushEveryRows: 8 });
        try {
          for (let i = 0; i < s.n; i += 8) await st.writeRows(i, makeRows(s, i, 8));
          console.log("no error");
        } catch (e) {
          console.log(e.message);
          await st.close().catch(() => {});
        }`);
      assert.equal(r.err, "", "nothing from HDF5 on stderr");
      assert.match(
        r.out,
        new RegExp(
          `^${path}: HDF5 could not (write "\\w+"|flush it to disk) \\(No space left ` +
            `on device\\); is there space left on its disk\\?\\n$`,
        ),
      );
      const left = [...Deno.readDirSync(m.dir)].map((e) => e.name).sort();
      assert.deepEqual(left, ["out.h5", "out.h5.state.json"], "no .tmp-PID left");
      // The sidecar claims only rows flushed before the disk filled up: it resumes from there.
      const state = JSON.parse(await Deno.readTextFile(statePath(path)));
      assert.ok(state.rowsDone < big.n && state.rowsDone % 8 === 0, String(state.rowsDone));
    } finally {
      await m.done();
    }
  },
});

Deno.test("h5 resume: a sidecar whose attributes are named like Object.prototype's members (fuzz) is compared as data", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/a.h5`;
    const s = { ...S, attrs: { task: "rte" } };
    const st = await H5Store.create(path, s);
    await st.close();
    const state = JSON.parse(await Deno.readTextFile(statePath(path)));
    state.settings.attrs = { task: "rte", constructor: 7, ["x".repeat(5000)]: "y".repeat(5000) };
    await Deno.writeTextFile(statePath(path), JSON.stringify(state));
    const msg = await rejectsOneLine(
      H5Store.openForResume(path, s),
      new RegExp(
        `^${path} was made with other settings \\(attrs\\.constructor: 7 → \\(unset\\); attrs\\.x+…`,
      ),
    );
    assert.doesNotMatch(msg, /function|native code/);
    assert.ok(msg.length < 400, `${msg.length} characters`);
    // An attribute "__proto__" is data too: it survives normalising and is compared.
    state.settings.attrs = { task: "rte", ["__proto__"]: "p" }; // computed: an own key
    await Deno.writeTextFile(statePath(path), JSON.stringify(state));
    await rejectsOneLine(H5Store.openForResume(path, s), /attrs\.__proto__: "p" → \(unset\)/);
  });
});

Deno.test("h5 read: a corrupt chunk index fails the read (not the open) with one line, nothing on stderr", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/idx.h5`;
    await writeStore(path, { ...S, chunkRows: 1 });
    await Deno.remove(statePath(path));
    // Scramble every chunk B-tree's keys and child addresses (a v1 node: "TREE", type, level,
    // entries, two sibling addresses, then keys and children), leaving the headers whole.
    const b = await Deno.readFile(path);
    const tree = new TextEncoder().encode("TREE");
    let nodes = 0;
    for (let i = 0; i + 24 < b.length; i++) {
      if (tree.every((c, k) => b[i + k] === c)) {
        nodes++;
        for (let k = i + 24; k < Math.min(b.length, i + 224); k++) b[k] ^= 0xFF;
      }
    }
    assert.ok(nodes >= 6, `${nodes} chunk B-trees`);
    await Deno.writeFile(path, b);
    const r = await H5Reader.open(path);
    try {
      const msg = await rejectsOneLine(
        Promise.resolve().then(() => r.readRows(0, 2)),
        new RegExp(
          `^${path}: HDF5 could not read rows 0..2 of "embeds" \\(.+\\); the file is corrupt`,
        ),
      );
      const c = await child(`
        const r = await H5Reader.open(${JSON.stringify(path)});
        try { r.readRows(0, 2); } catch (e) { console.log(e.message); }`);
      assert.equal(c.err, "", "nothing from HDF5 on stderr");
      assert.equal(c.out, msg + "\n");
    } finally {
      r.close();
    }
  });
});

/** The offset of `needle` in `hay` (-1 when absent). */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Overwrites 5,000 bytes of `path`'s embeds from those of row `row` (found by their bytes). */
async function corruptEmbeds(path: string, s: H5StoreSettings, row: number): Promise<void> {
  const want = makeRows(s, row, 1).embeds as Float32Array;
  const bytes = await Deno.readFile(path);
  const at = indexOfBytes(bytes, new Uint8Array(want.buffer, 0, 64));
  assert.ok(at > 0, "the row's bytes are in the file");
  bytes.fill(0x7f, at, at + 5000); // finite floats: a NaN loss would not even say where
  await Deno.writeFile(path, bytes);
}

Deno.test("h5 read: 5,000 bytes overwritten in a store (same fingerprint) fail the read and merge-shards, naming the file, dataset and rows", async () => {
  const { shardAttrs, mergeShards } = await import("./shard_set.ts");
  const { shardRows } = await import("./shard.ts");
  await withDir(async (dir) => {
    // 1 KiB rows in blocks of 4 rows: 5,000 bytes span several blocks.
    const s: H5StoreSettings = {
      n: 40,
      layers: 2,
      tokens: 8,
      hidden: 16,
      layout: "full",
      dtype: "f32",
      chunkRows: 4,
      attrs: { task: "sst2", split: "train", weights_hash: "w", inputs_hash: "h" },
    };
    const all = makeRows(s, 0, s.n);
    const shards: string[] = [];
    for (let i = 0; i < 2; i++) {
      const cut = shardRows(all.idx as number[], { index: i, count: 2 });
      const ss = { ...s, n: cut.rowEnd - cut.rowStart };
      ss.attrs = { ...s.attrs, ...shardAttrs({ index: i, count: 2 }, cut, s.n) };
      const path = `${dir}/part-${i}.h5`;
      const w = await H5Store.create(path, ss);
      await w.writeRows(0, makeRows(s, cut.rowStart, ss.n));
      await w.close();
      shards.push(path);
    }
    const before = await H5Reader.open(shards[1]);
    const fingerprint = before.fingerprint;
    assert.ok(before.verified);
    before.close();
    // A merge of the sound shards carries hashes of its own, checked when it is read.
    await mergeShards(`${dir}/part-*.h5`, `${dir}/sound.h5`, { silent: true });
    const sound = await H5Reader.open(`${dir}/sound.h5`);
    assert.ok(sound.verified);
    assert.deepEqual(
      sound.readRowsRaw(0, s.n).idx,
      BigInt64Array.from(all.idx as number[], BigInt),
    );
    sound.close();
    // Shard 1 holds rows 20..39; its local row 6 is row 26 of the split.
    await corruptEmbeds(shards[1], s, 26);
    const r = await H5Reader.open(shards[1]);
    try {
      assert.equal(r.fingerprint, fingerprint, "the completion marker cannot see it");
      r.readRows(0, 4); // rows of an untouched block still read
      const re = new RegExp(
        `^${shards[1]}: rows 4\\.\\.8 of dataset "embeds" do not match the hash recorded`,
      );
      const named = (e: Error) => e instanceof InputError && re.test(e.message);
      assert.throws(() => r.readRows(5, 1), named);
      assert.throws(() => r.readIndices([9, 6]), named, "a shuffled read checks the same blocks");
    } finally {
      r.close();
    }
    await rejectsOneLine(
      mergeShards(`${dir}/part-*.h5`, `${dir}/merged.h5`, { silent: true }),
      new RegExp(`^${shards[1]}: rows 4\\.\\.8 of dataset "embeds" do not match`),
    );
  });
});

Deno.test("h5 read: a store written before per-chunk hashes reads as before, said once as unverified", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/new.h5`, old = `${dir}/old.h5`;
    await writeStore(path);
    // The same store without "chunk_hashes", as this project wrote them before.
    const h5wasm = (await import("h5wasm/node")).default;
    await h5wasm.ready;
    const src = new h5wasm.File(path, "r"), dst = new h5wasm.File(old, "w");
    for (const name of src.keys()) {
      if (name === "chunk_hashes") continue;
      const d = src.get(name) as InstanceType<typeof h5wasm.Dataset>;
      const out = dst.create_dataset({
        name,
        data: d.value as Float32Array,
        shape: d.shape!,
        dtype: d.dtype as string,
      });
      for (const [k, a] of Object.entries(d.attrs)) out.create_attribute(k, a.value as string);
    }
    for (const [k, a] of Object.entries(src.attrs)) {
      const v = a.value;
      if (typeof v === "bigint") dst.create_attribute(k, Number(v), null, "<q");
      else dst.create_attribute(k, v as string);
    }
    src.close();
    dst.close();
    const code = `for (let i = 0; i < 2; i++) { const r = await H5Reader.open(${
      JSON.stringify(old)
    }); console.log(r.verified, r.readRows(0, 6).idx.join()); r.close(); }`;
    const { out, err } = await child(code);
    assert.equal(out, "false 1000,1001,1002,1003,1004,1005\n".repeat(2));
    assert.equal(
      err,
      `note: ${old}: written before per-chunk hashes (no "chunk_hashes"); its rows are read ` +
        `unverified\n`,
    );
  });
});
