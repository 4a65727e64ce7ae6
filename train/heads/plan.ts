/**
 * The plan of a head-training run (`--dry-run`).
 * @module
 */
import { BvHead, describeConfig, headParamCount, resolveHeadConfig } from "../../model/heads.ts";
import { backward, initGpu, scope } from "../../model/tensor.ts";
import { autocast } from "../../model/ops.ts";
import { kindOf, resolveTask } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { describeSettings } from "../presets.ts";
import { squadPlanLines } from "../squad_settings.ts";
import { limitsOf, splitBatch, type StagePlan } from "../plan.ts";
import { StreamSource } from "../sources.ts";
import { batchesPerEpoch, stepsFor } from "../loop.ts";
import {
  adapterDimFor,
  headConfigFor,
  headF16FixedBytes,
  headF16RowBytes,
  headPrecisionLine,
  headRowTensors,
  headSettings,
} from "./config.ts";
import { resumePrecision } from "../precision.ts";
import { foundHead } from "./output.ts";
import type { TrainApOptions } from "./options.ts";
import { openSources } from "./open.ts";
import { layerMeansBytes } from "./run.ts";

/**
 * The plan of a head-training run (`--dry-run`): rows, micro-batches, peak GPU bytes, and with
 * `time` seconds estimated from one measured training micro-batch (the stream's BERT forward
 * included). Opens the stores or loads the stream's model and data; writes nothing. Its second
 * note (after the source) names the precision and why; f16-mixed's peak counts the f16 copies
 * the head's matmuls keep (config.ts {@linkcode headF16RowBytes}, {@linkcode headF16FixedBytes}).
 */
export async function planHeads(opts: TrainApOptions, time = true): Promise<StagePlan[]> {
  const gpu = await initGpu();
  const task = resolveTask(opts.task);
  const kind = kindOf(task);
  const resolved = headSettings(task, opts);
  // As the run resolves it (pass.ts): given, else that of a head finished in the output, else the
  // preset.
  const precision = typeof opts.precision === "object"
    ? opts.precision
    : resumePrecision(gpu, opts.precision, opts.overwrite ? null : await foundHead([opts.outDir]));
  const mixed = precision.precision === "f16-mixed";
  const o = {
    ...HEAD_DEFAULTS,
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    ...resolved.values,
  } as typeof HEAD_DEFAULTS & TrainApOptions;
  const { train, devs, notes: rowsNotes } = await openSources(task, o);
  try {
    const config = resolveHeadConfig(
      headConfigFor(train.shape, kind, { ...o, adapterDim: adapterDimFor(opts, train.shape) }),
    );
    const adapter = config.pooling !== "ap" ? [] : [
      `adapter ${config.adapterDim} (${
        opts.adapterDim !== undefined
          ? "--adapter-dim"
          : opts.preset
          ? "= --max-seq-length, preset"
          : kind.readout === "token"
          ? "= the token count, default"
          : "default"
      })`,
    ];
    const limits = limitsOf(gpu, o.maxBindingMiB);
    const stage = `train ${task.name} head`;
    const rowTensors = [...train.rowTensors(), ...headRowTensors(config)];
    const headRowBytes = headRowTensors(config).reduce((a, t) => a + t.bytesPerRow, 0);
    // The head's weights, grads, m, v and the sum of its first epoch's rows (its layer means);
    // f16-mixed: the f16 copies its matmuls keep (weights: fixed; operands: per row).
    const means = layerMeansBytes(train.shape);
    const f16Fixed = mixed ? headF16FixedBytes(config) : 0;
    const f16Row = mixed ? headF16RowBytes(config) : 0;
    const split = splitBatch(stage, o.batchSize, rowTensors, limits, {
      fixed: 16 * headParamCount(config) + means + train.peakBytes(0) + f16Fixed,
      perRow: train.peakBytes(1) - train.peakBytes(0) + 3 * headRowBytes + f16Row,
    });
    const n = Math.max(1, Math.round(train.shape.n * o.trainFraction));
    const steps = stepsFor(o.epochs, batchesPerEpoch(n, o.batchSize));
    // Per row: the source's rows (the layers' states) and the head's own tensors; beyond them
    // a source holds, for `m` rows, nothing (a store) or its BERT's weights and float32 forward
    // (a stream, sources.ts peakBytes: live while the head trains).
    const inputRow = train.rowTensors()[0].bytesPerRow;
    const perRow = inputRow + headRowBytes;
    const fixed = 4 * 4 * headParamCount(config);
    const model = (src: typeof train, m: number) =>
      src.peakBytes(m) - m * src.rowTensors()[0].bytesPerRow;
    const plan: StagePlan[] = [{
      stage: `${stage} ${describeConfig(config)}`,
      rows: n,
      split,
      peakBytes: fixed + f16Fixed + means + model(train, split.micro) +
        (3 * perRow + f16Row) * split.micro,
      notes: [
        `from ${train.name}` +
        (train instanceof StreamSource
          ? ` (stream: one BERT forward per batch, every epoch; nothing written)`
          : ""),
        headPrecisionLine(precision, train instanceof StreamSource),
        `${steps} steps`,
        ...describeSettings(resolved, {}, adapter),
        ...squadPlanLines(task, opts.squad ?? opts.stream?.squad, !!opts.preset),
        ...(rowsNotes ?? []),
      ],
    }];
    for (const { source: dev } of devs) {
      plan.push({
        stage: `evaluate ${task.name} head`,
        rows: dev.shape.n,
        split: splitBatch(stage, o.evalBatchSize, rowTensors, limits, {
          fixed: 16 * headParamCount(config) + dev.peakBytes(0),
          perRow: dev.peakBytes(1) - dev.peakBytes(0) + 2 * headRowBytes,
        }),
        peakBytes: fixed + model(dev, Math.min(o.evalBatchSize, split.micro)) +
          2 * perRow * Math.min(o.evalBatchSize, split.micro),
        notes: [`from ${dev.name}`],
      });
    }
    if (time) {
      const head = BvHead.create(config, o.seed);
      const rows = Int32Array.from({ length: Math.min(split.micro, train.shape.n) }, (_, i) => i);
      const once = async () => {
        scope(() => {
          const data = train.take(rows);
          const run = () => kind.loss(head.forward(data.x), data.labels, (i) => `row ${i}`);
          backward(mixed ? autocast(run) : run());
        });
        for (const p of head.parameters()) {
          p.grad?.dispose();
          p.grad = null;
        }
        await gpu.sync();
      };
      try {
        await once();
        const t0 = performance.now();
        await once();
        const sec = (performance.now() - t0) / 1000 * (split.micro / rows.length);
        plan[0].seconds = sec * split.parts * steps;
        devs.forEach((d, i) => {
          plan[1 + i].seconds = sec / 2 * Math.ceil(d.source.shape.n / split.micro);
        });
      } finally {
        head.dispose();
      }
    }
    return plan;
  } finally {
    train.close();
    for (const d of devs) d.source.close();
  }
}
