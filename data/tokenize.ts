/**
 * BERT uncased WordPiece tokenization with character offsets into the original text.
 *
 * Built on the transformers.js tokenizers (`@xenova/transformers/tokenizers`): the tokenizer is
 * constructed from a Hugging Face `tokenizer.json` object and its WordPiece model holds the
 * vocabulary; the sub-word split is data/wordpiece.ts, the same greedy longest match with work
 * bounded per word (transformers.js's is cubic in the word's length). A tokenizer.json is
 * checked field by field, and implausible settings are refused naming the file, the field, the
 * value and the cap: `max_input_chars_per_word` above {@linkcode MAX_INPUT_CHARS_PER_WORD_CAP}
 * (BERT's is 100), a vocabulary above {@linkcode MAX_VOCAB_CAP} entries, `added_tokens` above
 * {@linkcode MAX_ADDED_TOKENS_CAP}. transformers.js 2.17.2 returns no offsets, so the normalisation of the
 * original BERT `BasicTokenizer` is replayed here one code point at a time (clean text, CJK
 * spacing, lower case, accent stripping), which keeps a map from every normalised character back
 * to the original one; pre-tokenisation (whitespace, punctuation) runs on the normalised text and
 * each word-piece's offsets are read through that map.
 *
 * Accent stripping removes every `\p{Mn}` mark after NFD, as Google's BERT and the Hugging Face
 * (Python and Rust) tokenizers do; transformers.js 2.17.2 only removes U+0300..U+036F, so the two
 * differ on the rare text with other combining marks (`data/tokenize_test.ts` checks that they
 * agree on every other real GLUE sentence).
 *
 * @module
 */

import { BertTokenizer } from "@xenova/transformers/tokenizers";
import { decodeUtf8, InputError, preview, readInput } from "./errors.ts";
import { regularFileExists } from "./files.ts";
import { WordPieceVocab } from "./wordpiece.ts";

/** Model inputs for one example: all arrays have length `maxLength`. */
export interface Encoded {
  /** Token ids, `[CLS] a [SEP] (b [SEP])` then `padId` (0). */
  inputIds: Int32Array;
  /** 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`, 0 for padding. */
  tokenTypeIds: Int32Array;
  /** 1 for real tokens, 0 for padding. */
  attentionMask: Int32Array;
}

/** Word pieces of a text with `[start, end)` UTF-16 offsets into the original text. */
export interface TokensWithOffsets {
  /** Vocabulary ids. */
  ids: number[];
  /** Word-piece strings (`##` marks a continuation, `[UNK]` a word not in the vocabulary). */
  tokens: string[];
  /** `[start, end)` into the original text (JavaScript string indices). */
  offsets: [number, number][];
}

/** What the rest of the project needs from a BERT tokenizer. */
export interface BertTokenizerLike {
  /** Number of vocabulary entries. */
  vocabSize: number;
  /** Id of `[CLS]`. */
  clsId: number;
  /** Id of `[SEP]`. */
  sepId: number;
  /** Id of `[PAD]` (0 for BERT). */
  padId: number;
  /** Id of `[UNK]`. */
  unkId: number;
  /** The vocabulary, index = id. */
  vocab: readonly string[];
  /** Word-piece tokens of text (no special tokens), with character offsets [start,end) into the ORIGINAL text. */
  tokenizeWithOffsets(text: string): TokensWithOffsets;
  /** [CLS] a [SEP] (b [SEP]), truncated longest-first to maxLength, padded with 0 to maxLength. */
  encode(a: string, b: string | undefined, maxLength: number): Encoded;
}

/** Options of {@linkcode tokenizerFromVocab} and {@linkcode bertTokenizerJson}. */
export interface VocabOptions {
  /** Lower-case and strip accents (BERT uncased). Default true. */
  lowercase?: boolean;
}

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/**
 * The largest `model.max_input_chars_per_word` a tokenizer.json may set (BERT's is 100: a longer
 * word becomes one [UNK]). Above it, a crafted file could make every long word costly to split.
 */
export const MAX_INPUT_CHARS_PER_WORD_CAP = 1000;

/**
 * The most vocabulary entries a tokenizer.json or vocab.txt may hold: BERT's English
 * vocabularies hold 28,996 or 30,522 and multilingual BERT's 119,547.
 */
