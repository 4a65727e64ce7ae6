// Output locks (data/output/lock.ts): a second writer is refused naming the holder; a dead
// holder's (gone, reused pid, zombie) or stale lock is taken over with a note; --break-lock takes
// any; release removes only its own. The interleavings are forced with child processes paused
// at create, write, takeover and release (BERTVISION_TEST_LOCK_PAUSE), plus a stress round of
// six processes started in the same millisecond: never two holders.
import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import { InputError } from "../errors.ts";
import {
  acquireLock,
  acquireLocks,
  checkOutputWrite,
  LockedError,
  type LockInfo,
  LockLostError,
  lockPathOf,
  STALE_SECONDS,
} from "./lock.ts";

const dir = await Deno.makeTempDir({ prefix: "lock_test_" });
const child = new URL("./lock_child.ts", import.meta.url).pathname;
const DEAD = 2 ** 22 + 17; // no such process
const here = {
  bootId: Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim(),
  pidNs: Deno.readLinkSync("/proc/self/ns/pid"),
};

/** Plants a lock record at `path` (this machine's boot and namespace unless overridden). */
function plant(path: string, info: Partial<LockInfo>): void {
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      host: Deno.hostname(),
      pid: Deno.pid,
      command: "deno run capture.ts --out x.h5",
      started: new Date().toISOString(),
      token: "planted",
      ...here,
      ...info,
    }),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(path: string, seconds = 15): Promise<string> {
  for (const t0 = Date.now();; await sleep(20)) {
    try {
      return await Deno.readTextFile(path);
    } catch {
      if (Date.now() - t0 > seconds * 1000) throw new Error(`${path} never appeared`);
    }
  }
}

/** A lock_child.ts process; `pause` makes it wait at that point for `${dir}/go-<name>`. */
function spawn(args: string[], env: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).spawn();
}

function paused(name: string, point: string, args: string[]) {
  const go = `${dir}/go-${name}`;
  const p = spawn(args, { BERTVISION_TEST_LOCK_PAUSE: point, BERTVISION_TEST_LOCK_PAUSE_FILE: go });
  return { p, at: () => waitFor(`${go}.at`), go: () => Deno.writeTextFile(go, "") };
}

async function result(p: Deno.ChildProcess, seconds = 15) {
  const timer = setTimeout(() => p.kill("SIGKILL"), seconds * 1000);
  const o = await p.output();
  clearTimeout(timer);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: o.code, out: text(o.stdout), err: text(o.stderr) };
}

Deno.test("a second writer is refused, naming the holder; release frees the output", () => {
  const out = `${dir}/a.h5`;
  const lock = acquireLock(out, "file", { command: "capture --out a.h5" });
  deepStrictEqual(lock.path, `${out}.lock`);
  deepStrictEqual(lock.tookOver, undefined);
  throws(
    () => acquireLock(out, "file"),
    (e) =>
      e instanceof LockedError &&
      new RegExp(
        `a\\.h5 is being written by another process \\(pid ${Deno.pid} on ` +
          `${Deno.hostname()}, since .*: capture --out a\\.h5\\).*--break-lock`,
      ).test(e.message),
  );
  lock.check();
  lock.release();
  lock.release(); // twice is fine
  const again = acquireLock(out, "file");
  again.release();
  throws(() => Deno.statSync(`${out}.lock`), Deno.errors.NotFound);
  deepStrictEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.h5.lock.guard"]);
});

