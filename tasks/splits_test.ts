// Dev splits (tasks/splits.ts): which splits --dev-split accepts, how several splits' metrics
// become report columns (MNLI-m / MNLI-mm), MRPC's msr_test split (the labelled MSR paraphrase
// test file the seed evaluated MSR on) read from a generated file and from ../shared, and the
// generated MNLI files. In process, no GPU.
import assert from "node:assert/strict";
import { getTask } from "./mod.ts";
import type { GlueTask } from "./types.ts";
import {
  checkDevSplits,
  devLabel,
  devMetricKeys,
  evalSplits,
  mergeDevMetrics,
  pickDevSplits,
} from "./splits.ts";
import { InputError } from "../data/errors.ts";
import { writeSyntheticMnli } from "../data/synthetic.ts";

const glue = (name: string) => getTask(name) as GlueTask;
const SHARED = new URL("../../shared", import.meta.url).pathname;
const shared = await Deno.stat(SHARED).then(() => SHARED, () => null);

Deno.test("dev splits: the labelled splits --dev-split accepts, refusals naming the choices", () => {
  assert.deepEqual(evalSplits(getTask("mnli")), ["dev_matched", "dev_mismatched"]);
  assert.deepEqual(evalSplits(getTask("mrpc")), ["dev", "msr_test"]);
  assert.deepEqual(evalSplits(getTask("squad")), ["dev"]);
  // MRPC evaluates GLUE's dev by default; msr_test only when asked for.
  assert.deepEqual(getTask("mrpc").devSplits, ["dev"]);
  assert.equal(getTask("mrpc").fileFor("msr_test"), "MRPC/msr_paraphrase_test.txt");
  assert.deepEqual(checkDevSplits(getTask("mrpc"), ["msr_test", "dev"]), ["msr_test", "dev"]);
  const refused = (task: string, splits: string[], re: RegExp) =>
    assert.throws(
      () => checkDevSplits(getTask(task), splits),
      (e) => e instanceof InputError && re.test(e.message),
    );
  refused(
    "mnli",
    ["dev"],
    /--dev-split dev: mnli has no labelled split "dev" \(choose from dev_matched, dev_mismatched\)/,
  );
  refused("mnli", ["test_matched"], /no labelled split "test_matched"/); // no labels
  refused("sst2", ["train"], /no labelled split "train"/);
  refused("mnli", ["dev_matched", "dev_matched"], /dev_matched is given twice/);
  refused("mnli", [], /no split given/);
  refused("mnli", ["constructor"], /no labelled split "constructor"/);
});

Deno.test("several dev splits' metrics become report columns; one split's stay as they are", () => {
  const mnli = getTask("mnli"), mrpc = getTask("mrpc");
  assert.equal(devLabel(mnli, "dev_matched"), "MNLI-m");
  assert.equal(devLabel(mnli, "toString"), "toString");
  const m = { accuracy: 0.8125 }, mm = { accuracy: 0.6875 };
  assert.deepEqual(
    mergeDevMetrics(mnli, [["dev_matched", m], ["dev_mismatched", mm]]),
    { "MNLI-m": 0.8125, "MNLI-mm": 0.6875 },
  );
  assert.deepEqual(devMetricKeys(mnli, ["dev_matched", "dev_mismatched"]), ["MNLI-m", "MNLI-mm"]);
  assert.deepEqual(mergeDevMetrics(mnli, [["dev_mismatched", mm]]), mm);
  assert.deepEqual(devMetricKeys(mnli, ["dev_mismatched"]), ["accuracy"]);
  // A task of two metrics keeps both, per split.
  const both = mergeDevMetrics(mrpc, [["dev", { accuracy: 0.5, f1: 0.25 }], [
    "msr_test",
    { accuracy: 0.75, f1: 0.5 },
  ]]);
  assert.deepEqual(both, {
    "MRPC dev accuracy": 0.5,
    "MRPC dev f1": 0.25,
    "MSRP test accuracy": 0.75,
    "MSRP test f1": 0.5,
  });
  assert.deepEqual(devMetricKeys(mrpc, ["dev", "msr_test"]), Object.keys(both));
});

