import assert from "node:assert/strict";
import { BertTokenizer } from "@xenova/transformers/tokenizers";
import {
  bertTokenizerJson,
  loadTokenizer,
  MAX_ADDED_TOKENS_CAP,
  MAX_VOCAB_CAP,
  tokenizerFromVocab,
} from "./tokenize.ts";
import { InputError } from "./errors.ts";

const SHARED = new URL("../../shared/data/", import.meta.url);
const VOCAB_DIR = new URL("bert-base-uncased/", SHARED).pathname;
const hasVocab = await Deno.stat(`${VOCAB_DIR}vocab.txt`).then(() => true, () => false);

const TINY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s", "!", "world", "a", "b"];

/** The pieces' texts cut out of the original through the offsets. */
function cut(text: string, offsets: [number, number][]): string[] {
  return offsets.map(([s, e]) => text.slice(s, e));
}

Deno.test("tokenizeWithOffsets on a tiny vocab: pieces, [UNK], accents, offsets", () => {
  const tok = tokenizerFromVocab(TINY);
  assert.equal(tok.vocabSize, TINY.length);
  assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId], [0, 1, 2, 3]);
  const text = "  HÉLLOs!\tzzz wörld ";
  const r = tok.tokenizeWithOffsets(text);
  assert.deepEqual(r.tokens, ["hello", "##s", "!", "[UNK]", "world"]);
  assert.deepEqual(r.ids, [5, 6, 7, 1, 8]);
  assert.deepEqual(cut(text, r.offsets), ["HÉLLO", "s", "!", "zzz", "wörld"]);
  // A decomposed accent (e + U+0301) stays inside the piece it modifies.
  const d = "he\u0301llo";
  assert.deepEqual(cut(d, tok.tokenizeWithOffsets(d).offsets), [d]);
  assert.deepEqual(tok.tokenizeWithOffsets("").tokens, []);
});

Deno.test("cased tokenizer keeps case (no match in an uncased vocab -> [UNK])", () => {
  const tok = tokenizerFromVocab(TINY, { lowercase: false });
  assert.deepEqual(tok.tokenizeWithOffsets("Hello hello").tokens, ["[UNK]", "hello"]);
});

Deno.test("encode: [CLS] a [SEP] b [SEP], longest-first truncation, zero padding", () => {
  const tok = tokenizerFromVocab(TINY);
  const e = tok.encode("hello world", "a b a", 9);
  assert.deepEqual([...e.inputIds], [2, 5, 8, 3, 9, 10, 9, 3, 0]);
  assert.deepEqual([...e.tokenTypeIds], [0, 0, 0, 0, 1, 1, 1, 1, 0]);
  assert.deepEqual([...e.attentionMask], [1, 1, 1, 1, 1, 1, 1, 1, 0]);
  // 2 + 3 pieces into 7 - 3 = 4: b (longer) loses one, then the tie takes one more from b.
  const t = tok.encode("hello world", "a b a", 6);
  assert.deepEqual([...t.inputIds], [2, 5, 8, 3, 9, 3]);
  // single sentence
  const s = tok.encode("hellos hello", undefined, 4);
  assert.deepEqual([...s.inputIds], [2, 5, 6, 3]);
  assert.deepEqual([...s.tokenTypeIds], [0, 0, 0, 0]);
  assert.throws(() => tok.encode("a", "b", 2), /maxLength 2/);
});

Deno.test("bertTokenizerJson is a tokenizer.json transformers.js accepts", () => {
  const json = bertTokenizerJson(TINY, { maxLength: 16 });
  const ref = new BertTokenizer(json, {}) as unknown as {
    encode(a: string, b?: string | null): number[];
  };
  assert.deepEqual(ref.encode("hellos world", "a"), [2, 5, 6, 8, 3, 9, 3]);
  assert.deepEqual((json.truncation as { max_length: number }).max_length, 16);
  assert.throws(() => bertTokenizerJson(["a"]), /no \[UNK\]/);
});

