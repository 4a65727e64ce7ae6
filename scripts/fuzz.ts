/**
 * Fuzzes every reader of the project's input files with seeded mutations of valid files.
 *
 *   deno task fuzz [--inputs N] [--seconds N] [--format F[,F...]] [--seed S] [--out DIR]
 *   deno task fuzz --replay FILE --format F
 *
 * Formats (scripts/_fuzz_formats.ts): safetensors, config, vocab, tokenizer, glue-tsv, squad,
 * pred-glue, pred-squad, na-prob, npy, h5, h5-state, tokenizer-settings, manifest, zip. Each format's
 * seeds are generated in a temporary folder by the fuzzer itself; each input is a seed with 1–4 mutations
 * (scripts/_fuzz_mutate.ts) and goes through the readers the commands call
 * (`loadBertCheckpoint`, `loadTokenizer`, the GLUE tasks' `readRows`, `readSquad`,
 * `evaluateFiles`, `decodeNpy`, `H5Reader` with the store checks of head training, ...), in a
 * child process per format (scripts/_fuzz_child.ts says why not a Worker) with a time limit per
 * input (`--timeout-ms`, default 2000) and a memory limit (`--memory-mb`, default 2048: the
 * child's JavaScript heap is capped at it, and the child is killed when its resident memory
 * passes it, checked every 50 ms while an input runs).
 *
 * Expected result: every input ends in a valid result or an `InputError` naming the file, so the
 * command prints `0 failures` and exits 0. A failure is any other exception (TypeError,
 * RangeError, ...), an unhandled rejection, an invalid result or a hang; each is printed with
 * the format, the seed, the input's index and its mutations, and the input is saved under
 * `--out` (default results/fuzz) to replay with `--replay FILE --format F`. An input past the
 * memory limit is a failure too. HDF5 inputs go through libhdf5 (h5wasm), which can loop on a
 * corrupt file: a hang (or the memory limit) there is counted as contained (the child is
 * killed; the input is kept under `--out`/contained), not as a failure.
 * An input that runs past the limit is retried once with 5× the limit before it counts as a hang.
 *
 * Runs `--inputs` per format (a fixed, seeded set: the same inputs on any machine, as the
 * suite's tests/fuzz_test.ts runs them); with `--seconds` too, stops at whichever comes first;
 * with neither, 60 seconds shared by the formats. 12,000 inputs per format take 4–5 minutes on
 * 2 CPU cores.
 * @module
 */
import { parseArgs } from "node:util";
import { Rng } from "../data/rng.ts";
import { readInput } from "../data/files.ts";
import { formatByName, FORMATS, type FuzzFormat } from "./_fuzz_formats.ts";
import { mutate } from "./_fuzz_mutate.ts";
import { type FromChild, MARK, type Outcome } from "./_fuzz_child.ts";
import { runMain, UsageError } from "./_cli.ts";

/** Options of {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Format names; default all. */
  formats?: string[];
  /** Seeds the mutations: the same seed gives the same inputs. Default 1. */
  seed?: number;
  /** Wall-clock budget shared by the formats. Default 60 (unless `inputs` is given). */
  seconds?: number;
  /** Inputs per format (the seeds unmutated first). Default unlimited within `seconds`. */
  inputs?: number;
  /** Where failing inputs are saved. Default `results/fuzz`. */
  out?: string;
  /** Limit per input. Default 2000 ms. */
  timeoutMs?: number;
  /** Memory limit of the child running an input (heap and resident). Default 2048 MiB. */
  memoryMb?: number;
  /** Progress and failures (default console.log). */
  log?: (line: string) => void;
}

/** One failing input. */
export interface FuzzFailure {
  /** The format's name. */
  format: string;
  /** The `--seed` of the run. */
  seed: number;
  /** Index of the input (-1 - k for the k-th seed unmutated). */
  index: number;
  /** The seed it came from and each mutation applied. */
  steps: string[];
  /** "failure" (an exception or invalid result), "hang" or "memory" (past the limit). */
  kind: "failure" | "hang" | "memory";
  /** What the reader threw (absent for a hang). */
  error?: { name: string; message: string; stack: string };
  /** Where the input was saved. */
  saved: string;
}

