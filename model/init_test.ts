import assert from "node:assert/strict";
import { builtinVocab, makeTinyBert, randomBertWeights } from "./init.ts";
import { Rng } from "../data/rng.ts";
import { loadBertCheckpoint } from "./checkpoint.ts";
import { loadTokenizer } from "../data/tokenize.ts";

const FILES = [
  "config.json",
  "model.safetensors",
  "tokenizer.json",
  "tokenizer_config.json",
  "vocab.txt",
];
const OPTS = { layers: 2, hidden: 16, heads: 2, intermediate: 24, maxPositions: 32 };

Deno.test("Rng: deterministic, standard normal moments", () => {
  const a = new Rng(7), b = new Rng(7), c = new Rng(8);
  const xs = Array.from({ length: 5 }, () => a.nextU32());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextU32()));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, () => c.nextU32()));
  const r = new Rng(1);
  let s = 0, s2 = 0;
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    s += x;
    s2 += x * x;
  }
  assert.ok(Math.abs(s / n) < 0.02, `mean ${s / n}`);
  assert.ok(Math.abs(s2 / n - 1) < 0.02, `variance ${s2 / n}`);
});

Deno.test("randomBertWeights: BERT init (std 0.02, zero biases, LayerNorm ones/zeros)", () => {
  const w = randomBertWeights({
    vocabSize: 50,
    hiddenSize: 32,
    numHiddenLayers: 1,
    numAttentionHeads: 4,
    intermediateSize: 64,
    maxPositionEmbeddings: 16,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenAct: "gelu",
  }, 0);
  const q = w.get("encoder.layer.0.attention.self.query.weight")!.data;
  const std = Math.sqrt(q.reduce((a, x) => a + x * x, 0) / q.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.ok(w.get("encoder.layer.0.intermediate.dense.bias")!.data.every((x) => x === 0));
  assert.ok(w.get("embeddings.LayerNorm.weight")!.data.every((x) => x === 1));
  assert.ok(w.get("embeddings.LayerNorm.bias")!.data.every((x) => x === 0));
  // Different tensors draw from different streams.
  assert.notDeepEqual(q, w.get("encoder.layer.0.attention.self.key.weight")!.data);
});

Deno.test("makeTinyBert: same seed → identical bytes, loads back, other seed differs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await makeTinyBert({ out: `${root}/a`, seed: 1, ...OPTS });
    await makeTinyBert({ out: `${root}/b`, seed: 1, ...OPTS });
    await makeTinyBert({ out: `${root}/c`, seed: 2, ...OPTS });
    for (const f of FILES) {
      assert.deepEqual(
        await Deno.readFile(`${root}/a/${f}`),
        await Deno.readFile(`${root}/b/${f}`),
        f,
      );
    }
    const a = await loadBertCheckpoint(`${root}/a`);
    const c = await loadBertCheckpoint(`${root}/c`);
    assert.equal(a.config.vocabSize, builtinVocab().length);
    assert.equal(a.config.maxPositionEmbeddings, 32);
    assert.equal(a.config.numHiddenLayers, 2);
    assert.notEqual(a.weightsHash, c.weightsHash);
    const tok = await loadTokenizer(`${root}/a`);
    assert.equal(tok.padId, 0);
    assert.equal(tok.unkId, 1);
    assert.equal(tok.clsId, 2);
    assert.equal(tok.sepId, 3);
    const enc = tok.encode("The movie was great!", undefined, 12);
    assert.equal(enc.inputIds[0], 2);
    assert.ok(!enc.inputIds.includes(1), "common words need no [UNK]");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("makeTinyBert: --vocab file is used as is; bad options are named", async () => {
  const root = await Deno.makeTempDir();
  try {
    const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"];
    await Deno.writeTextFile(`${root}/vocab.txt`, vocab.join("\n") + "\n");
    await makeTinyBert({ out: `${root}/m`, seed: 0, vocab: `${root}/vocab.txt`, ...OPTS });
    assert.equal((await loadBertCheckpoint(`${root}/m`)).config.vocabSize, 7);
    assert.equal(await Deno.readTextFile(`${root}/m/vocab.txt`), vocab.join("\n") + "\n");
    await assert.rejects(
      makeTinyBert({ out: `${root}/x`, seed: 0, ...OPTS, hidden: 10, heads: 3 }),
      /--hidden 10 must be divisible by --heads 3/,
    );
    await assert.rejects(
      makeTinyBert({ out: `${root}/x`, seed: 0, ...OPTS, vocab: `${root}/nope.txt` }),
      /cannot read --vocab .*nope\.txt/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
