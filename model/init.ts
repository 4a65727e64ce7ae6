/**
 * Seeded random BERT initialisation and `make-tiny-bert`: a complete Hugging Face model
 * directory (config.json, model.safetensors, vocab.txt, tokenizer.json, tokenizer_config.json)
 * for tests, demos and GPU checks that need a real-looking BERT without a download.
 *
 * Initialisation follows BERT (`initializer_range` 0.02): normal(0, 0.02) for weight matrices
 * and embeddings, zeros for biases, ones/zeros for LayerNorm. Every draw comes from the seeded
 * {@linkcode Rng} of data/rng.ts, each tensor from its own stream derived from the seed and the
 * tensor's name, so the same seed gives byte-identical files.
 * @module
 */

import { type BertConfig, bertWeightShapes, type HostWeights } from "./config.ts";
import { saveBertCheckpoint } from "./checkpoint.ts";
import { bertTokenizerJson, readVocab } from "../data/tokenize.ts";
import { Rng } from "../data/rng.ts";
import { writeTextAtomic } from "../data/output/mod.ts";

/**
 * BERT-initialised weights for `config`: normal(0, std) for matrices and embeddings, zeros for
 * biases, ones/zeros for LayerNorm weight/bias. Same (config, seed) → identical values.
 */
export function randomBertWeights(config: BertConfig, seed: number, std = 0.02): HostWeights {
  const out: HostWeights = new Map();
  for (const [name, shape] of bertWeightShapes(config)) {
    const n = shape.reduce((a, d) => a * d, 1);
    const data = new Float32Array(n);
    if (name.includes("LayerNorm")) {
      if (name.endsWith(".weight")) data.fill(1);
    } else if (name.endsWith(".weight")) {
      const rng = new Rng(seed, name);
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    out.set(name, { shape, data });
  }
  return out;
}

/** Common English words for the built-in vocabulary (lower case). */
const WORDS = (
  "the of and to a in is it you that he was for on are with as i his they be at one have " +
  "this from or had by not word but what some we can out other were all there when up use " +
  "your how said an each she which do their time if will way about many then them write " +
  "would like so these her long make thing see him two has look more day could go come did " +
  "number sound no most people my over know water than call first who may down side been " +
  "now find good new great film movie story bad best well very just only really much even " +
  "love little man old year work life back still world question answer what where why"
).split(" ");

/**
 * The built-in vocabulary: BERT's special tokens first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3,
 * [MASK]=4), then printable ASCII characters, their `##` continuations, and common words.
 * Deterministic (no seed involved).
 */
export function builtinVocab(): string[] {
  const v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const chars: string[] = [];
  for (let c = 33; c < 127; c++) {
    const ch = String.fromCharCode(c);
    if (ch >= "A" && ch <= "Z") continue; // uncased: upper case never reaches the vocabulary
    chars.push(ch);
  }
  v.push(...chars);
  v.push(...chars.filter((c) => /[a-z0-9]/.test(c)).map((c) => `##${c}`));
  v.push(
    ...["##s", "##ed", "##ing", "##ly", "##er", "##est", "##n't"].filter((p) => !v.includes(p)),
  );
  const seen = new Set(v);
  for (const w of WORDS) {
    if (!seen.has(w)) {
      seen.add(w);
      v.push(w);
    }
  }
  return v;
}

/** Options for {@linkcode makeTinyBert}. */
export interface MakeTinyBertOptions {
  /** Output directory (created). */
  out: string;
  seed: number;
  layers: number;
  hidden: number;
  heads: number;
  intermediate: number;
  /** Path of a vocab.txt to use; default {@linkcode builtinVocab}. */
  vocab?: string;
  /** max_position_embeddings; default 512. */
  maxPositions?: number;
  /** type_vocab_size; default 2. */
  typeVocabSize?: number;
}

/**
 * Writes a complete, seeded, randomly initialised BERT in the Hugging Face layout.
 *
 * @example
 * ```ts
 * import { makeTinyBert } from "./init.ts";
 * import { loadBertCheckpoint } from "./checkpoint.ts";
 * const out = await Deno.makeTempDir();
 * await makeTinyBert({ out, seed: 1, layers: 2, hidden: 16, heads: 2, intermediate: 32 });
 * const { config } = await loadBertCheckpoint(out);
 * console.assert(config.numHiddenLayers === 2);
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function makeTinyBert(opts: MakeTinyBertOptions): Promise<void> {
  for (const k of ["layers", "hidden", "heads", "intermediate"] as const) {
    const v = opts[k];
    if (!Number.isInteger(v) || v <= 0) {
      throw new Error(`make-tiny-bert: --${k} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(opts.seed)) {
    throw new Error(`make-tiny-bert: --seed must be an integer, got ${opts.seed}`);
  }
  if (opts.hidden % opts.heads !== 0) {
    throw new Error(
      `make-tiny-bert: --hidden ${opts.hidden} must be divisible by --heads ${opts.heads}`,
    );
  }
  let vocab: string[];
  if (opts.vocab) {
    vocab = await readVocab(opts.vocab, {
      notFound: `make-tiny-bert: cannot read --vocab ${opts.vocab}: no such file`,
    });
  } else {
    vocab = builtinVocab();
  }
  const maxPositions = opts.maxPositions ?? 512;
  const config: BertConfig = {
    vocabSize: vocab.length,
    hiddenSize: opts.hidden,
    numHiddenLayers: opts.layers,
    numAttentionHeads: opts.heads,
    intermediateSize: opts.intermediate,
    maxPositionEmbeddings: maxPositions,
    typeVocabSize: opts.typeVocabSize ?? 2,
    layerNormEps: 1e-12,
    hiddenAct: "gelu",
  };
  const tokenizerJson = bertTokenizerJson(vocab); // validates [UNK]/[CLS]/[SEP] are present
  await saveBertCheckpoint(opts.out, config, randomBertWeights(config, opts.seed));
  await writeTextAtomic(`${opts.out}/vocab.txt`, vocab.join("\n") + "\n");
  await writeTextAtomic(`${opts.out}/tokenizer.json`, JSON.stringify(tokenizerJson) + "\n");
  await writeTextAtomic(
    `${opts.out}/tokenizer_config.json`,
    JSON.stringify(
      {
        tokenizer_class: "BertTokenizer",
        do_lower_case: true,
        model_max_length: maxPositions,
        cls_token: "[CLS]",
        sep_token: "[SEP]",
        pad_token: "[PAD]",
        unk_token: "[UNK]",
        mask_token: "[MASK]",
      },
      null,
      2,
    ) + "\n",
  );
}
