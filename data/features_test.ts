import assert from "node:assert/strict";
import {
  answerTokenSpan,
  describeSquadWindows,
  featurize,
  squadFeatures,
  squadWindows,
} from "./features.ts";
import { loadTokenizer, tokenizerFromVocab } from "./tokenize.ts";
import { InputError } from "./errors.ts";
import { readSquad, squadPostprocess } from "../tasks/squad.ts";
import { evaluateSquad, normalizeAnswer } from "../tasks/squad_eval.ts";

const SHARED = new URL("../../shared/data/", import.meta.url).pathname;
const hasReal = await Deno.stat(`${SHARED}squad/cs224n-dev-v2.0.json`).then(
  () => Deno.stat(`${SHARED}bert-base-uncased/vocab.txt`).then(() => true, () => false),
  () => false,
);

const WORDS = "who ran ? bob alice and carol went home to the park then slept".split(" ");
const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ...WORDS];
const id = (w: string) => VOCAB.indexOf(w);

Deno.test("featurize: padded row-major GLUE features, labels, truncation count", () => {
  const tok = tokenizerFromVocab(VOCAB);
  const f = featurize(
    [{ textA: "bob ran", textB: "alice ran", label: 1 }, { textA: "who ran then slept home" }],
    tok,
    7,
  );
  assert.equal(f.n, 2);
  assert.deepEqual([...f.inputIds.slice(0, 7)], [
    2,
    id("bob"),
    id("ran"),
    3,
    id("alice"),
    id("ran"),
    3,
  ]);
  assert.deepEqual([...f.tokenTypeIds.slice(0, 7)], [0, 0, 0, 0, 1, 1, 1]);
  assert.deepEqual([...f.inputIds.slice(7)], [
    2,
    id("who"),
    id("ran"),
    id("then"),
    id("slept"),
    id("home"),
    3,
  ]);
  assert.deepEqual([...f.attentionMask.slice(7)], [1, 1, 1, 1, 1, 1, 1]);
  assert.equal(f.labels[0], 1);
  assert.ok(Number.isNaN(f.labels[1]));
  assert.equal(f.truncated, 0);
  assert.equal(featurize([{ textA: "bob ran ran ran ran ran" }], tok, 4).truncated, 1);
});

Deno.test("answerTokenSpan maps character spans through offsets", () => {
  const offsets: [number, number][] = [[0, 3], [4, 7], [7, 9], [10, 14]];
  assert.deepEqual(answerTokenSpan(offsets, { text: "abcde", start: 4 }), [1, 2]);
  assert.deepEqual(answerTokenSpan(offsets, { text: "abc", start: 4 }), [1, 1]);
  assert.deepEqual(answerTokenSpan(offsets, { text: "b", start: 5 }), [1, 1]); // inside a piece
  assert.deepEqual(answerTokenSpan(offsets, { text: "z", start: 20 }), [-1, -1]);
});

