// The seed's settings as presets (train/presets.ts): each value is the one its command gives,
// read back from the command text beside it; the seed's defaults fill the rest; given values
// win and the plan names where each came from. Early stopping's counter (train/loop.ts). No GPU.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import {
  describeSettings,
  presetFor,
  resolveSettings,
  SEED_DEFAULTS,
  SEED_PRESETS,
  seedSettings,
} from "./presets.ts";
import { FINETUNE_DEFAULTS } from "./defaults.ts";
import { EarlyStopping, mainMetric } from "./loop.ts";
import { TASK_NAMES } from "../tasks/mod.ts";

/** `--flag value` of a command line, as a number (undefined when the flag is not there). */
function flagOf(command: string, flag: string): number | undefined {
  const m = command.match(new RegExp(`(?:^| )${flag} (\\S+)`));
  return m ? Number(m[1]) : undefined;
}

Deno.test("every preset's values are its command's, the seed's defaults where it gives none", () => {
  // The list of the seed's commands.
  const want: Record<string, [number, number]> = {
    squad: [2e-5, 1.0],
    sst2: [1e-5, 0.01],
    mrpc: [3e-5, 1.0],
    rte: [1e-5, 0.01],
    qnli: [1e-5, 0.01],
    qqp: [1e-5, 0.01],
    stsb: [1e-5, 0.01],
    cola: [1e-5, 0.01],
    mnli: [1e-5, 1.0],
    wnli: [3e-5, 0.01], // no README command: models/args.py's defaults
  };
  deepStrictEqual(Object.keys(SEED_PRESETS).sort(), Object.keys(want).sort());
  for (const name of TASK_NAMES) ok(presetFor(name), `task ${name} has a preset`);
  for (const [task, [lr, l2]] of Object.entries(want)) {
    const p = SEED_PRESETS[task];
    for (const stage of ["bert", "ap"] as const) {
      const c = p[stage];
      const s = seedSettings(task, stage);
      deepStrictEqual([s.lr, s.l2, s.batchSize, s.epochs], [lr, l2, 16, 1], `${task} ${stage}`);
      if (c.command.startsWith("(none")) continue;
      // The numbers are the command's own (the seed's default where it gives no --l2), each
      // said to come from the README's command.
      deepStrictEqual(flagOf(c.command, "--lr"), s.lr, c.command);
      deepStrictEqual(flagOf(c.command, "--l2") ?? SEED_DEFAULTS.l2, s.l2, c.command);
      deepStrictEqual(flagOf(c.command, "--batch-size"), s.batchSize, c.command);
      deepStrictEqual(flagOf(c.command, "--epochs"), s.epochs, c.command);
      ok(c.values.lr!.from.startsWith("README"), c.values.lr!.from);
      if (stage === "bert") ok(c.command.includes(`--dataset ${p.dataset} `), c.command);
    }
    // The AP command repeats the BERT command's values; its optimizer decays every parameter.
    const bert = seedSettings(task, "bert"), ap = seedSettings(task, "ap");
    deepStrictEqual({ ...ap, decayBiases: false, earlyStop: "metric" }, bert, task);
    deepStrictEqual([bert.decayBiases, ap.decayBiases], [false, true], task);
    deepStrictEqual(bert, { ...SEED_DEFAULTS, lr, l2, batchSize: 16, epochs: 1 });
  }
  deepStrictEqual(
    [SEED_DEFAULTS.l2, SEED_DEFAULTS.seed, SEED_DEFAULTS.warmupProportion, SEED_DEFAULTS.patience],
    [0.01, 1, 0.1, 3],
  );
  // A task the seed did not run: its defaults.
  deepStrictEqual(seedSettings("topics", "ap"), { ...SEED_DEFAULTS });
});

