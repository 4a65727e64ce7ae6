// Every kind of output fails a write the same way (data/output/atomic.ts): with a write failure
// injected into it (BERTVISION_TEST_WRITE_FAIL), each command stops with exit 1 and one line
// `PATH: cannot write it (injected ...)` naming the file, no stack trace, and no `.tmp-PID` file
// left anywhere; the same command run again without the failure then completes (the failed write
// is redone, nothing half-written blocks it). Covered: a fine-tuning checkpoint's marker, a
// store's sidecar, a head's results, a less-data curve, merged shards, a reproduction's results,
// the cross-task report, the demo's settings record and a generated model's config.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { runCli, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";

/** Every path under `dir` whose name carries a temporary-file suffix. */
async function temps(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      if (/\.tmp(-|$)/.test(e.name)) out.push(`${d}/${e.name}`);
      if (e.isDirectory) await walk(`${d}/${e.name}`);
    }
  };
  await walk(dir);
  return out;
}

const INJECTED = "cannot write it (injected write failure (BERTVISION_TEST_WRITE_FAIL))";

Deno.test("a write failure injected into every kind of output: one line naming the path, no temp file, a rerun completes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_e2e_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(dir, { train: 24, dev: 8, seed: 3 });
  const common = ["--task", "sst2", "--data-dir", dir, "--max-seq-length", "16", "--quiet"];
  const ck = `${dir}/ft/checkpoint-1`;
  /** Runs `script args` with writes to paths containing `victim` failing, then without. */
  const failThenRedo = async (script: string, args: string[], victim: string, path: RegExp) => {
    const bad = await runCli(script, args, { BERTVISION_TEST_WRITE_FAIL: victim });
    equal(bad.code, 1, `${script} ${victim}: ${bad.err}`);
    const lines = bad.err.trim().split("\n");
    const last = lines[lines.length - 1];
    ok(last.includes(INJECTED), `${script} ${victim}: ${bad.err}`);
    match(last.slice(0, last.indexOf(`: ${INJECTED}`)), path);
    ok(!/\n\s+at /.test(bad.err), `no stack trace: ${bad.err}`);
    deepStrictEqual(await temps(dir), [], `${script} ${victim}: no temporary file left`);
    const good = await runCli(script, args);
    equal(good.code, 0, `${script} rerun: ${good.err}`);
  };
  await failThenRedo(
    "glue.ts",
    [...common, "--model", "bert", "--bert", `${dir}/bert`, "--out", `${dir}/ft`],
    "complete.json",
    new RegExp(`${ck}/complete\\.json$`),
  );
  const capture = (
    split: string,
    out: string,
    more: string[] = [],
  ) => [...common, "--model", ck, "--split", split, "--out", out, ...more];
  await failThenRedo("capture.ts", capture("train", `${dir}/train.h5`), "train.h5.", /train\.h5\./);
  equal((await runCli("capture.ts", capture("dev", `${dir}/dev.h5`))).code, 0);
  const ap = [
    "--task",
    "sst2",
    "--quiet",
    "--model",
    "ap",
    "--h5",
    `${dir}/train.h5`,
    "--dev-h5",
    `${dir}/dev.h5`,
  ];
  await failThenRedo(
    "glue.ts",
    [...ap, "--adapter-dim", "4", "--out", `${dir}/ap`],
    "ap/results.json",
    new RegExp(`${dir}/ap/results\\.json$`),
  );
  await failThenRedo(
    "glue.ts",
    [...ap, "--adapter-dim", "4", "--train-fractions", "0.5,1", "--out", `${dir}/curve`],
    "fractions.json",
    new RegExp(`${dir}/curve/fractions\\.json$`),
  );
  for (const i of [0, 1]) {
    const shard = capture("dev", `${dir}/part-{shard}.h5`, ["--shard", `${i}/2`]);
    equal((await runCli("capture.ts", shard)).code, 0);
  }
  await failThenRedo(
    "merge_shards.ts",
    ["--out", `${dir}/merged.h5`, `${dir}/part-*.h5`],
    "merged.h5.",
    /merged\.h5\./,
  );
  await failThenRedo(
    "reproduce.ts",
    [...common, "--model", `${dir}/bert`, "--adapter-dim", "4", "--out", `${dir}/rep`],
    "sst2/results.json",
    new RegExp(`${dir}/rep/sst2/results\\.json$`),
  );
  await failThenRedo(
    "report.ts",
    [`${dir}/rep`, "--out", `${dir}/report`],
    "report.md",
    /report\.md$/,
  );
  await failThenRedo(
    "make_tiny_bert.ts",
    ["--layers", "1", "--hidden", "16", "--intermediate", "32", "--out", `${dir}/tb`],
    "config.json",
    /config\.json$/,
  );
  const demo = await runCli("demo.ts", ["--out", `${dir}/demo`, "--quiet"], {
    BERTVISION_TEST_WRITE_FAIL: "demo_settings.json",
  });
  equal(demo.code, 1, demo.err);
  ok(demo.err.includes(`${dir}/demo/demo_settings.json: ${INJECTED}`), demo.err);
  deepStrictEqual(await temps(dir), []);
  await Deno.remove(dir, { recursive: true });
});
