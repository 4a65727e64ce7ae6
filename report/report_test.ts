import { deepStrictEqual, ok } from "node:assert/strict";
import { type Results, resultsMarkdown, resultsSvg, textWidth } from "./report.ts";

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

Deno.test("SVG chart: every legend label and the title lie inside the viewBox", () => {
  // The demo's rows (the longest ensemble labels last), eight more rows than fit on one line,
  // and a label wider than the default chart.
  const row = (model: string) => ({ model, params: 1, share: 1, metrics: { accuracy: 0.9 } });
  const cases: Results[] = [
    {
      ...r,
      rows: [
        "BERT (1 ep)",
        "BERT (2 ep)",
        "BERTVision (AP) (1 ep)",
        "Ensemble (BERT 1 ep + AP 1 ep)",
        "Ensemble (BERT 2 ep + AP 1 ep)",
      ].map(row),
    },
    { ...r, rows: Array.from({ length: 12 }, (_, i) => row(`Model number ${i} (WWW ${i} ep)`)) },
    {
      ...r,
      adapter: "llvmpipe (LLVM 15.0.7, 256 bits) with a very long adapter description indeed",
      rows: [row("M".repeat(80)), row("Ensemble")],
    },
    r,
  ];
  for (const res of cases) {
    const svg = resultsSvg(res);
    const [, vw, vh] = /viewBox="0 0 (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)"/.exec(svg)!.map(Number);
    const attr = (tag: string, name: string) =>
      Number(new RegExp(`${name}="([-\\d.]+)"`).exec(tag)![1]);
    const legend = [...svg.matchAll(/<text class="legend"[^>]*>([^<]*)<\/text>/g)];
    deepStrictEqual(legend.map((m) => m[1]), res.rows.map((x) => x.model), "every label drawn");
    for (const [tag, text] of legend) {
      const x = attr(tag, "x"), y = attr(tag, "y"), w = textWidth(text, 12);
      // The text box: from the baseline up one em, down a quarter em (descenders).
      ok(x >= 0 && x + w <= vw, `"${text}": x ${x}..${x + w} outside 0..${vw}`);
      ok(y - 12 >= 0 && y + 3 <= vh, `"${text}": y ${y - 12}..${y + 3} outside 0..${vh}`);
    }
    // The title is centred: it fits when the chart is at least as wide as it.
    const title = `${res.task}: BERT vs BERTVision (${res.adapter})`;
    ok(textWidth(title, 14) <= vw, `title ${textWidth(title, 14)} wider than ${vw}`);
  }
  // The width estimate is an upper bound of real faces: "W" is wider than "i", and it grows
  // with the text.
  ok(textWidth("W", 12) > textWidth("i", 12) && textWidth("ab", 12) > textWidth("a", 12));
});
