/**
 * Training BERTVision heads from hidden states (stored or streamed): one head ({@linkcode trainAp})
 * or several from one pass ({@linkcode trainHeads}, the less-data sweep {@linkcode trainFractions},
 * the layer probes {@linkcode trainProbes} and the search's trials), their plan, evaluation, the
 * checks their stores pass, and a trained head's layer ablation ({@linkcode ablateHead}).
 * @module
 */
export type { LogEntry } from "../loop.ts";
export { checkSameCapture, checkStore, type StoreExpectations } from "./checks.ts";
export { headConfigFor } from "./config.ts";
export type {
  HeadDev,
  HeadVariant,
  MetricsFn,
  StreamOptions,
  TrainApOptions,
  TrainApResult,
} from "./options.ts";
export { planHeads } from "./plan.ts";
export { trainAp, trainHeads } from "./pass.ts";
export {
  evaluateAp,
  type EvaluateApOptions,
  type EvaluateApResult,
  evaluateHead,
} from "./evaluate.ts";
export {
  checkpointDevMetrics,
  type FractionSweepOptions,
  type FractionSweepResult,
  planFractions,
  plottedKeys,
  trainFractions,
} from "./fractions.ts";
export { probeDir, type ProbeOptions, type ProbeResult, trainProbes } from "./probe.ts";
export { ablateHead, type AblateOptions } from "./ablate.ts";
export { LAYER_MEANS_FILE } from "./run.ts";
