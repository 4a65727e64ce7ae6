import assert from "node:assert/strict";
import { getTask, isGlueTask, TASK_NAMES } from "./mod.ts";
import type { GlueTask } from "./types.ts";
import { InputError } from "../data/errors.ts";

const GLUE = new URL("../../shared/data/glue/", import.meta.url).pathname;
const hasGlue = await Deno.stat(GLUE).then(() => true, () => false);

const glue = (name: string) => getTask(name) as GlueTask;

/** Fixture files in the GLUE distribution's layout and formats (quirks included). */
const FIXTURES: Record<string, string> = {
  // CoLA: no header, 4 columns, no final newline; its test file has a header.
  "CoLA/dev.tsv":
    "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe more he reads, the more books.",
  "CoLA/test.tsv": "index\tsentence\n0\tBill whistled past the house.\n",
  "SST-2/dev.tsv": 'sentence\tlabel\nit \'s a "charming" journey . \t1\nbleak \t0\n',
  "SST-2/test.tsv": "index\tsentence\n0\tuneasy mishmash of styles\n",
  // MRPC: the header starts with a byte-order mark; quotes are text (no quote processing).
  "MRPC/dev.tsv":
    '\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe said "no.\tShe said no.\n0\t3\t4\tA\tB\n',
  "MRPC/test.tsv": "index\t#1 ID\t#2 ID\t#1 String\t#2 String\n0\t5\t6\tC\tD\n",
  "STS-B/dev.tsv":
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n" +
    "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man dances.\tA man is dancing.\t5.000\n" +
    "1\tmain-news\theadlines\t2013\t0001\tnone\tnone\tX\tY\t0.250\n",
  "STS-B/test.tsv":
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\n" +
    "0\tmain-captions\tMSRvid\t2012test\t0024\tnone\tnone\tA girl sings.\tA girl is singing.\n",
  // QQP: malformed rows (a question with an embedded newline) are skipped and counted.
  "QQP/dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n" +
    "0\t1\t2\tHow do I learn?\tWhat is learning?\t0\n" +
    "1\t3\t4\tWhy is the sky\n" +
    "blue?\tWhy blue sky?\t1\n" +
    "2\t5\t6\tWhat?\tWhat is it?\t1\n",
  "QQP/test.tsv": "id\tquestion1\tquestion2\n0\tA?\tB?\n",
  // MNLI: dev has 16 columns (five annotator labels), train 12.
  "MNLI/dev_matched.tsv":
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
    "0\t63735\t63735n\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tThe new rights are nice.\tEveryone loves them.\tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n" +
    "1\t91383\t91383c\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tThis site includes a list.\tThe site has no list.\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\tcontradiction\n",
  "MNLI/dev_mismatched.tsv":
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n" +
    "0\t75\t75e\tletters\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tYour gift is appreciated.\tGifts help.\tentailment\tentailment\tentailment\tentailment\tentailment\tentailment\n",
  "MNLI/train.tsv":
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n" +
    "0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tCream skimming.\tProduct and geography.\tneutral\tneutral\n",
  "MNLI/test_matched.tsv":
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\n" +
    "0\t31\t31c\tslate\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tHi.\tBye.\n",
  "QNLI/dev.tsv":
    "index\tquestion\tsentence\tlabel\n0\tWhat came?\tIt came.\tentailment\n1\tWho?\tNo.\tnot_entailment\n",
  "RTE/dev.tsv":
    "index\tsentence1\tsentence2\tlabel\n0\tDana died.\tDana had an accident.\tnot_entailment\n",
  "RTE/test.tsv": "index\tsentence1\tsentence2\n0\tA.\tB.\n",
  "WNLI/dev.tsv":
    "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged.\tIt is clogged.\t1\n",
};

