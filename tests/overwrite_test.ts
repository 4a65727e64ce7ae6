// make-tiny-bert never replaces another model silently: the same flags leave the directory as
// it is, other flags are refused naming the config keys and the files of another run (an
// optimizer state), and --overwrite replaces the directory whole.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { runCli } from "./helpers.ts";

const make = (args: string[]) =>
  runCli("make_tiny_bert.ts", ["--layers", "1", "--intermediate", "32", ...args]);

Deno.test("make-tiny-bert: the same model is kept, another refused, --overwrite replaces", async () => {
  const dir = await Deno.makeTempDir({ prefix: "overwrite_test_" });
  const out = `${dir}/bert`;
  equal((await make(["--out", out, "--hidden", "32"])).code, 0);
  const weights = await Deno.readFile(`${out}/model.safetensors`);
  const same = await make(["--out", out, "--hidden", "32"]);
  equal(same.code, 0, same.err);
  match(same.out, /already holds this model/);
  await Deno.writeTextFile(`${out}/optimizer.safetensors`, "the fine-tuning run's state");
  const other = await make(["--out", out, "--hidden", "64"]);
  equal(other.code, 1);
  match(other.err, /holds another model \(config hidden_size: 32 → 64; .*optimizer\.safetensors/);
  ok(!/\n\s+at /.test(other.err), `no stack trace: ${other.err}`);
  deepStrictEqual(await Deno.readFile(`${out}/model.safetensors`), weights, "untouched");
  const replaced = await make(["--out", out, "--hidden", "64", "--overwrite"]);
  equal(replaced.code, 0, replaced.err);
  const config = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
  equal(config.hidden_size, 64);
  await Deno.stat(`${out}/optimizer.safetensors`).then(
    () => ok(false, "the old optimizer state is gone"),
    (e) => ok(e instanceof Deno.errors.NotFound),
  );
  const left = [];
  for await (const e of Deno.readDir(dir)) left.push(e.name);
  deepStrictEqual(left, ["bert"], "no temporary directory left");
  await Deno.remove(dir, { recursive: true });
});
