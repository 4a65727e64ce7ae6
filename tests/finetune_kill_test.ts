// A fine-tuning run killed at each point of writing a checkpoint (model weights saved before the
// optimizer's, both saved, trainer state written, dev logits written, dev metrics written, the
// completion marker written) and started again ends with the same
// checkpoints, dev metrics and dev logits, byte for byte, as an uninterrupted run; a rerun with
// other dev rows evaluates the checkpoints again; other training data is refused, naming it.
// The same under --precision f16-mixed, where each checkpoint's optimizer file also carries the
// loss scaler's state: killed between the weights and the optimizer, after both, after the
// trainer state and at the second checkpoint, the resumed run's weights and optimizer files
// (moments, step, loss scale and growth tracker) equal an uninterrupted mixed run's, byte for byte.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { KILLED_EXIT_CODE } from "../data/output/kill.ts";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { readSafetensors } from "../model/safetensors.ts";

function glue(dir: string, out: string, extra: string[] = [], exitAt?: string) {
  return runCli("glue.ts", [
    ...["--task", "sst2", "--model", "bert"],
    ...["--bert", `${dir}/bert`, "--data-dir", `${dir}/glue`, "--out", `${dir}/${out}`],
    ...["--batch-size", "8", "--epochs", "2", "--save-at", "1,2", "--max-seq-length", "24"],
    ...["--lr", "1e-3", "--seed", "9", "--quiet", ...extra],
  ], exitAt ? { BERTVISION_TEST_EXIT_AT: exitAt } : {});
}

/**
 * The files a checkpoint's results are: weights, dev logits, dev metrics, completion (and with
 * `optimizer`, the optimizer's state).
 */
async function results(run: string, optimizer = false): Promise<Record<string, Uint8Array>> {
  const files: Record<string, Uint8Array> = {};
  const names = ["model.safetensors", "dev_logits.npy", "dev_metrics.json", "complete.json"];
  if (optimizer) names.push("optimizer.safetensors");
  for (const c of ["checkpoint-1", "checkpoint-2"]) {
    for (const f of names) {
      files[`${c}/${f}`] = await Deno.readFile(`${run}/${c}/${f}`);
    }
  }
  return files;
}

Deno.test("fine-tuning killed at each phase of a checkpoint resumes to the same results", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finetune_kill_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(`${dir}/glue`, { train: 24, dev: 8, seed: 2 });
  const full = await glue(dir, "full");
  equal(full.code, 0, full.err);
  const want = await results(`${dir}/full`);
  const phases = ["weights:1", "saved:1", "state:1", "logits:2", "metrics:2", "marker:1"];
  await Promise.all(phases.map(async (at) => {
    const out = `cut-${at.replace(":", "-")}`;
    const cut = await glue(dir, out, [], at);
    equal(cut.code, KILLED_EXIT_CODE, `killed at ${at}: ${cut.err}`);
    const resumed = await glue(dir, out);
    equal(resumed.code, 0, `resumed after ${at}: ${resumed.err}`);
    deepStrictEqual(JSON.parse(resumed.out).dev, JSON.parse(full.out).dev, at);
    const got = await results(`${dir}/${out}`);
    for (const [f, bytes] of Object.entries(want)) deepStrictEqual(got[f], bytes, `${at}: ${f}`);
  }));

  // Other dev rows: the finished run's checkpoints are evaluated again (4 rows, not 8).
  const fewer = await glue(dir, "full", ["--dev-limit", "4"]);
  equal(fewer.code, 0, fewer.err);
  const logits = await Deno.readFile(`${dir}/full/checkpoint-1/dev_logits.npy`);
  match(new TextDecoder().decode(logits.subarray(0, 128)), /'shape': \(4, 2\)/);
  const marker = JSON.parse(await Deno.readTextFile(`${dir}/full/checkpoint-2/complete.json`));
  equal(marker.dev.rows, 4);
  // Other training rows are refused, naming the difference; --overwrite replaces the run.
  const other = await glue(dir, "full", ["--limit", "16"]);
  equal(other.code, 1);
  match(other.err, /other settings[\s\S]*train: /);
  ok(!/\n\s+at /.test(other.err), `no stack trace: ${other.err}`);
  const replaced = await glue(dir, "full", ["--limit", "16", "--overwrite"]);
  equal(replaced.code, 0, replaced.err);
  const state = JSON.parse(await Deno.readTextFile(`${dir}/full/trainer_state.json`));
  equal(state.settings.train.rows, 16);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("f16-mixed fine-tuning killed at each phase of a checkpoint resumes to the same weights and scaler", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finetune_kill_f16_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(`${dir}/glue`, { train: 24, dev: 8, seed: 2 });
  const mixed = ["--precision", "f16-mixed"];
  const full = await glue(dir, "full", mixed);
  equal(full.code, 0, full.err);
  const want = await results(`${dir}/full`, true);
  // The optimizer files hold the scaler's state (what the byte comparison below covers).
  for (const c of ["checkpoint-1", "checkpoint-2"]) {
    const st = await readSafetensors(`${dir}/full/${c}/optimizer.safetensors`);
    for (const k of ["lossScale", "lossScaleGrowthTracker", "lossScaleSteps"]) {
      ok(Number.isFinite(Number(st.metadata?.[k])), `${c}: ${k} ${JSON.stringify(st.metadata)}`);
    }
  }
  const phases = ["weights:1", "saved:1", "state:1", "weights:2"];
  await Promise.all(phases.map(async (at) => {
    const out = `cut-${at.replace(":", "-")}`;
    const cut = await glue(dir, out, mixed, at);
    equal(cut.code, KILLED_EXIT_CODE, `killed at ${at}: ${cut.err}`);
    const resumed = await glue(dir, out, mixed);
    equal(resumed.code, 0, `resumed after ${at}: ${resumed.err}`);
    deepStrictEqual(JSON.parse(resumed.out).dev, JSON.parse(full.out).dev, at);
    const got = await results(`${dir}/${out}`, true);
    for (const [f, bytes] of Object.entries(want)) deepStrictEqual(got[f], bytes, `${at}: ${f}`);
  }));
  await Deno.remove(dir, { recursive: true });
});
