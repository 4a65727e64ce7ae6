/**
 * The less-data curve (the paper's "with 10% of the training data the AP model already approaches
 * its peak; it beats BERT at ~30%"): one head per training fraction, its dev metrics against the
 * fraction, as JSON (`fractions.json`), a Markdown table (`fractions.md`) and an SVG line chart
 * (`fractions.svg`) with BERT's dev score as a dashed horizontal line when it is known. Written
 * by train/heads/fractions.ts (`--train-fractions` on `glue`/`squad` head training and `reproduce`);
 * checked by report/curve_test.ts.
 * @module
 */
import { exitIfAsked, writeJsonAtomic, writeTextAtomic } from "../data/output/mod.ts";
import { textWidth } from "./report.ts";
import { formatMetric } from "../tasks/metrics.ts";

/** One fraction's head. */
export interface CurvePoint {
  /** Share of the training rows, in (0, 1]. */
  fraction: number;
  /** Training rows of its subset. */
  rows: number;
  /** Optimizer steps it trained. */
  steps: number;
  /** Dev metrics, as report columns (MNLI: `MNLI-m`, `MNLI-mm`). */
  metrics: Record<string, number>;
  /** Its output directory. */
  dir?: string;
  /** Found finished by a rerun and kept, not trained again. */
  resumed?: boolean;
}

/** A score drawn across the chart: BERT's dev metrics (same columns as the points'). */
export interface ReferenceLine {
  /** E.g. "BERT (checkpoint-1)". */
  label: string;
  metrics: Record<string, number>;
}

/** Everything `fractions.json` holds. */
export interface FractionCurve {
  task: string;
  /** What was trained per fraction, e.g. "BERTVision (AP)". */
  model: string;
  /** Table columns: the task's report metrics (per dev split when there are several). */
  metricKeys: string[];
  /** The columns plotted: the task's main metric (per dev split). */
  plotted: string[];
  /** One per fraction, in increasing order. */
  points: CurvePoint[];
  /** BERT's scores, when known. */
  references: ReferenceLine[];
  /** Settings shared by every head (seed, batch, epochs, lr, ...). */
  settings: Record<string, unknown>;
  /** ISO time of completion. */
  finished: string;
}

function pct(f: number): string {
  return `${Math.round(f * 1000) / 10}%`;
}

/**
 * What the curve says about the paper's claims, per plotted column: the best score and its
 * fraction, the smallest fraction within 1% (relative) of it, and the smallest fraction at or
 * above each reference line ("never" when none is).
 */
export function curveSummary(c: FractionCurve): string[] {
  const out: string[] = [];
  for (const key of c.plotted) {
    const pts = c.points.filter((p) => Number.isFinite(p.metrics[key]));
    if (!pts.length) continue;
    const best = pts.reduce((a, p) => (p.metrics[key] > a.metrics[key] ? p : a));
    const bv = best.metrics[key];
    const near = pts.find((p) => p.metrics[key] >= bv - Math.abs(bv) * 0.01)!;
    let line =
      `${key}: best ${formatMetric(key, bv)} at ${pct(best.fraction)} of the training rows; ` +
      `within 1% of it from ${pct(near.fraction)}`;
    for (const r of c.references) {
      const rv = r.metrics[key];
      if (!Number.isFinite(rv)) continue;
      const beats = pts.find((p) => p.metrics[key] >= rv);
      line += `; ${
        beats
          ? `at or above ${r.label} (${formatMetric(key, rv)}) from ${pct(beats.fraction)}`
          : `below ${r.label} (${formatMetric(key, rv)}) at every fraction`
      }`;
    }
    out.push(line);
  }
  return out;
}

/** The Markdown report: one row per fraction, BERT's rows below, and the summary. */
export function curveMarkdown(c: FractionCurve): string {
  const head = ["Fraction", "Rows", "Steps", ...c.metricKeys];
  const lines = [
    `# ${c.task}: ${c.model} against the share of training data`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const p of c.points) {
    lines.push(
      `| ${pct(p.fraction)} | ${p.rows} | ${p.steps} | ` +
        `${c.metricKeys.map((k) => formatMetric(k, p.metrics[k])).join(" | ")} |`,
    );
  }
  for (const r of c.references) {
    lines.push(
      `| ${r.label} | – | – | ${
        c.metricKeys.map((k) => formatMetric(k, r.metrics[k])).join(" | ")
      } |`,
    );
  }
  const summary = curveSummary(c);
  if (summary.length) lines.push("", ...summary.map((s) => `- ${s}`));
  lines.push("", `Finished ${c.finished}.`);
  return lines.join("\n") + "\n";
}

/** Escapes text for SVG / HTML. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2"];

/**
 * Where legend items of widths `itemW` go on a chart `width` wide: rows from `top`, 18 apart,
 * wrapped before an item would pass the right margin (20 between items); and the bottom of the
 * last row (`top` when there are none).
 */
export function legendRows(
  itemW: number[],
  width: number,
  margin: number,
  top: number,
): { at: { x: number; y: number }[]; bottom: number } {
  const lineH = 18;
  const at: { x: number; y: number }[] = [];
  let lx = margin, line = 0;
  for (const w of itemW) {
    if (lx > margin && lx + w > width - margin) {
      lx = margin;
      line++;
    }
    at.push({ x: lx, y: top + line * lineH });
    lx += w + 20;
  }
  return { at, bottom: top + (itemW.length ? (line + 1) * lineH : 0) };
}

