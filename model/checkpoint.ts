/**
 * BERT checkpoints in the Hugging Face layout: a directory with `config.json` and
 * `model.safetensors` (plus `vocab.txt` / `tokenizer.json` for the tokenizer and
 * `tokenizer_config.json` for its casing), loaded from disk or fetched once from the Hugging Face
 * hub into a local cache.
 * @module
 */

import { createHash } from "node:crypto";
import {
  type BertConfig,
  bertConfigToJson,
  bertWeightShapes,
  type HostWeights,
  parseBertConfig,
} from "./config.ts";
import { parseSafetensors, writeSafetensors } from "./safetensors.ts";
import { downloadFile, HttpStatusError, sha256File } from "../data/download.ts";
import { decodeUtf8, InputError, readInput } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { writeJsonAtomic } from "../data/output/mod.ts";

/** A loaded checkpoint. */
export interface BertCheckpoint {
  config: BertConfig;
  /** Every tensor of {@linkcode bertWeightShapes}, keyed without the `bert.` prefix. */
  weights: HostWeights;
  /**
   * Float tensors outside the encoder (e.g. `classifier.weight`, `qa_outputs.bias`), with their
   * names as stored; `cls.*` pre-training heads are dropped.
   */
  extra: HostWeights;
  /** The hub id for a model fetched by {@linkcode resolveModel}, else the directory's name. */
  modelId: string;
  /** First 16 hex digits of the sha256 of `model.safetensors`: which weights exactly. */
  weightsHash: string;
}

/** Maps a stored tensor name to ours, or null for tensors BERT loading ignores. */
function canonicalName(name: string): string | null {
  if (name.startsWith("cls.") || name.endsWith("position_ids")) return null;
  let n = name.startsWith("bert.") ? name.slice(5) : name;
  // Checkpoints converted from the original TF code name LayerNorm parameters gamma/beta.
  n = n.replace(/LayerNorm\.gamma$/, "LayerNorm.weight").replace(
    /LayerNorm\.beta$/,
    "LayerNorm.bias",
  );
  return n;
}

function baseName(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p.slice(p.lastIndexOf("/") + 1) || p;
}

/** Root of the cache: `$BERTVISION_CACHE`, else `~/.cache/bertvision`. */
export function cacheRoot(cacheDir?: string): string {
  if (cacheDir) return cacheDir;
  const env = Deno.env.get("BERTVISION_CACHE");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".";
  return `${home}/.cache/bertvision`;
}

/** Reads and checks a model directory's `config.json` (errors name the file). */
export async function readBertConfig(dir: string): Promise<BertConfig> {
  const cfgPath = `${dir}/config.json`;
  const cfgBytes = await readInput(cfgPath, {
    notFound: `${cfgPath}: not found; a model directory needs config.json and model.safetensors`,
  });
  const cfgText = decodeUtf8(cfgBytes, cfgPath);
  let cfgJson: Record<string, unknown>;
  try {
    cfgJson = JSON.parse(cfgText);
  } catch (e) {
    throw new InputError(`${cfgPath}: not valid JSON (${(e as Error).message})`, {
      file: cfgPath,
      cause: e,
    });
  }
  return parseBertConfig(cfgJson, cfgPath);
}

/**
 * The `weightsHash` {@linkcode loadBertCheckpoint} reports for `dir` (first 16 hex digits of the
 * sha256 of `model.safetensors`), streamed without loading the weights.
 */
export async function weightsHashOf(dir: string): Promise<string> {
  const path = `${dir}/model.safetensors`;
  try {
    return (await sha256File(path)).slice(0, 16);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) {
      // The full message (what to convert, what is a directory) comes from the loader.
      await loadBertCheckpoint(dir);
    }
    throw e;
  }
}

/**
 * Loads `config.json` + `model.safetensors` from a Hugging Face model directory.
 *
 * Accepts names with or without the `bert.` prefix (BertModel vs BertFor* checkpoints) and
 * TF-style `LayerNorm.gamma/beta`; ignores `cls.*` heads and `*.position_ids`. Throws naming the
 * tensor, the expected and found shape and the file when a tensor is missing or misshapen.
 */
