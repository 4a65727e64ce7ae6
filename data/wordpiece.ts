/**
 * WordPiece's greedy longest-match-first split of one word, with bounded work.
 *
 * BERT's (and transformers.js 2.17.2's) WordPiece tries, at each start, every end from the end
 * of the word down, building each substring and looking it up: O(n²) look-ups of strings up to
 * n long for a word of n characters, cubic in all (a 4,000-character word took 108 s). The same
 * split comes from walking a trie of the vocabulary forward from each start and keeping the
 * longest token seen: no token is longer than the vocabulary's longest, L, so each start costs at
 * most L look-ups of one character each, O(n × L) per word.
 *
 * The result equals the original algorithm's for every word (data/wordpiece_test.ts checks it
 * against a transcription of it): tokens are matched on code points; at start 0 any token
 * matches (one starting with the continuation prefix too), after it only the continuation
 * tokens (the prefix stripped); a start with no match makes the whole word unknown.
 * @module
 */

/**
 * A vocabulary as two tries (word-initial tokens, continuation tokens) in one map keyed by
 * `node:character`, counting its look-ups.
 *
 * @example
 * ```ts
 * import { WordPieceVocab } from "./wordpiece.ts";
 * const v = new WordPieceVocab(["un", "##aff", "##able", "[UNK]"], "##");
 * console.assert(v.split("unaffable", 100)?.join(" ") === "un ##aff ##able");
 * console.assert(v.split("xyz", 100) === null);
 * ```
 */
export class WordPieceVocab {
  /** Trie edges: `${node}:${character}` → child node. Node 0: word start; 1: continuation. */
  readonly #edges = new Map<string, number>();
  /** The token a node completes (`##` included for continuations). */
  readonly #tokenAt = new Map<number, string>();
  #nodes = 2;
  /** Longest token in code points (continuations without their prefix): the work bound. */
  readonly maxTokenChars: number;
  /** Trie look-ups made by {@linkcode split} so far (what tests count instead of time). */
  lookups = 0;

  /** Builds the tries of `tokens`; `prefix` marks a continuation token (`##`). */
  constructor(tokens: Iterable<string>, readonly prefix: string) {
    let longest = 0;
    for (const t of tokens) {
      longest = Math.max(longest, this.#insert(0, t, t));
      if (t.startsWith(prefix) && t.length > prefix.length) {
        longest = Math.max(longest, this.#insert(1, t.slice(prefix.length), t));
      }
    }
    this.maxTokenChars = longest;
  }

  /** Adds `body` under `root`, completing `token`; returns its length in code points. */
  #insert(root: number, body: string, token: string): number {
    let node = root, n = 0;
    for (const c of body) {
      const key = `${node}:${c}`;
      let next = this.#edges.get(key);
      if (next === undefined) this.#edges.set(key, next = this.#nodes++);
      node = next;
      n++;
    }
    if (!this.#tokenAt.has(node)) this.#tokenAt.set(node, token);
    return n;
  }

  /**
   * The word pieces of `word` (greedy longest match first, continuations with the prefix), or
   * null when some part of it matches no token or it has more than `maxChars` code points
   * (the caller then emits the unknown token). At most `chars × maxTokenChars` look-ups.
   */
  split(word: string, maxChars: number): string[] | null {
    const chars = [...word];
    if (chars.length > maxChars) return null;
    const out: string[] = [];
    for (let start = 0; start < chars.length;) {
      let node = start === 0 ? 0 : 1;
      let end = -1, token = "";
      const stop = Math.min(chars.length, start + this.maxTokenChars);
      for (let i = start; i < stop; i++) {
        this.lookups++;
        const next = this.#edges.get(`${node}:${chars[i]}`);
        if (next === undefined) break;
        node = next;
        const t = this.#tokenAt.get(node);
        if (t !== undefined) {
          end = i + 1;
          token = t;
        }
      }
      if (end < 0) return null;
      out.push(token);
      start = end;
    }
    return out;
  }
}
