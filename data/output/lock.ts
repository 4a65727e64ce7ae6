/**
 * One writer per output: an exclusive lock beside every output the project writes (a capture's
 * `.h5`, a fine-tuning, head or results directory), taken before anything is touched.
 *
 * Files, for a lock path `PATH` (`OUT.lock` for a file, `DIR/.lock` for a directory):
 * - `PATH`: the holder's record (JSON: host, pid, command line, Slurm/Kubernetes job, start time,
 *   a random `token`, the boot id, PID namespace and process start time). It appears only
 *   complete: the record is written to `PATH.<token>.tmp`, fsynced, and hard-linked into place
 *   (`link` is exclusive; when it reports EEXIST the temp file's link count of 2 says it worked
 *   anyway, the open(2) recipe for NFS). It is never rewritten while held.
 * - `PATH.<token>.beat`: the holder's heartbeat, rewritten every {@linkcode HEARTBEAT_SECONDS} by
 *   a worker thread (data/output/heartbeat_worker.js) that synchronous work cannot starve. Its age
 *   is judged against a file the judge has just written in the same folder (file-system times,
 *   never two machines' clocks).
 * - `PATH.guard`: never unlinked. Every removal of `PATH` (a takeover, a release, --break-lock)
 *   happens under an OS lock on it (`flock`), after re-reading `PATH` and finding the token it
 *   judged. Creation only by link and removal only of a judged token under the guard mean no
 *   interleaving gives two holders. (One OS lock held for the whole run was not chosen: a holder
 *   on a file system without working `flock` would then have no exclusion at all, while here only
 *   takeovers need it; and the record would still be needed to name the holder.)
 *
 * A second writer fails at once with a {@linkcode LockedError} naming the holder. The holder is
 * judged gone, and its lock taken over with a note, when: it has this host name, boot id and PID
 * namespace (all known) and its pid is gone, reused (another start time) or a zombie; or,
 * otherwise (an unreadable `/proc` included), its heartbeat is older than
 * {@linkcode STALE_SECONDS}. `breakLock` (`--break-lock`) takes any lock. A takeover or release
 * waits for the guard at most 10 s; trouble with it is an {@linkcode InputError} naming it (a
 * release only warns).
 *
 * Fencing: a holder whose lock was taken (by --break-lock, or a takeover after it stalled) never
 * touches the new holder's lock: its heartbeat notices within a beat and marks it lost;
 * {@linkcode Lock.check} and every atomic write into the output (data/output/atomic.ts,
 * {@linkcode checkOutputWrite}, paths compared normalised) throw a {@linkcode LockLostError}
 * naming the new holder; a CLI ({@linkcode setLockLostAction} "exit") also stops at once; its
 * release and exit handlers remove only a lock still carrying its token. The exit, signal and
 * uncaught-error handlers are installed only while a lock is held.
 *
 * Checked by data/output/lock_test.ts (forced interleavings through the `BERTVISION_TEST_LOCK_PAUSE`
 * hooks, a stress round of six processes, takeovers, zombies, other boots, all-or-nothing) and
 * tests/lock_test.ts (two capture commands on one file, a lock leaked by a failed head run).
 * @module
 */
import { Worker } from "node:worker_threads";
import { InputError } from "../errors.ts";
import { regularFileExists } from "../files.ts";

/** What data/output/heartbeat_worker.js is sent to start beating a lock. */
interface HeartbeatStart {
  op: "start";
  path: string;
  token: string;
  beat: string;
  ms: number;
  /** Int32Array over it: [0] is set to 1 when the lock is lost. */
  flag: SharedArrayBuffer;
}

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
  /** When the lock was taken (ISO time). */
  started: string;
  /** The holder's random token: its beat file is `PATH.<token>.beat`. */
  token?: string;
  /** `/proc/sys/kernel/random/boot_id` and `readlink /proc/self/ns/pid` of the holder. */
  bootId?: string;
  pidNs?: string;
  /** The holder's process start time (`/proc/<pid>/stat` field 22), to spot a reused pid. */
  procStart?: string;
}

