// The seed's three-file activation stores (code/torch/gen_embeds/sst_embeds.py and
// sst_dev_embeds.py @ dfdafad), written here with h5wasm in its exact layout and names — `embeds`
// float32 [N, L+1, T, F] chunked by --embed-batch-size rows with maxshape (None, ...), `labels`
// int64 [N], `idx` int64 [N], each with `last_index` — are read back row for row, train a head
// through `openStore` as `--h5` does, and every disagreement between the three files is refused
// naming the file.
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import h5wasm from "h5wasm/node";
import { openStore } from "../shard_set.ts";
import { SeedStoreReader } from "./seed_store.ts";
import { randn } from "../../tests/helpers.ts";
import { trainAp } from "../../train/heads/mod.ts";
import { initGpu } from "../../model/tensor.ts";

await h5wasm.ready;
const L = 3, T = 4, F = 6, BS = 4;

interface SeedFiles {
  n: number;
  seed: number;
  /** Rows in the labels / idx files (default n). */
  labelRows?: number;
  idxRows?: number;
  /** `last_index` written on each dataset (default: a whole run's, ceil(n / BS) · BS). */
  lastIndex?: number;
  labelDtype?: "<q" | "<f";
  skip?: "labels" | "idx";
}

/** Writes PREFIX_bert_embeds.h5, PREFIX_labels.h5 and PREFIX_idx.h5 as the seed's scripts do. */
function writeSeedStore(prefix: string, o: SeedFiles): { embeds: Float32Array; labels: number[] } {
  const row = L * T * F;
  const embeds = randn(o.seed, o.n * row);
  const labels = Array.from(
    { length: o.n },
    (_, i) => embeds[i * row + (L - 1) * T * F] > 0 ? 1 : 0,
  );
  const last = o.lastIndex ?? Math.ceil(o.n / BS) * BS;
  const one = (
    path: string,
    name: string,
    data: Float32Array | BigInt64Array,
    shape: number[],
    dtype: string,
  ) => {
    const f = new h5wasm.File(path, "w");
    const d = f.create_dataset({
      name,
      data,
      shape,
      maxshape: [null, ...shape.slice(1)],
      chunks: [BS, ...shape.slice(1)],
      dtype,
    });
    d.create_attribute("last_index", last, null, "<q");
    f.close();
  };
  one(`${prefix}_bert_embeds.h5`, "embeds", embeds, [o.n, L, T, F], "<f");
  const ln = o.labelRows ?? o.n, xn = o.idxRows ?? o.n;
  if (o.skip !== "labels") {
    const lab = o.labelDtype === "<f"
      ? Float32Array.from({ length: ln }, (_, i) => labels[i % o.n])
      : BigInt64Array.from({ length: ln }, (_, i) => BigInt(labels[i % o.n]));
    one(`${prefix}_labels.h5`, "labels", lab, [ln], o.labelDtype ?? "<q");
  }
  if (o.skip !== "idx") {
    one(`${prefix}_idx.h5`, "idx", BigInt64Array.from({ length: xn }, (_, i) => BigInt(i)), [
      xn,
    ], "<q");
  }
  return { embeds, labels };
}

const dir = await Deno.makeTempDir({ prefix: "seed_store_test_" });
const train = writeSeedStore(`${dir}/sst`, { n: 256, seed: 1 });
writeSeedStore(`${dir}/sst_dev`, { n: 96, seed: 2 });

Deno.test("the seed's three files read as one store, row for row", async () => {
  const r = await openStore(`${dir}/sst_bert_embeds.h5`);
  try {
    ok(r instanceof SeedStoreReader);
    deepStrictEqual(r.shape, { n: 256, layers: L, tokens: T, hidden: F, layout: "full" });
    deepStrictEqual([r.attrs.task, r.attrs.split, r.attrs.label_type], ["sst2", "train", "int64"]);
    deepStrictEqual([r.complete, r.rowsComplete, r.chunkRows], [true, 256, BS]);
    const rows = r.readRows(0, 256);
    deepStrictEqual(rows.embeds, train.embeds);
    deepStrictEqual(Array.from(rows.labels), train.labels);
    deepStrictEqual(Array.from(rows.idx), Array.from({ length: 256 }, (_, i) => i));
    const some = r.readIndices([9, 2, 3]);
    const row = L * T * F;
    deepStrictEqual(some.embeds.subarray(0, row), train.embeds.subarray(9 * row, 10 * row));
    deepStrictEqual(Array.from(some.labels), [9, 2, 3].map((i) => train.labels[i]));
    throws(() => r.readInputIds(), /hold no input_ids/);
  } finally {
    r.close();
  }
  const d = await openStore(`${dir}/sst_dev_bert_embeds.h5`);
  deepStrictEqual([d.attrs.task, d.attrs.split, d.shape.n], ["sst2", "dev", 96]);
  d.close();
});

Deno.test("a head trains from the seed's stores given as --h5 and --dev-h5", async () => {
  await initGpu();
  const r = await trainAp({
    trainH5: `${dir}/sst_bert_embeds.h5`,
    devH5: `${dir}/sst_dev_bert_embeds.h5`,
    task: "sst2",
    model: "ap",
    batchSize: 16,
    epochs: 4,
    lr: 5e-2,
    seed: 5,
    outDir: `${dir}/head`,
    silent: true,
  });
  r.head.dispose();
  deepStrictEqual(r.examples, 4 * 256);
  ok(r.devMetrics!.accuracy > 0.85, `dev accuracy ${r.devMetrics!.accuracy}`);
  // The adapter size defaults to the store's tokens, as the seed's `n_tokens`.
  ok(r.params > 0);
});

Deno.test("three files that disagree are refused, naming the file", async () => {
  const bad = async (name: string, o: SeedFiles, want: RegExp) => {
    writeSeedStore(`${dir}/${name}`, o);
    await rejects(() => openStore(`${dir}/${name}_bert_embeds.h5`), want);
  };
  await bad(
    "rte",
    { n: 8, seed: 3, labelRows: 7 },
    /rte_labels\.h5: dataset "labels" has shape \[7\] but .*rte_bert_embeds\.h5 holds 8 rows/,
  );
  await bad("qnli", { n: 8, seed: 3, idxRows: 9 }, /qnli_idx\.h5: dataset "idx" has shape \[9\]/);
  await bad(
    "cola",
    { n: 8, seed: 3, lastIndex: 4 },
    /cola_bert_embeds\.h5: incomplete: its last_index says 4 of 8/,
  );
  await bad("mnli", { n: 8, seed: 3, skip: "idx" }, /mnli_idx\.h5: no such file; the seed's store/);
  // Float labels are STS-B's (stsb_embeds.py): the store says so, and a classification head
  // refuses them by that label type.
  writeSeedStore(`${dir}/stsb`, { n: 8, seed: 3, labelDtype: "<f" });
  const q = await openStore(`${dir}/stsb_bert_embeds.h5`);
  deepStrictEqual([q.attrs.task, q.attrs.label_type], ["stsb", "float32"]);
  q.close();
  // The labels file given for the embeds file.
  await rejects(
    () => openStore(`${dir}/sst_labels.h5`),
    /sst_labels\.h5: the labels file of the seed's store .*sst_bert_embeds\.h5; give that embeds file/,
  );
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
