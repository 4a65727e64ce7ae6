// Layer probes (train/heads/probe.ts) on generated stores whose label is a linear function of one
// layer K only (noise in the others): the curve peaks at K and is near chance elsewhere; every
// layer's probe equals the head trained alone on a store holding only that layer (weights and
// dev logits bit for bit); the pass reads the training store once per epoch; a rerun resumes;
// shards over layers; mean pooling refused on a cls store, and working on a full one. Layer
// ablation (train/heads/ablate.ts) of heads trained on the same store drops only at K; LP heads
// report their layer weights; heads without saved layer means need the training store. Probes
// write no layer means; the head plan counts the layer-means sum a training head holds;
// --overwrite marks the output before removing it and a rerun continues an interrupted one. A
// multi-label task's probes (its head kind: sigmoid per label, micro F1) peak at K too.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { H5Reader, H5Store } from "../../data/h5_store.ts";
import { decodeNpy } from "../../data/npy.ts";
import { randn } from "../../tests/helpers.ts";
import { initGpu } from "../../model/tensor.ts";
import { trainAp } from "./mod.ts";
import { trainProbes } from "./probe.ts";
import { glueTask } from "../../tasks/glue.ts";
import { existsSync } from "node:fs";
import { OVERWRITE_MARKER, readMarker } from "../../data/output/mod.ts";
import { ablateHead } from "./ablate.ts";
import { LAYER_MEANS_FILE, layerMeansBytes } from "./run.ts";
import { planHeads } from "./plan.ts";
import { headConfigFor, headRowTensors } from "./config.ts";
import { kindOf, resolveTask } from "../../tasks/mod.ts";
import { headParamCount, resolveHeadConfig } from "../../model/heads.ts";

await initGpu();

const L = 4, F = 6, T = 3, K = 2;
const dir = await Deno.makeTempDir({ prefix: "probe_test_" });

type Target = "class" | "reg" | "span" | "multi";

/** A multi-label task over three labels (as a user's task module would define it). */
const topics = glueTask({
  name: "topics",
  kind: "multilabel",
  dir: "TOPICS",
  labels: ["film", "nature", "people"],
  textA: "sentence",
  label: "labels",
  files: { train: "train.tsv", dev: "dev.tsv" },
  metrics: ["micro_f1", "exact_match"],
  source: { type: "none" },
});

/**
 * The rows: random layers; the label a function of layer K only: [w · x > 0] of its [CLS] (or of
 * its token sum), w · x (regression), or the tokens where features 0 and 1 peak (span).
 */
function rows(n: number, seed: number, layout: "cls" | "full", target: Target = "class") {
  const tok = layout === "full" ? T : 1;
  const embeds = randn(seed, n * L * tok * F);
  const labels: number[] = [];
  const w = [1, -1, 0.5, 2, -0.5, 1];
  const x = (i: number, t: number, f: number) => embeds[((i * L + K) * tok + t) * F + f];
  for (let i = 0; i < n; i++) {
    if (target === "span") {
      let s = 0, e = 0;
      for (let t = 1; t < tok; t++) {
        if (x(i, t, 0) > x(i, s, 0)) s = t;
        if (x(i, t, 1) > x(i, e, 1)) e = t;
      }
      labels.push(s, e);
      continue;
    }
    if (target === "multi") {
      // Three labels, each the sign of its own direction in layer K's [CLS].
      for (const v of [[1, -1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 1, -1]]) {
        let s = 0;
        for (let f = 0; f < F; f++) s += v[f] * x(i, 0, f);
        labels.push(s > 0 ? 1 : 0);
      }
      continue;
    }
    let s = 0;
    for (let t = 0; t < tok; t++) for (let f = 0; f < F; f++) s += w[f] * x(i, t, f);
    labels.push(target === "reg" ? 2.5 + s / 2 : s > 0 ? 1 : 0);
  }
  return { embeds, labels, tok };
}

