// deno task ensemble's library side (ensembleFiles): saved .npy logits of any number of runs and
// the dev file they were computed on score as ensembleScores on the rows the other stages build
// (loadRows), for a GLUE task and SQuAD; mismatched files and rows are refused naming the
// files. Host only: no GPU, tiny generated logits.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { ensembleFiles, ensembleScores } from "./ensemble.ts";
import { loadRows } from "./rows.ts";
import { getTask } from "../tasks/mod.ts";
import { encodeNpy } from "../data/npy.ts";
import { InputError } from "../data/errors.ts";
import { tokenizerFromVocab } from "../data/tokenize.ts";
import { syntheticSquadWords, writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";
import { builtinVocab } from "../model/init.ts";
import { randn } from "../tests/helpers.ts";

/** Writes seeded logits of `shape` to `path`; returns them. */
async function logits(path: string, shape: number[], seed: number): Promise<Float32Array> {
  const data = randn(seed, shape.reduce((a, b) => a * b, 1), 2);
  await Deno.writeFile(path, encodeNpy(data, shape));
  return data;
}

const inputError = (re: RegExp) => (e: Error) => e instanceof InputError && re.test(e.message);

Deno.test("ensemble files (GLUE): three runs score as ensembleScores on the dev rows", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticSst2(dir, { train: 2, dev: 12, seed: 5 });
    const data = `${dir}/SST-2/dev.tsv`;
    const task = getTask("sst2");
    const runs = await Promise.all([1, 2, 3].map((s) => logits(`${dir}/r${s}.npy`, [12, 2], s)));
    const rows = await loadRows(task, {
      split: "dev",
      dataFile: data,
      tokenizer: tokenizerFromVocab(builtinVocab()),
      maxSeqLength: 16,
    });
    const files = [1, 2, 3].map((s) => `${dir}/r${s}.npy`);
    const got = await ensembleFiles({ task: "sst2", logits: files, data });
    deepStrictEqual(got.metrics, ensembleScores(task, runs, rows).metrics);
    ok(got.metrics.accuracy >= 0 && got.metrics.accuracy <= 1, JSON.stringify(got.metrics));
    // Two runs: the paper's pair form gives the same.
    deepStrictEqual(
      (await ensembleFiles({ task: "sst2", logits: files.slice(0, 2), data })).metrics,
      ensembleScores(task, runs[0], runs[1], rows).metrics,
    );

    // Refusals: one file; files of different shapes; rows the file does not have; int32.
    await rejects(
      ensembleFiles({ task: "sst2", logits: files.slice(0, 1), data }),
      inputError(/two or more logits files, got 1/),
    );
    await logits(`${dir}/short.npy`, [10, 2], 4);
    await rejects(
      ensembleFiles({ task: "sst2", logits: [files[0], `${dir}/short.npy`], data }),
      inputError(/short\.npy: logits of shape \[10, 2\], but .*r1\.npy has \[12, 2\]/),
    );
    const shorts = [`${dir}/short.npy`, `${dir}/short.npy`];
    await rejects(
      ensembleFiles({ task: "sst2", logits: shorts, data }),
      inputError(
        /shape \[10, 2\], but sst2 on .*dev\.tsv \(12 examples\) needs \[12, 2\].*--dev-limit/,
      ),
    );
    // With the --dev-limit the runs used, the first 10 rows are scored.
    const limited = await ensembleFiles({ task: "sst2", logits: shorts, data, devLimit: 10 });
    ok(limited.metrics.accuracy >= 0);
    await Deno.writeFile(`${dir}/int.npy`, encodeNpy(new Int32Array(24), [12, 2]));
    await rejects(
      ensembleFiles({ task: "sst2", logits: [files[0], `${dir}/int.npy`], data }),
      inputError(/int\.npy: holds int32 values/),
    );
    // SQuAD's flags are refused for a GLUE task rather than ignored.
    await rejects(
      ensembleFiles({ task: "sst2", logits: files, data, model: "m" }),
      inputError(/--model is for squad/),
    );
    await rejects(
      ensembleFiles({ task: "sst2", logits: files, data, docStride: 64 }),
      inputError(/--doc-stride is for squad/),
    );
    // Three classes of logits for a two-class task.
    await logits(`${dir}/c3.npy`, [12, 3], 6);
    await rejects(
      ensembleFiles({ task: "sst2", logits: [`${dir}/c3.npy`, `${dir}/c3.npy`], data }),
      inputError(/needs \[12, 2\]/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ensemble files (SQuAD): windows rebuilt with the model's tokenizer, official keys", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A "model" is all the tokenizer needs here: a directory with vocab.txt.
    const words = [...new Set([...builtinVocab(), ...syntheticSquadWords()])];
    await Deno.mkdir(`${dir}/model`);
    await Deno.writeTextFile(`${dir}/model/vocab.txt`, words.join("\n") + "\n");
    const data = await writeSyntheticSquad(dir, "dev-v2.0", { articles: 3, seed: 2 });
    const task = getTask("squad");
    const T = 24;
    const rows = await loadRows(task, {
      split: "dev",
      dataFile: data,
      tokenizer: tokenizerFromVocab(words),
      maxSeqLength: T,
    });
    const runs = await Promise.all(
      [1, 2].map((s) => logits(`${dir}/s${s}.npy`, [rows.n, T, 2], 10 + s)),
    );
    const files = [1, 2].map((s) => `${dir}/s${s}.npy`);
    const got = await ensembleFiles({ task: "squad", logits: files, data, model: `${dir}/model` });
    const want = ensembleScores(task, runs, rows);
    deepStrictEqual(got.metrics, want.metrics);
    deepStrictEqual(got.answers, want.answers);
    for (const k of ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "NoAns_exact"]) {
      ok(k in got.metrics, `official key ${k}: ${Object.keys(got.metrics)}`);
    }
    deepStrictEqual(got.metrics.total, 6);

    await rejects(
      ensembleFiles({ task: "squad", logits: files, data }),
      inputError(/--model is needed for squad/),
    );
    // Row-level logits are no span logits.
    await logits(`${dir}/flat.npy`, [rows.n, 2], 7);
    await rejects(
      ensembleFiles({ task: "squad", logits: [`${dir}/flat.npy`, `${dir}/flat.npy`], data }),
      inputError(
        /flat\.npy: logits of shape \[\d+, 2\]; squad's are per token: \[rows, tokens, 2\]/,
      ),
    );
    // Windows cut with another --doc-stride: the same flag rebuilds them.
    const strided = await loadRows(task, {
      split: "dev",
      dataFile: data,
      tokenizer: tokenizerFromVocab(words),
      maxSeqLength: T,
      docStride: 12,
    });
    ok(strided.n > rows.n, `${strided.n} windows with overlap 12, ${rows.n} by default`);
    const sruns = await Promise.all(
      [1, 2].map((s) => logits(`${dir}/d${s}.npy`, [strided.n, T, 2], 20 + s)),
    );
    const sfiles = [1, 2].map((s) => `${dir}/d${s}.npy`);
    const model = `${dir}/model`;
    deepStrictEqual(
      (await ensembleFiles({ task: "squad", logits: sfiles, data, model, docStride: 12 })).metrics,
      ensembleScores(task, sruns, strided).metrics,
    );
    await rejects(
      ensembleFiles({ task: "squad", logits: sfiles, data, model }),
      inputError(/were they computed on this file/),
    );
    // Logits of another window length: the windows the file makes at that length differ.
    await logits(`${dir}/t.npy`, [rows.n + 1, T, 2], 3);
    await rejects(
      ensembleFiles({
        task: "squad",
        logits: [`${dir}/t.npy`, `${dir}/t.npy`],
        data,
        model: `${dir}/model`,
      }),
      inputError(new RegExp(`needs \\[${rows.n}, ${T}, 2\\]`)),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
