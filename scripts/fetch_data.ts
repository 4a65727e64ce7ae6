/**
 * Downloads GLUE and SQuAD 2.0 in the GLUE distribution layout.
 *
 *   deno task fetch-data --task T|all --out DIR [--base-url URL]
 *
 * T: a task name (tasks/mod.ts) or `all`. Writes DIR/SST-2/dev.tsv, ...,
 * DIR/squad/{train,dev}-v2.0.json; resumable (rerun to continue; complete tasks are skipped).
 * `--base-url` (or BERTVISION_DATA_URL) points at a mirror instead of the canonical hosts; it
 * must serve the same bytes (SQuAD is checked against its published sha256, the GLUE zips and MSR
 * files against the sha256 recorded at their first download in DIR/.downloads/hashes.json). A
 * cached zip that fails to unpack is deleted, named, and downloaded again by the next run. Costs
 * about 1.3 GB of downloads for `all` (MNLI and QQP are most of it).
 * @module
 */

import { fetchTasks } from "../tasks/mod.ts";
import { parseCommand, runMain } from "./_cli.ts";

if (import.meta.main) {
  await runMain("fetch-data", async () => {
    const { values: v } = parseCommand("fetch-data", Deno.args);
    const written = await fetchTasks(v.task as string, v.out as string, {
      baseUrl: (v["base-url"] as string | undefined) ?? Deno.env.get("BERTVISION_DATA_URL") ??
        undefined,
      silent: !!v.quiet,
    });
    for (const w of written) console.log(w);
  });
}
