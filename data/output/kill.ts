/**
 * The kill hook of the output protocol: a test names a write step of an output
 * (`BERTVISION_TEST_EXIT_AT=phase:label`) and the process ends there abruptly — exit 75, no
 * cleanup, no `finally`, no unload handlers: what a kill leaves on disk. Every writer calls
 * {@linkcode exitIfAsked} between its write steps (store close, checkpoint, head save, fractions,
 * merge-shards, report), so tests can kill a run at each step and check that a rerun ends with
 * the files of an uninterrupted run.
 * Checked by tests/kill_test.ts, tests/finetune_kill_test.ts and data/h5_store_kill_test.ts.
 * @module
 */

/** The environment variable naming the step to exit at, `phase:label`. */
export const EXIT_AT_ENV = "BERTVISION_TEST_EXIT_AT";

/** The exit status of a process ended by {@linkcode exitIfAsked}. */
export const KILLED_EXIT_CODE = 75;

/**
 * Ends the process abruptly (exit 75, no cleanup: what a kill leaves) when
 * `BERTVISION_TEST_EXIT_AT` is `phase:label` (the phases are named where it is called).
 */
export function exitIfAsked(phase: string, label: string): void {
  if (Deno.env.get(EXIT_AT_ENV) === `${phase}:${label}`) Deno.exit(KILLED_EXIT_CODE);
}
