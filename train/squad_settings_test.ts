import assert from "node:assert/strict";
import {
  resolveSquadSettings,
  SQUAD_LIBRARY_SETTINGS,
  SQUAD_SEED_SETTINGS,
  squadRowsFor,
} from "./squad_settings.ts";
import { squadFeatures } from "../data/features.ts";
import { tokenizerFromVocab } from "../data/tokenize.ts";
import { getTask } from "../tasks/mod.ts";
import { InputError } from "../data/errors.ts";

// The seed's values, written from its code (not from squad_settings.ts):
// code/torch/utils/squad_preprocess.py at dfdafad and 0c7e25c: the tokenizer call cuts only the
// context (truncation="only_second"), the null score keeps the largest
// (`if min_null_score is None or min_null_score < feature_null_score`), no max-context check;
// code/tensorflow/utils/evaluation.py at dfdafad: the ensemble's independent argmaxes.
const SEED = { maxQuestionLength: 0, nullScore: "max", maxContext: false, ensemble: "seed" };

Deno.test("SQuAD settings: the preset is the seed's, the library's run_squad.py's, given wins", () => {
  assert.deepEqual({ ...SQUAD_SEED_SETTINGS }, SEED);
  assert.deepEqual({ ...SQUAD_LIBRARY_SETTINGS }, {
    maxQuestionLength: 64,
    nullScore: "min",
    maxContext: true,
    ensemble: "ours",
  });
  const r = resolveSquadSettings({ maxContext: true }, true);
  assert.deepEqual(r.values, { ...SEED, maxContext: true });
  assert.deepEqual(r.from, {
    maxQuestionLength: "preset",
    nullScore: "preset",
    maxContext: "given",
    ensemble: "preset",
  });
  assert.throws(() => resolveSquadSettings({ maxQuestionLength: -1 }, true), /≥ 0/);
});

Deno.test("SQuAD settings: the row options; a SQuAD flag given for another task is an error", () => {
  const seed = resolveSquadSettings(undefined, true);
  assert.deepEqual(squadRowsFor(getTask("squad"), seed, false), {
    maxQueryLength: 0,
    answerRule: { nullScore: "max", maxContext: false, ensemble: "seed" },
  });
  assert.deepEqual(squadRowsFor(getTask("rte"), seed, true), {});
  assert.throws(
    () => squadRowsFor(getTask("rte"), resolveSquadSettings({ nullScore: "min" }, true), true),
    (e) => e instanceof InputError && /--squad-null is a SQuAD setting; task rte/.test(e.message),
  );
});

Deno.test("--max-question-length 0 keeps the whole question (the seed), N cuts it", () => {
  const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "?"]);
  const ex = {
    id: "q",
    question: "a b a b a b ?",
    context: "a b",
    answers: [],
    isImpossible: true,
  };
  const whole = squadFeatures([ex], tok, { maxSeqLength: 16, maxQueryLength: 0 });
  assert.equal(whole.stats.truncatedQuestions, 0);
  assert.equal(whole.features[0].charStart.findIndex((c) => c >= 0), 1 + 7 + 1);
  const cut = squadFeatures([ex], tok, { maxSeqLength: 16, maxQueryLength: 3 });
  assert.equal(cut.stats.truncatedQuestions, 1);
  assert.equal(cut.features[0].charStart.findIndex((c) => c >= 0), 1 + 3 + 1);
  // A whole question that leaves no room names the flags that fix it.
  assert.throws(
    () => squadFeatures([ex], tok, { maxSeqLength: 10, maxQueryLength: 0 }),
    /--max-question-length N, or raise --max-seq-length/,
  );
  assert.throws(() => squadFeatures([ex], tok, { maxQueryLength: -2 }), /≥ 0/);
});
