import { deepStrictEqual, ok } from "node:assert/strict";
import { type Results, resultsMarkdown, resultsSvg } from "./report.ts";

const r: Results = {
  task: "mrpc",
  metricKeys: ["accuracy", "f1"],
  rows: [
    { model: "BERT", params: 109482240, share: 1, metrics: { accuracy: 0.7519, f1: 0.83 } },
    {
      model: "BERTVision (AP)",
      params: 100354,
      share: 100354 / 109482240,
      metrics: { accuracy: 0.782, f1: 0.85 },
    },
    { model: "Ensemble", params: 109582594, share: 1.0009, metrics: { accuracy: 0.79, f1: 0.86 } },
  ],
  stageSeconds: { "fine-tune BERT": 120.5, "capture train": 30 },
  adapter: "NVIDIA <H100>",
  model: "bert-base-uncased",
  settings: {},
  finished: "2026-11-26T00:00:00Z",
  notes: ["a note"],
};

Deno.test("results table in the seed's format, with parameter shares and stage times", () => {
  const md = resultsMarkdown(r);
  ok(md.includes("| BERT | 109.48M | 100.000% | 0.7519 | 0.8300 |"), md);
  ok(md.includes("| BERTVision (AP) | 100.4K | 0.092% | 0.7820 | 0.8500 |"), md);
  ok(md.includes("| fine-tune BERT | 120.5 s |"));
  ok(md.includes("> a note"));
});

Deno.test("SVG chart: one bar per model and metric, text escaped", () => {
  const svg = resultsSvg(r);
  deepStrictEqual(svg.match(/<title>/g)!.length, 6);
  ok(svg.includes("NVIDIA &lt;H100&gt;") && !svg.includes("<H100>"));
});