async function write(
  path: string,
  n: number,
  seed: number,
  o: { layout?: "cls" | "full"; onlyLayer?: number; split: string; target?: Target },
): Promise<void> {
  const layout = o.layout ?? "cls", target = o.target ?? "class";
  const r = rows(n, seed, layout, target);
  const per = r.tok * F;
  let embeds = r.embeds, layers = L;
  if (o.onlyLayer !== undefined) {
    layers = 1;
    embeds = new Float32Array(n * per);
    for (let i = 0; i < n; i++) {
      const src = (i * L + o.onlyLayer) * per;
      embeds.set(r.embeds.subarray(src, src + per), i * per);
    }
  }
  const s = await H5Store.create(path, {
    n,
    layers,
    tokens: T,
    hidden: F,
    layout,
    dtype: "f32",
    labelType: target === "reg" ? "float32" : "int64",
    labelWidth: target === "span" ? 2 : target === "multi" ? 3 : 1,
    chunkRows: 16,
    attrs: {
      model_id: "tiny-bert",
      task: { span: "squad", reg: "stsb", multi: "topics", class: "sst2" }[target],
      split: o.split,
    },
  });
  await s.writeRows(0, {
    embeds,
    inputIds: new Int32Array(n * T),
    tokenTypeIds: new Int32Array(n * T),
    attentionMask: new Int32Array(n * T).fill(1),
    labels: r.labels,
    idx: Array.from({ length: n }, (_, i) => i),
  });
  await s.close();
}

const NTRAIN = 192, NDEV = 96;
await write(`${dir}/train.h5`, NTRAIN, 1, { split: "train" });
await write(`${dir}/dev.h5`, NDEV, 2, { split: "dev" });
await write(`${dir}/dev2.h5`, 32, 5, { split: "dev" });
await write(`${dir}/train_k.h5`, NTRAIN, 1, { split: "train", onlyLayer: K });
await write(`${dir}/dev_k.h5`, NDEV, 2, { split: "dev", onlyLayer: K });
await write(`${dir}/train_full.h5`, NTRAIN, 3, { split: "train", layout: "full" });
await write(`${dir}/dev_full.h5`, NDEV, 4, { split: "dev", layout: "full" });

await write(`${dir}/reg_train.h5`, NTRAIN, 6, { split: "train", target: "reg" });
await write(`${dir}/reg_dev.h5`, NDEV, 7, { split: "dev", target: "reg" });
await write(`${dir}/span_train.h5`, NTRAIN, 8, { split: "train", layout: "full", target: "span" });
await write(`${dir}/span_dev.h5`, NDEV, 9, { split: "dev", layout: "full", target: "span" });
await write(`${dir}/multi_train.h5`, NTRAIN, 10, { split: "train", target: "multi" });
await write(`${dir}/multi_dev.h5`, NDEV, 11, { split: "dev", target: "multi" });

const settings = { task: "sst2", batchSize: 16, epochs: 3, lr: 0.05, seed: 7, silent: true };
const store = { ...settings, trainH5: `${dir}/train.h5`, devH5: `${dir}/dev.h5` };

/** Rows read from the training store (readIndices and readRows) while `fn` runs. */
async function countReads<T>(path: string, fn: () => Promise<T>) {
  const proto = H5Reader.prototype;
  const readIndices = proto.readIndices, readRows = proto.readRows;
  let n = 0, depth = 0;
  proto.readIndices = function (this: H5Reader, idx: ArrayLike<number>) {
    if (this.path === path && depth === 0) n += idx.length;
    depth++;
    try {
      return readIndices.call(this, idx);
    } finally {
      depth--;
    }
  };
  proto.readRows = function (this: H5Reader, start: number, count: number) {
    if (this.path === path && depth === 0) n += count;
    return readRows.call(this, start, count);
  };
  try {
    return { result: await fn(), rows: () => n };
  } finally {
    proto.readIndices = readIndices;
    proto.readRows = readRows;
  }
}

const npy = async (p: string) => decodeNpy(await Deno.readFile(p)).data as Float32Array;

