/**
 * BERT configuration in camelCase, read from / written to Hugging Face's `config.json`.
 * @module
 */
import { InputError, preview } from "../data/errors.ts";

/** The shape of a BERT model (Hugging Face `BertConfig`, camelCase). */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  layerNormEps: number;
  /** Only exact-erf "gelu" is supported (BERT's). */
  hiddenAct: "gelu";
}

/** Host-side weights keyed by Hugging Face name without the `bert.` prefix. */
export type HostWeights = Map<string, { shape: number[]; data: Float32Array }>;

const FIELDS: [keyof BertConfig, string][] = [
  ["vocabSize", "vocab_size"],
  ["hiddenSize", "hidden_size"],
  ["numHiddenLayers", "num_hidden_layers"],
  ["numAttentionHeads", "num_attention_heads"],
  ["intermediateSize", "intermediate_size"],
  ["maxPositionEmbeddings", "max_position_embeddings"],
  ["typeVocabSize", "type_vocab_size"],
  ["layerNormEps", "layer_norm_eps"],
];

/**
 * Parses a Hugging Face `config.json` object into a {@linkcode BertConfig}.
 * Throws an {@linkcode InputError} naming `where` and the field when one is missing, not a
 * positive number, or (every size) not an integer.
 */
export function parseBertConfig(json: Record<string, unknown>, where = "config.json"): BertConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(`${where}: must be a JSON object, got ${preview(json)}`, { file: where });
  }
  const out: Record<string, unknown> = {};
  for (const [key, hf] of FIELDS) {
    const v = (Object.hasOwn(json, hf) ? json[hf] : undefined) ??
      (hf === "layer_norm_eps" ? 1e-12 : undefined);
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
      throw new InputError(`${where}: field "${hf}" must be a positive number, got ${preview(v)}`, {
        file: where,
      });
    }
    if (hf !== "layer_norm_eps" && !Number.isSafeInteger(v)) {
      throw new InputError(`${where}: field "${hf}" must be a positive integer, got ${v}`, {
        file: where,
      });
    }
    // Sizes index int32 GPU buffers; a few thousand layers is far past any BERT (24).
    const max = hf === "num_hidden_layers" ? 1000 : hf === "layer_norm_eps" ? 1 : 2 ** 31 - 1;
    if (v > max) {
      throw new InputError(`${where}: field "${hf}" is ${v}, more than ${max}`, { file: where });
    }
    out[key] = v;
  }
  const act = (Object.hasOwn(json, "hidden_act") ? json["hidden_act"] : undefined) ?? "gelu";
  if (act !== "gelu") {
    throw new InputError(
      `${where}: hidden_act ${
        typeof act === "string" ? `"${act}"` : preview(act)
      } is not supported (only exact-erf "gelu")`,
      { file: where },
    );
  }
  out.hiddenAct = "gelu";
  const cfg = out as unknown as BertConfig;
  if (cfg.hiddenSize % cfg.numAttentionHeads !== 0) {
    throw new InputError(
      `${where}: hidden_size ${cfg.hiddenSize} is not divisible by num_attention_heads ${cfg.numAttentionHeads}`,
    );
  }
  return cfg;
}

/** Serialises a {@linkcode BertConfig} as Hugging Face writes `config.json`. */
export function bertConfigToJson(cfg: BertConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: ["BertModel"],
    model_type: "bert",
    hidden_act: cfg.hiddenAct,
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    initializer_range: 0.02,
    pad_token_id: 0,
    position_embedding_type: "absolute",
  };
  for (const [key, hf] of FIELDS) out[hf] = cfg[key];
  return out;
}

/**
 * The weight names and shapes a BERT of this config has (Hugging Face names, no `bert.` prefix;
 * Linear weights are [out, in] as PyTorch stores them).
 */
export function bertWeightShapes(cfg: BertConfig): Map<string, number[]> {
  const H = cfg.hiddenSize, I = cfg.intermediateSize;
  const m = new Map<string, number[]>();
  m.set("embeddings.word_embeddings.weight", [cfg.vocabSize, H]);
  m.set("embeddings.position_embeddings.weight", [cfg.maxPositionEmbeddings, H]);
  m.set("embeddings.token_type_embeddings.weight", [cfg.typeVocabSize, H]);
  m.set("embeddings.LayerNorm.weight", [H]);
  m.set("embeddings.LayerNorm.bias", [H]);
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}.`;
    for (const n of ["query", "key", "value"]) {
      m.set(`${p}attention.self.${n}.weight`, [H, H]);
      m.set(`${p}attention.self.${n}.bias`, [H]);
    }
    m.set(`${p}attention.output.dense.weight`, [H, H]);
    m.set(`${p}attention.output.dense.bias`, [H]);
    m.set(`${p}attention.output.LayerNorm.weight`, [H]);
    m.set(`${p}attention.output.LayerNorm.bias`, [H]);
    m.set(`${p}intermediate.dense.weight`, [I, H]);
    m.set(`${p}intermediate.dense.bias`, [I]);
    m.set(`${p}output.dense.weight`, [H, I]);
    m.set(`${p}output.dense.bias`, [H]);
    m.set(`${p}output.LayerNorm.weight`, [H]);
    m.set(`${p}output.LayerNorm.bias`, [H]);
  }
  m.set("pooler.dense.weight", [H, H]);
  m.set("pooler.dense.bias", [H]);
  return m;
}
