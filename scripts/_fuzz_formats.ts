/**
 * The formats `deno task fuzz` (scripts/fuzz.ts) feeds to the readers: for each, valid seed
 * files generated here (never read from ../shared), the fixtures its readers need beside the
 * input (a model directory, a dataset a predictions file is scored against, ...), and the check
 * that runs one input through the REAL readers the commands call and validates what they
 * return. A check resolves (a valid result) or throws; scripts/_fuzz_worker.ts classifies what
 * it throws.
 * @module
 */
import { InputError } from "../data/errors.ts";
import { decodeNpy, encodeNpy } from "../data/npy.ts";
import { H5Reader, H5Store, type H5StoreSettings, statePath } from "../data/h5_store.ts";
import { openStore, shardAttrs, shardStatus } from "../data/shard_set.ts";
import { shardRows } from "../data/shard.ts";
import { bertTokenizerJson, type BertTokenizerLike, loadTokenizer } from "../data/tokenize.ts";
import { f32ToF16Bits } from "../data/half.ts";
import { writeSyntheticSquad } from "../data/synthetic.ts";
import { type BertConfig, bertConfigToJson, bertWeightShapes } from "../model/config.ts";
import { encodeSafetensors, readSafetensors } from "../model/safetensors.ts";
import { loadBertCheckpoint } from "../model/checkpoint.ts";
import { randomBertWeights } from "../model/init.ts";
import { getTask, squad, TASK_NAMES } from "../tasks/mod.ts";
import { evaluateFiles } from "../tasks/evaluate.ts";
import type { GlueTask } from "../tasks/types.ts";
import { kindOf } from "../tasks/kinds/mod.ts";
import { checkStore } from "../train/heads/mod.ts";
import type { MutationKind } from "./_fuzz_mutate.ts";
import { encodeZip, extractZip, INFLATE_SLACK, type ZipStats } from "../data/zip.ts";

/** A reader returned something no reader may return for any input. */
export class FuzzInvariantError extends Error {}

/** Where a format's check reads its input and fixtures. */
export interface FuzzContext {
  /** A folder of this worker's own. */
  dir: string;
}

/** One format: its seeds, how to mutate them, and the check. */
export interface FuzzFormat {
  /** `--format` name. */
  name: string;
  /** What the seeds are, for help texts. */
  what: string;
  /** The mutations that suit its files. */
  kind: MutationKind;
  /** Bytes at the start of the file that byte mutations favour (binary headers). */
  hot?: number;
  /** Runs through libhdf5 (h5wasm): a hang or abort there is contained, not a failure. */
  hdf5?: boolean;
  /** Writes the fixtures into `ctx.dir`; returns the valid seed inputs. */
  setup(ctx: FuzzContext): Promise<Uint8Array[]>;
  /**
   * Runs the input (already written to `path`, the path returned by `inputPath`) through the
   * readers. Each element of the result is one reader call: it resolves with a valid result or
   * throws; every call is classified on its own.
   */
  probes(ctx: FuzzContext, path: string): (() => Promise<void>)[];
  /** Where the input goes: the file the readers are pointed at. */
  inputPath(ctx: FuzzContext, n: number): string;
  /**
   * The names an InputError about this input may give (default: the input's path). The
   * sidecar's: the store it describes, too.
   */
  names?(path: string): string[];
  /** Removes what one input left (default: the input file). */
  cleanup?(ctx: FuzzContext, path: string): Promise<void>;
}

const enc = new TextEncoder();
const must = (ok: unknown, what: string): void => {
  if (!ok) throw new FuzzInvariantError(what);
};

// ---------------------------------------------------------------- a tiny model

const VOCAB = [
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "[MASK]",
  "the",
  "cat",
  "sat",
  "good",
  "bad",
  "film",
  "##s",
  ".",
  "a",
  "is",
  "who",
  "?",
  "caf",
  "##e",
];

const CFG: BertConfig = {
  vocabSize: VOCAB.length,
  hiddenSize: 4,
  numHiddenLayers: 1,
  numAttentionHeads: 2,
  intermediateSize: 8,
  maxPositionEmbeddings: 16,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

/** The tiny model's tensors as stored (`bert.` prefix, a classifier head). */
function tinyTensors(): Map<string, { shape: number[]; data: Float32Array }> {
  const w = randomBertWeights(CFG, 7);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of w) out.set(`bert.${k}`, v);
  out.set("classifier.weight", {
    shape: [2, 4],
    data: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]),
  });
  out.set("classifier.bias", { shape: [2], data: Float32Array.from([0.5, -0.5]) });
  return out;
}

/** Safetensors bytes from raw entries (any dtype the format knows). */
function rawSafetensors(
  entries: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  const json = enc.encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let p = 8 + json.length;
  for (const e of entries) {
    out.set(e.bytes, p);
    p += e.bytes.length;
  }
  return out;
}

