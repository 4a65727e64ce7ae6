/**
 * Shared test helpers: seeded random data, absolute+relative closeness with a readable failure,
 * and the TF.js CPU oracle.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { mulberry32 } from "./oracle/tf_bert.ts";
import { makeTinyBert } from "../model/init.ts";

let tfReady: Promise<typeof tf> | null = null;

/** TF.js on its CPU backend (the independent oracle), initialised once, quietly. */
export function oracle(): Promise<typeof tf> {
  if (!tfReady) {
    tfReady = (async () => {
      const warn = console.warn, log = console.log;
      console.warn = console.log = () => {};
      try {
        await tf.setBackend("cpu");
        await tf.ready();
      } finally {
        console.warn = warn;
        console.log = log;
      }
      return tf;
    })();
  }
  return tfReady;
}

/** A seeded generator of uniform [0,1) floats (the oracle's mulberry32). */
export const rng: (seed: number) => () => number = mulberry32;

/** `n` seeded standard-normal floats, times `scale`. */
export function randn(seed: number, n: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12), v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return out;
}

/** `n` seeded uniform floats in [lo, hi). */
export function uniform(seed: number, n: number, lo: number, hi: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/**
 * Asserts |actual - expected| <= atol + rtol·|expected| element-wise. On failure the message
 * gives the worst element, the max absolute difference and the first mismatching pairs.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { atol: number; rtol: number },
  what = "values",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1, worstExcess = 0, maxAbs = 0;
  const bad: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    const d = Math.abs(a - e);
    if (
      Number.isNaN(a) !== Number.isNaN(e) ||
      (!Number.isNaN(a) && !(d <= tol.atol + tol.rtol * Math.abs(e)))
    ) {
      if (a === e) continue; // equal infinities
      const excess = Number.isNaN(d) ? Infinity : d - (tol.atol + tol.rtol * Math.abs(e));
      if (excess > worstExcess || worst < 0) {
        worst = i;
        worstExcess = excess;
      }
      if (bad.length < 5) bad.push(`[${i}] ${a} vs ${e}`);
    }
    if (Number.isFinite(d)) maxAbs = Math.max(maxAbs, d);
  }
  if (bad.length) {
    throw new Error(
      `${what}: not close (atol ${tol.atol}, rtol ${tol.rtol}); max |diff| ${
        maxAbs.toExponential(3)
      }; ` +
        `worst at [${worst}] ${actual[worst]} vs ${expected[worst]}; first: ${bad.join(", ")}`,
    );
  }
}

/** Path of `../shared` beside the project root, or null when it is absent. */
export function sharedDir(): string | null {
  const p = new URL("../../shared", import.meta.url).pathname;
  try {
    return Deno.statSync(p).isDirectory ? p : null;
  } catch {
    return null;
  }
}

/** The small BERT the command-line tests run (2 layers, hidden 32, built-in vocabulary). */
export async function tinyTestBert(out: string, seed = 3): Promise<string> {
  await makeTinyBert({
    out,
    seed,
    layers: 2,
    hidden: 32,
    heads: 2,
    intermediate: 64,
    maxPositions: 64,
  });
  return out;
}

/** What a command run by {@linkcode runCli} printed and its exit code. */
export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/**
 * Runs `deno run -A scripts/<script> ...args` from the project root with Mesa's runtime
 * directory and no colours (plus `env`), and waits for it.
 */
export async function runCli(
  script: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliRun> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `scripts/${script}`, ...args],
    cwd: new URL("../", import.meta.url).pathname,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

/** The keys of the official SQuAD 2.0 evaluation's JSON (evaluate-v2.0.py), in its order. */
export const SQUAD_OFFICIAL_KEYS: readonly string[] = [
  "exact",
  "f1",
  "total",
  "HasAns_exact",
  "HasAns_f1",
  "HasAns_total",
  "NoAns_exact",
  "NoAns_f1",
  "NoAns_total",
  "best_exact",
  "best_exact_thresh",
  "best_f1",
  "best_f1_thresh",
];
