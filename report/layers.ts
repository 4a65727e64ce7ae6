/**
 * Which layers carry a task, as JSON, Markdown and SVG:
 *
 * - the probe curve (`probe.{json,md,svg}`, train/heads/probe.ts): the dev metric of a linear
 *   probe on each stored layer alone (layer 0 = the embeddings), a line over the layers, with
 *   BERT's dev metric and the BERTVision head's as dashed horizontal lines when known;
 * - the layer ablation (`ablate.{json,md,svg}`, written by train/heads/ablate.ts): a trained
 *   head's dev metric with each layer's activations replaced by that layer's training mean; the
 *   chart shows the metric lost per layer as bars; for LP heads also the learned layer weights.
 *
 * Every label is measured with report/report.ts `textWidth` so that it sits inside the viewBox
 * (report/layers_test.ts).
 * @module
 */
import { exitIfAsked, writeJsonAtomic, writeTextAtomic } from "../data/output/mod.ts";
import { esc, legendRows, type ReferenceLine, ticks } from "./curve.ts";
import { formatMetric } from "../tasks/metrics.ts";

/** An axis tick's label (not a metric: short, as report/curve.ts writes them). */
function tick(v: number): string {
  return String(Number(v.toPrecision(4)));
}
import { textWidth } from "./report.ts";

/** One layer's result: a probe's, or the head's with that layer ablated. */
export interface LayerPoint {
  /** Stored layer index (0 = embeddings, L = BERT's last layer). */
  layer: number;
  /** Dev metrics, as report columns (MNLI: `MNLI-m`, `MNLI-mm`). */
  metrics: Record<string, number>;
  /** Its output directory (probes). */
  dir?: string;
  /** Found finished by a rerun and kept, not trained again. */
  resumed?: boolean;
}

/** Everything `probe.json` holds. */
export interface ProbeCurve {
  task: string;
  /** "cls" ([CLS] vector), "mean" (mean over real tokens) or "token" (span: per token). */
  pool: string;
  /** Stored layers of the store (probes are trained on `points`' layers). */
  layers: number;
  /** Table columns and plotted columns (the task's main metric per dev split). */
  metricKeys: string[];
  plotted: string[];
  /** One per layer probed, in increasing order. */
  points: LayerPoint[];
  /** BERT's and the BERTVision head's dev metrics, when known. */
  references: ReferenceLine[];
  /** Settings shared by every probe. */
  settings: Record<string, unknown>;
  finished: string;
}

/** Everything `ablate.json` holds. */
export interface Ablation {
  task: string;
  /** The head directory ablated. */
  head: string;
  /** Its pooling ("ap", "lp", "avg"). */
  pooling: string;
  /** Where the layer means come from: the head's saved means, or a training store. */
  means: string;
  metricKeys: string[];
  plotted: string[];
  /** The head's dev metrics without ablation. */
  full: Record<string, number>;
  /** One per stored layer: the metrics with that layer replaced by its training mean. */
  points: LayerPoint[];
  /** LP heads: softmax of the learned layer logits, per layer (times `scale`). */
  layerWeights?: number[];
  /** LP heads: the learned scale. */
  scale?: number;
  finished: string;
}

/** The layer (or layers) with the best value of `key`. */
function best(points: LayerPoint[], key: string): LayerPoint | undefined {
  const pts = points.filter((p) => Number.isFinite(p.metrics[key]));
  return pts.length ? pts.reduce((a, p) => (p.metrics[key] > a.metrics[key] ? p : a)) : undefined;
}