export const MAX_VOCAB_CAP = 1_000_000;

/** The most `added_tokens` a tokenizer.json may list (BERT's list 5; some list ~1,000 unused). */
export const MAX_ADDED_TOKENS_CAP = 10_000;

/**
 * The tokenizer.json object (Hugging Face tokenizers format, BertNormalizer+BertPreTokenizer+
 * WordPiece+TemplateProcessing for [CLS] A [SEP] B [SEP]) for a BERT uncased WordPiece vocab;
 * make-tiny-bert writes it.
 *
 * @example
 * ```ts
 * import { bertTokenizerJson } from "./tokenize.ts";
 * const json = bertTokenizerJson(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"]);
 * console.assert((json.model as { type: string }).type === "WordPiece");
 * ```
 */
export function bertTokenizerJson(
  vocab: string[],
  opts: VocabOptions & { maxLength?: number } = {},
): Record<string, unknown> {
  const lowercase = opts.lowercase ?? true;
  const ids = new Map<string, number>();
  vocab.forEach((t, i) => {
    if (!ids.has(t)) ids.set(t, i);
  });
  for (const s of ["[UNK]", "[CLS]", "[SEP]"]) {
    if (!ids.has(s)) throw new Error(`bertTokenizerJson: the vocabulary has no ${s} token`);
  }
  const cls = ids.get("[CLS]")!;
  const sep = ids.get("[SEP]")!;
  return {
    version: "1.0",
    truncation: opts.maxLength === undefined
      ? null
      : { direction: "Right", max_length: opts.maxLength, strategy: "LongestFirst", stride: 0 },
    padding: null,
    added_tokens: SPECIALS.filter((s) => ids.has(s)).map((s) => ({
      id: ids.get(s)!,
      content: s,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [cls], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [sep], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(ids),
    },
  };
}

/** The transformers.js tokenizer config that goes with {@linkcode bertTokenizerJson}. */
function tokenizerConfig(lowercase: boolean): Record<string, unknown> {
  return {
    tokenizer_class: "BertTokenizer",
    do_lower_case: lowercase,
    cls_token: "[CLS]",
    sep_token: "[SEP]",
    pad_token: "[PAD]",
    unk_token: "[UNK]",
    mask_token: "[MASK]",
    model_max_length: 512,
  };
}

/**
 * A BERT WordPiece tokenizer from a vocabulary (one token per id, as in `vocab.txt`).
 *
 * @example
 * ```ts
 * import { tokenizerFromVocab } from "./tokenize.ts";
 * const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s", "!"]);
 * const { tokens, offsets } = tok.tokenizeWithOffsets("Hellos!");
 * console.assert(tokens.join(" ") === "hello ##s !");
 * console.assert(JSON.stringify(offsets) === "[[0,5],[5,6],[6,7]]");
 * ```
 */
export function tokenizerFromVocab(vocab: string[], opts: VocabOptions = {}): BertTokenizerLike {
  const lowercase = opts.lowercase ?? true;
  return new WordPieceTokenizer(
    bertTokenizerJson(vocab, { lowercase }),
    tokenizerConfig(lowercase),
  );
}

/**
 * Loads a tokenizer from a Hugging Face model dir: tokenizer.json if present, else vocab.txt
 * (BERT uncased WordPiece). Clear error naming the dir when neither exists, and an
 * {@linkcode InputError} naming the file when one is malformed: not UTF-8, not JSON, not a
 * WordPiece tokenizer, an empty vocabulary, a repeated token, or one without [CLS], [SEP], [UNK]
 * (and, in vocab.txt, [PAD]); settings above the caps (see the module note); a FIFO or device
 * where a file is expected (data/files.ts: refused before anything opens it).
 */
export async function loadTokenizer(modelDir: string): Promise<BertTokenizerLike> {
  const dir = modelDir.replace(/\/+$/, "");
  const cfgPath = `${dir}/tokenizer_config.json`;
  const config = await readJsonIfExists(cfgPath);
  if (
    config !== undefined && (typeof config !== "object" || config === null || Array.isArray(config))
  ) {
    throw new InputError(`${cfgPath}: must be a JSON object, got ${preview(config)}`, {
      file: cfgPath,
    });
  }
  const doLower = (config as Record<string, unknown> | undefined)?.do_lower_case;
  if (doLower !== undefined && typeof doLower !== "boolean") {
    throw new InputError(
      `${cfgPath}: do_lower_case must be true or false, got ${preview(doLower)}`,
      {
        file: cfgPath,
      },
    );
  }
  const jsonPath = `${dir}/tokenizer.json`;
  const json = await readJsonIfExists(jsonPath);
  if (json !== undefined) {
    const checked = checkTokenizerJson(json, jsonPath, doLower);
    return new WordPieceTokenizer(checked, tokenizerConfig(checked.lowercase));
  }
  const tokens = await readVocab(`${dir}/vocab.txt`, {
    notFound: `loadTokenizer: ${dir} has neither tokenizer.json nor vocab.txt`,
  });
  return tokenizerFromVocab(tokens, { lowercase: doLower ?? true });
}

/**
 * Reads a BERT `vocab.txt` (one token per line, `\r\n` or `\n`): an {@linkcode InputError}
 * naming the file (and line) when it is missing, not UTF-8, empty, repeats a token, or lacks
 * [PAD], [UNK], [CLS] or [SEP].
 */
export async function readVocab(
  path: string,
  opts: { notFound?: string } = {},
): Promise<string[]> {
  const vocab = decodeUtf8(await readInput(path, opts), path).split("\n");
  if (vocab.at(-1) === "") vocab.pop();
  const tokens = vocab.map((v) => v.replace(/\r$/, ""));
  checkVocab(tokens, path);
  return tokens;
}

/** Throws naming `file` (and the line) unless `vocab` is a usable BERT vocab.txt. */
function checkVocab(vocab: readonly string[], file: string): void {
  const need = "a BERT vocab.txt has one token per line, [PAD], [UNK], [CLS] and [SEP] among them";
  if (vocab.length === 0) throw new InputError(`${file}: empty vocabulary (${need})`, { file });
  if (vocab.length > MAX_VOCAB_CAP) {
    throw new InputError(
      `${file}: ${vocab.length} tokens, above the cap of ${MAX_VOCAB_CAP} (BERT's hold 30,522, ` +
        `multilingual BERT's 119,547): not a BERT vocabulary`,
      { file },
    );
  }
  const first = new Map<string, number>();
  vocab.forEach((t, i) => {
    const seen = first.get(t);
    if (seen !== undefined) {
      throw new InputError(
        `${file}:${i + 1}: token ${preview(t)} repeats line ${seen + 1} (each token once)`,
        { file, line: i + 1 },
      );
    }
    first.set(t, i);
  });
  for (const s of ["[CLS]", "[SEP]", "[UNK]", "[PAD]"]) {
    if (!first.has(s)) {
      throw new InputError(`${file}: the vocabulary has no ${s} token (${need})`, { file });
    }
  }
}

/** A tokenizer.json reduced to what {@linkcode WordPieceTokenizer} uses, every field checked. */
type CheckedTokenizerJson = Record<string, unknown> & { lowercase: boolean };

/**
 * Checks a tokenizer.json object field by field (naming `file` and the field) and rebuilds it
 * from the checked values only, so nothing unchecked reaches transformers.js: BERT's
 * normalizer flags, the WordPiece model (vocabulary ids 0..N-1, each once; unknown token,
 * continuation prefix, longest word) and the added tokens.
 */
function checkTokenizerJson(
  json: unknown,
  file: string,
  doLower: boolean | undefined,
): CheckedTokenizerJson {
  const fail = (what: string): never => {
    throw new InputError(`${file}: ${what}`, { file });
  };
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(json)) fail(`must be a JSON object, got ${preview(json)}`);
  const j = json as Record<string, unknown>;
  const model = j.model;
  const type = isObj(model) ? model.type : undefined;
  if (type !== "WordPiece") {
    fail(
      `model type ${
        typeof type === "string" ? type : preview(type)
      } is not WordPiece (only BERT tokenizers are supported)`,
    );
  }
  const m = model as Record<string, unknown>;
  const str = (v: unknown, field: string, dflt: string): string =>
    v === undefined || v === null ? dflt : typeof v === "string" && v !== "" ? v : fail(
      `${field} must be a non-empty string, got ${preview(v)}`,
    );
  const unk = str(m.unk_token, "model.unk_token", "[UNK]");
  const prefix = str(m.continuing_subword_prefix, "model.continuing_subword_prefix", "##");
  const maxChars = m.max_input_chars_per_word ?? 100;
  if (!Number.isSafeInteger(maxChars) || (maxChars as number) <= 0) {
    fail(`model.max_input_chars_per_word must be a positive integer, got ${preview(maxChars)}`);
  }
  if ((maxChars as number) > MAX_INPUT_CHARS_PER_WORD_CAP) {
    fail(
      `model.max_input_chars_per_word is ${maxChars}, above the cap of ` +
        `${MAX_INPUT_CHARS_PER_WORD_CAP} (BERT's is 100; a longer word is one [UNK]); set it ` +
        `to 100`,
    );
  }
  if (!isObj(m.vocab)) fail(`model.vocab must be an object {token: id}, got ${preview(m.vocab)}`);
  const ids = new Map<string, number>();
  const byId: string[] = [];
  const entries = Object.entries(m.vocab as Record<string, unknown>);
  if (entries.length > MAX_VOCAB_CAP) {
    fail(
      `model.vocab has ${entries.length} entries, above the cap of ${MAX_VOCAB_CAP} (BERT's ` +
        `hold 30,522, multilingual BERT's 119,547): not a BERT vocabulary`,
    );
  }
  for (const [t, id] of entries) {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= entries.length) {
      fail(
        `model.vocab: id of ${preview(t)} is ${preview(id)}, not one of 0..${entries.length - 1}`,
      );
    }
    if (byId[id as number] !== undefined) {
      fail(`model.vocab: ${preview(t)} and ${preview(byId[id as number])} share id ${id}`);
    }
    byId[id as number] = t;
    ids.set(t, id as number);
  }
  if (entries.length === 0) fail("model.vocab is empty");
  const added: Record<string, unknown>[] = [];
  const addedRaw = j.added_tokens ?? [];
  if (!Array.isArray(addedRaw)) fail(`added_tokens must be an array, got ${preview(addedRaw)}`);
  if ((addedRaw as unknown[]).length > MAX_ADDED_TOKENS_CAP) {
    fail(
      `added_tokens has ${(addedRaw as unknown[]).length} entries, above the cap of ` +
        `${MAX_ADDED_TOKENS_CAP} (BERT's list 5)`,
    );
  }
  (addedRaw as unknown[]).forEach((a, k) => {
    const where = `added_tokens[${k}]`;
    if (!isObj(a)) fail(`${where} must be an object, got ${preview(a)}`);
    const { id, content, special } = a as Record<string, unknown>;
    if (typeof content !== "string" || content === "") {
      fail(`${where}.content must be a non-empty string, got ${preview(content)}`);
    }
    const c = content as string;
    const have = ids.get(c);
    if (have !== undefined ? id !== have : id !== byId.length) {
      fail(
        `${where}: id ${preview(id)} of ${preview(c)} must be ` +
          (have !== undefined ? `its vocabulary id ${have}` : `the next free id ${byId.length}`),
      );
    }
    if (have === undefined) {
      byId.push(c);
      ids.set(c, id as number);
    }
    added.push({
      id,
      content: c,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: special === true,
    });
  });
  for (const s of [unk, "[CLS]", "[SEP]"]) {
    if (!ids.has(s)) fail(`the vocabulary has no ${s} token`);
  }
  const norm = j.normalizer ?? {};
  if (!isObj(norm)) fail(`normalizer must be an object or null, got ${preview(norm)}`);
  const n = norm as Record<string, unknown>;
  const flag = (k: string): boolean | null | undefined => {
    const v = n[k];
    return v === undefined || v === null || typeof v === "boolean"
      ? v
      : fail(`normalizer.${k} must be true, false or null, got ${preview(v)}`);
  };
  const lowercase = flag("lowercase") ?? doLower ?? true;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    // WordPieceTokenizer uses transformers.js for the WordPiece split only: it pre-tokenises
    // and post-processes itself, so these stay empty.
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    added_tokens: added,
    normalizer: {
      type: "BertNormalizer",
      clean_text: flag("clean_text") ?? true,
      handle_chinese_chars: flag("handle_chinese_chars") ?? true,
      strip_accents: flag("strip_accents") ?? null,
      lowercase,
    },
    model: {
      type: "WordPiece",
      unk_token: unk,
      continuing_subword_prefix: prefix,
      max_input_chars_per_word: maxChars,
      vocab: Object.fromEntries(byId.slice(0, entries.length).map((t, i) => [t, i])),
    },
    lowercase,
  };
}

