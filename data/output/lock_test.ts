// Output locks (data/output/lock.ts): a second writer is refused naming the holder; a dead holder's or
// a stale lock is taken over with a note; --break-lock takes any; release removes the file.
import { deepStrictEqual, match, ok, throws } from "node:assert/strict";
import { acquireLock, LockedError, type LockInfo, lockPathOf, STALE_SECONDS } from "./lock.ts";

const dir = await Deno.makeTempDir({ prefix: "lock_test_" });

function plant(path: string, info: Partial<LockInfo>): void {
  const now = new Date().toISOString();
  Deno.writeTextFileSync(
    path,
    JSON.stringify({
      host: Deno.hostname(),
      pid: Deno.pid,
      command: "deno run capture.ts --out x.h5",
      started: now,
      heartbeat: now,
      ...info,
    }),
  );
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
  lock.release();
  lock.release(); // twice is fine
  const again = acquireLock(out, "file");
  again.release();
  throws(() => Deno.statSync(`${out}.lock`), Deno.errors.NotFound);
});

Deno.test("a dead holder's lock, a reused pid and a stale heartbeat elsewhere are taken over", () => {
  const out = `${dir}/run`;
  const path = lockPathOf(out, "dir");
  deepStrictEqual(path, `${out}/.lock`);
  Deno.mkdirSync(out, { recursive: true });
  // No such process on this host.
  plant(path, { pid: 2 ** 22 + 17 });
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
  // Another host: alive while its heartbeat is fresh, abandoned once it is stale.
  plant(path, { host: "node-7", job: "slurm job 99 (array task 1)" });
  throws(() => acquireLock(out, "dir"), /pid \d+ on node-7, slurm job 99 \(array task 1\)/);
  const old = new Date(Date.now() - (STALE_SECONDS + 5) * 1000).toISOString();
  plant(path, { host: "node-7", heartbeat: old });
  lock = acquireLock(out, "dir");
  match(lock.tookOver!, /heartbeat is 12\d s old \(host node-7\)/);
  lock.release();
  // --break-lock takes even a live holder's.
  plant(path, {});
  lock = acquireLock(out, "dir", { breakLock: true });
  ok(lock.tookOver!.includes("(--break-lock)"), lock.tookOver);
  lock.release();
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
