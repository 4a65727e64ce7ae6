// An --overwrite killed part-way never leaves old results beside wiped ones looking valid
// (data/output/overwrite.ts): `reproduce --overwrite` killed in its fine-tuning leaves the old
// results.json, which the cross-task report then skips as unfinished, and a rerun without
// --overwrite continues the overwrite to the results of an uninterrupted run;
// `glue --model ap --overwrite` killed after its removal leaves no old head, and a rerun without
// --overwrite continues to the head of an uninterrupted run; so does a less-data curve's.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { KILLED_EXIT_CODE } from "../data/output/kill.ts";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { findResults } from "../report/cross_find.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("a killed --overwrite is void to readers and a rerun continues it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "overwrite_kill_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(dir, { train: 24, dev: 8, seed: 3 });
  const common = ["--task", "sst2", "--data-dir", dir, "--max-seq-length", "16", "--quiet"];
  const rep = (out: string, more: string[] = []) => [
    ...[...common, "--model", `${dir}/bert`, "--adapter-dim", "4", "--activations", "stream"],
    ...["--out", `${dir}/${out}`, ...more],
  ];
  const rows = async (out: string) =>
    JSON.parse(await Deno.readTextFile(`${dir}/${out}/sst2/results.json`)).rows.map(
      (r: { model: string; metrics: unknown }) => [r.model, r.metrics],
    );
  const [old, want] = await Promise.all([
    runCli("reproduce.ts", rep("rep")),
    runCli("reproduce.ts", rep("want", ["--lr", "2e-3"])),
  ]);
  equal(old.code, 0, old.err);
  equal(want.code, 0, want.err);
  equal((await findResults(`${dir}/rep`)).runs.length, 1);

  // reproduce --overwrite with another learning rate, killed in its fine-tuning.
  const cut = await runCli("reproduce.ts", rep("rep", ["--lr", "2e-3", "--overwrite"]), {
    BERTVISION_TEST_EXIT_AT: "saved:1",
  });
  equal(cut.code, KILLED_EXIT_CODE, cut.err);
  const seen = await findResults(`${dir}/rep`).then((r) => r.runs.length, () => 0);
  equal(seen, 0, "the old results.json of a reproduction being overwritten is not reported");
  const resumed = await runCli("reproduce.ts", rep("rep", ["--lr", "2e-3"]));
  equal(resumed.code, 0, resumed.err);
  deepStrictEqual(await rows("rep"), await rows("want"));
  ok(!(await exists(`${dir}/rep/sst2/.overwriting`)), "the mark goes last");
  equal((await findResults(`${dir}/rep`)).runs.length, 1);

  // glue --model ap --overwrite, killed once the old head is removed.
  const ck = `${dir}/want/sst2/bert/checkpoint-1`;
  const ap = (out: string, more: string[] = []) => [
    ...[...common, "--model", "ap", "--activations", "stream", "--bert", ck],
    ...["--adapter-dim", "4", "--out", `${dir}/${out}`, ...more],
  ];
  const curve = ["--train-fractions", "0.5,1"];
  const [first, wantAp, firstCurve, wantCurve] = await Promise.all([
    runCli("glue.ts", ap("ap")),
    runCli("glue.ts", ap("ap-want", ["--lr", "3e-3"])),
    runCli("glue.ts", ap("curve", curve)),
    runCli("glue.ts", ap("curve-want", [...curve, "--lr", "3e-3"])),
  ]);
  for (const r of [first, wantAp, firstCurve, wantCurve]) equal(r.code, 0, r.err);
  const cutAp = await runCli("glue.ts", ap("ap", ["--lr", "3e-3", "--overwrite"]), {
    BERTVISION_TEST_EXIT_AT: "overwrite:removed",
  });
  equal(cutAp.code, KILLED_EXIT_CODE, cutAp.err);
  for (const f of ["results.json", "head.safetensors", "train_log.jsonl", "dev_logits.npy"]) {
    ok(!(await exists(`${dir}/ap/${f}`)), `the old ${f} is gone`);
  }
  const again = await runCli("glue.ts", ap("ap", ["--lr", "3e-3"]));
  equal(again.code, 0, again.err);
  deepStrictEqual(JSON.parse(again.out).dev, JSON.parse(wantAp.out).dev);
  for (const f of ["head.safetensors", "dev_logits.npy"]) {
    deepStrictEqual(
      await Deno.readFile(`${dir}/ap/${f}`),
      await Deno.readFile(`${dir}/ap-want/${f}`),
      f,
    );
  }
  ok(!(await exists(`${dir}/ap/.overwriting`)), "the mark goes last");

  // glue --train-fractions --overwrite, killed once the old curve and its heads are removed.
  const cutCurve = await runCli("glue.ts", ap("curve", [...curve, "--lr", "3e-3", "--overwrite"]), {
    BERTVISION_TEST_EXIT_AT: "overwrite:removed",
  });
  equal(cutCurve.code, KILLED_EXIT_CODE, cutCurve.err);
  const left = [];
  for await (const e of Deno.readDir(`${dir}/curve`)) left.push(e.name);
  deepStrictEqual(left.filter((n) => !n.startsWith(".")), [], "the old curve and heads are gone");
  const curveAgain = await runCli("glue.ts", ap("curve", [...curve, "--lr", "3e-3"]));
  equal(curveAgain.code, 0, curveAgain.err);
  const points = (out: string) =>
    JSON.parse(out).fractions.map((p: { fraction: number; metrics: unknown }) => [
      p.fraction,
      p.metrics,
    ]);
  deepStrictEqual(points(curveAgain.out), points(wantCurve.out));
  ok(!(await exists(`${dir}/curve/.overwriting`)), "the mark goes last");
  await Deno.remove(dir, { recursive: true });
});
