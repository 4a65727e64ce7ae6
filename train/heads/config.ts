/**
 * A head's configuration and settings: its config from a source's shape and the head kind, its
 * per-row GPU tensors for the planner, its training settings (given, preset or defaults) and
 * the AP adapter size.
 * @module
 */
import { type HeadConfig, headParamShapes, type Pooling } from "../../model/heads.ts";
import { f16Bytes } from "../../kernels/cast.ts";
import type { Task, TaskKind } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { type ResolvedSettings, resolveSettings } from "../presets.ts";
import type { RowTensor } from "../plan.ts";
import type { SourceShape } from "../sources.ts";
import type { TrainApOptions } from "./options.ts";
import type { PrecisionChoice } from "../precision.ts";

/** The head config a source's shape, the task's head kind and the options imply. */
export function headConfigFor(
  shape: Pick<SourceShape, "layers" | "tokens" | "hidden" | "layout">,
  kind: TaskKind,
  o: { model?: Pooling; adapterDim?: number; shared?: boolean; skip?: boolean },
): HeadConfig {
  const s = shape;
  return {
    pooling: o.model ?? HEAD_DEFAULTS.model,
    readout: kind.readout,
    outputs: kind.outputs,
    layers: s.layers,
    tokens: s.layout === "full" ? s.tokens : 1,
    features: s.hidden,
    adapterDim: o.adapterDim, // default: model/heads.ts (the token count for token read-outs)
    shared: o.shared,
    skip: o.skip,
  };
}

/** Per-row GPU bytes of a head's own tensors (beyond its input), for the planner. */
export function headRowTensors(c: Required<HeadConfig>): RowTensor[] {
  const { layers: L, tokens: T, features: F, adapterDim: D } = c;
  return c.pooling === "ap"
    ? [
      { what: `adapter activations [${T}×${D}×${L}]`, bytesPerRow: 4 * T * D * L },
      // Per-layer adapters batch their Linears over the layers: the input permuted layers-first
      // (model/heads.ts `adapterPooler`), kept for the backward.
      ...(c.shared ? [] : [{
        what: `adapter input, layers first [${L}×${T}×${F}]`,
        bytesPerRow: 4 * L * T * F,
      }]),
    ]
    : [{
      what: `pooled features [${T}×${F}]`,
      bytesPerRow: 4 * T * F * (c.pooling === "lp" ? L : 1),
    }];
}

/**
 * What f16-mixed (model/ops.ts `autocast`) adds to a head's training step, per row, in GPU bytes:
 * an upper bound from the head's matmul operands (model/heads.ts `BvHead.forward`). With
 * X = L·T·F the input row, A the head's activations per row (AP: T·D·L adapter outputs; LP and
 * AvgP: T·F pooled features) and G its output per row (N pooled, N·T token):
 * - saved for the backward, f16 (2 bytes a value), one copy per tensor: the adapter's (or LP's)
 *   input, X (the float32 batch it copies stays alive: the source's rows); the shared adapter's
 *   matmul result, as GELU on it saves an f16 copy, A; the read-out's input, A; the skip
 *   read-out's input (the last layer), T·F;
 * - transient in the backward: the f16 copies of each matmul's gradient operand (two per
 *   read-out matmul, 2·2·G, and per skip 2·G; the adapter's, 2·A) and GELU's float32 widening of
 *   its saved f16 input, 4·A.
 * So 2·X + 2·A + 2·A + 4·G + 2·A + 4·A = 2·X + 10·A + 4·G, and with the skip read-out
 * 2·T·F + 2·G more, all counted at once although the transients come and go one by one. The float32 tensors the mixed step may free early (GELU's float32
 * input) are not subtracted: the bound only adds. Checked against the measured peak live bytes
 * of a mixed step by train/heads/plan_test.ts. The stream's BERT forward stays float32 (only the
 * head runs under autocast), so its bytes do not change.
 */
export function headF16RowBytes(c: Required<HeadConfig>): number {
  const { layers: L, tokens: T, features: F, adapterDim: D, outputs: N } = c;
  const X = L * T * F;
  const A = c.pooling === "ap" ? T * D * L : T * F;
  const G = c.readout === "token" ? N * T : N;
  const skip = c.readout === "token" && c.skip ? 2 * T * F + 2 * G : 0;
  return 2 * X + 10 * A + 4 * G + skip;
}

/**
 * What f16-mixed adds to a head's training step beyond its rows: the f16 copies of the matmul
 * weights (the adapter's, the read-outs', LP's layer weights), which live from the forward to
 * the backward, each packed as kernels/cast.ts `f16Bytes`; plus 4 bytes for each per-row f16
 * tensor of {@linkcode headF16RowBytes}, as a packed copy rounds its length up to two values.
 */
export function headF16FixedBytes(c: Required<HeadConfig>): number {
  let bytes = 0;
  for (const [name, shape] of headParamShapes(c)) {
    if (name.endsWith(".weight") || name === "pooling.layer_logits") {
      bytes += f16Bytes(shape.reduce((a, b) => a * b, 1));
    }
  }
  return bytes + 4 * 8;
}

/**
 * The precision line of a head-training plan and run: the precision, why, and for f16-mixed
 * what it changes (fine-tuning's plan, train/finetune.ts, says the same for BERT).
 */
export function headPrecisionLine(p: PrecisionChoice, stream: boolean): string {
  return `precision ${p.precision} (${p.why})` +
    (p.precision === "f16-mixed"
      ? ": the head's matmul operands in f16 with float32 accumulation and loss scaling; the " +
        "backward keeps f16 copies of the matmul operands (peak counts them); the weights and " +
        `AdamW state${stream ? ", and the stream's BERT forward," : ""} stay float32`
      : "");
}

/** A head run's training settings: given, else the task's AP preset, else `HEAD_DEFAULTS`. */
export function headSettings(task: Task, opts: TrainApOptions): ResolvedSettings {
  return resolveSettings(
    task.name,
    "ap",
    opts,
    !!opts.preset,
    HEAD_DEFAULTS,
  );
}

/**
 * The AP adapter size asked for: given, else with the preset the token count (the seed's
 * `if args.adapter_dim == 0: args.adapter_dim = args.max_seq_length`), else undefined (the
 * head's default, model/heads.ts).
 */
export function adapterDimFor(opts: TrainApOptions, shape: SourceShape): number | undefined {
  return opts.adapterDim ?? (opts.preset ? shape.tokens : undefined);
}
