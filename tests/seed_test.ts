// `deno task seed`: the 18 commands of the seed's README (code/torch/README.md @ dfdafad, "To
// replicate our results"), pasted as written there, each parsed as its module's argparse parser
// parses it, translated, and its translation dry-run here on tiny fixtures (no ../shared): the
// BERT commands with the seed's `bert-base-uncased` (not cached: planned as unsizable, exit 0)
// and SST-2's also with a tiny BERT over generated data, the head commands on the seed's own
// three-file stores (written in its gen_embeds layout) and SQuAD's on captured stores. Then the
// refusals: an unknown flag, a bad value, a dataset its module does not map, each naming the
// flag and the module.
import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import h5wasm from "h5wasm/node";
import { splitArgs, translateSeed } from "../scripts/seed.ts";
import { main as glueMain } from "../scripts/glue.ts";
import { UsageError } from "../scripts/_flags.ts";
import { builtinVocab, makeTinyBert } from "../model/init.ts";
import { syntheticSquadWords, writeSyntheticSquad, writeSyntheticSst2 } from "../data/synthetic.ts";
import { capture } from "../train/capture.ts";
import { runCli } from "./helpers.ts";
import { cacheRoot } from "../model/checkpoint.ts";

/** The seed README's commands, as written (code/torch/README.md @ dfdafad). */
const SEED_README = `
python -m models.bert --dataset SQuAD --model bert-base-uncased --num-workers 4 --batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0
python -m models.adapter_pooler --dataset SQuADH5 --model AP --num-workers 0 --batch-size 16 --epochs 1 --lr 2e-5 --l2 1.0
python -m models.sst --dataset SST --model SST --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_sst --dataset SSTH5 --model ap_sst --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.msr --dataset MSR --model msr --num-workers 0 --batch-size 16 --epochs 1 --lr 3e-5 --l2 1.0
python -m models.ap_msr --dataset MSRH5 --model ap_msr --num-workers 0 --batch-size 16 --epochs 1 --lr 3e-5 --l2 1.0
python -m models.rte --dataset RTE --model RTE --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_rte --dataset RTEH5 --model ap_rte --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.qnli --dataset qnli --model qnli --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_qnli --dataset QNLIH5 --model ap_qnli --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.qqpairs --dataset QQPairs --model QQPairs --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_qqpairs --dataset QQPairs --model ap_qqpairs --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.stsb --dataset STSB --model STSB --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_stsb --dataset STSBH5 --model ap_stsb --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.cola --dataset COLA --model COLA --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.ap_cola --dataset COLAH5 --model ap_cola --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5
python -m models.mnli --dataset MNLI --model MNLI --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5 --l2 1.0
python -m models.ap_mnli --dataset MNLIH5 --model ap_mnli --num-workers 0 --batch-size 16 --epochs 1 --lr 1e-5 --l2 1.0
`.trim().split("\n");

/** What each command must become: our command, task, model and the settings it carries. */
const WANT: [string, string, string, Record<string, string>][] = [
  ["squad", "squad", "bert", { lr: "2e-5", l2: "1.0", "num-workers": "4" }],
  ["squad", "squad", "ap", { lr: "2e-5", l2: "1.0" }],
  ["glue", "sst2", "bert", { lr: "1e-5", l2: "0.01" }],
  ["glue", "sst2", "ap", { lr: "1e-5", l2: "0.01" }],
  ["glue", "mrpc", "bert", { lr: "3e-5", l2: "1.0", "dev-split": "msr_test" }],
  ["glue", "mrpc", "ap", { lr: "3e-5", l2: "1.0" }],
  ["glue", "rte", "bert", { lr: "1e-5" }],
  ["glue", "rte", "ap", { lr: "1e-5" }],
  ["glue", "qnli", "bert", { lr: "1e-5" }],
  ["glue", "qnli", "ap", { lr: "1e-5" }],
  ["glue", "qqp", "bert", { lr: "1e-5" }],
  ["glue", "qqp", "ap", { lr: "1e-5" }],
  ["glue", "stsb", "bert", { lr: "1e-5" }],
  ["glue", "stsb", "ap", { lr: "1e-5" }],
  ["glue", "cola", "bert", { lr: "1e-5" }],
  ["glue", "cola", "ap", { lr: "1e-5" }],
  ["glue", "mnli", "bert", { lr: "1e-5", l2: "1.0" }],
  ["glue", "mnli", "ap", { lr: "1e-5", l2: "1.0" }],
];

