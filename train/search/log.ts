/**
 * A search's study log: JSON lines, one record per trial event, ONE FILE PER WORKER
 * (`STUDY/trials-<worker>.jsonl`), merged on read, so several workers (processes, machines,
 * cluster array tasks) add to one study without sharing a file.
 *
 * Records (each with `worker` and `time`, an ISO time):
 * - `{"type": "study", "version": 1, "settings": {...}}`: first line of every worker's log; a
 *   worker whose settings differ from the study's is refused, naming the differences.
 * - `{"type": "start", "trial", "number", "params", "pass", "dir", "attempt", "dataSeed"}`: a
 *   trial begins (its hyperparameters; `pass`: the trials trained together from one pass over
 *   the data; `attempt` counts reruns after an interruption; head trials: `dataSeed`, the seed of
 *   the pass's data order, which a trial not first in its pass does not share with its `seed`).
 * - `{"type": "eval", "trial", "rung", "epoch", "score", "metrics", "goOn", "seconds"}`: its dev
 *   evaluation at a rung; `goOn` is the successive-halving decision (null at the last rung).
 * - `{"type": "end", "trial", "state", "score", "metrics", "seconds", "error"}`: it finished:
 *   "complete", "pruned" (stopped at a rung) or "failed" (its loss diverged).
 *
 * A trial id is `<worker>-<number>`, so ids never collide across workers. A worker's log is
 * written by that worker only, under its lock (data/output/lock.ts, `trials-<worker>.jsonl.lock`); the
 * worker name is a parameter (`--worker`; by default the host name), so a rerun of a worker picks
 * its log up again. A default name whose lock is held is an error naming the holder and the fixes
 * (wait, `--break-lock` if it is gone, or `--worker NAME` for another worker), never silently
 * another name: a run after a kill that took `<host>-2` would fork the study, leaving the
 * interrupted trials of `<host>` unresumed. A line cut
 * short by a kill is dropped when the log is read and cut off when its worker opens it again.
 * Checked by train/search/study_test.ts (two workers' logs merged; a resume).
 * @module
 */
import { decodeUtf8, InputError } from "../../data/errors.ts";
import { regularFileExists } from "../../data/files.ts";
import {
  acquireLock,
  EXIT_AT_ENV,
  exitIfAsked,
  type Lock,
  LockedError,
} from "../../data/output/mod.ts";
import type { Params } from "./space.ts";

/** The log format's version. */
export const STUDY_LOG_VERSION = 1;

/** First line of every worker's log. */
export interface StudyHeader {
  type: "study";
  version: number;
  worker: string;
  time: string;
  /** What the study's results depend on (task, space, budget, data, ...). */
  settings: Record<string, unknown>;
}

/** A trial begins. */
export interface TrialStart {
  type: "start";
  trial: string;
  worker: string;
  time: string;
  /** The worker's running number of the trial (1, 2, ...). */
  number: number;
  params: Params;
  /** The id of the first trial of the pass it trains in (heads trained together). */
  pass: string;
  /** Its output folder, relative to the study. */
  dir: string;
  /** 1, then 2, ... when it is run again after an interruption. */
  attempt: number;
  /**
   * Head trials: the seed of the pass's data order and subset (`--data-seed`); the trial's own
   * `seed` initialises its head. Absent in logs written before it was recorded.
   */
  dataSeed?: number;
}

/** A trial's dev evaluation at a rung. */
export interface TrialEval {
  type: "eval";
  trial: string;
  worker: string;
  time: string;
  /** The rung (0-based); the last is the full budget. */
  rung: number;
  /** Epochs trained when evaluated. */
  epoch: number;
  /** The maximized dev metric's value. */
  score: number;
  /** Every dev metric. */
  metrics: Record<string, number>;
  /** Successive halving's decision: go on (true), stop (false); null at the last rung. */
  goOn: boolean | null;
  /** Seconds since the trial's attempt started. */
  seconds: number;
}

/** A trial ends. */
export interface TrialEnd {
  type: "end";
  trial: string;
  worker: string;
  time: string;
  state: "complete" | "pruned" | "failed";
  /** Complete: the full budget's score; pruned: the last rung's; failed: null. */
  score: number | null;
  metrics?: Record<string, number>;
  /** Seconds the attempt took. */
  seconds: number;
  /** A failed trial's error. */
  error?: string;
}

/** Any record. */
export type StudyRecord = StudyHeader | TrialStart | TrialEval | TrialEnd;