Deno.test("squadFeatures: overlapping windows, answer only in the window that holds it", () => {
  const tok = tokenizerFromVocab(VOCAB);
  // 12 context pieces; question cut to "who ran" (2); maxSeq 10 -> 5 pieces per window,
  // consecutive windows overlapping by 3: each starts 5 - 3 = 2 pieces after the one before
  const context = "bob and alice and carol went home to the park then slept";
  const start = context.indexOf("the park");
  const ex = {
    id: "q1",
    question: "Who ran?",
    context,
    isImpossible: false,
    answers: [{ text: "the park", start }],
  };
  const imp = { ...ex, id: "q2", isImpossible: true, answers: [] };
  const { features, stats } = squadFeatures([ex, imp], tok, {
    maxSeqLength: 10,
    docStride: 3,
    maxQueryLength: 2,
  });
  assert.equal(stats.truncatedQuestions, 2); // "who ran ?" cut to "who ran"
  // question 2 pieces -> 10 - 2 - 3 = 5 context pieces per window; windows start at 0, 2, 4, 6,
  // 8 (8 + 4 = 12 ends it)
  const w = features.filter((f) => f.exampleId === "q1");
  assert.equal(w.length, 5);
  assert.deepEqual(w.map((f) => f.windowIndex), [0, 1, 2, 3, 4]);
  assert.deepEqual(w.map((f) => [f.contextStart, f.contextLength]), [
    [0, 5],
    [2, 5],
    [4, 5],
    [6, 5],
    [8, 4],
  ]);
  const f0 = w[0];
  assert.deepEqual([...f0.inputIds], [
    2,
    id("who"),
    id("ran"),
    3,
    id("bob"),
    id("and"),
    id("alice"),
    id("and"),
    id("carol"),
    3,
  ]);
  assert.deepEqual([...f0.tokenTypeIds], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual([...f0.charStart.slice(0, 5)], [-1, -1, -1, -1, 0]);
  assert.equal(f0.charStart[9], -1);
  // "the park" = pieces 8, 9: held whole by the windows at 6 (6..10) and 8 (8..11); context
  // starts at token 4 ([CLS] who ran [SEP])
  assert.deepEqual(w.map((f) => [f.startPosition, f.endPosition]), [
    [0, 0],
    [0, 0],
    [0, 0],
    [4 + 2, 4 + 3],
    [4 + 0, 4 + 1],
  ]);
  for (const f of [w[3], w[4]]) {
    assert.equal(context.slice(f.charStart[f.startPosition], f.charEnd[f.endPosition]), "the park");
  }
  // max context of piece 6 ("home"): windows at 2 (0 left/right), 4 (2 and 2), 6 (0): window 2
  assert.equal(w[2].maxContext[4 + 2], 1);
  assert.equal(w[1].maxContext[4 + 4], 0);
  assert.equal(w[3].maxContext[4 + 0], 0);
  assert.ok(
    features.filter((f) => f.exampleId === "q2").every((f) =>
      f.startPosition === 0 && f.endPosition === 0
    ),
  );
  assert.equal(stats.multiWindow, 2);
  assert.throws(
    () => squadFeatures([ex], tok, { maxSeqLength: 5 }),
    /q1: maxSeqLength 5 leaves no room/,
  );
});

Deno.test("squadWindows: consecutive windows overlap by the stride; the last ends the context", () => {
  // 10 pieces, 4 per window: overlap 1 -> starts 0, 3, 6 (6 + 4 = 10 ends it)
  assert.deepEqual(squadWindows(10, 4, 1), [[0, 4], [3, 4], [6, 4]]);
  // overlap 0: side by side, the last window holds the 2 pieces left
  assert.deepEqual(squadWindows(10, 4, 0), [[0, 4], [4, 4], [8, 2]]);
  // 11 pieces, overlap 2 -> every 2 pieces: 0, 2, 4, 6 (ends at 10 < 11), 8 (3 pieces)
  assert.deepEqual(squadWindows(11, 4, 2), [[0, 4], [2, 4], [4, 4], [6, 4], [8, 3]]);
  assert.deepEqual(squadWindows(7, 4, 3), [[0, 4], [1, 4], [2, 4], [3, 4]]);
  assert.deepEqual(squadWindows(4, 4, 9), [[0, 4]]); // one window: the overlap never matters
  assert.deepEqual(squadWindows(0, 4, 1), [[0, 0]]);
  assert.throws(() => squadWindows(10, 4, 4), /overlap 4 leaves no room to advance in 4/);
});

/** A context of `n` one-piece words of VOCAB, and the character start of each word. */
function longContext(n: number): { context: string; at: number[] } {
  const words = Array.from({ length: n }, (_, i) => WORDS[3 + (i % 11)]); // bob ... slept
  const at: number[] = [];
  let c = 0;
  for (const w of words) {
    at.push(c);
    c += w.length + 1;
  }
  return { context: words.join(" "), at };
}

Deno.test("squadFeatures at the seed's 384 tokens: windows overlap by 128, gold spans score 100", () => {
  const tok = tokenizerFromVocab(VOCAB);
  // 700 context pieces; "who ran ?" is 3 pieces, so a window holds 384 - 3 - 3 = 378 and each
  // starts 378 - 128 = 250 after the one before: [0, 378), [250, 628), [500, 700). (Google's
  // run_squad.py meaning, a start every 128 pieces, would make 4 windows: 0, 128, 256, 384.)
  const { context, at } = longContext(700);
  const span = (first: number, last: number) => ({
    text: context.slice(at[first], at[last] + WORDS[3 + (last % 11)].length),
    start: at[first],
  });
  const q = (id: string, first: number, last: number) => ({
    id,
    question: "who ran?",
    context,
    isImpossible: false,
    answers: [span(first, last)],
  });
  const examples = [
    q("in-both", 300, 301), // in windows 0 and 1; most context in window 0
    q("late-in-both", 360, 362), // in windows 0 and 1; most context in window 1
    q("across", 376, 379), // crosses window 0's end: only window 1 holds it whole
    q("last", 690, 699),
    { id: "none", question: "who ran?", context, isImpossible: true, answers: [] },
  ];
  const { features, stats } = squadFeatures(examples, tok, { maxSeqLength: 384 });
  assert.equal(stats.strideReduced, 0);
  assert.equal(stats.docStride, 128);
  const of = (id: string) => features.filter((f) => f.exampleId === id);
  for (const e of examples) {
    assert.deepEqual(of(e.id).map((f) => [f.contextStart, f.contextLength]), [
      [0, 378],
      [250, 378],
      [500, 200],
    ]);
  }
  // Context starts at token 5 ([CLS] who ran ? [SEP]); a window labels the answer only when it
  // holds all of it.
  const labels = (id: string) => of(id).map((f) => [f.startPosition, f.endPosition]);
  assert.deepEqual(labels("in-both"), [[305, 306], [55, 56], [0, 0]]);
  assert.deepEqual(labels("late-in-both"), [[365, 367], [115, 117], [0, 0]]);
  assert.deepEqual(labels("across"), [[0, 0], [131, 134], [0, 0]]);
  assert.deepEqual(labels("last"), [[0, 0], [0, 0], [195, 204]]);
  // The pieces of the overlap [250, 378) are in windows 0 and 1; each has its most context in
  // the nearer middle (run_squad.py): piece 300 in window 0, pieces 360 and 376 in window 1.
  assert.equal(of("in-both")[0].maxContext[305], 1);
  assert.equal(of("in-both")[1].maxContext[55], 0);
  assert.equal(of("late-in-both")[1].maxContext[115], 1);
  assert.equal(of("across")[1].maxContext[131], 1);
  // Gold spans as logits (10 at the labelled start and end, [CLS] 10 for "none"), post-processed
  // over all windows of a question: every answer comes back, EM and F1 100.
  const T = 384;
  const start: Float32Array[] = [], end: Float32Array[] = [];
  for (const f of features) {
    const s = new Float32Array(T).fill(-10), e = new Float32Array(T).fill(-10);
    s[0] = e[0] = f.exampleId === "none" ? 10 : 0;
    if (f.startPosition > 0) [s[f.startPosition], e[f.endPosition]] = [10, 10];
    start.push(s);
    end.push(e);
  }
  const pp = squadPostprocess(examples, features, start, end);
  for (const e of examples) assert.equal(pp.predictions[e.id], e.answers[0]?.text ?? "", e.id);
  const m = evaluateSquad(
    examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
    pp.predictions,
    { naProbs: pp.nullOdds },
  );
  assert.deepEqual([m.exact, m.f1, m.total], [100, 100, 5]);
});

Deno.test("squadFeatures: a stride leaving no room to advance: the default halves the room, a given one is an error", () => {
  const tok = tokenizerFromVocab(VOCAB);
  // 12 context pieces, maxSeq 10: a 2-piece question leaves 5 per window, so the default 128
  // cannot advance: the windows overlap by half the room, 2, and start every 3 pieces.
  const { context } = longContext(12);
  const ex = (id: string, question: string) => ({
    id,
    question,
    context,
    isImpossible: true,
    answers: [],
  });
  const two = [ex("q1", "who?"), ex("q2", "who ran")];
  const d = squadFeatures(two, tok, { maxSeqLength: 10 });
  assert.deepEqual(
    d.features.filter((f) => f.exampleId === "q1").map((f) => [f.contextStart, f.contextLength]),
    [[0, 5], [3, 5], [6, 5], [9, 3]],
  );
  assert.deepEqual(
    [d.stats.strideReduced, d.stats.reducedRoom, d.stats.reducedOverlap],
    [2, [5, 5], [2, 2]],
  );
  assert.match(
    describeSquadWindows(d.stats, 2),
    /--doc-stride 128 \(the default\) leaves no room to advance at --max-seq-length 10 for 2 of them \(5 context tokens per window\): reduced to half the context room, 2 tokens of overlap/,
  );
  // A 3-piece question leaves 4: overlap 2, a start every 2 pieces; the line gives the ranges.
  const mixed = squadFeatures([ex("q3", "who ran?"), two[0]], tok, { maxSeqLength: 10 });
  assert.deepEqual(
    mixed.features.filter((f) => f.exampleId === "q3").map((f) => f.contextStart),
    [0, 2, 4, 6, 8],
  );
  assert.match(
    describeSquadWindows(mixed.stats, 2),
    /\(4–5 context tokens per window\).* 2 tokens/,
  );
  // Asked to re-make windows with a stride (a store's), "halve" gives the default's windows.
  const again = squadFeatures(two, tok, { maxSeqLength: 10, docStride: 128, noRoom: "halve" });
  assert.deepEqual(
    again.features.map((f) => f.contextStart),
    d.features.map((f) => f.contextStart),
  );
  // A stride that was asked for and leaves no room is an InputError naming the fix.
  assert.throws(
    () => squadFeatures(two, tok, { maxSeqLength: 10, docStride: 5 }),
    (e: Error) => {
      assert.ok(e instanceof InputError, String(e));
      assert.match(
        e.message,
        /^--doc-stride 5 leaves no room to advance at --max-seq-length 10: 2 questions .*\(fewest: 5, question q1\); give --doc-stride below 5 \(e\.g\. 2\), a larger --max-seq-length, or no --doc-stride/,
      );
      return true;
    },
  );
  // 4 leaves room: windows start every piece; a context that fits one window never advances.
  const four = squadFeatures([two[0]], tok, { maxSeqLength: 10, docStride: 4 });
  assert.equal(four.features.length, 12 - 5 + 1);
  const short = { ...two[0], context: "bob ran home" };
  assert.equal(squadFeatures([short], tok, { maxSeqLength: 10, docStride: 5 }).features.length, 1);
  // No overlap: side by side.
  assert.deepEqual(
    squadFeatures([two[0]], tok, { maxSeqLength: 10, docStride: 0 }).features.map((f) =>
      f.contextStart
    ),
    [0, 5, 10],
  );
});

Deno.test({
  name: "SQuAD round trip on the shared dev subset: gold spans cut back out through the offsets",
  ignore: !hasReal,
  async fn() {
    const tok = await loadTokenizer(`${SHARED}bert-base-uncased`);
    const examples = await readSquad(`${SHARED}squad/cs224n-dev-v2.0.json`);
    assert.equal(examples.length, 6078);
    assert.equal(examples.filter((e) => e.isImpossible).length, 3168);
    const { features, stats } = squadFeatures(examples, tok, { maxSeqLength: 384 });
    assert.ok(stats.multiWindow > 0, "some contexts need several windows");
    let checked = 0, insideWord = 0;
    const answered = new Set<number>();
    for (const f of features) {
      const ex = examples[f.exampleIndex];
      assert.equal(f.inputIds[0], tok.clsId);
      if (ex.isImpossible) {
        assert.equal(f.startPosition, 0);
        continue;
      }
      if (f.startPosition === 0) continue;
      answered.add(f.exampleIndex);
      assert.ok(f.endPosition >= f.startPosition && f.tokenTypeIds[f.startPosition] === 1);
      const cutOut = ex.context.slice(f.charStart[f.startPosition], f.charEnd[f.endPosition]);
      const gold = ex.answers[0];
      checked++;
      if (cutOut === gold.text) continue;
      // The only other case: the answer starts or ends inside a word piece ("1990" of "1990s").
      insideWord++;
      assert.ok(cutOut.includes(gold.text), `${ex.id}: ${cutOut} vs ${gold.text}`);
      assert.notEqual(normalizeAnswer(cutOut), "");
    }
    // every answerable question fits some window at 384 tokens
    assert.equal(answered.size, examples.length - 3168);
    // 2927 windows hold an answer (windows overlapping by 128; with a window start every 128
    // pieces, Google's meaning, 2953 did); only 2 cut-outs differ from the gold text, both
    // "Japanese" for the gold "Japan" (the answer ends inside a word).
    assert.equal(checked, 2927);
    assert.equal(insideWord, 2);
    // Gold spans as logits, post-processed over all windows of each question (max context,
    // null score): the official EM/F1 are 100 but for those two "Japanese" answers.
    const T = 384;
    const start: Float32Array[] = [], end: Float32Array[] = [];
    for (const f of features) {
      const s = new Float32Array(T).fill(-10), e = new Float32Array(T).fill(-10);
      s[0] = e[0] = examples[f.exampleIndex].isImpossible ? 10 : 0;
      if (f.startPosition > 0) [s[f.startPosition], e[f.endPosition]] = [10, 10];
      start.push(s);
      end.push(e);
    }
    const pp = squadPostprocess(examples, features, start, end);
    const m = evaluateSquad(
      examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
      pp.predictions,
      { naProbs: pp.nullOdds },
    );
    // Every other answer comes back, but for those two and the six gold answers longer than the
    // 30 tokens post-processing allows (answered "": the null beats no candidate).
    const longest = new Map<number, number>();
    for (const f of features) {
      if (f.startPosition === 0) continue;
      const len = f.endPosition - f.startPosition + 1;
      longest.set(f.exampleIndex, Math.max(longest.get(f.exampleIndex) ?? 0, len));
    }
    const wrong = examples.flatMap((e, i) =>
      e.isImpossible || pp.predictions[e.id] === e.answers[0].text
        ? []
        : [pp.predictions[e.id] === "" && longest.get(i)! > 30 ? "too long" : pp.predictions[e.id]]
    );
    assert.deepEqual(wrong.sort(), ["Japanese", "Japanese", ...Array(6).fill("too long")]);
    assert.equal(m.NoAns_exact, 100);
    // "Japanese" is among those two questions' gold answers, so EM misses only the six.
    assert.equal(m.HasAns_exact, 100 * (2910 - 6) / 2910);
  },
});
