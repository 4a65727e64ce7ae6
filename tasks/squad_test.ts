import assert from "node:assert/strict";
import { parseSquad, squad, squadPostprocess } from "./squad.ts";
import { squadFeatures } from "../data/features.ts";
import { tokenizerFromVocab } from "../data/tokenize.ts";
import { InputError } from "../data/errors.ts";

const doc = (qas: unknown[], context = "Bob ran home.") =>
  JSON.stringify({ version: "v2.0", data: [{ title: "T", paragraphs: [{ context, qas }] }] });

Deno.test("parseSquad: examples, impossible questions, code-point answer starts", () => {
  const ex = parseSquad(
    doc([
      {
        id: "a",
        question: "Who?",
        answers: [{ text: "Bob", answer_start: 0 }],
        is_impossible: false,
      },
      {
        id: "b",
        question: "Where not?",
        answers: [],
        is_impossible: true,
        plausible_answers: [{ text: "home", answer_start: 8 }],
      },
    ]),
    "f.json",
  );
  assert.deepEqual(ex[0], {
    id: "a",
    title: "T",
    question: "Who?",
    context: "Bob ran home.",
    answers: [{ text: "Bob", start: 0 }],
    isImpossible: false,
  });
  assert.equal(ex[1].isImpossible, true);
  assert.deepEqual(ex[1].plausibleAnswers, [{ text: "home", start: 8 }]);
  // answer_start counts code points (Python); JavaScript indices count UTF-16 units
  const [e] = parseSquad(
    doc([{ id: "c", question: "?", answers: [{ text: "ran", answer_start: 4 }] }], "😀 b ran"),
    "f",
  );
  assert.equal("😀 b ran".slice(e.answers[0].start, e.answers[0].start + 3), "ran");
});

Deno.test("parseSquad: a JSON that is not SQuAD is a clear error naming file and entry", () => {
  assert.throws(() => parseSquad("{", "x.json"), /^Error: x.json: not JSON/);
  assert.throws(
    () => parseSquad("[1]", "x.json"),
    /x.json: not a SQuAD file: the top level is not an object/,
  );
  assert.throws(
    () => parseSquad('{"version":"1"}', "x.json"),
    /x.json: not a SQuAD file: data is not an array/,
  );
  assert.throws(
    () => parseSquad(doc([{ question: "Who?", answers: [] }]), "x.json"),
    /x.json: not a SQuAD file: data\[0\].paragraphs\[0\].qas\[0\].id is not a string/,
  );
  assert.throws(
    () =>
      parseSquad(
        doc([{ id: "a", question: "Q", answers: [{ text: "B", answer_start: -1 }] }]),
        "x.json",
      ),
    /qas\[0\].answers\[0\].answer_start is not a non-negative integer/,
  );
  assert.throws(
    () =>
      parseSquad(
        doc([{ id: "a", question: "Q", answers: [] }, { id: "a", question: "R", answers: [] }]),
        "x.json",
      ),
    /qas\[1\].id repeats question id a/,
  );
  assert.equal(squad.fileFor("dev"), "squad/dev-v2.0.json");
  assert.throws(() => squad.fileFor("test"), /squad has no split "test"/);
});

const VOCAB = [
  "[PAD]",
  "[UNK]",
  "[CLS]",
  "[SEP]",
  "who",
  "?",
  "bob",
  "ran",
  "home",
  "then",
  "slept",
  ".",
];

Deno.test("squadPostprocess: best span over windows vs the null score, max length, context only", () => {
  const tok = tokenizerFromVocab(VOCAB);
  const context = "Bob ran home. Then Bob slept.";
  const ex = { id: "q", question: "who?", context, isImpossible: false, answers: [] };
  // question 2 pieces; maxSeq 10 -> 5 context pieces per window, overlapping by 2: windows at 0
  // and 5 - 2 = 3
  const { features } = squadFeatures([ex], tok, { maxSeqLength: 10, docStride: 2 });
  assert.equal(features.length, 2);
  const L = 10;
  const zeros = () => new Float32Array(L).fill(-10);
  const s = [zeros(), zeros()], e = [zeros(), zeros()];
  // window 0: tokens 4..8 = bob ran home . then ; window 1: tokens 4..8 = . then bob slept .
  s[0][0] = 1, e[0][0] = 1; // null 2 in window 0
  s[1][0] = 0.5, e[1][0] = 0.5; // null 1 in window 1: the smallest wins
  s[0][4] = 3, e[0][6] = 3; // "Bob ran home" = 6 (start has max context in window 0)
  s[0][2] = 9, e[0][2] = 9; // a question token: never an answer
  s[1][6] = 2.5, e[1][7] = 2.5; // "Bob slept" = 5
  const r = squadPostprocess([ex], features, s, e);
  assert.equal(r.predictions.q, "Bob ran home");
  assert.equal(r.nullOdds.q, 1 - 6);
  assert.equal(r.nbest.q[0].text, "Bob ran home");
  assert.equal(r.nbest.q[1].text, "Bob slept");
  assert.ok(r.nbest.q.some((n) => n.text === ""));
  assert.ok(Math.abs(r.nbest.q.reduce((a, n) => a + n.probability, 0) - 1) < 1e-9);
  // a higher threshold than the margin keeps the answer; the null wins when it scores higher
  s[1][0] = 8;
  e[1][0] = 8;
  s[0][0] = 8;
  e[0][0] = 8;
  const n = squadPostprocess([ex], features, s, e);
  assert.equal(n.predictions.q, "");
  assert.equal(n.nullOdds.q, 16 - 6);
  assert.equal(
    squadPostprocess([ex], features, s, e, { nullScoreDiffThreshold: 11 }).predictions.q,
    "Bob ran home",
  );
  // max answer length 2 rules out the 3-token "Bob ran home"
  const m = squadPostprocess([ex], features, s, e, {
    maxAnswerLength: 2,
    nullScoreDiffThreshold: 100,
  });
  assert.equal(m.predictions.q, "Bob slept");
  assert.throws(() => squadPostprocess([ex], features, [s[0]], e), /2 features but 1 start/);
});