/** One line per plotted column: where the probe peaks, and against the reference lines. */
export function probeSummary(c: ProbeCurve): string[] {
  const out: string[] = [];
  for (const key of c.plotted) {
    const b = best(c.points, key);
    if (!b) continue;
    const last = c.points.find((p) => p.layer === c.layers - 1);
    // Ties (small dev sets) are named, not hidden behind the first.
    const top = c.points.filter((p) => p.metrics[key] === b.metrics[key]).map((p) => p.layer);
    let line = `${key}: the probe peaks at layer${top.length > 1 ? "s" : ""} ${top.join(", ")} ` +
      `(${formatMetric(key, b.metrics[key])})`;
    if (last && !top.includes(last.layer)) {
      line += `; the last layer (${last.layer}) gives ${formatMetric(key, last.metrics[key])}`;
    }
    for (const r of c.references) {
      if (Number.isFinite(r.metrics[key])) {
        line += `; ${r.label} ${formatMetric(key, r.metrics[key])}`;
      }
    }
    out.push(line);
  }
  return out;
}

/** The probe table: one row per layer, the reference lines below, and the summary. */
export function probeMarkdown(c: ProbeCurve): string {
  const head = ["Layer", ...c.metricKeys];
  const lines = [
    `# ${c.task}: a linear probe per layer (${c.pool} features)`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
  ];
  for (const p of c.points) {
    lines.push(
      `| ${p.layer} | ${c.metricKeys.map((k) => formatMetric(k, p.metrics[k])).join(" | ")} |`,
    );
  }
  for (const r of c.references) {
    lines.push(
      `| ${r.label} | ${c.metricKeys.map((k) => formatMetric(k, r.metrics[k])).join(" | ")} |`,
    );
  }
  const s = probeSummary(c);
  if (s.length) lines.push("", ...s.map((x) => `- ${x}`));
  lines.push(
    "",
    "Layer 0 is the embeddings; layer L is BERT's last.",
    "",
    `Finished ${c.finished}.`,
  );
  return lines.join("\n") + "\n";
}

/** One line per plotted column: the layer whose ablation costs most. */
export function ablationSummary(a: Ablation): string[] {
  const out: string[] = [];
  for (const key of a.plotted) {
    const pts = a.points.filter((p) => Number.isFinite(p.metrics[key]));
    if (!pts.length || !Number.isFinite(a.full[key])) continue;
    const worst = pts.reduce((x, p) => (p.metrics[key] < x.metrics[key] ? p : x));
    out.push(
      `${key}: ${
        formatMetric(key, a.full[key])
      } with every layer; replacing layer ${worst.layer} by its ` +
        `training mean costs most (${formatMetric(key, worst.metrics[key])})`,
    );
  }
  if (a.layerWeights) {
    const w = a.layerWeights;
    const top = w.indexOf(Math.max(...w));
    out.push(`LP weights: largest at layer ${top} (${w[top].toFixed(3)})`);
  }
  return out;
}

