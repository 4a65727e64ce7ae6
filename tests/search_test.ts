// `deno task search` as a user runs it: a handful of head trials on a tiny store (the table,
// best.json, trials.svg, the log), flags the mode would ignore refused; head trials streamed
// from a tiny BERT, trained together in one pass; and fine-tuning trials of a tiny BERT stopped
// and resumed at their rungs; a trial not first in its pass trained again from its recorded flags
// to the same dev logits, bit for bit.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { searchStores } from "../train/search/_fixture.ts";
import { readStudy } from "../train/search/log.ts";
import { trialFlags } from "../train/search/study.ts";
import { parseCommand, usage } from "../scripts/_flags.ts";

Deno.test("search flags: --model and --activations pick the mode; training flags fix values", () => {
  const head = parseCommand("search", ["--task", "sst2", "--h5", "t", "--dev-h5", "d"]);
  deepStrictEqual(head.mode, "search:head");
  deepStrictEqual(head.values, { task: "sst2", h5: "t", "dev-h5": ["d"] });
  const stream = parseCommand("search", [
    "--task",
    "sst2",
    "--activations",
    "stream",
    "--bert",
    "b",
    "--data-dir",
    "g",
    "--lr",
    "1e-5",
    "--trials-per-pass",
    "2",
  ]);
  deepStrictEqual([stream.mode, stream.values.lr], ["search:stream", 1e-5]);
  const bert = parseCommand("search", ["--task", "rte", "--model", "bert", "--data-dir", "g"]);
  deepStrictEqual(bert.mode, "search:bert");
  throws(
    () =>
      parseCommand("search", ["--task", "rte", "--model", "bert", "--data-dir", "g", "--h5", "x"]),
    /--h5 is not used by search --model bert/,
  );
  throws(
    () =>
      parseCommand("search", [
        ...["--task", "rte", "--model", "bert", "--data-dir", "g"],
        "--trials-per-pass",
        "2",
      ]),
    /--trials-per-pass is not used by search --model bert/,
  );
  throws(() => parseCommand("search", ["--task", "sst2", "--h5", "t"]), /missing --dev-h5/);
  throws(
    () => parseCommand("search", ["--task", "sst2", "--h5", "t", "--dev-h5", "d", "--eta", "1"]),
    /--eta must be an integer ≥ 2/,
  );
  const help = usage("search");
  ok(/--trials N .*\[20\]/.test(help), help);
  ok(/--sampler tpe\|random .*\[tpe\]/.test(help), help);
});

