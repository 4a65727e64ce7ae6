/**
 * report: one table across every task that `deno task reproduce` has results for, in the seed's
 * layout (Epoch, Batch, L2 and the dev metrics of BERT, BERTVision and their ensemble side by
 * side) with the seed's published numbers in their own columns, one chart across tasks, and the
 * less-data curves and search plots found beside them.
 *
 * ```
 * deno task reproduce --task sst2 --data-dir glue_data --out results
 * deno task reproduce --task mnli --data-dir glue_data --out results
 * deno task report results            # results/report.md, report.svg, report.html
 * deno task report results --out site # the same three files in site/
 * ```
 * Reads `RESULTS_DIR/<task>/results.json` (report/cross.ts says what else it picks up) and
 * writes `report.md` + `report.svg` and one self-contained `report.html` (inline CSS,
 * figures as images; no script runs and nothing is fetched).
 * Host-side only, no GPU: well under a second for the ten tasks.
 * @module
 */
import { parseCommand, runMain } from "./_cli.ts";
import { writeCrossReport } from "../report/cross.ts";

if (import.meta.main) {
  await runMain("report", async () => {
    const { values: v, positional } = parseCommand("report", Deno.args);
    const { report, files } = await writeCrossReport(positional!, {
      out: v.out as string | undefined,
    });
    for (const m of report.missing) {
      console.error(`report: ${m}: no results.json (its reproduce has not finished)`);
    }
    const lines = report.runs.reduce((n, r) => n + r.lines.length, 0);
    const figures = report.figures.length
      ? `, ${report.figures.length} figure set(s) (${report.figures.map((f) => f.rel).join(", ")})`
      : "";
    console.log(
      `${report.runs.length} task(s) (${
        report.runs.map((r) => r.results.task).join(", ")
      }), ${lines} line(s)${figures}`,
    );
    console.log(files.join("\n"));
  });
}
