/**
 * The heartbeat of a held lock (data/output/lock.ts), in a worker thread so that synchronous work
 * on the main thread (buffer mapping, h5wasm) cannot starve it.
 *
 * Every beat it rewrites the holder's own beat file `PATH.<token>.beat` (a write, so the file
 * system, not this machine's clock, sets its mtime) and re-reads the lock: once the lock no
 * longer carries the holder's token it sets the shared "lost" flag (read synchronously by every
 * atomic write) and tells the main thread, then stops. It never writes the lock path itself.
 * @module
 */
import { parentPort } from "node:worker_threads";

/** What the main thread sends to start the heartbeat. */
export interface HeartbeatStart {
  path: string;
  token: string;
  beat: string;
  ms: number;
  /** Int32Array over it: [0] is set to 1 when the lock is lost. */
  flag: SharedArrayBuffer;
}

/** The token in the lock at `path` ("" when there is none), or null when it cannot be read now. */
function tokenAt(path: string): string | null {
  let text: string;
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

parentPort?.on("message", (m: HeartbeatStart) => {
  const flag = new Int32Array(m.flag);
  const timer = setInterval(() => {
    try {
      Deno.writeTextFileSync(m.beat, new Date().toISOString() + "\n");
    } catch { /* retried at the next beat */ }
    const token = tokenAt(m.path);
    if (token !== null && token !== m.token) {
      Atomics.store(flag, 0, 1);
      clearInterval(timer);
      parentPort?.postMessage("lost");
    }
  }, m.ms);
});