function safetensorsSeeds(): Uint8Array[] {
  const t = tinyTensors();
  const f32 = encodeSafetensors(t, { format: "pt" });
  const f16 = encodeSafetensors(t, undefined, { dtype: "F16" });
  const bytesOf = (a: Float32Array | Uint16Array | BigInt64Array) =>
    new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
  const entries = [...t].map(([name, v]) => ({
    // Unprefixed names and BF16 (the high half of each float32).
    name: name.replace(/^bert\./, ""),
    dtype: "BF16",
    shape: v.shape,
    bytes: bytesOf(Uint16Array.from(new Uint32Array(v.data.buffer.slice(0)), (u) => u >>> 16)),
  }));
  entries.push({
    name: "bert.embeddings.position_ids",
    dtype: "I64",
    shape: [1, 16],
    bytes: bytesOf(BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i))),
  });
  entries.push({
    name: "cls.predictions.bias",
    dtype: "F16",
    shape: [3],
    bytes: bytesOf(f32ToF16Bits([1, 2, 3])),
  });
  return [f32, f16, rawSafetensors(entries, { format: "pt", note: "bf16" })];
}

function tokenizerProbe(tok: BertTokenizerLike): void {
  must(tok.vocabSize === tok.vocab.length && tok.vocabSize > 0, `vocabSize ${tok.vocabSize}`);
  for (let i = 0; i < tok.vocab.length; i++) {
    must(typeof tok.vocab[i] === "string", `vocab[${i}] is ${typeof tok.vocab[i]}`);
  }
  for (const id of [tok.clsId, tok.sepId, tok.unkId, tok.padId]) {
    must(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `special id ${id}`);
  }
  for (const text of ["The cats sat. Who is good?", "Café naïve 日本語 ##s [CLS] x\u0301", ""]) {
    const t = tok.tokenizeWithOffsets(text);
    must(t.ids.length === t.tokens.length && t.ids.length === t.offsets.length, "lengths");
    t.ids.forEach((id, i) => {
      must(Number.isInteger(id) && id >= 0 && id < tok.vocabSize, `id ${id} of ${t.tokens[i]}`);
      const [s, e] = t.offsets[i];
      must(0 <= s && s <= e && e <= text.length, `offsets [${s}, ${e}) of ${text.length}`);
    });
  }
  const e = tok.encode("the cat sat", "who is good ?", 8);
  must(e.inputIds.length === 8 && e.inputIds[0] === tok.clsId, "encode");
}

// ---------------------------------------------------------------- GLUE

const GLUE_SEEDS: Record<string, string> = {
  sst2: "sentence\tlabel\nthe cat sat . \t1\nbad film \t0\na good film\t1\n",
  stsb: "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n" +
    "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA cat sat.\tThe cat sat.\t5.000\n" +
    "1\tmain-news\theadlines\t2013\t0001\tnone\tnone\tbad\tgood\t0.250\n" +
    "2\tmain-forum\tdeft\t2014\t0002\tnone\tnone\tWho?\tIs it?\t3.8\n",
  mnli: "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t" +
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n" +
    "0\t31193\t31193n\tgovernment\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tThe cat sat.\tA cat is." +
    "\tneutral\tneutral\n" +
    "1\t101457\t101457e\ttelephone\t( c )\t( d )\t(ROOT c)\t(ROOT d)\tbad\tgood\tentailment" +
    "\tentailment\n",
  cola: "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more he reads, the more books.",
  qqp: "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n0\t1\t2\tWho?\tIs it?\t0\n" +
    "1\t3\t4\tWhat is\ta cat?\n?\t1\n2\t5\t6\tgood\tbad\t1\n",
};

function checkGlueRows(
  task: GlueTask,
  rows: Awaited<ReturnType<GlueTask["readRows"]>>,
  vocab: number,
) {
  must(rows.n === rows.nExamples && rows.n > 0, `n ${rows.n}, examples ${rows.nExamples}`);
  const S = rows.seq, w = rows.labelWidth;
  must(rows.inputIds.length === rows.n * S && rows.attentionMask.length === rows.n * S, "shapes");
  must(rows.labels.length === rows.n * w, "labels shape");
  for (const id of rows.inputIds) must(id >= 0 && id < vocab, `token id ${id}`);
  for (const m of rows.attentionMask) must(m === 0 || m === 1, `mask ${m}`);
  const kind = kindOf(task);
  for (const l of rows.labels) {
    if (kind.name === "regression") {
      const [lo, hi] = task.scoreRange ?? [-Infinity, Infinity];
      must(Number.isFinite(l) && l >= lo && l <= hi, `score ${l}`);
    } else {
      must(Number.isInteger(l) && l >= 0 && l < Math.max(2, task.labels.length), `label ${l}`);
    }
  }
}

// ---------------------------------------------------------------- SQuAD

