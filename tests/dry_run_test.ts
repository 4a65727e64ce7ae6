// `--dry-run` on capture, glue (BERT, heads from stores and from a stream) and reproduce: the
// plan is printed (rows, micro-batches, peak GPU bytes, bytes written, time from a warm-up) and
// nothing is written — the working folder holds the same files, byte for byte, before and after.
// BERTVISION_MAX_BINDING_MIB makes the plan split.
import { deepStrictEqual, match } from "node:assert/strict";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";

const dir = await Deno.makeTempDir({ prefix: "dry_run_test_" });
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 1,
  layers: 1,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  maxPositions: 64,
});
await writeSyntheticSst2(`${dir}/glue`, { train: 48, dev: 16, seed: 2 });

/** Every file under `root` with its size and modification time. */
async function snapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else {
        const st = await Deno.stat(p);
        out.push(`${p} ${st.size} ${st.mtime?.getTime()}`);
      }
    }
  };
  await walk(root);
  return out.sort();
}

async function run(script: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../scripts/${script}`, import.meta.url).pathname, ...args],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", ...env },
  }).output();
  return {
    code: out.code,
    out: new TextDecoder().decode(out.stdout),
    err: new TextDecoder().decode(out.stderr),
  };
}

const common = ["--task", "sst2", "--max-seq-length", "32", "--batch-size", "32", "--quiet"];

Deno.test("--dry-run prints the plan and writes nothing", async () => {
  const before = await snapshot(dir);
  const cases: [string, string[], RegExp[]][] = [
    [
      "capture.ts",
      [...common, "--model", `${dir}/bert`, "--split", "train", "--data-dir", `${dir}/glue`],
      [/capture sst2\/train: 48 rows/, /writes .* to .*out\.h5/, /free/],
    ],
    [
      "glue.ts",
      [...common, "--bert", `${dir}/bert`, "--data-dir", `${dir}/glue`],
      [
        /fine-tune sst2: 48 rows/,
        /batch 32 as 2 micro-batches of ≤ 16/,
        /≈ [\d.]+ s/,
        // The sst2 preset (the seed's `models.sst ... --lr 1e-5`) fills what was not given.
        /settings: lr 1e-5 \(preset\), l2 0\.01 \(preset\), batch 32 \(--batch-size\), epochs 1 \(preset\), warmup 0\.1 \(preset\), seed 1 \(preset\), patience 3 \(preset\)/,
        /preset sst2: python -m models\.sst --dataset SST /,
      ],
    ],
    [
      "glue.ts",
      [
        ...common,
        "--model",
        "ap",
        "--activations",
        "stream",
        "--bert",
        `${dir}/bert`,
        "--data-dir",
        `${dir}/glue`,
      ],
      [
        /train sst2 head .*: 48 rows/,
        /stream: one BERT forward per batch/,
        // Its precision and why, as fine-tuning's plan (the preset: f32 on a software adapter).
        /precision (f32|f16-mixed) \(preset: /,
        /settings: lr 1e-5 \(preset\), .*patience 3 \(preset\), .*bias-correction off \(preset\), .*decay-biases on \(preset\), adapter 32 \(= --max-seq-length, preset\)/,
        /preset sst2: python -m models\.ap_sst --dataset SSTH5 /,
      ],
    ],
    [
      "reproduce.ts",
      [...common, "--model", `${dir}/bert`, "--data-dir", `${dir}/glue`],
      [
        /fine-tune sst2/,
        /capture train/,
        /capture dev/,
        /train BERTVision head/,
        /activations: store/,
        // The seed's settings for BERT and for the head (its AP command; adapter = the tokens).
        /fine-tune sst2[^]*settings: lr 1e-5 \(preset\), l2 0\.01 \(preset\), batch 32 \(--batch-size\), epochs 1 \(preset\)[^]*train BERTVision head[^]*settings: lr 1e-5 \(preset\), l2 0\.01 \(preset\), batch 32 \(--batch-size\), epochs 1 \(preset\), warmup 0\.1 \(preset\), seed 1 \(preset\), patience 3 \(preset\), .*decay-biases on \(preset\), adapter 32 \(= the head's tokens, preset\)/,
        // Each preset value's place in the seed's code, and --max-seq-length for both stages.
        /seed's code: .*bias-correction: models\/<module>\/__main__\.py@0c7e25c/,
        /tokens: BERT 32 \(--max-seq-length\), head 32 \(--max-seq-length\)/,
      ],
    ],
  ];
  for (const [script, args, want] of cases) {
    const outArgs = script === "capture.ts"
      ? ["--out", `${dir}/out/out.h5`]
      : ["--out", `${dir}/out`];
    // 0.0625 MiB: the attention scores of 32 tokens (2·32²·4 = 8 KiB a row) split 32 rows in 2.
    const r = await run(script, [...args, ...outArgs, "--dry-run"], {
      BERTVISION_MAX_BINDING_MIB: "0.125",
    });
    deepStrictEqual(r.code, 0, `${script} ${args.join(" ")}: ${r.err}`);
    match(r.out, /^plan:/m, r.out);
    for (const re of want) match(r.out, re, `${script}: ${r.out}`);
    deepStrictEqual(await snapshot(dir), before, `${script} --dry-run wrote something`);
  }
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
