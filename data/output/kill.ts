/**
 * The kill hook of the output protocol: a test names a write step of an output
 * (`BERTVISION_TEST_EXIT_AT=phase:label`) and the process ends there abruptly by sending itself
 * SIGKILL: no cleanup, no `finally`, no unload handlers, its output locks left behind (it is
 * `kill -9`, so a rerun meets the lock and takes it over as a dead holder's). `Deno.exit` would
 * not do: it runs the unload handlers, which release the locks. Every writer calls
 * {@linkcode exitIfAsked} between its write steps (store close, checkpoint, head save, fractions,
 * merge-shards, report), so tests can kill a run at each step and check that a rerun ends with
 * the files of an uninterrupted run.
 * Checked by tests/kill_test.ts, tests/finetune_kill_test.ts, tests/overwrite_kill_test.ts and
 * data/h5_store_kill_test.ts.
 * @module
 */

/** The environment variable naming the step to exit at, `phase:label`. */
export const EXIT_AT_ENV = "BERTVISION_TEST_EXIT_AT";

/**
 * The exit status `Deno.Command` reports for a process ended by {@linkcode exitIfAsked}
 * (128 + SIGKILL; its `signal` is "SIGKILL").
 */
export const KILLED_EXIT_CODE = 137;

/**
 * Ends the process abruptly (SIGKILL, no cleanup, locks left: what a kill leaves) when
 * `BERTVISION_TEST_EXIT_AT` is `phase:label` (the phases are named where it is called).
 */
export function exitIfAsked(phase: string, label: string): void {
  if (Deno.env.get(EXIT_AT_ENV) !== `${phase}:${label}`) return;
  try {
    Deno.kill(Deno.pid, "SIGKILL");
  } catch {
    // No --allow-run: the nearest thing (unload handlers run, so its locks are released).
    Deno.exit(KILLED_EXIT_CODE);
  }
  for (;;) { /* the signal is on its way: nothing else runs */ }
}
