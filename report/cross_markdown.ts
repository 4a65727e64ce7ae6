/**
 * The cross-task report as Markdown (`report.md`).
 * @module
 */
import {
  columns,
  type CrossReport,
  lineCells,
  missingNote,
  relPath,
  sources,
} from "./cross_find.ts";

const mdCell = (s: string) => s.replaceAll("|", "\\|");

/** Lines of an included Markdown file, its headings moved under the report's own. */
export function demote(md: string): string {
  return md.split("\n").map((l) => (/^#{1,3} /.test(l) ? `###${l}` : l)).join("\n").trim();
}

/**
 * The report as Markdown: the table, the chart (`chartFile`, relative to `outDir`), the runs,
 * the figure sets (their SVGs linked, their tables and best configurations included) and the
 * published numbers' sources. `files` reads an included file (tables, best.json).
 */
export function crossMarkdown(
  report: CrossReport,
  outDir: string,
  chartFile: string,
  files: Map<string, string>,
): string {
  const { groups, seedEnsemble } = columns(report);
  const head = groups.flatMap((g) =>
    g.cols.map((c) => (g.name && !(g.name === "Ensemble") ? `${g.name} ${c}` : g.name || c))
  ).map((h) => h.replace("Seed (published)", "Seed"));
  const out = [
    "# BERT vs BERTVision across tasks",
    "",
    `Results of \`deno task reproduce\` under \`${report.resultsDir}\`: ` +
    `${report.runs.map((r) => r.results.task).join(", ")}.`,
    "",
    `| ${head.map(mdCell).join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const r of report.runs) {
    for (const line of r.lines) {
      out.push(`| ${lineCells(line, seedEnsemble).map(mdCell).join(" | ")} |`);
    }
  }
  out.push(
    "",
    "Dev metrics as fractions (SQuAD 2.0: percentages, as the official script prints), several " +
      'joined by " / " in the Dev metric column\'s order; "–" where there is none. BERTVision ' +
      "is the run's head, Ensemble the head with that line's BERT checkpoint. Seed columns: the " +
      "published numbers (report/published.ts):",
    "",
    ...sources(report).map((s) => `- ${s}`),
  );
  const notes = [...report.runs.flatMap((r) => r.notes)];
  for (const m of report.missing) notes.push(missingNote(m));
  if (notes.length) out.push("", ...notes.map((n) => `> ${n}`));
  out.push("", `![BERT vs BERTVision across tasks](${chartFile})`, "", "## Runs", "");
  for (const r of report.runs) {
    const res = r.results;
    const link = relPath(outDir, `${r.dir}/results.md`);
    out.push(
      `- **${r.lines[0]?.task.split(":")[0] ?? res.task}** ([results.md](${link})): BERT ` +
        `\`${res.model}\`, ${res.adapter || "adapter not recorded"}` +
        (res.finished ? `, finished ${res.finished}` : "") +
        (res.notes.length ? `. ${res.notes.join(" ")}` : ""),
    );
  }
  for (
    const [kind, title] of [
      ["less-data", "Less data"],
      ["search", "Hyperparameter search"],
      ["layers", "Layers"],
    ]
  ) {
    const sets = report.figures.filter((f) => f.kind === kind);
    if (!sets.length) continue;
    out.push("", `## ${title}`);
    for (const f of sets) {
      out.push("", `### ${f.task ? `${f.task}: ` : ""}${f.rel}`, "");
      for (const svg of f.svgs) out.push(`![${f.rel}](${relPath(outDir, svg)})`, "");
      for (const t of f.tables) {
        out.push(`From \`${relPath(report.resultsDir, t)}\`:`, "", demote(files.get(t) ?? ""), "");
      }
      if (f.best) {
        out.push(
          `Best configuration (\`${relPath(report.resultsDir, f.best)}\`):`,
          "",
          "```json",
          (files.get(f.best) ?? "").trim(),
          "```",
          "",
        );
      }
    }
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}
