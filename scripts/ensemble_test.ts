// deno task ensemble as a user runs it: `--logits A B C` (or repeated) parsed into a list, the
// one JSON object on stdout equal to ensembleScores on the same rows (GLUE and SQuAD), and a
// mismatched file refused in one line naming it. Host only: tiny generated logits.
import { squadRowsFor } from "../train/squad_settings.ts";
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { parseCommand } from "./_flag_parse.ts";
import { UsageError } from "./_flags.ts";
import { ensembleScores } from "../train/ensemble.ts";
import { loadRows } from "../train/rows.ts";
import { getTask } from "../tasks/mod.ts";
import { encodeNpy } from "../data/npy.ts";
import { tokenizerFromVocab } from "../data/tokenize.ts";
import { syntheticSquadWords, writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";
import { builtinVocab } from "../model/init.ts";
import { randn, runCli } from "../tests/helpers.ts";

Deno.test("ensemble flags: --logits takes the paths up to the next flag, or repeated", () => {
  const p = (args: string[]) => parseCommand("ensemble", args).values;
  deepStrictEqual(p(["--task", "sst2", "--logits", "a.npy", "b.npy", "c.npy", "--data", "d"]), {
    task: "sst2",
    logits: ["a.npy", "b.npy", "c.npy"],
    data: "d",
  });
  deepStrictEqual(p(["--logits", "a", "--task", "rte", "--logits=b", "c", "--data", "d"]).logits, [
    "a",
    "b",
    "c",
  ]);
  throws(() => p(["--task", "sst2", "--data", "d"]), /missing --logits/);
  throws(
    () => p(["--task", "sst2", "--logits", "a", "b", "--data", "d", "--h5", "x"]),
    (e) => e instanceof UsageError && /Unknown option '--h5'/.test(e.message),
  );
  // Other commands still refuse a stray word.
  throws(() => parseCommand("evaluate", ["--task", "sst2", "stray"]), UsageError);
});

Deno.test("deno task ensemble: one JSON object, as ensembleScores gives it (GLUE and SQuAD)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const save = async (name: string, shape: number[], seed: number) => {
      const data = randn(seed, shape.reduce((a, b) => a * b, 1), 2);
      await Deno.writeFile(`${dir}/${name}`, encodeNpy(data, shape));
      return data;
    };
    // GLUE: three runs on 10 SST-2 dev rows.
    await writeSyntheticSst2(dir, { train: 2, dev: 10, seed: 8 });
    const tsv = `${dir}/SST-2/dev.tsv`;
    const runs = [await save("a.npy", [10, 2], 1), await save("b.npy", [10, 2], 2)];
    runs.push(await save("c.npy", [10, 2], 3));
    const files = ["a", "b", "c"].map((x) => `${dir}/${x}.npy`);
    const glue = await runCli("ensemble.ts", [
      "--task",
      "sst2",
      "--logits",
      ...files,
      "--data",
      tsv,
    ]);
    deepStrictEqual(glue.code, 0, glue.err);
    const rows = await loadRows(getTask("sst2"), {
      split: "dev",
      dataFile: tsv,
      tokenizer: tokenizerFromVocab(builtinVocab()),
      maxSeqLength: 16,
    });
    deepStrictEqual(JSON.parse(glue.out), ensembleScores(getTask("sst2"), runs, rows).metrics);

    // SQuAD: span logits [N, T, 2] of the windows the model's tokenizer cuts.
    const words = [...new Set([...builtinVocab(), ...syntheticSquadWords()])];
    await Deno.mkdir(`${dir}/model`);
    await Deno.writeTextFile(`${dir}/model/vocab.txt`, words.join("\n") + "\n");
    const json = await writeSyntheticSquad(dir, "dev-v2.0", { articles: 2, seed: 4 });
    // The command's SQuAD settings are the seed's preset (whole questions, its answer and
    // ensemble rules): the rows scored here are made with the same.
    const squadRows = await loadRows(getTask("squad"), {
      split: "dev",
      dataFile: json,
      tokenizer: tokenizerFromVocab(words),
      maxSeqLength: 20,
      ...squadRowsFor(getTask("squad"), undefined, true),
    });
    const spans = [
      await save("s1.npy", [squadRows.n, 20, 2], 5),
      await save("s2.npy", [squadRows.n, 20, 2], 6),
    ];
    const squad = await runCli("ensemble.ts", [
      ...["--task", "squad", "--data", json, "--model", `${dir}/model`, "--logits"],
      ...[`${dir}/s1.npy`, `${dir}/s2.npy`],
    ]);
    deepStrictEqual(squad.code, 0, squad.err);
    const metrics = JSON.parse(squad.out);
    deepStrictEqual(metrics, ensembleScores(getTask("squad"), spans, squadRows).metrics);
    ok("exact" in metrics && "f1" in metrics && "HasAns_exact" in metrics, squad.out);

    // Mismatched runs: one line naming the file, exit 1, nothing on stdout.
    const bad = await runCli("ensemble.ts", [
      ...["--task", "sst2", "--data", tsv, "--logits", files[0], `${dir}/s1.npy`],
    ]);
    deepStrictEqual([bad.code, bad.out], [1, ""]);
    ok(
      /^ensemble: .*s1\.npy: logits of shape \[.*\], but .*a\.npy has \[10, 2\]/.test(bad.err),
      bad.err,
    );
    deepStrictEqual(bad.err.trim().split("\n").length, 1, bad.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
