/**
 * A process that takes an output's lock, for data/output/lock_test.ts (run with `deno run -A`).
 *
 * `lock_child.ts OUT [--break-lock] [--start-at EPOCH_MS] [--log FILE] [--hold MS]
 * [--until FILE [--write]]`: waits until `--start-at`, takes the lock of the file OUT (refused:
 * prints `refused: <message>` and exits 3), prints `held <note>`, appends `<pid> start <ms>` to
 * `--log`, holds it `--hold` ms or until `--until` exists (with `--write`, writing OUT atomically
 * meanwhile), appends `<pid> end <ms>` and releases it.
 * @module
 */
import { acquireLock, LockedError } from "./lock.ts";
import { writeTextAtomic } from "./atomic.ts";

const [out, ...rest] = Deno.args;
const has = (k: string) => rest.includes(k);
const val = (k: string) => rest.includes(k) ? rest[rest.indexOf(k) + 1] : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