async function writeFixtures(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "glue_fixture_" });
  for (const [path, text] of Object.entries(FIXTURES)) {
    await Deno.mkdir(`${dir}/${path.split("/")[0]}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  return dir;
}

Deno.test("registry: ten tasks, heads, losses and metrics", () => {
  assert.deepEqual([...TASK_NAMES], [
    "cola",
    "sst2",
    "mrpc",
    "stsb",
    "qqp",
    "mnli",
    "qnli",
    "rte",
    "wnli",
    "squad",
  ]);
  for (const n of TASK_NAMES) assert.equal(getTask(n).name, n);
  assert.equal(getTask("SST2").name, "sst2");
  assert.throws(() => getTask("mnli-mm"), /unknown task "mnli-mm" \(tasks: cola sst2 .* squad\)/);
  const kinds = TASK_NAMES.map((n) =>
    `${getTask(n).kind}/${getTask(n).loss}/${getTask(n).numLabels}`
  );
  assert.deepEqual(kinds, [
    "classification/cross_entropy/2",
    "classification/cross_entropy/2",
    "classification/cross_entropy/2",
    "regression/mse/1",
    "classification/cross_entropy/2",
    "classification/cross_entropy/3",
    "classification/cross_entropy/2",
    "classification/cross_entropy/2",
    "classification/cross_entropy/2",
    "span/span_cross_entropy/2",
  ]);
  assert.deepEqual(TASK_NAMES.map((n) => getTask(n).primaryMetric), [
    "matthews",
    "accuracy",
    "accuracy",
    "pearson",
    "accuracy",
    "accuracy",
    "accuracy",
    "accuracy",
    "accuracy",
    "f1",
  ]);
  assert.deepEqual(getTask("mnli").devSplits, ["dev_matched", "dev_mismatched"]);
  assert.equal(getTask("mrpc").fileFor("dev"), "MRPC/dev.tsv");
  assert.throws(() => getTask("rte").fileFor("dev_matched"), /rte has no split "dev_matched"/);
  assert.ok(!isGlueTask(getTask("squad")) && isGlueTask(getTask("cola")));
  assert.deepEqual(glue("mrpc").metrics([1, 0, 1, 1], [1, 0, 0, 1]), { accuracy: 0.75, f1: 0.8 });
  assert.deepEqual(Object.keys(glue("stsb").metrics([1, 2, 3], [1, 3, 2])), [
    "pearson",
    "spearman",
  ]);
});

Deno.test("readers on generated fixtures of every format", async () => {
  const dir = await writeFixtures();
  try {
    const cola = await glue("cola").readSplit(dir, "dev");
    assert.deepEqual(cola.map((e) => [e.idx, e.line, e.label]), [[0, 1, 1], [1, 2, 0]]);
    assert.equal(cola[1].textA, "The more he reads, the more books.");
    assert.equal(cola[0].textB, undefined);
    const colaTest = await glue("cola").readSplit(dir, "test");
    assert.deepEqual(colaTest, [{ idx: 0, line: 2, textA: "Bill whistled past the house." }]);

    const sst = await glue("sst2").readSplit(dir, "dev");
    assert.equal(sst[0].textA, 'it \'s a "charming" journey . ');
    assert.deepEqual(sst.map((e) => e.label), [1, 0]);
    assert.equal((await glue("sst2").readSplit(dir, "test"))[0].label, undefined);

    const mrpc = await glue("mrpc").readSplit(dir, "dev");
    assert.deepEqual(mrpc[0], {
      idx: 0,
      line: 2,
      textA: 'He said "no.',
      textB: "She said no.",
      label: 1,
    });
    assert.deepEqual((await glue("mrpc").readSplit(dir, "test"))[0].textB, "D");

    const stsb = await glue("stsb").readSplit(dir, "dev");
    assert.deepEqual(stsb.map((e) => [e.textA, e.textB, e.label]), [
      ["A man dances.", "A man is dancing.", 5],
      ["X", "Y", 0.25],
    ]);
    assert.equal((await glue("stsb").readSplit(dir, "test"))[0].textB, "A girl is singing.");

    const q = await glue("qqp").readFile(`${dir}/QQP/dev.tsv`);
    assert.equal(q.skipped, 2);
    assert.deepEqual(q.examples.map((e) => [e.idx, e.line, e.textA, e.label]), [
      [0, 2, "How do I learn?", 0],
      [1, 5, "What?", 1],
    ]);
    assert.equal((await glue("qqp").readSplit(dir, "test"))[0].textB, "B?");

    const m = await glue("mnli").readSplit(dir, "dev_matched");
    assert.deepEqual(m.map((e) => [e.textA, e.textB, e.label]), [
      ["The new rights are nice.", "Everyone loves them.", 2],
      ["This site includes a list.", "The site has no list.", 0],
    ]);
    assert.equal((await glue("mnli").readSplit(dir, "dev_mismatched"))[0].label, 1);
    assert.equal((await glue("mnli").readSplit(dir, "train"))[0].label, 2);
    assert.equal((await glue("mnli").readSplit(dir, "test_matched"))[0].label, undefined);

    assert.deepEqual((await glue("qnli").readSplit(dir, "dev")).map((e) => e.label), [0, 1]);
    assert.deepEqual((await glue("rte").readSplit(dir, "dev"))[0].label, 1);
    assert.deepEqual((await glue("rte").readSplit(dir, "test"))[0].textA, "A.");
    assert.deepEqual((await glue("wnli").readSplit(dir, "dev"))[0].label, 1);
    await assert.rejects(glue("qnli").readSplit(dir, "train"), /QNLI\/train.tsv not found/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bad GLUE inputs: wrong column count, label outside the space, wrong file", () => {
  const rte = glue("rte");
  assert.throws(
    () =>
      rte.parse("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\tb\n", "x/dev.tsv"),
    /^Error: x\/dev.tsv:3: expected 4 tab-separated columns, got 3$/,
  );
  assert.throws(
    () => rte.parse("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tneutral\n", "x/dev.tsv"),
    /x\/dev.tsv:2: label "neutral" is not one of rte's labels \(entailment, not_entailment\)/,
  );
  assert.throws(
    () => glue("stsb").parse(FIXTURES["STS-B/dev.tsv"].replace("0.250", "high"), "s.tsv"),
    /s.tsv:3: score "high" is not a number/,
  );
  assert.throws(
    () => glue("qnli").parse(FIXTURES["RTE/dev.tsv"], "QNLI/dev.tsv"),
    /QNLI\/dev.tsv:1: no column "question" in the header/,
  );
  assert.throws(() => glue("cola").parse("gj04\t1\tThe end.\n", "c.tsv"), /c.tsv:1: expected 4/);
  assert.throws(() => glue("sst2").parse("", "e.tsv"), /e.tsv: empty file/);
  assert.equal(glue("rte").parsePrediction("entailment", "p:1"), 0);
  assert.equal(glue("stsb").parsePrediction(" 3.5 ", "p:1"), 3.5);
  assert.throws(
    () => glue("sst2").parsePrediction("positive", "p.txt:4"),
    /p.txt:4: prediction "positive"/,
  );
  assert.throws(() => glue("stsb").parsePrediction("", "p.txt:2"), /p.txt:2: .* not a number/);
  assert.equal(glue("qnli").formatPrediction(1), "not_entailment");
});

/** [file, split, rows, label counts (or the score sum for STS-B)] from PROVENANCE.md / awk. */
const REAL: [string, string, number, number[]][] = [
  ["sst2", "dev", 872, [428, 444]],
  ["sst2", "train", 67349, [29780, 37569]],
  ["cola", "dev", 1043, [322, 721]],
  ["cola", "train", 8551, [2528, 6023]],
  ["mrpc", "dev", 408, [129, 279]],
  ["mrpc", "train", 3668, [1194, 2474]],
  ["rte", "dev", 277, [146, 131]],
  ["rte", "train", 2490, [1249, 1241]],
  ["wnli", "dev", 71, [40, 31]],
  ["wnli", "train", 635, [323, 312]],
  ["qnli", "dev", 5463, [2702, 2761]],
  ["stsb", "dev", 1500, [3545.8613]],
  ["stsb", "train", 5749, []],
];

Deno.test({
  name: "readers on every real file in ../shared/data/glue: row and label counts",
  ignore: !hasGlue,
  async fn() {
    for (const [name, split, rows, counts] of REAL) {
      const t = glue(name);
      const read = await t.readFile(`${GLUE}${t.fileFor(split)}`);
      assert.equal(read.examples.length, rows, `${name} ${split}`);
      assert.equal(read.skipped, 0);
      if (t.kind === "regression") {
        for (const e of read.examples) {
          assert.ok((e.label as number) >= 0 && (e.label as number) <= 5);
        }
        if (counts.length) {
          const sum = read.examples.reduce((s, e) => s + (e.label as number), 0);
          assert.ok(Math.abs(sum - counts[0]) < 1e-3, `${sum}`);
        }
      } else {
        const c = t.labels.map((_, i) => read.examples.filter((e) => e.label === i).length);
        assert.deepEqual(c, counts, `${name} ${split}`);
      }
      assert.ok(read.examples.every((e) => e.textA.length > 0));
      if (name !== "sst2" && name !== "cola") assert.ok(read.examples.every((e) => e.textB));
    }
    const mrpc = await glue("mrpc").readSplit(GLUE, "dev");
    assert.equal(
      mrpc[0].textB,
      '"The foodservice pie business does not fit our long-term growth strategy.',
    );
    const cola = await glue("cola").readSplit(GLUE, "dev");
    assert.equal(cola.at(-1)!.line, 1043); // no final newline
  },
});

Deno.test("STS-B scores are decimal numbers in [0, 5]; 0x10, 1e400, Infinity, -0.5, 5.5 are InputErrors at file:line", () => {
  const stsb = glue("stsb");
  assert.deepEqual(stsb.scoreRange, [0, 5]);
  const file = (score: string) => FIXTURES["STS-B/dev.tsv"].replace("0.250", score);
  for (const ok of ["0", "5", "5.000", "0.25", "3.8", "2.5e0"]) {
    assert.equal(stsb.parse(file(ok), "s.tsv").examples[1].label, Number(ok), ok);
  }
  for (
    const [bad, why] of [
      ["0x10", /s.tsv:3: score "0x10" is not a number/],
      ["1e400", /s.tsv:3: score "1e400" is not a number/],
      ["Infinity", /s.tsv:3: score "Infinity" is not a number/],
      ["NaN", /s.tsv:3: score "NaN" is not a number/],
      ["-0.5", /s.tsv:3: score -0.5 is outside \[0, 5\]/],
      ["5.5", /s.tsv:3: score 5.5 is outside \[0, 5\]/],
    ] as const
  ) {
    assert.throws(() => stsb.parse(file(bad), "s.tsv"), (e: Error) => {
      assert.ok(e instanceof InputError, `${bad}: ${e}`);
      assert.match(e.message, why);
      return true;
    });
  }
  // Predictions are model outputs: any decimal (outside [0, 5] too), never hex or Infinity.
  assert.equal(stsb.parsePrediction("5.25", "p:1"), 5.25);
  assert.equal(stsb.parsePrediction("-1e-7", "p:1"), -1e-7);
  assert.throws(() => stsb.parsePrediction("0x10", "p.txt:3"), /p.txt:3: prediction "0x10" is not/);
});

Deno.test("a GLUE TSV that is not UTF-8 is an InputError naming file:line, not U+FFFD", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/dev.tsv`;
    const text = new TextEncoder().encode("sentence\tlabel\ngood\t1\ncaf\u00e9 bad\t0\n");
    // "café" in Latin-1: 0xE9 where UTF-8 has 0xC3 0xA9.
    const at = text.indexOf(0xC3);
    const latin1 = new Uint8Array([...text.subarray(0, at), 0xE9, ...text.subarray(at + 2)]);
    await Deno.writeFile(path, latin1);
    await assert.rejects(glue("sst2").readFile(path), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.equal(
        e.message,
        `${path}:3: not UTF-8 (byte 0xE9 at column 4); save the file as UTF-8`,
      );
      return true;
    });
    await Deno.writeFile(path, text);
    assert.equal((await glue("sst2").readFile(path)).examples[1].textA, "caf\u00e9 bad");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("split and task names are looked up as data: constructor or toString name none", () => {
  for (const name of ["constructor", "toString", "__proto__"]) {
    assert.throws(() => glue("rte").fileFor(name), (e: Error) => e instanceof InputError);
    assert.throws(() => getTask("squad").fileFor(name), (e: Error) => e instanceof InputError);
    assert.throws(() => getTask(name), /unknown task/);
  }
});
