// reproduce's capture stage is planned by capture's own memory plan (train/capture.ts
// `captureMemory`, `captureRowBytes`): for the same model, rows, tokens, layout, store dtype and
// batch size, its micro-batch and peak GPU bytes equal `capture --dry-run`'s (float32 and f16
// stores, full and cls layouts), so the two plans cannot drift apart. capture --dry-run under
// f16-mixed times its forward as the capture runs it (under autocast) and says the time.
import { deepStrictEqual, match, ok } from "node:assert/strict";
import { tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { planReproduce } from "../train/reproduce.ts";
import { planCapture, prepareCapture } from "../train/capture.ts";
import { RowsCache } from "../train/rows.ts";

Deno.test("reproduce's capture stage plans the peak and micro-batch capture plans (f32 and f16 stores)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "reproduce_capture_plan_" });
  try {
    await tinyTestBert(`${dir}/bert`);
    await writeSyntheticSst2(`${dir}/glue`, { train: 40, dev: 12, seed: 4 });
    const rows = new RowsCache();
    const common = { model: `${dir}/bert`, dataDir: `${dir}/glue`, maxSeqLength: 24, rows };
    for (const [layout, dtype] of [["full", "f32"], ["full", "f16"], ["cls", "f16"]] as const) {
      const { stages } = await planReproduce({
        ...common,
        task: "sst2",
        out: `${dir}/rep`,
        batchSize: 16,
        epochs: 1,
        activations: "store",
        layout,
        dtype,
        silent: true,
      }, false);
      for (const split of ["train", "dev"]) {
        const stage = stages.find((s) => s.stage === `capture ${split} (${layout}, ${dtype})`);
        ok(stage, `${split}: ${stages.map((s) => s.stage).join("; ")}`);
        const cap = await prepareCapture({
          ...common,
          task: "sst2",
          split,
          out: `${dir}/cap_${split}.h5`,
          layout,
          dtype,
          batchSize: 16,
          silent: true,
        });
        const what = `${split} ${layout} ${dtype}`;
        deepStrictEqual(stage.rows, cap.plan.rows, what);
        deepStrictEqual(stage.split.micro, cap.split.micro, what);
        deepStrictEqual(stage.split.largest, cap.split.largest, what);
        deepStrictEqual(stage.peakBytes, cap.plan.peakBytes, what);
      }
    }
    // The time from a forward in the capture's precision (autocast: f16 operands).
    const timed = await planCapture({
      ...common,
      task: "sst2",
      split: "dev",
      out: `${dir}/mixed.h5`,
      precision: "f16-mixed",
      batchSize: 16,
      silent: true,
    });
    match(timed, /\n\s+≈ [^\n]+\n\s+precision f16-mixed \(given/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