/** Runs `fn` with console.warn captured. */
async function captureWarnings(fn: () => Promise<void>): Promise<string[]> {
  const warned: string[] = [];
  const orig = console.warn;
  console.warn = (...a: unknown[]) => warned.push(a.join(" "));
  try {
    await fn();
  } finally {
    console.warn = orig;
  }
  return warned;
}

Deno.test("SQuAD answers not at their answer_start: warned by every reader, left out of training rows only", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const context = "Bob ran home. Then Bob slept.";
    const path = `${dir}/train.json`;
    await Deno.writeTextFile(
      path,
      doc([
        { id: "good", question: "who?", answers: [{ text: "Bob", answer_start: 0 }] },
        { id: "shifted", question: "who?", answers: [{ text: "home", answer_start: 8 + 7 }] },
        { id: "past", question: "who?", answers: [{ text: "slept", answer_start: 400 }] },
        { id: "none", question: "who?", answers: [], is_impossible: true },
      ], context),
    );
    const warned: string[] = [];
    const examples = await squad.readFile(path, { warn: (m) => warned.push(m) });
    assert.deepEqual(examples.map((e) => e.badAnswers), [undefined, [0], [0], undefined]);
    assert.deepEqual(warned, [
      `${path}: 2 of 4 questions have an answer whose text is not the context at its ` +
      `answer_start (shifted, past); kept (evaluation compares answer texts)`,
    ]);
    const tok = tokenizerFromVocab(VOCAB);
    const o = { tokenizer: tok, maxSeqLength: 24 };
    let dev!: Awaited<ReturnType<typeof squad.readRows>>;
    let train!: Awaited<ReturnType<typeof squad.readRows>>;
    const devWarned = await captureWarnings(async () => {
      dev = await squad.readRows(path, o);
    });
    const trainWarned = await captureWarnings(async () => {
      train = await squad.readRows(path, { ...o, training: true });
    });
    assert.match(devWarned.join("\n"), /2 of 4 questions .*\(shifted, past\); kept/);
    assert.match(
      trainWarned.join("\n"),
      new RegExp(`^${path}: 2 of 4 questions .*\\(shifted, past\\); left out of training`),
    );
    assert.equal(dev.nExamples, 4);
    assert.equal(train.nExamples, 2);
    assert.deepEqual(train.squad!.examples.map((e) => e.id), ["good", "none"]);
    // idx stays the question's position in the file; labels: "Bob" at [2] of "[CLS] who ? [SEP]"
    assert.deepEqual([...train.idx], [0, 3]);
    assert.deepEqual([...train.labels], [4, 4, 0, 0]);
    // Every answer wrong: nothing left to train on is a clear error naming the file.
    const allBad = `${dir}/bad.json`;
    await Deno.writeTextFile(
      allBad,
      doc([{ id: "x", question: "who?", answers: [{ text: "Bob", answer_start: 99 }] }], context),
    );
    await captureWarnings(async () => {
      await assert.rejects(squad.readRows(allBad, { ...o, training: true }), (e: Error) => {
        assert.ok(e instanceof InputError);
        assert.equal(e.message, `${allBad}: no examples`);
        return true;
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a SQuAD JSON that is not UTF-8 is an InputError naming file:line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/dev.json`;
    const bytes = new TextEncoder().encode(doc([], "Bob ran home.").replace(",", ",\n"));
    bytes[bytes.indexOf(0x42)] = 0xC0; // "B" of Bob: an overlong lead byte
    await Deno.writeFile(path, bytes);
    await assert.rejects(squad.readFile(path), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, new RegExp(`^${path}:2: not UTF-8 \\(byte 0xC0 at column \\d+\\)`));
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SQuAD rows: a question too long for --max-seq-length is an InputError naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/dev.json`;
    const question = Array(30).fill("who").join(" ") + " ?";
    await Deno.writeTextFile(
      path,
      doc([{ id: "long", question, answers: [{ text: "Bob", answer_start: 0 }] }]),
    );
    const tok = tokenizerFromVocab(VOCAB);
    await assert.rejects(squad.readRows(path, { tokenizer: tok, maxSeqLength: 24 }), (e: Error) => {
      assert.ok(e instanceof InputError, String(e));
      assert.match(
        e.message,
        new RegExp(`^${path}: squadFeatures: long: maxSeqLength 24 leaves no room`),
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
