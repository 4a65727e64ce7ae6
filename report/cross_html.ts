/**
 * The cross-task report as one self-contained HTML page (`report.html`).
 * @module
 */
import { esc } from "./report.ts";
import {
  columns,
  type CrossReport,
  lineCells,
  missingNote,
  relPath,
  sources,
} from "./cross_find.ts";
import { demote } from "./cross_markdown.ts";

/**
 * The page's Content-Security-Policy: no script of any kind, no request anywhere (images only
 * from `data:` URLs, styles only inline), no frames, forms or `<base>`. A second wall behind
 * {@linkcode svgImage}: markup that reached the page anyway could neither run nor fetch.
 */
export const REPORT_CSP =
  "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; " +
  "form-action 'none'";

/**
 * An SVG file read from disk as an `<img>` whose source is a `data:` URL of its bytes. A browser
 * renders an SVG image in its secure static mode: no script runs and nothing is fetched (no
 * `<image href>`, no `@import`, no link is followed), whatever the file holds. Its markup never
 * becomes part of the page, so no sanitizer is needed (a regex one cannot be made safe).
 */
export function svgImage(svg: string, alt: string): string {
  const bytes = new TextEncoder().encode(svg);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return `<img alt="${escAttr(alt)}" src="data:image/svg+xml;base64,${btoa(bin)}">`;
}