Deno.test("loadTokenizer: tokenizer.json, else vocab.txt, else an error naming the dir", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      loadTokenizer(dir),
      new RegExp(`${dir}.*neither tokenizer.json nor vocab.txt`),
    );
    await Deno.writeTextFile(`${dir}/vocab.txt`, TINY.join("\n") + "\n");
    const fromVocab = await loadTokenizer(dir);
    assert.deepEqual(fromVocab.tokenizeWithOffsets("Hellos").ids, [5, 6]);
    // tokenizer.json wins over vocab.txt: a cased one must not lower-case.
    await Deno.writeTextFile(
      `${dir}/tokenizer.json`,
      JSON.stringify(bertTokenizerJson(TINY, { lowercase: false })),
    );
    const fromJson = await loadTokenizer(dir + "/");
    assert.deepEqual(fromJson.tokenizeWithOffsets("Hellos").tokens, ["[UNK]"]);
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify({ model: { type: "BPE" } }));
    await assert.rejects(loadTokenizer(dir), /tokenizer.json: model type BPE is not WordPiece/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "bert-base-uncased vocab: hand-checked ids on real sentences (accents, punctuation, [UNK])",
  ignore: !hasVocab,
  async fn() {
    const tok = await loadTokenizer(VOCAB_DIR);
    assert.equal(tok.vocabSize, 30522);
    assert.deepEqual([tok.padId, tok.unkId, tok.clsId, tok.sepId], [0, 100, 101, 102]);
    // STS-B dev line 668, sentence2. Ids checked against vocab.txt lines (id + 1):
    // 2045 there, 1005 ', 1055 s, 1996 the, 15743 naive, 2544 version, 1997 of, 9997 spike,
    // 13330 triggered, 14985 averaging, 1010 ",", 1998 and, 12138 sophisticated, 1012 "."
    const s =
      "There's the naïve version of spike triggered averaging, and the sophisticated version.";
    const r = tok.tokenizeWithOffsets(s);
    assert.deepEqual(r.ids, [
      2045,
      1005,
      1055,
      1996,
      15743,
      2544,
      1997,
      9997,
      13330,
      14985,
      1010,
      1998,
      1996,
      12138,
      2544,
      1012,
    ]);
    assert.equal(s.slice(...r.offsets[4]), "naïve");
    // Curly quotes and the em dash are punctuation; Ⅻ (a Roman numeral) is not in the vocab;
    // "12.5%" splits at the punctuation. 1523 “, 7592 hello, 1524 ”, 1517 —, 100 [UNK],
    // 2260 12, 1012 ., 1019 5, 1003 %, 7668 cafe, 13746 resume.
    const t = "“Hello,” — Ⅻ 12.5% Café résumé";
    const q = tok.tokenizeWithOffsets(t);
    assert.deepEqual(q.ids, [
      1523,
      7592,
      1010,
      1524,
      1517,
      100,
      2260,
      1012,
      1019,
      1003,
      7668,
      13746,
    ]);
    assert.deepEqual(cut(t, q.offsets), [
      "“",
      "Hello",
      ",",
      "”",
      "—",
      "Ⅻ",
      "12",
      ".",
      "5",
      "%",
      "Café",
      "résumé",
    ]);
    // A word split into pieces: "unflinchingly" -> un ##fl ##in ##ching ##ly.
    const u = tok.tokenizeWithOffsets("unflinchingly bleak");
    assert.deepEqual(u.tokens, ["un", "##fl", "##in", "##ching", "##ly", "bleak"]);
    assert.deepEqual(cut("unflinchingly bleak", u.offsets), [
      "un",
      "fl",
      "in",
      "ching",
      "ly",
      "bleak",
    ]);
  },
});

/** Every sentence of the real GLUE dev files we have (column indices per file). */
async function realSentences(): Promise<string[]> {
  const cols: Record<string, number[]> = {
    "SST-2/dev.tsv": [0],
    "CoLA/dev.tsv": [3],
    "MRPC/dev.tsv": [3, 4],
    "RTE/dev.tsv": [1, 2],
    "STS-B/dev.tsv": [7, 8],
    "WNLI/dev.tsv": [1, 2],
  };
  const out: string[] = [];
  for (const [file, cs] of Object.entries(cols)) {
    const lines = (await Deno.readTextFile(new URL(`glue/${file}`, SHARED))).split("\n");
    for (const [i, line] of lines.entries()) {
      if (!line || (i === 0 && file !== "CoLA/dev.tsv")) continue;
      const f = line.split("\t");
      for (const c of cs) out.push(f[c]);
    }
  }
  return out;
}

