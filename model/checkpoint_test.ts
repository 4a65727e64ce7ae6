import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { loadBertCheckpoint, resolveModel, saveBertCheckpoint } from "./checkpoint.ts";
import { type BertConfig, bertConfigToJson } from "./config.ts";
import { randomBertWeights } from "./init.ts";
import { encodeSafetensors, readSafetensors, writeSafetensors } from "./safetensors.ts";
import { InputError } from "../data/errors.ts";
import { tempPathOf } from "../data/output/mod.ts";
import { loadTokenizer } from "../data/tokenize.ts";

/** `encodeSafetensors` plus one I64 tensor appended by hand (the writer only does floats). */
function withI64(bytes: Uint8Array, name: string, values: bigint[]): Uint8Array {
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const data = bytes.subarray(8 + n);
  header[name] = {
    dtype: "I64",
    shape: [1, values.length],
    data_offsets: [data.length, data.length + 8 * values.length],
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length + 8 * values.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  out.set(new Uint8Array(new BigInt64Array(values).buffer), 8 + json.length + data.length);
  return out;
}

const CFG: BertConfig = {
  vocabSize: 30,
  hiddenSize: 8,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  intermediateSize: 12,
  maxPositionEmbeddings: 16,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

async function tmpWrite(dir: string, bytes: Uint8Array): Promise<string> {
  await Deno.writeFile(`${dir}/model.safetensors`, bytes);
  return `${dir}/model.safetensors`;
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("checkpoint: save → load round trip with a classifier head, HF names and config", async () => {
  await withDir(async (dir) => {
    const w = randomBertWeights(CFG, 3);
    const extra = new Map([
      ["classifier.weight", { shape: [3, 8], data: new Float32Array(24).fill(0.5) }],
      ["classifier.bias", { shape: [3], data: new Float32Array([1, 2, 3]) }],
    ]);
    await saveBertCheckpoint(dir, CFG, w, extra);
    const file = await readSafetensors(`${dir}/model.safetensors`);
    assert.equal(file.metadata.format, "pt");
    assert.ok(file.tensors.has("bert.encoder.layer.1.output.dense.weight"));
    assert.ok(file.tensors.has("classifier.bias"));
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.deepEqual(cfg.architectures, ["BertForSequenceClassification"]);
    assert.equal(Object.keys(cfg.id2label).length, 3);

    const ck = await loadBertCheckpoint(dir);
    assert.deepEqual(ck.config, CFG);
    assert.equal(ck.weights.size, w.size);
    for (const [k, v] of w) assert.deepEqual(ck.weights.get(k), v, k);
    assert.deepEqual(ck.extra.get("classifier.bias")!.data, new Float32Array([1, 2, 3]));
    const hash = createHash("sha256").update(await Deno.readFile(`${dir}/model.safetensors`));
    assert.equal(ck.weightsHash, hash.digest("hex").slice(0, 16));
    assert.equal(ck.modelId, dir.slice(dir.lastIndexOf("/") + 1));
  });
});

Deno.test("checkpoint: unprefixed names, TF gamma/beta, cls.* and position_ids are handled", async () => {
  await withDir(async (dir) => {
    const w = randomBertWeights(CFG, 4);
    const stored = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, v] of w) {
      stored.set(
        k.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(
          /LayerNorm\.bias$/,
          "LayerNorm.beta",
        ),
        v,
      );
    }
    stored.set("cls.predictions.bias", { shape: [30], data: new Float32Array(30) });
    // An I64 position_ids buffer, as older transformers versions saved.
    const bytes = withI64(encodeSafetensors(stored), "bert.embeddings.position_ids", [0n, 1n, 2n]);
    assert.equal((await readSafetensors(await tmpWrite(dir, bytes))).tensors.size, stored.size + 1);
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(bertConfigToJson(CFG)));
    const ck = await loadBertCheckpoint(dir);
    assert.deepEqual(
      ck.weights.get("embeddings.LayerNorm.weight"),
      w.get("embeddings.LayerNorm.weight"),
    );
    assert.deepEqual(
      ck.weights.get("encoder.layer.1.output.LayerNorm.bias"),
      w.get("encoder.layer.1.output.LayerNorm.bias"),
    );
    assert.equal(ck.extra.size, 0, "cls.* is dropped");
  });
});

