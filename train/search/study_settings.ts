/**
 * A study's options and what its results depend on (train/search/study.ts runs it):
 * {@linkcode SearchOptions}, a trial's hyperparameters as library options and as the flags that
 * train it again, the precision those flags name, the space with the hyperparameters the options
 * fix, and the settings a worker must share to join a study ({@linkcode studySettings}: the
 * stores by their fingerprints).
 * @module
 */
import { type Task } from "../../tasks/mod.ts";
import { type TrainApOptions } from "../heads/mod.ts";
import { type FineTuneOptions } from "../finetune.ts";
import { type OutputOptions } from "../../data/output/mod.ts";
import { StoreSource } from "../sources.ts";
import { SEARCH_DEFAULTS } from "../defaults.ts";
import { type Precision } from "../precision.ts";
import { type Params, type ParamValue, type Space } from "./space.ts";

/**
 * Options of {@linkcode runSearch}; defaults in train/defaults.ts `SEARCH_DEFAULTS`. Of the output
 * group: `breakLock` takes the worker log's lock even from a live holder (a study is never
 * overwritten: a worker of other settings is refused).
 */
export interface SearchOptions extends Pick<OutputOptions, "breakLock" | "silent"> {
  /** The task (its main dev metric is maximized). */
  task: string | Task;
  /** The study folder (logs, trials, reports). */
  out: string;
  /** What a trial trains: a head (`head`) or BERT (`bert`). */
  target: "head" | "bert";
  /**
   * Head trials: every trial's options (stores or a stream, pooling, batch size, epochs, ...).
   * `lr`, `l2`, `seed`, `adapterDim` and `model` given here are fixed, not searched.
   */
  head?: Omit<TrainApOptions, "outDir" | "task">;
  /**
   * BERT trials: every trial's options (model, data, batch size, epochs, ...). `lr`, `l2`,
   * `seed`, `batchSize` and `warmupProportion` given here are fixed, not searched.
   */
  bert?: Omit<FineTuneOptions, "outDir" | "task">;
  /** The space (train/search/space.ts); default the seed's (heads) or ours (BERT). */
  space?: Space;
  /** Trials the study runs in all (every worker's); default 20 unless `minutes` is given. */
  trials?: number;
  /** Start no new pass after this many minutes of this run. */
  minutes?: number;
  /** "tpe" (hyperopt's) or "random". */
  sampler?: "tpe" | "random";
  /** Random trials before TPE (hyperopt's `n_startup_jobs`). */
  startup?: number;
  /** Seeds the sampler. */
  samplerSeed?: number;
  /** Successive halving: keep the best 1/eta at each rung. */
  eta?: number;
  /** Evaluation points (1: no early stopping). */
  rungs?: number;
  /** Head trials trained from one pass over the data (default 4 streaming, else 1). */
  trialsPerPass?: number;
  /** This worker's name (its log `trials-<worker>.jsonl`); default the host's. */
  worker?: string;
  /**
   * `--precision` of every trial (f16-mixed or f32). Default: the study's own when resuming one
   * (float32 for a study made before `--precision` existed), else the preset
   * (train/precision.ts). A study made with the other precision is refused, naming it.
   */
  precision?: Precision;
}

/** Head hyperparameters (flag names) as trainHeads options. */
const HEAD_KEYS: Record<string, keyof TrainApOptions> = {
  "adapter-dim": "adapterDim",
  lr: "lr",
  l2: "l2",
  seed: "seed",
  model: "model",
};
/** BERT hyperparameters (flag names) as fineTune options. */
const BERT_KEYS: Record<string, keyof FineTuneOptions> = {
  lr: "lr",
  l2: "l2",
  seed: "seed",
  "batch-size": "batchSize",
  "warmup-proportion": "warmupProportion",
};

/** A trial's hyperparameters as library options (`adapter-dim` → `adapterDim`, ...). */
export function trialOptions(target: "head" | "bert", params: Params): Record<string, ParamValue> {
  const keys: Record<string, string> = target === "bert" ? BERT_KEYS : HEAD_KEYS;
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [keys[k] ?? k, v]));
}

