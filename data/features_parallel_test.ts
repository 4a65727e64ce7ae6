import { deepStrictEqual } from "node:assert/strict";
import { featurize, featurizeParallel } from "./features.ts";
import { loadTokenizer } from "./tokenize.ts";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "./synthetic.ts";
import { getTask } from "../tasks/mod.ts";

Deno.test("featurizeParallel (--num-workers 3) equals the single-threaded featurize", async () => {
  const dir = await Deno.makeTempDir();
  await makeTinyBert({
    out: `${dir}/bert`,
    seed: 1,
    layers: 1,
    hidden: 16,
    heads: 2,
    intermediate: 16,
  });
  await writeSyntheticSst2(`${dir}/glue`, { train: 4500, dev: 2, seed: 3 });
  const ex = await getTask("sst2").readSplit(`${dir}/glue`, "train");
  const tok = await loadTokenizer(`${dir}/bert`);
  const one = featurize(ex, tok, 24);
  const par = await featurizeParallel(ex, `${dir}/bert`, tok, 24, 3);
  deepStrictEqual(par, one);
  await Deno.remove(dir, { recursive: true });
});
