// Which layers carry the task (report/layers.ts): the probe curve, the ablation bars and the LP
// weights as Markdown and SVG with every label inside the viewBox (long names, many layers), and
// `deno task report` showing them in a "Layers" section of report.md and the self-contained
// report.html. Host only.
import { ok } from "node:assert/strict";
import {
  type Ablation,
  ablationChart,
  ablationMarkdown,
  layerSvg,
  probeChart,
  type ProbeCurve,
  weightsChart,
  writeProbe,
} from "./layers.ts";
import { textWidth, writeResults } from "./report.ts";
import { writeCrossReport } from "./cross.ts";

/** Every `<text>` lies inside the viewBox (its box measured by textWidth, by its anchor). */
function labelsInside(svg: string): number {
  const [, vw, vh] = /viewBox="0 0 ([\d.]+) ([\d.]+)"/.exec(svg)!.map(Number);
  const base = Number(/<svg[^>]*font-size="(\d+)"/.exec(svg)![1]);
  let n = 0;
  for (const [, tag, raw] of svg.matchAll(/<text([^>]*)>([^<]*)<\/text>/g)) {
    if (/transform=/.test(tag)) continue; // the rotated axis title, placed by hand at the left edge
    const a = (k: string) => new RegExp(`\\s${k}="([^"]*)"`).exec(tag)?.[1];
    const x = Number(a("x")), y = Number(a("y")), size = Number(a("font-size") ?? base);
    const text = raw.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
    const w = textWidth(text, size), anchor = a("text-anchor") ?? "start";
    const left = anchor === "middle" ? x - w / 2 : anchor === "end" ? x - w : x;
    ok(left >= 0 && left + w <= vw, `"${text}": x ${left}..${left + w} outside 0..${vw}`);
    ok(y - size >= 0 && y + size / 4 <= vh, `"${text}": y outside 0..${vh}`);
    n++;
  }
  return n;
}

const layers = 25; // BERT-large's 24 layers and the embeddings
const curve: ProbeCurve = {
  task: "mnli",
  pool: "cls",
  layers,
  metricKeys: ["MNLI-m", "MNLI-mm"],
  plotted: ["MNLI-m", "MNLI-mm"],
  points: Array.from({ length: layers }, (_, l) => ({
    layer: l,
    metrics: { "MNLI-m": 0.35 + l / 50, "MNLI-mm": 0.34 + l / 52 },
  })),
  references: [
    { label: "BERT (a very long checkpoint name, checkpoint-2)", metrics: { "MNLI-m": 0.84 } },
    { label: "BERTVision (AP)", metrics: { "MNLI-m": 0.83, "MNLI-mm": 0.835 } },
  ],
  settings: {},
  finished: "2026-01-01T00:00:00Z",
};
const ablation: Ablation = {
  task: "mnli",
  head: "results/mnli/ap",
  pooling: "lp",
  means: "results/mnli/ap/layer_means.safetensors",
  metricKeys: ["MNLI-m", "MNLI-mm"],
  plotted: ["MNLI-m"],
  full: { "MNLI-m": 0.83, "MNLI-mm": 0.835 },
  points: Array.from({ length: layers }, (_, l) => ({
    layer: l,
    metrics: { "MNLI-m": l === 20 ? 0.5 : 0.82, "MNLI-mm": 0.83 },
  })),
  layerWeights: Array.from({ length: layers }, (_, l) => (l === 20 ? 0.52 : 0.02)),
  scale: 1.3,
  finished: "2026-01-01T00:00:00Z",
};

Deno.test("layers: probe curve, ablation bars and LP weights keep every label inside", () => {
  const p = layerSvg(probeChart(curve));
  ok(labelsInside(p) >= 25, "tick, layer and legend labels");
  ok((p.match(/class="reference"/g) ?? []).length === 3, "BERT's line and the head's two");
  ok((p.match(/class="point"/g) ?? []).length === 2 * layers);
  const a = layerSvg(ablationChart(ablation));
  labelsInside(a);
  ok((a.match(/class="bar"/g) ?? []).length === layers);
  labelsInside(layerSvg(weightsChart(ablation)!));
  const md = ablationMarkdown(ablation);
  ok(md.includes("replacing layer 20 by its training mean costs most (0.5000)"), md);
  ok(md.includes("LP weights: largest at layer 20 (0.520)"), md);
});

Deno.test("layers: deno task report shows the probe and the ablation in a Layers section", async () => {
  const res = await Deno.makeTempDir({ prefix: "layers_report_" });
  await writeResults(
    `${res}/mnli`,
    {
      task: "mnli",
      metricKeys: ["MNLI-m", "MNLI-mm"],
      rows: [{ model: "BERT", params: 1, share: 1, metrics: { "MNLI-m": 0.84, "MNLI-mm": 0.84 } }],
      stageSeconds: {},
      adapter: "test adapter",
      model: "tiny",
      settings: { epochs: 1, batchSize: 16, l2: 0.01 },
      finished: "2026-01-01T00:00:00Z",
      notes: [],
    } as unknown as Parameters<typeof writeResults>[1],
  );
  await writeProbe(`${res}/mnli/probe`, curve);
  await Deno.mkdir(`${res}/mnli/ap`, { recursive: true });
  await Deno.writeTextFile(`${res}/mnli/ap/ablate.md`, ablationMarkdown(ablation));
  await Deno.writeTextFile(`${res}/mnli/ap/ablate.svg`, layerSvg(ablationChart(ablation)));
  await writeCrossReport(res);
  const md = await Deno.readTextFile(`${res}/report.md`);
  const layersPart = md.slice(md.indexOf("## Layers"));
  ok(md.includes("## Layers"), md);
  ok(
    layersPart.includes("](mnli/probe/probe.svg)") && layersPart.includes("](mnli/ap/ablate.svg)"),
  );
  ok(layersPart.includes("the probe peaks at layer 24"), layersPart);
  const html = await Deno.readTextFile(`${res}/report.html`);
  // Figures are data: URL images (report/cross_html.ts svgImage): decode them to read the charts.
  const part = html.slice(html.indexOf("<h2>Layers</h2>"));
  const section = part + [...part.matchAll(/src="data:image\/svg\+xml;base64,([^"]*)"/g)]
    .map((m) => new TextDecoder().decode(Uint8Array.from(atob(m[1]), (c) => c.charCodeAt(0))))
    .join("\n");
  ok(section.length > 20 && section.includes("a linear probe per layer"), "the probe chart is in");
  ok(section.includes("dev metric lost per layer ablated"), "the ablation chart is in");
  ok(!/(src|href)="(https?:|\/\/|[^"#d][^"]*\.svg)/.test(html), "nothing fetched");
});