Deno.test("deno task search: heads on a tiny store, a handful of trials", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_cli" });
  const { train, dev } = await searchStores(dir);
  const out = `${dir}/study`;
  const args = ["--task", "sst2", "--h5", train, "--dev-h5", dev, "--out", out, "--quiet"];
  const r = await runCli("search.ts", [...args, "--trials", "5", "--startup-trials", "3"]);
  deepStrictEqual(r.code, 0, r.err);
  ok(r.out.includes("# sst2: hyperparameter search (ap head)"), r.out);
  ok(r.out.includes("adapter-dim ∈ {8, 16, 32, 64, 128, 256}, lr ~ U(1e-6, 0.001)"), r.out);
  const s = await readStudy(out);
  deepStrictEqual(s.trials.length, 5);
  const best = JSON.parse(await Deno.readTextFile(`${out}/best.json`));
  const complete = s.trials.filter((t) => t.state === "complete");
  ok(complete.length >= 1);
  deepStrictEqual(best.score, Math.max(...complete.map((t) => t.score!)));
  ok([8, 16, 32, 64, 128, 256].includes(best.params["adapter-dim"]), JSON.stringify(best));
  ok(best.flags.startsWith(`--adapter-dim ${best.params["adapter-dim"]} --lr `), best.flags);
  await Deno.stat(`${best.dir}/head.safetensors`);
  const md = await Deno.readTextFile(`${out}/trials.md`);
  deepStrictEqual(md.split("\n").filter((l) => /^\| \d+ \|/.test(l)).length, 5);
  ok(md.includes(`**${best.trial}**`), "the best trial is marked");
  const svg = await Deno.readTextFile(`${out}/trials.svg`);
  deepStrictEqual((svg.match(/<circle class="(complete|pruned)"/g) ?? []).length, 5);
  ok(svg.includes('class="best"'), "the running best is drawn");
  // A flag of another mode, and one no search mode takes, are refused.
  const bad = await runCli("search.ts", [...args, "--model", "bert", "--data-dir", dir]);
  deepStrictEqual(bad.code, 2);
  ok(/--h5 is not used by search --model bert/.test(bad.err), bad.err);
  const patience = await runCli("search.ts", [...args, "--patience", "2"]);
  deepStrictEqual(patience.code, 2);
  ok(patience.err.includes("--patience"), patience.err);
  // An array task adds to the same study as worker shard-I (its own log); --worker with it is
  // refused.
  const shard = await runCli("search.ts", [
    ...args,
    "--trials",
    "6",
    "--startup-trials",
    "3",
    "--shard",
    "auto/2",
  ], {
    SLURM_ARRAY_TASK_ID: "1",
  });
  deepStrictEqual(shard.code, 0, shard.err);
  const merged = await readStudy(out);
  deepStrictEqual(merged.trials.length, 6);
  await Deno.stat(`${out}/trials-shard-1.jsonl`);
  const both = await runCli("search.ts", [...args, "--shard", "0/2", "--worker", "w"]);
  deepStrictEqual(both.code, 2);
  ok(both.err.includes("not both"), both.err);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a search trial not first in its pass trains again from its recorded flags, bitwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_data_seed" });
  const { train, dev } = await searchStores(dir);
  const out = `${dir}/study`;
  const stores = ["--task", "sst2", "--h5", train, "--dev-h5", dev, "--quiet"];
  const r = await runCli("search.ts", [
    ...stores,
    ...["--out", out, "--trials", "2", "--trials-per-pass", "2", "--rungs", "1"],
  ]);
  deepStrictEqual(r.code, 0, r.err);
  const [first, second] = (await readStudy(out)).trials;
  deepStrictEqual(second.pass, first.id, "both trials trained from one pass");
  // The pass's data order is the first trial's seed; the second records it apart from its own.
  deepStrictEqual(second.dataSeed, first.params.seed);
  ok(second.params.seed !== second.dataSeed, `the draws gave one seed: ${second.params.seed}`);
  const results = JSON.parse(await Deno.readTextFile(`${out}/${second.dir}/results.json`));
  deepStrictEqual([results.seed, results.dataSeed], [second.params.seed, second.dataSeed]);
  const flags = trialFlags(second.params, second.dataSeed);
  ok(flags.endsWith(` --seed ${second.params.seed} --data-seed ${second.dataSeed}`), flags);
  // `deno task glue --model ap` (the search's) with those flags, alone: the same dev logits, bit for bit; without
  // --data-seed (its own seed's data order) not.
  const retrain = async (f: string, name: string) => {
    const g = await runCli("glue.ts", [
      ...stores,
      ...["--model", "ap", "--out", `${dir}/${name}`, ...f.split(" ")],
    ]);
    deepStrictEqual(g.code, 0, g.err);
    return await Deno.readFile(`${dir}/${name}/dev_logits.npy`);
  };
  const want = await Deno.readFile(`${out}/${second.dir}/dev_logits.npy`);
  deepStrictEqual(await retrain(flags, "again"), want);
  const own = await retrain(flags.replace(/ --data-seed \d+$/, ""), "own");
  ok(own.some((b, i) => b !== want[i]), "its own seed's data order gives other logits");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task search: streamed head trials in one pass; BERT trials at their rungs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_stream" });
  const bert = await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(`${dir}/glue`, { train: 32, dev: 16, seed: 4 });
  const common = ["--task", "sst2", "--data-dir", `${dir}/glue`, "--max-seq-length", "16"];
  const stream = await runCli("search.ts", [
    ...common,
    "--activations",
    "stream",
    "--bert",
    bert,
    "--out",
    `${dir}/stream`,
    "--trials",
    "3",
    "--batch-size",
    "8",
    "--quiet",
  ]);
  deepStrictEqual(stream.code, 0, stream.err);
  const s = await readStudy(`${dir}/stream`);
  // Three trials, the stream's default four per pass: one pass.
  deepStrictEqual(s.trials.map((t) => t.pass), Array(3).fill(s.trials[0].id));
  ok(s.trials.every((t) => t.state === "complete" || t.state === "pruned"));
  // BERT trials: 2 rungs (1/3 and 1 epoch of 4 steps: a checkpoint at step 2, where the second
  // trial stops unless it is as good as the first); a complete trial keeps only its last
  // checkpoint's weights, without the optimizer state.
  const ft = await runCli("search.ts", [
    ...common,
    "--model",
    "bert",
    "--bert",
    bert,
    "--out",
    `${dir}/bert-study`,
    "--trials",
    "2",
    "--rungs",
    "2",
    "--batch-size",
    "8",
    "--space",
    await (async () => {
      const p = `${dir}/space.json`;
      await Deno.writeTextFile(p, JSON.stringify({ lr: { choice: [1e-3, 1e-6] }, seed: 3 }));
      return p;
    })(),
    "--quiet",
  ]);
  deepStrictEqual(ft.code, 0, ft.err);
  const b = await readStudy(`${dir}/bert-study`);
  deepStrictEqual(b.trials.length, 2);
  for (const t of b.trials) {
    deepStrictEqual(t.evals[0].epoch, 0.3333);
    ok(t.state === "complete" ? t.evals.length === 2 : t.evals.length === 1, JSON.stringify(t));
  }
  const done = b.trials.find((t) => t.state === "complete")!;
  const files = async (d: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(d)) names.push(e.name);
    return names;
  };
  const run = `${dir}/bert-study/${done.dir}`;
  ok((await files(`${run}/checkpoint-1`)).includes("model.safetensors"));
  ok(!(await files(`${run}/checkpoint-1`)).includes("optimizer.safetensors"));
  ok(!(await files(`${run}/checkpoint-0.3333`)).includes("model.safetensors"));
  await Deno.remove(dir, { recursive: true });
});
