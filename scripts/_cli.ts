/**
 * Flag parsing shared by the CLI scripts: `node:util` parseArgs plus typed, validated numbers
 * whose errors name the flag, and a uniform way to fail with the usage text.
 * @module
 */
import { parseArgs } from "node:util";
import { getGpu } from "../kernels/device.ts";
import { pickMatmulVariant } from "../kernels/matmul.ts";
import { cacheRoot } from "../model/checkpoint.ts";

/** A CLI error: printed without a stack trace, exit code 2. */
export class UsageError extends Error {}

/** Option spec for {@linkcode parseFlags}: every flag is a string or a boolean. */
export type FlagSpec = Record<string, { type: "string" | "boolean"; short?: string }>;

/** Parses `args` strictly (unknown flags are errors naming them); `--help` prints `usage`. */
export function parseFlags(
  args: string[],
  spec: FlagSpec,
  usage: string,
): Record<string, string | boolean | undefined> {
  try {
    const { values } = parseArgs({
      args,
      options: { ...spec, help: { type: "boolean", short: "h" } },
      strict: true,
    });
    if (values.help) {
      console.log(usage);
      Deno.exit(0);
    }
    return values as Record<string, string | boolean | undefined>;
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
}

/** A number flag: finite, and within [min, max] when given; `undefined` when absent. */
export function num(
  values: Record<string, unknown>,
  name: string,
  o: { min?: number; max?: number; int?: boolean } = {},
): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  const bad = !Number.isFinite(n) || (o.int && !Number.isInteger(n)) ||
    (o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max);
  if (bad) {
    const range = [
      o.int ? "an integer" : "a number",
      o.min !== undefined ? `≥ ${o.min}` : "",
      o.max !== undefined ? `≤ ${o.max}` : "",
    ]
      .filter(Boolean).join(" ");
    throw new UsageError(`--${name} must be ${range}, got "${v}"`);
  }
  return n;
}

/** A comma-separated list of numbers (e.g. `--save-at 0.3,1`). */
export function numList(values: Record<string, unknown>, name: string): number[] | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const xs = String(v).split(",").map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new UsageError(`--${name} must be positive numbers separated by commas, got "${v}"`);
  }
  return xs;
}

/** A string flag restricted to `choices`. */
export function choice<T extends string>(
  values: Record<string, unknown>,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const v = values[name] ?? fallback;
  if (!choices.includes(v as T)) {
    throw new UsageError(`--${name} must be one of ${choices.join(", ")}, got "${v}"`);
  }
  return v as T;
}

/** Requires string flags, naming every missing one. */
export function required(values: Record<string, unknown>, names: string[], usage: string): void {
  const missing = names.filter((n) => values[n] === undefined);
  if (missing.length) {
    throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(", ")}\n${usage}`);
  }
}

/**
 * Picks the matmul variant for this adapter by a quick measurement, once per adapter: the choice
 * is cached in `~/.cache/bertvision/tuning.json` (`BERTVISION_CACHE` overrides).
 */
export async function tuneKernels(): Promise<void> {
  await pickMatmulVariant(await getGpu(), `${cacheRoot()}/tuning.json`);
}

/** Runs a CLI main: usage errors print their message and exit 2, other errors exit 1. */
export async function runMain(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    console.error(`error: ${(e as Error).message}`);
    if (Deno.env.get("BERTVISION_DEBUG")) console.error(e);
    Deno.exit(1);
  }
}
