// The flag table (scripts/_flags.ts): typed values, a flag the mode would ignore refused with
// the modes that use it, the seed's --dataset values, bad values and missing flags named, help
// texts showing the defaults the code uses, and the README's flag section being the generated
// one. In process, no GPU.
import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import { defaultFor, parseCommand, usage, UsageError } from "./_flags.ts";
import { withFlagSection } from "./docs.ts";
import { resolveHeadConfig } from "../model/heads.ts";
import { FINETUNE_DEFAULTS, HEAD_DEFAULTS } from "../train/defaults.ts";

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
  for (const f of ["--dev-file d.tsv", "--save-at 1", "--limit 5", "--max-seq-length 64"]) {
    refused("glue", ["--task", "sst2", "--model", "ap", "--h5", "x", ...f.split(" ")], /not used/);
  }
  refused("glue", ["--task", "sst2", "--model", "ap", "--h5", "x", "--num-workers", "2"], /num-/);
  refused("capture", ["--ap-lr", "1"], /--ap-lr/); // not a capture flag at all
  refused("reproduce", ["--task", "sst2", "--data-dir", "d", "--h5", "x"], /--h5/);
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
  match(glue, /--adapter-dim D +adapter size .*\[8\]/);
  match(glue, /--lr LR .*\[2e-5 \/ 0.001\]/);
  match(glue, /glue\/squad --model ap\|lp\|avg .*:\n( {2}.*\n)* {2}--h5 FILE/);
  ok(!usage("squad").includes("--task"), "squad fixes the task");
  ok(!glue.includes("stop-after-batches"), "test hooks are hidden");
  // The shown defaults are the library's: the head's adapter size, the optimizers' settings.
  const head = resolveHeadConfig({
    pooling: "ap",
    readout: "pooled",
    outputs: 2,
    layers: 13,
    tokens: 128,
    features: 768,
  });
  deepStrictEqual(defaultFor("adapter-dim", "glue:head"), head.adapterDim);
  deepStrictEqual(defaultFor("lr", "glue:bert"), FINETUNE_DEFAULTS.lr);
  deepStrictEqual(defaultFor("lr", "glue:head"), HEAD_DEFAULTS.lr);
  deepStrictEqual(defaultFor("batch-size", "capture"), 16);
});

Deno.test("README's flag section is the one generated from the table (deno task docs)", async () => {
  const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
  const want = await withFlagSection(readme);
  deepStrictEqual(readme, want, "README.md is out of date: run deno task docs");
});