Deno.test("given settings win; the rest come from the preset, or without it the defaults", () => {
  const r = resolveSettings("mrpc", "bert", { lr: 5e-5, batchSize: 32 }, true, FINETUNE_DEFAULTS);
  deepStrictEqual(r.values, {
    lr: 5e-5,
    l2: 1.0,
    batchSize: 32,
    epochs: 1,
    warmupProportion: 0.1,
    seed: 1,
    patience: 3,
    earlyStop: "metric",
    biasCorrection: false,
    adamEps: 1e-6,
    maxGradNorm: 0,
    decayBiases: false,
  });
  deepStrictEqual(r.from.lr, "given");
  deepStrictEqual(r.from.l2, "preset");
  const lines = describeSettings(r);
  deepStrictEqual(
    lines[0],
    "settings: lr 5e-5 (--lr), l2 1.0 (preset), batch 32 (--batch-size), epochs 1 (preset), " +
      "warmup 0.1 (preset), seed 1 (preset), patience 3 (preset), early-stop metric (preset), " +
      "bias-correction off (preset), eps 1e-6 (preset), max-grad-norm off (preset), " +
      "decay-biases off (preset)",
  );
  ok(lines[1].startsWith("preset mrpc: python -m models.msr --dataset MSR"), lines[1]);
  // Where in the seed's code each preset value is (the given ones are the flags').
  ok(lines[2].startsWith(`seed's code: l2, epochs: README "models.msr ..."@0c7e25c; `), lines[2]);
  ok(lines[2].includes("bias-correction: models/<module>/__main__.py@0c7e25c"), lines[2]);
  ok(!/\blr\b|batch/.test(lines[2]), lines[2]);
  // Without the preset: the library's defaults, only the settings' keys.
  const d = resolveSettings("mrpc", "bert", { patience: 0 }, false, FINETUNE_DEFAULTS);
  deepStrictEqual(Object.keys(d.values).sort(), Object.keys(r.values).sort());
  deepStrictEqual([d.values.lr, d.values.seed, d.from.lr], [FINETUNE_DEFAULTS.lr, 42, "default"]);
  // The library's own defaults: torch's AdamW, BERT's eps, clipping at 1.
  deepStrictEqual(
    [d.values.biasCorrection, d.values.adamEps, d.values.maxGradNorm, d.values.decayBiases],
    [true, 1e-8, 1, false],
  );
  ok(describeSettings(d)[0].includes("patience off (--patience)"));
  deepStrictEqual(describeSettings(d).length, 1);
});

Deno.test("early stopping counts evaluations without improvement, as the seed's trainers do", () => {
  // A value that never improves: the first evaluation is the best, N more stop training.
  for (const patience of [1, 2, 3]) {
    const e = new EarlyStopping("accuracy", patience);
    let n = 0;
    while (!e.stop && n < 10) e.add(String(++n), 0.5);
    deepStrictEqual(n, patience + 1);
    deepStrictEqual([e.state.best!.at, e.state.stoppedAt], ["1", String(patience + 1)]);
  }
  // An improvement resets the count; a tie is no improvement (the seed's strict `<`).
  const e = new EarlyStopping("f1", 2);
  const seq = [0.5, 0.4, 0.6, 0.6, 0.55];
  const better = seq.map((v, i) => e.add(String(i + 1), v));
  deepStrictEqual(better, [true, false, true, false, false]);
  deepStrictEqual([e.state.best, e.state.stoppedAt], [{ at: "3", value: 0.6 }, "5"]);
  // NaN (a constant predictor's correlation) never beats a number; a number beats NaN.
  const nan = new EarlyStopping("pearson", 5);
  deepStrictEqual([nan.add("1", NaN), nan.add("2", 0.1), nan.add("3", NaN)], [true, true, false]);
  // Patience 0 never stops.
  const never = new EarlyStopping("accuracy", 0);
  for (let i = 0; i < 20; i++) never.add(String(i), 0);
  ok(!never.stop);
  throws(() => new EarlyStopping("accuracy", -1), /patience must be an integer ≥ 0/);
  // On the dev loss (`--early-stop loss`, the seed's ap_cola): lower is better.
  const loss = new EarlyStopping("dev_loss", 1, true);
  deepStrictEqual([0.7, 0.5, 0.6].map((v, i) => loss.add(String(i + 1), v)), [true, true, false]);
  deepStrictEqual([loss.state.best, loss.state.stoppedAt, loss.state.lowerIsBetter], [
    { at: "2", value: 0.5 },
    "3",
    true,
  ]);
  // The main metric: the task's primary one when present, else the first.
  deepStrictEqual(mainMetric({ f1: 2, accuracy: 1 }, "accuracy"), { key: "accuracy", value: 1 });
  deepStrictEqual(mainMetric({ start_accuracy: 3 }, "f1"), { key: "start_accuracy", value: 3 });
});