/** A held lock. */
export interface Lock {
  /** The lock file. */
  readonly path: string;
  /** The output it guards. */
  readonly output: string;
  /** This holder's token (in the lock file while it holds it). */
  readonly token: string;
  /** A note when an abandoned lock was taken over (for the log), else undefined. */
  readonly tookOver?: string;
  /** Throws a {@linkcode LockLostError} naming the new holder when the lock is no longer ours. */
  check(): void;
  /** Removes the lock if it is still ours (once; later calls do nothing). */
  release(): void;
}

/** Raised when another live writer holds the lock. */
export class LockedError extends InputError {}
/** Raised in a holder whose lock was taken: it must stop writing the output. */
export class LockLostError extends LockedError {}

/**
 * Whether a directory entry is one of the lock's own files in a directory output (`.lock`, its
 * guard, a holder's beat or record being linked), which a command listing the directory's
 * contents passes over.
 */
export function isLockFile(name: string): boolean {
  return /^\.lock($|\.)/.test(name);
}

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

function readOr(path: string, read: (p: string) => string): string | undefined {
  try {
    return read(path).trim();
  } catch {
    return undefined;
  }
}

/** This machine's boot id (`BERTVISION_TEST_LOCK_BOOT_ID` overrides it in tests). */
function bootId(): string | undefined {
  return Deno.env.get("BERTVISION_TEST_LOCK_BOOT_ID") ??
    readOr("/proc/sys/kernel/random/boot_id", Deno.readTextFileSync);
}

function pidNs(): string | undefined {
  return readOr("/proc/self/ns/pid", Deno.readLinkSync);
}

/** A process's start time (`/proc/<pid>/stat` field 22) and state (field 3), if it exists. */
function procStat(pid: number): { start: string; state: string } | undefined {
  const stat = readOr(`/proc/${pid}/stat`, Deno.readTextFileSync);
  return stat === undefined ? undefined : parseStat(stat);
}

function parseStat(stat: string): { start: string; state: string } {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { state: f[0], start: f[19] };
}

/**
 * What `/proc` says of process `pid` of this machine: its stat, "gone" (NotFound while
 * `/proc/1/stat` is readable, so `/proc` is not hidden), or "unknown" (any other error).
 */
