// The less-data curve's table, summary and SVG (report/curve.ts): rows per fraction and BERT's
// below, the paper's two claims read off the points, points placed by fraction and value, one
// dashed line per reference, every label inside the viewBox. Host only.
import { deepStrictEqual, match, ok } from "node:assert/strict";
import { curveMarkdown, curveSummary, curveSvg, type FractionCurve } from "./curve.ts";
import { textWidth } from "./report.ts";

const sst2: FractionCurve = {
  task: "sst2",
  model: "BERTVision (AP)",
  metricKeys: ["accuracy"],
  plotted: ["accuracy"],
  points: [
    { fraction: 0.1, rows: 6735, steps: 421, metrics: { accuracy: 0.88 } },
    { fraction: 0.3, rows: 20205, steps: 1263, metrics: { accuracy: 0.915 } },
    { fraction: 0.5, rows: 33675, steps: 2105, metrics: { accuracy: 0.905 } },
    { fraction: 1, rows: 67349, steps: 4210, metrics: { accuracy: 0.92 } },
  ],
  references: [{ label: "BERT (1 ep)", metrics: { accuracy: 0.91 } }],
  settings: {},
  finished: "2026-01-01T00:00:00Z",
};

Deno.test("curve table: a row per fraction, BERT below, and what the curve says", () => {
  const md = curveMarkdown(sst2);
  ok(md.includes("| Fraction | Rows | Steps | accuracy |"), md);
  ok(md.includes("| 10% | 6735 | 421 | 0.8800 |"), md);
  ok(md.includes("| 100% | 67349 | 4210 | 0.9200 |"), md);
  ok(md.includes("| BERT (1 ep) | – | – | 0.9100 |"), md);
  // Best at 100%; 0.915 is within 1% of 0.92 (≥ 0.9108), so from 30%; above BERT from 30%.
  deepStrictEqual(curveSummary(sst2), [
    "accuracy: best 0.9200 at 100% of the training rows; within 1% of it from 30%; at or above " +
    "BERT (1 ep) (0.9100) from 30%",
  ]);
  const below = { ...sst2, references: [{ label: "BERT", metrics: { accuracy: 0.95 } }] };
  match(curveSummary(below)[0], /below BERT \(0\.9500\) at every fraction/);
});

/** Numbers of an SVG attribute across the elements matching `tag`. */
function attrs(svg: string, tag: string, name: string): number[] {
  return [...svg.matchAll(new RegExp(`<${tag}[^>]*?\\s${name}="([-\\d.]+)"`, "g"))].map((m) =>
    Number(m[1])
  );
}

Deno.test("curve SVG: points by fraction and value, BERT dashed, two columns for MNLI", () => {
  const svg = curveSvg(sst2);
  ok(svg.startsWith("<svg") && svg.trimEnd().endsWith("</svg>"));
  const cx = attrs(svg, "circle", "cx"), cy = attrs(svg, "circle", "cy");
  deepStrictEqual(cx.length, 4);
  // x is linear in the fraction from 0 (the left edge) to 1 (the right edge).
  const [x0, x1] = [60, 60 + (cx[3] - 60)];
  sst2.points.forEach((p, i) => ok(Math.abs(cx[i] - (x0 + (x1 - x0) * p.fraction)) < 0.2));
  // Higher scores sit higher (smaller y), and BERT's line lies between 0.905 and 0.915.
  ok(cy[0] > cy[2] && cy[2] > cy[1] && cy[1] > cy[3], `${cy}`);
  const ry = attrs(svg, 'line class="reference"', "y1");
  deepStrictEqual(ry.length, 1);
  ok(ry[0] < cy[2] && ry[0] > cy[1], `BERT at ${ry[0]}, points ${cy}`);
  match(svg, /stroke-dasharray="6 4"><title>BERT \(1 ep\) accuracy 0\.9100<\/title>/);

  const mnli: FractionCurve = {
    ...sst2,
    task: "mnli",
    metricKeys: ["MNLI-m", "MNLI-mm"],
    plotted: ["MNLI-m", "MNLI-mm"],
    points: sst2.points.map((p) => ({
      ...p,
      metrics: { "MNLI-m": p.metrics.accuracy - 0.1, "MNLI-mm": p.metrics.accuracy - 0.09 },
    })),
    references: [{ label: "BERT", metrics: { "MNLI-m": 0.8304, "MNLI-mm": 0.8348 } }],
  };
  const two = curveSvg(mnli);
  deepStrictEqual(two.match(/<polyline class="curve"/g)?.length, 2);
  deepStrictEqual(two.match(/<line class="reference"/g)?.length, 2);
  deepStrictEqual(two.match(/<circle class="point"/g)?.length, 8);
  // Every legend label inside the viewBox, however long.
  const long = { ...mnli, model: `BERTVision (AP) ${"with a long name ".repeat(4)}` };
  const svg3 = curveSvg(long);
  const W = Number(svg3.match(/viewBox="0 0 ([\d.]+) /)![1]);
  const H = Number(svg3.match(/viewBox="0 0 [\d.]+ ([\d.]+)"/)![1]);
  for (const m of svg3.matchAll(/<text class="legend" x="([\d.]+)" y="([\d.]+)">([^<]*)</g)) {
    ok(Number(m[1]) + textWidth(m[3], 12) <= W, `legend "${m[3]}" fits`);
    ok(Number(m[2]) <= H, `legend "${m[3]}" within the height`);
  }
});
