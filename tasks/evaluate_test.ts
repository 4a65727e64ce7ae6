/** `evaluateFiles` on malformed prediction and no-answer files: InputErrors naming the file. */
import assert from "node:assert/strict";
import { evaluateFiles } from "./evaluate.ts";
import { InputError } from "../data/errors.ts";

const SQUAD = {
  version: "v2.0",
  data: [{
    title: "T",
    paragraphs: [{
      context: "The cat sat.",
      qas: ["a", "b", "c", "d", "e", "f", "g"].map((id, i) => ({
        id,
        question: "Who?",
        answers: i % 2 ? [] : [{ text: "The cat", answer_start: 0 }],
        is_impossible: i % 2 === 1,
      })),
    }],
  }],
};

async function withFiles(
  files: Record<string, string | Uint8Array>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    for (const [name, content] of Object.entries(files)) {
      if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
      else await Deno.writeFile(`${dir}/${name}`, content);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts `p` rejects with an InputError whose message matches `re`. */
async function rejectsInput(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof InputError, String(e));
    assert.match(e.message, re);
    return true;
  });
}

const preds = JSON.stringify({ a: "cat", b: "", c: "cat", d: "", e: "cat", f: "", g: "cat" });

Deno.test("evaluate --na-prob FILE missing ids of the dataset: an InputError naming FILE and the first ids", async () => {
  await withFiles({
    "sq.json": JSON.stringify(SQUAD),
    "p.json": preds,
    "na.json": JSON.stringify({ a: 0.1, c: 0.5 }),
  }, async (dir) => {
    const args = { task: "squad", data: `${dir}/sq.json`, pred: `${dir}/p.json` };
    await rejectsInput(
      evaluateFiles({ ...args, naProb: `${dir}/na.json` }),
      new RegExp(
        `^${dir}/na.json: no-answer probabilities missing for 5 of 7 questions of ` +
          `${dir}/sq.json: "b", "d", "e", "f", "g"$`,
      ),
    );
    // Infinity (1e400 in JSON) is no probability either.
    await Deno.writeTextFile(
      `${dir}/na.json`,
      '{"a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":1e400}',
    );
    await rejectsInput(
      evaluateFiles({ ...args, naProb: `${dir}/na.json` }),
      new RegExp(`^${dir}/na.json: probability for g is Infinity, not a number`),
    );
  });
});

Deno.test("evaluate: predictions not UTF-8, deeply nested or of the wrong type are InputErrors naming the file", async () => {
  const rte = "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tentailment\n";
  await withFiles({
    "sq.json": JSON.stringify(SQUAD),
    "deep.json": `{"a":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
    "latin1.json": new Uint8Array([...new TextEncoder().encode('{"a":"caf'), 0xE9, 0x22, 0x7D]),
    "rte.tsv": rte,
    "p.txt": new Uint8Array([...new TextEncoder().encode("entailment\nentailm"), 0xE9, 0x0A]),
  }, async (dir) => {
    const sq = { task: "squad", data: `${dir}/sq.json` };
    await rejectsInput(
      evaluateFiles({ ...sq, pred: `${dir}/deep.json` }),
      new RegExp(`^${dir}/deep.json: prediction for a is \\[\\[\\[\\[…\\]\\]\\]\\], not a string$`),
    );
    await rejectsInput(
      evaluateFiles({ ...sq, pred: `${dir}/latin1.json` }),
      new RegExp(`^${dir}/latin1.json:1: not UTF-8 \\(byte 0xE9 at column 10\\)`),
    );
    await rejectsInput(
      evaluateFiles({ task: "rte", data: `${dir}/rte.tsv`, pred: `${dir}/p.txt` }),
      new RegExp(`^${dir}/p.txt:2: not UTF-8 \\(byte 0xE9 at column 8\\)`),
    );
    await rejectsInput(
      evaluateFiles({ ...sq, pred: `${dir}/none.json` }),
      new RegExp(`^${dir}/none.json: cannot read predictions \\(${dir}/none.json: no such file`),
    );
    await rejectsInput(
      evaluateFiles({ task: "constructor", data: `${dir}/rte.tsv`, pred: `${dir}/p.txt` }),
      /^unknown task "constructor"/,
    );
  });
});
