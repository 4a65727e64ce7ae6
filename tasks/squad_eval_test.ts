import assert from "node:assert/strict";
import { computeExact, computeF1, evaluateSquad, normalizeAnswer } from "./squad_eval.ts";
import { readSquad } from "./squad.ts";

const DEV = new URL("../../shared/data/squad/cs224n-dev-v2.0.json", import.meta.url).pathname;
const hasDev = await Deno.stat(DEV).then(() => true, () => false);

Deno.test("normalize_answer edge cases (values checked against Python's re/str semantics)", () => {
  assert.equal(normalizeAnswer("  The  Beatles' (band)!"), "beatles band");
  assert.equal(normalizeAnswer("an 10th-century"), "10thcentury"); // '-' removed, no split
  assert.equal(normalizeAnswer("The"), "");
  assert.equal(normalizeAnswer("theatre a-n the"), "theatre"); // "a-n" -> "an" -> removed
  // Python's \b is Unicode-aware: é and Ω are word characters, so "the" stays.
  assert.equal(normalizeAnswer("éthe"), "éthe");
  assert.equal(normalizeAnswer("Ωthe"), "ωthe");
  assert.equal(normalizeAnswer("ÀN Apple"), "àn apple");
  // '_' is punctuation and goes before articles are looked for.
  assert.equal(normalizeAnswer("the_a"), "thea");
  // str.split() whitespace: NBSP, U+2028, U+0085; not U+200B.
  assert.equal(normalizeAnswer("a\u00a0the b"), "b");
  assert.equal(normalizeAnswer("x\u2028the\u0085y"), "x y");
  assert.equal(normalizeAnswer("x\u200by"), "x\u200by");
  // Only ASCII punctuation is removed.
  assert.equal(normalizeAnswer("“Quoted” — text"), "“quoted” — text");
});

Deno.test("EM and token F1 by hand", () => {
  assert.equal(computeExact("Denmark, Iceland and Norway", "denmark iceland, and norway."), 1);
  // pred [10th 11th centuries] vs gold [10th and 11th centuries]: P 1, R 3/4 -> 6/7
  assert.equal(computeF1("10th and 11th centuries", "the 10th & 11th centuries"), 6 / 7);
  // pred [new new york], gold [new york]: 2 in common, P 2/3, R 1 -> 0.8
  assert.equal(computeF1("New York", "new new York"), 0.8);
  assert.equal(computeF1("", ""), 1);
  assert.equal(computeF1("", "the"), 1); // "the" normalises to nothing = no answer
  assert.equal(computeF1("cat", ""), 0);
  assert.equal(computeF1("cat", "dog"), 0);
});

Deno.test("best_exact/best_f1 thresholds and --na-prob-thresh by hand", () => {
  const qs = [
    { id: "q1", answers: ["cat"] },
    { id: "q2", answers: [] },
    { id: "q3", answers: ["dog", "a dog"] },
  ];
  const preds = { q1: "the cat", q2: "bird", q3: "" };
  const na = { q1: 0.1, q2: 0.9, q3: 0.5 };
  const m = evaluateSquad(qs, preds, { naProbs: na });
  // start at 1 (all null), q1 +1 -> 2 at 0.1, q3 +0, q2 -1: best 2/3 at 0.1
  assert.deepEqual(m, {
    exact: 100 / 3,
    f1: 100 / 3,
    total: 3,
    HasAns_exact: 50,
    HasAns_f1: 50,
    HasAns_total: 2,
    NoAns_exact: 0,
    NoAns_f1: 0,
    NoAns_total: 1,
    best_exact: 200 / 3,
    best_exact_thresh: 0.1,
    best_f1: 200 / 3,
    best_f1_thresh: 0.1,
  });
  // with threshold 0.4, q2 and q3 are predicted unanswerable: q2 right, q3 wrong
  const t = evaluateSquad(qs, preds, { naProbs: na, naProbThresh: 0.4 });
  assert.equal(t.exact, 200 / 3);
  assert.equal(t.NoAns_exact, 100);
  assert.throws(
    () => evaluateSquad(qs, preds, { naProbs: { q1: 0.1, q2: 0.2 } }),
    /no-answer probabilities: no number for question q3/,
  );
  assert.throws(
    () => evaluateSquad(qs, { q1: 3 } as unknown as Record<string, string>, { predFile: "p.json" }),
    /p.json: prediction for q1 is 3, not a string/,
  );
  // no NoAns keys when every question is answerable
  assert.deepEqual(Object.keys(evaluateSquad([qs[0]], preds)), [
    "exact",
    "f1",
    "total",
    "HasAns_exact",
    "HasAns_f1",
    "HasAns_total",
  ]);
});

/** Hand-made predictions for 12 questions of the shared dev subset. */
const PREDS: Record<string, string> = {
  "68cf05f67fd29c6f129fe2fb9": " FRANCE. ", // gold France: EM 1
  "f5fead9187d56af2bdbfcb921": "the 10th & 11th centuries", // EM 0, F1 6/7
  "f9183ead5bb93aaa12ea37245": "Denmark, Iceland, and Norway", // EM 1
  "1fc4da46445c2c1c2dc0ddeda": "Rollo the Walker", // gold Rollo: F1 2/3
  "1be9fa378cbee6d9fa8b6ac78": "an 10th-century", // "10thcentury": 0
  "c42edddd0f45b968cc4c512e5": "", // impossible: 1
  "d583847c96cbbbfaaa99dfcad": "Europe", // impossible: 0
  "e06fbbdb50af7ab3faefde618": "The", // impossible, "the" normalises to "": 1
  "cbb48eaacbbbfcccefb7aab7f": "", // impossible: 1
  "6d2fff36bcac0ea0e689a5a31": "William The\u00a0Conqueror", // EM 1
  "faf67818ee17102d8c16cc9e5": "Richard I.", // EM 1
  "e688568f9e7fd2700aea3d75d": "éthe Catholic", // gold Catholic: F1 2/3
};

Deno.test({
  name: "official metrics on hand-made predictions for the shared dev subset",
  ignore: !hasDev,
  async fn() {
    const all = await readSquad(DEV);
    const qs = all.filter((e) => Object.hasOwn(PREDS, e.id))
      .map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) }));
    assert.equal(qs.length, 12);
    const na = Object.fromEntries(Object.keys(PREDS).map((k, i) => [k, i / 20]));
    const m = evaluateSquad(qs, PREDS, { naProbs: na });
    // The same numbers as evaluate-v2.0.py gives on this 12-question dataset.
    assert.deepEqual(m, {
      exact: 58.333333333333336,
      f1: 76.58730158730158,
      total: 12,
      HasAns_exact: 50,
      HasAns_f1: 77.38095238095238,
      HasAns_total: 8,
      NoAns_exact: 75,
      NoAns_f1: 75,
      NoAns_total: 4,
      best_exact: 50,
      best_exact_thresh: 0.1,
      best_f1: 68.25396825396825,
      best_f1_thresh: 0.55,
    });
    // A missing prediction counts as wrong, with a warning naming it.
    const { cbb48eaacbbbfcccefb7aab7f: _, ...fewer } = PREDS;
    const warnings: string[] = [];
    const w = evaluateSquad(qs, fewer, { warn: (s) => warnings.push(s), predFile: "p.json" });
    assert.equal(w.total, 12);
    assert.equal(w.exact, 50);
    assert.equal(w.NoAns_exact, 50);
    assert.deepEqual(warnings, [
      "p.json: missing predictions for 1 of 12 questions (scored as wrong): cbb48eaacbbbfcccefb7aab7f",
    ]);
  },
});