/** A JSON file's value, or undefined when the file does not exist; InputError when malformed. */
async function readJsonIfExists(path: string): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    if (!regularFileExists(path)) return undefined; // a FIFO or device: refused, never opened
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof InputError) throw e;
    if (e instanceof Deno.errors.NotFound) return undefined;
    return await readInput(path); // the same failure, as an InputError naming the file
  }
  const text = decodeUtf8(bytes, path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
}

// Character classes of Google's BERT tokenization.py (_is_whitespace, _is_control,
// _is_punctuation, _is_chinese_char).
const WHITESPACE = /^[ \t\n\r\p{Zs}]$/u;
const CONTROL = /^\p{C}$/u;
const PUNCT = /^[\p{P}\u0021-\u002F\u003A-\u0040\u005B-\u0060\u007B-\u007E]$/u;
const NONSPACING_MARK = /\p{Mn}/gu;

function isChinese(cp: number): boolean {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
    (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
    (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
    (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/** Minimal view of the transformers.js WordPiece model we use (its vocabulary). */
interface WordPieceModel {
  tokens_to_ids: Map<string, number>;
  vocab: string[];
  max_input_chars_per_word: number;
}

/** A word of the normalised text: its code points and each one's original [start, end). */
interface Word {
  chars: string[];
  starts: number[];
  ends: number[];
}

class WordPieceTokenizer implements BertTokenizerLike {
  readonly vocabSize: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly padId: number;
  readonly unkId: number;
  readonly vocab: readonly string[];
  #model: WordPieceModel;
  #lowercase: boolean;
  #stripAccents: boolean;
  #cleanText: boolean;
  #chinese: boolean;
  #prefix: string;
  #unk: string;
  #maxChars: number;
  /** The split itself: bounded work per word (data/wordpiece.ts says why not the library's). */
  #wordPiece: WordPieceVocab;
  #cache = new Map<string, string[]>();

  constructor(json: Record<string, unknown>, config: Record<string, unknown>) {
    const tok = new BertTokenizer(json, config) as unknown as { model: WordPieceModel };
    this.#model = tok.model;
    const norm = (json.normalizer ?? {}) as {
      lowercase?: boolean;
      strip_accents?: boolean | null;
      clean_text?: boolean;
      handle_chinese_chars?: boolean;
    };
    this.#lowercase = norm.lowercase ?? true;
    this.#stripAccents = norm.strip_accents ?? this.#lowercase;
    this.#cleanText = norm.clean_text ?? true;
    this.#chinese = norm.handle_chinese_chars ?? true;
    const model = json.model as { continuing_subword_prefix?: string; unk_token?: string };
    this.#prefix = model.continuing_subword_prefix ?? "##";
    this.#unk = model.unk_token ?? "[UNK]";
    this.#maxChars = this.#model.max_input_chars_per_word;
    // The model's vocabulary with the added tokens transformers.js put in it, as its split sees.
    this.#wordPiece = new WordPieceVocab(this.#model.tokens_to_ids.keys(), this.#prefix);
    this.vocab = this.#model.vocab;
    this.vocabSize = this.#model.vocab.length;
    const id = (t: string) => {
      const v = this.#model.tokens_to_ids.get(t);
      if (v === undefined) throw new Error(`tokenizer: the vocabulary has no ${t} token`);
      return v;
    };
    this.clsId = id("[CLS]");
    this.sepId = id("[SEP]");
    this.unkId = id(this.#unk);
    this.padId = this.#model.tokens_to_ids.get("[PAD]") ?? 0;
  }

  /** Normalises one original code point the way BERT's BasicTokenizer does. */
  #normalizeChar(ch: string): string {
    if (this.#lowercase) ch = ch.toLowerCase();
    if (this.#stripAccents) ch = ch.normalize("NFD").replace(NONSPACING_MARK, "");
    return ch;
  }

  /** Splits the original text into words (whitespace, then punctuation) with original offsets. */
  #words(text: string): Word[] {
    const words: Word[] = [];
    let cur: Word | null = null;
    const flush = () => {
      if (cur && cur.chars.length) words.push(cur);
      cur = null;
    };
    let i = 0;
    for (const ch of text) {
      const start = i;
      i += ch.length;
      const cp = ch.codePointAt(0)!;
      if (
        this.#cleanText && (cp === 0 || cp === 0xFFFD || (CONTROL.test(ch) && !WHITESPACE.test(ch)))
      ) {
        continue;
      }
      if (WHITESPACE.test(ch)) {
        flush();
        continue;
      }
      if (this.#chinese && isChinese(cp)) {
        flush();
        words.push({ chars: [ch], starts: [start], ends: [i] });
        continue;
      }
      const norm = this.#normalizeChar(ch);
      if (norm === "") {
        // A mark removed by accent stripping still belongs to the character before it.
        if (cur) (cur as Word).ends[(cur as Word).ends.length - 1] = i;
        continue;
      }
      for (const c of norm) {
        if (PUNCT.test(c)) {
          flush();
          words.push({ chars: [c], starts: [start], ends: [i] });
        } else {
          cur ??= { chars: [], starts: [], ends: [] };
          cur.chars.push(c);
          cur.starts.push(start);
          cur.ends.push(i);
        }
      }
    }
    flush();
    return words;
  }

  #pieces(word: string): string[] {
    let p = this.#cache.get(word);
    if (p === undefined) {
      p = this.#wordPiece.split(word, this.#maxChars) ?? [this.#unk];
      if (this.#cache.size > 100_000) this.#cache.clear();
      this.#cache.set(word, p);
    }
    return p;
  }

  tokenizeWithOffsets(text: string): TokensWithOffsets {
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: [number, number][] = [];
    for (const w of this.#words(text)) {
      const pieces = this.#pieces(w.chars.join(""));
      if (pieces.length === 1 && pieces[0] === this.#unk) {
        tokens.push(this.#unk);
        ids.push(this.unkId);
        offsets.push([w.starts[0], w.ends[w.ends.length - 1]]);
        continue;
      }
      let k = 0; // code point index within the word
      for (const p of pieces) {
        const body = k > 0 && p.startsWith(this.#prefix) ? p.slice(this.#prefix.length) : p;
        const n = [...body].length;
        tokens.push(p);
        ids.push(this.#model.tokens_to_ids.get(p)!);
        offsets.push([w.starts[k], w.ends[k + n - 1]]);
        k += n;
      }
    }
    return { ids, tokens, offsets };
  }

  encode(a: string, b: string | undefined, maxLength: number): Encoded {
    const idsA = this.tokenizeWithOffsets(a).ids;
    const idsB = b === undefined ? undefined : this.tokenizeWithOffsets(b).ids;
    return encodeIds(idsA, idsB, maxLength, this);
  }
}

/**
 * Builds `[CLS] a [SEP] (b [SEP])` from word-piece ids, truncating longest-first (one token at a
 * time from the longer sequence, from `b` on ties, as BERT's `_truncate_seq_pair`) and padding
 * with `padId` to `maxLength`.
 */
export function encodeIds(
  idsA: number[],
  idsB: number[] | undefined,
  maxLength: number,
  special: { clsId: number; sepId: number; padId: number },
): Encoded {
  const reserved = idsB === undefined ? 2 : 3;
  if (!Number.isInteger(maxLength) || maxLength < reserved) {
    throw new Error(`encode: maxLength ${maxLength} leaves no room for the special tokens`);
  }
  let la = idsA.length;
  let lb = idsB?.length ?? 0;
  while (la + lb > maxLength - reserved) {
    if (la > lb) la--;
    else lb--;
  }
  const inputIds = new Int32Array(maxLength).fill(special.padId);
  const tokenTypeIds = new Int32Array(maxLength);
  const attentionMask = new Int32Array(maxLength);
  let p = 0;
  inputIds[p++] = special.clsId;
  for (let i = 0; i < la; i++) inputIds[p++] = idsA[i];
  inputIds[p++] = special.sepId;
  if (idsB !== undefined) {
    const startB = p;
    for (let i = 0; i < lb; i++) inputIds[p++] = idsB[i];
    inputIds[p++] = special.sepId;
    tokenTypeIds.fill(1, startB, p);
  }
  attentionMask.fill(1, 0, p);
  return { inputIds, tokenTypeIds, attentionMask };
}
