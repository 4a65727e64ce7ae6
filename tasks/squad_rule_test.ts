// The seed's SQuAD answer rules against references re-written here from the seed's own code
// (not from ours): `postprocess_qa_predictions` of code/torch/utils/squad_preprocess.py
// (BERTVision dfdafad = 0c7e25c for this file) for one model, and `SquadModelEvaluation` of
// code/tensorflow/utils/evaluation.py (dfdafad) with `ensemble_two_models_max` of
// code/tensorflow/notebooks/model_analysis_section.ipynb for ensembles.
import assert from "node:assert/strict";
import { SEED_ANSWER_RULE, squadPostprocess } from "./squad.ts";
import { getTask, kindOf } from "./mod.ts";
import { type SquadExampleLike, type SquadFeature, squadFeatures } from "../data/features.ts";
import { tokenizerFromVocab } from "../data/tokenize.ts";

const WORDS = "bob ran home then slept and amy sang loud at noon who what did".split(" ");
const VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "?", ...WORDS];
const CLS_ID = 2;
const T = 12; // [CLS] q q ? [SEP] + 6 context tokens + [SEP]: 6 context pieces per window

/** A small deterministic generator (no timing, no global randomness). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Questions whose contexts need 2–3 windows of 6 pieces overlapping by 3. */
function fixture(): { examples: SquadExampleLike[]; features: SquadFeature[] } {
  const ctx = [
    "bob ran home then bob slept and amy sang loud",
    "amy sang loud at noon then bob ran home and slept at noon",
    "bob slept at noon and amy ran home",
  ];
  const examples: SquadExampleLike[] = [];
  for (let i = 0; i < 12; i++) {
    examples.push({
      id: `q${i}`,
      question: i % 2 ? "who ran?" : "what did?",
      context: ctx[i % ctx.length],
      answers: [],
      isImpossible: true,
    });
  }
  const { features } = squadFeatures(examples, tokenizerFromVocab(VOCAB), {
    maxSeqLength: T,
    docStride: 3,
  });
  return { examples, features };
}

// ---- the seed's postprocess_qa_predictions, re-written line by line ----------------------

/** np.argsort(x)[-1 : -n - 1 : -1]: indices of the n largest, largest first (no ties here). */
function argsortTop(x: ArrayLike<number>, n: number): number[] {
  const asc = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a] - x[b]);
  return asc.reverse().slice(0, n);
}

function seedPostprocess(
  examples: SquadExampleLike[],
  features: {
    example_id: string;
    input_ids: number[];
    offset_mapping: ([number, number] | null)[];
  }[],
  allStart: ArrayLike<number>[],
  allEnd: ArrayLike<number>[],
  nBestSize = 20,
  maxAnswerLength = 30,
): Record<string, string> {
  const exampleIdToIndex = new Map(examples.map((e, i) => [e.id, i]));
  const featuresPerExample = new Map<number, number[]>();
  features.forEach((f, i) => {
    const k = exampleIdToIndex.get(f.example_id)!;
    featuresPerExample.set(k, [...(featuresPerExample.get(k) ?? []), i]);
  });
  const predictions: Record<string, string> = {};
  examples.forEach((example, exampleIndex) => {
    let minNullScore: number | null = null;
    const validAnswers: { score: number; text: string }[] = [];
    const context = example.context;
    for (const featureIndex of featuresPerExample.get(exampleIndex) ?? []) {
      const startLogits = allStart[featureIndex], endLogits = allEnd[featureIndex];
      const offsetMapping = features[featureIndex].offset_mapping;
      const clsIndex = features[featureIndex].input_ids.indexOf(CLS_ID);
      const featureNullScore = startLogits[clsIndex] + endLogits[clsIndex];
      if (minNullScore === null || minNullScore < featureNullScore) {
        minNullScore = featureNullScore;
      }
      const startIndexes = argsortTop(startLogits, nBestSize);
      const endIndexes = argsortTop(endLogits, nBestSize);
      for (const startIndex of startIndexes) {
        for (const endIndex of endIndexes) {
          if (
            startIndex >= offsetMapping.length || endIndex >= offsetMapping.length ||
            offsetMapping[startIndex] === null || offsetMapping[endIndex] === null
          ) continue;
          if (endIndex < startIndex || endIndex - startIndex + 1 > maxAnswerLength) continue;
          const startChar = offsetMapping[startIndex]![0];
          const endChar = offsetMapping[endIndex]![1];
          validAnswers.push({
            score: startLogits[startIndex] + endLogits[endIndex],
            text: context.slice(startChar, endChar),
          });
        }
      }
    }
    // sorted(valid_answers, key=score, reverse=True)[0]: stable, so the first of equal scores.
    const bestAnswer = validAnswers.length > 0
      ? [...validAnswers].sort((a, b) => b.score - a.score)[0]
      : { text: "", score: 0.0 };
    predictions[example.id] = bestAnswer.score > minNullScore! ? bestAnswer.text : "";
  });
  return predictions;
}

