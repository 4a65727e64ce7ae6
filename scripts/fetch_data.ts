/**
 * Downloads GLUE and SQuAD 2.0 in the GLUE distribution layout.
 *
 *   deno task fetch-data --task T|all --out DIR [--base-url URL]
 *
 * T: cola sst2 mrpc stsb qqp mnli qnli rte wnli squad. Writes DIR/SST-2/dev.tsv, ...,
 * DIR/squad/{train,dev}-v2.0.json; resumable (rerun to continue; complete tasks are skipped).
 * `--base-url` (or BERTVISION_DATA_URL) points at a mirror instead of the canonical hosts. Costs
 * about 1.3 GB of downloads for `all` (MNLI and QQP are most of it).
 * @module
 */

import { parseArgs } from "node:util";
import { FETCH_TASKS, fetchData } from "../data/fetch.ts";

const USAGE = `usage: deno task fetch-data --task T|all --out DIR [--base-url URL] [--quiet]
  T: ${FETCH_TASKS.join(" ")}`;

if (import.meta.main) {
  try {
    const { values } = parseArgs({
      args: Deno.args,
      options: {
        task: { type: "string" },
        out: { type: "string" },
        "base-url": { type: "string" },
        quiet: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      Deno.exit(0);
    }
    if (!values.task || !values.out) throw new Error(`missing flags\n${USAGE}`);
    const written = await fetchData(values.task, values.out, {
      baseUrl: values["base-url"] ?? Deno.env.get("BERTVISION_DATA_URL") ?? undefined,
      silent: values.quiet,
    });
    for (const w of written) console.log(w);
  } catch (e) {
    console.error(`fetch-data: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
