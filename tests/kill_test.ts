// Kill anywhere: each command killed at each of its write steps (the hooks of
// data/output/kill.ts, BERTVISION_TEST_EXIT_AT=phase:label: SIGKILL, no cleanup, locks left) and run again
// ends with the files of an uninterrupted run. Covered here: a head's save (weights; dev logits,
// before results.json; float32 and --precision f16-mixed), a less-data curve's files (fractions.json, before .md and .svg),
// merge-shards (every row written, before close; the store's fingerprint, before `complete`),
// a reproduction's report files (results.json, results.md, before chart.svg) and the cross-task
// report's (report.md, report.svg, before report.html). A store's close
// steps: data/h5_store_kill_test.ts; a checkpoint's (weights, optimizer, logits, metrics,
// marker): tests/finetune_kill_test.ts; an --overwrite's: tests/overwrite_kill_test.ts; a search
// log's records: tests/search_kill_test.ts.
import { deepStrictEqual, equal } from "node:assert/strict";
import { KILLED_EXIT_CODE } from "../data/output/kill.ts";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { storeContents } from "../data/_h5_store_child.ts";

const read = (p: string) => Deno.readFile(p);
const json = async (p: string) => JSON.parse(await Deno.readTextFile(p));

Deno.test("every output killed at each write step resumes to an uninterrupted run's files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kill_test_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(dir, { train: 24, dev: 8, seed: 3 });
  const common = ["--task", "sst2", "--data-dir", dir, "--max-seq-length", "16", "--quiet"];
  const rep = (out: string) => [
    ...[...common, "--model", `${dir}/bert`, "--adapter-dim", "4", "--activations", "store"],
    ...["--out", `${dir}/${out}`],
  ];
  const ref = await runCli("reproduce.ts", rep("rep"));
  equal(ref.code, 0, ref.err);
  const run = `${dir}/rep/sst2`;
  const ck = `${run}/bert/checkpoint-1`;
  const h5 = (split: string) => `${run}/activations/${split}_full_f32.h5`;

  /** `script args` killed at `at` (SIGKILL), then run again to the end. */
  const killThenRerun = async (script: string, args: string[], at: string) => {
    const cut = await runCli(script, args, { BERTVISION_TEST_EXIT_AT: at });
    equal(cut.code, KILLED_EXIT_CODE, `${script} killed at ${at}: ${cut.err}`);
    const again = await runCli(script, args);
    equal(again.code, 0, `${script} rerun after ${at}: ${again.err}`);
    return again;
  };

  const head = (out: string, more: string[] = []) => [
    ...["--task", "sst2", "--quiet", "--model", "ap", "--h5", h5("train"), "--dev-h5", h5("dev")],
    ...["--adapter-dim", "4", "--out", `${dir}/${out}`, ...more],
  ];
  const shard = (i: number) => [
    ...[...common, "--model", ck, "--split", "dev", "--out", `${dir}/part-{shard}.h5`],
    ...["--shard", `${i}/2`],
  ];
  const merge = (out: string) => ["--out", `${dir}/${out}`, `${dir}/part-*.h5`, "--quiet"];
  const curve = (out: string) => head(out, ["--train-fractions", "0.5,1"]);
  const mixed = (out: string) => head(out, ["--precision", "f16-mixed"]);
  const [apRef, , , curveRef, mixedRef] = await Promise.all([
    runCli("glue.ts", head("ap")),
    runCli("capture.ts", shard(0)),
    runCli("capture.ts", shard(1)),
    runCli("glue.ts", curve("curve")),
    runCli("glue.ts", mixed("ap16")),
  ]);
  equal(apRef.code, 0, apRef.err);
  equal(mixedRef.code, 0, mixedRef.err);
  equal(curveRef.code, 0, curveRef.err);
  const mergedRef = await runCli("merge_shards.ts", merge("merged.h5"));
  equal(mergedRef.code, 0, mergedRef.err);

  const cases: (() => Promise<void>)[] = [
    // A head: killed after its weights, and after its dev logits (before results.json).
    ...["head:weights", "head:logits"].map((at) => async () => {
      const out = `ap-${at.split(":")[1]}`;
      const again = await killThenRerun("glue.ts", head(out), at);
      deepStrictEqual(JSON.parse(again.out).dev, JSON.parse(apRef.out).dev, at);
      for (const f of ["head.safetensors", "dev_logits.npy"]) {
        deepStrictEqual(
          await read(`${dir}/${out}/${f}`),
          await read(`${dir}/ap/${f}`),
          `${at} ${f}`,
        );
      }
    }),
    // A mixed-precision head: the same two kills (a head trains again from its start, under
    // the same loss-scaling schedule).
    ...["head:weights", "head:logits"].map((at) => async () => {
      const out = `ap16-${at.split(":")[1]}`;
      const again = await killThenRerun("glue.ts", mixed(out), at);
      deepStrictEqual(JSON.parse(again.out).dev, JSON.parse(mixedRef.out).dev, at);
      for (const f of ["head.safetensors", "dev_logits.npy"]) {
        deepStrictEqual(
          await read(`${dir}/${out}/${f}`),
          await read(`${dir}/ap16/${f}`),
          `f16-mixed ${at} ${f}`,
        );
      }
      deepStrictEqual((await json(`${dir}/${out}/results.json`)).settings.precision, "f16-mixed");
    }),
    // A less-data curve: killed after fractions.json (before its table and chart).
    async () => {
      const again = await killThenRerun("glue.ts", curve("curve-cut"), "fractions:json");
      const points = (o: { fractions: { fraction: number; metrics: unknown }[] }) =>
        o.fractions.map((p) => [p.fraction, p.metrics]);
      deepStrictEqual(points(JSON.parse(again.out)), points(JSON.parse(curveRef.out)));
      deepStrictEqual(
        await read(`${dir}/curve-cut/fractions.svg`),
        await read(`${dir}/curve/fractions.svg`),
      );
    },
    // merge-shards: killed with every row written (not closed), and between the two markers.
    ...["merge:rows", "close:fingerprint"].map((at) => async () => {
      const out = `merged-${at.replace(":", "-")}.h5`;
      await killThenRerun("merge_shards.ts", merge(out), at);
      deepStrictEqual(
        await storeContents(`${dir}/${out}`),
        await storeContents(`${dir}/merged.h5`),
        at,
      );
    }),
    // A reproduction's report files: results.json written, then results.md (every stage found
    // finished in a copy of the finished run, so only the report is redone).
    ...["report:results.json", "report:results.md"].map((at) => async () => {
      const out = `rep-${at.split(".")[1]}`;
      await Deno.mkdir(`${dir}/${out}`);
      const cp = await new Deno.Command("cp", { args: ["-a", run, `${dir}/${out}/`] }).output();
      equal(cp.code, 0);
      for (const f of ["results.json", "results.md", "chart.svg"]) {
        await Deno.remove(`${dir}/${out}/sst2/${f}`);
      }
      await killThenRerun("reproduce.ts", rep(out), at);
      deepStrictEqual(
        (await json(`${dir}/${out}/sst2/results.json`)).rows,
        (await json(`${run}/results.json`)).rows,
        at,
      );
      deepStrictEqual(await read(`${dir}/${out}/sst2/chart.svg`), await read(`${run}/chart.svg`));
    }),
    // The cross-task report: killed after report.md, and after report.svg (before report.html);
    // the rerun's three files equal a run that was never killed, into the same folder.
    ...["cross-report:md", "cross-report:svg"].map((at) => async () => {
      const out = `${dir}/xr-${at.split(":")[1]}`;
      await killThenRerun("report.ts", [`${dir}/rep`, "--out", out], at);
      const files = ["report.md", "report.svg", "report.html"];
      const rerun = await Promise.all(files.map((f) => read(`${out}/${f}`)));
      const whole = await runCli("report.ts", [`${dir}/rep`, "--out", out]);
      equal(whole.code, 0, whole.err);
      deepStrictEqual(rerun, await Promise.all(files.map((f) => read(`${out}/${f}`))), at);
    }),
  ];
  // Two at a time (the machine's cores).
  for (let i = 0; i < cases.length; i += 2) {
    await Promise.all(cases.slice(i, i + 2).map((c) => c()));
  }
  await Deno.remove(dir, { recursive: true });
});