/**
 * The flags that train a trial again, e.g. `--adapter-dim 64 --lr 0.0003 --seed 7`, and
 * `--data-seed N` when its pass's data order came from another seed than its own (a head trial
 * not first in its pass), and `--precision P`, the precision the study's trials ran in (given
 * always by the study, so the flags train the same anywhere).
 */
export function trialFlags(params: Params, dataSeed?: number, precision?: Precision): string {
  const flags = Object.entries(params)
    .map(([k, v]) => typeof v === "boolean" ? (v ? `--${k}` : "") : `--${k} ${v}`)
    .filter(Boolean);
  if (dataSeed !== undefined && dataSeed !== params.seed) flags.push(`--data-seed ${dataSeed}`);
  if (precision !== undefined) flags.push(`--precision ${precision}`);
  return flags.join(" ");
}

/** The precision asked for: `precision`, else one the trials' options give. */
export function givenPrecision(o: SearchOptions): Precision | undefined {
  const p = o.precision ?? (o.target === "bert" ? o.bert?.precision : o.head?.precision);
  return typeof p === "object" ? p.precision : p;
}

/** The space with the hyperparameters the options fix (flags given) made fixed values. */
export function withFixed(space: Space, o: SearchOptions): { space: Space; fixed: string[] } {
  const opts = (o.target === "bert" ? o.bert : o.head) ?? {};
  const keys: Record<string, string> = o.target === "bert" ? BERT_KEYS : HEAD_KEYS;
  const out: Space = { ...space };
  const fixed: string[] = [];
  for (const [flag, key] of Object.entries(keys)) {
    const v = (opts as Record<string, unknown>)[key];
    if (v === undefined) continue;
    out[flag] = { kind: "fixed", value: v as ParamValue };
    fixed.push(flag);
  }
  return { space: out, fixed };
}

/** What a study's results depend on: a worker with other settings is refused. */
export async function studySettings(
  task: Task,
  o: SearchOptions,
  space: Space,
  rungs: number[],
  precision: Precision,
): Promise<Record<string, unknown>> {
  const base = {
    // Only when mixed: studies made before `--precision` existed (float32) resume unchanged.
    ...(precision === "f16-mixed" ? { precision } : {}),
    task: task.name,
    target: o.target,
    metric: task.primaryMetric,
    space,
    rungs,
    eta: o.eta ?? SEARCH_DEFAULTS.eta,
    sampler: o.sampler ?? SEARCH_DEFAULTS.sampler,
    startup: o.startup ?? SEARCH_DEFAULTS.startup,
    samplerSeed: o.samplerSeed ?? SEARCH_DEFAULTS.samplerSeed,
  };
  if (o.target === "bert") {
    const b = o.bert!;
    return {
      ...base,
      source: {
        model: b.modelDir,
        dataDir: b.dataDir,
        trainSplit: b.trainSplit,
        devSplit: b.devSplit,
        devSplits: b.devSplits,
        maxSeqLength: b.maxSeqLength,
        limit: b.limit,
        devLimit: b.devLimit,
        docStride: b.docStride,
      },
      batchSize: b.batchSize,
      warmupProportion: b.warmupProportion,
    };
  }
  const h = o.head!;
  let source: Record<string, unknown>;
  if (h.stream) source = { stream: h.stream };
  else {
    // The stores by their completion fingerprints, not their paths.
    const prints: string[] = [];
    for (const p of [h.trainH5!, ...[h.devH5 ?? []].flat()]) {
      const s = await StoreSource.open(p);
      prints.push(s.fingerprint);
      s.close();
    }
    source = { stores: prints, devFile: h.devFile };
  }
  return {
    ...base,
    source,
    shared: h.shared,
    skip: h.skip,
    layout: h.layout,
    batchSize: h.batchSize,
    warmupProportion: h.warmupProportion,
    trainFraction: h.trainFraction,
  };
}
