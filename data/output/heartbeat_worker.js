/**
 * The heartbeat of a held lock (data/output/lock.ts), in a worker thread so that synchronous work
 * on the main thread (buffer mapping, h5wasm) cannot starve it.
 *
 * One worker beats every lock the process holds (lock.ts starts it with the first and ends it
 * with the last). Every beat it rewrites the holder's own beat file `PATH.<token>.beat` (a write, so the file
 * system, not this machine's clock, sets its mtime) and re-reads the lock: once the lock no
 * longer carries the holder's token it sets the shared "lost" flag (read synchronously by every
 * atomic write) and tells the main thread the token, then stops beating that lock. It never writes the lock path itself.
 *
 * Plain JavaScript, so that starting it costs no type check (`deno test` checks a TypeScript
 * worker on every start); its message is lock.ts's `HeartbeatStart`.
 * @module
 */
import { parentPort } from "node:worker_threads";

/**
 * The token in the lock at `path` ("" when there is none), or null when it cannot be read now.
 * @param {string} path
 * @returns {string | null}
 */
function tokenAt(path) {
  let text;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? "" : null;
  }
  try {
    return String(JSON.parse(text)?.token ?? "");
  } catch {
    return "";
  }
}

/** The beats running, by the holder's token. */
const timers = new Map();

parentPort?.on(
  "message",
  /**
   * `start` beats one more lock; `stop` ends one (its lock released).
   * @param {{ op: "start", path: string, token: string, beat: string, ms: number, flag: SharedArrayBuffer } | { op: "stop", token: string }} m
   */
  (m) => {
    if (m.op === "stop") {
      clearInterval(timers.get(m.token));
      timers.delete(m.token);
      return;
    }
    const flag = new Int32Array(m.flag);
    const timer = setInterval(() => {
      try {
        // Never created: a beat removed (by a takeover, or a release) stays removed.
        Deno.writeTextFileSync(m.beat, new Date().toISOString() + "\n", { create: false });
      } catch { /* gone, or retried at the next beat */ }
      const token = tokenAt(m.path);
      if (token !== null && token !== m.token) {
        Atomics.store(flag, 0, 1);
        clearInterval(timer);
        timers.delete(m.token);
        parentPort?.postMessage(m.token);
      }
    }, m.ms);
    timers.set(m.token, timer);
  },
);