export async function loadBertCheckpoint(dir: string): Promise<BertCheckpoint> {
  const config = await readBertConfig(dir);
  const cfgPath = `${dir}/config.json`;
  const stPath = `${dir}/model.safetensors`;
  let bytes: Uint8Array;
  regularFileExists(stPath, { what: "safetensors file" }); // never open a FIFO: it blocks
  try {
    bytes = await Deno.readFile(stPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      const hasBin = await Deno.stat(`${dir}/pytorch_model.bin`).then(() => true, () => false);
      throw new InputError(
        `${stPath}: not found` +
          (hasBin
            ? `; only safetensors is supported: convert pytorch_model.bin with ` +
              `\`python -c "from transformers import AutoModel; ` +
              `AutoModel.from_pretrained('${dir}').save_pretrained('${dir}')"\``
            : ""),
        { file: stPath, cause: e },
      );
    }
    if (e instanceof Deno.errors.IsADirectory) {
      throw new InputError(`${stPath}: is a directory, not a file`, { file: stPath, cause: e });
    }
    throw e;
  }
  const weightsHash = createHash("sha256").update(bytes).digest("hex").slice(0, 16);
  const file = parseSafetensors(bytes, stPath);
  const expected = bertWeightShapes(config);
  const weights: HostWeights = new Map();
  const extra: HostWeights = new Map();
  for (const [stored, t] of file.tensors) {
    const name = canonicalName(stored);
    if (name === null) continue;
    const isBert = expected.has(name);
    if (!(t.data instanceof Float32Array)) {
      if (isBert) {
        throw new InputError(
          `${stPath}: tensor "${stored}" has integer dtype ${t.dtype}; expected a float`,
          { file: stPath },
        );
      }
      continue;
    }
    const target = isBert ? weights : extra;
    if (target.has(name)) {
      throw new InputError(
        `${stPath}: tensor "${name}" appears twice (as "${stored}" and another name)`,
        { file: stPath },
      );
    }
    target.set(name, { shape: t.shape, data: t.data });
  }
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w) {
      throw new InputError(
        `${stPath}: missing tensor "${name}" (or "bert.${name}"), expected shape [${shape}] for ` +
          `the config in ${cfgPath}`,
        { file: stPath },
      );
    }
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      throw new InputError(
        `${stPath}: tensor "${name}" has shape [${w.shape}], expected [${shape}] from ${cfgPath}`,
        { file: stPath },
      );
    }
  }
  regularFileExists(`${dir}/${SOURCE_FILE}`); // a FIFO there would block the read
  const source = await Deno.readTextFile(`${dir}/${SOURCE_FILE}`).then(
    (t) => JSON.parse(t) as { modelId?: unknown },
    () => null,
  );
  const modelId = typeof source?.modelId === "string" ? source.modelId : baseName(dir);
  return { config, weights, extra, modelId, weightsHash };
}

/**
 * Writes `config.json` + `model.safetensors` into `dir` as Hugging Face's BertFor* classes
 * save them: encoder weights prefixed `bert.`, `extra` (e.g. `classifier.weight`) as named.
 * With a `classifier.weight` [K, H] in `extra` the config says BertForSequenceClassification
 * with K labels (K = 1: regression); with `qa_outputs.weight`, BertForQuestionAnswering.
 * `configExtra` (a head kind's `hfConfig`: architectures, problem_type, label names) is merged
 * into config.json last. Throws naming the tensor when `weights` does not match `config`.
 */
