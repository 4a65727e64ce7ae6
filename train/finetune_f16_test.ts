// --precision f16-mixed end to end on a tiny BERT (train/finetune.ts under model/ops.ts
// `autocast` and model/optim.ts `GradScaler`): on a generated task with noisy labels, which
// float32 does not learn perfectly, mixed precision follows the float32 run (loss curve and dev
// accuracy within the tolerances stated below); killed and resumed mid-run, it ends with the
// same weights (and loss scale) as an uninterrupted mixed run; the plan names the precision.
import { deepStrictEqual, ok } from "node:assert/strict";
import { makeTinyBert } from "../model/init.ts";
import { fineTune, planFineTune } from "./finetune.ts";
import { loadBertCheckpoint } from "../model/checkpoint.ts";
import { readSafetensors } from "../model/safetensors.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { sharedDir } from "../tests/helpers.ts";

const shared = sharedDir();

/** Generated SST-2 with every `every`-th label flipped (train and dev): no perfect score. */
async function noisySst2(dir: string, every: number): Promise<void> {
  await writeSyntheticSst2(dir, { train: 64, dev: 32, seed: 4 });
  for (const split of ["train", "dev"]) {
    const path = `${dir}/SST-2/${split}.tsv`;
    const [head, ...rows] = (await Deno.readTextFile(path)).trimEnd().split("\n");
    const flipped = rows.map((r, i) => {
      if (i % every !== 3) return r;
      const t = r.lastIndexOf("\t");
      return `${r.slice(0, t)}\t${1 - Number(r.slice(t + 1))}`;
    });
    await Deno.writeTextFile(path, [head, ...flipped].join("\n") + "\n");
  }
}

const dir = await Deno.makeTempDir();
await makeTinyBert({
  out: `${dir}/bert`,
  seed: 6,
  layers: 2,
  hidden: 32,
  heads: 2,
  intermediate: 64,
  maxPositions: 64,
  // The real vocabulary when ../shared has it (the generated words are single pieces there).
  vocab: shared ? `${shared}/data/bert-base-uncased/vocab.txt` : undefined,
});
await noisySst2(`${dir}/glue`, 5);
const common = {
  modelDir: `${dir}/bert`,
  task: "sst2",
  dataDir: `${dir}/glue`,
  batchSize: 8,
  epochs: 6,
  lr: 1e-2,
  maxSeqLength: 24,
  dropout: 0,
  seed: 2,
  logEvery: 4,
  silent: true,
};

Deno.test("f16-mixed fine-tuning follows the float32 run on a task f32 does not learn perfectly", async () => {
  const f32 = await fineTune({ ...common, outDir: `${dir}/f32`, precision: "f32" });
  const mixed = await fineTune({ ...common, outDir: `${dir}/mixed`, precision: "f16-mixed" });
  const a32 = f32.dev["6"].accuracy, a16 = mixed.dev["6"].accuracy;
  const final32 = f32.losses.at(-1)!.loss;
  ok(final32 < 0.5, `float32 training loss ${final32}: the runs should learn something`);
  ok(a32 < 1, `float32 dev accuracy ${a32}: the task should not be learned perfectly`);
  deepStrictEqual(mixed.losses.map((l) => l.step), f32.losses.map((l) => l.step));
  // Tolerances. f16 operands move each matmul by ≤ 2^-10 relative per product, so for the first
  // steps the loss windows agree to about 1e-3; once the model starts fitting (step ~25) the two
  // runs take slightly different paths, as two float32 runs with other summation orders do.
  // Measured on llvmpipe: windows (means of 4 steps) within 0.07, dev accuracy within 1 of 32.
  // Stated: windows within 0.1 (0.01 for the first 16 steps), dev accuracy within 4 of 32.
  mixed.losses.forEach((l, i) => {
    const ref = f32.losses[i].loss;
    const tol = l.step <= 16 ? 0.01 : 0.1;
    ok(Math.abs(l.loss - ref) <= tol, `step ${l.step}: loss ${l.loss} vs f32 ${ref}`);
  });
  ok(Math.abs(a16 - a32) <= 4 / 32 + 1e-9, `dev accuracy ${a16} vs f32 ${a32}`);
});

Deno.test("f16-mixed: killed mid-run and resumed, the same weights and loss scale", async () => {
  const o = {
    ...common,
    epochs: 2,
    precision: "f16-mixed" as const,
    saveAt: [1, 2],
    noEval: true,
  };
  const full = await fineTune({ ...o, outDir: `${dir}/full` });
  const cut = await fineTune({ ...o, outDir: `${dir}/cut`, stopAfterSteps: 11 }); // ckpt at 8
  ok(cut.stopped);
  const resumed = await fineTune({ ...o, outDir: `${dir}/cut` });
  ok(resumed.resumed);
  const a = await loadBertCheckpoint(full.checkpoints["2"]);
  const b = await loadBertCheckpoint(resumed.checkpoints["2"]);
  for (const [name, w] of a.weights) deepStrictEqual(b.weights.get(name)!.data, w.data, name);
  deepStrictEqual(b.extra.get("classifier.weight")!.data, a.extra.get("classifier.weight")!.data);
  const ma = (await readSafetensors(`${full.checkpoints["2"]}/optimizer.safetensors`)).metadata;
  const mb = (await readSafetensors(`${resumed.checkpoints["2"]}/optimizer.safetensors`)).metadata;
  deepStrictEqual(
    [mb.lossScale, mb.lossScaleGrowthTracker, mb.lossScaleSteps],
    [ma.lossScale, ma.lossScaleGrowthTracker, ma.lossScaleSteps],
  );
  deepStrictEqual(ma.lossScaleGrowthTracker, "16"); // 16 steps, none overflowed
  deepStrictEqual(ma.lossScale, "65536");
});

Deno.test("the plan names the precision and why", async () => {
  // With dropout, as fine-tuning runs (the dropped attention probabilities' f16 copy replaces
  // their float32 one).
  const plan = { ...common, outDir: `${dir}/plan`, dropout: 0.1 };
  const [f32] = await planFineTune(plan, false);
  // This machine's adapter (llvmpipe, or SwiftShader in CI) is software: the preset is f32.
  ok(f32.notes!.some((n) => /^precision f32 \(preset: .* software adapter\)$/.test(n)));
  const [mixed] = await planFineTune({ ...plan, precision: "f16-mixed" }, false);
  ok(mixed.notes!.some((n) => n.startsWith("precision f16-mixed (given")), `${mixed.notes}`);
  // The f16 copies the backward keeps in place of float32 activations are counted.
  ok(mixed.peakBytes < f32.peakBytes, `${mixed.peakBytes} vs ${f32.peakBytes}`);
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* gone */ }
});
