// Hand-checked ensembles: max of softmax distributions, then argmax; span ensembles as
// log-probabilities through squadPostprocess.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { ensembleClassification } from "./classification.ts";
import { ensembleRegression } from "./regression.ts";
import { ensembleSpan } from "./span.ts";
import { softmaxRows } from "./_common.ts";
import { squadPostprocess } from "../squad.ts";
import type { SquadFeature } from "../../data/features.ts";

const ln = Math.log;

function near(got: ArrayLike<number>, want: number[], what: string, tol = 1e-6) {
  deepStrictEqual(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

Deno.test("softmaxRows: closed forms and large logits", () => {
  near(softmaxRows([0, ln(3), 1000, 1000 + ln(4)], 2, 2), [0.25, 0.75, 0.2, 0.8], "softmax");
});

Deno.test("classification: max of the distributions, not their mean", () => {
  // Row 0: AP [0.6, 0.3, 0.1], BERT [0.1, 0.45, 0.45]: max [0.6, 0.45, 0.45] → 0 (mean → 1).
  // Row 1: AP [0.2, 0.5, 0.3], BERT [0.05, 0.15, 0.8]: max [0.2, 0.5, 0.8] → 2.
  // Row 2: logits shifted by a constant give the same distribution: AP [0.5, 0.5, 0] ~ BERT.
  const ap = [0.6, 0.3, 0.1, 0.2, 0.5, 0.3].map(ln).concat([7, 7, -1e9]);
  const bert = [0.1, 0.45, 0.45, 0.05, 0.15, 0.8].map((p) => ln(p) + 3).concat([0, 0, -1e9]);
  const r = ensembleClassification(ap, bert, 3, 3);
  near(r.probs, [0.6, 0.45, 0.45, 0.2, 0.5, 0.8, 0.5, 0.5, 0], "probs");
  deepStrictEqual([...r.preds], [0, 2, 0], "argmax (a tie goes to the first class)");
  throws(() => ensembleClassification(ap, bert.slice(3), 3, 3), /AP has 9 logits but BERT 6/);
  throws(() => ensembleClassification([1], [2], 1, 1), /ensembleRegression/);
});

Deno.test("regression: the mean of the two predictions", () => {
  near(ensembleRegression([1, 4.5], [2, 3.5]), [1.5, 4], "mean");
  throws(() => ensembleRegression([1], [1, 2]), /1 predictions but BERT 2/);
});

Deno.test("span: log of the max start/end distributions; squadPostprocess takes them", () => {
  // start: AP softmax [0.25, 0.75], BERT [0.8, 0.2] → log [0.8, 0.75].
  const r = ensembleSpan(
    { start: [[0, ln(3)]], end: [[ln(9), 0]] },
    { start: [[ln(4), 0]], end: [[0, 0]] },
  );
  near(r.start[0], [ln(0.8), ln(0.75)], "start");
  near(r.end[0], [ln(0.9), ln(0.5)], "end");
  throws(
    () => ensembleSpan({ start: [[0]], end: [[0]] }, { start: [], end: [] }),
    /same dev features/,
  );

  // [CLS] q [SEP] Bob ran fast [SEP] <pad>: AP is sure of "Bob" (token 3); BERT leans mildly
  // to "ran" (4) and to no-answer. Max of distributions: start 3 (0.9 vs BERT's 0.3 at 4),
  // end 3; null score log(0.05)+log(0.05) is far below → answer "Bob".
  const context = "Bob ran fast";
  const T = 8;
  const feature: SquadFeature = {
    exampleIndex: 0,
    exampleId: "q",
    windowIndex: 0,
    contextStart: 0,
    contextLength: 3,
    inputIds: new Int32Array(T),
    tokenTypeIds: new Int32Array(T),
    attentionMask: Int32Array.from([1, 1, 1, 1, 1, 1, 1, 0]),
    charStart: Int32Array.from([-1, -1, -1, 0, 4, 8, -1, -1]),
    charEnd: Int32Array.from([-1, -1, -1, 3, 7, 12, -1, -1]),
    maxContext: Uint8Array.from([0, 0, 0, 1, 1, 1, 0, 0]),
    startPosition: 3,
    endPosition: 3,
  };
  const dist = (peak: number, p: number, rest: number) =>
    Array.from({ length: T }, (_, t) => ln(t === peak ? p : rest));
  const ap = { start: [dist(3, 0.9, 0.1 / 7)], end: [dist(3, 0.9, 0.1 / 7)] };
  const bert = { start: [dist(4, 0.3, 0.1)], end: [dist(4, 0.3, 0.1)] };
  const ens = ensembleSpan(ap, bert);
  near(ens.start[0].slice(3, 5), [ln(0.9), ln(0.3)], "feature start", 1e-5);
  const out = squadPostprocess(
    [{
      id: "q",
      question: "Who?",
      context,
      answers: [{ text: "Bob", start: 0 }],
      isImpossible: false,
    }],
    [feature],
    ens.start,
    ens.end,
  );
  deepStrictEqual(out.predictions.q, "Bob");
  // BERT alone would answer "ran".
  deepStrictEqual(
    squadPostprocess(
      [{ id: "q", question: "Who?", context, answers: [], isImpossible: false }],
      [feature],
      bert.start,
      bert.end,
    ).predictions.q,
    "ran",
  );
});

Deno.test("any number of runs: the max over all distributions, not a fold of pairs", async () => {
  const { kindOf, getTask } = await import("../mod.ts");
  // One SST-2 row: A [0.6, 0.4], B [0.3, 0.7], C [0.65, 0.35]. The max of the three is
  // [0.65, 0.7] → class 1; folding pairs (A with B renormalised to [0.46, 0.54], then C) would
  // give class 0.
  const sst2 = kindOf(getTask("sst2"));
  const [a, b, c] = [[0.6, 0.4], [0.3, 0.7], [0.65, 0.35]].map((p) => p.map(ln));
  near(sst2.ensemble([a, b, c], 1, 0), [ln(0.65), ln(0.7)], "log max of three");
  deepStrictEqual([...sst2.predict(sst2.ensemble([a, b, c], 1, 0), 1)], [1]);
  // Two runs: the paper's pair, as ensembleClassification computes it.
  near(
    sst2.ensemble([a, b], 1, 0).map(Math.exp),
    [...ensembleClassification(a, b, 1, 2).probs],
    "two runs",
  );
  throws(() => sst2.ensemble([a, [0]], 1, 0), /run 1 has 1 logits but run 0 2/);
  // STS-B: the mean of the three predictions.
  near(kindOf(getTask("stsb")).ensemble([[1, 4], [2, 3], [3, 5]], 2, 0), [2, 4], "mean");
  // SQuAD, one window of 2 tokens, saved [1, 2, 2] as (start, end) per token. Starts: A
  // [0.25, 0.75], B [0.8, 0.2], C [0.5, 0.5] → max [0.8, 0.75]; ends all [0.5, 0.5].
  const squadKind = kindOf(getTask("squad"));
  const saved = (s: number[]) => [ln(s[0]), 0, ln(s[1]), 0];
  const e = squadKind.ensemble([saved([0.25, 0.75]), saved([0.8, 0.2]), saved([0.5, 0.5])], 1, 2);
  near(e, [ln(0.8), ln(0.5), ln(0.75), ln(0.5)], "span start and end");
});
