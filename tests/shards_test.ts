// A Kubernetes Indexed Job faked on one machine: three `capture --shard auto/3` processes, each
// given its JOB_COMPLETION_INDEX as Kubernetes gives it, write `train-{shard}.h5`; the shard set
// (a quoted glob) reads as, and `deno task merge-shards` writes, a single-process capture of
// the same split, value for value and in the same row order. A head trained on the set equals
// one trained on the single file (same dev logits, same recorded source). Without the variable
// `auto` is refused naming both variables. Tiny BERT, the 11-sentence fixture.
import assert from "node:assert/strict";
import { H5Reader } from "../data/h5_store.ts";
import { ShardSetReader } from "../data/shard_set.ts";
import { writeFixture } from "../train/_capture_fixture.ts";
import { trainAp } from "../train/heads/mod.ts";
import { parseCommand, UsageError } from "../scripts/_flags.ts";

const root = await Deno.makeTempDir({ prefix: "shards_test_" });
const fx = await writeFixture(root);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const scriptPath = (s: string) => new URL(`../scripts/${s}`, import.meta.url).pathname;

/** `deno run scripts/<script> args` with `env` added (none of the cluster variables else). */
function cli(script: string, args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, scriptPath(script), "--quiet", ...args],
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? root,
      XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
      NO_COLOR: "1",
      ...(Deno.env.get("BERTVISION_CACHE")
        ? { BERTVISION_CACHE: Deno.env.get("BERTVISION_CACHE")! }
        : {}),
      ...env,
    },
  });
}

async function done(c: Deno.Command) {
  const r = await c.output();
  const d = new TextDecoder();
  return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
}

const capture = (out: string, extra: string[] = [], split = "train") => [
  "--model",
  fx.model,
  "--task",
  "sst2",
  "--split",
  split,
  "--data-file",
  `${fx.glue}/SST-2/dev.tsv`,
  "--max-seq-length",
  "16",
  "--batch-size",
  "2",
  "--out",
  out,
  ...extra,
];

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { attrs: r.attrs, rows: r.readRows(0, r.shape.n), fingerprint: r.fingerprint };
  } finally {
    r.close();
  }
}

Deno.test("Kubernetes Indexed Job (faked): 3 processes with JOB_COMPLETION_INDEX equal one capture; merge-shards too; a head trains on the set as on the file", async () => {
  const single = `${root}/single.h5`;
  const shards = `${root}/k8s/train-{shard}.h5`;
  // The three "pods" run at once, as Kubernetes starts them; the single capture beside them.
  const runs = await Promise.all([
    done(cli("capture.ts", capture(single))),
    ...[0, 1, 2].map((i) =>
      done(cli("capture.ts", capture(shards, ["--shard", "auto/3"]), {
        JOB_COMPLETION_INDEX: String(i),
      }))
    ),
  ]);
  for (const r of runs) assert.equal(r.code, 0, r.err);
  for (const i of [0, 1, 2]) {
    assert.match(runs[i + 1].out, new RegExp(`wrote .*train-${i}\\.h5: \\d+ rows .*shard ${i}/3`));
  }
  const want = await readAll(single);
  const set = await ShardSetReader.open(`${root}/k8s/train-*.h5`);
  try {
    assert.equal(set.files.length, 3);
    assert.deepEqual(set.readRows(0, set.shape.n), want.rows, "same values, same row order");
    assert.equal(set.fingerprint, want.fingerprint);
  } finally {
    set.close();
  }
  // merge-shards, given the glob as the shell passes a quoted one.
  const merged = `${root}/merged.h5`;
  const m = await done(cli("merge_shards.ts", ["--out", merged, `${root}/k8s/train-*.h5`]));
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, /wrote .*merged\.h5: 11 rows from 3 shards/);
  const got = await readAll(merged);
  assert.deepEqual(got.rows, want.rows);
  assert.equal(got.fingerprint, want.fingerprint);
  assert.deepEqual(got.attrs, want.attrs);

  // A head on the set equals a head on the single file.
  const dev = `${root}/dev.h5`;
  const d = await done(cli("capture.ts", capture(dev, [], "dev")));
  assert.equal(d.code, 0, d.err);
  const head = async (trainH5: string, outDir: string) => {
    const r = await trainAp({
      task: "sst2",
      trainH5,
      devH5: dev,
      model: "ap",
      adapterDim: 4,
      batchSize: 4,
      epochs: 2,
      lr: 1e-2,
      seed: 3,
      outDir,
      silent: true,
    });
    r.head.dispose();
    const results = JSON.parse(await Deno.readTextFile(`${outDir}/results.json`));
    return { logits: await Deno.readFile(r.devLogitsPath!), settings: results.settings };
  };
  const onSet = await head(`${root}/k8s/train-*.h5`, `${root}/head-set`);
  const onFile = await head(single, `${root}/head-file`);
  assert.deepEqual(onSet.logits, onFile.logits);
  assert.deepEqual(onSet.settings, onFile.settings);
});

Deno.test("capture --shard auto/N without the cluster's index variable is a clear error", async () => {
  const r = await done(cli("capture.ts", capture(`${root}/x-{shard}.h5`, ["--shard", "auto/3"])));
  assert.equal(r.code, 1);
  assert.match(
    r.err,
    /^capture: --shard auto\/3: auto reads the index from SLURM_ARRAY_TASK_ID .*JOB_COMPLETION_INDEX .*neither is set/m,
  );
  const out = await done(cli("capture.ts", capture(`${root}/x-{shard}.h5`, ["--shard", "4/3"])));
  assert.match(out.err, /--shard 4\/3: index 4 is outside 0\.\.2/);
  assert.equal(await Deno.stat(`${root}/x-4.h5`).then(() => true, () => false), false);
});

Deno.test("flags: capture --shard; merge-shards takes the shards as positionals and --out", () => {
  const cap = parseCommand("capture", [
    "--model",
    "m",
    "--task",
    "sst2",
    "--split",
    "train",
    "--data-dir",
    "d",
    "--out",
    "a-{shard}.h5",
    "--shard",
    "auto/4",
  ]);
  assert.equal(cap.values.shard, "auto/4");
  // Fine-tuning is one GPU's job: not a flag of glue --model bert (heads take it for sweeps).
  assert.throws(
    () => parseCommand("glue", ["--task", "sst2", "--model", "bert", "--shard", "0/2"]),
    (e) =>
      e instanceof UsageError && /--shard is not used by glue\/squad --model bert/.test(e.message),
  );
  const m = parseCommand("merge-shards", ["--out", "m.h5", "a.h5", "b.h5", "--quiet", "c.h5"]);
  assert.deepEqual(m.positionals, ["a.h5", "b.h5", "c.h5"]);
  assert.deepEqual(m.values, { out: "m.h5", quiet: true });
  assert.throws(
    () => parseCommand("merge-shards", ["--out", "m.h5"]),
    (e) => e instanceof UsageError && /missing SHARDS\.\.\./.test(e.message),
  );
  // --out is checked by the command (not needed with --dry-run).
  assert.deepEqual(parseCommand("merge-shards", ["--dry-run", "a.h5"]).values, { "dry-run": true });
});
