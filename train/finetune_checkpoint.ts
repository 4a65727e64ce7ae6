/**
 * A fine-tuning run's files on disk, apart from the training loop (train/finetune.ts): the
 * trainer state, each checkpoint's completion marker (data/output's `complete.json`), saving a
 * checkpoint with its tokenizer and optimizer state, loading the optimizer back to resume, and
 * removing a run (`--overwrite`).
 * @module
 */
import type { BertConfig } from "../model/config.ts";
import type { BertModel } from "../model/bert.ts";
import type { BertHead } from "../model/bert_head.ts";
import { saveBertCheckpoint } from "../model/checkpoint.ts";
import { exitIfAsked } from "../data/output/mod.ts";
import { readSafetensors, writeSafetensors } from "../model/safetensors.ts";
import type { AdamW } from "../model/optim.ts";
import { InputError } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import type { Task, TaskKind } from "../tasks/mod.ts";
import type { SplitRows } from "./rows.ts";
import type { EarlyStopState } from "./loop.ts";

/**
 * `trainer_state.json`: written after a checkpoint's weights, before its dev evaluation, and
 * again after it with patience: `earlyStop` says whether training stopped early there and
 * which checkpoint is the best so far. (A rerun recomputes it from the checkpoints' dev metrics,
 * so a kill between the evaluation and that write changes nothing.)
 */
export interface TrainerState {
  settings: Record<string, unknown>;
  step: number;
  checkpoint: string;
  label: string;
  earlyStop?: EarlyStopState;
}

/**
 * `checkpoint-X/complete.json`, written last: the checkpoint's weights, optimizer state and dev
 * results (for the dev rows `dev` names: one split's fingerprint, or the list of every split's
 * when several are evaluated; null when not evaluated) are all there. A checkpoint without it, or
 * with another `dev`, is evaluated when the run is started again.
 */
export interface CheckpointMarker {
  step: number;
  label: string;
  dev: DevFingerprint | DevFingerprint[] | null;
}

/** The dev rows a checkpoint's dev results come from: the file read and the rows' hash. */
export interface DevFingerprint {
  file: string;
  rows: number;
  hash: string;
}

export async function readJson(path: string): Promise<Record<string, number>> {
  regularFileExists(path); // a FIFO there would block the read
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new InputError(`${path}: unreadable (${e instanceof Error ? e.message : e})`, {
      file: path,
      cause: e,
    });
  }
}

/** Removes a fine-tuning run's files from `dir` (`--overwrite`); other files stay. */
export async function removeRun(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const run = e.name === "trainer_state.json" || e.name === "train_log.jsonl" ||
      (e.isDirectory && e.name.startsWith("checkpoint-"));
    if (run) await Deno.remove(`${dir}/${e.name}`, { recursive: true });
  }
}

export async function saveCheckpoint(
  dir: string,
  config: BertConfig,
  bert: BertModel,
  head: BertHead,
  kind: TaskKind,
  opt: AdamW,
  modelDir: string,
): Promise<void> {
  await saveBertCheckpoint(dir, config, await bert.toHost(), await head.toHost(), kind.hfConfig);
  exitIfAsked("weights", dir.slice(dir.lastIndexOf("checkpoint-") + 11)); // then the optimizer
  // The tokenizer travels with the checkpoint so capture and other tools can load it alone.
  for (const f of ["vocab.txt", "tokenizer.json", "tokenizer_config.json"]) {
    try {
      regularFileExists(`${modelDir}/${f}`); // copying a FIFO would block
      await Deno.copyFile(`${modelDir}/${f}`, `${dir}/${f}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  const { m, v } = opt.state();
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of m) {
    tensors.set(`m.${name}`, { shape: [...t.shape], data: await t.readF32() });
  }
  for (const [name, t] of v) {
    tensors.set(`v.${name}`, { shape: [...t.shape], data: await t.readF32() });
  }
  // Mixed precision: the loss scaler's state, so a resumed run continues the same scale.
  const scaler = opt.scaler ? await opt.scaler.read() : null;
  await writeSafetensors(`${dir}/optimizer.safetensors`, tensors, {
    step: String(opt.stepCount),
    ...(scaler
      ? {
        lossScale: String(scaler.scale),
        lossScaleGrowthTracker: String(scaler.growthTracker),
        lossScaleSteps: String(scaler.steps),
      }
      : {}),
  });
}

export async function loadOptimizer(opt: AdamW, path: string, step: number): Promise<void> {
  const st = await readSafetensors(path);
  const m = new Map<string, Float32Array>(), v = new Map<string, Float32Array>();
  for (const [name, t] of st.tensors) {
    const target = name.startsWith("m.") ? m : name.startsWith("v.") ? v : null;
    if (target) target.set(name.slice(2), t.data as Float32Array);
  }
  opt.loadState(step, m, v);
  if (opt.scaler) {
    const md = st.metadata ?? {};
    const num = (k: string) => (md[k] === undefined ? NaN : Number(md[k]));
    const state = {
      scale: num("lossScale"),
      growthTracker: num("lossScaleGrowthTracker"),
      steps: num("lossScaleSteps"),
    };
    try {
      opt.scaler.load(state);
    } catch (e) {
      throw new InputError(
        `${path}: no valid loss-scaler state (lossScale, lossScaleGrowthTracker, ` +
          `lossScaleSteps metadata) for a --precision f16-mixed run ` +
          `(${e instanceof Error ? e.message : e}); start the run again with --overwrite`,
        { file: path, cause: e },
      );
    }
  }
}

/** The options of a run (resolved) that a resumed run must share, besides saveAt and trainSplit. */
const RUN_KEYS = [
  "batchSize",
  "epochs",
  "lr",
  "l2",
  "warmupProportion",
  "seed",
  "maxSeqLength",
  "dropout",
  "maxGradNorm",
  "limit",
] as const;

/**
 * The settings a resumed run must share with the run it continues: the hyperparameters, the
 * starting weights by hash (not by folder name) and the training rows by the file read and a hash
 * of the rows as tokenized.
 */
export function runSettings(
  task: Task,
  o: Readonly<
    Record<(typeof RUN_KEYS)[number], number> & {
      saveAt: number[];
      trainSplit: string;
      biasCorrection?: boolean;
      adamEps?: number;
      decayBiases?: boolean;
    }
  >,
  weights: string,
  train: SplitRows,
  precision: "f32" | "f16-mixed" = "f32",
) {
  return {
    // Only when mixed: runs saved before `--precision` existed (float32) resume unchanged.
    ...(precision === "f16-mixed" ? { precision } : {}),
    weights,
    train: { file: train.dataFile, rows: train.n, hash: train.hash },
    task: task.name,
    batchSize: o.batchSize,
    epochs: o.epochs,
    lr: o.lr,
    l2: o.l2,
    warmupProportion: o.warmupProportion,
    seed: o.seed,
    maxSeqLength: o.maxSeqLength,
    dropout: o.dropout,
    maxGradNorm: o.maxGradNorm,
    // The optimizer's switches, only where they differ from torch's AdamW with eps 1e-8 (a run
    // started before they existed resumes).
    ...(o.biasCorrection === false ? { biasCorrection: false } : {}),
    ...(o.adamEps !== undefined && o.adamEps !== 1e-8 ? { adamEps: o.adamEps } : {}),
    ...(o.decayBiases ? { decayBiases: true } : {}),
    limit: o.limit,
    saveAt: o.saveAt,
    trainSplit: o.trainSplit,
  };
}