/** The seed's features: offset_mapping None outside the context (prepare_validation_features). */
function seedFeatures(features: SquadFeature[]) {
  return features.map((f) => ({
    example_id: f.exampleId,
    input_ids: [...f.inputIds],
    offset_mapping: [...f.charStart].map((c, k): [number, number] | null =>
      c < 0 ? null : [c, f.charEnd[k]]
    ),
  }));
}

Deno.test("the seed's answer rule (null = max over windows, no max-context) equals the seed's code", () => {
  const { examples, features } = fixture();
  assert.ok(examples.every((_, i) => features.filter((f) => f.exampleIndex === i).length >= 2));
  const rnd = lcg(7);
  let maxVsMin = 0, hfDiffers = 0, contextCheck = 0;
  for (let trial = 0; trial < 20; trial++) {
    // Distinct logits; [CLS] scores spread so windows' null scores straddle the best span's.
    const row = () => Float32Array.from({ length: T }, (_, t) => (t === 0 ? 6 : 4) * rnd() - 1);
    const start = features.map(row), end = features.map(row);
    const ref = seedPostprocess(examples, seedFeatures(features), start, end);
    const ours = squadPostprocess(examples, features, start, end, SEED_ANSWER_RULE).predictions;
    assert.deepEqual(ours, ref, `trial ${trial}`);
    const minNull = squadPostprocess(examples, features, start, end, {
      nullScore: "min",
      maxContext: false,
    }).predictions;
    const hf = squadPostprocess(examples, features, start, end).predictions;
    const maxCtx = squadPostprocess(examples, features, start, end, {
      nullScore: "max",
      maxContext: true,
    }).predictions;
    for (const e of examples) {
      if (maxCtx[e.id] !== ref[e.id]) contextCheck++;
      if (minNull[e.id] !== ref[e.id]) maxVsMin++;
      if (hf[e.id] !== ref[e.id]) hfDiffers++;
    }
  }
  // The fixture tells the rules apart: the min null score answers questions the max does not.
  assert.ok(maxVsMin >= 5, `max and min null scores differ on ${maxVsMin} questions`);
  assert.ok(hfDiffers >= maxVsMin, `run_squad.py's rule differs on ${hfDiffers}`);
  // ... and so does the max-context check, alone.
  assert.ok(contextCheck >= 3, `the max-context check changes ${contextCheck} answers`);
});

Deno.test("the seed's answer rule on a designed question: max null says no answer, min answers", () => {
  const { examples, features } = fixture();
  const fs = features.map((f, i) => [f, i] as const).filter(([f]) => f.exampleIndex === 0);
  const start = features.map(() => new Float32Array(T).fill(-5));
  const end = features.map(() => new Float32Array(T).fill(-5));
  const [w0, w1] = [fs[0][1], fs[1][1]];
  start[w0][0] = 1, end[w0][0] = 1; // null 2 in window 0
  start[w1][0] = 4, end[w1][0] = 4; // null 8 in window 1
  const c = features[w0].charStart.findIndex((x) => x >= 0);
  start[w0][c] = 3, end[w0][c + 1] = 2; // best span 5: between the two null scores
  const ref = seedPostprocess(examples, seedFeatures(features), start, end);
  const seed = squadPostprocess(examples, features, start, end, SEED_ANSWER_RULE).predictions;
  const hf = squadPostprocess(examples, features, start, end).predictions;
  assert.equal(ref.q0, "");
  assert.equal(seed.q0, "");
  assert.equal(hf.q0, "bob ran");
  // A tie between the best span and the null score: the seed answers nothing (its `>`),
  // run_squad.py the span.
  // Both windows' null scores 5 = the best span's.
  start[w0][0] = 2.5, end[w0][0] = 2.5, start[w1][0] = 2.5, end[w1][0] = 2.5;
  const tieRef = seedPostprocess(examples, seedFeatures(features), start, end);
  assert.equal(tieRef.q0, "");
  assert.equal(
    squadPostprocess(examples, features, start, end, SEED_ANSWER_RULE).predictions.q0,
    "",
  );
  assert.equal(
    squadPostprocess(examples, features, start, end, { nullScore: "min", maxContext: false })
      .predictions.q0,
    "bob ran",
  );
});

// ---- the seed's ensemble rule: SquadModelEvaluation with already_prob=True ----------------

