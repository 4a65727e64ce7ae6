// One number format per metric in every table: a SQuAD run whose values straddle 1 (a short
// run's F1 of 0.8929 beside the seed's 73.5724) prints every EM/F1 cell alike, as the seed's
// trainers print them ('{:>6.4f}': 70.3950), in the run's table, the cross-task table, the
// less-data curve's and the search's.
import assert from "node:assert/strict";
import { resultsMarkdown } from "./report.ts";
import { lineCells, runLines } from "./cross_find.ts";
import { curveMarkdown, type FractionCurve } from "./curve.ts";
import { searchMarkdown, type SearchSummary } from "./search_report.ts";
import { formatMetric } from "../tasks/metrics.ts";

const SEED_FORMAT = /^-?\d+\.\d{4}$/; // the seed's {:.4f}
const KEYS = ["exact", "f1", "HasAns_exact", "NoAns_exact"];
const sq = (exact: number, f1: number) => ({
  exact,
  f1,
  HasAns_exact: exact / 2,
  NoAns_exact: 100 - exact,
});

/** The cells of a Markdown table's body rows (header and rule left out). */
function bodyCells(md: string, header: string): string[][] {
  const lines = md.split("\n");
  const at = lines.findIndex((l) => l.startsWith(`| ${header}`));
  assert.ok(at >= 0, `no table headed ${header}`);
  const rows: string[][] = [];
  for (const l of lines.slice(at + 2)) {
    if (!l.startsWith("|")) break;
    rows.push(l.slice(2, -2).split(" | "));
  }
  return rows;
}

Deno.test("formatMetric: four decimals whatever the size; counts whole; none is a dash", () => {
  assert.equal(formatMetric("f1", 73.57236), "73.5724");
  assert.equal(formatMetric("f1", 0.892857), "0.8929");
  assert.equal(formatMetric("dev f1", 100), "100.0000");
  assert.equal(formatMetric("accuracy", 0.91628), "0.9163");
  assert.equal(formatMetric("HasAns_total", 5928), "5928");
  assert.equal(formatMetric("MNLI-m", undefined), "–");
  assert.equal(formatMetric("f1", NaN), "–");
});

Deno.test("every SQuAD table row prints EM/F1 in one format, values below and above 1 alike", () => {
  const results = {
    task: "squad",
    metricKeys: KEYS,
    rows: [
      { model: "BERT", params: 110e6, share: 1, metrics: sq(0.5, 0.8929) },
      { model: "BERTVision (AP)", params: 2e5, share: 0.002, metrics: sq(70.0581, 73.3558) },
      { model: "Ensemble", params: 110.2e6, share: 1.002, metrics: sq(70.395, 73.5724) },
    ],
    stageSeconds: { "fine-tune": 1 },
    adapter: "test",
    model: "bert-base-uncased",
    settings: { epochs: 1, batchSize: 16, l2: 1 },
    finished: "2026-01-01T00:00:00Z",
    notes: [],
  };
  // The run's own table: Model, Params, % of BERT, then the metrics.
  const own = bodyCells(resultsMarkdown(results), "Model");
  assert.equal(own.length, 3);
  for (const row of own) {
    for (const cell of row.slice(3)) assert.match(cell, SEED_FORMAT, row.join(" | "));
  }
  assert.deepEqual(own[0].slice(3, 5), ["0.5000", "0.8929"]);
  assert.deepEqual(own[2].slice(3, 5), ["70.3950", "73.5724"]);

  // The cross-task table: each cell "EM / F1 / ..." of BERT, the head, the ensemble and the
  // seed's published numbers (70.3950 / 73.5724 from its README).
  const { lines } = runLines(results, "squad");
  assert.ok(lines.length > 0);
  let metricCells = 0;
  for (const line of lines) {
    for (const cell of lineCells(line, true)) {
      if (!cell.includes(" / ") || cell.includes("exact")) continue;
      for (const v of cell.split(" / ")) {
        if (v !== "–") assert.match(v, SEED_FORMAT, cell);
      }
      metricCells++;
    }
  }
  assert.ok(metricCells >= 4, `${metricCells} metric cells`);

  // The less-data curve's table.
  const curve: FractionCurve = {
    task: "squad",
    model: "BERTVision (AP)",
    metricKeys: KEYS,
    plotted: ["f1"],
    points: [
      { fraction: 0.1, rows: 10, steps: 1, metrics: sq(0.25, 0.8929) },
      { fraction: 1, rows: 100, steps: 7, metrics: sq(65, 68.25) },
    ],
    references: [{ label: "BERT", metrics: sq(70.395, 73.5724) }],
    settings: {},
    finished: "2026-01-01T00:00:00Z",
  };
  const curveRows = bodyCells(curveMarkdown(curve), "Fraction");
  assert.equal(curveRows.length, 3);
  for (const row of curveRows) {
    for (const cell of row.slice(3)) assert.match(cell, SEED_FORMAT, row.join(" | "));
  }

  // The search's table: scores of the study's metric (f1).
  const search: SearchSummary = {
    task: "squad",
    target: "AP head",
    metric: "f1",
    space: "seed",
    sampler: "tpe",
    rungs: [1],
    eta: 3,
    rows: [
      { id: "t1", worker: "w", state: "complete", score: 0.8929, params: {}, rungScores: [0.8929] },
      { id: "t2", worker: "w", state: "complete", score: 73.5, params: {}, rungScores: [73.5] },
    ],
    best: "t2",
    dir: "d",
    logs: [],
  };
  const md = searchMarkdown(search);
  assert.ok(md.includes("0.8929") && md.includes("73.5000"), md);
  assert.ok(!/\b73\.50?\b(?!0)/.test(md.replace(/73\.5000/g, "")), md);
});
