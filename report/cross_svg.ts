/**
 * The cross-task report's chart (`report.svg`).
 * @module
 */
import { esc, fmtMetric, textWidth } from "./report.ts";
import { columns, type CrossReport, devSplitsOf, taskOf } from "./cross_find.ts";
import { mergeDevMetrics } from "../tasks/mod.ts";

/** Series of the chart: ours, then the published ones in lighter shades of the same hues. */
const SERIES = [
  { name: "BERT", color: "#4e79a7" },
  { name: "BERTVision", color: "#f28e2b" },
  { name: "Ensemble", color: "#59a14f" },
  { name: "Seed BERT", color: "#a0cbe8" },
  { name: "Seed BERTVision", color: "#ffbe7d" },
  { name: "Seed Ensemble", color: "#8cd17d" },
];

/** Chart layout, in pixels. */
const CHART = {
  minWidth: 640,
  margin: 10,
  titleSize: 14,
  fontSize: 12,
  valueSize: 10,
  plotW: 400,
  top: 56,
  barH: 11,
  barGap: 2,
  groupGap: 14,
  legendLine: 18,
  swatch: 10,
  swatchGap: 4,
  itemGap: 20,
};

/** One group of bars: a task's metric column. */
interface ChartGroup {
  label: string;
  /** The metric column, for its number format. */
  key: string;
  /** Values by series (undefined: no bar), and the divisor that makes them fractions. */
  values: (number | undefined)[];
  scale: number;
}

/** The groups: each task's first line, its main metric per dev split (MNLI: MNLI-m, MNLI-mm). */
function chartGroups(report: CrossReport, seedEnsemble: boolean): ChartGroup[] {
  const groups: ChartGroup[] = [];
  for (const r of report.runs) {
    const line = r.lines[0];
    if (!line) continue;
    const task = taskOf(r.results.task);
    const splits = devSplitsOf(r.results, task);
    const keys = task && splits
      ? Object.keys(mergeDevMetrics(task, splits.map((s) => [s, { [task.primaryMetric]: 0 }])))
        .filter((k) => line.metricKeys.includes(k))
      : [];
    const all = [line.bert, line.head, line.ensemble].flatMap((c) =>
      c ? Object.values(c.metrics) : []
    );
    const scale = r.results.task === "squad" || all.some((v) => Math.abs(v) > 1.0001) ? 100 : 1;
    for (const k of keys.length ? keys : line.metricKeys.slice(0, 1)) {
      const v = (m: Record<string, number> | undefined) =>
        m && Number.isFinite(m[k]) ? m[k] : undefined;
      groups.push({
        label: `${line.task} ${k}`,
        key: k,
        values: [
          v(line.bert?.metrics),
          v(line.head?.metrics),
          v(line.ensemble?.metrics),
          v(line.seed?.bert),
          v(line.seed?.bertvision),
          ...(seedEnsemble ? [v(line.seed?.ensemble)] : []),
        ],
        scale,
      });
    }
  }
  return groups;
}

/**
 * The chart across tasks as a standalone SVG: one group of horizontal bars per task and main
 * metric (BERT, BERTVision, ensemble, then the published numbers in lighter shades), on one
 * axis from 0 to 1 (SQuAD's percentages divided by 100; each bar labelled with its value as
 * the table prints it). Its size follows its labels: every text lies inside the `viewBox`.
 */
export function crossSvg(report: CrossReport): string {
  const c = CHART;
  const { seedEnsemble } = columns(report);
  const series = SERIES.slice(0, seedEnsemble ? 6 : 5);
  const groups = chartGroups(report, seedEnsemble);
  const title =
    `BERT vs BERTVision: ${groups.length} dev metric(s) of ${report.runs.length} task(s)`;
  const sub = "main dev metric per task and dev split; SQuAD 2.0 ÷ 100";
  const labelW = Math.max(0, ...groups.map((g) => textWidth(g.label, c.fontSize))) + 2 * c.margin;
  const valueW = Math.max(
    textWidth("1.0000", c.valueSize),
    ...groups.flatMap((g) => g.values.map((v) => textWidth(fmtMetric(g.key, v), c.valueSize))),
  ) + 6;
  const items = series.map((s) => c.swatch + c.swatchGap + textWidth(s.name, c.fontSize));
  const W = Math.ceil(Math.max(
    c.minWidth,
    labelW + c.plotW + valueW + c.margin,
    textWidth(title, c.titleSize) + 2 * c.margin,
    textWidth(sub, c.fontSize) + 2 * c.margin,
    ...items.map((w) => w + 2 * c.margin),
  ));
  const groupH = series.length * (c.barH + c.barGap) + c.groupGap;
  const plotH = groups.length * groupH;
  // Legend lines: items left to right, wrapping at the right margin.
  const at: { x: number; y: number }[] = [];
  const legendTop = c.top + plotH + 14;
  let lx = c.margin, line = 0;
  for (const w of items) {
    if (lx > c.margin && lx + w > W - c.margin) {
      lx = c.margin;
      line++;
    }
    at.push({ x: lx, y: legendTop + line * c.legendLine });
    lx += w + c.itemGap;
  }
  const H = Math.ceil(legendTop + (line + 1) * c.legendLine);
  const x0 = labelW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="${c.fontSize}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="${c.titleSize}">${
      esc(title)
    }</text>`,
    `<text x="${W / 2}" y="34" text-anchor="middle" fill="#555">${esc(sub)}</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const x = x0 + (c.plotW * t) / 4;
    out.push(
      `<line x1="${x}" x2="${x}" y1="${c.top - 4}" y2="${c.top + plotH}" stroke="#ddd"/>`,
      `<text x="${x}" y="${c.top - 8}" text-anchor="middle" font-size="${c.valueSize}">${
        t / 4
      }</text>`,
    );
  }
  groups.forEach((g, gi) => {
    const gy = c.top + gi * groupH;
    out.push(
      `<text class="group" x="${x0 - c.margin}" y="${
        (gy + (series.length * (c.barH + c.barGap)) / 2 + 4).toFixed(1)
      }" text-anchor="end">${esc(g.label)}</text>`,
    );
    g.values.forEach((v, i) => {
      if (v === undefined) return;
      const y = gy + i * (c.barH + c.barGap);
      const w = c.plotW * Math.min(1, Math.max(0, v / g.scale));
      out.push(
        `<rect x="${x0}" y="${y}" width="${w.toFixed(1)}" height="${c.barH}" fill="${
          series[i].color
        }"><title>${esc(`${g.label}: ${series[i].name} ${fmtMetric(g.key, v)}`)}</title></rect>`,
        `<text class="value" x="${(x0 + w + 3).toFixed(1)}" y="${
          y + c.barH - 2
        }" font-size="${c.valueSize}">${fmtMetric(g.key, v)}</text>`,
      );
    });
  });
  series.forEach((s, i) => {
    const { x, y } = at[i];
    out.push(
      `<rect x="${
        x.toFixed(1)
      }" y="${y}" width="${c.swatch}" height="${c.swatch}" fill="${s.color}"/>`,
      `<text class="legend" x="${(x + c.swatch + c.swatchGap).toFixed(1)}" y="${y + 9}">${
        esc(s.name)
      }</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