/** Counts of one format's run. */
export interface FormatStats {
  /** The format's name. */
  format: string;
  /** Inputs run: the seeds unmutated, then mutations. */
  inputs: number;
  /** Inputs at least one reader returned a valid result for (the others refused them). */
  accepted: number;
  /** Inputs every reader refused with an InputError naming the file. */
  refused: number;
  /** Inputs that ended in anything else (see {@linkcode FuzzFailure}). */
  failures: number;
  /** HDF5 inputs stopped at the time or memory limit (libhdf5): contained, not failures. */
  contained: number;
  /** Inputs that needed more than the limit but finished within 5× it. */
  slow: number;
  /** Wall-clock time of the format's run. */
  seconds: number;
}

/** What {@linkcode runFuzz} found. */
export interface FuzzReport {
  /** One entry per format, in the order run. */
  stats: FormatStats[];
  /** Every failing input, as found. */
  failures: FuzzFailure[];
}

type Result = (Outcome & { type?: string }) | { outcome: "timeout" } | {
  outcome: "memory";
  mb: number;
} | {
  outcome: "crash";
  error: { name: string; message: string; stack: string };
};

const ROOT = new URL("../", import.meta.url).pathname;

/**
 * One format's child process (scripts/_fuzz_child.ts): started, fed inputs one at a time, killed
 * and replaced when an input hangs or libhdf5 aborts.
 */
class Lane {
  #child: Deno.ChildProcess | null = null;
  #stdin: WritableStreamDefaultWriter<Uint8Array> | null = null;
  #pending: ((r: Result) => void) | null = null;
  #ready: PromiseWithResolvers<string[]> | null = null;
  #n = 0;
  #dying: Promise<unknown>[] = [];
  seeds: Uint8Array[] = [];

  constructor(
    readonly format: FuzzFormat,
    readonly dir: string,
    readonly memoryMb = 2048,
  ) {}

