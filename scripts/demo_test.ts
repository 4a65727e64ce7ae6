// The demo owns its output directory: a record of its settings is written, the same settings
// keep what is there (a rerun resumes), other settings or an earlier demo's directory are
// emptied, and a directory that is not a demo's is refused with one clear line.
import { deepStrictEqual, equal, rejects } from "node:assert/strict";
import { demoSettings, ownOutput } from "./demo.ts";

const ls = async (dir: string) => {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
};

Deno.test("demo: its output directory is kept, rebuilt on other settings, others refused", async () => {
  const root = await Deno.makeTempDir({ prefix: "demo_out_" });
  const out = `${root}/demo`;
  await ownOutput(out, demoSettings(undefined), true);
  deepStrictEqual(await ls(out), ["demo_settings.json"]);
  await Deno.mkdir(`${out}/results`);
  await ownOutput(out, demoSettings(undefined), true); // the same settings: kept
  deepStrictEqual(await ls(out), ["demo_settings.json", "results"]);
  await ownOutput(out, demoSettings("/some/vocab.txt"), true); // other settings: rebuilt
  deepStrictEqual(await ls(out), ["demo_settings.json"]);
  const record = JSON.parse(await Deno.readTextFile(`${out}/demo_settings.json`));
  equal(record.vocab, "/some/vocab.txt");

  // An earlier demo's directory (no record) is rebuilt; anyone else's is refused.
  const old = `${root}/old`;
  for (const d of ["tiny-bert", "glue", "results"]) {
    await Deno.mkdir(`${old}/${d}`, { recursive: true });
  }
  await ownOutput(old, demoSettings(undefined), true);
  deepStrictEqual(await ls(old), ["demo_settings.json"]);
  const mine = `${root}/mine`;
  await Deno.mkdir(mine);
  await Deno.writeTextFile(`${mine}/thesis.tex`, "keep me");
  await rejects(
    () => ownOutput(mine, demoSettings(undefined), true),
    /is not a demo directory.*thesis\.tex/,
  );
  equal(await Deno.readTextFile(`${mine}/thesis.tex`), "keep me");
  await Deno.remove(root, { recursive: true });
});
