/**
 * One report across tasks (`deno task report RESULTS_DIR`): every task's `results.json` that
 * `reproduce --out RESULTS_DIR` wrote (`RESULTS_DIR/<task>/results.json`, or RESULTS_DIR's own),
 * as one table in the seed's layout — Epoch, Batch, L2 and the dev metrics of BERT, then of
 * BERTVision, then the ensemble, side by side — with the seed's published numbers
 * (report/published.ts) in their own columns, one bar chart across tasks, and the less-data
 * curves and hyperparameter-search plots found under RESULTS_DIR. Written as `report.md` +
 * `report.svg` and as one self-contained `report.html` (inline CSS, the
 * figures as images, a Content-Security-Policy: no script runs, nothing is fetched).
 *
 * Rows: one per BERT checkpoint of a run (with `--capture-at 1 --epochs 2`, BERT at 1 and at 2
 * epochs), each beside the run's head and the ensemble of that checkpoint with the head; a row
 * of `results.json` that is none of these gets a line of its own. Metric cells hold the task's
 * dev metrics in the run's order (MNLI: `MNLI-m / MNLI-mm`), joined by " / ".
 *
 * Figures picked up (`*.svg` shown, `*.md` tables included, `best.json` the best configuration),
 * down to three directories below RESULTS_DIR, never inside BERT checkpoints or activation
 * stores: every one under a directory whose name contains `fraction` or `less-data` (a
 * less-data sweep), or `search`, `study`, `hyperopt` or `trial` (a search); those of a directory
 * holding a study log (`trials-*.jsonl`) or a `best.json` (a search); and, anywhere else, SVG and
 * Markdown files whose own name says so (`fractions.svg`, `fractions.md` beside a head). Layer
 * probes and ablations (`probe.svg`, `probe.md`, `ablate.svg`, `ablate_weights.svg`, `ablate.md`,
 * or a folder named `probe`, `ablate`, `layers`) make a "Layers" section. Each set
 * is shown under the task whose directory holds it (or whose name its path contains).
 *
 * Host-side and fast (milliseconds per task). Bad input is an {@linkcode InputError} naming the
 * file: a `results.json` that is not JSON or not `reproduce`'s, a RESULTS_DIR that is missing
 * or holds no results.
 * @module
 */
import { readInputText } from "../data/errors.ts";
import {
  acquireLock,
  exitIfAsked,
  type OutputOptions,
  writeTextAtomic,
} from "../data/output/mod.ts";
import { type CrossReport, findResults } from "./cross_find.ts";
import { crossMarkdown } from "./cross_markdown.ts";
import { crossSvg } from "./cross_svg.ts";
import { crossHtml } from "./cross_html.ts";

export * from "./cross_find.ts";
export { crossMarkdown } from "./cross_markdown.ts";
export { crossSvg } from "./cross_svg.ts";
export { crossHtml, markdownHtml, REPORT_CSP, svgImage } from "./cross_html.ts";

/** Options of {@linkcode writeCrossReport}. */
export interface CrossReportOptions extends Pick<OutputOptions, "breakLock"> {
  /** Where report.md, report.svg and report.html go (default: the results directory). */
  out?: string;
}

/**
 * Finds the results under `resultsDir` and writes `report.md`, `report.svg` and `report.html`
 * (into `opts.out`, default `resultsDir`). Returns what it found and the files written.
 */
export async function writeCrossReport(
  resultsDir: string,
  opts: CrossReportOptions = {},
): Promise<{ report: CrossReport; files: string[] }> {
  const report = await findResults(resultsDir);
  const outDir = (opts.out ?? report.resultsDir).replace(/\/+$/, "") || "/";
  // The figure sets' files, read once (a figure that cannot be read is an InputError naming it).
  const files = new Map<string, string>();
  for (const f of report.figures) {
    for (const p of [...f.svgs, ...f.tables, ...(f.best ? [f.best] : [])]) {
      files.set(p, await readInputText(p));
    }
  }
  const chart = crossSvg(report);
  const written = [`${outDir}/report.md`, `${outDir}/report.svg`, `${outDir}/report.html`];
  // One writer of the three files (`OUT/report.lock`); each is whole, and a run killed between
  // them is made whole by the next (kill hooks `cross-report:md|svg`, tests/kill_test.ts).
  const lock = acquireLock(`${outDir}/report`, "file", { breakLock: opts.breakLock });
  try {
    await writeTextAtomic(written[0], crossMarkdown(report, outDir, "report.svg", files));
    exitIfAsked("cross-report", "md");
    await writeTextAtomic(written[1], chart);
    exitIfAsked("cross-report", "svg");
    await writeTextAtomic(written[2], crossHtml(report, chart, files));
  } finally {
    lock.release();
  }
  return { report, files: written };
}
