/** End-to-end: `deno task evaluate` on generated files (and the shared dev files when present). */
import assert from "node:assert/strict";
import { SQUAD_OFFICIAL_KEYS } from "./helpers.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SHARED = new URL("../../shared/data/", import.meta.url).pathname;
const hasShared = await Deno.stat(`${SHARED}glue/RTE/dev.tsv`).then(() => true, () => false);

async function evaluate(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}scripts/evaluate.ts`, ...args],
    cwd: ROOT,
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("evaluate CLI: GLUE and SQuAD metrics as JSON, clear errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const rte = `${dir}/rte.tsv`;
    await Deno.writeTextFile(
      rte,
      "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tnot_entailment\n" +
        "2\te\tf\tentailment\n3\tg\th\tnot_entailment\n",
    );
    await Deno.writeTextFile(
      `${dir}/p.txt`,
      "entailment\nentailment\nentailment\nnot_entailment\n",
    );
    let r = await evaluate("--task", "rte", "--data", rte, "--pred", `${dir}/p.txt`);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), { accuracy: 0.75 });

    await Deno.writeTextFile(`${dir}/short.txt`, "entailment\n");
    r = await evaluate("--task", "rte", "--data", rte, "--pred", `${dir}/short.txt`);
    assert.equal(r.code, 1);
    assert.match(r.err, /short.txt: 1 predictions for 4 examples in .*rte.tsv/);
    await Deno.writeTextFile(`${dir}/bad.txt`, "entailment\nmaybe\nentailment\nentailment\n");
    r = await evaluate("--task", "rte", "--data", rte, "--pred", `${dir}/bad.txt`);
    assert.match(r.err, /bad.txt:2: prediction "maybe" is not one of rte's labels/);
    r = await evaluate("--task", "rtee", "--data", rte, "--pred", `${dir}/p.txt`);
    assert.match(
      r.err,
      /unknown task "rtee" \(tasks: cola sst2 mrpc stsb qqp mnli qnli rte wnli squad\)/,
    );

    const squad = {
      version: "v2.0",
      data: [{
        title: "T",
        paragraphs: [{
          context: "The cat sat.",
          qas: [
            { id: "a", question: "Who sat?", answers: [{ text: "The cat", answer_start: 0 }] },
            { id: "b", question: "Who stood?", answers: [], is_impossible: true },
          ],
        }],
      }],
    };
    await Deno.writeTextFile(`${dir}/sq.json`, JSON.stringify(squad));
    await Deno.writeTextFile(`${dir}/sp.json`, JSON.stringify({ a: "cat", b: "" }));
    await Deno.writeTextFile(`${dir}/na.json`, JSON.stringify({ a: 0.2, b: 0.7 }));
    r = await evaluate(
      "--task",
      "squad",
      "--data",
      `${dir}/sq.json`,
      "--pred",
      `${dir}/sp.json`,
      "--na-prob",
      `${dir}/na.json`,
    );
    assert.equal(r.code, 0, r.err);
    const m = JSON.parse(r.out);
    assert.deepEqual(Object.keys(m), SQUAD_OFFICIAL_KEYS);
    assert.equal(m.exact, 100);
    assert.equal(m.best_exact_thresh, 0.2);
    // missing prediction: scored wrong, warning names the id
    await Deno.writeTextFile(`${dir}/sp1.json`, JSON.stringify({ a: "cat" }));
    r = await evaluate("--task", "squad", "--data", `${dir}/sq.json`, "--pred", `${dir}/sp1.json`);
    assert.equal(r.code, 0);
    assert.equal(JSON.parse(r.out).exact, 50);
    assert.match(r.err, /missing predictions for 1 of 2 questions \(scored as wrong\): b/);
    r = await evaluate("--task", "squad", "--data", rte, "--pred", `${dir}/sp.json`);
    assert.match(r.err, /rte.tsv: not JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "evaluate CLI on the shared RTE and STS-B dev files: gold as predictions scores 1",
  ignore: !hasShared,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const rte = `${SHARED}glue/RTE/dev.tsv`;
      const gold = (await Deno.readTextFile(rte)).split("\n").slice(1).filter((l) => l)
        .map((l) => l.split("\t")[3]);
      await Deno.writeTextFile(`${dir}/p.txt`, gold.join("\n") + "\n");
      let r = await evaluate("--task", "rte", "--data", rte, "--pred", `${dir}/p.txt`);
      assert.deepEqual(JSON.parse(r.out), { accuracy: 1 });
      // all "entailment": 146 of 277
      await Deno.writeTextFile(`${dir}/e.txt`, gold.map(() => "entailment").join("\n"));
      r = await evaluate("--task", "rte", "--data", rte, "--pred", `${dir}/e.txt`);
      assert.deepEqual(JSON.parse(r.out), { accuracy: 146 / 277 });
      const sts = `${SHARED}glue/STS-B/dev.tsv`;
      const scores = (await Deno.readTextFile(sts)).split("\n").slice(1).filter((l) => l)
        .map((l) => l.split("\t")[9]);
      await Deno.writeTextFile(`${dir}/s.txt`, scores.join("\n"));
      r = await evaluate("--task", "stsb", "--data", sts, "--pred", `${dir}/s.txt`);
      const m = JSON.parse(r.out);
      assert.ok(Math.abs(m.pearson - 1) < 1e-12 && Math.abs(m.spearman - 1) < 1e-12, r.out);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("evaluate CLI: bad input is one line naming the file, no stack trace", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const squad = {
      data: [{
        paragraphs: [{
          context: "The cat sat.",
          qas: ["q1", "q2", "q3"].map((id) => ({ id, question: "Who?", answers: [] })),
        }],
      }],
    };
    await Deno.writeTextFile(`${dir}/sq.json`, JSON.stringify(squad));
    await Deno.writeTextFile(`${dir}/p.json`, JSON.stringify({ q1: "", q2: "", q3: "" }));
    await Deno.writeTextFile(`${dir}/na.json`, JSON.stringify({ q2: 0.5 }));
    const args = ["--task", "squad", "--data", `${dir}/sq.json`, "--pred", `${dir}/p.json`];
    let r = await evaluate(...args, "--na-prob", `${dir}/na.json`);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `evaluate: ${dir}/na.json: no-answer probabilities missing for 2 of 3 questions of ` +
        `${dir}/sq.json: "q1", "q3"\n`,
    );
    await Deno.writeFile(`${dir}/sq.json`, new Uint8Array([0x7B, 0x0A, 0xFF, 0x7D]));
    r = await evaluate(...args);
    assert.equal(r.code, 1);
    assert.equal(
      r.err,
      `evaluate: ${dir}/sq.json:2: not UTF-8 (byte 0xFF at column 1); save the file as UTF-8\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