/** One trial as the merged logs tell it (its latest attempt). */
export interface Trial {
  id: string;
  worker: string;
  number: number;
  params: Params;
  pass: string;
  dir: string;
  attempt: number;
  /** Head trials: its latest attempt's data seed (TrialStart `dataSeed`). */
  dataSeed?: number;
  /** When its first attempt started (its place in the study's order). */
  started: string;
  /** The latest attempt's evaluations, by rung. */
  evals: TrialEval[];
  end?: TrialEnd;
  /** The end's state, or "running" (still running elsewhere, or interrupted). */
  state: "complete" | "pruned" | "failed" | "running";
  /** The end's score (undefined while running). */
  score?: number | null;
}

/** Every worker's log of a study, merged. */
export interface Study {
  dir: string;
  /** The log files read, by name. */
  logs: string[];
  /** Each log's header. */
  headers: StudyHeader[];
  /** Trials in the order they started (then by id). */
  trials: Trial[];
}

/** The log of `worker` in study `dir`. */
export function logPath(dir: string, worker: string): string {
  return `${dir}/trials-${worker}.jsonl`;
}

/** Parses one worker's log text; a last line cut short (no newline, not JSON) is dropped. */
export function parseLog(text: string, file: string): StudyRecord[] {
  const lines = text.split("\n");
  const complete = text.endsWith("\n");
  const out: StudyRecord[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (!line.trim()) continue;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      if (i === lines.length - 1 && !complete) break; // a write cut short by a kill
      throw new InputError(`${file}:${i + 1}: not JSON (${(e as Error).message})`, {
        file,
        line: i + 1,
        cause: e,
      });
    }
    const r = rec as Record<string, unknown>;
    const bad = (why: string) =>
      new InputError(`${file}:${i + 1}: not a study record (${why})`, { file, line: i + 1 });
    if (typeof r !== "object" || r === null || Array.isArray(r)) throw bad("not an object");
    if (!["study", "start", "eval", "end"].includes(r.type as string)) {
      throw bad(`type ${JSON.stringify(r.type)}`);
    }
    if (r.type === "study") {
      if (r.version !== STUDY_LOG_VERSION) {
        throw new InputError(
          `${file}:${i + 1}: study log version ${r.version}, this program reads version ` +
            `${STUDY_LOG_VERSION}; use another --out`,
          { file, line: i + 1 },
        );
      }
      if (typeof r.settings !== "object" || r.settings === null) throw bad("no settings");
    } else {
      if (typeof r.trial !== "string") throw bad("no trial id");
      if (r.type === "start") {
        const ok = typeof r.params === "object" && r.params !== null &&
          typeof r.number === "number" && typeof r.pass === "string" && typeof r.dir === "string";
        if (!ok) throw bad("a start needs params, number, pass and dir");
      }
      // A NaN score is written as null (JSON has no NaN).
      if (r.type === "eval" && (typeof r.rung !== "number" || typeof r.score !== "number")) {
        if (typeof r.rung !== "number" || r.score !== null) throw bad("an eval needs rung, score");
      }
      if (r.type === "end" && !["complete", "pruned", "failed"].includes(r.state as string)) {
        throw bad(`end state ${JSON.stringify(r.state)}`);
      }
    }
    out.push(rec as StudyRecord);
  }
  return out;
}

/**
 * Reads every `trials-*.jsonl` in `dir` and merges them: one {@linkcode Trial} per id, its
 * latest attempt (a `start` record starts its evaluations over). A missing folder is an empty
 * study.
 */
export async function readStudy(dir: string): Promise<Study> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /^trials-.+\.jsonl$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  names.sort();
  const headers: StudyHeader[] = [];
  const trials = new Map<string, Trial>();
  for (const name of names) {
    const file = `${dir}/${name}`;
    let text: string;
    try {
      regularFileExists(file, { what: "search log" }); // a FIFO there would block the read
      text = decodeUtf8(await Deno.readFile(file), file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // removed meanwhile
      throw e;
    }
    for (const r of parseLog(text, file)) {
      if (r.type === "study") {
        headers.push(r);
        continue;
      }
      if (r.type === "start") {
        const first = trials.get(r.trial)?.started; // a rerun keeps the trial's place
        trials.set(r.trial, {
          id: r.trial,
          worker: r.worker,
          number: r.number,
          params: r.params,
          pass: r.pass,
          dir: r.dir,
          attempt: r.attempt ?? 1,
          ...(r.dataSeed !== undefined ? { dataSeed: r.dataSeed } : {}),
          started: first ?? r.time,
          evals: [],
          state: "running",
        });
        continue;
      }
      const t = trials.get(r.trial);
      if (!t) {
        throw new InputError(`${file}: a ${r.type} record of trial ${r.trial} before its start`, {
          file,
        });
      }
      if (r.type === "eval") {
        t.evals = [...t.evals.filter((e) => e.rung !== r.rung), r].sort((a, b) => a.rung - b.rung);
      } else {
        t.end = r;
        t.state = r.state;
        t.score = r.score;
      }
    }
  }
  const list = [...trials.values()].sort((a, b) =>
    a.started < b.started ? -1 : a.started > b.started ? 1 : a.id < b.id ? -1 : 1
  );
  return { dir, logs: names, headers, trials: list };
}