/** The ablation table: the head's metrics, then one row per ablated layer (LP: its weight). */
export function ablationMarkdown(a: Ablation): string {
  const lp = a.layerWeights;
  const head = ["Layer replaced", ...a.metricKeys, ...(lp ? ["LP weight"] : [])];
  const lines = [
    `# ${a.task}: ${a.pooling.toUpperCase()} head with one layer replaced by its training mean`,
    "",
    `Head ${a.head}; layer means from ${a.means}.`,
    "",
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`,
    `| none | ${a.metricKeys.map((k) => formatMetric(k, a.full[k])).join(" | ")}${
      lp ? " | –" : ""
    } |`,
  ];
  for (const p of a.points) {
    lines.push(
      `| ${p.layer} | ${a.metricKeys.map((k) => formatMetric(k, p.metrics[k])).join(" | ")}` +
        `${lp ? ` | ${lp[p.layer].toFixed(4)}` : ""} |`,
    );
  }
  const s = ablationSummary(a);
  if (s.length) lines.push("", ...s.map((x) => `- ${x}`));
  lines.push("", `Finished ${a.finished}.`);
  return lines.join("\n") + "\n";
}

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2"];

/** A chart of one value per layer: a line with dots, or bars. */
export interface LayerChart {
  title: string;
  /** One series per plotted column; values by position in `layers`. */
  series: { label: string; values: number[] }[];
  layers: number[];
  style: "line" | "bars";
  /** Dashed horizontal lines (series index = colour). */
  references: { label: string; value: number; series: number }[];
  yLabel?: string;
}

/**
 * A standalone SVG of a {@linkcode LayerChart}: layers on x (0 = embeddings), the value on y,
 * a legend below. Widens to fit its title and legend; every label lies inside the viewBox.
 */
export function layerSvg(c: LayerChart): string {
  const fontSize = 12, titleSize = 14, margin = 10;
  const items: { text: string; color: string; dashed: boolean }[] = [];
  c.series.forEach((s, i) => items.push({ text: s.label, color: COLORS[i % 6], dashed: false }));
  for (const r of c.references) {
    items.push({
      text: `${r.label} ${formatMetric("", r.value)}`,
      color: COLORS[r.series % 6],
      dashed: true,
    });
  }
  const itemW = items.map((it) => 24 + textWidth(it.text, fontSize));
  const values = [
    ...c.series.flatMap((s) => s.values),
    ...c.references.map((r) => r.value),
  ].filter(Number.isFinite);
  let lo = values.length ? Math.min(...values) : 0, hi = values.length ? Math.max(...values) : 1;
  if (c.style === "bars") lo = Math.min(lo, 0);
  const pad = Math.max((hi - lo) * 0.1, Math.abs(hi) * 0.01, 1e-3);
  if (c.style !== "bars" || lo < 0) lo -= pad;
  hi += pad;
  const yTicks = ticks(lo, hi);
  lo = Math.min(lo, yTicks[0]);
  hi = Math.max(hi, yTicks.at(-1)!);
  const left = Math.ceil(16 + Math.max(...yTicks.map((v) => textWidth(tick(v), fontSize)))) +
    (c.yLabel ? 16 : 0);
  const W = Math.ceil(
    Math.max(
      480,
      left + 40 * c.layers.length + 20,
      textWidth(c.title, titleSize) + 2 * margin,
      ...itemW.map((w) => w + 2 * margin),
    ),
  );
  const right = 20, top = 40, plotH = 240;
  const plotW = W - left - right;
  const { at, bottom } = legendRows(itemW, W, margin, top + plotH + 50);
  const H = bottom + margin;
  const nL = Math.max(1, c.layers.length);
  const slot = plotW / nL;
  const x = (i: number) => left + slot * (i + 0.5);
  const y = (v: number) => top + plotH * (1 - (v - lo) / (hi - lo));
  const n = (v: number) => v.toFixed(1);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="${fontSize}">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="${titleSize}">${
      esc(c.title)
    }</text>`,
  ];
  for (const v of yTicks) {
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${n(y(v))}" y2="${n(y(v))}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${n(y(v) + 4)}" text-anchor="end">${tick(v)}</text>`,
    );
  }
  if (c.yLabel) {
    out.push(
      `<text x="14" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${
        top + plotH / 2
      })">${esc(c.yLabel)}</text>`,
    );
  }
  // Layer labels: every one when they fit, else every k-th.
  const every = Math.max(1, Math.ceil(textWidth("00", fontSize) * 1.5 / slot));
  c.layers.forEach((l, i) => {
    if (i % every && i !== nL - 1) return;
    out.push(`<text x="${n(x(i))}" y="${top + plotH + 16}" text-anchor="middle">${l}</text>`);
  });
  out.push(
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`,
    `<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">` +
      `layer (0 = embeddings)</text>`,
  );
  const base = y(Math.max(lo, Math.min(hi, 0)));
  c.series.forEach((s, si) => {
    const color = COLORS[si % 6];
    const pts = s.values.map((v, i) => ({ i, v })).filter((p) => Number.isFinite(p.v));
    if (c.style === "bars") {
      const bw = slot * 0.8 / c.series.length;
      for (const p of pts) {
        const bx = left + slot * p.i + slot * 0.1 + bw * si, yv = y(p.v);
        out.push(
          `<rect class="bar" x="${n(bx)}" y="${n(Math.min(yv, base))}" width="${n(bw)}" ` +
            `height="${n(Math.abs(base - yv))}" fill="${color}"><title>layer ${c.layers[p.i]}: ${
              esc(s.label)
            } ${formatMetric("", p.v)}</title></rect>`,
        );
      }
      return;
    }
    if (pts.length > 1) {
      out.push(
        `<polyline class="curve" fill="none" stroke="${color}" stroke-width="2" points="${
          pts.map((p) => `${n(x(p.i))},${n(y(p.v))}`).join(" ")
        }"/>`,
      );
    }
    for (const p of pts) {
      out.push(
        `<circle class="point" cx="${n(x(p.i))}" cy="${n(y(p.v))}" r="3.5" fill="${color}">` +
          `<title>layer ${c.layers[p.i]}: ${esc(s.label)} ${
            formatMetric("", p.v)
          }</title></circle>`,
      );
    }
  });
  for (const r of c.references) {
    out.push(
      `<line class="reference" x1="${left}" x2="${left + plotW}" y1="${n(y(r.value))}" ` +
        `y2="${n(y(r.value))}" stroke="${COLORS[r.series % 6]}" stroke-width="1.5" ` +
        `stroke-dasharray="6 4"><title>${esc(r.label)} ${formatMetric("", r.value)}</title></line>`,
    );
  }
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

