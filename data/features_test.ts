import assert from "node:assert/strict";
import { answerTokenSpan, featurize, squadFeatures } from "./features.ts";
import { loadTokenizer, tokenizerFromVocab } from "./tokenize.ts";
import { readSquad } from "../tasks/squad.ts";
import { normalizeAnswer } from "../tasks/squad_eval.ts";

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

Deno.test("squadFeatures: windows with stride, answer only in the window that holds it", () => {
  const tok = tokenizerFromVocab(VOCAB);
  // 12 context pieces; question "who ran ?" (3); maxSeq 10 -> 4 pieces per window, stride 2
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
    docStride: 2,
    maxQueryLength: 2,
  });
  assert.equal(stats.truncatedQuestions, 2); // "who ran ?" cut to "who ran"
  // question 2 pieces -> 10 - 2 - 3 = 5 context pieces per window; windows start at 0, 2, 4, 6,
  // 8 (8 + 4 = 12 ends it)
  const w = features.filter((f) => f.exampleId === "q1");
  assert.equal(w.length, 5);
  assert.deepEqual(w.map((f) => f.windowIndex), [0, 1, 2, 3, 4]);
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
    // 2953 windows hold an answer (155 contexts need several windows); only 2 cut-outs differ
    // from the gold text, both "Japanese" for the gold "Japan" (the answer ends inside a word).
    assert.equal(checked, 2953);
    assert.equal(insideWord, 2);
  },
});
