// `--precision` on reproduce and search (train/reproduce.ts, train/search/study.ts): the plan
// names the precision and why for each training stage; an f16-mixed reproduction at the demo's
// tiny model and settings (fewer rows) runs end to end on llvmpipe (the f16 operands are packed in
// u32 words, no shader-f16 needed) and records the precision in every training's settings (the
// layer probes' too); a rerun with the other precision is refused, naming it, and one without the
// flag resumes the run as it was made. A mixed search's trials carry `--precision f16-mixed` in their flags, so a
// trial not first in its pass trains again alone to the same dev logits, bit for bit; a study
// resumed with the other precision is refused (naming both precisions and the fix); a
// fine-tuning trial runs mixed too; an f32 study's flags name f32. glue's head and fine-tuning
// run rerun without the flag resume as made; the other precision is refused, naming both.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { runCli, tinyTestBert } from "./helpers.ts";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { searchStores } from "../train/search/_fixture.ts";
import { readStudy } from "../train/search/log.ts";
import { demoSettings } from "../scripts/demo.ts";
import { readSafetensors } from "../model/safetensors.ts";

const json = async (p: string) => JSON.parse(await Deno.readTextFile(p));
const noStack = (err: string) => ok(!/\n\s+at /.test(err), `no stack trace: ${err}`);