function procOf(pid: number): { start: string; state: string } | "gone" | "unknown" {
  try {
    return parseStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return "unknown";
    try {
      Deno.readTextFileSync("/proc/1/stat");
      return "gone";
    } catch {
      return "unknown";
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const paused = new Set<string>();

/**
 * A test hook: with `BERTVISION_TEST_LOCK_PAUSE` = `point` (create, write, takeover, release) and
 * `BERTVISION_TEST_LOCK_PAUSE_FILE` = F, the first time this process reaches `point` it writes
 * `F.at` (its pid) and waits for F to exist.
 */
function pauseAt(point: "create" | "write" | "takeover" | "release"): void {
  const file = Deno.env.get("BERTVISION_TEST_LOCK_PAUSE_FILE");
  if (Deno.env.get("BERTVISION_TEST_LOCK_PAUSE") !== point || !file || paused.has(point)) return;
  paused.add(point);
  Deno.writeTextFileSync(`${file}.at`, `${Deno.pid}\n`);
  for (const t0 = Date.now(); Date.now() - t0 < 60_000; sleepSync(10)) {
    try {
      Deno.statSync(file);
      return;
    } catch { /* not yet */ }
  }
}

/** What is at a lock path now: its record (if it parses) and its identity, or null if none. */
interface Seen {
  info?: LockInfo;
  id: string;
}

function readLock(path: string): Seen | null {
  let raw: string;
  try {
    if (!Deno.statSync(path).isFile) regularFileExists(path, { what: "lock file" }); // throws
    raw = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: cannot read this lock (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  try {
    const info = JSON.parse(raw) as LockInfo;
    if (info && typeof info === "object" && typeof info.pid === "number") {
      return { info, id: info.token ?? raw };
    }
  } catch { /* not a record of this version: judged by its age */ }
  return { id: raw };
}

function mtimeOf(path: string): number | undefined {
  try {
    return Deno.statSync(path).mtime?.getTime();
  } catch {
    return undefined;
  }
}

/** Writes `path` (so the file system sets its mtime). */
function touch(path: string): void {
  const injected = injectedLockFailure(path);
  if (injected) {
    Deno.writeTextFileSync(path, "");
    throw injected;
  }
  Deno.writeTextFileSync(path, new Date().toISOString() + "\n");
}

function staleSeconds(): number {
  return Number(Deno.env.get("BERTVISION_TEST_LOCK_STALE_S") ?? STALE_SECONDS);
}

/**
 * Seconds since the heartbeat of the lock at `path` (its beat file, else the lock file itself),
 * measured against `judge`, a file in the same folder written just now.
 */
function heartbeatAge(path: string, token: string | undefined, judge: string): number {
  touch(judge);
  const beat = (token ? mtimeOf(`${path}.${token}.beat`) : undefined) ?? mtimeOf(path);
  const now = mtimeOf(judge);
  return beat === undefined || now === undefined ? 0 : (now - beat) / 1000;
}

/**
 * Whether the holder of `seen` is known to be gone, and why. `/proc` is trusted only for a
 * holder of this very machine: the same host name, and a boot id and PID namespace both known on
 * both sides and equal. Then it is gone when its pid is (with `/proc` readable), reused (another
 * start time) or a zombie. Anything else, an error reading `/proc` included, falls back to its
 * heartbeat's age.
 */
function abandoned(seen: Seen, path: string, judge: string): string | undefined {
  const info = seen.info;
  const [boot, ns] = [bootId(), pidNs()];
  if (
    info && info.host === Deno.hostname() && info.bootId !== undefined &&
    info.pidNs !== undefined && boot !== undefined && ns !== undefined &&
    info.bootId === boot && info.pidNs === ns
  ) {
    const p = procOf(info.pid);
    const who = `its process ${info.pid} on ${info.host}`;
    if (p === "gone") return `${who} is gone`;
    if (p !== "unknown") {
      if (info.procStart && p.start !== info.procStart) {
        return `process ${info.pid} on ${info.host} is another program now`;
      }
      if (p.state === "Z" || p.state === "X") return `${who} was killed (a zombie not yet reaped)`;
      return undefined; // alive here: its heartbeat may just be late
    }
  }
  const age = heartbeatAge(path, info?.token, judge);
  if (age > staleSeconds()) {
    return `its heartbeat is ${Math.round(age)} s old (host ${info?.host ?? "unknown"})`;
  }
  return undefined;
}

function describe(info: LockInfo | undefined): string {
  if (!info) return "an unknown writer (its lock is not a record of this version)";
  return `pid ${info.pid} on ${info.host}` + (info.job ? `, ${info.job}` : "") +
    `, since ${info.started}: ${info.command}`;
}

/** How long a takeover or release waits for the guard's OS lock before giving up. */
const GUARD_WAIT_MS = 10_000;

function guardError(guard: string, why: string): InputError {
  return new InputError(
    `${guard}: cannot lock the guard of a lock (${why}); rm ${guard.slice(0, -6)} once its ` +
      `holder is known gone`,
    { file: guard },
  );
}

/** Opens `PATH.guard` read-write (created), else read-only (`flock` works on either). */
function openGuard(guard: string): Deno.FsFile {
  try {
    return Deno.openSync(guard, { read: true, write: true, create: true });
  } catch (e) {
    if (e instanceof Deno.errors.PermissionDenied) {
      try {
        return Deno.openSync(guard, { read: true });
      } catch { /* the first error says it */ }
    }
    throw guardError(guard, (e as Error).message);
  }
}

/**
 * Runs `fn` holding the OS lock on `PATH.guard` (a file that is never removed). Waits for it at
 * most {@linkcode GUARD_WAIT_MS} (a peer stopped while holding it must not hang this one); any
 * trouble with the guard is one {@linkcode InputError} naming it.
 */
function withGuard<T>(path: string, fn: () => T): T {
  const name = `${path}.guard`;
  const guard = openGuard(name);
  try {
    const waitMs = Number(Deno.env.get("BERTVISION_TEST_LOCK_GUARD_MS") ?? GUARD_WAIT_MS);
    for (const t0 = performance.now();; sleepSync(20)) {
      let got: boolean;
      try {
        got = guard.tryLockSync(true);
      } catch (e) {
        throw guardError(name, (e as Error).message);
      }
      if (got) break;
      if (performance.now() - t0 >= waitMs) {
        throw guardError(name, `another process held it for ${Math.round(waitMs / 1000)} s`);
      }
    }
    return fn();
  } finally {
    guard.close(); // also drops the OS lock
  }
}

/** Under the guard: removes `path` if it still is `id`; says whether it did. */
function removeIfStill(path: string, seen: Seen): boolean {
  return withGuard(path, () => {
    if (readLock(path)?.id !== seen.id) return false;
    Deno.removeSync(path);
    if (seen.info?.token) {
      try {
        Deno.removeSync(`${path}.${seen.info.token}.beat`);
      } catch { /* none */ }
    }
    return true;
  });
}

/** Links `tmp` to `path` exclusively; true when `path` is now ours. */
function linkInto(tmp: string, path: string): boolean {
  try {
    Deno.linkSync(tmp, path);
    return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    return Deno.statSync(tmp).nlink === 2; // NFS: the link may have worked and still say EEXIST
  }
}

/**
 * A test hook: `BERTVISION_TEST_LOCK_WRITE_FAIL` set to a substring of the path of one of a
 * lock's files (its beat, its record's temporary file) makes that write fail after the file was
 * created (a full disk, which CI cannot arrange; data/output/atomic.ts has its own for outputs).
 */
function injectedLockFailure(path: string): Error | null {
  const want = Deno.env.get("BERTVISION_TEST_LOCK_WRITE_FAIL");
  return want && path.includes(want)
    ? new Error("No space left on device (injected: BERTVISION_TEST_LOCK_WRITE_FAIL)")
    : null;
}

function writeAllSync(path: string, bytes: Uint8Array): void {
  const f = Deno.openSync(path, { write: true, createNew: true });
  try {
    const injected = injectedLockFailure(path);
    if (injected) {
      f.writeSync(bytes.subarray(0, bytes.length >> 1));
      throw injected;
    }
    for (let at = 0; at < bytes.length;) at += f.writeSync(bytes.subarray(at));
    f.syncSync();
  } finally {
    f.close();
  }
}

/** `path` resolved against the working directory, `.`/`..` collapsed (no links followed). */
function resolvePath(path: string): string {
  const parts: string[] = [];
  for (const part of (path.startsWith("/") ? path : `${Deno.cwd()}/${path}`).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}

/**
 * `path` made comparable however it is spelled: resolved against the working directory,
 * `.`/`..` collapsed, and its deepest existing ancestor (itself included) replaced by its real
 * path (symbolic links followed).
 */
export function normalisePath(path: string): string {
  const parts = resolvePath(path).split("/").filter((p) => p !== "");
  for (let i = parts.length; i >= 0; i--) {
    try {
      const real = Deno.realPathSync("/" + parts.slice(0, i).join("/"));
      return [real.replace(/\/+$/, ""), ...parts.slice(i)].join("/") || "/";
    } catch { /* not there (or unreadable): one level up */ }
  }
  return "/" + parts.join("/");
}

interface Held {
  lock: Lock;
  /** The output's absolute path, without a trailing slash. */
  output: string;
  kind: "file" | "dir";
  flag: Int32Array;
  checkedAt: number;
}

/** The locks this process holds, by lock path. */
const held = new Map<string, Held>();

function releaseAll(): void {
  for (const h of [...held.values()]) h.lock.release();
}

const onSignal = {
  SIGINT: () => {
    releaseAll();
    Deno.exit(130);
  },
  SIGTERM: () => {
    releaseAll();
    Deno.exit(143);
  },
};

/**
 * An uncaught error or unhandled rejection ends the process without `unload`: the locks go
 * first. Not when a listener of the program's own has prevented the default (it goes on).
 */
function onUncaught(ev: Event): void {
  if (!ev.defaultPrevented) releaseAll();
}

let handlersInstalled = false;

/**
 * Installs the exit, signal and uncaught-error listeners while this process holds any lock (on
 * the first lock taken) and removes them when it holds none (on the last release), so a program
 * that is done with its locks gets its own SIGINT/SIGTERM behaviour back.
 */
function syncHandlers(): void {
  const want = held.size > 0;
  if (want === handlersInstalled) return;
  handlersInstalled = want;
  const events = ["unload", "error", "unhandledrejection"] as const;
  const listener = (type: string) => type === "unload" ? releaseAll : onUncaught;
  for (const type of events) {
    if (want) globalThis.addEventListener(type, listener(type));
    else globalThis.removeEventListener(type, listener(type));
  }
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    try {
      if (want) Deno.addSignalListener(sig, onSignal[sig]);
      else Deno.removeSignalListener(sig, onSignal[sig]);
    } catch { /* not supported here */ }
  }
}

/** What a holder does when its heartbeat finds its lock taken (see {@linkcode setLockLostAction}). */
let lostAction: "flag" | "exit" = "flag";

/**
 * What a holder does when its heartbeat finds its lock taken, unless `onLost` is given:
 * "flag" (the default, for a library) only marks the lock lost, so {@linkcode Lock.check} and
 * every atomic write into the output throw a {@linkcode LockLostError}; "exit" (the CLIs, set by
 * scripts/_cli.ts `runMain`) also prints the error and exits with status 1 at once.
 */
export function setLockLostAction(action: "flag" | "exit"): void {
  lostAction = action;
}

/**
 * Throws a {@linkcode LockLostError} when `path` lies in an output whose lock this process held
 * and lost (the heartbeat's flag, or the lock's token re-read at most once a second). Every
 * atomic write calls it.
 */
export function checkOutputWrite(path: string): void {
  if (!held.size) return;
  const p = normalisePath(path);
  for (const h of held.values()) {
    const inside = h.kind === "dir" ? p.startsWith(h.output + "/") : p === h.output ||
      p.startsWith(h.output + ".");
    if (!inside) continue;
    const now = performance.now();
    if (Atomics.load(h.flag, 0) === 1 || now - h.checkedAt >= 1000) {
      h.checkedAt = now;
      h.lock.check();
    }
  }
}

/** Options of {@linkcode acquireLock}. */
export interface LockOptions {
  /** Take the lock even from a live holder (`--break-lock`). */
  breakLock?: boolean;
  /** The command line recorded (default: `deno` and this process's arguments). */
  command?: string;
  /**
   * Called when the heartbeat finds the lock taken; default: {@linkcode setLockLostAction}'s
   * (only mark the lock lost, or, in a CLI, print the error and exit with status 1).
   */
  onLost?: (e: LockLostError) => void;
}

/**
 * Takes the lock of `output` ("file" or "dir"), creating the parent folder if needed. Throws a
 * {@linkcode LockedError} naming the holder when a live writer has it; takes over an abandoned
 * lock (or any, with `breakLock`) and says so in `tookOver`.
 */
export function acquireLock(
  output: string,
  kind: "file" | "dir",
  opts: LockOptions = {},
): Lock {
  // Absolute: a release after a change of the working directory still finds it.
  const path = resolvePath(lockPathOf(output, kind));
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
  const token = Array.from(
    crypto.getRandomValues(new Uint8Array(12)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const info: LockInfo = {
    host: Deno.hostname(),
    pid: Deno.pid,
    command: opts.command ?? ["deno", ...Deno.args].join(" "),
    job: jobOf(),
    started: new Date().toISOString(),
    token,
    bootId: bootId(),
    pidNs: pidNs(),
    procStart: procStat(Deno.pid)?.start,
  };
  const beat = `${path}.${token}.beat`;
  const tmp = `${path}.${token}.tmp`;
  // `heartbeat`: what binaries before the beat file judged a holder by; far in the future, so
  // that an old binary never takes this lock for stale (the beat file is the heartbeat now).
  const record = { ...info, heartbeat: "9999-12-31T23:59:59.999Z" };
  try {
    Deno.mkdirSync(dir, { recursive: true });
    touch(beat);
    writeAllSync(tmp, new TextEncoder().encode(JSON.stringify(record, null, 2) + "\n"));
  } catch (e) {
    // Removed before the error is thrown (not after: a CLI exits on it at once), so that a full
    // disk leaves no empty beat or record file behind.
    for (const p of [beat, tmp]) {
      try {
        Deno.removeSync(p);
      } catch { /* never created */ }
    }
    throw new InputError(
      `${path}: cannot create the lock of ${output} (${(e as Error).message}); is its folder ` +
        `writable and its disk not full?`,
      { file: path, cause: e },
    );
  }
  let tookOver: string | undefined;
  try {
    for (let attempt = 0;; attempt++) {
      pauseAt("create");
      if (linkInto(tmp, path)) break;
      if (attempt >= 50) {
        throw new LockedError(`${output}: its lock ${path} keeps changing hands; try again`);
      }
      const seen = readLock(path);
      if (!seen) continue; // released meanwhile
      const why = abandoned(seen, path, beat);
      if (!why && !opts.breakLock) {
        throw new LockedError(
          `${output} is being written by another process (${describe(seen.info)}); wait for ` +
            `it, or if it is gone, rerun with --break-lock (lock: ${path})`,
        );
      }
      pauseAt("takeover");
      if (removeIfStill(path, seen)) {
        tookOver = `took over the lock ${path} from ${describe(seen.info)} ` +
          `(${why ?? "--break-lock"})`;
      }
    }
    pauseAt("write");
  } catch (e) {
    try {
      Deno.removeSync(beat);
    } catch { /* none */ }
    throw e;
  } finally {
    try {
      Deno.removeSync(tmp);
    } catch { /* none */ }
  }

  const flag = new Int32Array(new SharedArrayBuffer(4));
  let released = false;
  let worker: Worker;
  try {
    worker = heartbeatWorker();
  } catch (e) {
    try {
      removeIfStill(path, { id: token, info });
      Deno.removeSync(beat);
    } catch { /* left for a takeover */ }
    throw e;
  }
  const lostError = (seen: Seen | null) =>
    new LockLostError(
      `${output}: this process lost its lock ${path} to ` +
        (seen ? describe(seen.info) : "nobody (it was removed)") +
        `; it stops writing the output`,
    );
  const lock: Lock = {
    path,
    output,
    token,
    tookOver,
    check() {
      const seen = readLock(path);
      if (seen?.id === token) return;
      Atomics.store(flag, 0, 1);
      throw lostError(seen);
    },
    release() {
      if (released) return;
      released = true;
      stopBeating(token);
      held.delete(path);
      syncHandlers();
      pauseAt("release");
      try {
        removeIfStill(path, { id: token, info });
      } catch (e) {
        // Left for a takeover; said, since the next run will find it.
        console.error(`warning: ${path}: cannot remove this lock (${(e as Error).message})`);
      }
      try {
        Deno.removeSync(beat);
      } catch { /* already gone */ }
    },
  };
  held.set(path, {
    lock,
    output: normalisePath(output).replace(/\/+$/, ""),
    kind,
    flag,
    checkedAt: performance.now(),
  });
  syncHandlers();
  beating.set(token, () => {
    if (released) return;
    try {
      lock.check();
    } catch (e) {
      if (opts.onLost) return opts.onLost(e as LockLostError);
      if (lostAction === "flag") return; // check() set the flag: writes into the output throw
      console.error(`error: ${(e as Error).message}`);
      Deno.exit(1);
    }
  });
  const ms = Number(Deno.env.get("BERTVISION_TEST_LOCK_BEAT_MS") ?? HEARTBEAT_SECONDS * 1000);
  const start: HeartbeatStart = { op: "start", path, token, beat, ms, flag: flag.buffer };
  worker.postMessage(start);
  return lock;
}

/** The heartbeat worker every held lock shares, while any is held; the lost-lock callbacks. */
let beater: Worker | null = null;
const beating = new Map<string, () => void>();

/** The process's heartbeat worker, started with the first lock (unref'd: it never keeps the
 * process alive). */
function heartbeatWorker(): Worker {
  if (beater) return beater;
  const w = new Worker(new URL("./heartbeat_worker.js", import.meta.url));
  w.unref();
  w.on("message", (token: string) => beating.get(token)?.());
  beater = w;
  return w;
}

/** Stops beating the lock of `token`; the worker ends with the last lock. */
function stopBeating(token: string): void {
  beating.delete(token);
  if (!beater) return;
  if (beating.size) {
    beater.postMessage({ op: "stop", token });
  } else {
    beater.terminate();
    beater = null;
  }
}

/**
 * Takes the locks of several outputs all or nothing: when one cannot be taken, those already
 * taken are released before the error is thrown.
 */
export function acquireLocks(
  outputs: { output: string; kind: "file" | "dir" }[],
  opts: LockOptions = {},
): Lock[] {
  const locks: Lock[] = [];
  const seen = new Set<string>();
  try {
    for (const o of outputs) {
      const key = normalisePath(lockPathOf(o.output, o.kind));
      if (seen.has(key)) continue; // the same output given twice: one lock
      seen.add(key);
      locks.push(acquireLock(o.output, o.kind, opts));
    }
  } catch (e) {
    for (const l of locks) l.release();
    throw e;
  }
  return locks;
}