export async function saveBertCheckpoint(
  dir: string,
  config: BertConfig,
  weights: HostWeights,
  extra: HostWeights = new Map(),
  configExtra: Record<string, unknown> = {},
): Promise<void> {
  const expected = bertWeightShapes(config);
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w) throw new Error(`saveBertCheckpoint(${dir}): weights lack "${name}" [${shape}]`);
    const n = shape.reduce((a, d) => a * d, 1);
    if (w.shape.join() !== shape.join() || w.data.length !== n) {
      throw new Error(
        `saveBertCheckpoint(${dir}): "${name}" has shape [${w.shape}] (${w.data.length} values), ` +
          `expected [${shape}]`,
      );
    }
    out.set(`bert.${name}`, w);
  }
  for (const name of weights.keys()) {
    if (!expected.has(name)) {
      throw new Error(
        `saveBertCheckpoint(${dir}): "${name}" is not a BERT encoder weight; pass heads as extra`,
      );
    }
  }
  for (const [name, w] of extra) {
    if (out.has(name) || expected.has(name)) {
      throw new Error(
        `saveBertCheckpoint(${dir}): extra tensor "${name}" clashes with a BERT weight`,
      );
    }
    out.set(name, w);
  }
  const json = bertConfigToJson(config);
  const cls = extra.get("classifier.weight");
  if (cls) {
    const k = cls.shape[0];
    json.architectures = ["BertForSequenceClassification"];
    json.id2label = Object.fromEntries(
      Array.from({ length: k }, (_, i) => [String(i), `LABEL_${i}`]),
    );
    json.label2id = Object.fromEntries(Array.from({ length: k }, (_, i) => [`LABEL_${i}`, i]));
    if (k === 1) json.problem_type = "regression";
  } else if (extra.has("qa_outputs.weight")) {
    json.architectures = ["BertForQuestionAnswering"];
  }
  Object.assign(json, configExtra);
  await Deno.mkdir(dir, { recursive: true });
  // transformers refuses safetensors files whose metadata lacks format "pt".
  await writeSafetensors(`${dir}/model.safetensors`, out, { format: "pt" });
  await writeJsonAtomic(`${dir}/config.json`, json);
}

/** Options for {@linkcode resolveModel}. */
export interface ResolveModelOptions {
  /** Cache root holding `hub/<id>`; default `$BERTVISION_CACHE` or `~/.cache/bertvision`. */
  cacheDir?: string;
  /** Hub base URL; default `https://huggingface.co`. */
  baseUrl?: string;
  /** Draw no progress bars. */
  silent?: boolean;
  /**
   * Download nothing (a dry run): a complete download in the cache is used as it is, and a hub
   * model not cached is a {@linkcode NotCachedError}. Default true.
   */
  download?: boolean;
}

/** A hub model not in the cache, where nothing may be downloaded (a dry run). */
export class NotCachedError extends InputError {
  constructor(readonly model: string, readonly dir: string, readonly url: string) {
    super(
      `model "${model}" is not in the cache (${dir}) and a dry run downloads nothing, so the ` +
        `plan cannot size it (rows, micro-batches, peak GPU bytes, bytes written: they need its ` +
        `config and tokenizer); run without --dry-run to download it from ${url}, or pass a ` +
        `local model directory`,
      { file: dir },
    );
  }
}

/**
 * The local directory of `model` for a dry run: a directory, or a hub id's complete download in
 * the cache; nothing is downloaded or written. A hub id not cached is a {@linkcode
 * NotCachedError}, whose message is what the plan says.
 */
export function modelForPlan(model: string, opts: ResolveModelOptions = {}): Promise<string> {
  return resolveModel(model, { ...opts, download: false });
}

/** Written last into a hub download: marks it complete and records the hub id. */
const SOURCE_FILE = ".bertvision_source.json";

/**
 * The files of a hub model, and whether each is required. tokenizer_config.json says the casing
 * (`do_lower_case`): without it a cased model that has only vocab.txt would be lowercased.
 */
const HUB_FILES: [string, boolean][] = [
  ["config.json", true],
  ["vocab.txt", true],
  ["tokenizer.json", false],
  ["tokenizer_config.json", false],
  ["model.safetensors", true],
];

/** The files a download recorded before tokenizer_config.json joined the list tried. */
const FILES_BEFORE_TOKENIZER_CONFIG = [
  "config.json",
  "vocab.txt",
  "tokenizer.json",
  "model.safetensors",
];

/**
 * Turns `--model` into a local model directory. An existing directory is returned as is;
 * otherwise `model` is a hub id (`bert-base-uncased`, `owner/name`) whose config.json,
 * vocab.txt, tokenizer.json and tokenizer_config.json (both optional) and model.safetensors are
 * downloaded once, resumably, into `<cacheRoot>/hub/<id>` from
 * `<baseUrl>/<id>/resolve/main/<file>`. A download completed by an earlier version, without an
 * optional file tried since, fetches that file on its next use (offline: a warning, and the
 * download is used as it is).
 */
