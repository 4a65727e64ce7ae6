// The flag table (scripts/_flags.ts): typed values, a flag the mode would ignore refused with
// the modes that use it, the seed's --dataset values, bad values and missing flags named, help
// texts showing the defaults the code uses, and the README's flag section being the generated
// one. In process, no GPU.
import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import { usage } from "./_flag_docs.ts";
import { defaultFor, parseCommand } from "./_flag_parse.ts";
import { UsageError } from "./_flags.ts";
import { parseShard } from "../data/shard.ts";
import { withFlagSection } from "./docs.ts";
import { SEED_PRESETS, seedSettings } from "../train/presets.ts";

Deno.test("glue: --model picks the mode; values are typed", () => {
  const bert = parseCommand("glue", [
    "--task",
    "sst2",
    "--data-dir",
    "d",
    "--batch-size",
    "8",
    "--save-at",
    "0.3,1",
    "--lr",
    "3e-5",
  ]);
  deepStrictEqual(bert.mode, "glue:bert");
  deepStrictEqual(bert.values, {
    task: "sst2",
    "data-dir": "d",
    "batch-size": 8,
    "save-at": [0.3, 1],
    lr: 3e-5,
  });
  const head = parseCommand("glue", ["--task", "cola", "--model", "lp", "--h5", "t.h5", "--skip"]);
  deepStrictEqual(head.mode, "glue:head");
  deepStrictEqual(head.values, { task: "cola", model: "lp", h5: "t.h5", skip: true });
});

Deno.test("a flag the mode would ignore is an error naming who uses it", () => {
  const refused = (cmd: string, args: string[], re: RegExp) =>
    throws(() => parseCommand(cmd, args), (e) => e instanceof UsageError && re.test(e.message));
  refused(
    "glue",
    ["--task", "sst2", "--data-dir", "d", "--h5", "x.h5"],
    /--h5 is not used by glue\/squad --model bert .*; it is for glue\/squad --model ap\|lp\|avg/,
  );
  for (const f of ["--train-fraction 0.5", "--adapter-dim 4", "--layout cls", "--no-shared"]) {
    refused("glue", ["--task", "sst2", "--data-dir", "d", ...f.split(" ")], /is not used by/);
  }
  for (const f of ["--doc-stride 64", "--save-at 1", "--limit 5", "--max-seq-length 64"]) {
    refused("glue", ["--task", "sst2", "--model", "ap", "--h5", "x", ...f.split(" ")], /not used/);
  }
  refused("evaluate", ["--task", "squad", "--doc-stride", "64"], /--doc-stride/);
  // The seed's --num-workers (its DataLoader workers) on a head's command: accepted; glue says
  // it is unused there.
  deepStrictEqual(
    parseCommand("glue", ["--dataset", "SSTH5", "--h5", "x", "--num-workers", "0"]).values[
      "num-workers"
    ],
    0,
  );
  refused("capture", ["--ap-lr", "1"], /--ap-lr/); // not a capture flag at all
  refused("reproduce", ["--task", "sst2", "--data-dir", "d", "--h5", "x"], /--h5/);
});

Deno.test("SQuAD: --doc-stride where windows are made; --dev-file and --bert rescore stored heads", () => {
  const p = (cmd: string, args: string[]) => parseCommand(cmd, args);
  for (
    const [cmd, args] of [["squad", ["--data-dir", "d"]], ["reproduce", [
      "--task",
      "squad",
      "--data-dir",
      "d",
    ]], ["capture", [
      "--model",
      "m",
      "--task",
      "squad",
      "--split",
      "dev",
      "--data-dir",
      "d",
      "--out",
      "o.h5",
    ]], ["squad", [
      "--model",
      "ap",
      "--activations",
      "stream",
      "--bert",
      "m",
      "--data-dir",
      "d",
    ]]] as const
  ) {
    deepStrictEqual(p(cmd, [...args, "--doc-stride", "64"]).values["doc-stride"], 64);
  }
  throws(
    () => p("squad", ["--data-dir", "d", "--doc-stride", "1.5"]),
    /--doc-stride must be an integer ≥ 0/,
  );
  const head = p("squad", [
    "--model",
    "ap",
    "--h5",
    "t.h5",
    "--dev-h5",
    "d.h5",
    "--dev-file",
    "d.json",
    "--bert",
    "m",
  ]);
  deepStrictEqual(head.mode, "glue:head");
  deepStrictEqual([head.values["dev-file"], head.values.bert], ["d.json", "m"]);
  deepStrictEqual(defaultFor("doc-stride", "capture"), 128);
  match(
    usage("squad"),
    /--doc-stride N +SQuAD: tokens of overlap between consecutive windows.*\[128\]/,
  );
});