Deno.test("mrpc msr_test: the MSR paraphrase test file is read as a labelled split", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/MRPC`);
    // The MSR file's own layout: byte-order mark, CRLF, quotes as text.
    await Deno.writeTextFile(
      `${dir}/MRPC/msr_paraphrase_test.txt`,
      '\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1089874\t1089925\tHe said "so.\tSo.\r\n' +
        "0\t3019446\t3019327\tA b.\tC d.\r\n",
    );
    const ex = await glue("mrpc").readSplit(dir, "msr_test");
    assert.deepEqual(ex.map((e) => [e.label, e.textA, e.textB]), [
      [1, 'He said "so.', "So."],
      [0, "A b.", "C d."],
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "mrpc msr_test on ../shared: 1,725 labelled pairs, 1,147 paraphrases (the seed's MSR dev); MSR train 4,076",
  ignore: !shared,
  async fn() {
    const read = await glue("mrpc").readFile(
      `${shared}/data/glue/${glue("mrpc").fileFor("msr_test")}`,
    );
    assert.equal(read.examples.length, 1725);
    assert.equal(read.skipped, 0);
    const counts = [0, 1].map((c) => read.examples.filter((e) => e.label === c).length);
    assert.deepEqual(counts, [578, 1147]);
    assert.ok(read.examples.every((e) => e.textA.length > 0 && e.textB!.length > 0));
    // The seed trained on the whole MSR training file (GLUE's train and dev): 4,076 pairs.
    const train = await glue("mrpc").readFile(`${shared}/data/glue/MRPC/msr_paraphrase_train.txt`);
    assert.deepEqual(
      [0, 1].map((c) => train.examples.filter((e) => e.label === c).length),
      [1323, 2753],
    );
    // Not GLUE's dev: none of its 408 pairs are in the test file.
    const dev = await glue("mrpc").readSplit(`${shared}/data/glue`, "dev");
    const pairs = new Set(read.examples.map((e) => `${e.textA}\t${e.textB}`));
    assert.equal(dev.filter((e) => pairs.has(`${e.textA}\t${e.textB}`)).length, 0);
  },
});

Deno.test("writeSyntheticMnli: MNLI's columns, both dev files, labels in turn, splits that differ", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticMnli(dir, { train: 9, dev: 6, seed: 1 });
    const mnli = glue("mnli");
    const train = await mnli.readSplit(dir, "train");
    const m = await mnli.readSplit(dir, "dev_matched");
    const mm = await mnli.readSplit(dir, "dev_mismatched");
    assert.deepEqual([train.length, m.length, mm.length], [9, 6, 6]);
    assert.deepEqual(m.map((e) => e.label), [0, 1, 2, 0, 1, 2]); // contradiction, entailment, ...
    const header = (await Deno.readTextFile(`${dir}/MNLI/dev_mismatched.tsv`)).split("\n")[0];
    assert.equal(header.split("\t").length, 16);
    assert.notDeepEqual(m.map((e) => e.textA), mm.map((e) => e.textA));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dev splits a run evaluates: one named outright, then asked, then the seed's, then the task's", () => {
  const mrpc = getTask("mrpc");
  assert.deepEqual(pickDevSplits(mrpc, { only: "dev", asked: ["msr_test"] }), ["dev"]);
  assert.deepEqual(pickDevSplits(mrpc, { asked: ["msr_test", "dev"], seed: ["dev"] }), [
    "msr_test",
    "dev",
  ]);
  assert.deepEqual(pickDevSplits(mrpc, { seed: ["msr_test"] }), ["msr_test"]);
  assert.deepEqual(pickDevSplits(mrpc, {}), ["dev"]);
  assert.throws(() => pickDevSplits(mrpc, { asked: ["train"] }), /no labelled split "train"/);
});
