// A real Slurm: a single-node cluster on localhost (munged, slurmctld, slurmd from Debian's
// `munge` and `slurm-wlm`, with their own key, config, ports, state and logs in a temporary
// directory) runs the recipe examples/slurm/capture.sbatch (`capture --shard auto/3`) as a job
// array (`sbatch --array=0-2`). Array task 1 is held mid-run (the hidden --hang-after-batches,
// after its first flushed batch) and killed with `scancel`; the set is then refused as
// incomplete, naming shard 1; `sbatch --array=1` resubmits that index alone, which resumes the
// shard and finishes it. The shard set (a glob) then reads as, and merge-shards writes, a
// single-process capture of the split: the same values in the same row order, the same
// fingerprint. Every daemon started is stopped (also when the test fails).
//
// Where Slurm cannot start (not installed, not root, a daemon failing), the test is skipped
// with the reason; with CI set (.ci/run sets CI=true and installs the packages) that is a
// failure instead. Tiny BERT, the 11-sentence fixture; about 15-30 s on 2 cores.
import assert from "node:assert/strict";
import { H5Reader } from "../data/h5_store.ts";
import { ShardSetReader } from "../data/shard_set.ts";
import { writeFixture } from "../train/_capture_fixture.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const CONFIG = `${ROOT}/deno.json`;
const IN_CI = /^(1|true|yes)$/i.test(Deno.env.get("CI") ?? "");
const SBIN = ["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin"];
const NEEDED = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The path of an executable (PATH, then the sbin folders), or undefined. */
function which(name: string): string | undefined {
  for (const d of [...(Deno.env.get("PATH") ?? "").split(":"), ...SBIN]) {
    if (!d) continue;
    try {
      const st = Deno.statSync(`${d}/${name}`);
      if (st.isFile && (st.mode ?? 0) & 0o111) return `${d}/${name}`;
    } catch { /* not here */ }
  }
  return undefined;
}

/** A TCP port free now on 127.0.0.1. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function tail(path: string, lines = 15): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** A running single-node cluster: run Slurm's client commands against it; stop it. */
interface Cluster {
  dir: string;
  /** Runs a Slurm client command with this cluster's SLURM_CONF; stdout, or throws with stderr. */
  cmd(name: string, args: string[], env?: Record<string, string>): Promise<string>;
  /** Stops every daemon it started (idempotent). */
  stop(): Promise<void>;
}

