// A search killed at its log's records (after the study header, after a trial's start, inside a
// record whose line is left half written, after a later record: the hooks of train/search/log.ts,
// SIGKILL, the worker's lock left behind) and run again continues as the same worker, to the
// trials and best configuration of a search that was never killed.
import { deepStrictEqual, equal } from "node:assert/strict";
import { KILLED_EXIT_CODE } from "../data/output/kill.ts";
import { runCli } from "./helpers.ts";
import { searchStores } from "../train/search/_fixture.ts";
import { readStudy } from "../train/search/log.ts";

Deno.test("search killed at each kind of log record resumes to the uninterrupted study", async () => {
  const dir = await Deno.makeTempDir({ prefix: "search_kill_" });
  const { train, dev } = await searchStores(dir);
  const args = (out: string) => [
    ...["--task", "sst2", "--h5", train, "--dev-h5", dev, "--out", `${dir}/${out}`, "--quiet"],
    ...["--trials", "3", "--startup-trials", "2"],
  ];
  const ref = await runCli("search.ts", args("ref"));
  equal(ref.code, 0, ref.err);
  /** The study as a user reads it: each trial's parameters, state and score; the best. */
  const study = async (out: string) => {
    const s = await readStudy(`${dir}/${out}`);
    const best = JSON.parse(await Deno.readTextFile(`${dir}/${out}/best.json`));
    delete best.dir;
    return {
      trials: s.trials.map((t) => [t.id, t.params, t.state, t.score]),
      workers: [...new Set(s.trials.map((t) => t.worker))],
      best,
    };
  };
  const want = await study("ref");
  for (const at of ["search-log:1", "search-log:2", "search-log-torn:4", "search-log:6"]) {
    const out = at.replace(":", "-");
    const cut = await runCli("search.ts", args(out), { BERTVISION_TEST_EXIT_AT: at });
    equal(cut.code, KILLED_EXIT_CODE, `killed at ${at}: ${cut.err}`);
    const again = await runCli("search.ts", args(out));
    equal(again.code, 0, `rerun after ${at}: ${again.err}`);
    deepStrictEqual(await study(out), want, at);
  }
  await Deno.remove(dir, { recursive: true });
});