Deno.test("a dead holder's lock, a reused pid and a zombie are taken over; --break-lock takes any", async () => {
  const out = `${dir}/run`;
  const path = lockPathOf(out, "dir");
  deepStrictEqual(path, `${out}/.lock`);
  Deno.mkdirSync(out, { recursive: true });
  plant(path, { pid: DEAD });
  let lock = acquireLock(out, "dir");
  match(
    lock.tookOver!,
    /took over the lock .* from pid 4194321 .*\(its process 4194321 .* is gone\)/,
  );
  lock.release();
  // This very process, but its recorded start time is another's: the pid was reused.
  plant(path, { procStart: "1" });
  lock = acquireLock(out, "dir");
  match(lock.tookOver!, /is another program now/);
  lock.release();
  // A killed process its parent has not reaped (a zombie, state Z) is dead.
  const sh = new Deno.Command("sh", {
    args: ["-c", "sleep 0 & echo $!; exec sleep 30"],
    stdout: "piped",
  })
    .spawn();
  const reader = sh.stdout.getReader();
  const zombie = Number(new TextDecoder().decode((await reader.read()).value).trim());
  reader.releaseLock();
  let stat = "";
  for (const t0 = Date.now(); !/\) Z /.test(stat) && Date.now() - t0 < 5000; await sleep(10)) {
    stat = Deno.readTextFileSync(`/proc/${zombie}/stat`);
  }
  match(stat, /\) Z /, "the grandchild is a zombie");
  plant(path, { pid: zombie, procStart: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] });
  lock = acquireLock(out, "dir");
  match(lock.tookOver!, /its process \d+ .* was killed \(a zombie not yet reaped\)/);
  lock.release();
  sh.kill("SIGKILL");
  await sh.stdout.cancel();
  await sh.status;
  // --break-lock takes even a live holder's.
  plant(path, {});
  lock = acquireLock(out, "dir", { breakLock: true });
  ok(lock.tookOver!.includes("(--break-lock)"), lock.tookOver);
  lock.release();
});

