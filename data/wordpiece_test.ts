// WordPiece's split (data/wordpiece.ts): the same pieces as the original greedy longest-match
// (transcribed below from transformers.js 2.17.2 `WordPieceTokenizer.encode`, which follows
// Google's BERT), and a bounded number of vocabulary look-ups per word, counted, not timed.
import assert from "node:assert/strict";
import { WordPieceVocab } from "./wordpiece.ts";
import { Rng } from "./rng.ts";

/** The original algorithm, look-ups counted: each start tries every end from the word's end. */
function reference(vocab: Set<string>, word: string, prefix: string, maxChars: number) {
  let lookups = 0;
  const chars = [...word];
  if (chars.length > maxChars) return { pieces: null, lookups };
  const out: string[] = [];
  let start = 0;
  while (start < chars.length) {
    let end = chars.length;
    let cur: string | null = null;
    while (start < end) {
      let sub = chars.slice(start, end).join("");
      if (start > 0) sub = prefix + sub;
      lookups++;
      if (vocab.has(sub)) {
        cur = sub;
        break;
      }
      --end;
    }
    if (cur === null) return { pieces: null, lookups };
    out.push(cur);
    start = end;
  }
  return { pieces: out, lookups };
}

Deno.test("WordPieceVocab.split equals the original greedy longest match on seeded vocabularies and words", () => {
  const rng = new Rng(19, "wordpiece");
  const alphabet = ["a", "b", "c", "#", "é", "😀"];
  const pick = (n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(rng.uniform() * alphabet.length)]).join("");
  let words = 0, unknown = 0;
  for (let v = 0; v < 60; v++) {
    const tokens = new Set<string>(["[UNK]"]);
    const size = 1 + Math.floor(rng.uniform() * 25);
    for (let i = 0; i < size; i++) {
      const t = pick(1 + Math.floor(rng.uniform() * 4));
      tokens.add(rng.uniform() < 0.5 ? `##${t}` : t);
    }
    const wp = new WordPieceVocab(tokens, "##");
    for (let w = 0; w < 80; w++) {
      const word = pick(1 + Math.floor(rng.uniform() * 12));
      const maxChars = rng.uniform() < 0.1 ? 5 : 100;
      const want = reference(tokens, word, "##", maxChars).pieces;
      assert.deepEqual(wp.split(word, maxChars), want, `${[...tokens].join(" ")} / ${word}`);
      words++;
      if (want === null) unknown++;
    }
  }
  // Both outcomes are exercised.
  assert.ok(unknown > 100 && unknown < words - 100, `${unknown} of ${words} unknown`);
});

Deno.test("WordPiece look-ups per word are bounded by its length × the longest token (a 4,000-character word)", () => {
  // BERT-like: single letters and their continuations, and longer tokens up to 6 characters.
  const letters = "abcdefghijklmnopqrstuvwxyz".split("");
  const tokens = new Set<string>(["[UNK]", ...letters, ...letters.map((c) => `##${c}`)]);
  for (const t of ["the", "##ing", "##tion", "abcdef", "##abcde"]) tokens.add(t);
  const wp = new WordPieceVocab(tokens, "##");
  assert.equal(wp.maxTokenChars, 7); // "##abcde": at a word's start, prefix and all
  const word = "ab".repeat(1999) + "z!"; // 4,000 characters; "!" is in no token: [UNK]
  assert.equal(wp.split(word, 1e9), null);
  assert.ok(wp.lookups <= 4000 * wp.maxTokenChars, `${wp.lookups} look-ups`);
  // The original tries every end at every start: about n²/2 look-ups of strings up to n long
  // (run here on a tenth of the word: on all of it, some 8 million look-ups, minutes).
  const ref = reference(tokens, word.slice(-400), "##", 1e9);
  assert.equal(ref.pieces, null);
  assert.ok(ref.lookups > 400 * 399 / 2, `${ref.lookups}`);
  // A word that splits: the same pieces, still at most n × L look-ups.
  wp.lookups = 0;
  const ok = "abcdef".repeat(666) + "ing"; // 3,999 characters
  const pieces = wp.split(ok, 1e9);
  const pairs = Array.from({ length: 665 }, () => ["##abcde", "##f"]).flat();
  assert.deepEqual(pieces, ["abcdef", ...pairs, "##ing"]);
  const short = "abcdef".repeat(20) + "ing"; // the original agrees (where it is quick)
  assert.deepEqual(wp.split(short, 1e9), reference(tokens, short, "##", 1e9).pieces);
  assert.ok(wp.lookups <= 3999 * wp.maxTokenChars, `${wp.lookups} look-ups`);
});
