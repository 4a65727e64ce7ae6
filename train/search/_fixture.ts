/**
 * Test fixture of the search tests (train/search/study_test.ts, tests/search_test.ts): a tiny SST-2
 * training and dev store (3 layers, 4 tokens, 6 features) whose label is the sign of one
 * activation, so heads learn it in a few steps and trials differ by their hyperparameters.
 * @module
 */
import { H5Store } from "../../data/h5_store.ts";
import { Rng } from "../../data/rng.ts";

const L = 3, T = 4, F = 6;

async function makeStore(path: string, n: number, seed: number, split: string): Promise<void> {
  const row = L * T * F;
  const rng = new Rng(seed, "search fixture");
  const embeds = Float32Array.from({ length: n * row }, () => rng.normal());
  // The label: the sign of feature 0 of [CLS] in the last layer.
  const labels = Array.from({ length: n }, (_, i) => embeds[i * row + (L - 1) * T * F] > 0 ? 1 : 0);
  const s = await H5Store.create(path, {
    n,
    layers: L,
    tokens: T,
    hidden: F,
    layout: "full",
    dtype: "f32",
    labelType: "int64",
    labelWidth: 1,
    chunkRows: 16,
    attrs: { model_id: "tiny-search", task: "sst2", split },
  });
  await s.writeRows(0, {
    embeds,
    inputIds: new Int32Array(n * T),
    tokenTypeIds: new Int32Array(n * T),
    attentionMask: new Int32Array(n * T).fill(1),
    labels,
    idx: Array.from({ length: n }, (_, i) => i),
  });
  await s.close();
}

/** Writes `dir/train.h5` (96 rows) and `dir/dev.h5` (48 rows); returns their paths. */
export async function searchStores(dir: string): Promise<{ train: string; dev: string }> {
  await makeStore(`${dir}/train.h5`, 96, 1, "train");
  await makeStore(`${dir}/dev.h5`, 48, 2, "dev");
  return { train: `${dir}/train.h5`, dev: `${dir}/dev.h5` };
}