Deno.test({
  name: "real GLUE dev sentences: same ids as the transformers.js pipeline; offsets cut the pieces",
  ignore: !hasVocab,
  async fn() {
    const tok = await loadTokenizer(VOCAB_DIR);
    const ref = new BertTokenizer(bertTokenizerJson([...tok.vocab]), {}) as unknown as {
      encode(a: string, b?: string | null, o?: { add_special_tokens: boolean }): number[];
    };
    const sentences = await realSentences();
    assert.ok(sentences.length === 6427);
    let unk = 0; // none in these files; [UNK] is covered above
    let otherMarks = 0;
    for (const s of sentences) {
      const r = tok.tokenizeWithOffsets(s);
      // transformers.js strips only U+0300..U+036F; BERT strips every Mn mark (see module doc).
      if (/[^\u0300-\u036f]/u.test(s.normalize("NFD").replace(/[^\p{Mn}]/gu, ""))) {
        otherMarks++;
      } else {
        assert.deepEqual(r.ids, ref.encode(s, null, { add_special_tokens: false }), s);
      }
      for (let k = 0; k < r.tokens.length; k++) {
        const piece = s.slice(...r.offsets[k]);
        if (r.tokens[k] === "[UNK]") {
          unk++;
          assert.ok(piece.length > 0 && !/\s/.test(piece), s);
          continue;
        }
        // Control characters inside a word (mojibake such as "Iraq\u00e2\u0080\u0099s") are dropped.
        const norm = piece.toLowerCase().normalize("NFD").replace(/[\p{Mn}\p{C}]/gu, "");
        assert.equal(norm, r.tokens[k].replace(/^##/, ""), `${s} @ ${r.offsets[k]}`);
      }
    }
    assert.ok(otherMarks < 5, `${otherMarks} sentences with unusual combining marks`);
  },
});

Deno.test({
  name: "real RTE pair truncated longest-first to 32",
  ignore: !hasVocab,
  async fn() {
    const tok = await loadTokenizer(VOCAB_DIR);
    const a =
      "Dana Reeve, the widow of the actor Christopher Reeve, has died of lung cancer at age 44, according to the Christopher Reeve Foundation.";
    const b = "Christopher Reeve had an accident.";
    const ia = tok.tokenizeWithOffsets(a).ids;
    const ib = tok.tokenizeWithOffsets(b).ids;
    assert.equal(ib.length, 6);
    const e = tok.encode(a, b, 32);
    // b (6 pieces) is shorter than the budget share, so only a is cut: 32 - 3 - 6 = 23 pieces.
    assert.deepEqual([...e.inputIds], [101, ...ia.slice(0, 23), 102, ...ib, 102]);
    assert.equal(e.tokenTypeIds.reduce((x, y) => x + y, 0), 7);
    assert.equal(e.attentionMask.reduce((x, y) => x + y, 0), 32);
  },
});

Deno.test("loadTokenizer: an empty vocab.txt, one without [CLS]/[SEP]/[UNK]/[PAD], a repeated token or non-UTF-8 bytes are InputErrors naming the file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/vocab.txt`;
  const rejects = async (re: RegExp) =>
    await assert.rejects(loadTokenizer(dir), (e: Error) => {
      assert.ok(e instanceof InputError, String(e));
      assert.match(e.message, re);
      return true;
    });
  try {
    await Deno.writeTextFile(path, "");
    await rejects(new RegExp(`^${path}: empty vocabulary`));
    await Deno.writeTextFile(path, "\n");
    await rejects(new RegExp(`^${path}: the vocabulary has no \\[CLS\\] token`));
    for (const special of ["[CLS]", "[SEP]", "[UNK]", "[PAD]"]) {
      await Deno.writeTextFile(path, TINY.filter((t) => t !== special).join("\n") + "\n");
      await rejects(
        new RegExp(`^${path}: the vocabulary has no \\${special.slice(0, -1)}\\] token`),
      );
    }
    await Deno.writeTextFile(path, [...TINY, "hello"].join("\n"));
    await rejects(new RegExp(`^${path}:12: token "hello" repeats line 6`));
    const bytes = new TextEncoder().encode(TINY.join("\n"));
    bytes[bytes.indexOf(0x68)] = 0xFF; // "hello"
    await Deno.writeFile(path, bytes);
    await rejects(new RegExp(`^${path}:6: not UTF-8 \\(byte 0xFF at column 1\\)`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTokenizer: a tokenizer.json with fields of the wrong type is an InputError naming the field", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tokenizer.json`;
  const good = bertTokenizerJson(TINY);
  const model = good.model as Record<string, unknown>;
  try {
    for (
      const [json, re] of [
        [[], /must be a JSON object/],
        [{ ...good, model: { ...model, vocab: [1] } }, /model.vocab must be an object/],
        [{ ...good, model: { ...model, vocab: { a: 0, b: 0 } } }, /"b" and "a" share id 0/],
        [{ ...good, model: { ...model, vocab: { a: 7 } } }, /id of "a" is 7, not one of 0..0/],
        [{ ...good, model: { ...model, unk_token: 3 } }, /model.unk_token must be a non-empty/],
        [{ ...good, model: { ...model, max_input_chars_per_word: "x" } }, /max_input_chars/],
        [{ ...good, added_tokens: {} }, /added_tokens must be an array/],
        [{ ...good, added_tokens: [{ id: 99, content: "[X]" }] }, /next free id 11/],
        [{ ...good, normalizer: { lowercase: "yes" } }, /normalizer.lowercase must be true/],
        [
          { ...good, added_tokens: [], model: { ...model, vocab: { a: 0 } } },
          /has no \[UNK\] token/,
        ],
      ] as const
    ) {
      await Deno.writeTextFile(path, JSON.stringify(json));
      await assert.rejects(loadTokenizer(dir), (e: Error) => {
        assert.ok(e instanceof InputError, String(e));
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    // Added tokens that are the vocabulary's own or the next ids are fine.
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        ...good,
        added_tokens: [{ id: 2, content: "[CLS]" }, { id: 11, content: "[X]" }],
      }),
    );
    assert.equal((await loadTokenizer(dir)).vocabSize, 12);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadTokenizer: implausible settings (max_input_chars_per_word 1e9, too many added tokens, a huge vocabulary) are refused naming the file, field, value and cap", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/tokenizer.json`;
  const good = bertTokenizerJson(TINY);
  const model = good.model as Record<string, unknown>;
  try {
    for (
      const [json, re] of [
        [
          { ...good, model: { ...model, max_input_chars_per_word: 1e9 } },
          /model\.max_input_chars_per_word is 1000000000, above the cap of 1000 \(BERT's is 100/,
        ],
        [
          {
            ...good,
            added_tokens: Array.from({ length: MAX_ADDED_TOKENS_CAP + 1 }, (_, i) => ({
              id: TINY.length + i,
              content: `[X${i}]`,
            })),
          },
          /added_tokens has 10001 entries, above the cap of 10000/,
        ],
      ] as const
    ) {
      await Deno.writeTextFile(path, JSON.stringify(json));
      await assert.rejects(loadTokenizer(dir), (e: Error) => {
        assert.ok(e instanceof InputError, String(e));
        assert.ok(e.message.startsWith(`${path}: `), e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    // At the cap it loads.
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...good, model: { ...model, max_input_chars_per_word: 1000 } }),
    );
    assert.equal((await loadTokenizer(dir)).vocabSize, TINY.length);
    // A vocab.txt of more tokens than any BERT's (the same cap as tokenizer.json's model.vocab,
    // checked on the cheaper file: a JSON object of a million keys takes seconds to parse).
    await Deno.remove(path);
    const lines = [
      ...TINY,
      ...Array.from({ length: MAX_VOCAB_CAP + 1 - TINY.length }, (_, i) => `t${i}`),
    ];
    await Deno.writeTextFile(`${dir}/vocab.txt`, lines.join("\n") + "\n");
    await assert.rejects(
      loadTokenizer(dir),
      new RegExp(`${dir}/vocab\\.txt: 1000001 tokens, above the cap of 1000000`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizeWithOffsets: vocabulary look-ups per word are bounded (counted through Map, not timed)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // The largest max_input_chars_per_word accepted, and a word of that many characters that
    // splits letter by letter until its last character, which no token holds ([UNK]).
    const letters = "abcdefghijklmnopqrstuvwxyz".split("");
    const vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ...letters, ...letters.map((c) => `##${c}`)];
    const json = bertTokenizerJson(vocab);
    (json.model as Record<string, unknown>).max_input_chars_per_word = 1000;
    await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(json));
    const tok = await loadTokenizer(dir);
    const word = "ab".repeat(499) + "z\u00e6"; // 1,000 characters; "æ" is in no token
    const longest = Math.max(...vocab.map((t) => [...t].length)); // 5: "[UNK]"
    // Every Map look-up during the call: the vocabulary's (whatever structure holds it) and a
    // few of the tokenizer's own (its cache).
    let lookups = 0;
    const { get, has } = Map.prototype;
    Map.prototype.get = function (this: Map<unknown, unknown>, k: unknown) {
      lookups++;
      return get.call(this, k);
    };
    Map.prototype.has = function (this: Map<unknown, unknown>, k: unknown) {
      lookups++;
      return has.call(this, k);
    };
    let r;
    try {
      r = tok.tokenizeWithOffsets(`x ${word} y`);
    } finally {
      Map.prototype.get = get;
      Map.prototype.has = has;
    }
    assert.deepEqual(r.tokens, ["x", "[UNK]", "y"]);
    assert.deepEqual(r.offsets[1], [2, 1002]);
    // The original split made ~n²/2 = 500,000 look-ups here; bounded: n × the longest token.
    assert.ok(lookups <= 1000 * longest + 100, `${lookups} look-ups`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
