/**
 * Results of a reproduction as JSON, a Markdown table in the seed's format (BERT vs BERTVision
 * vs ensemble, with parameter counts and wall time per stage) and an SVG bar chart.
 * @module
 */

/** One model's row of the results table. */
export interface ResultRow {
  /** "BERT", "BERTVision (AP)", "Ensemble". */
  model: string;
  /** Trainable parameters (ensemble: both). */
  params: number;
  /** Share of BERT's parameters. */
  share: number;
  /** Dev metrics (fractions for GLUE; 0–100 for SQuAD, as the official script prints). */
  metrics: Record<string, number>;
}

/** Everything `results.json` holds. */
export interface Results {
  task: string;
  /** Metric keys in display order (the task's primary first). */
  metricKeys: string[];
  rows: ResultRow[];
  /** Seconds per stage, e.g. {"fine-tune": 120, "capture train": 30, ...}. */
  stageSeconds: Record<string, number>;
  /** The WebGPU adapter everything ran on. */
  adapter: string;
  /** The BERT the pipeline started from. */
  model: string;
  /** Settings the run used. */
  settings: Record<string, unknown>;
  /** ISO time of completion. */
  finished: string;
  /** Caveats printed under the table (e.g. random weights). */
  notes: string[];
}

function fmtParams(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

function fmtMetric(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "–";
  return Math.abs(v) > 1.0001 ? v.toFixed(2) : v.toFixed(4);
}

/** The Markdown report: results table, stage timings, adapter and notes. */
export function resultsMarkdown(r: Results): string {
  const head = ["Model", "Params", "% of BERT", ...r.metricKeys];
  const lines = [
    `# ${r.task}: BERT vs BERTVision`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.model} | ${fmtParams(row.params)} | ${(100 * row.share).toFixed(3)}% | ` +
        `${r.metricKeys.map((k) => fmtMetric(row.metrics[k])).join(" | ")} |`,
    );
  }
  lines.push("", "| Stage | Wall time |", "|---|---:|");
  for (const [k, s] of Object.entries(r.stageSeconds)) lines.push(`| ${k} | ${s.toFixed(1)} s |`);
  lines.push("", `Adapter: ${r.adapter}. Model: ${r.model}. Finished ${r.finished}.`);
  for (const n of r.notes) lines.push("", `> ${n}`);
  return lines.join("\n") + "\n";
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A grouped bar chart (one group per metric, one bar per model) as a standalone SVG. */
export function resultsSvg(r: Results): string {
  const colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];
  const W = 640, H = 320, left = 50, bottom = 40, top = 40;
  const plotH = H - top - bottom;
  const keys = r.metricKeys;
  const values = r.rows.map((row) => keys.map((k) => row.metrics[k] ?? 0));
  const max = Math.max(1e-9, ...values.flat().map((v) => Math.abs(v)));
  const ceil = max > 1.0001 ? Math.ceil(max / 10) * 10 : 1;
  const groupW = (W - left - 20) / Math.max(1, keys.length);
  const barW = Math.min(40, (groupW - 20) / Math.max(1, r.rows.length));
  const y = (v: number) => top + plotH * (1 - Math.max(0, v) / ceil);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${
      esc(r.task)
    }: BERT vs BERTVision (${esc(r.adapter)})</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = (ceil * t) / 4;
    out.push(
      `<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmtMetric(v)}</text>`,
    );
  }
  keys.forEach((k, g) => {
    const gx = left + g * groupW + (groupW - r.rows.length * barW) / 2; // bars centred in group
    r.rows.forEach((row, i) => {
      const v = values[i][g];
      const x = gx + i * barW;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" ` +
          `height="${(top + plotH - y(v)).toFixed(1)}" fill="${colors[i % colors.length]}">` +
          `<title>${esc(row.model)} ${esc(k)} ${fmtMetric(v)}</title></rect>`,
        `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" ` +
          `text-anchor="middle" font-size="10">${fmtMetric(v)}</text>`,
      );
    });
    out.push(
      `<text x="${(gx + (r.rows.length * barW) / 2).toFixed(1)}" y="${
        H - bottom + 16
      }" text-anchor="middle">${esc(k)}</text>`,
    );
  });
  r.rows.forEach((row, i) => {
    const lx = left + i * 170;
    out.push(
      `<rect x="${lx}" y="${H - 16}" width="10" height="10" fill="${colors[i % colors.length]}"/>`,
      `<text x="${lx + 14}" y="${H - 7}">${esc(row.model)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Writes `results.json`, `results.md` and `chart.svg` into `dir`. */
export async function writeResults(dir: string, r: Results): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files = [`${dir}/results.json`, `${dir}/results.md`, `${dir}/chart.svg`];
  await Deno.writeTextFile(files[0], JSON.stringify(r, null, 2) + "\n");
  await Deno.writeTextFile(files[1], resultsMarkdown(r));
  await Deno.writeTextFile(files[2], resultsSvg(r));
  return files;
}
