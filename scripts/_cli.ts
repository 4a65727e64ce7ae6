/**
 * What the CLI scripts share besides the flag table (scripts/_flags.ts): a main that prints
 * errors as one line (usage errors exit 2, others 1; `BERTVISION_DEBUG=1` adds the stack), and
 * the per-adapter kernel tuning every GPU command does first.
 * @module
 */
import { getGpu } from "../kernels/device.ts";
import { pickMatmulVariant } from "../kernels/matmul.ts";
import { cacheRoot } from "../model/checkpoint.ts";
import { UsageError } from "./_flags.ts";
import { InputError } from "../data/errors.ts";
import { setLockLostAction } from "../data/output/lock.ts";
import type { StreamOptions } from "../train/heads/mod.ts";
import type { OutputOptions, RowSourceOptions } from "../train/options.ts";
import { type ResolvedSquadSettings, resolveSquadSettings } from "../train/squad_settings.ts";

export { UsageError } from "./_flags.ts";
export { parseCommand } from "./_flag_parse.ts";

/**
 * Picks the matmul variant for this adapter by a quick measurement, once per adapter: the choice
 * is cached in `~/.cache/bertvision/tuning.json` (`BERTVISION_CACHE` overrides).
 */
export async function tuneKernels(): Promise<void> {
  await pickMatmulVariant(await getGpu(), `${cacheRoot()}/tuning.json`);
}

/** The output group from parsed flags (`--break-lock`, `--overwrite`, `--quiet`), read once. */
export function outputOptions(v: Record<string, unknown>): OutputOptions {
  return { breakLock: !!v["break-lock"], overwrite: !!v.overwrite, silent: !!v.quiet };
}

/**
 * The optimizer and early-stopping settings from parsed flags (`--early-stop`,
 * `--bias-correction`, `--adam-eps`, `--max-grad-norm`, `--decay-biases`); undefined where not
 * given (the preset or the defaults fill them).
 */
export function optimizerOptions(v: Record<string, unknown>): {
  earlyStop?: "loss" | "metric";
  biasCorrection?: boolean;
  adamEps?: number;
  maxGradNorm?: number;
  decayBiases?: boolean;
} {
  const onOff = (name: string) => v[name] === undefined ? undefined : v[name] === "on";
  return {
    earlyStop: v["early-stop"] as "loss" | "metric" | undefined,
    biasCorrection: onOff("bias-correction"),
    adamEps: v["adam-eps"] as number | undefined,
    maxGradNorm: v["max-grad-norm"] as number | undefined,
    decayBiases: onOff("decay-biases"),
  };
}

/**
 * The row-source group from parsed flags (`--data-dir`, `--limit`, `--max-seq-length`,
 * `--doc-stride`, `--num-workers`), read once: what every stage of the command reads.
 */
export function rowSourceOptions(v: Record<string, unknown>): RowSourceOptions {
  const n = (name: string) => v[name] as number | undefined;
  return {
    dataDir: v["data-dir"] as string | undefined,
    limit: n("limit"),
    maxSeqLength: n("max-seq-length"),
    docStride: n("doc-stride"),
    numWorkers: n("num-workers"),
    squad: squadSettings(v),
  };
}

/**
 * SQuAD's settings from parsed flags (`--max-question-length`, `--squad-null`, `--max-context`,
 * `--squad-ensemble`), resolved once: given, else the seed's (every command's preset;
 * train/squad_settings.ts).
 */
export function squadSettings(v: Record<string, unknown>): ResolvedSquadSettings {
  const mc = v["max-context"] as string | undefined;
  return resolveSquadSettings({
    maxQuestionLength: v["max-question-length"] as number | undefined,
    nullScore: v["squad-null"] as "max" | "min" | undefined,
    maxContext: mc === undefined ? undefined : mc === "on",
    ensemble: v["squad-ensemble"] as "seed" | "ours" | undefined,
  }, true);
}

/**
 * The streamed source's options from parsed flags (`glue` and `search` in stream mode): the frozen
 * checkpoint `--bert` and the rows it reads, as `--activations stream` documents them.
 */
export function streamOptions(
  v: Record<string, unknown>,
  devSplits: string[] | undefined,
): StreamOptions {
  const n = (name: string) => v[name] as number | undefined;
  const s = (name: string) => v[name] as string | undefined;
  return {
    ...rowSourceOptions(v),
    model: s("bert")!,
    trainFile: s("train-file"),
    devFile: s("dev-file"),
    devSplits,
    layout: v.layout as "full" | "cls" | undefined,
    devLimit: n("dev-limit"),
  };
}

/**
 * The line `runMain` prints for an error: `<command>: <message>`; an {@linkcode InputError}
 * (bad input: its message names the file) is kept to one line.
 */
export function errorLine(command: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return `${command}: ${e instanceof InputError ? message.replace(/\s*\n\s*/g, " ") : message}`;
}

/**
 * Stops this process when its parent goes away: a `deno task` killed with `kill -9` must not
 * leave its `deno run` child writing (the user reruns the command, and two writers would share
 * the output). Polls the parent pid each second; the exit releases the output's lock and leaves
 * what was written resumable.
 */
function watchParent(command: string): void {
  const parent = Deno.ppid;
  if (parent <= 1) return; // started by init: nothing to outlive
  const t = setInterval(() => {
    if (Deno.ppid !== parent) {
      console.error(
        `${command}: the parent process ${parent} is gone; stopping (rerun the same command to ` +
          `resume)`,
      );
      Deno.exit(1);
    }
  }, 1000);
  Deno.unrefTimer(t);
}

/**
 * Runs a CLI main: errors print `<command>: <message>` without a stack trace (also one that
 * escapes as an unhandled rejection); usage errors exit 2, others 1. `BERTVISION_DEBUG=1` adds
 * the stack.
 */
export async function runMain(command: string, main: () => Promise<void>): Promise<void> {
  const fail = (e: unknown): never => {
    console.error(errorLine(command, e));
    if (Deno.env.get("BERTVISION_DEBUG")) console.error(e);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  };
  globalThis.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    fail(ev.reason);
  });
  watchParent(command);
  setLockLostAction("exit"); // a command whose output's lock is taken stops at once
  try {
    await main();
  } catch (e) {
    fail(e);
  }
}