Deno.test("probes: one read of the store per epoch, the curve peaks at the layer carrying the label", async () => {
  const out = `${dir}/probe`;
  const { result: r, rows: read } = await countReads(
    `${dir}/train.h5`,
    () => trainProbes({ ...store, outDir: out, bertScore: 0.95, apScore: 0.9 }),
  );
  try {
    deepStrictEqual(read(), settings.epochs * NTRAIN, "training rows read: once per epoch");
    deepStrictEqual(r.layers, [0, 1, 2, 3]);
    const acc = r.curve.points.map((p) => p.metrics.accuracy);
    const best = acc.indexOf(Math.max(...acc));
    deepStrictEqual(best, K, `peak at layer ${K}: ${acc}`);
    ok(acc[K] >= 0.85, `layer ${K} learns the label: ${acc[K]}`);
    for (const [l, a] of acc.entries()) {
      if (l !== K) ok(a < 0.7, `layer ${l} near chance: ${a}`);
    }
    for (const f of ["probe.json", "probe.md", "probe.svg"]) {
      ok((await Deno.stat(`${out}/${f}`)).size);
    }
    // Probes keep no layer means (one layer each; ablate takes heads on every layer).
    for (const l of r.layers) {
      await rejects(Deno.stat(`${out}/layer-${l}/${LAYER_MEANS_FILE}`), Deno.errors.NotFound);
    }
    const svg = await Deno.readTextFile(`${out}/probe.svg`);
    ok(svg.includes('class="reference"'), "the BERT and head lines are drawn");
    ok((await Deno.readTextFile(`${out}/probe.md`)).includes(`peaks at layer ${K}`));
  } finally {
    for (const p of r.probes) p.head.dispose();
  }
  // A rerun finds every layer finished: nothing trained, nothing read for training.
  const again = await countReads(`${dir}/train.h5`, () => trainProbes({ ...store, outDir: out }));
  try {
    ok(again.result.probes.every((p) => p.resumed));
    deepStrictEqual(again.rows(), 0);
    deepStrictEqual(
      again.result.curve.points.map((p) => p.metrics),
      r.curve.points.map((p) => p.metrics),
    );
  } finally {
    for (const p of again.result.probes) p.head.dispose();
  }
});

Deno.test("probes: layer K's probe equals the head trained alone on a store of layer K only", async () => {
  const r = await trainProbes({
    ...store,
    outDir: `${dir}/probe_eq`,
    shard: { index: 1, count: 2 },
  });
  const alone = await trainAp({
    ...settings,
    model: "avg",
    trainH5: `${dir}/train_k.h5`,
    devH5: `${dir}/dev_k.h5`,
    outDir: `${dir}/alone`,
  });
  try {
    deepStrictEqual(r.layers, [2, 3], "shard 1/2 of 4 layers");
    deepStrictEqual(r.files, [], "a shard draws no curve");
    const p = r.probes[r.layers.indexOf(K)];
    const wa = await p.head.toHost(), wb = await alone.head.toHost();
    deepStrictEqual([...wa.keys()], [...wb.keys()]);
    for (const [n, t] of wa) deepStrictEqual(t.data, wb.get(n)!.data, `weights ${n}`);
    deepStrictEqual(await npy(p.devLogitsPath!), await npy(alone.devLogitsPath!), "dev logits");
    deepStrictEqual(p.history.map((h) => h.loss), alone.history.map((h) => h.loss), "losses");
  } finally {
    for (const q of r.probes) q.head.dispose();
    alone.head.dispose();
  }
});

Deno.test("probes: --pool mean refused on a cls store naming the fix; on a full store it probes the token mean", async () => {
  await rejects(
    trainProbes({ ...store, pool: "mean", outDir: `${dir}/mean_cls` }),
    /--pool mean .*holds only the \[CLS\] vectors \(layout cls\); capture the store again with --layout full, or probe the \[CLS\] vectors with --pool cls/,
  );
  const r = await trainProbes({
    ...settings,
    trainH5: `${dir}/train_full.h5`,
    devH5: `${dir}/dev_full.h5`,
    pool: "mean",
    outDir: `${dir}/mean_full`,
  });
  try {
    const acc = r.curve.points.map((p) => p.metrics.accuracy);
    deepStrictEqual(acc.indexOf(Math.max(...acc)), K, `mean-pooled peak at ${K}: ${acc}`);
    deepStrictEqual(r.curve.pool, "mean");
  } finally {
    for (const q of r.probes) q.head.dispose();
  }
});