/** Round tick values covering [lo, hi]: about `n` steps of 1, 2 or 5 × 10^k. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  const span = Math.max(hi - lo, 1e-9);
  const raw = span / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-6; v += step) {
    out.push(Math.round(v / step) * step);
  }
  return out;
}

/**
 * The curve as a standalone SVG: the plotted metric(s) against the fraction of training rows
 * (x from 0 to 1), one solid line with a dot per fraction for each plotted column, and each
 * reference (BERT) as a dashed horizontal line of the same colour, labelled. The chart widens
 * to fit its title and legend.
 */
export function curveSvg(c: FractionCurve): string {
  const fontSize = 12, titleSize = 14, margin = 10;
  const title = `${c.task}: ${c.model} with less training data`;
  const items: { text: string; color: string; dashed: boolean }[] = [];
  c.plotted.forEach((k, i) => {
    const color = COLORS[i % COLORS.length];
    items.push({ text: `${c.model} ${k}`, color, dashed: false });
    for (const r of c.references) {
      if (Number.isFinite(r.metrics[k])) {
        items.push({ text: `${r.label} ${k}`, color, dashed: true });
      }
    }
  });
  const itemW = items.map((it) => 24 + textWidth(it.text, fontSize));
  const W = Math.ceil(
    Math.max(640, textWidth(title, titleSize) + 2 * margin, ...itemW.map((w) => w + 2 * margin)),
  );
  const left = 60, right = 20, top = 40, plotH = 260;
  const plotW = W - left - right;
  // The legend below the x axis label, wrapping onto new lines.
  const { at, bottom } = legendRows(itemW, W, margin, top + plotH + 50);
  const H = bottom + margin;

  const values = [
    ...c.points.flatMap((p) => c.plotted.map((k) => p.metrics[k])),
    ...c.references.flatMap((r) => c.plotted.map((k) => r.metrics[k])),
  ].filter(Number.isFinite);
  let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  const pad = Math.max((hi - lo) * 0.1, Math.abs(hi) * 0.01, 1e-3);
  lo -= pad;
  hi += pad;
  const yTicks = ticks(lo, hi);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks.at(-1)!);
  const x = (f: number) => left + plotW * f;
  const y = (v: number) => top + plotH * (1 - (v - lo) / (hi - lo));
  const n = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="${fontSize}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="${titleSize}">${esc(title)}</text>`,
  ];
  for (const v of yTicks) {
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${n(y(v))}" y2="${n(y(v))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${n(y(v) + 4)}" text-anchor="end">${
        String(Number(v.toPrecision(4)))
      }</text>`,
    );
  }
  for (let t = 0; t <= 5; t++) {
    const f = t / 5;
    out.push(
      `<line x1="${n(x(f))}" x2="${n(x(f))}" y1="${top}" y2="${top + plotH}" stroke="#eee"/>`,
      `<text x="${n(x(f))}" y="${top + plotH + 16}" text-anchor="middle">${pct(f)}</text>`,
    );
  }
  out.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">` +
      `share of the training rows</text>`,
  );
  c.plotted.forEach((k, i) => {
    const color = COLORS[i % COLORS.length];
    for (const r of c.references) {
      const v = r.metrics[k];
      if (!Number.isFinite(v)) continue;
      out.push(
        `<line class="reference" x1="${left}" x2="${left + plotW}" y1="${n(y(v))}" ` +
          `y2="${n(y(v))}" stroke="${color}" stroke-width="1.5" stroke-dasharray="6 4">` +
          `<title>${esc(r.label)} ${esc(k)} ${formatMetric(k, v)}</title></line>`,
      );
    }
    const pts = c.points.filter((p) => Number.isFinite(p.metrics[k]));
    if (pts.length > 1) {
      out.push(
        `<polyline class="curve" fill="none" stroke="${color}" stroke-width="2" points="${
          pts.map((p) => `${n(x(p.fraction))},${n(y(p.metrics[k]))}`).join(" ")
        }"/>`,
      );
    }
    for (const p of pts) {
      out.push(
        `<circle class="point" cx="${n(x(p.fraction))}" cy="${n(y(p.metrics[k]))}" r="3.5" ` +
          `fill="${color}"><title>${pct(p.fraction)} (${p.rows} rows): ${esc(k)} ` +
          `${formatMetric(k, p.metrics[k])}</title></circle>`,
      );
    }
  });
  items.forEach((it, i) => {
    const { x: ix, y: iy } = at[i];
    out.push(
      `<line x1="${n(ix)}" x2="${n(ix + 18)}" y1="${iy + 5}" y2="${iy + 5}" stroke="${it.color}" ` +
        `stroke-width="2"${it.dashed ? ` stroke-dasharray="6 4"` : ""}/>`,
      `<text class="legend" x="${n(ix + 24)}" y="${iy + 9}">${esc(it.text)}</text>`,
    );
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** Writes `fractions.json`, `fractions.md` and `fractions.svg` into `dir`; returns the paths. */
export async function writeCurve(dir: string, c: FractionCurve): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files = [`${dir}/fractions.json`, `${dir}/fractions.md`, `${dir}/fractions.svg`];
  await writeJsonAtomic(files[0], c);
  exitIfAsked("fractions", "json");
  await writeTextAtomic(files[1], curveMarkdown(c));
  exitIfAsked("fractions", "md");
  await writeTextAtomic(files[2], curveSvg(c));
  return files;
}
