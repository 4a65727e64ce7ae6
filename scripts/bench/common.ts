/**
 * Shared pieces of the benchmark sections run by `scripts/bench.ts`: argument parsing, a timer
 * that calibrates the iteration count to a minimum measurement time, the result record, the
 * table printer and the JSON-lines writer.
 *
 * A section is a {@linkcode Section}: a name (what `--only` selects) and a `run` that measures
 * and hands each {@linkcode BenchResult} to `ctx.emit` as soon as it has it, so a long run
 * shows progress and a crash keeps what was measured. The `--json` schema is checked by
 * scripts/bench/common_test.ts.
 * @module
 */
import type { Gpu } from "../../kernels/device.ts";

/** Command-line options every section sees. */
export interface BenchArgs {
  /** One small case per section (a smoke run). */
  quick: boolean;
  /** Print one JSON object per result line on stdout; progress goes to stderr. */
  json: boolean;
  /** Case-name filters (substring match, any of them); empty: every case. */
  shapes: string[];
  /** Sections to run; empty: all. */
  only: string[];
  /** Minimum seconds of one timed measurement. */
  minSeconds: number;
  /** Include the cases a section skips by default on a software adapter (too slow there). */
  full: boolean;
}

/** Parses `--quick`, `--json`, `--shapes a,b`, `--only s1,s2`, `--min-seconds x` (also `=`). */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const out: BenchArgs = {
    quick: false,
    json: false,
    full: false,
    shapes: [],
    only: [],
    minSeconds: 0.5,
  };
  const list = (v: string | undefined, flag: string) => {
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`);
    return v.split(",").map((s) => s.trim()).filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value: string | undefined;
    const eq = arg.indexOf("=");
    if (arg.startsWith("--") && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => value ?? argv[++i];
    switch (arg) {
      case "--":
        break;
      case "--quick":
        out.quick = true;
        break;
      case "--json":
        out.json = true;
        break;
      case "--full":
        out.full = true;
        break;
      case "--shapes":
        out.shapes = list(next(), arg);
        break;
      case "--only":
        out.only = list(next(), arg);
        break;
      case "--min-seconds": {
        const v = Number(next());
        if (!(v > 0)) throw new Error(`--min-seconds must be a positive number`);
        out.minSeconds = v;
        break;
      }
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument "${argv[i]}"\n${USAGE}`);
    }
  }
  return out;
}

/** Usage text. */
export const USAGE = `usage: deno task bench [-- options]
  --only matmul,bert   sections to run (default: all)
  --shapes 1024x768    run only cases whose name contains one of these (comma-separated)
  --quick              one small case per section (smoke run)
  --full               on a software adapter (llvmpipe) also run the big cases skipped by default
  --json               one JSON object per result on stdout (progress on stderr)
  --min-seconds 0.5    minimum length of each timed measurement`;

/**
 * One measured case: ours against the peer, in `unit`. Both figures are throughputs (higher is
 * better: GFLOP/s, GB/s, seq/s, ex/s, MB/s); a section with something where lower is better (a
 * time, an overhead) reports the matching throughput instead and leaves the rest to `note`.
 * `--json` writes every result with at least `name, shape, adapter, ours, peer, unit`
 * ({@linkcode jsonLine}; checked by scripts/bench/common_test.ts).
 */
export interface BenchResult {
  /** Section that produced it. */
  section: string;
  /** Case name, e.g. "matmul 1024x768x3072 NT". */
  name: string;
  /** The case's dimensions (section-specific; matmul: [M, K, N]). */
  shape: number[];
  /** Our figure, null where ours is not measured (yet). */
  ours: number | null;
  /** The peer's figure (TF.js on the same adapter), null where it failed. */
  peer: number | null;
  /** Who the peer is, where it is not TF.js's WebGPU backend (e.g. "onnxruntime-web webgpu"). */
  peerName?: string;
  /** e.g. "GFLOP/s", "seq/s". */
  unit: string;
  /** The WebGPU adapter's description. */
  adapter: string;
  /** Further figures in the same unit, also higher-is-better (e.g. each matmul variant). */
  extra?: Record<string, number>;
  /** A remark for the table (e.g. a TODO). */
  note?: string;
}

/** What a section gets to run with. */
export interface BenchContext {
  gpu: Gpu;
  args: BenchArgs;
  /** Reports one result (printed as a JSON line at once with --json). */
  emit(r: BenchResult): void;
  /** Progress line on stderr. */
  log(msg: string): void;
}

