// The capture CLI end to end (`deno task capture`), as child processes: a run stopped abruptly
// (hidden --stop-after-batches, Deno.exit with the store open) and a run killed with SIGKILL
// both resume, rerun with the same flags, to a file identical to an uninterrupted run; other
// settings are refused with the file untouched; flag errors; and real SST-2 dev rows
// (../shared/data/glue, --limit 20) when the shared data is there.
import assert from "node:assert/strict";
import { H5Reader, statePath } from "../data/h5_store.ts";
import {
  exists,
  referenceEmbeds,
  SHARED_GLUE,
  SHARED_VOCAB,
  writeFixture,
} from "../train/_capture_fixture.ts";
import { loadRows } from "../train/rows.ts";
import { getTask } from "../tasks/mod.ts";
import { makeTinyBert } from "../model/init.ts";
import { loadTokenizer } from "../data/tokenize.ts";

const root = await Deno.makeTempDir({ prefix: "capture_cli_test_" });
const fx = await writeFixture(root);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const CONFIG = new URL("../deno.json", import.meta.url).pathname;
const SCRIPT = new URL("../scripts/capture.ts", import.meta.url).pathname;

function cli(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, SCRIPT, "--quiet", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp" },
  });
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await cli(args).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** The command's flags; `extra` replaces a flag given here (a flag may be given once). */
const flags = (out: string, extra: string[] = []) => {
  const base: Record<string, string> = {
    "--model": fx.model,
    "--task": "sst2",
    "--split": "dev",
    "--data-dir": fx.glue,
    "--out": `${root}/${out}`,
    "--max-seq-length": "16",
    "--batch-size": "2",
  };
  const rest: string[] = [];
  for (let i = 0; i < extra.length; i++) {
    const v = extra[i + 1];
    if (extra[i] in base && v !== undefined && !v.startsWith("--")) base[extra[i]] = extra[++i];
    else rest.push(extra[i]);
  }
  return [...Object.entries(base).flat(), ...rest];
};

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { shape: r.shape, attrs: r.attrs, rows: r.readRows(0, r.shape.n) };
  } finally {
    r.close();
  }
}

/** Every dataset and every attribute but rows_complete's history equal. */
async function assertSameStore(a: string, b: string): Promise<void> {
  const [x, y] = [await readAll(a), await readAll(b)];
  assert.deepEqual(x.shape, y.shape);
  assert.deepEqual(x.attrs, y.attrs);
  assert.deepEqual(x.rows, y.rows);
}

let reference: Promise<string> | null = null;
/** The uninterrupted run every resumed one must equal. */
function uninterrupted(): Promise<string> {
  reference ??= (async () => {
    const r = await run(flags("ref.h5"));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*ref\.h5: 11 rows × 3 layers × 16 tokens × 16 \(full, f32\)/);
    return `${root}/ref.h5`;
  })();
  return reference;
}

Deno.test("capture CLI: stopped abruptly after 2 batches, the same command resumes at row 4 to an identical file", async () => {
  const ref = await uninterrupted();
  const stopped = await run(flags("stopped.h5", ["--stop-after-batches", "2"]));
  assert.equal(stopped.code, 3, stopped.err);
  assert.match(stopped.out, /stopped after 2 batches \(4 rows done\)/);
  const st = JSON.parse(await Deno.readTextFile(statePath(`${root}/stopped.h5`)));
  assert.equal(st.rowsDone, 4);
  assert.equal(st.complete, false);
  const again = await run(flags("stopped.h5"));
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /resumed at row 4/);
  await assertSameStore(`${root}/stopped.h5`, ref);
  const done = await run(flags("stopped.h5"));
  assert.match(done.out, /already complete/);
});

Deno.test("capture CLI --precision f16-mixed --dtype f16 (states to f16 on the GPU): stopped after 2 batches, the same command (or it without --precision) resumes to the uninterrupted run's file; the other precision is refused, naming both", async () => {
  const mixed = ["--precision", "f16-mixed", "--dtype", "f16"];
  const ref = await run(flags("mixed_ref.h5", mixed));
  assert.equal(ref.code, 0, ref.err);
  const stopped = await run(flags("mixed_stopped.h5", [...mixed, "--stop-after-batches", "2"]));
  assert.equal(stopped.code, 3, stopped.err);
  const again = await run(flags("mixed_stopped.h5", mixed));
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /resumed at row 4/);
  await assertSameStore(`${root}/mixed_stopped.h5`, `${root}/mixed_ref.h5`);
  assert.equal((await readAll(`${root}/mixed_ref.h5`)).attrs.precision, "f16-mixed");

  // Without --precision: the store's own (attrs.precision), as made; f32 given is refused, the
  // refusal naming both precisions and the fix that resumes it.
  const bare = await run(flags("bare.h5", [...mixed, "--stop-after-batches", "2"]));
  assert.equal(bare.code, 3, bare.err);
  const f32 = await run(flags("bare.h5", ["--precision", "f32", "--dtype", "f16"]));
  assert.equal(f32.code, 1, f32.err);
  assert.match(f32.err, /other settings \(attrs\.precision: "f16-mixed" → "f32"\)/);
  assert.match(f32.err, /leave --precision out to resume it as made, or choose another --out/);
  const resumed = await run(flags("bare.h5", ["--dtype", "f16"]));
  assert.equal(resumed.code, 0, resumed.err);
  assert.match(resumed.out, /resumed at row 4/);
  await assertSameStore(`${root}/bare.h5`, `${root}/mixed_ref.h5`);
  const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);
  // A float32 store (no attrs.precision: as made before the flag existed) reads as "f32".
  const old = await run(flags(basename(await uninterrupted()), ["--precision", "f16-mixed"]));
  assert.equal(old.code, 1, old.err);
  assert.match(old.err, /other settings \(attrs\.precision: "f32" → "f16-mixed"\)/);
});