Deno.test("checkpoint: missing or misshapen tensors name the tensor, shapes and file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(bertConfigToJson(CFG)));
    const w = randomBertWeights(CFG, 5);
    const st = `${dir}/model.safetensors`;
    const missing = new Map(w);
    missing.delete("encoder.layer.1.attention.self.key.bias");
    await writeSafetensors(st, missing);
    await assert.rejects(
      loadBertCheckpoint(dir),
      (e: Error) =>
        e.message.includes(st) &&
        e.message.includes(`missing tensor "encoder.layer.1.attention.self.key.bias"`) &&
        e.message.includes("expected shape [8]"),
    );
    const bad = new Map(w);
    bad.set("pooler.dense.weight", { shape: [8, 4], data: new Float32Array(32) });
    await writeSafetensors(st, bad);
    await assert.rejects(
      loadBertCheckpoint(dir),
      new RegExp(`${st}: tensor "pooler.dense.weight" has shape \\[8,4\\], expected \\[8,8\\]`),
    );
    await Deno.remove(st);
    await assert.rejects(loadBertCheckpoint(dir), /model\.safetensors: not found/);
    await Deno.writeTextFile(`${dir}/config.json`, `{"hidden_size": 8`);
    await assert.rejects(loadBertCheckpoint(dir), /config\.json: not valid JSON/);
  });
});

Deno.test("checkpoint: saveBertCheckpoint refuses weights that do not match the config", async () => {
  await withDir(async (dir) => {
    const w = randomBertWeights({ ...CFG, hiddenSize: 4 }, 1);
    await assert.rejects(
      saveBertCheckpoint(dir, CFG, w),
      /"embeddings.word_embeddings.weight" has shape \[30,4\]/,
    );
  });
});

/** A loopback "hub" serving one model directory under /<id>/resolve/main/<file>. */
function hub(modelDir: string, id: string) {
  const seen: string[] = [];
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      seen.push(path);
      const prefix = `/${id}/resolve/main/`;
      if (!path.startsWith(prefix)) return new Response("not found", { status: 404 });
      try {
        const data = await Deno.readFile(`${modelDir}/${path.slice(prefix.length)}`);
        return new Response(data);
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    base: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`,
    seen,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test("resolveModel: local dir as is; hub id fetched once into the cache; 404/offline errors", async () => {
  await withDir(async (root) => {
    const src = `${root}/src`;
    await saveBertCheckpoint(src, CFG, randomBertWeights(CFG, 9));
    await Deno.writeTextFile(`${src}/vocab.txt`, "[PAD]\n[UNK]\n");
    assert.equal(await resolveModel(src), src);

    const h = hub(src, "owner/tiny");
    try {
      const opts = { cacheDir: `${root}/cache`, baseUrl: h.base, silent: true };
      const dir = await resolveModel("owner/tiny", opts);
      assert.equal(dir, `${root}/cache/hub/owner/tiny`);
      assert.ok(h.seen.includes("/owner/tiny/resolve/main/tokenizer.json"), "optional file tried");
      await assert.rejects(Deno.stat(`${dir}/tokenizer.json`), Deno.errors.NotFound);
      const ck = await loadBertCheckpoint(dir);
      assert.equal(ck.modelId, "owner/tiny");
      assert.deepEqual(
        await Deno.readFile(`${dir}/model.safetensors`),
        await Deno.readFile(`${src}/model.safetensors`),
      );
      const before = h.seen.length;
      assert.equal(await resolveModel("owner/tiny", opts), dir);
      assert.equal(h.seen.length, before, "a complete download is not fetched again");

      await assert.rejects(
        resolveModel("owner/nope", opts),
        /config\.json of model "owner\/nope" .* HTTP 404 \(check the model id.*pass a local directory/,
      );
    } finally {
      await h.close();
    }
    // Nothing listens on port 9 of loopback: what an offline machine sees.
    await assert.rejects(
      resolveModel("bert-base-uncased", {
        cacheDir: `${root}/c2`,
        baseUrl: "http://127.0.0.1:9",
        silent: true,
      }),
      /could not download "bert-base-uncased" .*Offline\? Pass a local model directory/s,
    );
    await assert.rejects(resolveModel("./no/such/dir"), /no such directory/);
  });
});

Deno.test("resolveModel: tokenizer_config.json comes with a hub model and sets its casing", async () => {
  await withDir(async (root) => {
    // A cased model with only vocab.txt: lowercasing would turn "Paris" into [UNK].
    const src = `${root}/cased`;
    await saveBertCheckpoint(src, CFG, randomBertWeights(CFG, 2));
    await Deno.writeTextFile(
      `${src}/vocab.txt`,
      ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Paris", "is", "big"].join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${src}/tokenizer_config.json`,
      JSON.stringify({ do_lower_case: false, tokenizer_class: "BertTokenizer" }),
    );
    const h = hub(src, "owner/cased");
    try {
      const opts = { cacheDir: `${root}/cache`, baseUrl: h.base, silent: true };
      const dir = await resolveModel("owner/cased", opts);
      assert.deepEqual(
        await Deno.readTextFile(`${dir}/tokenizer_config.json`),
        await Deno.readTextFile(`${src}/tokenizer_config.json`),
      );
      const tokens = (await loadTokenizer(dir)).tokenizeWithOffsets("Paris is big").tokens;
      assert.deepEqual(tokens, ["Paris", "is", "big"]);

      // A download completed before tokenizer_config.json was fetched (its record names no
      // files) gets it on its next use, once.
      await Deno.remove(`${dir}/tokenizer_config.json`);
      const marker = `${dir}/.bertvision_source.json`;
      await Deno.writeTextFile(marker, JSON.stringify({ modelId: "owner/cased", baseUrl: h.base }));
      assert.deepEqual((await loadTokenizer(dir)).tokenizeWithOffsets("Paris").tokens, ["[UNK]"]);
      const before = h.seen.length;
      assert.equal(await resolveModel("owner/cased", opts), dir);
      assert.deepEqual(h.seen.slice(before), ["/owner/cased/resolve/main/tokenizer_config.json"]);
      assert.deepEqual((await loadTokenizer(dir)).tokenizeWithOffsets("Paris").tokens, ["Paris"]);
      await resolveModel("owner/cased", opts);
      assert.equal(h.seen.length, before + 1, "fetched once");
    } finally {
      await h.close();
    }
  });
});