/** Starts munged, slurmctld and slurmd in a temporary directory, or throws saying why. */
async function startCluster(): Promise<Cluster> {
  if (Deno.build.os !== "linux") throw new Error(`not Linux (${Deno.build.os})`);
  const missing = NEEDED.filter((n) => !which(n));
  if (missing.length) {
    throw new Error(
      `${missing.join(", ")} not installed (apt-get install -y slurm-wlm munge, as .ci/run does)`,
    );
  }
  if (Deno.uid() !== 0) {
    throw new Error(`not root (uid ${Deno.uid()}): the test's slurmd runs jobs as SlurmUser=root`);
  }
  // Under /tmp when there is one: munge's socket path must stay within the 107 bytes of a Unix
  // socket address, whatever TMPDIR is.
  const tmp = (await Deno.stat("/tmp").catch(() => null))?.isDirectory ? "/tmp" : undefined;
  const dir = await Deno.makeTempDir({ dir: tmp, prefix: "slurm_test_" });
  await Deno.chmod(dir, 0o711); // munge's socket must be reachable
  for (const d of ["state", "spool", "log"]) await Deno.mkdir(`${dir}/${d}`);
  const children: { name: string; child: Deno.ChildProcess }[] = [];
  const spawn = (name: string, args: string[]) => {
    const child = new Deno.Command(which(name)!, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
      env: { SLURM_CONF: `${dir}/slurm.conf` },
    }).spawn();
    children.push({ name, child });
    return child;
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Reverse order: slurmd, slurmctld, munged; SIGTERM, then SIGKILL after 10 s.
    for (const { child } of children.reverse()) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await child.status;
      clearTimeout(t);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // munge: its own key and socket (not the system's /etc/munge), in the foreground.
    await Deno.writeFile(`${dir}/munge.key`, crypto.getRandomValues(new Uint8Array(1024)), {
      mode: 0o400,
    });
    const munged = spawn("munged", [
      "--foreground",
      "--force",
      `--key-file=${dir}/munge.key`,
      `--socket=${dir}/munge.socket`,
      `--pid-file=${dir}/munged.pid`,
      `--log-file=${dir}/log/munged.log`,
      `--seed-file=${dir}/munged.seed`,
    ]);
    for (let i = 0; i < 100 && !(await Deno.stat(`${dir}/munge.socket`).catch(() => null)); i++) {
      await sleep(100);
    }
    if (!(await Deno.stat(`${dir}/munge.socket`).catch(() => null))) {
      const st = await Promise.race([munged.status, sleep(10).then(() => null)]);
      throw new Error(
        `munged did not start${st ? ` (exit ${st.code})` : ""}: ${await tail(
          `${dir}/log/munged.log`,
          5,
        )}`,
      );
    }
    const host = Deno.hostname().split(".")[0];
    const conf = [
      "ClusterName=bvtest",
      `SlurmctldHost=${host}(127.0.0.1)`,
      "SlurmUser=root",
      "SlurmdUser=root",
      "AuthType=auth/munge",
      "CredType=cred/munge",
      `AuthInfo=socket=${dir}/munge.socket`,
      `SlurmctldPort=${freePort()}`,
      `SlurmdPort=${freePort()}`,
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/log/slurmctld.log`,
      `SlurmdLogFile=${dir}/log/slurmd.log`,
      "ProctrackType=proctrack/linuxproc",
      "TaskPlugin=task/none",
      "SelectType=select/cons_tres",
      "SelectTypeParameters=CR_CPU",
      "SlurmdParameters=config_overrides",
      "MpiDefault=none",
      "ReturnToService=2",
      "SchedulerType=sched/builtin",
      "JobAcctGatherType=jobacct_gather/none",
      "AccountingStorageType=accounting_storage/none",
      "KillWait=5",
      "InactiveLimit=0",
      `NodeName=${host} NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN`,
      `PartitionName=bv Nodes=${host} Default=YES MaxTime=INFINITE State=UP`,
    ].join("\n") + "\n";
    await Deno.writeTextFile(`${dir}/slurm.conf`, conf);
    spawn("slurmctld", ["-D", "-i", "-f", `${dir}/slurm.conf`]);
    spawn("slurmd", ["-D", "-f", `${dir}/slurm.conf`]);
    const cluster: Cluster = {
      dir,
      async cmd(name, args, env = {}) {
        const o = await new Deno.Command(which(name)!, {
          args,
          env: { SLURM_CONF: `${dir}/slurm.conf`, ...env },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const d = new TextDecoder();
        if (!o.success) {
          throw new Error(`${name} ${args.join(" ")} failed (${o.code}): ${d.decode(o.stderr)}`);
        }
        return d.decode(o.stdout);
      },
      stop,
    };
    // The node up and idle (the controller has heard from slurmd).
    let state = "";
    for (let i = 0; i < 60 && state !== "idle"; i++) {
      await sleep(500);
      state = (await cluster.cmd("sinfo", ["-h", "-o", "%T"]).catch(() => "")).trim();
      for (const { name, child } of children) {
        const st = await Promise.race([child.status, sleep(1).then(() => null)]);
        if (st) throw new Error(`${name} exited with ${st.code}`);
      }
    }
    if (state !== "idle") {
      throw new Error(`the node did not come up (sinfo: ${state || "nothing"})`);
    }
    return cluster;
  } catch (e) {
    const logs = await Promise.all(
      ["slurmctld", "slurmd"].map(async (n) => `${n}.log: ${await tail(`${dir}/log/${n}.log`, 4)}`),
    );
    await stop();
    throw new Error(`${(e as Error).message}\n${logs.join("\n")}`);
  }
}

let cluster: Cluster | undefined;
let why: string | undefined;
try {
  cluster = await startCluster();
} catch (e) {
  why = (e as Error).message;
  if (!IN_CI) console.warn(`slurm_test: skipped: Slurm cannot start here: ${why}`);
}
globalThis.addEventListener("unload", () => {
  // A last resort for a run that ends without the test's finally: SIGKILL what is left.
  for (const f of ["slurmd.pid", "slurmctld.pid", "munged.pid"]) {
    try {
      Deno.kill(Number(Deno.readTextFileSync(`${cluster!.dir}/${f}`).trim()), "SIGKILL");
    } catch { /* stopped, or never started */ }
  }
});

async function readAll(path: string) {
  const r = await H5Reader.open(path);
  try {
    return { rows: r.readRows(0, r.shape.n), fingerprint: r.fingerprint, attrs: r.attrs };
  } finally {
    r.close();
  }
}

/** Polls `check` every 250 ms until it returns a value (not undefined), up to `seconds`. */
async function until<T>(what: string, seconds: number, check: () => Promise<T | undefined>) {
  for (const end = Date.now() + seconds * 1000; Date.now() < end;) {
    const v = await check();
    if (v !== undefined) return v;
    await sleep(250);
  }
  throw new Error(`timed out after ${seconds} s waiting for ${what}`);
}

Deno.test({
  name:
    "Slurm: a 3-task capture array equals a single-process capture; a killed task resubmitted finishes",
  ignore: cluster === undefined && !IN_CI,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    if (!cluster) throw new Error(`CI is set but Slurm cannot start: ${why}`);
    const c = cluster;
    try {
      const work = `${c.dir}/work`;
      const fx = await writeFixture(work);
      const flags = [
        "--model",
        fx.model,
        "--task",
        "sst2",
        "--split",
        "dev",
        "--data-dir",
        fx.glue,
        "--max-seq-length",
        "16",
        "--batch-size",
        "2",
      ];
      // The recipe users submit (examples/slurm/capture.sbatch), its settings from the
      // environment sbatch passes on; a wrapper holds task HANG_SHARD after its first batch, to
      // be killed mid-run.
      const script = `${work}/capture.sbatch`;
      await Deno.writeTextFile(
        script,
        [
          "#!/bin/sh",
          'if [ "$SLURM_ARRAY_TASK_ID" = "${HANG_SHARD:-none}" ]; then',
          '  CAPTURE_FLAGS="$CAPTURE_FLAGS --hang-after-batches 1"',
          "fi",
          "export CAPTURE_FLAGS",
          `exec sh ${ROOT}/examples/slurm/capture.sbatch`,
        ].join("\n") + "\n",
      );
      const env = {
        PATH: `${Deno.execPath().replace(/\/[^/]*$/, "")}:${Deno.env.get("PATH") ?? ""}`,
        TASK: "sst2",
        SPLIT: "dev",
        SHARDS: "3",
        MODEL: fx.model,
        DATA: fx.glue,
        OUT: `${work}/dev-{shard}.h5`,
        CAPTURE_FLAGS: "--max-seq-length 16 --batch-size 2",
      };
      const sbatch = (args: string[], more: Record<string, string> = {}) =>
        c.cmd("sbatch", [
          "--parsable",
          `--chdir=${ROOT}`,
          `--output=${work}/log-%A_%a.txt`,
          "--cpus-per-task=1",
          ...args,
          script,
        ], { ...env, ...more });
      const job = (await sbatch(["--array=0-2"], { HANG_SHARD: "1" })).trim().split(";")[0];
      assert.match(job, /^\d+$/);
      // The single-process capture meanwhile, outside Slurm.
      const single = `${work}/single.h5`;
      const ref = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          CONFIG,
          "scripts/capture.ts",
          "--quiet",
          ...flags,
          "--out",
          single,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(ref.code, 0, new TextDecoder().decode(ref.stderr));
      const queued = async () =>
        (await c.cmd("squeue", ["-h", "-j", job, "-o", "%i %T"])).trim().split("\n").filter(
          Boolean,
        );
      // Tasks 0 and 2 finish; task 1 holds after its first batch.
      await until("tasks 0 and 2 to finish and task 1 to hold mid-run", 240, async () => {
        const q = await queued();
        const held = (await Deno.readTextFile(`${work}/log-${job}_1.txt`).catch(() => ""))
          .includes("hanging after 1 batches");
        return held && q.length === 1 && q[0].startsWith(`${job}_1 `) ? true : undefined;
      });
      await c.cmd("scancel", [`${job}_1`]);
      await until(
        "the killed task to leave the queue",
        60,
        async () => (await queued()).length === 0 ? true : undefined,
      );
      const cut = await H5Reader.open(`${work}/dev-1.h5`);
      const [rowsDone, complete, n] = [cut.rowsComplete, cut.complete, cut.shape.n];
      cut.close();
      assert.ok(!complete && rowsDone > 0 && rowsDone < n, `killed mid-run: ${rowsDone}/${n}`);
      await assert.rejects(
        ShardSetReader.open(`${work}/dev-*.h5`),
        /dev-1\.h5: shard 1\/3 is incomplete .*resubmit array index 1/,
      );
      // Resubmitting index 1 alone redoes exactly that shard, resuming it.
      const again = await sbatch(["--wait", "--array=1"]);
      const job2 = again.trim().split(";")[0];
      const log2 = await Deno.readTextFile(`${work}/log-${job2}_1.txt`);
      assert.match(
        log2,
        new RegExp(`wrote .*dev-1\\.h5: ${n} rows .*resumed at row ${rowsDone}`),
      );
      // The set equals the single-process capture; so does the merged file.
      const want = await readAll(single);
      const set = await ShardSetReader.open(`${work}/dev-*.h5`);
      try {
        assert.equal(set.shape.n, want.rows.idx.length);
        assert.deepEqual(set.readRows(0, set.shape.n), want.rows, "same values, same row order");
        assert.equal(set.fingerprint, want.fingerprint);
      } finally {
        set.close();
      }
      const merged = `${work}/merged.h5`;
      const m = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          CONFIG,
          "scripts/merge_shards.ts",
          "--quiet",
          "--out",
          merged,
          `${work}/dev-*.h5`,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(m.code, 0, new TextDecoder().decode(m.stderr));
      const got = await readAll(merged);
      assert.deepEqual(got.rows, want.rows);
      assert.equal(got.fingerprint, want.fingerprint);
      assert.deepEqual(got.attrs, want.attrs);
    } catch (e) {
      for (const n of ["slurmctld", "slurmd"]) {
        console.error(`--- ${n}.log\n${await tail(`${c.dir}/log/${n}.log`, 20)}`);
      }
      throw e;
    } finally {
      await c.cmd("scancel", ["--full", "--user=root"]).catch(() => {});
      await c.stop();
    }
  },
});