export async function resolveModel(model: string, opts: ResolveModelOptions = {}): Promise<string> {
  const stat = await Deno.stat(model).catch(() => null);
  if (stat?.isDirectory) return model;
  if (stat) {
    throw new InputError(`--model ${model}: is a file; pass a model directory or a hub id`, {
      file: model,
    });
  }
  const looksLocal = /^(\.|\/|~)/.test(model) || model.split("/").length > 2;
  if (
    looksLocal || !/^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/.test(model) || model.includes("..")
  ) {
    throw new InputError(
      `--model ${model}: no such directory, and not a hub id like "bert-base-uncased" or "owner/name"`,
      { file: model },
    );
  }
  const dir = `${cacheRoot(opts.cacheDir)}/hub/${model}`;
  const marker = `${dir}/${SOURCE_FILE}`;
  const done = await Deno.readTextFile(marker).then((t) => {
    try {
      const v = JSON.parse(t);
      return (typeof v === "object" && v !== null ? v : {}) as {
        files?: unknown;
        baseUrl?: unknown;
      };
    } catch {
      return {};
    }
  }, () => undefined);
  const recorded = typeof done?.baseUrl === "string" ? done.baseUrl : undefined;
  const base = (opts.baseUrl ?? recorded ?? "https://huggingface.co").replace(/\/+$/, "");
  if (opts.download === false) {
    if (done) return dir; // as it is: optional files tried since are fetched by a real run
    throw new NotCachedError(model, dir, `${base}/${model}`);
  }
  if (done) {
    // Complete. Optional files added to the list since it was made are fetched now.
    const tried = Array.isArray(done.files) ? done.files : FILES_BEFORE_TOKENIZER_CONFIG;
    const missing = HUB_FILES.filter(([f, required]) => !required && !tried.includes(f));
    if (!missing.length) return dir;
    try {
      for (const [file] of missing) {
        await downloadFile(`${base}/${model}/resolve/main/${file}`, `${dir}/${file}`, {
          silent: opts.silent,
          retries: 2,
        }).catch((e) => {
          if (!(e instanceof HttpStatusError && e.status === 404)) throw e;
        });
      }
    } catch (e) {
      console.warn(
        `${dir}: could not fetch ${missing.map(([f]) => f).join(", ")} ` +
          `(${(e as Error).message}); using the download as it is (the tokenizer's casing may ` +
          `be wrong)`,
      );
      return dir;
    }
  }
  for (const [file, required] of done ? [] : HUB_FILES) {
    const url = `${base}/${model}/resolve/main/${file}`;
    try {
      await downloadFile(url, `${dir}/${file}`, { silent: opts.silent, retries: 2 });
    } catch (e) {
      if (e instanceof HttpStatusError) {
        if (e.status === 404 && !required) continue;
        throw new Error(
          `could not fetch ${file} of model "${model}" from ${url}: HTTP ${e.status}` +
            (e.status === 404 ? " (check the model id; it must have model.safetensors)" : "") +
            (e.status === 401 || e.status === 403 ? " (gated or private model)" : "") +
            `; or pass a local directory with config.json, model.safetensors and vocab.txt`,
        );
      }
      throw new Error(
        `could not download "${model}" (${url}): ${(e as Error).message}. Offline? Pass a local ` +
          `model directory instead (config.json, model.safetensors, vocab.txt), e.g. one made ` +
          `by \`deno task make-tiny-bert --out DIR\`, or set BERTVISION_CACHE to a cache that ` +
          `already holds hub/${model}`,
      );
    }
  }
  await writeJsonAtomic(marker, {
    modelId: model,
    baseUrl: base,
    fetchedAt: new Date().toISOString(),
    files: HUB_FILES.map(([f]) => f),
  });
  return dir;
}

/**
 * The model of a dry run's plan ({@linkcode modelForPlan}), or null when it is a hub model not
 * cached: then what the plan could not size is printed instead (standard output, like a plan).
 */
export async function dryRunModel(model: string): Promise<string | null> {
  try {
    return await modelForPlan(model);
  } catch (e) {
    if (!(e instanceof NotCachedError)) throw e;
    console.log(`plan: ${e.message}`);
    return null;
  }
}