/** A benchmark section (`--only <name>`). */
export interface Section {
  name: string;
  /** One line saying what it measures. */
  title: string;
  /** Runs only when `--only` names it (slow sections: `scale`). */
  onlyWhenAsked?: boolean;
  run(ctx: BenchContext): Promise<void>;
}

/** Whether a case named `name` passes the `--shapes` filter. */
export function selected(args: BenchArgs, name: string): boolean {
  return !args.shapes.length || args.shapes.some((s) => name.includes(s));
}

/** A timed measurement: `iters` iterations in `seconds`. */
export interface Timing {
  iters: number;
  seconds: number;
}

/**
 * Times `runN(n)`, which must submit n iterations and resolve once the device has finished
 * them all (one wait, not one per iteration). One warm-up call first (compiles pipelines, fills
 * pools) also estimates an iteration's time; then enough iterations for `minSeconds` (at least
 * 1, at most `maxIters`) are timed, once. The estimate includes compilation, so it errs towards
 * fewer iterations; cases slower than `minSeconds` per iteration cost exactly two.
 */
export async function timeIterations(
  runN: (n: number) => Promise<void>,
  opts: { minSeconds: number; maxIters?: number },
): Promise<Timing> {
  let t0 = performance.now();
  await runN(1);
  const each = (performance.now() - t0) / 1000;
  const iters = Math.max(1, Math.min(opts.maxIters ?? 1000, Math.ceil(opts.minSeconds / each)));
  t0 = performance.now();
  await runN(iters);
  return { iters, seconds: (performance.now() - t0) / 1000 };
}

/** Formats a figure with 3 significant digits (at least integer precision). */
export function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "—";
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** ours / peer, or null. */
export function ratio(r: BenchResult): number | null {
  return r.ours !== null && r.peer !== null && r.peer > 0 ? r.ours / r.peer : null;
}

/** Keys every `--json` line carries (`ours` and `peer` may be null, never absent). */
export const JSON_KEYS = ["name", "shape", "adapter", "ours", "peer", "unit"] as const;

/**
 * The JSON line of one result (`name, shape, ours, peer, unit, adapter`, then the rest). A figure
 * that is missing or not finite is written as null, so the key is always there.
 */
export function jsonLine(r: BenchResult): string {
  const { name, shape, unit, adapter, section, extra, note, peerName } = r;
  const ours = finiteOrNull(r.ours), peer = finiteOrNull(r.peer);
  return JSON.stringify({ name, shape, ours, peer, unit, adapter, section, peerName, extra, note });
}

function finiteOrNull(x: number | null | undefined): number | null {
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/**
 * Seeded uniform(-scale, scale) floats from a 32-bit LCG: cheap for the hundreds of millions
 * of values the largest cases need (the values only matter for the result comparison).
 */
export function randomData(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const k = scale / 2147483648;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s * k - scale;
  }
  return out;
}

/** The peer of results that do not name one. */
export const DEFAULT_PEER = "TF.js webgpu";

/**
 * A Markdown-compatible table of results: case, ours, peer, ours/peer, extra figures, note; a
 * "peer is" column when some result names a peer other than TF.js.
 */
export function formatTable(results: BenchResult[]): string {
  const extraKeys = [...new Set(results.flatMap((r) => Object.keys(r.extra ?? {})))];
  const named = results.some((r) => r.peerName);
  const header = [
    "case",
    "unit",
    "ours",
    named ? "peer" : `peer (${DEFAULT_PEER})`,
    "ours/peer",
    ...(named ? ["peer is"] : []),
    ...extraKeys,
  ];
  const hasNote = results.some((r) => r.note);
  if (hasNote) header.push("note");
  const rows = results.map((r) => {
    const q = ratio(r);
    const row = [
      r.name,
      r.unit,
      fmtNum(r.ours),
      fmtNum(r.peer),
      q === null ? "—" : `${q.toFixed(2)}×`,
      ...(named ? [r.peerName ?? DEFAULT_PEER] : []),
      ...extraKeys.map((k) => fmtNum(r.extra?.[k])),
    ];
    if (hasNote) row.push(r.note ?? "");
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    "| " + cells.map((c, i) => i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ") +
    " |";
  const sep = "|" + widths.map((w, i) => i < 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")
    .join("|") +
    "|";
  return [line(header), sep, ...rows.map(line)].join("\n");
}