Deno.test("reproduce --precision: the plan's lines, an f16-mixed run end to end, a resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "precision_reproduce_" });
  const demo = demoSettings(undefined);
  await makeTinyBert({ out: `${dir}/bert`, ...demo.model });
  // The demo's data generator, with fewer rows (the demo's 512/200 would take minutes here).
  await writeSyntheticSst2(`${dir}/glue`, { ...demo.data, train: 64, dev: 32 });
  const r = demo.run;
  const args = (out: string, more: string[] = []) => [
    ...["--task", "sst2", "--model", `${dir}/bert`, "--data-dir", `${dir}/glue`],
    ...["--epochs", String(r.epochs), "--capture-at", String(r.captureAt)],
    ...["--batch-size", String(r.batchSize), "--lr", String(r.lr)],
    ...["--max-seq-length", String(r.maxSeqLength), "--seed", String(r.seed)],
    ...["--adapter-dim", String(r.adapterDim), "--ap-epochs", "2", "--ap-lr", String(r.apLr)],
    ...["--activations", "store", "--out", `${dir}/${out}`, "--quiet", ...more],
  ];
  // The plans: the preset on this software adapter, and f16-mixed given, for BERT and the head.
  const [preset, given] = await Promise.all([
    runCli("reproduce.ts", args("plan", ["--dry-run"])),
    runCli("reproduce.ts", args("plan", ["--dry-run", "--precision", "f16-mixed"])),
  ]);
  equal(preset.code, 0, preset.err);
  equal(given.code, 0, given.err);
  match(
    preset.out,
    /fine-tune sst2[^]*precision f32 \(preset: .*\)[^]*train BERTVision head[^]*precision f32 \(preset: /,
  );
  match(
    given.out,
    /fine-tune sst2[^]*precision f16-mixed \(given[^]*train BERTVision head[^]*precision f16-mixed \(given.*\): the head's matmuls in f16/,
  );

  const mixed = await runCli("reproduce.ts", args("rep", ["--precision", "f16-mixed", "--probe"]));
  equal(mixed.code, 0, mixed.err);
  const run = `${dir}/rep/sst2`;
  const results = await json(`${run}/results.json`);
  deepStrictEqual(results.settings.precision, "f16-mixed");
  for (const row of results.rows) {
    ok(Number.isFinite(row.metrics.accuracy), `${row.model}: ${JSON.stringify(row.metrics)}`);
  }
  // Every training ran mixed: fine-tuning's settings and scaler state, the head's settings.
  deepStrictEqual((await json(`${run}/bert/trainer_state.json`)).settings.precision, "f16-mixed");
  const opt = await readSafetensors(`${run}/bert/checkpoint-${r.epochs}/optimizer.safetensors`);
  ok(opt.metadata?.lossScale !== undefined, JSON.stringify(opt.metadata));
  deepStrictEqual((await json(`${run}/ap/results.json`)).settings.precision, "f16-mixed");
  // The layer probes (--probe) too.
  deepStrictEqual(
    (await json(`${run}/probe/layer-0/results.json`)).settings.precision,
    "f16-mixed",
  );

  // The other precision is refused, naming it; no flag resumes the run as it was made (every
  // stage found finished).
  const other = await runCli("reproduce.ts", args("rep", ["--precision", "f32", "--probe"]));
  equal(other.code, 1, other.err);
  match(other.err, /other settings \(precision: "f16-mixed" → "f32"\)/);
  match(other.err, /leave --precision out to resume it as made, or /);
  noStack(other.err);
  const again = await runCli("reproduce.ts", args("rep", ["--probe"]));
  equal(again.code, 0, again.err);
  deepStrictEqual((await json(`${run}/results.json`)).rows, results.rows);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("search --precision f16-mixed: trials carry it; one trains again alone, bitwise", async () => {
  const dir = await Deno.makeTempDir({ prefix: "precision_search_" });
  const { train, dev } = await searchStores(dir);
  const out = `${dir}/study`;
  const stores = ["--task", "sst2", "--h5", train, "--dev-h5", dev, "--quiet"];
  const study = (more: string[]) =>
    runCli("search.ts", [
      ...stores,
      ...["--out", out, "--trials", "2", "--trials-per-pass", "2", "--rungs", "1", ...more],
    ]);
  const r = await study(["--precision", "f16-mixed"]);
  equal(r.code, 0, r.err);
  const [first, second] = (await readStudy(out)).trials;
  deepStrictEqual(second.pass, first.id, "both trials trained from one pass");
  const results = await json(`${out}/${second.dir}/results.json`);
  deepStrictEqual(results.settings.precision, "f16-mixed");
  const best = await json(`${out}/best.json`);
  ok(best.flags.endsWith(" --precision f16-mixed"), best.flags);
  // The second trial's flags (as best.json writes them), alone: the same dev logits, bit for bit.
  const flags = `--adapter-dim ${second.params["adapter-dim"]} --lr ${second.params.lr} ` +
    `--seed ${second.params.seed} --data-seed ${second.dataSeed} --precision f16-mixed`;
  const g = await runCli("glue.ts", [
    ...stores,
    ...["--model", "ap", "--out", `${dir}/again`, ...flags.split(" ")],
  ]);
  equal(g.code, 0, g.err);
  deepStrictEqual(
    await Deno.readFile(`${dir}/again/dev_logits.npy`),
    await Deno.readFile(`${out}/${second.dir}/dev_logits.npy`),
  );
  // The other precision is refused, naming it; no flag resumes the study as it was made.
  const other = await study(["--precision", "f32"]);
  equal(other.code, 1, other.err);
  match(other.err, /other settings \(precision: "f16-mixed" → "f32"\)/);
  match(other.err, /leave --precision out to resume it as made, or use another --out/);
  noStack(other.err);
  const again = await study([]);
  equal(again.code, 0, again.err);
  ok((await json(`${out}/best.json`)).flags.endsWith(" --precision f16-mixed"));
  // An f32 study (the preset on this software adapter) names f32 in its flags too: left out,
  // they would train f16-mixed on a GPU with shader-f16.
  const f32 = await runCli("search.ts", [
    ...stores,
    ...["--out", `${dir}/f32-study`, "--trials", "1", "--rungs", "1"],
  ]);
  equal(f32.code, 0, f32.err);
  const f32Best = await json(`${dir}/f32-study/best.json`);
  ok(f32Best.flags.endsWith(" --precision f32"), f32Best.flags);

  // A fine-tuning trial runs mixed too (its run's settings), and its flags say so.
  const bert = await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(`${dir}/glue`, { train: 16, dev: 8, seed: 4 });
  await Deno.writeTextFile(`${dir}/space.json`, JSON.stringify({ lr: 1e-3, seed: 3 }));
  const ft = await runCli("search.ts", [
    ...["--task", "sst2", "--data-dir", `${dir}/glue`, "--max-seq-length", "16"],
    ...["--model", "bert", "--bert", bert, "--out", `${dir}/bert-study`, "--trials", "1"],
    ...["--rungs", "1", "--batch-size", "8", "--space", `${dir}/space.json`, "--quiet"],
    ...["--precision", "f16-mixed"],
  ]);
  equal(ft.code, 0, ft.err);
  const [trial] = (await readStudy(`${dir}/bert-study`)).trials;
  const state = await json(`${dir}/bert-study/${trial.dir}/trainer_state.json`);
  deepStrictEqual(state.settings.precision, "f16-mixed");
  match((await json(`${dir}/bert-study/best.json`)).flags, / --precision f16-mixed$/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("glue --precision: a head and a fine-tuning run rerun without it resume as made; the other is refused, naming both and the fix", async () => {
  const dir = await Deno.makeTempDir({ prefix: "precision_glue_" });
  const { train, dev } = await searchStores(dir);
  const head = (more: string[]) =>
    runCli("glue.ts", [
      ...["--task", "sst2", "--h5", train, "--dev-h5", dev, "--model", "ap"],
      ...["--out", `${dir}/head`, "--quiet", ...more],
    ]);
  const made = await head(["--precision", "f16-mixed"]);
  equal(made.code, 0, made.err);
  // Left out: the head's own precision (its results.json), not the preset (f32 here).
  const again = await head([]);
  equal(again.code, 0, again.err);
  deepStrictEqual((await json(`${dir}/head/results.json`)).settings.precision, "f16-mixed");
  const other = await head(["--precision", "f32"]);
  equal(other.code, 1, other.err);
  match(other.err, /other settings \(precision: "f16-mixed" → "f32"\)/);
  match(other.err, /leave --precision out to resume it as made, or choose another --out/);
  noStack(other.err);
  // --overwrite still replaces it; the f32 head records no precision (as before the flag), and
  // f16-mixed given is refused naming "f32", not (unset).
  const replaced = await head(["--precision", "f32", "--overwrite"]);
  equal(replaced.code, 0, replaced.err);
  equal((await json(`${dir}/head/results.json`)).settings.precision, undefined);
  const mixed = await head(["--precision", "f16-mixed"]);
  equal(mixed.code, 1, mixed.err);
  match(mixed.err, /other settings \(precision: "f32" → "f16-mixed"\)/);

  // Fine-tuning (squad runs the same code): trainer_state.json's precision.
  const bert = await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(`${dir}/glue`, { train: 16, dev: 8, seed: 4 });
  const ft = (more: string[]) =>
    runCli("glue.ts", [
      ...["--task", "sst2", "--model", "bert", "--bert", bert, "--data-dir", `${dir}/glue`],
      ...["--max-seq-length", "16", "--batch-size", "8", "--out", `${dir}/ft`, "--quiet"],
      ...more,
    ]);
  const run = await ft(["--precision", "f16-mixed"]);
  equal(run.code, 0, run.err);
  const resumed = await ft([]);
  equal(resumed.code, 0, resumed.err);
  deepStrictEqual((await json(`${dir}/ft/trainer_state.json`)).settings.precision, "f16-mixed");
  const f32 = await ft(["--precision", "f32"]);
  equal(f32.code, 1, f32.err);
  match(f32.err, /other settings \(precision: "f16-mixed" → "f32"\)/);
  match(f32.err, /leave --precision out to resume it as made, or use another --out/);
  noStack(f32.err);
  await Deno.remove(dir, { recursive: true });
});
