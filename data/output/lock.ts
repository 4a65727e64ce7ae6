/**
 * One writer per output: an exclusive lock file beside every output the project writes (a
 * capture's `.h5`, a fine-tuning, head or results directory), taken before anything is touched.
 *
 * - The lock is `PATH.lock` (for a file) or `DIR/.lock` (for a directory), created with
 *   `createNew` (atomic), holding JSON: host, pid, the command line, the Slurm or Kubernetes job
 *   when there is one, when it was taken and a heartbeat the holder refreshes every
 *   {@linkcode HEARTBEAT_SECONDS}.
 * - A second writer fails at once with an error naming the holder. A lock whose process is dead
 *   (same host: no `/proc/<pid>`, or a pid reused by a younger process) or whose heartbeat is
 *   older than {@linkcode STALE_SECONDS} (any host, e.g. a cluster task killed and rerun
 *   elsewhere) is taken over, with a note; `breakLock` (`--break-lock`) takes it regardless.
 * - {@linkcode Lock.release} removes it; so does the process ending normally or on SIGINT /
 *   SIGTERM. After a `kill -9` the lock stays, and is taken over as a dead process's.
 *
 * Checked by data/lock_test.ts (two writers, a dead holder, a stale heartbeat, break-lock, the
 * holder named) and tests/lock_test.ts (two capture commands on one file).
 * @module
 */
import { InputError } from "../errors.ts";

/** Seconds between heartbeats of a held lock. */
export const HEARTBEAT_SECONDS = 10;
/** A lock whose heartbeat is older than this is abandoned (its holder died without a trace). */
export const STALE_SECONDS = 120;

/** What a lock file says about its holder. */
export interface LockInfo {
  host: string;
  pid: number;
  /** The holder's command line. */
  command: string;
  /** e.g. "slurm job 1234 (array task 2)", "kubernetes job x, index 2". */
  job?: string;
  /** When the lock was taken and last refreshed (ISO times). */
  started: string;
  heartbeat: string;
  /** The holder's process start time (`/proc/<pid>/stat` field 22), to spot a reused pid. */
  procStart?: string;
}

/** A held lock. */
export interface Lock {
  /** The lock file. */
  readonly path: string;
  /** A note when an abandoned lock was taken over (for the log), else undefined. */
  readonly tookOver?: string;
  /** Removes the lock (once; later calls do nothing). */
  release(): void;
}

/** Raised when another live writer holds the lock. */
export class LockedError extends InputError {}

/** The lock file of an output: `PATH.lock` for a file, `DIR/.lock` for a directory. */
export function lockPathOf(output: string, kind: "file" | "dir"): string {
  return kind === "dir" ? `${output.replace(/\/+$/, "")}/.lock` : `${output}.lock`;
}

function jobOf(): string | undefined {
  const e = (k: string) => Deno.env.get(k);
  if (e("SLURM_JOB_ID")) {
    const task = e("SLURM_ARRAY_TASK_ID");
    return `slurm job ${e("SLURM_ARRAY_JOB_ID") ?? e("SLURM_JOB_ID")}` +
      (task ? ` (array task ${task})` : "");
  }
  if (e("JOB_COMPLETION_INDEX") !== undefined) {
    return `kubernetes ${e("HOSTNAME") ?? "pod"}, index ${e("JOB_COMPLETION_INDEX")}`;
  }
  return undefined;
}

function procStart(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether the holder of `info` is known to be gone, and why. */
function abandoned(info: LockInfo, now: number): string | undefined {
  const age = (now - Date.parse(info.heartbeat)) / 1000;
  if (info.host === Deno.hostname()) {
    const start = procStart(info.pid);
    if (start === undefined) return `its process ${info.pid} on ${info.host} is gone`;
    if (info.procStart && start !== info.procStart) {
      return `process ${info.pid} on ${info.host} is another program now`;
    }
    return undefined; // alive on this host: its heartbeat may just be late
  }
  if (!(age <= STALE_SECONDS)) {
    return `its heartbeat is ${Math.round(age)} s old (host ${info.host})`;
  }
  return undefined;
}

function describe(info: LockInfo): string {
  return `pid ${info.pid} on ${info.host}` + (info.job ? `, ${info.job}` : "") +
    `, since ${info.started}: ${info.command}`;
}

const held = new Set<string>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const cleanup = () => {
    for (const p of held) {
      try {
        Deno.removeSync(p);
      } catch { /* already gone */ }
    }
    held.clear();
  };
  globalThis.addEventListener("unload", cleanup);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(sig, () => {
        cleanup();
        Deno.exit(sig === "SIGINT" ? 130 : 143);
      });
    } catch { /* not supported here */ }
  }
}

/**
 * Takes the lock of `output` ("file" or "dir"), creating the parent folder if needed. Throws a
 * {@linkcode LockedError} naming the holder when a live writer has it; takes over an abandoned
 * lock (or any, with `breakLock`) and says so in `tookOver`.
 */
export function acquireLock(
  output: string,
  kind: "file" | "dir",
  opts: { breakLock?: boolean; command?: string } = {},
): Lock {
  const path = lockPathOf(output, kind);
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  Deno.mkdirSync(dir, { recursive: true });
  const now = new Date().toISOString();
  const info: LockInfo = {
    host: Deno.hostname(),
    pid: Deno.pid,
    command: opts.command ?? ["deno", ...Deno.args].join(" "),
    job: jobOf(),
    started: now,
    heartbeat: now,
    procStart: procStart(Deno.pid),
  };
  let tookOver: string | undefined;
  for (let attempt = 0;; attempt++) {
    try {
      const f = Deno.openSync(path, { write: true, createNew: true });
      try {
        f.writeSync(new TextEncoder().encode(JSON.stringify(info, null, 2) + "\n"));
      } finally {
        f.close();
      }
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists) || attempt > 3) {
        if (e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotADirectory) {
          throw new InputError(`${path}: cannot create the lock (${(e as Error).message})`);
        }
        throw e;
      }
      let other: LockInfo | null = null;
      try {
        other = JSON.parse(Deno.readTextFileSync(path));
      } catch { /* half-written or unreadable: treat as abandoned */ }
      const why = other ? abandoned(other, Date.now()) : "it is unreadable";
      if (other && !why && !opts.breakLock) {
        throw new LockedError(
          `${output} is being written by another process (${describe(other)}); wait for it, ` +
            `or if it is gone, rerun with --break-lock (lock: ${path})`,
        );
      }
      tookOver = `took over the lock ${path} from ` +
        (other ? describe(other) : "an unknown holder") + ` (${why ?? "--break-lock"})`;
      try {
        Deno.removeSync(path);
      } catch { /* another taker was first: try again */ }
    }
  }
  installHandlers();
  held.add(path);
  const beat = setInterval(() => {
    try {
      info.heartbeat = new Date().toISOString();
      const tmp = `${path}.${Deno.pid}.tmp`;
      Deno.writeTextFileSync(tmp, JSON.stringify(info, null, 2) + "\n");
      Deno.renameSync(tmp, path);
    } catch { /* a heartbeat that fails is retried at the next beat */ }
  }, HEARTBEAT_SECONDS * 1000);
  Deno.unrefTimer(beat);
  let released = false;
  return {
    path,
    tookOver,
    release() {
      if (released) return;
      released = true;
      clearInterval(beat);
      held.delete(path);
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    },
  };
}
