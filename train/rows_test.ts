import { deepStrictEqual, ok } from "node:assert/strict";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { getTask } from "../tasks/mod.ts";
import { loadRows, RowsCache, rowsHooks, type SplitRows } from "./rows.ts";

/** A tiny BERT and SST-2 split (48 train, 24 dev rows of 32 tokens: 18 and 9 KiB of tokens). */
async function fixture() {
  const dir = await Deno.makeTempDir();
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 1,
    layers: 1,
    hidden: 16,
    heads: 2,
    intermediate: 32,
  });
  await writeSyntheticSst2(`${dir}/glue`, { train: 48, dev: 24, seed: 7 });
  const task = getTask("sst2");
  const opts = (split: string) => ({
    dataDir: `${dir}/glue`,
    maxSeqLength: 32,
    split,
    training: split === "train",
  });
  const fresh = async (split: string) =>
    loadRows(task, {
      ...opts(split),
      tokenizer: (await new RowsCache().tokenizer(`${dir}/bert`)).tokenizer,
    });
  return { dir, task, opts, fresh };
}

/** Counts tokenizations while `f` runs. */
async function counting(f: () => Promise<void>): Promise<string[]> {
  const calls: string[] = [];
  rowsHooks.onTokenize = (task, split) => calls.push(`${task} ${split}`);
  try {
    await f();
  } finally {
    rowsHooks.onTokenize = undefined;
  }
  return calls.sort();
}

const binsOf = async (dir: string) =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).filter((n) => n.endsWith(".bin"));

