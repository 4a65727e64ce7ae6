/**
 * The child process of tests/fifo_test.ts: plants FIFOs (and a device) where each reader of
 * user-provided files looks, and runs each reader on them, one at a time. A reader that opens a
 * FIFO blocks for ever; the parent kills this process after a while and names the probe that
 * never ended (the line `@@start NAME` without its `@@end`).
 *
 *   deno run -A tests/_fifo_child.ts DIR
 */
import { H5Store, type H5StoreSettings, statePath } from "../data/h5_store.ts";
import { openStore } from "../data/shard_set.ts";
import { readInput } from "../data/errors.ts";
import { readMarker } from "../data/output/mod.ts";
import { loadTokenizer, tokenizerFromVocab } from "../data/tokenize.ts";
import { bertConfigToJson } from "../model/config.ts";
import { loadBertCheckpoint } from "../model/checkpoint.ts";
import { getTask } from "../tasks/mod.ts";
import { findResults } from "../report/cross_find.ts";
import { readLogitRows } from "../data/logit_rows.ts";
import { extractZip } from "../data/zip.ts";
import { sha256File } from "../data/download.ts";

const dir = Deno.args[0];

async function mkfifo(path: string): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  if (!r.success) throw new Error(`mkfifo ${path} failed`);
}

const settings: H5StoreSettings = {
  n: 2,
  layers: 1,
  tokens: 2,
  hidden: 2,
  layout: "full",
  dtype: "f32",
  attrs: { task: "sst2", split: "train" },
};

// A store whose sidecar is a FIFO.
const store = `${dir}/store.h5`;
const w = await H5Store.create(store, settings);
await w.close();
await Deno.remove(statePath(store));
await mkfifo(statePath(store));
// --h5 fifo.h5, a symbolic link to it, manifests naming it or being one.
await mkfifo(`${dir}/fifo.h5`);
await Deno.symlink(`${dir}/fifo.h5`, `${dir}/link.h5`);
await Deno.writeTextFile(`${dir}/list.txt`, "store.h5\nfifo.h5\n");
await mkfifo(`${dir}/pipe.txt`);
// A results folder whose results.json is a FIFO; a model folder's files.
await mkfifo(`${dir}/res/results.json`);
await mkfifo(`${dir}/tokjson/tokenizer.json`);
await mkfifo(`${dir}/vocab/vocab.txt`);
await mkfifo(`${dir}/model/config.json`);
await mkfifo(`${dir}/model2/model.safetensors`);
await Deno.writeTextFile(
  `${dir}/model2/config.json`,
  JSON.stringify(bertConfigToJson({
    vocabSize: 8,
    hiddenSize: 4,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    intermediateSize: 8,
    maxPositionEmbeddings: 16,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenAct: "gelu",
  })),
);
await mkfifo(`${dir}/dev.tsv`);
await mkfifo(`${dir}/out.h5`);
// A logits file's rows record, and fetch-data's cached download and hash record.
await Deno.mkdir(`${dir}/head`, { recursive: true });
await Deno.writeFile(`${dir}/head/dev_logits.npy`, new Uint8Array(8));
await mkfifo(`${dir}/head/dev_logits.rows.json`);
await mkfifo(`${dir}/downloads/SST-2.zip`);

const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]);
const probes: Record<string, () => Promise<unknown>> = {
  "--h5 fifo.h5": () => openStore(`${dir}/fifo.h5`),
  "--h5 link.h5 (a symbolic link to a FIFO)": () => openStore(`${dir}/link.h5`),
  "--h5 list.txt (a manifest naming a FIFO)": () => openStore(`${dir}/list.txt`),
  "--h5 pipe.txt (a manifest that is a FIFO)": () => openStore(`${dir}/pipe.txt`),
  "a store whose sidecar is a FIFO": () => openStore(store),
  "--out fifo (capture, merge-shards)": () => H5Store.openOrCreate(`${dir}/out.h5`, settings),
  "results.json (report)": () => findResults(`${dir}/res`),
  "results.json (a head's marker)": () => readMarker(`${dir}/res`, "results.json"),
  "tokenizer.json": () => loadTokenizer(`${dir}/tokjson`),
  "vocab.txt": () => loadTokenizer(`${dir}/vocab`),
  "config.json": () => loadBertCheckpoint(`${dir}/model`),
  "model.safetensors": () => loadBertCheckpoint(`${dir}/model2`),
  "GLUE data (--data)": () =>
    getTask("sst2").readRows(`${dir}/dev.tsv`, { tokenizer: tok, maxSeqLength: 8 }),
  "/dev/zero as an input file": () => readInput("/dev/zero"),
  "a logits file's rows record (ensemble)": () =>
    readLogitRows(`${dir}/head/dev_logits.npy`, new Uint8Array(8), 1),
  "a cached download (fetch-data)": () => extractZip(`${dir}/downloads/SST-2.zip`, dir, "SST-2"),
  "a cached download's hash (fetch-data)": () => sha256File(`${dir}/downloads/SST-2.zip`),
};

for (const [name, run] of Object.entries(probes)) {
  console.log(`@@start ${name}`);
  let message = "(no error)";
  try {
    await run();
  } catch (e) {
    message = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  console.log(`@@end ${JSON.stringify({ name, message })}`);
}