const SQUAD_UNICODE = JSON.stringify({
  version: "v2.0",
  data: [{
    title: "Ü",
    paragraphs: [{
      context: "😀 The cat sat. Café is good.",
      qas: [
        { id: "u1", question: "Who sat?", answers: [{ text: "The cat", answer_start: 2 }] },
        {
          id: "u2",
          question: "What is bad?",
          answers: [],
          is_impossible: true,
          plausible_answers: [{ text: "Café", answer_start: 16 }],
        },
        {
          id: "u4",
          question: "Who sat where the cat sat when the good film is a bad film and who is good " +
            "and who is bad and the cat is a cat?",
          answers: [{ text: "cat", answer_start: 6 }],
        },
        {
          id: "u3",
          question: "What is good?",
          answers: [{ text: "Café", answer_start: 16 }, { text: "Café is", answer_start: 16 }],
        },
      ],
    }],
  }],
});

function squadQuestions() {
  return JSON.parse(SQUAD_UNICODE).data[0].paragraphs[0].qas as { id: string }[];
}

// ---------------------------------------------------------------- HDF5

const H5_SEEDS: {
  name: string;
  s: H5StoreSettings;
  rows: number;
  attrs: Record<string, string>;
}[] = [
  {
    name: "sst2-full",
    s: { n: 3, layers: 2, tokens: 4, hidden: 4, layout: "full", dtype: "f32" },
    rows: 3,
    attrs: { task: "sst2", split: "train", model_id: "tiny" },
  },
  {
    name: "stsb-cls-f16",
    s: { n: 4, layers: 3, tokens: 5, hidden: 2, layout: "cls", dtype: "f16", labelType: "float32" },
    rows: 4,
    attrs: { task: "stsb", split: "dev" },
  },
  {
    name: "squad-full",
    s: { n: 2, layers: 2, tokens: 6, hidden: 2, layout: "full", dtype: "f32", labelWidth: 2 },
    rows: 2,
    attrs: { task: "squad", split: "train" },
  },
  {
    name: "partial",
    s: { n: 4, layers: 2, tokens: 3, hidden: 2, layout: "full", dtype: "f32", chunkRows: 1 },
    rows: 2,
    attrs: { task: "rte", split: "train" },
  },
];

async function writeH5Seed(path: string, seed: typeof H5_SEEDS[number]): Promise<void> {
  const { s, rows } = seed;
  const st = await H5Store.create(path, { ...s, attrs: seed.attrs }, { flushEveryRows: 1 });
  const row = s.layout === "full" ? s.layers * s.tokens * s.hidden : s.layers * s.hidden;
  const lw = s.labelWidth ?? 1;
  await st.writeRows(0, {
    embeds: Float32Array.from({ length: rows * row }, (_, i) => Math.sin(i) * 3),
    inputIds: Int32Array.from({ length: rows * s.tokens }, (_, i) => i % 7),
    tokenTypeIds: new Int32Array(rows * s.tokens),
    attentionMask: new Int32Array(rows * s.tokens).fill(1),
    labels: Array.from(
      { length: rows * lw },
      (_, i) => s.labelType === "float32" ? i * 0.5 : lw > 1 ? i % s.tokens : i % 2,
    ),
    idx: Array.from({ length: rows }, (_, i) => i),
  });
  await st.close();
}

/** H5Reader.open + the store checks + reads of the complete rows, as head training does. */
async function h5Probe(path: string): Promise<void> {
  const r = await H5Reader.open(path);
  try {
    const s = r.shape;
    for (const d of [s.n, s.layers, s.tokens, s.hidden]) {
      must(Number.isSafeInteger(d) && d >= 0, `dim ${d}`);
    }
    must(r.rowsComplete >= 0 && r.rowsComplete <= s.n, `rowsComplete ${r.rowsComplete} of ${s.n}`);
    const name = typeof r.attrs.task === "string" ? r.attrs.task.toLowerCase() : "";
    const task = getTask(TASK_NAMES.includes(name as typeof TASK_NAMES[number]) ? name : "sst2");
    try {
      checkStore(r, { task, modelId: "tiny", role: r.attrs.split === "dev" ? "dev" : "train" });
    } catch (e) {
      // The store checks (train/ap_train.ts) throw plain Errors naming the file: expected answers
      // to a mismatched store, not reader failures.
      if (e instanceof InputError || !(e instanceof Error) || e.constructor !== Error) throw e;
      if (!e.message.includes(path)) throw new FuzzInvariantError(`checkStore: ${e.message}`);
    }
    const rowSize = s.layout === "full" ? s.layers * s.tokens * s.hidden : s.layers * s.hidden;
    const n = Math.min(r.rowsComplete, 3);
    if (n > 0) {
      const rows = r.readRows(0, n);
      must(rows.embeds.length === n * rowSize, "embeds length");
      must(rows.inputIds.length === n * s.tokens, "input_ids length");
      must(rows.labels.length === n * r.labelWidth && rows.idx.length === n, "labels/idx length");
      const idx = r.readIndices([n - 1, 0, n - 1]);
      must(idx.embeds.length === 3 * rowSize, "readIndices embeds length");
    }
  } finally {
    r.close();
  }
}