/** The probe curve as a chart. */
export function probeChart(c: ProbeCurve): LayerChart {
  return {
    title: `${c.task}: a linear probe per layer (${c.pool})`,
    layers: c.points.map((p) => p.layer),
    style: "line",
    series: c.plotted.map((k) => ({
      label: `probe ${k}`,
      values: c.points.map((p) => p.metrics[k]),
    })),
    references: c.plotted.flatMap((k, si) =>
      // Each line its own colour (after the probes'), so BERT's and the head's differ.
      c.references.filter((r) => Number.isFinite(r.metrics[k])).map((r, ri) => ({
        label: `${r.label} ${k}`,
        value: r.metrics[k],
        series: c.plotted.length + si * c.references.length + ri,
      }))
    ),
    yLabel: "dev metric",
  };
}

/**
 * The ablation as a chart: per layer, the dev metric lost when that layer is replaced by its
 * training mean (the head's metric with every layer minus with that one ablated), as bars, so
 * that a small drop is as visible as a large one.
 */
export function ablationChart(a: Ablation): LayerChart {
  return {
    title: `${a.task}: ${a.pooling.toUpperCase()} head, dev metric lost per layer ablated`,
    layers: a.points.map((p) => p.layer),
    style: "bars",
    series: a.plotted.map((k) => ({
      label: `${k} lost (with every layer: ${formatMetric(k, a.full[k])})`,
      values: a.points.map((p) => a.full[k] - p.metrics[k]),
    })),
    references: [],
    yLabel: "metric lost",
  };
}

/** The LP head's layer weights as a chart (bars). */
export function weightsChart(a: Ablation): LayerChart | null {
  if (!a.layerWeights) return null;
  return {
    title: `${a.task}: LP head's learned layer weights`,
    layers: a.layerWeights.map((_, i) => i),
    style: "bars",
    series: [{ label: "softmax(layer logits)", values: a.layerWeights }],
    references: [],
  };
}

/** Writes `probe.json`, `probe.md`, `probe.svg` into `dir`; returns the paths. */
export async function writeProbe(dir: string, c: ProbeCurve): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const files = [`${dir}/probe.json`, `${dir}/probe.md`, `${dir}/probe.svg`];
  await writeJsonAtomic(files[0], c);
  exitIfAsked("probe", "json");
  await writeTextAtomic(files[1], probeMarkdown(c));
  await writeTextAtomic(files[2], layerSvg(probeChart(c)));
  return files;
}
