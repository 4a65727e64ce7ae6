// One writer per output, through the commands: a second `capture` on the same file fails at
// once naming the first (which finishes a correct file); a `kill -9`ed capture's lock is taken
// over by the rerun, which resumes; and `deno task capture` killed with SIGKILL does not leave
// its `deno run` child writing (both killed mid-run: held by a pause hook, or checked by the
// signal and the lock left); a head run refused the lock of its second head directory leaves
// the first's free (all or nothing).
import { deepStrictEqual, match, ok, rejects } from "node:assert/strict";
import { tinyTestBert } from "./helpers.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { H5Reader } from "../data/h5_store.ts";
import { acquireLock, LockedError, lockPathOf } from "../data/output/mod.ts";
import { trainHeads } from "../train/heads/pass.ts";

const root = new URL("../", import.meta.url).pathname;
const dir = await Deno.makeTempDir({ prefix: "lock_cli_test_" });
await tinyTestBert(`${dir}/bert`);
await writeSyntheticSst2(`${dir}/glue`, { train: 240, dev: 8, seed: 1 });
const env = { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" };

/** capture's flags: train split, batch 2 (many batches: a run lasts seconds). */
const flags = (out: string) => [
  ...["--model", `${dir}/bert`, "--task", "sst2", "--split", "train"],
  ...["--data-dir", `${dir}/glue`, "--max-seq-length", "48", "--batch-size", "2"],
  ...["--out", `${dir}/${out}`, "--quiet"],
];

function spawn(args: string[], extra: Record<string, string> = {}): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { ...env, ...extra },
  }).spawn();
}

const capture = (out: string, extra: Record<string, string> = {}) =>
  spawn(["run", "-A", "scripts/capture.ts", ...flags(out)], extra);

/**
 * The environment that pauses a command just after it took its lock (data/output/lock.ts's
 * `BERTVISION_TEST_LOCK_PAUSE=write` hook) until `go` exists; it writes `${go}.at` (its pid).
 */
const pauseAfterLock = (go: string) => ({
  BERTVISION_TEST_LOCK_PAUSE: "write",
  BERTVISION_TEST_LOCK_PAUSE_FILE: go,
});

async function text(p: Deno.ChildProcess) {
  const o = await p.output();
  return { code: o.code, err: new TextDecoder().decode(o.stderr) };
}

async function waitFor(path: string, seconds = 60): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    try {
      return await Deno.readTextFile(path);
    } catch {
      if (Date.now() - t0 > seconds * 1000) throw new Error(`${path} never appeared`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

async function rows(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { n: r.rowsComplete, data: r.readRows(0, r.shape.n) };
  } finally {
    r.close();
  }
}

Deno.test("a second capture on the same file fails at once, naming the first", async () => {
  // The first is held just after taking its lock, so it cannot finish before the second starts.
  const go = `${dir}/go-a`;
  const first = capture("a.h5", pauseAfterLock(go));
  await waitFor(`${go}.at`);
  const holder = JSON.parse(await waitFor(`${dir}/a.h5.lock`));
  const second = await text(capture("a.h5"));
  await Deno.writeTextFile(go, "");
  deepStrictEqual(second.code, 1, second.err);
  match(
    second.err,
    new RegExp(`a\\.h5 is being written by another process \\(pid ${holder.pid} on .*--break-lock`),
  );
  const done = await text(first);
  deepStrictEqual(done.code, 0, done.err);
  const got = await rows(`${dir}/a.h5`);
  deepStrictEqual(got.n, 240);
  deepStrictEqual([...got.data.idx.slice(0, 3), got.data.idx[239]], [0, 1, 2, 239]);
});

Deno.test("a kill -9'd capture's lock is taken over by the rerun, which resumes", async () => {
  const first = capture("b.h5");
  const holder = JSON.parse(await waitFor(`${dir}/b.h5.lock`));
  await waitFor(`${dir}/b.h5.state.json`); // some batches are in
  first.kill("SIGKILL");
  const killed = await first.output();
  // Killed mid-run, not finished before: ended by the signal, its lock left behind.
  deepStrictEqual(killed.signal, "SIGKILL");
  deepStrictEqual(JSON.parse(await Deno.readTextFile(`${dir}/b.h5.lock`)).token, holder.token);
  const rerun = await text(capture("b.h5"));
  deepStrictEqual(rerun.code, 0, rerun.err);
  const ref = await text(capture("ref.h5"));
  deepStrictEqual(ref.code, 0, ref.err);
  const [a, b] = [await rows(`${dir}/b.h5`), await rows(`${dir}/ref.h5`)];
  deepStrictEqual(a.data.embeds, b.data.embeds);
  deepStrictEqual(a.data.idx, b.data.idx);
  ok(!alive(holder.pid));
});

Deno.test("deno task capture killed with SIGKILL does not leave its child writing", async () => {
  // The child is held just after taking its lock until its parent is killed: it is mid-run then.
  const go = `${dir}/go-c`;
  const task = spawn(["task", "capture", ...flags("c.h5")], pauseAfterLock(go));
  await waitFor(`${go}.at`);
  const holder = JSON.parse(await waitFor(`${dir}/c.h5.lock`));
  ok(holder.pid !== task.pid, "the lock is the child's (deno run), not deno task's");
  task.kill("SIGKILL");
  await task.status;
  // The child keeps the task's pipes open: its output ends when the child does.
  const ended = text(task);
  await Deno.writeTextFile(go, "");
  const child = await ended;
  match(child.err, new RegExp(`the parent process ${task.pid} is gone; stopping`));
  const t0 = Date.now();
  while (alive(holder.pid) && Date.now() - t0 < 10_000) {
    await new Promise((r) => setTimeout(r, 100));
  }
  ok(!alive(holder.pid), `the child ${holder.pid} outlived its parent`);
  // It stopped cleanly: its lock is gone, and the same command resumes the file.
  await Deno.stat(`${dir}/c.h5.lock`).then(
    () => Promise.reject(new Error("lock left behind")),
    () => {},
  );
  const rerun = await text(capture("c.h5"));
  deepStrictEqual(rerun.code, 0, rerun.err);
  deepStrictEqual((await rows(`${dir}/c.h5`)).n, 240);
});

Deno.test("heads trained together: a refused second head directory leaves the first unlocked", async () => {
  const [a, b] = [`${dir}/heads/a`, `${dir}/heads/b`];
  const other = acquireLock(b, "dir", { command: "another head run" });
  await rejects(
    trainHeads(
      { task: "sst2", trainH5: `${dir}/none.h5`, devH5: `${dir}/none.h5`, outDir: a, silent: true },
      [{ outDir: a }, { outDir: b }],
    ),
    (e) =>
      e instanceof LockedError && /heads\/b is being written .*another head run/.test(e.message),
  );
  await Deno.stat(lockPathOf(a, "dir")).then(
    () => Promise.reject(new Error(`${a}: its lock leaked`)),
    () => {},
  );
  other.release();
});

Deno.test({
  name: "cleanup",
  fn: async () => await Deno.remove(dir, { recursive: true }),
});