// ---------------------------------------------------------------- tokenizer settings

/** Long words for the tokenizer-settings format: at the largest word cap, past it, unsplittable. */
const LONG_WORDS = [
  "ab".repeat(500),
  "thecat".repeat(200) + "é",
  "cat" + "s".repeat(997) + "!",
  "x".repeat(1001) + " the cats",
];

/** tokenizer.json files whose settings the mutations then change. */
function tokenizerSettingsSeeds(): Record<string, unknown>[] {
  const letters = "abcdefghijklmnopqrstuvwxyz".split("");
  const vocab = [...new Set([...VOCAB, ...letters, ...letters.map((c) => `##${c}`)])];
  const at = (json: Record<string, unknown>, model: Record<string, unknown>, norm = {}) => ({
    ...json,
    model: { ...(json.model as object), ...model },
    normalizer: { ...(json.normalizer as object), ...norm },
  });
  const base = bertTokenizerJson(vocab);
  const atPrefix = bertTokenizerJson(vocab.map((t) => t.replace(/^##/, "@@")));
  return [
    at(base, { max_input_chars_per_word: 1000 }),
    at(base, { max_input_chars_per_word: 100 }, { strip_accents: true, lowercase: false }),
    at(atPrefix, { continuing_subword_prefix: "@@", max_input_chars_per_word: 1000 }),
    at(base, { max_input_chars_per_word: 7 }, { clean_text: false, handle_chinese_chars: false }),
  ];
}

// ---------------------------------------------------------------- shard manifests

const SHARD_ROWS = 5;

/** Two shards of one capture of SHARD_ROWS rows, as capture --shard I/2 writes them. */
async function writeShards(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const idx = Array.from({ length: SHARD_ROWS }, (_, i) => i);
  for (let i = 0; i < 2; i++) {
    const shard = { index: i, count: 2 };
    const cut = shardRows(idx, shard);
    const n = cut.rowEnd - cut.rowStart;
    const s: H5StoreSettings = {
      n,
      layers: 1,
      tokens: 2,
      hidden: 2,
      layout: "full",
      dtype: "f32",
      attrs: { task: "sst2", split: "train", ...shardAttrs(shard, cut, SHARD_ROWS) },
    };
    const path = `${dir}/part-${i}.h5`;
    await Deno.remove(path).catch(() => {});
    await Deno.remove(statePath(path)).catch(() => {});
    const st = await H5Store.create(path, s);
    await st.writeRows(0, {
      embeds: Float32Array.from({ length: n * 4 }, (_, k) => k),
      inputIds: new Int32Array(n * 2),
      tokenTypeIds: new Int32Array(n * 2),
      attentionMask: new Int32Array(n * 2).fill(1),
      labels: Array.from({ length: n }, (_, k) => k % 2),
      idx: idx.slice(cut.rowStart, cut.rowEnd),
    });
    await st.close();
  }
}

// ---------------------------------------------------------------- the formats

/** Writes `text` files into `dir` (created). */
async function files(dir: string, f: Record<string, string | Uint8Array>): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const [name, v] of Object.entries(f)) {
    if (typeof v === "string") await Deno.writeTextFile(`${dir}/${name}`, v);
    else await Deno.writeFile(`${dir}/${name}`, v);
  }
}

let tinyTokenizer: BertTokenizerLike | undefined;
async function tokenizer(ctx: FuzzContext): Promise<BertTokenizerLike> {
  if (!tinyTokenizer) {
    await files(`${ctx.dir}/tok`, { "vocab.txt": VOCAB.join("\n") + "\n" });
    tinyTokenizer = await loadTokenizer(`${ctx.dir}/tok`);
  }
  return tinyTokenizer;
}

const inDir = (sub: string, file: string) => (ctx: FuzzContext) => `${ctx.dir}/${sub}/${file}`;

/** Every format, by name. */
export const FORMATS: FuzzFormat[] = [
  {
    name: "safetensors",
    what: "model.safetensors of a tiny BERT (F32, F16, BF16 + I64), read by loadBertCheckpoint",
    kind: "safetensors",
    async setup(ctx) {
      await files(`${ctx.dir}/st`, { "config.json": JSON.stringify(bertConfigToJson(CFG)) });
      return safetensorsSeeds();
    },
    inputPath: inDir("st", "model.safetensors"),
    probes: (ctx, path) => [
      async () => {
        const f = await readSafetensors(path);
        for (const [name, t] of f.tensors) {
          must(t.data.length === t.shape.reduce((a, b) => a * b, 1), `${name}: data vs shape`);
        }
      },
      async () => {
        const ck = await loadBertCheckpoint(`${ctx.dir}/st`);
        for (const [name, shape] of bertWeightShapes(ck.config)) {
          const w = ck.weights.get(name);
          must(w && w.shape.join() === shape.join(), `${name} shape`);
          must(w!.data.every(Number.isFinite), `${name} finite`);
        }
      },
    ],
  },
  {
    name: "config",
    what: "config.json of a tiny BERT beside valid weights, read by loadBertCheckpoint",
    kind: "json",
    async setup(ctx) {
      await files(`${ctx.dir}/cfg`, { "model.safetensors": safetensorsSeeds()[0] });
      const full = bertConfigToJson(CFG);
      const minimal = Object.fromEntries(
        Object.entries(full).filter(([k]) => /size|layers|heads|positions/.test(k)),
      );
      return [
        enc.encode(JSON.stringify(full, null, 2)),
        enc.encode(
          JSON.stringify({
            ...full,
            architectures: ["BertForSequenceClassification"],
            id2label: { 0: "a", 1: "b" },
          }),
        ),
        enc.encode(JSON.stringify(minimal)),
      ];
    },
    inputPath: inDir("cfg", "config.json"),
    probes: (ctx) => [
      async () => {
        const ck = await loadBertCheckpoint(`${ctx.dir}/cfg`);
        for (const v of Object.values(ck.config)) {
          must(typeof v === "string" || (Number.isFinite(v) && v > 0), `config value ${v}`);
        }
      },
    ],
  },
  {
    name: "vocab",
    what: "vocab.txt (LF, CRLF, no final newline), read by loadTokenizer and used to tokenize",
    kind: "text",
    setup: () =>
      Promise.resolve([
        enc.encode(VOCAB.join("\n") + "\n"),
        enc.encode(VOCAB.join("\r\n") + "\r\n"),
        enc.encode([...VOCAB, "naïve", "日"].join("\n")),
      ]),
    inputPath: inDir("vocab", "vocab.txt"),
    probes: (ctx) => [async () => tokenizerProbe(await loadTokenizer(`${ctx.dir}/vocab`))],
  },
  {
    name: "tokenizer",
    what: "tokenizer.json (uncased, cased, an added token), read by loadTokenizer and used",
    kind: "json",
    setup: () => {
      const plus = bertTokenizerJson(VOCAB);
      (plus.added_tokens as unknown[]).push({ id: VOCAB.length, content: "[X]", special: true });
      return Promise.resolve([
        enc.encode(JSON.stringify(bertTokenizerJson(VOCAB))),
        enc.encode(JSON.stringify(bertTokenizerJson(VOCAB, { lowercase: false, maxLength: 8 }))),
        enc.encode(JSON.stringify(plus, null, 1)),
      ]);
    },
    inputPath: inDir("tokjson", "tokenizer.json"),
    probes: (ctx) => [async () => tokenizerProbe(await loadTokenizer(`${ctx.dir}/tokjson`))],
  },
  {
    name: "tokenizer-settings",
    what: "tokenizer.json settings (word cap, prefix, normaliser flags) used on long words",
    kind: "json",
    setup: () =>
      Promise.resolve(tokenizerSettingsSeeds().map((j) => enc.encode(JSON.stringify(j)))),
    inputPath: inDir("toksettings", "tokenizer.json"),
    probes: (ctx) => [async () => {
      const tok = await loadTokenizer(`${ctx.dir}/toksettings`);
      tokenizerProbe(tok);
      // Words at and past the largest word cap accepted: the split's work per word is bounded
      // (data/wordpiece.ts), so these stay within the time limit per input whatever the file
      // says.
      for (const text of LONG_WORDS) {
        const t = tok.tokenizeWithOffsets(text);
        must(t.ids.length === t.offsets.length && t.ids.length > 0, "long words tokenized");
      }
    }],
  },
  {
    name: "glue-tsv",
    what: "GLUE TSVs of SST-2, STS-B, MNLI, CoLA, QQP, each read by all five tasks' readRows",
    kind: "text",
    setup: () => Promise.resolve(Object.values(GLUE_SEEDS).map((t) => enc.encode(t))),
    inputPath: inDir("glue", "dev.tsv"),
    probes: (ctx, path) => [
      ...Object.keys(GLUE_SEEDS).map((name) => async () => {
        const task = getTask(name) as GlueTask;
        const tok = await tokenizer(ctx);
        checkGlueRows(
          task,
          await task.readRows(path, { tokenizer: tok, maxSeqLength: 12 }),
          tok.vocabSize,
        );
      }),
      async () => {
        const { examples } = await getTask("sst2").readFile(path, { test: true });
        for (const e of examples) {
          must(typeof e.textA === "string" && e.label === undefined, "test row");
        }
      },
    ],
  },
  {
    name: "squad",
    what: "SQuAD 2.0 JSON (generated, unicode, 1.1 style), read by readSquad and readRows",
    kind: "json",
    async setup(ctx) {
      const gen = await writeSyntheticSquad(`${ctx.dir}/gen`, "dev", { articles: 2, seed: 3 });
      const v11 = JSON.stringify({
        version: "1.1",
        data: [{
          title: "T",
          paragraphs: [{
            context: "The cat sat.",
            qas: [{ id: "a", question: "Who?", answers: [{ text: "cat", answer_start: 4 }] }],
          }],
        }],
      });
      return [await Deno.readFile(gen), enc.encode(SQUAD_UNICODE), enc.encode(v11)];
    },
    inputPath: inDir("squad", "dev.json"),
    probes: (ctx, path) => [
      async () => {
        const ex = await squad.readFile(path, { warn: () => {} });
        const ids = new Set<string>();
        for (const e of ex) {
          must(typeof e.id === "string" && !ids.has(e.id), `id ${e.id}`);
          ids.add(e.id);
          for (const a of e.answers) {
            must(Number.isInteger(a.start) && a.start >= 0 && a.start <= e.context.length, "start");
          }
        }
      },
      async () => {
        const tok = await tokenizer(ctx);
        const rows = await squad.readRows(path, {
          tokenizer: tok,
          maxSeqLength: 24,
          training: true,
        });
        must(rows.labels.length === 2 * rows.n && rows.idx.length === rows.n, "rows shape");
        for (const l of rows.labels) must(Number.isInteger(l) && l >= 0 && l < 24, `label ${l}`);
        for (const i of rows.idx) must(Number.isInteger(i) && i >= 0, `idx ${i}`);
      },
    ],
  },
  {
    name: "pred-glue",
    what: "GLUE predictions (SST-2 labels, STS-B scores, MNLI names), scored by evaluateFiles",
    kind: "text",
    async setup(ctx) {
      await files(`${ctx.dir}/predglue`, {
        "sst2.tsv": GLUE_SEEDS.sst2,
        "stsb.tsv": GLUE_SEEDS.stsb,
        "mnli.tsv": GLUE_SEEDS.mnli,
      });
      return ["1\n0\n0\n", "4.5\n0.25\n-1e-7\n", "neutral\nentailment\n"].map((t) => enc.encode(t));
    },
    inputPath: inDir("predglue", "pred.txt"),
    probes: (ctx, path) =>
      ["sst2", "stsb", "mnli"].map((task) => async () => {
        const m = await evaluateFiles({
          task,
          data: `${ctx.dir}/predglue/${task}.tsv`,
          pred: path,
        });
        for (const v of Object.values(m)) must(typeof v === "number", `metric ${v}`);
      }),
  },
  {
    name: "pred-squad",
    what: "SQuAD predictions {id: answer} (all, some, extra ids), scored by evaluateFiles",
    kind: "json",
    async setup(ctx) {
      const na = Object.fromEntries(squadQuestions().map((q, i) => [q.id, i / 4]));
      await files(`${ctx.dir}/predsquad`, {
        "data.json": SQUAD_UNICODE,
        "na.json": JSON.stringify(na),
      });
      return [
        { u1: "the cat", u2: "", u3: "Café", u4: "cat" },
        { u1: "cat" },
        { u1: "The cat", u2: "Café", u3: "", u4: "", x: "y" },
      ].map((p) => enc.encode(JSON.stringify(p)));
    },
    inputPath: inDir("predsquad", "pred.json"),
    probes: (ctx, path) =>
      [undefined, `${ctx.dir}/predsquad/na.json`].map((naProb) => async () => {
        const m = await evaluateFiles({
          task: "squad",
          data: `${ctx.dir}/predsquad/data.json`,
          pred: path,
          naProb,
          warn: () => {},
        });
        for (const v of Object.values(m)) must(Number.isFinite(v), `metric ${v}`);
      }),
  },
  {
    name: "na-prob",
    what: "SQuAD no-answer probabilities {id: p}, scored with evaluateFiles --na-prob",
    kind: "json",
    async setup(ctx) {
      await files(`${ctx.dir}/naprob`, {
        "data.json": SQUAD_UNICODE,
        "pred.json": JSON.stringify({ u1: "the cat", u2: "", u3: "Café", u4: "cat" }),
      });
      const ids = squadQuestions().map((q) => q.id);
      return [
        Object.fromEntries(ids.map((id, i) => [id, i / 3])),
        Object.fromEntries(ids.map((id) => [id, 1])),
        Object.fromEntries(ids.map((id, i) => [id, -5 + i * 10])),
      ].map((p) => enc.encode(JSON.stringify(p)));
    },
    inputPath: inDir("naprob", "na.json"),
    probes: (ctx, path) => [
      async () => {
        const m = await evaluateFiles({
          task: "squad",
          data: `${ctx.dir}/naprob/data.json`,
          pred: `${ctx.dir}/naprob/pred.json`,
          naProb: path,
          warn: () => {},
        });
        for (const v of Object.values(m)) must(Number.isFinite(v), `metric ${v}`);
      },
    ],
  },
  {
    name: "npy",
    what: ".npy arrays (<f4, <i4; 0-d to 3-d), read by decodeNpy",
    kind: "npy",
    hot: 80,
    setup: () =>
      Promise.resolve([
        encodeNpy(Float32Array.from({ length: 12 }, (_, i) => i / 3), [3, 4]),
        encodeNpy(Int32Array.from([1, -2, 3, 4, 5]), [5]),
        encodeNpy(new Float32Array(0), [0, 2]),
        encodeNpy(Float32Array.from({ length: 12 }, (_, i) => -i), [2, 3, 2]),
      ]),
    inputPath: inDir("npy", "logits.npy"),
    probes: (_ctx, path) => [
      async () => {
        const { data, shape } = decodeNpy(await Deno.readFile(path), path);
        must(shape.every((d) => Number.isSafeInteger(d) && d >= 0), `shape [${shape}]`);
        must(data.length === shape.reduce((a, b) => a * b, 1), "data vs shape");
      },
    ],
  },
  {
    name: "h5",
    what: "activation stores written by H5Store (f32/f16, full/cls, span labels, incomplete)",
    kind: "binary",
    hot: 4096,
    hdf5: true,
    async setup(ctx) {
      const out: Uint8Array[] = [];
      await Deno.mkdir(`${ctx.dir}/h5seed`, { recursive: true });
      for (const seed of H5_SEEDS) {
        const p = `${ctx.dir}/h5seed/${seed.name}.h5`;
        await Deno.remove(p).catch(() => {});
        await Deno.remove(statePath(p)).catch(() => {});
        await writeH5Seed(p, seed);
        out.push(await Deno.readFile(p));
      }
      return out;
    },
    // A new name per input: HDF5 keys open files by name and inode.
    inputPath: (ctx, n) => `${ctx.dir}/h5/in-${n}.h5`,
    probes: (_ctx, path) => [() => h5Probe(path)],
  },
  {
    name: "h5-state",
    what: "the sidecar FILE.h5.state.json of an interrupted store, read by H5Reader and resume",
    kind: "json",
    hdf5: true,
    async setup(ctx) {
      const seed = H5_SEEDS[3];
      const p = `${ctx.dir}/h5state-seed/partial.h5`;
      await Deno.mkdir(`${ctx.dir}/h5state-seed`, { recursive: true });
      await Deno.remove(p).catch(() => {});
      await Deno.remove(statePath(p)).catch(() => {});
      await writeH5Seed(p, seed);
      const state = JSON.parse(await Deno.readTextFile(statePath(p)));
      return [
        enc.encode(JSON.stringify(state, null, 2)),
        enc.encode(JSON.stringify({ ...state, rowsDone: 1, complete: false })),
      ];
    },
    inputPath: (ctx, n) => `${ctx.dir}/h5state/in-${n}.h5.state.json`,
    names: (sp) => [sp, sp.replace(/\.state\.json$/, "")],
    probes: (ctx, sp) => {
      const path = sp.replace(/\.state\.json$/, "");
      const seed = H5_SEEDS[3];
      return [
        async () => {
          await Deno.copyFile(`${ctx.dir}/h5state-seed/partial.h5`, path);
          await h5Probe(path);
        },
        async () => {
          await Deno.copyFile(`${ctx.dir}/h5state-seed/partial.h5`, path);
          const st = await H5Store.openForResume(path, { ...seed.s, attrs: seed.attrs });
          must(st.rowsDone >= 0 && st.rowsDone <= seed.s.n, `rowsDone ${st.rowsDone}`);
          await st.close();
        },
      ];
    },
    async cleanup(_ctx, sp) {
      await Deno.remove(sp).catch(() => {});
      await Deno.remove(sp.replace(/\.state\.json$/, "")).catch(() => {});
    },
  },
  {
    name: "zip",
    what: "GLUE zips (folders, stored and deflated entries, a bomb), unpacked by extractZip",
    kind: "zip",
    hot: 128,
    setup: async () => [
      await encodeZip([
        { name: "SST-2/", data: "" },
        { name: "SST-2/train.tsv", data: GLUE_SEEDS.sst2.repeat(40) },
        { name: "SST-2/dev.tsv", data: GLUE_SEEDS.sst2, store: true },
        { name: "__MACOSX/SST-2/._dev.tsv", data: "junk" },
      ]),
      // A bomb: 4 MB of zeros (about 4 KB deflated) declared as 1,000 bytes.
      await encodeZip([
        { name: "QNLIv2/dev.tsv", data: GLUE_SEEDS.qqp },
        { name: "QNLIv2/train.tsv", data: new Uint8Array(4 << 20), declaredSize: 1000 },
      ]),
      await encodeZip(
        Array.from({ length: 12 }, (_, i) => ({ name: `t${i}.tsv`, data: `${i}\t`.repeat(i) })),
      ),
    ],
    inputPath: inDir("zip", "in.zip"),
    probes: (ctx, path) => [
      async () => {
        // The bound per input: what the zip may unpack to, and how far past it inflation goes.
        const stats: ZipStats = { inflated: 0, written: 0 };
        try {
          await extractZip(path, `${ctx.dir}/zip/out`, "T", { maxBytes: ZIP_FUZZ_CAP, stats });
        } finally {
          must(stats.written <= ZIP_FUZZ_CAP, `wrote ${stats.written} bytes`);
          must(stats.inflated <= ZIP_FUZZ_CAP + INFLATE_SLACK, `inflated ${stats.inflated} bytes`);
          const rss = Deno.memoryUsage().rss;
          must(rss < 1 << 30, `resident memory ${rss} bytes`);
        }
      },
    ],
    async cleanup(ctx, path) {
      await Deno.remove(path).catch(() => {});
      await Deno.remove(`${ctx.dir}/zip/out`, { recursive: true }).catch(() => {});
    },
  },
  {
    name: "manifest",
    what: "a .txt manifest of shard files (paths, globs, comments, CRLF), read by --h5 and " +
      "merge-shards --dry-run",
    kind: "text",
    async setup(ctx) {
      const dir = `${ctx.dir}/manifest`;
      await writeShards(dir);
      return [
        "part-0.h5\npart-1.h5\n",
        "# the shards of one capture\r\n\r\npart-*.h5\r\n",
        `part-1.h5\n${dir}/part-0.h5`,
        "part-[01].h5\n# part-2.h5\n",
      ].map((t) => enc.encode(t));
    },
    inputPath: (ctx, n) => `${ctx.dir}/manifest/in-${n}.txt`,
    // Errors may name the manifest or a file it names (the shards beside it).
    names: (p) => [p, p.slice(0, p.lastIndexOf("/") + 1)],
    probes: (_ctx, path) => [
      async () => {
        const set = await openStore(path);
        try {
          must(set.shape.n === SHARD_ROWS, `rows ${set.shape.n}`);
          const rows = set.readRows(0, set.shape.n);
          must(rows.idx.length === SHARD_ROWS, "idx length");
        } finally {
          set.close();
        }
      },
      async () => {
        const st = await shardStatus(path);
        must(st.lines.length >= 1, "status lines");
      },
    ],
  },
];

/** Most bytes a fuzzed zip may unpack to. */
const ZIP_FUZZ_CAP = 8 << 20;

/**
 * The fuzzer's own check (not in {@linkcode FORMATS}): seed k ends its input in the k-th way the
 * fuzzer must tell apart: a valid result, an InputError naming the file, a TypeError, an
 * InputError naming no file, an unhandled rejection, a hang and memory past the limit (up to
 * 1.5 GiB, then a wait: a hang if the limit were not enforced). tests/fuzz_test.ts runs it.
 */
export const SELF_CHECK: FuzzFormat = {
  name: "self-check",
  what: "the fuzzer's own check: one seed per outcome",
  kind: "text",
  setup: () =>
    Promise.resolve(
      ["valid", "refused", "type-error", "unnamed", "rejection", "hang", "memory"].map((t) =>
        enc.encode(t)
      ),
    ),
  inputPath: inDir("self", "input.txt"),
  probes: (_ctx, path) => [
    async () => {
      const t = await Deno.readTextFile(path);
      if (t === "refused") throw new InputError(`${path}: refused`);
      if (t === "type-error") (null as unknown as { x: number }).x;
      if (t === "unnamed") throw new InputError("refused without naming the file");
      if (t === "rejection") {
        Promise.reject(new RangeError("nobody waits for this"));
        await new Promise((r) => setTimeout(r, 50));
      }
      if (t === "hang") { for (;;); }
      if (t === "memory") {
        const keep: Float64Array[] = [];
        for (let k = 0; k < 192; k++) keep.push(new Float64Array(1 << 20).fill(k));
        await new Promise((r) => setTimeout(r, 60_000));
        must(keep.length === 192, "kept");
      }
    },
  ],
};

/** The format called `name` (one of {@linkcode FORMATS}, or {@linkcode SELF_CHECK}). */
export function formatByName(name: string): FuzzFormat {
  const f = [...FORMATS, SELF_CHECK].find((x) => x.name === name);
  if (!f) {
    throw new InputError(
      `unknown format "${name}" (formats: ${FORMATS.map((x) => x.name).join(" ")})`,
    );
  }
  return f;
}