const dir = await Deno.makeTempDir({ prefix: "seed_test_" });
const data = `${dir}/glue_data`, h5 = `${dir}/h5py_embeds`;
await Deno.mkdir(h5);
const words = [...new Set([...builtinVocab(), ...syntheticSquadWords()])];
await Deno.writeTextFile(`${dir}/vocab.txt`, words.join("\n") + "\n");
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 4,
  layers: 1,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  vocab: `${dir}/vocab.txt`,
  maxPositions: 512,
});
await writeSyntheticSst2(data, { train: 32, dev: 16, seed: 2 });
await writeSyntheticSquad(data, "train-v2.0", { articles: 4, seed: 1 });
await writeSyntheticSquad(data, "dev-v2.0", { articles: 2, seed: 2 });
for (const split of ["train", "dev"]) {
  await capture({
    model: `${dir}/bert`,
    task: "squad",
    split,
    dataDir: data,
    out: `${h5}/${split}.h5`,
    maxSeqLength: 24,
    silent: true,
  });
}

/** The seed's three-file store of a split (gen_embeds @ dfdafad), tiny: 8 rows, 3 layers. */
await h5wasm.ready;
function seedStore(prefix: string, labels: number, float = false): void {
  const n = 8, shape = [n, 3, 4, 8];
  const put = (
    file: string,
    name: string,
    d: Float32Array | BigInt64Array,
    s: number[],
    t: string,
  ) => {
    const f = new h5wasm.File(`${h5}/${file}`, "w");
    f.create_dataset({
      name,
      data: d,
      shape: s,
      maxshape: [null, ...s.slice(1)],
      chunks: [1, ...s.slice(1)],
      dtype: t,
    })
      .create_attribute("last_index", n, null, "<q");
    f.close();
  };
  put(
    `${prefix}_bert_embeds.h5`,
    "embeds",
    new Float32Array(n * 96).map((_, i) => Math.sin(i)),
    shape,
    "<f",
  );
  put(
    `${prefix}_labels.h5`,
    "labels",
    float
      ? Float32Array.from({ length: n }, (_, i) => i % 5)
      : BigInt64Array.from({ length: n }, (_, i) => BigInt(i % labels)),
    [n],
    float ? "<f" : "<q",
  );
  put(`${prefix}_idx.h5`, "idx", BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [n], "<q");
}
for (
  const [p, k] of [["sst", 2], ["msr", 2], ["rte", 2], ["qnli", 2], ["qqpairs", 2], [
    "cola",
    2,
  ]] as const
) {
  seedStore(p, k);
  seedStore(`${p}_dev`, k);
}
seedStore("stsb", 1, true);
seedStore("stsb_dev", 1, true);
for (const p of ["mnli", "mnli_dev_matched", "mnli_dev_mismatched"]) seedStore(p, 3);

/** Runs our command's dry-run in this process and returns what it printed. */
async function dryRun(command: string, args: string[]): Promise<string> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(" "));
  try {
    await glueMain([...args, "--quiet"], command);
  } finally {
    console.log = log;
  }
  return lines.join("\n");
}

// bert-base-uncased is not cached here; the kernel tuning measured before is kept.
const tuning = `${cacheRoot()}/tuning.json`;
await Deno.mkdir(`${dir}/cache`);
await Deno.copyFile(tuning, `${dir}/cache/tuning.json`).catch(() => {});
Deno.env.set("BERTVISION_CACHE", `${dir}/cache`);

