// Capture (train/capture.ts) in process: the store read back equals a direct BertModel.forward
// bit for bit (f32), half-rounded (f16), cls = the [CLS] rows of full; attrs, inputs, labels,
// idx and --limit; STS-B and SQuAD rows, SQuAD's --doc-stride; resuming after a failed run;
// refusals and errors that name the file. A tiny BERT (L=2, H=16) on generated SST-2/STS-B/SQuAD
// files, S=16.
import assert from "node:assert/strict";
import h5wasm from "h5wasm/node";
import {
  capture,
  type CaptureOptions,
  captureRows,
  halvesFromStates,
  planCapture,
} from "./capture.ts";
import { loadRows } from "./rows.ts";
import { getTask } from "../tasks/mod.ts";
import { BertModel } from "../model/bert.ts";
import { initGpu } from "../model/tensor.ts";
import { referenceEmbeds, writeFixture } from "./_capture_fixture.ts";
import { H5Reader, statePath } from "../data/h5_store.ts";
import { InputError } from "../data/errors.ts";
import { f32ToF16Bits, roundToHalf } from "../data/half.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { loadBertCheckpoint, saveBertCheckpoint } from "../model/checkpoint.ts";
import { makeTinyBert } from "../model/init.ts";

const root = await Deno.makeTempDir({ prefix: "capture_test_" });
const fx = await writeFixture(root);
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const S = 16, B = 4;
const base = (out: string, extra: Partial<CaptureOptions> = {}): CaptureOptions => ({
  model: fx.model,
  task: "sst2",
  split: "dev",
  dataDir: fx.glue,
  out: `${root}/${out}`,
  maxSeqLength: S,
  batchSize: B,
  silent: true,
  ...extra,
});

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { shape: r.shape, dtype: r.dtype, attrs: r.attrs, rows: r.readRows(0, r.shape.n) };
  } finally {
    r.close();
  }
}

async function inputsFor(task: string, maxSeqLength: number, limit?: number) {
  const tokenizer = await loadTokenizer(fx.model);
  return await loadRows(getTask(task), {
    split: "dev",
    dataDir: fx.glue,
    tokenizer,
    maxSeqLength,
    limit,
  });
}

Deno.test("capture: full f32 — shapes, on-disk dtypes, attrs, inputs, labels, idx; embeds equal a direct forward exactly", async () => {
  const r = await capture(base("full.h5"));
  assert.equal(r.n, 11);
  assert.equal(r.rowsBefore, 0);
  const got = await readAll(r.out);
  assert.deepEqual(got.shape, { n: 11, layers: 3, tokens: S, hidden: 16, layout: "full" });
  assert.equal(got.dtype, "f32");
  const { weightsHash } = await loadBertCheckpoint(fx.model);
  const inputs = await inputsFor("sst2", S);
  for (
    const [k, v] of Object.entries({
      model_id: "tiny",
      weights_hash: weightsHash,
      task: "sst2",
      split: "dev",
      layout: "full",
      dtype: "f32",
      max_seq_length: S,
      num_layers: 3,
      hidden_size: 16,
      data_file: "SST-2/dev.tsv",
      n_examples: 11,
      batch_size: B,
      inputs_hash: inputs.hash,
      rows_complete: 11,
    })
  ) assert.equal(got.attrs[k], v, `attr ${k}`);
  assert.deepEqual(got.rows.inputIds, inputs.inputIds);
  assert.deepEqual(got.rows.tokenTypeIds, inputs.tokenTypeIds);
  assert.deepEqual(got.rows.attentionMask, inputs.attentionMask);
  assert.deepEqual(Array.from(got.rows.labels), [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0]);
  assert.deepEqual(Array.from(got.rows.idx), Array.from({ length: 11 }, (_, i) => i));
  const want = await referenceEmbeds(fx.model, inputs, B, "full");
  assert.equal(got.rows.embeds.length, 11 * 3 * S * 16);
  assert.deepEqual(got.rows.embeds, want, "embeds = direct forward, bit for bit");
  // What h5py sees.
  await h5wasm.ready;
  const f = new h5wasm.File(r.out, "r");
  try {
    const ds = (n: string) => f.get(n) as InstanceType<typeof h5wasm.Dataset>;
    assert.deepEqual(ds("embeds").shape, [11, 3, S, 16]);
    assert.equal(ds("embeds").dtype, "<f");
    assert.deepEqual(ds("input_ids").shape, [11, S]);
    assert.equal(ds("input_ids").dtype, "<i");
    assert.equal(ds("attention_mask").dtype, "<i");
    assert.deepEqual(ds("labels").shape, [11]);
    assert.equal(ds("labels").dtype, "<q");
    assert.equal(ds("idx").dtype, "<q");
  } finally {
    f.close();
  }
});