Deno.test("a holder of another boot or PID namespace is judged by its heartbeat's age only", () => {
  const out = `${dir}/other.h5`;
  const path = lockPathOf(out, "file");
  // Its pid means nothing here (no such process on this machine): alive while its beat is fresh.
  plant(path, {
    host: "node-7",
    pid: DEAD,
    bootId: "another-boot",
    job: "slurm job 99 (array task 1)",
  });
  Deno.writeTextFileSync(`${path}.planted.beat`, "");
  throws(() => acquireLock(out, "file"), /pid 4194321 on node-7, slurm job 99 \(array task 1\)/);
  plant(path, { pidNs: "pid:[1]" }); // this boot, another PID namespace, a live pid here
  throws(() => acquireLock(out, "file"), LockedError);
  const old = new Date(Date.now() - (STALE_SECONDS + 5) * 1000);
  Deno.utimeSync(`${path}.planted.beat`, old, old);
  const lock = acquireLock(out, "file");
  match(lock.tookOver!, /heartbeat is 12\d s old \(host /);
  throws(() => Deno.statSync(`${path}.planted.beat`), Deno.errors.NotFound, "its beat went too");
  lock.release();
});

Deno.test("a holder of this boot and namespace but another host name, or without a PID namespace, is judged by its heartbeat's age", () => {
  const out = `${dir}/host.h5`;
  const path = lockPathOf(out, "file");
  const fresh = () => Deno.writeTextFileSync(`${path}.planted.beat`, "");
  // No such pid here, but the host is another: its /proc is not ours to read.
  plant(path, { host: `not-${Deno.hostname()}`, pid: DEAD });
  fresh();
  throws(() => acquireLock(out, "file"), new RegExp(`pid ${DEAD} on not-`));
  // This host, but no PID namespace recorded: not known to be this machine's pid either.
  plant(path, { pid: DEAD, pidNs: undefined });
  fresh();
  throws(() => acquireLock(out, "file"), LockedError);
  const old = new Date(Date.now() - (STALE_SECONDS + 5) * 1000);
  Deno.utimeSync(`${path}.planted.beat`, old, old);
  const lock = acquireLock(out, "file");
  match(lock.tookOver!, /heartbeat is 12\d s old/);
  lock.release();
});

Deno.test("a guard that cannot be locked: a takeover is one InputError naming it, a release warns", () => {
  const out = `${dir}/guard.h5`;
  const path = lockPathOf(out, "file");
  Deno.mkdirSync(`${path}.guard`); // not a file: open fails (EISDIR)
  plant(path, { pid: DEAD });
  throws(
    () => acquireLock(out, "file"),
    (e) =>
      e instanceof InputError && !(e instanceof LockedError) && !e.message.includes("\n") &&
      e.message.startsWith(`${path}.guard: cannot lock the guard`) &&
      e.message.includes(`rm ${path} once its holder is known gone`),
  );
  Deno.removeSync(path);
  const lock = acquireLock(out, "file");
  const warned: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => warned.push(a.join(" "));
  try {
    lock.release();
  } finally {
    console.error = error;
  }
  deepStrictEqual(warned.length, 1, warned.join("\n"));
  ok(warned[0].startsWith(`warning: ${path}: cannot remove this lock`), warned[0]);
  Deno.removeSync(path); // what the warning asks for
});

Deno.test("a lost lock refuses writes into its output however the path is spelled", () => {
  const cwd = Deno.cwd();
  Deno.chdir(dir);
  let lock;
  try {
    lock = acquireLock("./spelled", "dir");
  } finally {
    Deno.chdir(cwd);
  }
  Deno.symlinkSync(`${dir}/spelled`, `${dir}/spelled-link`);
  checkOutputWrite(`${dir}/spelled/a.json`); // held: fine
  plant(lock.path, { token: "another" });
  throws(() => lock.check(), LockLostError);
  for (
    const p of [`${dir}/spelled/a.json`, `${dir}/x/../spelled/./b.json`, `${dir}/spelled-link/c`]
  ) {
    throws(() => checkOutputWrite(p), LockLostError, p);
  }
  checkOutputWrite(`${dir}/spelled-other/a.json`); // another output: not refused
  lock.release();
  deepStrictEqual(JSON.parse(Deno.readTextFileSync(lock.path)).token, "another", "left alone");
  Deno.removeSync(lock.path);
});

Deno.test("the heartbeat beats while the main thread is blocked, in a file of the holder's own", () => {
  Deno.env.set("BERTVISION_TEST_LOCK_BEAT_MS", "100");
  try {
    const lock = acquireLock(`${dir}/busy.h5`, "file");
    const beat = `${lock.path}.${lock.token}.beat`;
    const t0 = Deno.statSync(beat).mtime!.getTime();
    const record = Deno.readTextFileSync(lock.path);
    // Synchronous work that ends only when the beat has moved on (or after a generous bound):
    // only a heartbeat that does not need this thread can end it early.
    let moved = false;
    for (const s = performance.now(); !moved && performance.now() - s < 60_000;) {
      moved = Deno.statSync(beat).mtime!.getTime() !== t0;
    }
    ok(moved, "the beat went on while the main thread was blocked");
    deepStrictEqual(Deno.readTextFileSync(lock.path), record, "the lock is never rewritten");
    lock.release();
    throws(() => Deno.statSync(beat), Deno.errors.NotFound);
  } finally {
    Deno.env.delete("BERTVISION_TEST_LOCK_BEAT_MS");
  }
});

Deno.test("a removed beat stays removed: the heartbeat never creates it", async () => {
  Deno.env.set("BERTVISION_TEST_LOCK_BEAT_MS", "50");
  try {
    let lost: (e: LockLostError) => void = () => {};
    const gotLost = new Promise<LockLostError>((r) => lost = r);
    const lock = acquireLock(`${dir}/unbeat.h5`, "file", { onLost: (e) => lost(e) });
    const beat = `${lock.path}.${lock.token}.beat`;
    Deno.removeSync(beat);
    // The worker writes the beat, then re-reads the lock: once it reports the loss, it has tried
    // to write the removed beat at least once.
    plant(lock.path, { token: "another" });
    const alive = setInterval(() => {}, 1000); // the heartbeat worker keeps nothing alive
    ok((await gotLost) instanceof LockLostError);
    clearInterval(alive);
    throws(() => Deno.statSync(beat), Deno.errors.NotFound, "the beat was recreated");
    lock.release();
    Deno.removeSync(lock.path);
  } finally {
    Deno.env.delete("BERTVISION_TEST_LOCK_BEAT_MS");
  }
});

Deno.test("an uncaught error or unhandled rejection releases the locks; the last release removes the signal handlers", async () => {
  for (const how of ["--throw", "--reject"]) {
    const out = `${dir}/uncaught${how}.h5`;
    const r = await result(spawn([out, how, "--hold", "10000"]));
    ok(r.code !== 0 && r.out.startsWith("held"), r.out + r.err);
    match(r.err, /(uncaught|unhandled) in lock_child/);
    throws(() => Deno.statSync(`${out}.lock`), Deno.errors.NotFound, `${how}: lock left`);
  }
  const p = spawn([`${dir}/sigint.h5`, "--sigint-after-release"]);
  const status = await p.status;
  await p.stdout.cancel();
  await p.stderr.cancel();
  deepStrictEqual(status.signal, "SIGINT", "killed by the default SIGINT action, not a handler");
});

Deno.test("several locks all or nothing: a failing second one releases the first", () => {
  const [a, b] = [`${dir}/all-a`, `${dir}/all-b`];
  const other = acquireLock(b, "dir");
  throws(() => acquireLocks([{ output: a, kind: "dir" }, { output: b, kind: "dir" }]), LockedError);
  throws(() => Deno.statSync(lockPathOf(a, "dir")), Deno.errors.NotFound);
  other.release();
  const both = acquireLocks([{ output: a, kind: "dir" }, { output: b, kind: "dir" }]);
  for (const l of both) l.release();
});

Deno.test("a lock file without a whole record (a writer of the old protocol between create and write) is not taken for abandoned", () => {
  const out = `${dir}/empty.h5`;
  Deno.writeTextFileSync(`${out}.lock`, "");
  throws(() => acquireLock(out, "file"), /being written by another process \(an unknown writer/);
  const old = new Date(Date.now() - (STALE_SECONDS + 5) * 1000);
  Deno.utimeSync(`${out}.lock`, old, old);
  const lock = acquireLock(out, "file");
  match(lock.tookOver!, /from an unknown writer .*heartbeat is 12\d s old/);
  lock.release();
});

Deno.test("forced interleavings: create, write, takeover, release never give two holders", async () => {
  // create: the record is written but not linked yet; another takes the lock meanwhile.
  const out = `${dir}/race.h5`;
  let a = paused("create", "create", [out]);
  await a.at();
  let lock = acquireLock(out, "file", { command: "lock_test B" });
  await a.go();
  let r = await result(a.p);
  deepStrictEqual(r.code, 3, r.out + r.err);
  match(r.out, new RegExp(`refused: .*pid ${Deno.pid} on .*: lock_test B`));
  lock.release();
  // write: once linked, the lock holds the whole record (no empty file a reader could delete).
  a = paused("write", "write", [out]);
  await a.at();
  const record = JSON.parse(Deno.readTextFileSync(`${out}.lock`));
  deepStrictEqual(record.pid, a.p.pid);
  throws(() => acquireLock(out, "file"), new RegExp(`pid ${a.p.pid} on .*: child ${a.p.pid}`));
  await a.go();
  r = await result(a.p);
  deepStrictEqual(r.code, 0, r.out + r.err);
  // takeover: two processes judge a dead holder's lock abandoned; the second to act must not
  // delete the first's new lock.
  plant(`${out}.lock`, { pid: DEAD });
  a = paused("takeover", "takeover", [out]);
  await a.at();
  lock = acquireLock(out, "file", { command: "lock_test B" });
  match(lock.tookOver!, /is gone/);
  await a.go();
  r = await result(a.p);
  deepStrictEqual(r.code, 3, r.out + r.err);
  match(r.out, /refused: .*: lock_test B/);
  lock.check();
  lock.release();
  // release: a holder taken over (--break-lock) while releasing leaves the new lock alone.
  a = paused("release", "release", [out]);
  await a.at();
  lock = acquireLock(out, "file", { breakLock: true, command: "lock_test B" });
  await a.go();
  r = await result(a.p);
  deepStrictEqual(r.code, 0, r.out + r.err);
  lock.check();
  deepStrictEqual(JSON.parse(Deno.readTextFileSync(`${out}.lock`)).token, lock.token);
  lock.release();
});

Deno.test("a holder whose lock was taken stops at once naming the new holder, and leaves its lock alone", async () => {
  const out = `${dir}/taken.h5`;
  const stop = `${dir}/taken.stop`;
  const a = spawn([out, "--until", stop, "--write"], { BERTVISION_TEST_LOCK_BEAT_MS: "100" });
  const held = JSON.parse(await waitFor(`${out}.lock`));
  deepStrictEqual(held.pid, a.pid);
  let lost: LockLostError | undefined;
  const lock = acquireLock(out, "file", {
    breakLock: true,
    command: "lock_test B",
    onLost: (e) => lost = e,
  });
  match(lock.tookOver!, new RegExp(`from pid ${a.pid} .*\\(--break-lock\\)`));
  const timer = setTimeout(() => Deno.writeTextFileSync(stop, ""), 5000);
  const r = await result(a);
  clearTimeout(timer);
  ok(r.code !== 0, "the old holder stopped with an error");
  match(r.err, new RegExp(`lost its lock .* to pid ${Deno.pid} on .*: lock_test B`));
  await sleep(300); // a beat of the old holder would have come by now
  lock.check();
  deepStrictEqual(JSON.parse(Deno.readTextFileSync(`${out}.lock`)).token, lock.token);
  deepStrictEqual(lost, undefined);
  lock.release();
});

Deno.test("stress: six processes started in the same millisecond, half the rounds over a dead holder's lock: one holder at a time", async () => {
  for (let round = 0; round < 8; round++) {
    const out = `${dir}/stress${round}.h5`;
    const log = `${dir}/stress${round}.log`;
    if (round % 2) plant(`${out}.lock`, { pid: DEAD });
    const startAt = String(Date.now() + 1000);
    const kids = Array.from(
      { length: 6 },
      () => spawn([out, "--start-at", startAt, "--log", log, "--hold", "150"]),
    );
    const rs = await Promise.all(kids.map((k) => result(k, 30)));
    for (const r of rs) ok(r.code === 0 || r.code === 3, r.out + r.err);
    const spans = new Map<string, number[]>();
    for (const line of Deno.readTextFileSync(log).trim().split("\n")) {
      const [pid, what, ms] = line.split(" ");
      spans.set(pid, [...spans.get(pid) ?? [], what === "start" ? +ms : -ms]);
    }
    const held = [...spans.values()].map(([s, e]) => [s, -e]).sort((x, y) => x[0] - y[0]);
    ok(held.length >= 1, `round ${round}: somebody held it`);
    deepStrictEqual(held.length, rs.filter((r) => r.code === 0).length);
    for (let i = 1; i < held.length; i++) {
      ok(
        held[i][0] >= held[i - 1][1],
        `round ${round}: two holders at once: ${JSON.stringify(held)}`,
      );
    }
  }
});

/** The names in `folder`, sorted. */
function namesIn(folder: string): string[] {
  return [...Deno.readDirSync(folder)].map((e) => e.name).sort();
}

Deno.test("a lock that cannot be written (full disk) names its path and leaves no partial file", async () => {
  for (const victim of [".beat", ".tmp"]) {
    const sub = `${dir}/full${victim}`;
    Deno.mkdirSync(sub);
    Deno.env.set("BERTVISION_TEST_LOCK_WRITE_FAIL", victim);
    try {
      throws(
        () => acquireLock(`${sub}/out.h5`, "file"),
        (e: Error) =>
          e instanceof InputError &&
          e.message.startsWith(
            `${sub}/out.h5.lock: cannot create the lock of ${sub}/out.h5 (No space left on device`,
          ) && e.message.endsWith("is its folder writable and its disk not full?"),
      );
    } finally {
      Deno.env.delete("BERTVISION_TEST_LOCK_WRITE_FAIL");
    }
    deepStrictEqual(namesIn(sub), [], `${victim}: nothing left behind`);
    acquireLock(`${sub}/out.h5`, "file").release(); // and the next run takes it
  }
  // The real thing where a tmpfs can be mounted (root): 0 and 1 free pages of 4 KiB.
  const mnt = `${dir}/tmpfs`;
  Deno.mkdirSync(mnt);
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => null);
  if (!mount?.success) return;
  try {
    for (const free of [0, 1]) {
      Deno.writeFileSync(`${mnt}/fill`, new Uint8Array((16 - free) * 4096));
      throws(
        () => acquireLock(`${mnt}/out.h5`, "file"),
        (e: Error) =>
          e instanceof InputError &&
          e.message.startsWith(`${mnt}/out.h5.lock: cannot create the lock of ${mnt}/out.h5 (`),
      );
      deepStrictEqual(namesIn(mnt), ["fill"], `${free} pages free: nothing left behind`);
      Deno.removeSync(`${mnt}/fill`);
    }
  } finally {
    await new Deno.Command("umount", { args: [mnt] }).output();
  }
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