Deno.test("capture CLI: killed with SIGKILL midway, the same command resumes to an identical file", async () => {
  const ref = await uninterrupted();
  const out = `${root}/killed.h5`;
  const child = cli(flags("killed.h5", ["--batch-size", "1", "--max-seq-length", "16"])).spawn();
  // Kill once the sidecar claims at least one batch (and before the end, if we are in time).
  let claimed = 0;
  for (let t = 0; t < 3000 && claimed < 1; t++) {
    await new Promise((r) => setTimeout(r, 5));
    claimed = await Deno.readTextFile(statePath(out)).then((s) => JSON.parse(s).rowsDone, () => 0);
  }
  try {
    child.kill("SIGKILL");
  } catch { /* already exited */ }
  const status = await child.status;
  await child.stdout.cancel();
  await child.stderr.cancel();
  const st = JSON.parse(await Deno.readTextFile(statePath(out)));
  if (status.signal === "SIGKILL") assert.ok(st.rowsDone < 11, "killed before the end");
  else console.warn(`  (the child finished before the kill; rowsDone ${st.rowsDone})`);
  // Batch size 1 differs from the reference's 2: the resume must use the killed run's flags.
  const again = await run(flags("killed.h5", ["--batch-size", "1", "--max-seq-length", "16"]));
  assert.equal(again.code, 0, again.err);
  const [x, y] = [await readAll(out), await readAll(ref)];
  assert.deepEqual(x.rows.inputIds, y.rows.inputIds);
  assert.deepEqual(x.rows.idx, y.rows.idx);
  // Bit-identical to batch-size-2 rows too: each row's hidden states do not depend on the batch.
  assert.deepEqual(x.rows.embeds, y.rows.embeds);
});

Deno.test("capture CLI: other settings are refused, the file untouched; flag errors", async () => {
  const ref = await uninterrupted();
  const before = await Deno.readFile(ref);
  const r = await run(flags("ref.h5", ["--dtype", "f16"]));
  assert.equal(r.code, 1);
  assert.match(r.err, /capture: .*ref\.h5 was made with other settings \(.*dtype: "f32" → "f16"/);
  assert.deepEqual(await Deno.readFile(ref), before);
  // Usage errors exit 2 (as every command's do), failures of the run 1.
  const bad = await run(flags("x.h5", ["--layout", "diag"]));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--layout must be full or cls, got "diag"/);
  const missing = await run(["--task", "sst2"]);
  assert.equal(missing.code, 2);
  assert.match(missing.err, /missing --model, --split, --out, --data-dir/);
  const noData = await run(flags("y.h5", ["--data-dir", `${root}/nowhere`]));
  assert.equal(noData.code, 1);
  assert.match(noData.err, /nowhere\/SST-2\/dev\.tsv not found/);
  assert.equal(await exists(`${root}/x.h5`) || await exists(`${root}/y.h5`), false);
});

Deno.test({
  name: "capture CLI: real SST-2 dev, --limit 20, cls f16 (tiny BERT on the real vocabulary)",
  ignore: !(await exists(`${SHARED_GLUE}/SST-2/dev.tsv`)) || !(await exists(SHARED_VOCAB)),
  async fn() {
    const model = `${root}/tiny-real-vocab`;
    await makeTinyBert({
      out: model,
      seed: 3,
      layers: 2,
      hidden: 16,
      heads: 2,
      intermediate: 32,
      vocab: SHARED_VOCAB,
    });
    const out = `${root}/sst2-real.h5`;
    const r = await run([
      "--model",
      model,
      "--task",
      "sst2",
      "--split",
      "dev",
      "--data-dir",
      SHARED_GLUE,
      "--out",
      out,
      "--limit",
      "20",
      "--layout",
      "cls",
      "--dtype",
      "f16",
      "--max-seq-length",
      "64",
    ]);
    assert.equal(r.code, 0, r.err);
    const got = await readAll(out);
    assert.deepEqual(got.shape, { n: 20, layers: 3, tokens: 64, hidden: 16, layout: "cls" });
    assert.equal(got.attrs.n_examples, 20);
    assert.equal(got.attrs.batch_size, 16);
    assert.deepEqual(Array.from(got.rows.idx), Array.from({ length: 20 }, (_, i) => i));
    // The first rows of the real file: "it 's a charming and often affecting journey ." → 1.
    const lines = (await Deno.readTextFile(`${SHARED_GLUE}/SST-2/dev.tsv`)).split("\n").slice(
      1,
      21,
    );
    assert.deepEqual(Array.from(got.rows.labels), lines.map((l) => Number(l.split("\t")[1])));
    const tokenizer = await loadTokenizer(model);
    const inputs = await loadRows(getTask("sst2"), {
      split: "dev",
      dataDir: SHARED_GLUE,
      tokenizer,
      maxSeqLength: 64,
      limit: 20,
    });
    assert.deepEqual(got.rows.inputIds, inputs.inputIds);
    assert.ok(got.rows.inputIds.every((id) => id !== tokenizer.unkId), "real words, no [UNK]");
    const want = await referenceEmbeds(model, inputs, 16, "cls");
    const { roundToHalf } = await import("../data/half.ts");
    assert.deepEqual(got.rows.embeds, Float32Array.from(want, roundToHalf));
  },
});