Deno.test("ablate: an AP head's dev metric drops only when layer K is replaced by its mean", async () => {
  const headDir = `${dir}/ap`;
  const h = await trainAp({ ...store, model: "ap", adapterDim: 4, outDir: headDir });
  h.head.dispose();
  ok((await Deno.stat(`${headDir}/${LAYER_MEANS_FILE}`)).size, "the head saved its layer means");
  const a = await ablateHead({ task: "sst2", head: headDir, devH5: `${dir}/dev.h5`, silent: true });
  const full = a.full.accuracy, acc = a.points.map((p) => p.metrics.accuracy);
  ok(full >= 0.85, `the head learns: ${full}`);
  deepStrictEqual(acc.length, L);
  ok(full - acc[K] >= 0.25, `layer ${K} ablated drops: ${full} → ${acc[K]}`);
  for (const [l, v] of acc.entries()) {
    if (l !== K) ok(full - v <= 0.1, `layer ${l} ablated barely matters: ${full} → ${v}`);
  }
  for (const f of ["ablate.json", "ablate.md", "ablate.svg"]) {
    ok((await Deno.stat(`${headDir}/${f}`)).size);
  }
  // The same inputs again: found finished; another dev store is refused without --overwrite.
  deepStrictEqual(
    (await ablateHead({ task: "sst2", head: headDir, devH5: `${dir}/dev.h5` })).finished,
    a.finished,
  );
  await rejects(
    ablateHead({ task: "sst2", head: headDir, devH5: `${dir}/dev2.h5` }),
    /ablate\.json was made with other settings \(dev: .*--overwrite/,
  );
  // A head without saved means (trained before heads saved them) needs the training store;
  // the store's means give the same ablation.
  await Deno.remove(`${headDir}/${LAYER_MEANS_FILE}`);
  await rejects(
    ablateHead({ task: "sst2", head: headDir, devH5: `${dir}/dev.h5`, outDir: `${dir}/ab2` }),
    /has no layer_means\.safetensors .*give its training store with --h5 TRAIN\.h5/,
  );
  const b = await ablateHead({
    task: "sst2",
    head: headDir,
    devH5: `${dir}/dev.h5`,
    trainH5: `${dir}/train.h5`,
    outDir: `${dir}/ab2`,
    silent: true,
  });
  deepStrictEqual(b.points.map((p) => p.metrics.accuracy), acc);
});

Deno.test("ablate: an LP head reports its layer weights, largest at layer K", async () => {
  const headDir = `${dir}/lp`;
  const h = await trainAp({ ...store, model: "lp", epochs: 6, outDir: headDir });
  h.head.dispose();
  const a = await ablateHead({ task: "sst2", head: headDir, devH5: `${dir}/dev.h5`, silent: true });
  const w = a.layerWeights!;
  deepStrictEqual(w.length, L);
  ok(Math.abs(w.reduce((x, y) => x + y, 0) - 1) < 1e-6);
  deepStrictEqual(w.indexOf(Math.max(...w)), K, `weights ${w}`);
  ok((await Deno.stat(`${headDir}/ablate_weights.svg`)).size);
  ok((await Deno.readTextFile(`${headDir}/ablate.md`)).includes("LP weight"));
});

Deno.test("probes: regression and span (per token) tasks peak at layer K too", async () => {
  const reg = await trainProbes({
    ...settings,
    task: "stsb",
    trainH5: `${dir}/reg_train.h5`,
    devH5: `${dir}/reg_dev.h5`,
    outDir: `${dir}/probe_reg`,
  });
  const span = await trainProbes({
    ...settings,
    task: "squad",
    trainH5: `${dir}/span_train.h5`,
    devH5: `${dir}/span_dev.h5`,
    outDir: `${dir}/probe_span`,
  });
  try {
    const r = reg.curve.points.map((p) => p.metrics[reg.curve.plotted[0]]);
    deepStrictEqual(r.indexOf(Math.max(...r)), K, `${reg.curve.plotted[0]}: ${r}`);
    ok(r[K] > 0.9, `${r}`);
    deepStrictEqual(span.curve.pool, "token");
    deepStrictEqual(span.curve.plotted.includes("span_accuracy"), true, span.curve.plotted.join());
    const s = span.curve.points.map((p) => p.metrics.start_accuracy);
    deepStrictEqual(s.indexOf(Math.max(...s)), K, `start accuracy ${s}`);
    ok(s[K] > 0.6, `${s}`);
    deepStrictEqual(decodeNpy(await Deno.readFile(span.probes[K].devLogitsPath!)).shape, [
      NDEV,
      T,
      2,
    ]);
  } finally {
    for (const p of [...reg.probes, ...span.probes]) p.head.dispose();
  }
});

Deno.test("the head plan counts the layer-means sum a training head holds (L·T·F·4 bytes)", async () => {
  const [p] = await planHeads({
    ...store,
    trainH5: `${dir}/train_full.h5`,
    devH5: undefined,
    model: "avg",
    outDir: `${dir}/plan`,
  }, false);
  const config = resolveHeadConfig(
    headConfigFor(
      { layers: L, tokens: T, hidden: F, layout: "full" },
      kindOf(resolveTask("sst2")),
      {
        model: "avg",
      },
    ),
  );
  const input = L * T * F * 4;
  deepStrictEqual(layerMeansBytes({ layers: L, tokens: T, hidden: F, layout: "full" }), input);
  const headRows = headRowTensors(config).reduce((a, t) => a + t.bytesPerRow, 0);
  deepStrictEqual(
    p.peakBytes,
    16 * headParamCount(config) + input + 3 * (input + headRows) * p.split.micro,
  );
});

Deno.test("probes: --overwrite marks the old curve invalid first; a rerun continues an interrupted overwrite", async () => {
  const out = `${dir}/probe_ow`, one = { ...store, epochs: 1, outDir: out };
  const first = await trainProbes(one);
  for (const p of first.probes) p.head.dispose();
  await rejects(trainProbes({ ...one, lr: 0.02 }), /other settings.*--overwrite/s);
  // --overwrite: the marker is written before the old curve is removed; every layer trained
  // again; the marker gone once the new curve is written.
  const marks: boolean[] = [];
  const remove = Deno.remove;
  Deno.remove = (path: string | URL, o?: Deno.RemoveOptions) => {
    if (String(path).endsWith("/probe.json")) {
      marks.push(existsSync(`${out}/${OVERWRITE_MARKER}`), existsSync(String(path)));
    }
    return remove(path, o);
  };
  const again = await trainProbes({ ...one, lr: 0.02, overwrite: true })
    .finally(() => Deno.remove = remove);
  marks.push(existsSync(`${out}/${OVERWRITE_MARKER}`));
  try {
    ok(again.probes.every((p) => !p.resumed));
    deepStrictEqual(marks, [true, true, false], "marked, then removed; no marker left");
    deepStrictEqual(
      (await readMarker<{ settings: { lr: number } }>(`${out}/layer-0`, "results.json"))!.settings
        .lr,
      0.02,
    );
  } finally {
    for (const p of again.probes) p.head.dispose();
  }
  // A kill while removing (the marker says so, old files still there): a plain rerun with other
  // settings redoes the removal instead of refusing, trains every layer, then ends the overwrite.
  await Deno.writeTextFile(
    `${out}/${OVERWRITE_MARKER}`,
    JSON.stringify({ command: "probe --overwrite", phase: "removing", startedAt: "" }),
  );
  const resumed = await trainProbes({ ...one, lr: 0.03 });
  try {
    ok(resumed.probes.every((p) => !p.resumed));
    await rejects(Deno.stat(`${out}/${OVERWRITE_MARKER}`), Deno.errors.NotFound);
    const lr = (await readMarker<{ settings: { lr: number } }>(`${out}/layer-3`, "results.json"))!;
    deepStrictEqual(lr.settings.lr, 0.03);
  } finally {
    for (const p of resumed.probes) p.head.dispose();
  }
});

Deno.test("probes: a multi-label task (through its head kind) peaks at layer K", async () => {
  const r = await trainProbes({
    ...settings,
    task: topics,
    trainH5: `${dir}/multi_train.h5`,
    devH5: `${dir}/multi_dev.h5`,
    outDir: `${dir}/probe_multi`,
  });
  try {
    deepStrictEqual(r.curve.plotted, ["micro_f1"]);
    const f1 = r.curve.points.map((p) => p.metrics.micro_f1);
    deepStrictEqual(f1.indexOf(Math.max(...f1)), K, `micro F1 ${f1}`);
    ok(f1[K] > 0.8, `${f1}`);
    for (const [l, v] of f1.entries()) if (l !== K) ok(f1[K] - v > 0.15, `layer ${l}: ${v}`);
    deepStrictEqual(decodeNpy(await Deno.readFile(r.probes[K].devLogitsPath!)).shape, [NDEV, 3]);
  } finally {
    for (const p of r.probes) p.head.dispose();
  }
});

Deno.test("probes --precision f16-mixed: the plan line, the precision recorded, the other refused on resume", async () => {
  /** What `fn` printed with console.error (the plan's lines). */
  const printed = async <T>(fn: () => Promise<T>) => {
    const lines: string[] = [];
    const err = console.error;
    console.error = (...a: unknown[]) => void lines.push(a.join(" "));
    try {
      return { result: await fn(), lines: lines.join("\n") };
    } finally {
      console.error = err;
    }
  };
  const out = `${dir}/probe_mixed`;
  const run = (precision?: "f32" | "f16-mixed") =>
    printed(() => trainProbes({ ...store, outDir: out, silent: false, precision }));
  // Runs on llvmpipe too (f16 operands packed in u32 words when shader-f16 is missing).
  const mixed = await run("f16-mixed");
  try {
    ok(
      /probes: precision f16-mixed \(given.*\): each probe's matmul in f16, loss scaling/.test(
        mixed.lines,
      ),
      mixed.lines,
    );
    const acc = mixed.result.curve.points.map((p) => p.metrics.accuracy);
    deepStrictEqual(acc.indexOf(Math.max(...acc)), K, `peak at layer ${K}: ${acc}`);
    for (const l of mixed.result.layers) {
      const r = await readMarker<{ settings: Record<string, unknown> }>(
        `${out}/layer-${l}`,
        "results.json",
      );
      deepStrictEqual(r?.settings.precision, "f16-mixed", `layer ${l}`);
    }
    const curve = JSON.parse(await Deno.readTextFile(`${out}/probe.json`));
    deepStrictEqual(curve.settings.precision, "f16-mixed");
  } finally {
    for (const p of mixed.result.probes) p.head.dispose();
  }
  // The other precision is refused, naming it and the probe; without the flag, the probes' own.
  await rejects(
    () => trainProbes({ ...store, outDir: out, precision: "f32" }),
    /layer-0 \(a head[^]*precision: "f16-mixed" → "f32"\); leave --precision out to resume/,
  );
  const again = await run();
  try {
    ok(again.result.probes.every((p) => p.resumed));
    ok(/precision f16-mixed \(preset: resumes the probes in .*probe_mixed/.test(again.lines));
  } finally {
    for (const p of again.result.probes) p.head.dispose();
  }
  // Probes made before --precision existed (float32, none recorded) resume as float32.
  const old = `${dir}/probe_old`;
  const f32 = await trainProbes({ ...store, outDir: old, shard: { index: 0, count: 2 } });
  for (const p of f32.probes) p.head.dispose();
  const r0 = await readMarker<Record<string, unknown>>(`${old}/layer-0`, "results.json");
  ok(r0 && !("precision" in (r0.settings as object)), "float32: no precision recorded");
  const resumed = await printed(() =>
    trainProbes({ ...store, outDir: old, shard: { index: 0, count: 2 }, silent: false })
  );
  try {
    ok(resumed.result.probes.every((p) => p.resumed));
    ok(
      /precision f32 \(preset: resumes the probes in .*probe_old, made in f32\)/.test(
        resumed.lines,
      ),
    );
  } finally {
    for (const p of resumed.result.probes) p.head.dispose();
  }
});