Deno.test("capture: cls = the [CLS] rows of full; f16 = full rounded to half; same inputs", async () => {
  const full = await readAll(`${root}/full.h5`).catch(async () => {
    await capture(base("full.h5"));
    return await readAll(`${root}/full.h5`);
  });
  const cls = await readAll((await capture(base("cls.h5", { layout: "cls" }))).out);
  assert.deepEqual(cls.shape, { n: 11, layers: 3, tokens: S, hidden: 16, layout: "cls" });
  assert.equal(cls.attrs.layout, "cls");
  const want = new Float32Array(11 * 3 * 16);
  for (let r = 0; r < 11; r++) {
    for (let l = 0; l < 3; l++) {
      const src = ((r * 3 + l) * S) * 16;
      want.set(full.rows.embeds.subarray(src, src + 16), (r * 3 + l) * 16);
    }
  }
  assert.deepEqual(cls.rows.embeds, want);
  assert.deepEqual(cls.rows.inputIds, full.rows.inputIds);

  const half = await readAll((await capture(base("f16.h5", { dtype: "f16" }))).out);
  assert.equal(half.dtype, "f16");
  assert.equal(half.attrs.dtype, "f16");
  assert.deepEqual(half.rows.embeds, Float32Array.from(full.rows.embeds, roundToHalf));
  assert.ok(half.rows.embeds.some((x, i) => x !== full.rows.embeds[i]), "f16 actually rounds");
  await h5wasm.ready;
  const f = new h5wasm.File(`${root}/f16.h5`, "r");
  const e = f.get("embeds") as InstanceType<typeof h5wasm.Dataset>;
  assert.equal(e.dtype, "<H");
  assert.equal(e.attrs.encoding.value, "float16-bits");
  f.close();
});

Deno.test("capture: --limit takes the split's first N examples; idx are their rows", async () => {
  const r = await capture(base("limit.h5", { limit: 5, batchSize: 2 }));
  const got = await readAll(r.out);
  assert.equal(got.shape.n, 5);
  assert.equal(got.attrs.n_examples, 5);
  assert.deepEqual(Array.from(got.rows.idx), [0, 1, 2, 3, 4]);
  const inputs = await inputsFor("sst2", S, 5);
  assert.deepEqual(got.rows.inputIds, inputs.inputIds);
  assert.deepEqual(got.rows.embeds, await referenceEmbeds(fx.model, inputs, 2, "full"));
});

Deno.test("capture: STS-B stores float32 scores; SQuAD rows are features with [N, 2] start/end and example idx", async () => {
  const st = await readAll((await capture(base("stsb.h5", { task: "stsb", layout: "cls" }))).out);
  assert.equal(st.shape.n, 5);
  assert.ok(st.rows.labels instanceof Float32Array);
  assert.deepEqual(Array.from(st.rows.labels), [0, 1.25, 2.5, 3.75, 5]);
  assert.equal(st.attrs.label_type, "float32");

  const sq = await capture(base("squad.h5", { task: "squad", maxSeqLength: 24, layout: "cls" }));
  const inputs = await inputsFor("squad", 24);
  const feats = inputs.squad!.features;
  assert.ok(feats.length > 3, `several windows per question (${feats.length} features)`);
  const r = await H5Reader.open(sq.out);
  try {
    assert.equal(r.shape.n, feats.length);
    assert.equal(r.labelWidth, 2);
    assert.equal(r.attrs.doc_stride, 128);
    assert.equal(r.attrs.max_query_length, 64);
    assert.equal(r.attrs.n_examples, 3);
    assert.equal(r.attrs.inputs_hash, inputs.hash, "features recompute to the stored rows");
    const rows = r.readRows(0, r.shape.n);
    assert.deepEqual(Array.from(rows.idx), feats.map((f) => f.exampleIndex));
    assert.deepEqual(
      Array.from(rows.labels),
      feats.flatMap((f) => [f.startPosition, f.endPosition]),
    );
    assert.ok(feats.some((f) => f.startPosition > 0), "some window holds an answer");
    assert.deepEqual(rows.embeds, await referenceEmbeds(fx.model, inputs, B, "cls"));
  } finally {
    r.close();
  }
});

