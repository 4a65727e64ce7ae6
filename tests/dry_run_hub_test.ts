// `--dry-run` with a hub id downloads nothing (run with the network denied): a model not in the
// cache is planned as "cannot size it" naming what a run would download, exit 0, and the cache
// stays empty (no `.part`); a model in the cache (an older download, without a file tried since)
// is planned from it as it is (capture), the cache unchanged.
import { deepStrictEqual, equal, match } from "node:assert/strict";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";

async function files(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else out.push(`${p} ${(await Deno.stat(p)).size}`);
    }
  };
  await walk(root);
  // The kernel tuning record (tuning.json) is no download: only the hub's files count here.
  return out.filter((f) => !f.includes("/tuning.json")).sort();
}

Deno.test("--dry-run with a hub id downloads nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dry_run_hub_" });
  await writeSyntheticSst2(`${dir}/glue`, { train: 16, dev: 8, seed: 2 });
  const cache = `${dir}/cache`;
  await Deno.mkdir(cache);
  const run = async (script: string, args: string[]) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--deny-net",
        new URL(`../scripts/${script}`, import.meta.url).pathname,
        ...args,
      ],
      cwd: dir,
      env: { XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1", BERTVISION_CACHE: cache },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
  };
  const common = ["--task", "sst2", "--data-dir", `${dir}/glue`, "--max-seq-length", "16"];
  const cases = (model: string): [string, string[]][] => [
    ["capture.ts", [...common, "--model", model, "--split", "dev", "--out", "x.h5", "--dry-run"]],
    ["glue.ts", [...common, "--model", "bert", "--bert", model, "--dry-run"]],
    ["reproduce.ts", [...common, "--model", model, "--dry-run"]],
  ];
  for (const [script, args] of cases("owner/not-cached")) {
    const r = await run(script, args);
    equal(r.code, 0, `${script}: ${r.err}`);
    match(r.out, /model "owner\/not-cached" is not in the cache .*cannot size it/, script);
    deepStrictEqual(await files(cache), [], `${script}: nothing written to the cache`);
  }
  // A download finished before tokenizer_config.json was tried: planned from it as it is.
  const hub = `${cache}/hub/owner/tiny`;
  await makeTinyBert({
    out: hub,
    seed: 1,
    layers: 1,
    hidden: 32,
    heads: 2,
    intermediate: 64,
    maxPositions: 64,
  });
  await Deno.remove(`${hub}/tokenizer_config.json`).catch(() => {});
  await Deno.writeTextFile(
    `${hub}/.bertvision_source.json`,
    JSON.stringify({ modelId: "owner/tiny", baseUrl: "http://127.0.0.1:9", files: [] }),
  );
  const before = await files(dir);
  for (const [script, args] of cases("owner/tiny").slice(0, 1)) {
    const r = await run(script, args);
    equal(r.code, 0, `${script}: ${r.err}`);
    match(r.out, /peak/i, `${script} plans: ${r.out}`);
    deepStrictEqual(await files(dir), before, `${script}: nothing written`);
  }
  await Deno.remove(dir, { recursive: true });
});
