/**
 * A head's configuration and settings: its config from a source's shape and the head kind, its
 * per-row GPU tensors for the planner, its training settings (given, preset or defaults) and
 * the AP adapter size.
 * @module
 */
import type { HeadConfig, Pooling } from "../../model/heads.ts";
import type { Task, TaskKind } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { type ResolvedSettings, resolveSettings } from "../presets.ts";
import type { RowTensor } from "../plan.ts";
import type { SourceShape } from "../sources.ts";
import type { TrainApOptions } from "./options.ts";

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
    ? [{ what: `adapter activations [${T}×${D}×${L}]`, bytesPerRow: 4 * T * D * L }]
    : [{
      what: `pooled features [${T}×${F}]`,
      bytesPerRow: 4 * T * F * (c.pooling === "lp" ? L : 1),
    }];
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