Deno.test("capture: a run that failed midway resumes after its last batch to the same file; a complete one is left alone", async () => {
  const ref = await readAll((await capture(base("ref.h5", { batchSize: 3 }))).out);
  const opts = base("resume.h5", { batchSize: 3 });
  await assert.rejects(
    capture({
      ...opts,
      onBatchWritten: (k) => {
        if (k === 2) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  const st = JSON.parse(await Deno.readTextFile(statePath(opts.out)));
  assert.equal(st.rowsDone, 6);
  assert.equal(st.complete, false);
  const again = await capture(opts);
  assert.equal(again.rowsBefore, 6);
  assert.equal(again.rowsCaptured, 5);
  const got = await readAll(opts.out);
  assert.deepEqual(got.rows, ref.rows);
  const done = await capture(opts);
  assert.equal(done.rowsCaptured, 0);
  assert.deepEqual((await readAll(opts.out)).rows, ref.rows);
});

Deno.test("capture: other settings on an existing output are refused and nothing is overwritten", async () => {
  const opts = base("keep.h5", { limit: 3, layout: "cls" });
  await capture(opts);
  const before = await Deno.readFile(opts.out);
  const stateBefore = await Deno.readTextFile(statePath(opts.out));
  for (
    const [change, msg] of [
      [{ dtype: "f16" }, /was made with other settings \(.*dtype: "f32" → "f16"/],
      [{ layout: "full" }, /layout: "cls" → "full"/],
      [{ limit: 4 }, /n: 3 → 4/],
      [{ maxSeqLength: 12 }, /tokens: 16 → 12/],
      [{ batchSize: 2 }, /attrs\.batch_size: 4 → 2/],
    ] as [Partial<CaptureOptions>, RegExp][]
  ) {
    await assert.rejects(capture({ ...opts, ...change }), msg);
  }
  assert.deepEqual(await Deno.readFile(opts.out), before);
  assert.equal(await Deno.readTextFile(statePath(opts.out)), stateBefore);
  // A file that is not a store (no sidecar) is refused too.
  await Deno.writeTextFile(`${root}/foreign.h5`, "not mine");
  await assert.rejects(capture(base("foreign.h5")), /exists but has no .*state\.json/);
  assert.equal(await Deno.readTextFile(`${root}/foreign.h5`), "not mine");
});

Deno.test("capture: errors name the data file, the task, the split or the limit", async () => {
  await assert.rejects(
    capture(base("e1.h5", { dataDir: `${root}/nowhere` })),
    (e: Error) => e.message.includes(`${root}/nowhere/SST-2/dev.tsv not found`),
  );
  await Deno.mkdir(`${root}/bad/SST-2`, { recursive: true });
  await Deno.writeTextFile(`${root}/bad/SST-2/dev.tsv`, "sentence\tlabel\nfine\t1\nbroken\n");
  await assert.rejects(
    capture(base("e2.h5", { dataDir: `${root}/bad` })),
    (e: Error) => e.message.includes(`${root}/bad/SST-2/dev.tsv:3: expected 2`),
  );
  await Deno.mkdir(`${root}/unreadable/SST-2/dev.tsv`, { recursive: true }); // a directory
  await assert.rejects(
    capture(base("e3.h5", { dataDir: `${root}/unreadable` })),
    (e: Error) => e.message.includes(`${root}/unreadable/SST-2/dev.tsv`),
  );
  await assert.rejects(capture(base("e4.h5", { task: "sst3" })), /unknown task "sst3"/);
  await assert.rejects(capture(base("e5.h5", { split: "valid" })), /sst2 has no split "valid"/);
  await assert.rejects(capture(base("e6.h5", { maxSeqLength: 65 })), /exceeds .*64/);
  await assert.rejects(capture(base("e7.h5", { limit: 0 })), /limit must be a positive/);
  for (const f of ["e1", "e2", "e3", "e4", "e5", "e6", "e7"]) {
    assert.equal(await Deno.stat(`${root}/${f}.h5`).then(() => true, () => false), false);
  }
});

Deno.test("captureRows: batch k+1 is on the GPU (submitted) before batch k is written", async () => {
  const g = await initGpu();
  const { config, weights } = await loadBertCheckpoint(fx.model);
  const model = BertModel.fromHost(config, weights);
  const inputs = await inputsFor("sst2", S);
  const starts: number[] = [];
  let submits = g.totalSubmits;
  try {
    await captureRows(model, inputs, {
      layout: "cls",
      batchSize: 3,
      write(start, count, embeds) {
        starts.push(start);
        assert.equal(embeds.length, count * 3 * 16);
        const since = g.totalSubmits - submits;
        submits = g.totalSubmits;
        if (start + count < inputs.n) {
          assert.ok(since >= 1, `batch after row ${start} submitted before the write`);
          assert.equal(g.pendingDispatches, 0, "nothing left unsubmitted");
        } else assert.equal(since, 0, "nothing after the last batch");
      },
    });
  } finally {
    model.dispose();
  }
  assert.deepEqual(starts, [0, 3, 6, 9]);
});

Deno.test("capture: SQuAD records --doc-stride, the windows' overlap (the default halved where it leaves no room, as the plan says); a store of another stride is refused", async () => {
  const sq = base("stride.h5", { task: "squad", maxSeqLength: 24, layout: "cls" });
  // 24 tokens leave 17–19 context tokens per window: 128 cannot advance, so half the room.
  const plan = await planCapture(sq, false);
  assert.match(
    plan,
    /SQuAD windows: consecutive windows overlap by 128 tokens \(--doc-stride\); 3 of 3 questions need more than one; --doc-stride 128 \(the default\) leaves no room to advance at --max-seq-length 24 for 3 of them \(\d+–\d+ context tokens per window\): reduced to half the context room/,
  );
  await capture(sq);
  const got = await readAll(sq.out);
  assert.equal(got.attrs.doc_stride, 128);
  assert.equal(got.attrs.doc_stride_reduced, 3);
  // Given, the same value is an error naming the fix; 3 is recorded and overlaps by 3.
  await assert.rejects(
    capture({ ...sq, out: `${root}/stride128.h5`, docStride: 128 }),
    /--doc-stride 128 leaves no room to advance at --max-seq-length 24: 3 questions .*give --doc-stride below \d+/,
  );
  const three = { ...sq, out: `${root}/stride3.h5`, docStride: 3 };
  await capture(three);
  const got3 = await readAll(three.out);
  assert.equal(got3.attrs.doc_stride, 3);
  assert.equal(got3.attrs.doc_stride_reduced, undefined);
  const tokenizer = await loadTokenizer(fx.model);
  const rows = await loadRows(getTask("squad"), {
    split: "dev",
    dataDir: fx.glue,
    tokenizer,
    maxSeqLength: 24,
    docStride: 3,
  });
  assert.equal(got3.shape.n, rows.n);
  const feats = rows.squad!.features;
  for (let i = 1; i < feats.length; i++) {
    if (feats[i].exampleIndex !== feats[i - 1].exampleIndex) continue;
    const prev = feats[i - 1];
    assert.equal(prev.contextStart + prev.contextLength - feats[i].contextStart, 3, "overlap 3");
  }
  // Rerunning onto the default-stride store with another stride is refused, naming it.
  await assert.rejects(capture({ ...sq, docStride: 3 }), /attrs\.doc_stride: 128 → 3/);
  // --doc-stride is for SQuAD's windows only.
  await assert.rejects(
    capture(base("glue-stride.h5", { docStride: 64 })),
    /--doc-stride is the overlap of SQuAD windows; task sst2 has one row per example/,
  );
});

Deno.test("capture: a store that does not fit the free disk stops before writing, unless --ignore-disk-space", async () => {
  Deno.env.set("BERTVISION_FREE_DISK_MIB", "0.001"); // 1 KiB free (train/plan.ts's test hook)
  try {
    await assert.rejects(
      capture(base("disk.h5")),
      (e: Error) =>
        e instanceof InputError &&
        new RegExp(
          `^${root}/disk\\.h5: the store needs .* more but ${root} has 1\\.0 KiB free; .*` +
            `--ignore-disk-space to start anyway$`,
        ).test(e.message),
    );
    for (const f of ["disk.h5", "disk.h5.lock", "disk.h5.state.json"]) {
      assert.equal(await Deno.stat(`${root}/${f}`).then(() => true, () => false), false, f);
    }
    const r = await capture(base("disk.h5", { ignoreDiskSpace: true }));
    assert.equal(r.rowsCaptured, r.n);
  } finally {
    Deno.env.delete("BERTVISION_FREE_DISK_MIB");
  }
});

Deno.test("capture --precision f16-mixed: the forward under autocast, an f16 store close to float32's, the precision recorded", async () => {
  const plan = await planCapture(base("mixed.h5", { precision: "f16-mixed", dtype: "f16" }), false);
  assert.ok(plan.includes("precision f16-mixed (given"), plan);
  const f32Plan = await planCapture(base("plain.h5"), false);
  assert.ok(f32Plan.includes("precision f32 (preset: capture runs in float32)"), f32Plan);
  const r = await capture(base("mixed.h5", { precision: "f16-mixed", dtype: "f16" }));
  const got = await readAll(r.out);
  assert.equal(got.dtype, "f16");
  assert.equal(got.attrs.precision, "f16-mixed");
  const want = await referenceEmbeds(fx.model, await inputsFor("sst2", S), B, "full");
  // f16 matmul operands move each product by ≤ 2^-10 relative; LayerNorm renormalises every
  // layer, so 2 layers of H=16 (|states| ≲ 4) stay within ~1e-2; the f16 store rounds by
  // ≤ 2^-11 relative more. Bound: 0.03 absolute. And autocast must have changed something.
  let worst = 0, differ = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got.rows.embeds[i] - want[i]);
    worst = Math.max(worst, d);
    if (d > 0) differ++;
  }
  assert.ok(worst <= 0.03, `max |f16-mixed − f32| = ${worst}`);
  assert.ok(differ > 0, "the f16-mixed capture equals float32 bit for bit: autocast not applied?");
});

// --- f16 stores straight from the states (issue 21) ----------------------------------------
// The f16 path converts each layer's states on the GPU into the batch's half bit patterns and
// writes them as read back. The reference is the float32 path: the same batches read back as
// float32 and rounded on the host (data/half.ts f32ToF16Bits, what the store's writer does with
// float32 rows), so the stored bytes must be equal, no tolerance. The last layer's output
// LayerNorm is made extreme (γ = 0 with β at the rounding boundaries and past the overflow; γ
// large enough to overflow half, small enough for subnormals and underflow) and, being the last,
// feeds no other captured state. NaN cannot come from weights (a checkpoint holding one is
// refused as corrupt): NaN payloads are checked on the kernel itself (kernels/half_test.ts).

/** Channel c of the last layer's output LayerNorm: [γ, β]. The other channels keep theirs. */
const EXTREME_LN: [number, number][] = [
  [0, 65520], // the overflow midpoint: ties to even = Inf
  [0, Math.fround(65519.99)], // just below: 65504
  [0, 2 ** -25], // half the smallest subnormal: ties to even = 0
  [0, 3 * 2 ** -25], // tie between subnormals 1 and 2: 2
  [0, -(2 ** -14 - 2 ** -25)], // tie below the smallest normal: −2^-14
  [0, -1e6], // −Inf
  [0, 1 + 2 ** -11], // tie: 1
  [0, 65504], // the largest half, exactly
  [1e6, 0], // overflows for most tokens
  [7e4, 0], // around the overflow threshold
  [1e-6, 0], // subnormal halves
  [1e-8, 0], // underflow to ±0 and the smallest subnormals
];

async function extremeModel(): Promise<string> {
  const dir = `${root}/tiny_extreme`;
  if (await Deno.stat(`${dir}/config.json`).then(() => true, () => false)) return dir;
  await Deno.mkdir(dir, { recursive: true });
  for await (const e of Deno.readDir(fx.model)) {
    if (e.isFile) await Deno.copyFile(`${fx.model}/${e.name}`, `${dir}/${e.name}`);
  }
  const { config, weights } = await loadBertCheckpoint(fx.model);
  const last = `encoder.layer.${config.numHiddenLayers - 1}.output.LayerNorm`;
  const g = weights.get(`${last}.weight`)!.data, b = weights.get(`${last}.bias`)!.data;
  EXTREME_LN.forEach(([gamma, beta], c) => {
    g[c] = gamma;
    b[c] = beta;
  });
  await saveBertCheckpoint(dir, config, weights);
  return dir;
}

/** The f16 store's `embeds` as stored: half bit patterns. */
async function storedBits(path: string): Promise<Uint16Array> {
  const r = await H5Reader.open(path);
  try {
    const e = r.readRowsRaw(0, r.shape.n).embeds;
    assert.ok(e instanceof Uint16Array, `${path}: not an f16 store`);
    return e;
  } finally {
    r.close();
  }
}

/** What the float32 readback path stores: captureRows in float32, rounded on the host. */
async function viaFloat32(
  modelDir: string,
  layout: "full" | "cls",
  mixed: boolean,
  batchSize: number,
): Promise<Uint16Array> {
  const { config, weights } = await loadBertCheckpoint(modelDir);
  const model = BertModel.fromHost(config, weights);
  const inputs = await inputsFor("sst2", S);
  const parts: Float32Array[] = [];
  try {
    await captureRows(model, inputs, {
      layout,
      mixed,
      batchSize,
      write: (_s, _c, e) => void parts.push(e as Float32Array),
    });
  } finally {
    model.dispose();
  }
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  return f32ToF16Bits(all);
}

function assertSameBits(got: Uint16Array, want: Uint16Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: lengths`);
  const bad: string[] = [];
  for (let i = 0; i < got.length && bad.length < 8; i++) {
    if (got[i] !== want[i]) bad.push(`[${i}] 0x${got[i].toString(16)} ≠ 0x${want[i].toString(16)}`);
  }
  assert.equal(
    bad.length,
    0,
    `${what}: stored bits differ from the float32 path's:\n${bad.join("\n")}`,
  );
}

Deno.test("capture --dtype f16: stored bits straight from the states equal the float32 readback rounded on the host, byte for byte, at extreme values (f16-mixed and f32; full and cls)", async () => {
  const model = await extremeModel();
  const cases: [string, "full" | "cls", boolean][] = [
    ["mixed full", "full", true],
    ["mixed cls", "cls", true],
    ["f32 full", "full", false],
  ];
  for (const [what, layout, mixed] of cases) {
    const r = await capture(base(`direct_${layout}_${mixed}.h5`, {
      model,
      layout,
      dtype: "f16",
      precision: mixed ? "f16-mixed" : "f32",
      batchSize: 3,
    }));
    const got = await storedBits(r.out);
    assertSameBits(got, await viaFloat32(model, layout, mixed, 3), what);
    // The extreme layer reached the store: every class of half is there.
    const cls = (h: number) => {
      const e = h & 0x7c00, m = h & 0x3ff;
      return e === 0x7c00 ? (m ? "nan" : "inf") : e ? "normal" : m ? "subnormal" : "zero";
    };
    const seen = new Set(Array.from(got, cls));
    assert.deepEqual([...seen].sort(), ["inf", "normal", "subnormal", "zero"], what);
    assert.ok(got.includes(0x7bff) && got.includes(0xfc00) && got.includes(0x0002), what);
  }
});

Deno.test("capture --precision f16-mixed --dtype f16: killed after 2 batches, the rerun resumes to the uninterrupted store's bytes", async () => {
  const model = await extremeModel();
  const opts = base("direct_resume.h5", {
    model,
    dtype: "f16",
    precision: "f16-mixed",
    batchSize: 3,
  });
  await assert.rejects(
    capture({
      ...opts,
      onBatchWritten: (k) => {
        if (k === 2) throw new Error("interrupted");
      },
    }),
    /interrupted/,
  );
  const again = await capture(opts);
  assert.equal(again.rowsBefore, 6);
  const got = await readAll(opts.out);
  assert.equal(got.attrs.precision, "f16-mixed");
  const ref = await capture(base("direct_full_true.h5", { ...opts, out: `${root}/direct_ref.h5` }));
  assertSameBits(await storedBits(opts.out), await storedBits(ref.out), "resumed");
});

Deno.test("capture plan: f16 stores are read back as f16 (staging counted, no float32 layout); f16-mixed counts its operand copies; an f32 store reads back float32", async () => {
  const peak = (p: string) => {
    const m = p.match(/peak GPU ≈ ([\d.]+) (\w+)/);
    assert.ok(m, p);
    return Number(m[1]) * { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 }[m[2]]!;
  };
  const half = await planCapture(base("p1.h5", { precision: "f16-mixed", dtype: "f16" }), false);
  assert.match(half, /readback: states cast to f16 on the GPU and read back as f16 .*2 in flight/);
  // 4 rows a batch × 3 layers × 16 tokens × 16 values × 2 bytes = 6 KiB, two in flight.
  assert.match(half, /6(\.0)? KiB a batch, 2 in flight: 12(\.0)? KiB/);
  const f32Store = await planCapture(base("p2.h5", { precision: "f16-mixed" }), false);
  assert.match(
    f32Store,
    /readback: states read back in float32 \(12(\.0)? KiB a batch.*f32 store keeps the float32 states/,
  );
  const plainHalf = await planCapture(base("p3.h5", { dtype: "f16" }), false);
  assert.match(plainHalf, /read back as f16/);
  const plain = await planCapture(base("p4.h5"), false);
  assert.doesNotMatch(plain, /f16-mixed runs/);
  // The f16 batch holds half the bytes of the float32 one; f16-mixed adds its operand copies.
  assert.ok(peak(plainHalf) < peak(plain), `${plainHalf}\n${plain}`);
  assert.ok(peak(half) > peak(plainHalf), `${half}\n${plainHalf}`);
  assert.ok(peak(f32Store) > peak(plain), `${f32Store}\n${plain}`);
});

Deno.test("captureRows f16 with an odd hidden size (cls rows of odd length): laid out in float32 and converted, the same bits", async () => {
  const dir = `${root}/tiny_odd`;
  await makeTinyBert({
    out: dir,
    seed: 3,
    layers: 1,
    hidden: 15,
    heads: 3,
    intermediate: 8,
    maxPositions: 64,
  });
  assert.equal(halvesFromStates("cls", S, 15), false);
  assert.equal(halvesFromStates("full", S, 15), true);
  const { config, weights } = await loadBertCheckpoint(dir);
  const inputs = await inputsFor("sst2", S);
  const model = BertModel.fromHost(config, weights);
  try {
    for (const layout of ["cls", "full"] as const) {
      const got: Uint16Array[] = [], want: Float32Array[] = [];
      await captureRows(model, inputs, {
        layout,
        dtype: "f16",
        batchSize: 3,
        write: (_s, _c, e) => void got.push(e as Uint16Array),
      });
      await captureRows(model, inputs, {
        layout,
        batchSize: 3,
        write: (_s, _c, e) => void want.push(e as Float32Array),
      });
      for (let k = 0; k < got.length; k++) {
        assertSameBits(got[k], f32ToF16Bits(want[k]), `${layout} batch ${k}`);
      }
    }
  } finally {
    model.dispose();
  }
});
