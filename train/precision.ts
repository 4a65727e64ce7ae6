/**
 * `--precision f32|f16-mixed`: which arithmetic a training run uses, and the preset that follows
 * the seed (its trainers run under `torch.cuda.amp.autocast` with a `GradScaler`; its capture and
 * evaluation in float32): f16-mixed for training on a hardware GPU that offers `shader-f16`,
 * float32 for capture and evaluation, and float32 on software adapters (llvmpipe, SwiftShader),
 * so the demo, the tests and dry-run plans on CPU machines do not change.
 *
 * f16-mixed (model/ops.ts `autocast`): matmul and linear operands, forward and backward, are
 * cast to f16 and multiplied with float32 accumulation; LayerNorm, softmax, GELU, dropout, the
 * losses and every tensor between ops stay float32, as do the master weights and AdamW's state;
 * the loss is scaled by model/optim.ts `GradScaler` (torch's dynamic schedule).
 * Checked by train/precision_test.ts.
 * @module
 */
import type { Gpu } from "../kernels/device.ts";

/** A run's arithmetic. */
export type Precision = "f32" | "f16-mixed";

/** The precisions `--precision` takes. */
export const PRECISIONS: readonly Precision[] = ["f32", "f16-mixed"];

/** A resolved precision and the one line saying why (for the plan). */
export interface PrecisionChoice {
  precision: Precision;
  why: string;
}

/**
 * The precision of a run: `given` if any, else the preset for `use` on this adapter. f16-mixed
 * asked for on an adapter without `shader-f16` still runs (the f16 operands are packed in u32
 * words and widened with core WGSL's `unpack2x16float`, the same numbers), and `why` says so.
 */
export function resolvePrecision(
  gpu: Pick<Gpu, "isFallback" | "hasF16" | "adapterName">,
  given: string | undefined,
  use: "training" | "capture" | "evaluation",
): PrecisionChoice {
  if (given !== undefined) {
    if (!(PRECISIONS as readonly string[]).includes(given)) {
      throw new RangeError(
        `--precision ${given}: expected one of ${PRECISIONS.join(", ")}`,
      );
    }
    const p = given as Precision;
    if (p === "f16-mixed" && !gpu.hasF16) {
      return {
        precision: p,
        why: `given; ${gpu.adapterName} lacks shader-f16, so f16 operands are packed in u32 ` +
          `words and widened with unpack2x16float (same numbers, no f16 arithmetic)`,
      };
    }
    return { precision: p, why: "given" };
  }
  if (use !== "training") return { precision: "f32", why: `preset: ${use} runs in float32` };
  if (gpu.isFallback) {
    return { precision: "f32", why: `preset: ${gpu.adapterName} is a software adapter` };
  }
  if (!gpu.hasF16) {
    return { precision: "f32", why: `preset: ${gpu.adapterName} does not offer shader-f16` };
  }
  return { precision: "f16-mixed", why: "preset: training on a GPU with shader-f16" };
}

/**
 * The precision of a run that may resume an output: `given` if any (a resume with the other one
 * is refused later, by the output's settings diff); else, when `found` is an output's recorded
 * settings, the precision it was made with (an output without `precision` was made in float32,
 * before `--precision` existed, and resumes so; `key` names where it is recorded, `precision`
 * or a store's `attrs.precision`); else the preset for `use` ({@linkcode resolvePrecision}).
 * `what` names the output for the plan's line.
 */
export function resumePrecision(
  gpu: Pick<Gpu, "isFallback" | "hasF16" | "adapterName">,
  given: string | undefined,
  found: { what: string; settings: Readonly<Record<string, unknown>> } | null,
  use: "training" | "capture" = "training",
): PrecisionChoice {
  if (given !== undefined || found === null) return resolvePrecision(gpu, given, use);
  const p = found.settings.precision === "f16-mixed" ? "f16-mixed" : "f32";
  return { precision: p, why: `preset: resumes ${found.what}, made in ${p}` };
}

/**
 * For data/output/settings.ts `settingsDiff`'s `defaults`: outputs record `precision` only when f16-mixed, so
 * an absent one is "f32" (made before `--precision` existed, or in float32) — a refusal then
 * reads `precision: "f16-mixed" → "f32"`, never `→ (unset)`.
 */
export const PRECISION_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  precision: "f32",
});

/** {@linkcode PRECISION_DEFAULTS} for an activation store's settings (`attrs.precision`). */
export const STORE_PRECISION_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  "attrs.precision": "f32",
});

/**
 * The fix a refusal of an output made with other settings names: when the precision is all that
 * differs (`--precision` given, the output made in the other one), leaving the flag out resumes
 * it as made; else `fix` as it is.
 */
export function precisionFix(diff: readonly string[], fix: string): string {
  const only = diff.length === 1 && /^(attrs\.)?precision: /.test(diff[0]);
  return only ? `leave --precision out to resume it as made, or ${fix}` : fix;
}

/**
 * A stage's precision: a choice its caller resolved already (reproduce, search: the plan's line
 * says why, once), else {@linkcode resolvePrecision} of the flag for training.
 */
export function trainingPrecision(
  gpu: Pick<Gpu, "isFallback" | "hasF16" | "adapterName">,
  given: Precision | PrecisionChoice | undefined,
): PrecisionChoice {
  return typeof given === "object" ? given : resolvePrecision(gpu, given, "training");
}
