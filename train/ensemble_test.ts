// deno task ensemble's library side (ensembleFiles): saved .npy logits of any number of runs and
// the dev file they were computed on score as ensembleScores on the rows the other stages build
// (loadRows), for a GLUE task and SQuAD; mismatched files and rows are refused naming the
// files. Host only: no GPU, tiny generated logits.
import { deepStrictEqual, ok, rejects } from "node:assert/strict";
import { ensembleFiles, ensembleScores } from "./ensemble.ts";
import { loadRows } from "./rows.ts";
import { getTask } from "../tasks/mod.ts";
import { encodeNpy } from "../data/npy.ts";
import { writeLogitRows } from "../data/logit_rows.ts";
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

Deno.test("ensemble files: runs whose rows records differ are refused naming both files and the first row; no record is one note", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeSyntheticSst2(dir, { train: 2, dev: 42, seed: 5 });
    const data = `${dir}/SST-2/dev.tsv`;
    const rows = await loadRows(getTask("sst2"), {
      split: "dev",
      dataFile: data,
      tokenizer: tokenizerFromVocab(builtinVocab()),
      maxSeqLength: 16,
    });
    /** Logits of 32 rows from `from` on, recorded as `idx` says (the evaluation's idx). */
    const run = async (name: string, from: number, idx: number[]) => {
      const path = `${dir}/${name}/dev_logits.npy`;
      await Deno.mkdir(`${dir}/${name}`, { recursive: true });
      await logits(path, [32, 2], from + 1);
      await writeLogitRows(path, {
        dataFile: rows.dataFile,
        inputsHash: rows.hash,
        source: `test rows ${from}..${from + 32}`,
        idx,
        ids: rows.inputIds.subarray(from * rows.seq, (from + 32) * rows.seq),
        tokens: rows.seq,
      });
      return path;
    };
    const first32 = Array.from({ length: 32 }, (_, i) => i);
    const a = await run("bert", 0, first32);
    const b = await run("ap", 0, first32);
    // The head evaluated on rows 10..41 whose idx said 0..31: its counts agree, its rows not.
    const shifted = await run("shifted", 10, first32);
    const notes: string[] = [];
    const warn = (m: string) => notes.push(m);
    const o = { task: "sst2", data, devLimit: 32, warn };
    const same = await ensembleFiles({ ...o, logits: [a, b] });
    ok(same.metrics.accuracy >= 0);
    deepStrictEqual(notes.length, 0, "recorded runs of the same rows: nothing to say");
    // --data another file than the records name (a copy shifted by ten rows: the same count).
    const lines = (await Deno.readTextFile(data)).split("\n");
    const other = `${dir}/dev_shift.tsv`;
    await Deno.writeTextFile(other, [lines[0], ...lines.slice(11)].join("\n"));
    await rejects(
      ensembleFiles({ ...o, data: other, logits: [a, b] }),
      inputError(new RegExp(`^${other}: ${a} was evaluated on .*dev\\.tsv .*not on this file`)),
    );
    await rejects(
      ensembleFiles({ ...o, logits: [a, b, shifted] }),
      inputError(
        new RegExp(
          `^${shifted}: holds other rows than ${a}: its row 0 is example 0 of .*dev\\.tsv ` +
            `\\(tokens \\w{8}\\), theirs is example 0 of .*dev\\.tsv \\(tokens \\w{8}\\)`,
        ),
      ),
    );
    // Other example indices (a --dev-limit taken from elsewhere) differ at their first row.
    const later = await run("later", 0, first32.map((i) => (i < 5 ? i : i + 1)));
    await rejects(
      ensembleFiles({ ...o, logits: [a, later] }),
      inputError(/later\/dev_logits\.npy: holds other rows .*: its row 5 is example 6 of/),
    );
    // Logits without a record (saved before records were): one note naming them, then scored.
    const old = `${dir}/old.npy`;
    await logits(old, [32, 2], 9);
    await ensembleFiles({ ...o, logits: [a, old, old] });
    deepStrictEqual(notes.length, 1, notes.join("\n"));
    ok(notes[0].startsWith(`note: ${old}: no record of which rows it holds`), notes[0]);
    // A record left beside other logits is not believed.
    await Deno.copyFile(old, b);
    await rejects(
      ensembleFiles({ ...o, logits: [a, b] }),
      inputError(/dev_logits\.rows\.json: it was written for other logits than .*ap\/dev_logits/),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
