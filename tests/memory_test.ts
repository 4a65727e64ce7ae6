// Bounded memory and device errors, end to end.
// - A whole reproduction with uneven batches (the last batch of an epoch smaller, dev batches
//   of other sizes): the GPU bytes held (live + pooled) never exceed twice the planner's largest
//   stage peak, and the training logs record the bytes held.
// - An out-of-memory error (the device's test hook: real GPU memory is host memory on llvmpipe)
//   stops the command at once with one line naming the stage, the batch and the fixes, no stack
//   trace, and leaves a checkpoint written before it untouched.
import { deepStrictEqual, match, ok } from "node:assert/strict";
import { gpu, initGpu } from "../model/tensor.ts";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { planReproduce, reproduce } from "../train/reproduce.ts";
import { fineTune } from "../train/finetune.ts";

Deno.test("a reproduction's GPU bytes held stay within twice the planned peak", async () => {
  await initGpu();
  const dir = await Deno.makeTempDir();
  try {
    await makeTinyBert({
      out: `${dir}/bert`,
      seed: 2,
      layers: 2,
      hidden: 64,
      heads: 4,
      intermediate: 128,
      maxPositions: 64,
    });
    // 70 training rows in batches of 16 (the last 6), 26 dev rows in batches of 32 and 16.
    await writeSyntheticSst2(`${dir}/glue`, { train: 70, dev: 26, seed: 4 });
    const o = {
      task: "sst2",
      model: `${dir}/bert`,
      dataDir: `${dir}/glue`,
      out: `${dir}/results`,
      epochs: 2,
      captureAt: 1,
      batchSize: 16,
      lr: 1e-3,
      maxSeqLength: 48,
      apEpochs: 2,
      silent: true,
    };
    const plan = await planReproduce(o, false);
    const planned = Math.max(...plan.stages.map((s) => s.peakBytes));
    gpu().trimPool();
    gpu().resetPeak();
    await reproduce(o);
    const held = gpu().peakHeldBytes;
    ok(
      held <= 2 * planned,
      `held ${(held / 2 ** 20).toFixed(1)} MiB at the peak, planned ${
        (planned / 2 ** 20).toFixed(1)
      } MiB`,
    );
    for (const log of ["bert/train_log.jsonl", "ap/train_log.jsonl"]) {
      const lines = (await Deno.readTextFile(`${dir}/results/sst2/${log}`)).trim().split("\n")
        .map((l) => JSON.parse(l)).filter((e) => e.loss !== undefined);
      ok(lines.length > 0 && lines.every((e) => e.gpuBytes > 0 && e.gpuBytes <= held), log);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an out-of-memory error stops the command with the stage, the batch and the fixes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await makeTinyBert({
      out: `${dir}/bert`,
      seed: 2,
      layers: 1,
      hidden: 32,
      heads: 2,
      intermediate: 64,
      maxPositions: 64,
    });
    await writeSyntheticSst2(`${dir}/glue`, { train: 32, dev: 8, seed: 4 });
    const done = await fineTune({
      modelDir: `${dir}/bert`,
      task: "sst2",
      dataDir: `${dir}/glue`,
      outDir: `${dir}/ok`,
      maxSeqLength: 32,
      silent: true,
    });
    const ckpt = done.checkpoints["1"];
    const before = await Deno.readFile(`${ckpt}/model.safetensors`);
    const run = (script: string, args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL(`../scripts/${script}`, import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
        env: {
          XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp",
          BERTVISION_INJECT_OOM_AFTER_MIB: "1",
        },
      }).output();
    const ft = await run("glue.ts", [
      "--task",
      "sst2",
      "--bert",
      `${dir}/bert`,
      "--data-dir",
      `${dir}/glue`,
      "--max-seq-length",
      "32",
      "--out",
      `${dir}/oom`,
      "--quiet",
    ]);
    const err = new TextDecoder().decode(ft.stderr);
    deepStrictEqual(ft.code, 1, err);
    // The error surfaces asynchronously: the span since the device was last proven clean.
    match(err, /fine-tune sst2, batch steps? (1–)?[12] of 2: the GPU ran out of memory/);
    match(err, /--batch-size 8 \(now 16\); BERTVISION_MAX_BINDING_MIB=N .*; --dtype f16/);
    ok(!/\n\s+at /.test(err), `no stack trace: ${err}`);
    // A stage failing on the device leaves what is on disk alone: capture from the checkpoint.
    const cap = await run("capture.ts", [
      "--task",
      "sst2",
      "--model",
      ckpt,
      "--split",
      "train",
      "--data-dir",
      `${dir}/glue`,
      "--max-seq-length",
      "32",
      "--out",
      `${dir}/cap.h5`,
      "--quiet",
    ]);
    const capErr = new TextDecoder().decode(cap.stderr);
    deepStrictEqual(cap.code, 1, capErr);
    match(capErr, /capture sst2\/train, batch .*: the GPU ran out of memory/);
    deepStrictEqual(await Deno.readFile(`${ckpt}/model.safetensors`), before);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