Deno.test("RowsCache over a 0 MiB budget: each split tokenized once, spilled rows read back equal", async () => {
  const { dir, task, opts, fresh } = await fixture();
  const want = { train: await fresh("train"), dev: await fresh("dev") };
  const cache = new RowsCache({ residentMiB: 0, dir: `${dir}/results/sst2/.rows` });
  const got: [string, SplitRows][] = [];
  const calls = await counting(async () => {
    // As a reproduction asks: the plan, fine-tuning (train, dev), capture of each, the head.
    for (const split of ["train", "dev", "train", "dev", "train", "dev", "train"]) {
      got.push([split, await cache.load(task, `${dir}/bert`, opts(split))]);
    }
  });
  deepStrictEqual(calls, ["sst2 dev", "sst2 train"]);
  for (const [split, rows] of got) deepStrictEqual(rows, want[split as "train" | "dev"]);
  deepStrictEqual((await binsOf(`${dir}/results/sst2/.rows`)).sort(), [
    "sst2_dev_32.bin",
    "sst2_train_32.bin",
  ]);
  const text = cache.describe();
  ok(
    /sst2 train 18\.0 KiB cached in .*\/\.rows\/sst2_train_32\.bin \(over the 0 MiB budget\)/.test(
      text,
    ),
    text,
  );
  await cache.close();
  await Deno.stat(`${dir}/results/sst2/.rows`).then(() => ok(false, "folder left"), () => {});
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RowsCache: splits within the budget stay in memory, the one over it is spilled", async () => {
  const { dir, task, opts } = await fixture();
  const cache = new RowsCache({ residentMiB: 12 / 1024 }); // 12 KiB: dev (9 KiB) fits, train does not
  await cache.load(task, `${dir}/bert`, opts("dev"));
  await cache.load(task, `${dir}/bert`, opts("train"));
  const text = cache.describe();
  ok(
    /^rows: sst2 dev 9\.0 KiB in memory; sst2 train 18\.0 KiB cached in (.*)\/sst2_train_32\.bin/
      .test(text),
    text,
  );
  const tmp = text.match(/cached in (.*)\/sst2_train_32\.bin/)![1];
  deepStrictEqual(await binsOf(tmp), ["sst2_train_32.bin"]);
  await cache.close(); // a temporary folder goes with its files
  await Deno.stat(tmp).then(() => ok(false, "temporary folder left"), () => {});
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RowsCache: a truncated or altered cache file is not trusted: tokenized again, with a note", async () => {
  const { dir, task, opts, fresh } = await fixture();
  const want = await fresh("train");
  const notes: string[] = [];
  const cache = new RowsCache({ residentMiB: 0, dir: `${dir}/rows`, log: (l) => notes.push(l) });
  const load = () => cache.load(task, `${dir}/bert`, opts("train"));
  const file = `${dir}/rows/sst2_train_32.bin`;
  deepStrictEqual(await counting(async () => void await load()), ["sst2 train"]);
  const size = (await Deno.stat(file)).size;
  // Truncated.
  await Deno.truncate(file, size - 4);
  let rows: SplitRows | undefined;
  deepStrictEqual(await counting(async () => void (rows = await load())), ["sst2 train"]);
  deepStrictEqual(rows, want);
  ok(
    /^rows: .*sst2_train_32\.bin: \d+ bytes, written \d+; tokenizing sst2 train again$/.test(
      notes[0],
    ),
    notes[0],
  );
  // Rewritten whole: read back without tokenizing.
  deepStrictEqual(await counting(async () => void (rows = await load())), []);
  deepStrictEqual(rows, want);
  // One token id altered, same size: the hash catches it.
  const bytes = await Deno.readFile(file);
  bytes[bytes.length - 12 * want.n * want.seq + 4] ^= 1;
  await Deno.writeFile(file, bytes);
  deepStrictEqual(await counting(async () => void (rows = await load())), ["sst2 train"]);
  deepStrictEqual(rows, want);
  ok(
    /: hash [0-9a-f]{16}, written [0-9a-f]{16}; tokenizing sst2 train again$/.test(notes[1]),
    notes[1],
  );
  // A header naming other rows.
  const head = await Deno.readFile(file);
  head.set(new TextEncoder().encode(`{"format":"bertvision-rows","version":1,"n":1`), 0);
  await Deno.writeFile(file, head);
  deepStrictEqual(await counting(async () => void (rows = await load())), ["sst2 train"]);
  ok(/: header altered; tokenizing/.test(notes[2]), notes[2]);
  // Gone.
  await Deno.remove(file);
  deepStrictEqual(await counting(async () => void (rows = await load())), ["sst2 train"]);
  deepStrictEqual(rows, want);
  ok(/: cannot read it/.test(notes[3]), notes[3]);
  deepStrictEqual(notes.length, 4);
  await cache.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RowsCache of a plan (write: false) writes nothing and says where it would cache", async () => {
  const { dir, task, opts } = await fixture();
  const cache = new RowsCache({ residentMiB: 0, dir: `${dir}/results/sst2/.rows`, write: false });
  const calls = await counting(async () => {
    await cache.load(task, `${dir}/bert`, opts("train"));
    await cache.load(task, `${dir}/bert`, opts("train"));
  });
  deepStrictEqual(calls, ["sst2 train"]);
  const text = cache.describe();
  ok(
    /sst2 train 18\.0 KiB would be cached in .*\/results\/sst2\/\.rows\/sst2_train_32\.bin/.test(
      text,
    ),
    text,
  );
  await Deno.stat(`${dir}/results`).then(() => ok(false, "a plan wrote"), () => {});
  await cache.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("RowsCache's budget defaults to BERTVISION_ROWS_RESIDENT_MIB", () => {
  const old = Deno.env.get("BERTVISION_ROWS_RESIDENT_MIB");
  try {
    Deno.env.set("BERTVISION_ROWS_RESIDENT_MIB", "3");
    deepStrictEqual(
      new RowsCache().describe(),
      "rows: none read yet (3 MiB budget, BERTVISION_ROWS_RESIDENT_MIB)",
    );
    Deno.env.delete("BERTVISION_ROWS_RESIDENT_MIB");
    deepStrictEqual(new RowsCache().describe(), "rows: none read yet (256 MiB budget)");
    Deno.env.set("BERTVISION_ROWS_RESIDENT_MIB", "lots");
    let err: Error | undefined;
    try {
      new RowsCache();
    } catch (e) {
      err = e as Error;
    }
    ok(
      /BERTVISION_ROWS_RESIDENT_MIB must be a number of MiB ≥ 0, got "lots"/.test(String(err)),
      String(err),
    );
  } finally {
    if (old === undefined) Deno.env.delete("BERTVISION_ROWS_RESIDENT_MIB");
    else Deno.env.set("BERTVISION_ROWS_RESIDENT_MIB", old);
  }
});