function softmax(x: ArrayLike<number>): number[] {
  const e = Array.from(x, (v) => Math.exp(v));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/**
 * ensemble_two_models_max + SquadModelEvaluation(already_prob=True).get_best_prob_answer: per
 * question the answer tokens, and which positions of its window they are.
 */
function seedEnsemble(
  features: SquadFeature[],
  s1: ArrayLike<number>[],
  e1: ArrayLike<number>[],
  s2: ArrayLike<number>[],
  e2: ArrayLike<number>[],
): Record<string, { tokens: string[]; feature: number; positions: number[] }> {
  const start = s1.map((a, i) => softmax(a).map((p, t) => Math.max(p, softmax(s2[i])[t])));
  const end = e1.map((a, i) => softmax(a).map((p, t) => Math.max(p, softmax(e2[i])[t])));
  const argmax = (r: number[]) => r.indexOf(Math.max(...r));
  // get_output_strings: example[start_ind:end_ind] with end_ind = argmax(end) + 1
  const answers = features.map((f, i) => {
    const startInd = argmax(start[i]), endInd = argmax(end[i]) + 1;
    const positions: number[] = [];
    for (let t = startInd; t < endInd; t++) positions.push(t);
    let tokens = positions.map((t) => VOCAB[f.inputIds[t]]);
    if (tokens.length === 1 && tokens[0] === "[CLS]") tokens = [];
    return { tokens, feature: i, positions: tokens.length ? positions : [] };
  });
  // get_per_example_probs (already_prob): logits_start.max(axis=1) * logits_end.max(axis=1)
  const probs = features.map((_, i) => Math.max(...start[i]) * Math.max(...end[i]));
  const best: Record<string, [(typeof answers)[number], number]> = {};
  answers.forEach((answer, i) => {
    const id = features[i].exampleId;
    if (!(id in best) || probs[i] > best[id][1]) best[id] = [answer, probs[i]];
  });
  return Object.fromEntries(Object.entries(best).map(([id, [a]]) => [id, a]));
}

Deno.test("the seed's SQuAD ensemble rule (independent argmaxes, window by product of maxima) equals the seed's code", () => {
  const { examples, features } = fixture();
  const rnd = lcg(11);
  const n = features.length;
  // Per window either a no-answer peak at [CLS] or peaks inside the context (the seed's token
  // lists then read as the context text); question tokens and [SEP] are never the argmax.
  const model = () => {
    const s: Float32Array[] = [], e: Float32Array[] = [];
    for (const f of features) {
      const ctx = [...f.charStart.keys()].filter((t) => f.charStart[t] >= 0);
      const row = (peakCls: boolean) =>
        Float32Array.from(
          { length: T },
          (_, t) => f.charStart[t] >= 0 ? 6 * rnd() : t === 0 ? (peakCls ? 5 + rnd() : -2) : -9,
        );
      const cls = rnd() < 0.15;
      s.push(row(cls));
      e.push(row(cls));
      assert.ok(ctx.length > 0);
    }
    return { s, e };
  };
  const rule = { ...SEED_ANSWER_RULE };
  // As train/ensemble.ts ensembleScores scores an ensemble.
  const kind = kindOf(getTask("squad"));
  const ensembleScores = (runs: Float32Array[], rows: Parameters<typeof kind.score>[1]) =>
    kind.scoreEnsemble!(kind.ensemble(runs, rows.n, rows.seq), rows);
  let nonEmpty = 0, emptyFromOrder = 0, crossing = 0;
  for (let trial = 0; trial < 10; trial++) {
    const a = model(), b = model();
    const ref = seedEnsemble(features, a.s, a.e, b.s, b.e);
    // The saved layout [N, T, 2] of each model.
    const saved = (m: { s: Float32Array[]; e: Float32Array[] }) => {
      const out = new Float32Array(n * T * 2);
      for (let i = 0; i < n; i++) {
        for (let t = 0; t < T; t++) {
          out[(i * T + t) * 2] = m.s[i][t];
          out[(i * T + t) * 2 + 1] = m.e[i][t];
        }
      }
      return out;
    };
    const rows = {
      n,
      seq: T,
      labels: new Float64Array(2 * n),
      squad: { examples: examples as never, features, rule },
    };
    const scored = ensembleScores([saved(a), saved(b)], rows);
    for (const ex of examples) {
      const r = ref[ex.id], f = features[r.feature];
      // The seed's tokens as text; a span reaching out of the context (start at [CLS], end in
      // it) keeps its context tokens only: the one documented difference (tasks/squad_seed.ts).
      const inContext = r.positions.filter((t) => f.charStart[t] >= 0);
      if (inContext.length === r.positions.length) {
        assert.equal(scored.answers![ex.id], r.tokens.join(" "), `trial ${trial} ${ex.id}`);
      } else {
        crossing++;
        const want = inContext.map((t) => VOCAB[f.inputIds[t]]).join(" ");
        assert.equal(scored.answers![ex.id], want, `trial ${trial} ${ex.id} (crossing)`);
      }
      if (r.tokens.length) nonEmpty++;
      else emptyFromOrder++;
    }
    // "ours" post-processes the same combined distributions otherwise.
    const ours = ensembleScores([saved(a), saved(b)], {
      ...rows,
      squad: { ...rows.squad, rule: { ...rule, ensemble: "ours" as const } },
    });
    assert.ok(ours.naProbs !== undefined && scored.naProbs === undefined);
  }
  assert.ok(
    nonEmpty > 20 && emptyFromOrder > 5 && crossing < nonEmpty / 4,
    `${nonEmpty} answers (${crossing} reaching out of the context), ${emptyFromOrder} empty`,
  );
});
