/**
 * The output protocol, in one place. Every output the project writes (stores, checkpoints,
 * heads, fractions, search logs, reproduce results, merged shards, reports, the demo, tiny
 * models) follows it:
 *
 * 1. **One writer**: the output's lock is taken before anything is touched ({@link ./lock.ts}).
 * 2. **Same settings or refuse**: what it was made with is compared with what is asked, and a
 *    difference is refused in one shape, `key: there → now` ({@link ./settings.ts}), unless
 *    `--overwrite`.
 * 3. **Atomic files**: whole files go through a pid-named temporary file and a rename; a failed
 *    write leaves no temporary file and says `PATH: cannot write it (why)` ({@link ./atomic.ts}).
 * 4. **Completion last**: a marker written after everything it vouches for, removed first when
 *    the output is reopened ({@link ./marker.ts}).
 * 5. **Overwrite marked first**: `--overwrite` marks the output invalid before removing anything
 *    and unmarks it last; a rerun continues it ({@link ./overwrite.ts}). A kill at any write step
 *    (the hooks of {@link ./kill.ts}) is finished by a rerun.
 *
 * No other file creates a lock, writes a marker or diffs settings.
 * @module
 */
export * from "./atomic.ts";
export * from "./kill.ts";
export * from "./lock.ts";
export * from "./marker.ts";
export type * from "./options.ts";
export * from "./overwrite.ts";
export * from "./settings.ts";
