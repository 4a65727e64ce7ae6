/**
 * merge-shards: joins the shards of one sharded capture (`capture --shard I/N`) into one HDF5
 * store, for readers that want one file (h5py). Head training and evaluation do not need it:
 * `--h5` and `--dev-h5` read a shard set directly.
 *
 * ```
 * deno task merge-shards --out acts/train.h5 'acts/train-*.h5'     # or the files, or a .txt manifest
 * deno task merge-shards --dry-run 'acts/train-*.h5'     # progress: each shard's state
 * ```
 * `--dry-run` writes nothing: it lists each shard's state (complete, rows final, missing) and the
 * array indices to submit again, and exits 1 until the set is complete.
 *
 * Expected result: acts/train.h5 whose datasets equal, value for value and in the same row order,
 * a single-process capture of the split with the same command, and whose attributes (the shard
 * attributes aside) and fingerprint are that capture's; the devices that computed the shards are
 * listed in `adapter`. The set is checked first: a missing, duplicate, incomplete or foreign
 * shard, or shards of other settings, are refused naming the file; a whole store a glob also
 * matches (`--out` inside its own glob, on a rerun) is left out of the set, said on stderr. Resumable (rerun the same
 * command), under the output's lock; `--overwrite` replaces an output of other settings.
 * Cost: one sequential read of the shards and one write, 64 MiB at a time; no GPU.
 * @module
 */
import { parseCommand, runMain, UsageError } from "./_cli.ts";
import { mergeShards, shardStatus } from "../data/shard_set.ts";

if (import.meta.main) {
  await runMain("merge-shards", async () => {
    const { values: v, positionals } = parseCommand("merge-shards", Deno.args);
    if (v["dry-run"]) {
      // Progress of a sharded capture: each shard's state and what to rerun; exit 1 until ready.
      const st = await shardStatus(positionals!);
      console.log(st.lines.join("\n"));
      if (st.problem !== undefined) Deno.exit(1);
      return;
    }
    if (v.out === undefined) throw new UsageError(`missing --out (the merged file)`);
    const r = await mergeShards(positionals!, v.out as string, {
      overwrite: !!v.overwrite,
      breakLock: !!v["break-lock"],
      silent: !!v.quiet,
    });
    for (const f of r.leftOut) {
      console.error(`left out ${f}: a whole store the glob matches too (not a shard)`);
    }
    console.log(
      `wrote ${r.out}: ${r.n} rows from ${r.shards.length} shards (fingerprint ${r.fingerprint})` +
        (r.rowsBefore ? `, resumed at row ${r.rowsBefore}` : ""),
    );
  });
}
