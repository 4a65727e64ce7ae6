/**
 * A process that takes an output's lock, for data/output/lock_test.ts (run with `deno run -A`).
 *
 * `lock_child.ts OUT [--break-lock] [--start-at EPOCH_MS] [--log FILE] [--hold MS]
 * [--until FILE [--write]] [--throw | --reject | --sigint-after-release]`: waits until `--start-at`, takes the lock of the file OUT (refused:
 * prints `refused: <message>` and exits 3), prints `held <note>`, appends `<pid> start <ms>` to
 * `--log`, holds it `--hold` ms or until `--until` exists (with `--write`, writing OUT atomically
 * meanwhile), appends `<pid> end <ms>` and releases it. `--throw`/`--reject` end it by an uncaught
 * error/rejection once held; `--sigint-after-release` releases at once and sends itself SIGINT.
 * @module
 */
import { acquireLock, LockedError, setLockLostAction } from "./lock.ts";
import { writeTextAtomic } from "./atomic.ts";

const [out, ...rest] = Deno.args;
const has = (k: string) => rest.includes(k);
const val = (k: string) => rest.includes(k) ? rest[rest.indexOf(k) + 1] : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

setLockLostAction("exit"); // as the CLIs (scripts/_cli.ts runMain) do
const startAt = Number(val("--start-at") ?? 0);
while (Date.now() < startAt) { /* start together */ }
let lock;
try {
  lock = acquireLock(out, "file", { breakLock: has("--break-lock"), command: `child ${Deno.pid}` });
} catch (e) {
  if (!(e instanceof LockedError)) throw e;
  console.log(`refused: ${e.message}`);
  Deno.exit(3);
}
console.log(`held ${lock.tookOver ?? ""}`);
if (has("--throw")) {
  setTimeout(() => {
    throw new Error("uncaught in lock_child");
  }, 0);
}
if (has("--reject")) Promise.reject(new Error("unhandled in lock_child"));
if (has("--sigint-after-release")) {
  // Released, the program's own SIGINT behaviour is back: the default kills it by the signal.
  lock.release();
  Deno.kill(Deno.pid, "SIGINT");
  await sleep(10_000);
  console.log("survived SIGINT");
  Deno.exit(0);
}
const log = val("--log");
const mark = (what: string) => {
  if (log) Deno.writeTextFileSync(log, `${Deno.pid} ${what} ${Date.now()}\n`, { append: true });
};
mark("start");
const until = val("--until");
if (until) {
  for (;;) {
    try {
      Deno.statSync(until);
      break;
    } catch { /* not yet */ }
    if (has("--write")) await writeTextAtomic(out, `${Deno.pid}\n`);
    await sleep(20);
  }
} else await sleep(Number(val("--hold") ?? 0));
mark("end");
lock.release();
