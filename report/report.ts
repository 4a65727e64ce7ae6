/**
 * Results of a reproduction as JSON, a Markdown table in the seed's format (BERT vs BERTVision
 * vs ensemble, with parameter counts and wall time per stage) and an SVG bar chart.
 * @module
 */
import { exitIfAsked, writeJsonAtomic, writeTextAtomic } from "../data/output/mod.ts";
import { formatMetric } from "../tasks/metrics.ts";

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

/**
 * Metric `key`'s value as every report prints it: tasks/metrics.ts {@linkcode formatMetric}
 * (four decimals on the metric's own scale, as the seed prints them; "–" for none).
 */
export function fmtMetric(key: string, v: number | undefined): string {
  return formatMetric(key, v);
}

/** An axis tick of a chart (not a metric): as short as it can be, e.g. 25, 0.5. */
function fmtTick(v: number): string {
  return String(Number(v.toPrecision(4)));
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
        `${r.metricKeys.map((k) => fmtMetric(k, row.metrics[k])).join(" | ")} |`,
    );
  }
  lines.push("", "| Stage | Wall time |", "|---|---:|");
  for (const [k, s] of Object.entries(r.stageSeconds)) lines.push(`| ${k} | ${s.toFixed(1)} s |`);
  lines.push("", `Adapter: ${r.adapter}. Model: ${r.model}. Finished ${r.finished}.`);
  for (const n of r.notes) lines.push("", `> ${n}`);
  return lines.join("\n") + "\n";
}

/** `s` with `&`, `<` and `>` escaped, for SVG and HTML text. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * DejaVu Sans's advance widths of the printable ASCII characters (32–126), in 1/1000 em ("@"
 * Helvetica's): a wide sans-serif face, at least as wide as Helvetica and Arial for every
 * character, what {@linkcode textWidth} measures with.
 */
// deno-fmt-ignore
const SANS_WIDTHS = [
  318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, // space–/
  636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531, // 0–?
  1015, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787, // @–O
  603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500, // P–_
  500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634, 612, // `–o
  635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838, // p–~
];

/**
 * An upper estimate of the width in pixels of `text` set in sans-serif at `size` px: DejaVu
 * Sans's widths plus 5%, 1 em for any other character. Charts size themselves with it so that
 * no label is clipped whichever sans-serif face the viewer has.
 */
export function textWidth(text: string, size: number): number {
  let em = 0;
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    em += (c >= 32 && c <= 126 ? SANS_WIDTHS[c - 32] : 1000) / 1000;
  }
  return em * size * 1.05;
}

/** Chart layout: the plot's place and the legend's rows (a swatch, then the model's name). */
const CHART = {
  minWidth: 640,
  margin: 10,
  left: 50,
  top: 40,
  plotH: 240,
  /** Below the plot: the metric names, then the legend from `legendTop`. */
  legendTop: 304,
  legendLine: 18,
  swatch: 10,
  /** Between a swatch and its text, and after an item. */
  swatchGap: 4,
  itemGap: 20,
  fontSize: 12,
  titleSize: 14,
};

/**
 * Where the legend's items go: left to right, wrapping onto a new line when the next would pass
 * the right margin of a chart `width` wide. Returns each item's top-left corner and the lines.
 */
function legendLayout(
  widths: number[],
  width: number,
): { at: { x: number; y: number }[]; lines: number } {
  const c = CHART;
  const at: { x: number; y: number }[] = [];
  let x = c.margin, line = 0;
  for (const w of widths) {
    if (x > c.margin && x + w > width - c.margin) {
      x = c.margin;
      line++;
    }
    at.push({ x, y: c.legendTop + line * c.legendLine });
    x += w + c.itemGap;
  }
  return { at, lines: line + 1 };
}

/**
 * A grouped bar chart (one group per metric, one bar per model) as a standalone SVG. Its width
 * and height follow its labels: the title and every legend item (wrapped onto as many lines as
 * they need) lie inside its `viewBox`.
 */
export function resultsSvg(r: Results): string {
  const c = CHART;
  const colors = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
  ];
  const title = `${r.task}: BERT vs BERTVision (${r.adapter})`;
  const items = r.rows.map((row) => c.swatch + c.swatchGap + textWidth(row.model, c.fontSize));
  const keys = r.metricKeys;
  const values = r.rows.map((row) => keys.map((k) => row.metrics[k] ?? 0));
  // Each bar as wide as its value label (font size 10), groups 20 px apart.
  const barNeed = Math.max(
    0,
    ...values.flatMap((vs) => vs.map((v, g) => textWidth(fmtMetric(keys[g], v), 10) + 3)),
  );
  const W = Math.ceil(
    Math.max(
      c.minWidth,
      textWidth(title, c.titleSize) + 2 * c.margin,
      ...items.map((w) => w + 2 * c.margin),
      c.left + 20 + keys.length * (r.rows.length * barNeed + 20),
    ),
  );
  const legend = legendLayout(items, W);
  const H = c.legendTop + legend.lines * c.legendLine;
  const left = c.left, top = c.top, plotH = c.plotH;
  const max = Math.max(1e-9, ...values.flat().map((v) => Math.abs(v)));
  const ceil = max > 1.0001 ? Math.ceil(max / 10) * 10 : 1;
  const groupW = (W - left - 20) / Math.max(1, keys.length);
  const barW = Math.min(Math.max(40, barNeed), (groupW - 20) / Math.max(1, r.rows.length));
  const y = (v: number) => top + plotH * (1 - Math.max(0, v) / ceil);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="${c.fontSize}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="${c.titleSize}">${
      esc(title)
    }</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = (ceil * t) / 4;
    out.push(
      `<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmtTick(v)}</text>`,
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
          `<title>${esc(row.model)} ${esc(k)} ${fmtMetric(k, v)}</title></rect>`,
        `<text x="${(x + barW / 2 - 1).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" ` +
          `text-anchor="middle" font-size="10">${fmtMetric(k, v)}</text>`,
      );
    });
    out.push(
      `<text x="${(gx + (r.rows.length * barW) / 2).toFixed(1)}" y="${
        top + plotH + 16
      }" text-anchor="middle">${esc(k)}</text>`,
    );
  });
  r.rows.forEach((row, i) => {
    const { x, y: ly } = legend.at[i];
    out.push(
      `<rect x="${x.toFixed(1)}" y="${ly}" width="${c.swatch}" height="${c.swatch}" ` +
        `fill="${colors[i % colors.length]}"/>`,
      `<text class="legend" x="${(x + c.swatch + c.swatchGap).toFixed(1)}" y="${ly + 9}">${
        esc(row.model)
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Writes `results.json`, `results.md` and `chart.svg` into `dir`. */
export async function writeResults(dir: string, r: Results): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files = [`${dir}/results.json`, `${dir}/results.md`, `${dir}/chart.svg`];
  await writeJsonAtomic(files[0], r);
  exitIfAsked("report", "results.json");
  await writeTextAtomic(files[1], resultsMarkdown(r));
  exitIfAsked("report", "results.md");
  await writeTextAtomic(files[2], resultsSvg(r));
  return files;
}