/** A worker's open log: the only writer of its file while it holds the lock. */
export class WorkerLog {
  readonly worker: string;
  readonly path: string;
  #lock: Lock;
  #enc = new TextEncoder();
  #written = 0;

  private constructor(worker: string, path: string, lock: Lock) {
    this.worker = worker;
    this.path = path;
    this.#lock = lock;
  }

  /**
   * Opens the log of `worker` in study `dir` under its lock (a live holder: a
   * {@linkcode LockedError} naming it). Without a worker name: the host name's, and while that is
   * held a {@linkcode LockedError} naming the holder and `--worker NAME` (no other name is taken
   * silently). A last line cut short by a kill is cut off.
   */
  static async open(
    dir: string,
    opts: { worker?: string; breakLock?: boolean; onNote?: (note: string) => void } = {},
  ): Promise<WorkerLog> {
    await Deno.mkdir(dir, { recursive: true });
    const take = (worker: string) => {
      const path = logPath(dir, worker);
      const lock = acquireLock(path, "file", { breakLock: opts.breakLock });
      if (lock.tookOver) opts.onNote?.(lock.tookOver);
      return new WorkerLog(worker, path, lock);
    };
    let log: WorkerLog | undefined;
    if (opts.worker !== undefined) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.worker)) {
        throw new InputError(
          `--worker ${opts.worker}: a worker name is letters, digits, ".", "_" and "-" ` +
            `(it names the log file trials-<worker>.jsonl)`,
        );
      }
      log = take(opts.worker);
    } else {
      const host = Deno.hostname().replace(/[^A-Za-z0-9._-]/g, "_").replace(/^[._-]+/, "") ||
        "worker";
      try {
        log = take(host);
      } catch (e) {
        if (!(e instanceof LockedError)) throw e;
        throw new LockedError(
          `worker ${host} (the default worker name, this host's) is taken: ${e.message}. ` +
            `To add another worker to the study instead, give it its own name: --worker NAME`,
          { cause: e },
        );
      }
    }
    await log.#repair();
    return log;
  }

  /** Cuts off a last line a kill left without its newline (this worker holds the lock). */
  async #repair(): Promise<void> {
    let bytes: Uint8Array;
    try {
      regularFileExists(this.path, { what: "search log" }); // a FIFO there would block the read
      bytes = await Deno.readFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    if (!bytes.length || bytes[bytes.length - 1] === 10) return;
    const keep = bytes.lastIndexOf(10) + 1;
    await Deno.writeFile(this.path, bytes.subarray(0, keep));
  }

  /** Whether the log has no record yet. */
  async empty(): Promise<boolean> {
    try {
      return (await Deno.stat(this.path)).size === 0;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return true;
      throw e;
    }
  }

  /**
   * Appends one record (its `worker` and `time` filled in), as one write of one line. Kill
   * hooks (data/output/kill.ts): `search-log:N` after this process's N-th record,
   * `search-log-torn:N` with half of it written (a line without its newline, which the next
   * open cuts off).
   */
  async write<R extends StudyRecord>(rec: Omit<R, "worker" | "time">): Promise<R> {
    const full = { ...rec, worker: this.worker, time: new Date().toISOString() } as R;
    const line = this.#enc.encode(JSON.stringify(full) + "\n");
    const n = String(++this.#written);
    if (Deno.env.get(EXIT_AT_ENV) === `search-log-torn:${n}`) {
      await Deno.writeFile(this.path, line.subarray(0, line.length >> 1), { append: true });
      exitIfAsked("search-log-torn", n);
    }
    await Deno.writeFile(this.path, line, { append: true });
    exitIfAsked("search-log", n);
    return full;
  }

  /** Releases the lock. */
  release(): void {
    this.#lock.release();
  }
}