Deno.test("every command of the seed's README translates and dry-runs", async () => {
  deepStrictEqual(SEED_README.length, 18);
  for (const [i, line] of SEED_README.entries()) {
    const [command, task, model, want] = WANT[i];
    // SQuAD's head re-featurizes its dev file with the tokenizer of the BERT it was captured from.
    const bert = task === "squad" && model === "ap" ? `${dir}/bert` : undefined;
    const t = translateSeed(line.split(" "), { dataDir: data, h5Dir: h5, dryRun: true, bert });
    const flag = (f: string) => t.args[t.args.indexOf(`--${f}`) + 1];
    deepStrictEqual(t.command, command, line);
    if (command === "glue") deepStrictEqual(flag("task"), task, line);
    deepStrictEqual(flag("model"), model, line);
    for (const [f, v] of Object.entries(want)) deepStrictEqual(flag(f), v, `${line}: --${f}`);
    // The seed's parser's defaults, passed as values: nothing left to our presets' choice.
    for (const f of ["batch-size", "epochs", "seed", "patience", "warmup-proportion", "l2"]) {
      ok(t.args.includes(`--${f}`), `${line}: --${f} missing from ${t.args.join(" ")}`);
    }
    ok(t.args.at(-1) === "--dry-run");
    const out = await dryRun(t.command, t.args);
    if (model === "bert") match(out, /^plan: .*bert-base-uncased/m, `${line}:\n${out}`);
    else {
      match(out, /^plan:/m, `${line}:\n${out}`);
      match(out, new RegExp(`train ${task} head`), `${line}:\n${out}`);
    }
    if (task === "mnli" && model === "ap") match(out, /dev_matched[^]*dev_mismatched/, out);
  }
});

Deno.test("deno task seed prints the translation, then runs it (a tiny BERT for the seed's)", async () => {
  const r = await runCli("seed.ts", [
    "--dry-run",
    "--data-dir",
    data,
    "--bert",
    `${dir}/bert`,
    "--out",
    `${dir}/runs/sst2`,
    "--",
    ...SEED_README[2].split(" "),
  ]);
  deepStrictEqual(r.code, 0, r.err);
  const [seedLine, isLine] = r.out.split("\n");
  deepStrictEqual(seedLine, `seed: ${SEED_README[2]}`);
  match(isLine, /^is: {3}deno task glue --task sst2 --model bert --bert \S+\/bert --data-dir /);
  match(r.out, /note: --num-workers 0: tokenization workers here/);
  match(r.out, /note: --model SST: a name only/);
  match(r.out, /fine-tune sst2: 32 rows/);
  match(r.out, /settings: lr 1e-5 \(--lr\)/);
  // One quoted string, as pasted, reads the same.
  const one = splitArgs(["--", SEED_README[3]]);
  deepStrictEqual(translateSeed(one.seed, one.ours).args[1], "sst2");
});

Deno.test("the seed's refusals name the flag and the module", () => {
  const bad = (line: string, re: RegExp) =>
    throws(
      () => translateSeed(line.split(" ")),
      (e: Error) => e instanceof UsageError && re.test(e.message),
    );
  bad(
    "python -m models.sst --model SST --bogus 1",
    /models\.sst: unrecognized arguments: --bogus; .*models\/sst\/args\.py @ dfdafad/,
  );
  bad(
    "python -m models.sst --model SST --lr fast",
    /models\.sst: argument --lr: invalid float value: 'fast'/,
  );
  bad(
    "python -m models.ap_sst --model x --dataset SST",
    /models\.ap_sst: argument --dataset: invalid choice: 'SST' \(choose from 'SSTH5'\)/,
  );
  bad(
    "python -m models.sst --model SST --dataset MSR",
    /models\.sst: --dataset MSR is not in its dataset_map \(SST\)/,
  );
  bad(
    "python -m models.sst --dataset SST",
    /models\.sst: the following arguments are required: --model/,
  );
  bad(
    "python -m models.sst --model SST --l 1",
    /models\.sst: ambiguous option: --l could match --lr, --l2, --log-every/,
  );
  bad(
    "python -m models.sst --model SST --is-multilabel",
    /models\.sst: --is-multilabel makes the seed's run SST-5/,
  );
  bad(
    "python -m models.ap_cola --model x --num_labels 3",
    /models\.ap_cola: --num_labels 3: task cola has 2 labels/,
  );
  bad("python -m models.nope --model x", /models\.nope: not a module of the seed's README/);
  bad(
    "python -m models.ap_glue --model AP_SST --checkpoint bert-base-uncased",
    /models\.ap_glue: a module the seed added after its README's published numbers/,
  );
  // argparse's abbreviations and --flag=value are the seed's too.
  const t = translateSeed("python -m models.rte --model=RTE --batch 8 --warmup 0.2".split(" "));
  deepStrictEqual([
    t.args[t.args.indexOf("--batch-size") + 1],
    t.args[t.args.indexOf("--warmup-proportion") + 1],
  ], ["8", "0.2"]);
  // Not given: the seed's parser's default (models/args.py @ dfdafad: --lr 3e-5), not our preset.
  deepStrictEqual(t.args[t.args.indexOf("--lr") + 1], "3e-5");
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