Deno.test("checkpoint: NaN or infinite weights are an InputError at load naming the tensor and the file", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(bertConfigToJson(CFG)));
    const st = `${dir}/model.safetensors`;
    for (const [bad, dtype] of [[NaN, "F32"], [Infinity, "F32"], [-Infinity, "F16"]] as const) {
      const w = randomBertWeights(CFG, 5);
      w.get("encoder.layer.1.output.dense.weight")!.data[7] = bad;
      await writeSafetensors(st, w, undefined, { dtype });
      await assert.rejects(loadBertCheckpoint(dir), (e: Error) => {
        assert.ok(e instanceof InputError, String(e));
        assert.equal(
          e.message,
          `${st}: tensor "encoder.layer.1.output.dense.weight" holds 1 NaN or infinite values ` +
            `of 96 (the first at index 7: ${bad}); the weights are corrupt (a diverged run?)`,
        );
        return true;
      });
    }
  });
});

Deno.test("checkpoint: a failed config.json write leaves no empty config.json.tmp-PID behind", async () => {
  await withDir(async (dir) => {
    // A temporary file that can never be written (as on a full disk): a link to /dev/full.
    const tmp = tempPathOf(`${dir}/config.json`);
    await Deno.symlink("/dev/full", tmp);
    await assert.rejects(saveBertCheckpoint(dir, CFG, randomBertWeights(CFG, 1)), /space/i);
    await assert.rejects(Deno.lstat(tmp), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(`${dir}/config.json`), Deno.errors.NotFound);
  });
});

Deno.test("checkpoint: implausible config.json sizes are InputErrors at once (fuzz: 2^32 layers hung)", async () => {
  await withDir(async (dir) => {
    await writeSafetensors(`${dir}/model.safetensors`, randomBertWeights(CFG, 1));
    const cfg = `${dir}/config.json`;
    for (
      const [field, v, re] of [
        ["num_hidden_layers", 4294967295, /"num_hidden_layers" is 4294967295, more than 1000/],
        ["hidden_size", 2 ** 40, /"hidden_size" is 1099511627776, more than 2147483647/],
        ["vocab_size", 2.5, /"vocab_size" must be a positive integer, got 2.5/],
        [
          "intermediate_size",
          "1e400",
          /"intermediate_size" must be a positive number, got Infinity/,
        ],
        ["layer_norm_eps", 5, /"layer_norm_eps" is 5, more than 1/],
      ] as const
    ) {
      const json = JSON.stringify({ ...bertConfigToJson(CFG), [field]: v }).replace(
        '"1e400"',
        "1e400",
      );
      await Deno.writeTextFile(cfg, json);
      const t0 = performance.now();
      await assert.rejects(loadBertCheckpoint(dir), (e: Error) => {
        assert.ok(e instanceof InputError, String(e));
        assert.ok(e.message.startsWith(`${cfg}: field `), e.message);
        assert.match(e.message, re);
        return true;
      });
      assert.ok(performance.now() - t0 < 1000, `${field}: ${performance.now() - t0} ms`);
    }
  });
});