/** `s` fit for a double-quoted attribute value. */
function escAttr(s: string): string {
  return esc(s).replace(/"/g, "&quot;");
}

/** A little Markdown as HTML: headings, pipe tables, code fences, quotes, paragraphs. */
export function markdownHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split("\n");
  const inline = (s: string) =>
    esc(s)
      .replace(/!\[([^\]]*)\]\([^)]*\)/g, "[figure: $1]")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  const cells = (l: string) =>
    l.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((x) =>
      x.trim().replaceAll("\\|", "|")
    );
  for (let i = 0; i < lines.length;) {
    const l = lines[i];
    if (l.startsWith("```")) {
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      i++;
      out.push(`<pre>${esc(body.join("\n"))}</pre>`);
    } else if (/^#{1,6} /.test(l)) {
      const level = Math.min(6, l.indexOf(" "));
      out.push(`<h${level}>${inline(l.replace(/^#+ /, ""))}</h${level}>`);
      i++;
    } else if (l.trim().startsWith("|")) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].trim().startsWith("|"); i++) {
        if (!/^\s*\|?\s*:?-+/.test(lines[i])) rows.push(cells(lines[i]));
      }
      const [head, ...body] = rows;
      out.push(
        "<table>",
        `<tr>${head.map((h) => `<th>${inline(h)}</th>`).join("")}</tr>`,
        ...body.map((r) => `<tr>${r.map((x) => `<td>${inline(x)}</td>`).join("")}</tr>`),
        "</table>",
      );
    } else if (l.startsWith(">")) {
      out.push(`<blockquote>${inline(l.replace(/^>\s?/, ""))}</blockquote>`);
      i++;
    } else if (l.trim()) {
      const para: string[] = [];
      for (; i < lines.length && lines[i].trim() && !/^(#|\||>|```)/.test(lines[i].trim()); i++) {
        para.push(lines[i].replace(/^- /, "• "));
      }
      out.push(`<p>${para.map(inline).join("<br>")}</p>`);
    } else i++;
  }
  return out.join("\n");
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.first td{border-top:2px solid #999}
td.seed{background:#fafaf0}
svg,img{max-width:100%;height:auto}
blockquote{color:#555;margin:4px 0 4px 12px}
pre{background:#f6f6f6;padding:8px;overflow-x:auto}
.scroll{overflow-x:auto}`;

/**
 * The report as one self-contained HTML page: inline CSS, the table (two header rows: the
 * models, then Epoch, Batch, L2 and Dev), the chart inline, every figure set's SVGs as images
 * ({@linkcode svgImage}), their tables and best configurations (escaped). Nothing runs and
 * nothing is fetched: no script, no external `src` or `href`, and a
 * {@linkcode REPORT_CSP | Content-Security-Policy} that would stop either.
 */
export function crossHtml(report: CrossReport, chart: string, files: Map<string, string>): string {
  const { groups, seedEnsemble } = columns(report);
  const out: string[] = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">`,
    "<title>BERT vs BERTVision across tasks</title>",
    `<style>${STYLE}</style></head><body>`,
    "<h1>BERT vs BERTVision across tasks</h1>",
    `<p>Results of <code>deno task reproduce</code> under <code>${esc(report.resultsDir)}</code>: ${
      report.runs.map((r) => esc(r.results.task)).join(", ")
    }.</p>`,
    '<div class="scroll"><table>',
    `<tr>${
      groups.map((g) =>
        g.name
          ? `<th colspan="${g.cols.length}">${esc(g.name)}</th>`
          : g.cols.map((c) => `<th class="l" rowspan="2">${esc(c)}</th>`).join("")
      ).join("")
    }</tr>`,
    `<tr>${
      groups.filter((g) => g.name).flatMap((g) => g.cols.map((c) => `<th>${esc(c)}</th>`)).join(
        "",
      )
    }</tr>`,
  ];
  const seedFrom = 2 + 4 + 4 + 1;
  for (const r of report.runs) {
    r.lines.forEach((line, i) => {
      const cells = lineCells(line, seedEnsemble).map((x, j) =>
        `<td${j < 2 ? ' class="l"' : j >= seedFrom ? ' class="seed"' : ""}>${esc(x)}</td>`
      );
      out.push(`<tr${i === 0 ? ' class="first"' : ""}>${cells.join("")}</tr>`);
    });
  }
  out.push(
    "</table></div>",
    "<p>Dev metrics as fractions (SQuAD 2.0: percentages, as the official script prints), " +
      "several joined by “ / ” in the Dev metric column's order; “–” where there is none. " +
      "BERTVision is the run's head, Ensemble the head with that line's BERT checkpoint. Seed " +
      "columns: the published numbers (report/published.ts):</p>",
    `<ul>${sources(report).map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`,
  );
  const notes = [...report.runs.flatMap((r) => r.notes)];
  for (const m of report.missing) notes.push(missingNote(m));
  for (const n of notes) out.push(`<blockquote>${esc(n)}</blockquote>`);
  // The chart is this module's own markup (crossSvg, every string escaped): inline, so that its
  // bars' tooltips work. Figures read from disk are images (svgImage).
  out.push(`<figure>${chart}</figure>`, "<h2>Runs</h2>", "<ul>");
  for (const r of report.runs) {
    const res = r.results;
    out.push(
      `<li><strong>${esc(r.lines[0]?.task.split(":")[0] ?? res.task)}</strong> (${
        esc(`${r.dir}/results.md`)
      }): BERT <code>${esc(res.model)}</code>, ${esc(res.adapter || "adapter not recorded")}${
        res.finished ? `, finished ${esc(res.finished)}` : ""
      }${res.notes.length ? `. ${esc(res.notes.join(" "))}` : ""}</li>`,
    );
  }
  out.push("</ul>");
  for (
    const [kind, title] of [
      ["less-data", "Less data"],
      ["search", "Hyperparameter search"],
      ["layers", "Layers"],
    ]
  ) {
    const sets = report.figures.filter((f) => f.kind === kind);
    if (!sets.length) continue;
    out.push(`<h2>${title}</h2>`);
    for (const f of sets) {
      out.push(`<h3>${esc(`${f.task ? `${f.task}: ` : ""}${f.rel}`)}</h3>`);
      for (const svg of f.svgs) {
        const rel = relPath(report.resultsDir, svg);
        out.push(
          `<figure>${svgImage(files.get(svg) ?? "", rel)}<figcaption>${
            esc(rel)
          }</figcaption></figure>`,
        );
      }
      for (const t of f.tables) {
        out.push(
          `<p>From <code>${esc(relPath(report.resultsDir, t))}</code>:</p>`,
          `<div class="scroll">${markdownHtml(demote(files.get(t) ?? ""))}</div>`,
        );
      }
      if (f.best) {
        out.push(
          `<p>Best configuration (<code>${esc(relPath(report.resultsDir, f.best))}</code>):</p>`,
          `<pre>${esc((files.get(f.best) ?? "").trim())}</pre>`,
        );
      }
    }
  }
  out.push("</body></html>");
  return out.join("\n") + "\n";
}