Deno.test("the seed's --dataset values: names map to tasks, H5 selects head training", () => {
  const p = (cmd: string, args: string[]) => parseCommand(cmd, args);
  deepStrictEqual(p("glue", ["--dataset", "SSTH5", "--h5", "t.h5"]).mode, "glue:head");
  deepStrictEqual(p("glue", ["--dataset", "SSTH5", "--h5", "t.h5"]).values.task, "sst2");
  deepStrictEqual(p("glue", ["--dataset", "MSR", "--data-dir", "d"]).values.task, "mrpc");
  deepStrictEqual(p("glue", ["--dataset", "QQPairs", "--data-dir", "d"]).values.task, "qqp");
  deepStrictEqual(p("squad", ["--dataset", "SQuADH5", "--h5", "t.h5"]).values, {
    task: "squad",
    model: "ap",
    h5: "t.h5",
  });
  deepStrictEqual(p("reproduce", ["--dataset", "COLA", "--data-dir", "d"]).values.task, "cola");
  throws(() => p("glue", ["--dataset", "SSTH5", "--model", "bert"]), /selects head training/);
  throws(() => p("glue", ["--dataset", "IMDB"]), /not one of the seed's datasets/);
  throws(() => p("reproduce", ["--dataset", "SSTH5", "--data-dir", "d"]), /use --dataset SST/);
  throws(() => p("glue", ["--dataset", "SST", "--task", "sst2"]), /--task or --dataset/);
  throws(() => p("squad", ["--dataset", "SST", "--data-dir", "d"]), /use deno task glue/);
});

Deno.test("bad values and missing flags are named", () => {
  throws(
    () => parseCommand("glue", ["--task", "sst2", "--batch-size", "0"]),
    /--batch-size must be an integer ≥ 1, got "0"/,
  );
  throws(
    () => parseCommand("glue", ["--task", "sst2", "--lr", "fast"]),
    /--lr must be a number ≥ 0/,
  );
  throws(() => parseCommand("glue", ["--model", "gpt"]), /--model must be bert, ap, lp or avg/);
  throws(() => parseCommand("glue", ["--task", "sst2"]), /missing --data-dir/);
  throws(() => parseCommand("glue", ["--task", "sst2", "--model", "ap"]), /missing --h5/);
  throws(
    () => parseCommand("capture", ["--task", "sst2"]),
    /missing --model, --split, --out, --data-dir/,
  );
  throws(() => parseCommand("glue", ["--bogus"]), /Unknown option '--bogus'/);
});

Deno.test("help texts show the defaults the code uses", () => {
  const glue = usage("glue");
  match(glue, /--adapter-dim D +adapter size .*\[the store's token count \/ --max-seq-length\]/);
  match(glue, /--lr LR .*\[the task's preset\]/);
  match(glue, /--patience N .*\[3\]/);
  match(glue, /glue\/squad --model ap\|lp\|avg .*:\n( {2}.*\n)* {2}--h5 FILE/);
  ok(!usage("squad").includes("--task"), "squad fixes the task");
  ok(!glue.includes("stop-after-batches"), "test hooks are hidden");
  // The training commands' defaults are the task's preset (the seed's command, train/presets.ts):
  // what every preset shares is shown as a number, and is every preset's value.
  for (const task of Object.keys(SEED_PRESETS)) {
    for (const [stage, mode] of [["bert", "glue:bert"], ["ap", "glue:head"]] as const) {
      const s = seedSettings(task, stage);
      for (const mode2 of [mode, "reproduce"] as const) {
        deepStrictEqual(defaultFor("batch-size", mode2), s.batchSize, `${task} ${mode2}`);
        deepStrictEqual(defaultFor("epochs", mode2), s.epochs, `${task} ${mode2}`);
        deepStrictEqual(defaultFor("seed", mode2), s.seed, `${task} ${mode2}`);
        deepStrictEqual(defaultFor("warmup-proportion", mode2), s.warmupProportion, task);
        deepStrictEqual(defaultFor("patience", mode2), s.patience, `${task} ${mode2}`);
      }
    }
    deepStrictEqual(defaultFor("ap-epochs", "reproduce"), seedSettings(task, "ap").epochs);
  }
  deepStrictEqual(defaultFor("lr", "glue:bert"), "the task's preset");
  deepStrictEqual(defaultFor("ap-l2", "reproduce"), "the task's preset");
  deepStrictEqual(
    parseCommand("reproduce", [
      "--task",
      "rte",
      "--data-dir",
      "d",
      "--patience",
      "0",
      "--ap-l2",
      "0.5",
    ]).values,
    {
      task: "rte",
      "data-dir": "d",
      patience: 0,
      "ap-l2": 0.5,
    },
  );
  throws(
    () => parseCommand("glue", ["--task", "rte", "--patience", "1.5"]),
    /--patience must be an integer ≥ 0/,
  );
  deepStrictEqual(defaultFor("batch-size", "capture"), 16);
});

Deno.test("README's flag section is the one generated from the table (deno task docs)", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const want = await withFlagSection(readme);
  deepStrictEqual(readme, want, "README.md is out of date: run deno task docs");
});

Deno.test("report: one positional RESULTS_DIR besides its flags; other commands take none", () => {
  deepStrictEqual(parseCommand("report", ["results", "--out", "site"]), {
    mode: "report",
    values: { out: "site" },
    positional: "results",
  });
  deepStrictEqual(parseCommand("report", ["--out=site", "r"]).positional, "r");
  throws(() => parseCommand("report", ["--out", "site"]), /missing RESULTS_DIR/);
  throws(() => parseCommand("report", ["a", "b"]), /give one RESULTS_DIR, got 2: a b/);
  throws(() => parseCommand("report", ["r", "--task", "sst2"]), /Unknown option '--task'/);
  throws(() => parseCommand("evaluate", ["--task", "sst2", "stray"]), UsageError);
  match(usage("report"), /^usage: deno task report RESULTS_DIR \[flags\]\n {2}RESULTS_DIR /);
});

Deno.test("a flag of one value given twice is refused naming it; --logits A B and --dev-h5 A B keep their meaning", () => {
  const twice = /^--batch-size is given 2 times \("4", "8"\); it takes one value: give it once$/;
  throws(
    () => parseCommand("capture", ["--task", "sst2", "--batch-size", "4", "--batch-size=8"]),
    (e) => e instanceof UsageError && twice.test(e.message),
  );
  throws(
    () => parseCommand("glue", ["--task", "sst2", "--data-dir", "d", "--lr", "1", "--lr", "2"]),
    /--lr is given 2 times/,
  );
  deepStrictEqual(
    parseCommand("ensemble", ["--task", "sst2", "--data", "d", "--logits", "A", "B"]).values
      .logits,
    ["A", "B"],
  );
  deepStrictEqual(
    parseCommand("ensemble", ["--task", "sst2", "--data", "d", "--logits", "A", "--logits", "B"])
      .values.logits,
    ["A", "B"],
  );
  const heads = parseCommand(
    "glue",
    ["--task", "sst2", "--model", "ap", "--h5", "t.h5"].concat(
      ["--dev-h5", "a.h5", "b.h5"],
    ),
  );
  deepStrictEqual(heads.values["dev-h5"], ["a.h5", "b.h5"]);
});

Deno.test("a value that starts with '-' reaches the flag's own check, not the parser's 'ambiguous'", () => {
  const v = parseCommand("capture", [
    "--task",
    "sst2",
    "--split",
    "dev",
    "--model",
    "m",
    "--data-dir",
    "d",
    "--out",
    "o.h5",
    "--shard",
    "-1/3",
  ]).values;
  deepStrictEqual(v.shard, "-1/3");
  throws(
    () => parseShard(v.shard as string),
    (e: Error) => /^--shard "-1\/3": not I\/N with 0 ≤ I < N/.test(e.message),
  );
  throws(
    () => parseCommand("glue", ["--task", "sst2", "--data-dir", "d", "--epochs", "-2"]),
    (e) => e instanceof UsageError && /^--epochs must be .*, got "-2"/.test(e.message),
  );
});

Deno.test("probe --activations stream is its own mode: --bert and --data-dir, no stores", () => {
  const s = ["--task", "sst2", "--activations", "stream", "--out", "o"];
  const p = parseCommand("probe", [...s, "--bert", "b", "--data-dir", "d", "--dev-file", "x"]);
  deepStrictEqual(p.mode, "probe:stream");
  deepStrictEqual(p.values["dev-file"], "x");
  deepStrictEqual(
    parseCommand("probe", ["--task", "sst2", "--h5", "t", "--dev-h5", "d", "--out", "o"]).mode,
    "probe",
  );
  throws(
    () => parseCommand("probe", [...s, "--bert", "b", "--data-dir", "d", "--h5", "t.h5"]),
    (e) =>
      e instanceof UsageError && /--h5 is not used by probe --activations stream/.test(e.message),
  );
  throws(
    () => parseCommand("probe", s),
    (e) => e instanceof UsageError && /missing --bert, --data-dir/.test(e.message),
  );
});