  async start(): Promise<void> {
    this.stop();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--v8-flags=--max-old-space-size=${this.memoryMb}`,
        "--config",
        `${ROOT}deno.json`,
        `${ROOT}scripts/_fuzz_child.ts`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    const ready = Promise.withResolvers<string[]>();
    this.#ready = ready;
    this.#listen(child);
    await this.#send({ type: "init", format: this.format.name, dir: `${this.dir}/${this.#n++}` });
    this.seeds = (await ready.promise).map((s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
  }

  /** Dispatches the child's protocol lines until its stdout ends (it exited or was killed). */
  async #listen(child: Deno.ChildProcess): Promise<void> {
    let text = "";
    const dec = new TextDecoder();
    try {
      for await (const chunk of child.stdout) {
        text += dec.decode(chunk, { stream: true });
        let nl;
        while ((nl = text.indexOf("\n")) >= 0) {
          const line = text.slice(0, nl);
          text = text.slice(nl + 1);
          if (!line.startsWith(MARK)) continue;
          const m = JSON.parse(line.slice(MARK.length)) as FromChild;
          if (m.type === "ready") this.#ready?.resolve(m.seeds);
          else if (m.type === "crash") this.#settle({ outcome: "crash", error: m.error });
          else this.#settle(m);
        }
      }
    } catch { /* killed */ }
    if (this.#child !== child) return; // replaced: its end is expected
    const error = { name: "Error", message: "the child process exited", stack: "" };
    this.#ready?.reject(new Error(`${this.format.name}: the fuzz child exited while starting`));
    this.#settle({ outcome: "crash", error });
    this.#child = null;
  }

  async #send(header: unknown, body?: Uint8Array): Promise<void> {
    const h = new TextEncoder().encode(JSON.stringify(header));
    const parts = body ? [h, body] : [h];
    const out = new Uint8Array(parts.reduce((a, p) => a + 4 + p.length, 0));
    let o = 0;
    for (const p of parts) {
      new DataView(out.buffer).setUint32(o, p.length, true);
      out.set(p, o + 4);
      o += 4 + p.length;
    }
    await this.#stdin!.write(out);
  }

  #settle(r: Result): void {
    const p = this.#pending;
    this.#pending = null;
    p?.(r);
  }

  /**
   * Runs one input; "timeout" when it takes longer than `ms`, "memory" when the child's
   * resident memory passes the limit (the child is then killed).
   */
  run(id: number, bytes: Uint8Array, ms: number): Promise<Result> {
    return new Promise((resolve) => {
      const end = (r: Result) => {
        clearTimeout(timer);
        clearInterval(watch);
        this.#pending = null;
        resolve(r);
      };
      const timer = setTimeout(() => {
        this.stop();
        end({ outcome: "timeout" });
      }, ms);
      const pid = this.#child?.pid;
      const watch = setInterval(() => {
        const mb = pid === undefined ? 0 : residentMb(pid);
        if (mb > this.memoryMb) {
          this.stop();
          end({ outcome: "memory", mb });
        }
      }, 50);
      this.#pending = end;
      this.#send({ type: "run", id }, bytes).catch(() => {});
    });
  }

  get alive(): boolean {
    return this.#child !== null;
  }

  stop(): void {
    const c = this.#child;
    this.#child = null;
    if (!c) return;
    this.#stdin?.close().catch(() => {});
    try {
      c.kill("SIGKILL");
    } catch { /* already gone */ }
    this.#dying.push(c.status.catch(() => {}));
  }

  /** Stops the child and waits until every child this lane started has exited. */
  async close(): Promise<void> {
    this.stop();
    await Promise.all(this.#dying);
    this.#dying = [];
  }
}

/** Resident memory of process `pid` in MiB (Linux /proc; 0 where there is none). */
function residentMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function save(
  out: string,
  f: Omit<FuzzFailure, "saved">,
  bytes: Uint8Array,
): Promise<string> {
  await Deno.mkdir(out, { recursive: true });
  const base = `${out}/${f.format}-seed${f.seed}-${f.index}`;
  await Deno.writeFile(`${base}.bin`, bytes);
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(f, null, 2) + "\n");
  return `${base}.bin`;
}

/** Runs the fuzzer; see the module note. */
export async function runFuzz(opts: FuzzOptions = {}): Promise<FuzzReport> {
  const formats = (opts.formats ?? FORMATS.map((f) => f.name)).map(formatByName);
  const seed = opts.seed ?? 1;
  const limit = opts.timeoutMs ?? 2000;
  const memoryMb = opts.memoryMb ?? 2048;
  const out = opts.out ?? "results/fuzz";
  const log = opts.log ?? ((l: string) => console.log(l));
  const total = opts.seconds ?? (opts.inputs === undefined ? 60 : Infinity);
  const work = await Deno.makeTempDir({ prefix: "bertvision-fuzz-" });
  const report: FuzzReport = { stats: [], failures: [] };
  const t0 = performance.now();
  try {
    for (const [k, format] of formats.entries()) {
      // Each format gets an equal share of what is left of the budget.
      const left = total - (performance.now() - t0) / 1000;
      const budget = left / (formats.length - k);
      report.stats.push(
        await fuzzFormat(format, `${work}/${format.name}`, {
          seed,
          limit,
          out,
          budget,
          memoryMb,
          inputs: opts.inputs ?? Infinity,
          log,
          failures: report.failures,
        }),
      );
    }
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  return report;
}

async function fuzzFormat(
  format: FuzzFormat,
  dir: string,
  o: {
    seed: number;
    limit: number;
    out: string;
    budget: number;
    memoryMb: number;
    inputs: number;
    log: (l: string) => void;
    failures: FuzzFailure[];
  },
): Promise<FormatStats> {
  const t0 = performance.now();
  const st: FormatStats = {
    format: format.name,
    inputs: 0,
    accepted: 0,
    refused: 0,
    failures: 0,
    contained: 0,
    slow: 0,
    seconds: 0,
  };
  const lane = new Lane(format, dir, o.memoryMb);
  await lane.start();
  const seeds = lane.seeds;
  const hot = format.hot ?? 256;
  try {
    for (let i = -seeds.length; i < o.inputs - seeds.length; i++) {
      if ((performance.now() - t0) / 1000 >= o.budget) break;
      const m = i < 0
        ? { bytes: seeds[-1 - i], steps: [`seed ${-1 - i} unmutated`] }
        : mutate(new Rng(o.seed, `${format.name}#${i}`), seeds, format.kind, hot);
      if (!lane.alive) await lane.start();
      let r = await lane.run(i, m.bytes, o.limit);
      if (r.outcome === "timeout") {
        // A slow input or a hang? Once more, in a fresh child, with five times the time.
        await lane.start();
        r = await lane.run(i, m.bytes, 5 * o.limit);
        if (r.outcome !== "timeout") st.slow++;
      }
      st.inputs++;
      const fail = async (kind: FuzzFailure["kind"], error?: FuzzFailure["error"]) => {
        const f = { format: format.name, seed: o.seed, index: i, steps: m.steps, kind, error };
        const saved = await save(o.out, f, m.bytes);
        o.failures.push({ ...f, saved });
        st.failures++;
        o.log(
          `FAIL ${format.name} seed ${o.seed} input ${i} [${m.steps.join("; ")}]: ` +
            (error
              ? `${error.name}: ${error.message.split("\n")[0]}`
              : kind === "memory"
              ? `past the memory limit (${o.memoryMb} MiB)`
              : `hang (> ${5 * o.limit} ms)`) +
            `\n  saved ${saved}; replay: deno task fuzz --replay ${saved} --format ${format.name}`,
        );
      };
      if (r.outcome === "timeout" || r.outcome === "memory") {
        const why = r.outcome === "memory"
          ? `passed ${o.memoryMb} MiB (${r.mb.toFixed(0)} MiB resident)`
          : `ran past ${5 * o.limit} ms`;
        if (format.hdf5) {
          // libhdf5 looping on a corrupt file: contained (the child is killed); kept to look at.
          st.contained++;
          const f = {
            format: format.name,
            seed: o.seed,
            index: i,
            steps: m.steps,
            kind: r.outcome === "memory" ? "memory" : "hang",
          };
          const saved = await save(`${o.out}/contained`, f as Omit<FuzzFailure, "saved">, m.bytes);
          o.log(`contained: ${format.name} input ${i} ${why} (saved ${saved})`);
        } else await fail(r.outcome === "memory" ? "memory" : "hang");
        await lane.start();
      } else if (r.outcome === "crash") {
        await fail("failure", r.error);
        await lane.start();
      } else if (r.outcome === "failure") {
        await fail("failure", r.error);
      } else if (r.valid > 0) st.accepted++;
      else st.refused++;
      // libhdf5 aborted (its WebAssembly state is gone), or a long run: a fresh child.
      if ("restart" in r && r.restart || (format.hdf5 && st.inputs % 1000 === 0)) lane.stop();
    }
  } finally {
    await lane.close();
  }
  st.seconds = (performance.now() - t0) / 1000;
  o.log(
    `${format.name}: ${st.inputs} inputs (${st.accepted} read, ${st.refused} refused with an ` +
      `InputError naming the file), ${st.failures} failures` +
      (format.hdf5 ? `, ${st.contained} contained` : "") +
      (st.slow ? `, ${st.slow} slow` : "") + `, ${st.seconds.toFixed(1)} s`,
  );
  return st;
}

/** Runs one saved input through its format's readers; the outcome as a line. */
export async function replay(
  file: string,
  formatName: string,
  timeoutMs = 10_000,
  memoryMb = 2048,
): Promise<{ failed: boolean; line: string }> {
  const format = formatByName(formatName);
  const bytes = await readInput(file);
  const work = await Deno.makeTempDir({ prefix: "bertvision-fuzz-" });
  const lane = new Lane(format, work, memoryMb);
  try {
    await lane.start();
    const r = await lane.run(0, bytes, timeoutMs);
    if (r.outcome === "timeout") {
      return { failed: !format.hdf5, line: `${file}: hang (> ${timeoutMs} ms)` };
    }
    if (r.outcome === "memory") {
      return {
        failed: !format.hdf5,
        line: `${file}: past the memory limit (${r.mb.toFixed(0)} MiB resident)`,
      };
    }
    if (r.outcome === "valid") {
      return {
        failed: false,
        line: `${file}: ok (${
          r.inputErrors
            ? `${r.inputErrors} reader(s) refused it with an InputError naming the file`
            : "a valid result"
        })`,
      };
    }
    const e = r.error!;
    return { failed: true, line: `${file}: FAIL ${e.name}: ${e.message}\n${e.stack}` };
  } finally {
    await lane.close();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

const HELP = `deno task fuzz [--inputs N] [--seconds N] [--format F[,F...]] [--seed S] [--out DIR]
deno task fuzz --replay FILE --format F

Feeds seeded mutations of valid files to every reader; fails on anything but a valid result or
an InputError naming the file. Formats: ${FORMATS.map((f) => f.name).join(" ")}
  --inputs N       inputs per format: a fixed, seeded set (default: as many as --seconds allows)
  --seconds N      wall-clock budget shared by the formats (default 60 unless --inputs is given)
  --format F,F     formats to fuzz (default all)
  --seed S         seeds the mutations (default 1)
  --out DIR        where failing inputs are saved (default results/fuzz)
  --timeout-ms MS  limit per input (default 2000; a slow input is retried with 5x)
  --memory-mb MB   memory limit of the child running an input (default 2048)
  --replay FILE    run one saved input (with --format)`;

function num(v: string | undefined, flag: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n >= min)) {
    throw new UsageError(`--${flag} must be a number ≥ ${min}, got "${v}"`);
  }
  return n;
}

if (import.meta.main) {
  await runMain("fuzz", async () => {
    let v;
    try {
      v = parseArgs({
        args: Deno.args,
        strict: true,
        options: {
          seconds: { type: "string" },
          inputs: { type: "string" },
          format: { type: "string" },
          seed: { type: "string" },
          out: { type: "string" },
          "timeout-ms": { type: "string" },
          "memory-mb": { type: "string" },
          replay: { type: "string" },
          help: { type: "boolean" },
        },
      }).values;
    } catch (e) {
      throw new UsageError(`${(e as Error).message}\n${HELP}`);
    }
    if (v.help) {
      console.log(HELP);
      return;
    }
    const formats = v.format?.split(",").map((s) => s.trim()).filter(Boolean);
    for (const f of formats ?? []) {
      if (!FORMATS.some((x) => x.name === f)) {
        throw new UsageError(
          `--format ${f}: no such format (formats: ${FORMATS.map((x) => x.name).join(" ")})`,
        );
      }
    }
    if (v.replay !== undefined) {
      if (formats?.length !== 1) throw new UsageError("--replay FILE needs one --format F");
      const r = await replay(
        v.replay,
        formats[0],
        num(v["timeout-ms"], "timeout-ms", 1),
        num(v["memory-mb"], "memory-mb", 64),
      );
      console.log(r.line);
      if (r.failed) Deno.exit(1);
      return;
    }
    const report = await runFuzz({
      formats,
      seed: num(v.seed, "seed", 0),
      seconds: num(v.seconds, "seconds", 0),
      inputs: num(v.inputs, "inputs", 0),
      out: v.out,
      timeoutMs: num(v["timeout-ms"], "timeout-ms", 1),
      memoryMb: num(v["memory-mb"], "memory-mb", 64),
    });
    const n = report.stats.reduce((a, s) => a + s.inputs, 0);
    const secs = report.stats.reduce((a, s) => a + s.seconds, 0);
    console.log(
      `${n} inputs in ${secs.toFixed(0)} s over ${report.stats.length} formats: ` +
        `${report.failures.length} failures`,
    );
    if (report.failures.length) Deno.exit(1);
  });
}
