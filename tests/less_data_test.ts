// The less-data curve as users run it: `glue --model ap --activations stream --train-fractions`
// after `glue --model bert` (BERT's line read from the checkpoint, the JSON, the files, a rerun
// that trains nothing, flag conflicts refused), and `reproduce --train-fractions` on the real
// SST-2 files (skipped without ../shared): the curve's BERT line is the table's BERT row and the
// table's head is the whole set's fraction.
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { runCli, sharedDir, tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { makeTinyBert } from "../model/init.ts";
import { reproduce } from "../train/reproduce.ts";
import type { FractionCurve } from "../report/curve.ts";

const shared = sharedDir();

Deno.test("glue --train-fractions: a curve against the BERT checkpoint's score; a rerun trains nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "less_data_" });
  await tinyTestBert(`${dir}/bert`);
  await writeSyntheticSst2(dir, { train: 64, dev: 16, seed: 3 });
  const common = ["--task", "sst2", "--data-dir", dir, "--max-seq-length", "24", "--quiet"];
  const ft = await runCli("glue.ts", [
    ...common,
    ...["--model", "bert", "--bert", `${dir}/bert`, "--out", `${dir}/ft`, "--lr", "1e-3"],
  ]);
  equal(ft.code, 0, ft.err);
  const bert = JSON.parse(ft.out).dev["1"];
  const sweep = [
    ...common,
    ...["--model", "ap", "--activations", "stream", "--bert", `${dir}/ft/checkpoint-1`],
    ...["--train-fractions", "1,0.25,0.5", "--adapter-dim", "4", "--lr", "3e-3"],
    ...["--out", `${dir}/curve`],
  ];
  const first = await runCli("glue.ts", sweep);
  equal(first.code, 0, first.err);
  const out = JSON.parse(first.out);
  deepStrictEqual(out.fractions.map((p: { fraction: number }) => p.fraction), [0.25, 0.5, 1]);
  deepStrictEqual(out.fractions.map((p: { rows: number }) => p.rows), [16, 32, 64]);
  deepStrictEqual(out.bert, [{ label: "BERT (checkpoint-1)", metrics: bert }]);
  const curve: FractionCurve = JSON.parse(await Deno.readTextFile(`${dir}/curve/fractions.json`));
  deepStrictEqual(curve.points, out.fractions);
  for (const p of curve.points) {
    const r = JSON.parse(await Deno.readTextFile(`${p.dir}/results.json`));
    deepStrictEqual(r.devMetrics, p.metrics, `${p.dir}/results.json`);
    deepStrictEqual(r.settings.trainFraction, p.fraction);
  }
  match(await Deno.readTextFile(`${dir}/curve/fractions.md`), /\| BERT \(checkpoint-1\) \|/);
  ok((await Deno.readTextFile(`${dir}/curve/fractions.svg`)).includes(`class="reference"`));
  // The same command again: every fraction found finished, the same numbers.
  const again = await runCli("glue.ts", sweep);
  equal(again.code, 0, again.err);
  const back = JSON.parse(again.out);
  deepStrictEqual(back.fractions.map((p: { resumed?: boolean }) => p.resumed), [true, true, true]);
  deepStrictEqual(
    back.fractions.map((p: { metrics: unknown }) => p.metrics),
    out.fractions.map((p: { metrics: unknown }) => p.metrics),
  );
  // One head or a curve, not both; a share above 1 is refused by the flag table.
  const both = await runCli("glue.ts", [...sweep, "--train-fraction", "0.5"]);
  equal(both.code, 2, both.err);
  match(both.err, /give --train-fraction \(one head\) or --train-fractions \(a curve\), not both/);
  const big = await runCli("glue.ts", [
    ...["--task", "sst2", "--model", "ap", "--h5", "x.h5", "--train-fractions", "0.5,2"],
  ]);
  equal(big.code, 2, big.err);
  match(
    big.err,
    /--train-fractions must be positive numbers ≤ 1 separated by commas, got "0\.5,2"/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name:
    "reproduce --train-fractions on SST-2: the curve's line is BERT's row, the table's head the whole set's",
  ignore: !shared,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "less_data_sst2_" });
    await makeTinyBert({
      out: `${dir}/bert`,
      seed: 1,
      layers: 1,
      hidden: 32,
      heads: 2,
      intermediate: 64,
      vocab: `${shared}/data/bert-base-uncased/vocab.txt`,
      maxPositions: 64,
    });
    const { results, files } = await reproduce({
      task: "sst2",
      model: `${dir}/bert`,
      dataDir: `${shared}/data/glue`,
      out: `${dir}/results`,
      epochs: 1,
      batchSize: 16,
      lr: 1e-3,
      maxSeqLength: 32,
      limit: 160,
      devLimit: 64,
      adapterDim: 8,
      apLr: 3e-3,
      trainFractions: [0.1, 0.3, 1],
      silent: true,
    });
    const root = `${dir}/results/sst2/fractions`;
    ok(files.includes(`${root}/fractions.svg`), files.join(", "));
    const curve: FractionCurve = JSON.parse(await Deno.readTextFile(`${root}/fractions.json`));
    deepStrictEqual(curve.points.map((p) => p.rows), [16, 48, 160]);
    deepStrictEqual(curve.references, [{ label: "BERT", metrics: results.rows[0].metrics }]);
    deepStrictEqual(results.rows[1].model, "BERTVision (AP)");
    deepStrictEqual(results.rows[1].metrics, curve.points[2].metrics);
    deepStrictEqual(results.settings.trainFractions, [0.1, 0.3, 1]);
    for (const p of curve.points) ok(p.metrics.accuracy >= 0 && p.metrics.accuracy <= 1);
    await Deno.remove(dir, { recursive: true });
  },
});
