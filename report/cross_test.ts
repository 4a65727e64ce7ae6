// deno task report: one table over every task's results.json under a results directory, the
// seed's published numbers beside, one chart whose every label lies inside its viewBox, the
// less-data and search figures found, one self-contained HTML page, and bad input named. Three
// tasks' results are written by hand (writeResults), MNLI's by a real tiny reproduce run (two
// dev splits, BERT at two checkpoints): about 5 s on llvmpipe.
import { deepStrictEqual, match, ok, rejects } from "node:assert/strict";
import { fmtMetric, type Results, textWidth, writeResults } from "./report.ts";
import { InputError } from "../data/errors.ts";
import { writeSyntheticMnli } from "../data/synthetic.ts";
import { tinyTestBert } from "../tests/helpers.ts";
import { reproduce } from "../train/reproduce.ts";
import {
  crossSvg,
  findResults,
  markdownHtml,
  parseResults,
  REPORT_CSP,
  svgImage,
  writeCrossReport,
} from "./cross.ts";
import { PUBLISHED, publishedFor } from "./published.ts";
import { runCli } from "../tests/helpers.ts";

/** A hand-made results.json: rows from [model, metrics] pairs, settings as reproduce writes. */
function made(
  task: string,
  metricKeys: string[],
  rows: [string, Record<string, number>][],
  settings: Record<string, unknown>,
  model = "bert-base-uncased",
): Results {
  return {
    task,
    metricKeys,
    rows: rows.map(([m, metrics]) => ({ model: m, params: 1000, share: 1, metrics })),
    stageSeconds: { "fine-tune BERT": 1 },
    adapter: "test adapter",
    model,
    settings: {
      epochs: 1,
      captureAt: 1,
      batchSize: 16,
      lr: 1e-5,
      l2: 0.01,
      apEpochs: 1,
      apLr: 1e-5,
      apL2: 0.01,
      trainFraction: 1,
      ...settings,
    },
    finished: "2026-01-01T00:00:00Z",
    notes: [],
  };
}

/** Cells of the Markdown table's line whose first cell is `task`, by header. */
function mdLine(md: string, task: string): Record<string, string> {
  const rows = md.split("\n").filter((l) => l.startsWith("| "));
  const cells = (l: string) => l.slice(2, -2).split(" | ");
  const head = cells(rows[0]);
  const line = rows.find((l) => cells(l)[0] === task);
  ok(line, `no line for ${task} in\n${md}`);
  return Object.fromEntries(cells(line!).map((c, i) => [head[i], c]));
}

/**
 * Every `<text>` of an SVG lies inside its viewBox: its box from the baseline up one font size
 * and down a quarter, as wide as textWidth measures, placed by its text-anchor.
 */
function assertLabelsInside(svg: string): number {
  const [, vw, vh] = /viewBox="0 0 (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)"/.exec(svg)!.map(Number);
  const base = Number(/<svg[^>]*font-size="(\d+)"/.exec(svg)![1]);
  let n = 0;
  for (const [, tag, raw] of svg.matchAll(/<text([^>]*)>([^<]*)<\/text>/g)) {
    const a = (name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];
    const x = Number(a("x")), y = Number(a("y")), size = Number(a("font-size") ?? base);
    const text = raw.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
    const w = textWidth(text, size);
    const anchor = a("text-anchor") ?? "start";
    const left = anchor === "middle" ? x - w / 2 : anchor === "end" ? x - w : x;
    ok(left >= 0 && left + w <= vw, `"${text}": x ${left}..${left + w} outside 0..${vw}`);
    ok(y - size >= 0 && y + size / 4 <= vh, `"${text}": y ${y - size}..${y} outside 0..${vh}`);
    n++;
  }
  return n;
}

Deno.test("report: one table over every task, the seed's numbers beside, chart, figures, HTML", async () => {
  const dir = await Deno.makeTempDir();
  const res = `${dir}/results`;
  // SST-2 as the seed ran it (one checkpoint).
  await writeResults(
    `${res}/sst2`,
    made("sst2", ["accuracy"], [
      ["BERT", { accuracy: 0.91 }],
      ["BERTVision (AP)", { accuracy: 0.905 }],
      ["Ensemble", { accuracy: 0.92 }],
    ], { devSplits: ["dev"], trainFractions: [0.1, 1] }),
  );
  // SQuAD from BERT-large at 1 and 2 epochs, the head on the 1-epoch states: the paper's numbers.
  const sq = (e: number, f: number) => ({ exact: e, f1: f, HasAns_exact: e - 5, NoAns_exact: 90 });
  await writeResults(
    `${res}/squad`,
    made(
      "squad",
      ["exact", "f1", "HasAns_exact", "NoAns_exact"],
      [
        ["BERT (1 ep)", sq(56, 60)],
        ["BERT (2 ep)", sq(66, 70)],
        ["BERTVision (AP) (1 ep)", sq(61, 64)],
        ["Ensemble (BERT 1 ep + AP 1 ep)", sq(62, 65.5)],
        ["Ensemble (BERT 2 ep + AP 1 ep)", sq(67, 71.25)],
      ],
      { epochs: 2, captureAt: 1, batchSize: 8, l2: 1, apEpochs: 3, apL2: 0 },
      "bert-large-uncased",
    ),
  );
  // MRPC on GLUE's dev and the MSR test file (the seed's numbers are on the latter), under a
  // directory named otherwise, the head on half the rows.
  const mr = (a: number, f: number, b: number, g: number) => ({
    "MRPC dev accuracy": a,
    "MRPC dev f1": f,
    "MSRP test accuracy": b,
    "MSRP test f1": g,
  });
  await writeResults(
    `${res}/mrpc-msr`,
    made("mrpc", Object.keys(mr(0, 0, 0, 0)), [
      ["BERT", mr(0.8, 0.85, 0.77, 0.83)],
      ["BERTVision (AP)", mr(0.79, 0.84, 0.76, 0.82)],
      ["Ensemble", mr(0.81, 0.86, 0.78, 0.84)],
    ], { devSplits: ["dev", "msr_test"], trainFraction: 0.5 }),
  );
  // MNLI from a real tiny run: both dev splits as MNLI-m and MNLI-mm, BERT at 1 and 2 epochs.
  await writeSyntheticMnli(`${dir}/data`, { train: 24, dev: 9, mismatched: 7, seed: 2 });
  const { results: mnli } = await reproduce({
    task: "mnli",
    model: await tinyTestBert(`${dir}/bert`),
    dataDir: `${dir}/data`,
    out: res,
    epochs: 2,
    captureAt: 1,
    batchSize: 8,
    lr: 1e-3,
    maxSeqLength: 24,
    adapterDim: 4,
    silent: true,
  });
  deepStrictEqual(mnli.metricKeys, ["MNLI-m", "MNLI-mm"]);
  // An unfinished run; a less-data sweep as reproduce --train-fractions lays it out (a head per
  // fraction, then the curve's JSON, table and SVG); a study as deno task search does (a log
  // per worker, a folder per trial, best.json, trials.md, trials.svg).
  await Deno.mkdir(`${res}/qnli/bert`, { recursive: true });
  await Deno.mkdir(`${res}/sst2/fractions/fraction-0.1`, { recursive: true });
  await Deno.writeTextFile(`${res}/sst2/fractions/fraction-0.1/results.json`, "{}");
  await Deno.writeTextFile(`${res}/sst2/fractions/fractions.json`, "{}");
  const curve =
    `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">` +
    `<script>alert(1)</script><image href="https://example.com/x.png"/>` +
    `<a xlink:href="http://example.com"><text x="1" y="5" onclick="x()">curve</text></a></svg>`;
  await Deno.writeTextFile(`${res}/sst2/fractions/fractions.svg`, curve);
  await Deno.writeTextFile(
    `${res}/sst2/fractions/fractions.md`,
    "# Less data\n\n| fraction | accuracy |\n|---:|---:|\n| 0.1 | 0.7 |\n| 1 | 0.905 |\n",
  );
  await Deno.mkdir(`${res}/search-sst2/trials/w1-0`, { recursive: true });
  await Deno.writeTextFile(`${res}/search-sst2/trials-w1.jsonl`, "{}\n");
  await Deno.writeTextFile(`${res}/search-sst2/trials.md`, "| trial | score |\n|---|---|\n");
  await Deno.writeTextFile(`${res}/search-sst2/trials.svg`, `<svg viewBox="0 0 5 5"></svg>`);
  await Deno.writeTextFile(`${res}/search-sst2/best.json`, `{"adapterDim": 64, "lr": 0.0004}`);
  // A study under any name (its log says what it is), and a curve beside a run's own files.
  await Deno.mkdir(`${res}/tuning/mnli-ap`, { recursive: true });
  for (const f of ["trials-host.jsonl", "best.json", "score.svg", "notes.txt"]) {
    await Deno.writeTextFile(`${res}/tuning/mnli-ap/${f}`, f.endsWith("svg") ? "<svg/>" : "{}");
  }
  await Deno.writeTextFile(`${res}/mnli/fractions.svg`, "<svg/>");

  const { report, files } = await writeCrossReport(res);
  deepStrictEqual(files, ["report.md", "report.svg", "report.html"].map((f) => `${res}/${f}`));
  const md = await Deno.readTextFile(`${res}/report.md`);
  // Tasks in the seed's order, a line per BERT checkpoint.
  deepStrictEqual(report.runs.map((r) => r.results.task), ["squad", "sst2", "mrpc", "mnli"]);
  deepStrictEqual(report.runs.map((r) => r.lines.length), [2, 1, 1, 2]);

  const sst2 = mdLine(md, "sst2");
  deepStrictEqual(
    [sst2["Dev metric"], sst2["BERT Epoch"], sst2["BERT Batch"], sst2["BERT L2"], sst2["BERT Dev"]],
    ["accuracy", "1", "16", "0.01", "0.9100"],
  );
  deepStrictEqual([sst2["BERTVision Dev"], sst2.Ensemble], ["0.9050", "0.9200"]);
  // The seed's README: 0.91628 and 0.9128 at epoch 1, batch 16, L2 1.0 (as its table prints).
  deepStrictEqual(
    [sst2["Seed Epoch"], sst2["Seed Batch"], sst2["Seed L2"], sst2["Seed BERT"]],
    ["1", "16", "1.0", "0.9163"],
  );
  deepStrictEqual([sst2["Seed BERTVision"], sst2["Seed Ensemble"]], ["0.9128", "–"]);

  // SQuAD: BERT at 1 epoch with its ensemble, then at 2 with its own; the head on both lines.
  const [sq1, sq2] = md.split("\n").filter((l) => l.startsWith("| squad |"));
  ok(sq1 && sq2 && sq1 !== sq2);
  const head = md.split("\n").find((l) => l.startsWith("| Task"))!.slice(2, -2).split(" | ");
  const cells = (l: string) =>
    Object.fromEntries(l.slice(2, -2).split(" | ").map((c, i) => [head[i], c]));
  const a = cells(sq1), b = cells(sq2);
  deepStrictEqual(a["Dev metric"], "exact / f1 / HasAns_exact / NoAns_exact");
  deepStrictEqual([a["BERT Epoch"], a["BERT Batch"], a["BERT L2"]], ["1", "8", "1.0"]);
  deepStrictEqual(a["BERT Dev"], "56.0000 / 60.0000 / 51.0000 / 90.0000");
  deepStrictEqual(a.Ensemble, "62.0000 / 65.5000 / 57.0000 / 90.0000");
  deepStrictEqual([b["BERT Epoch"], b["BERT Dev"]], ["2", "66.0000 / 70.0000 / 61.0000 / 90.0000"]);
  deepStrictEqual(b.Ensemble, "67.0000 / 71.2500 / 62.0000 / 90.0000");
  for (const x of [a, b]) {
    deepStrictEqual([x["BERTVision Epoch"], x["BERTVision L2"]], ["3", "0.0"]);
    deepStrictEqual(x["BERTVision Dev"], "61.0000 / 64.0000 / 56.0000 / 90.0000");
    // The paper's BERT-large numbers, its ensemble included; what it does not give is "–".
    deepStrictEqual(
      [x["Seed BERT"], x["Seed BERTVision"], x["Seed Ensemble"]],
      ["72.8000 / 77.7000 / – / –", "74.9000 / 79.0000 / – / –", "75.6000 / 79.8000 / – / –"],
    );
    deepStrictEqual([x["Seed Batch"], x["Seed L2"]], ["–", "–"]);
  }

  // MRPC: the seed's MSR accuracy lands in the MSRP test accuracy column only.
  const mrpc = mdLine(md, "mrpc (mrpc-msr)");
  deepStrictEqual(
    mrpc["Dev metric"],
    "MRPC dev accuracy / MRPC dev f1 / MSRP test accuracy / MSRP test f1",
  );
  deepStrictEqual(mrpc["BERT Dev"], "0.8000 / 0.8500 / 0.7700 / 0.8300");
  deepStrictEqual(mrpc["Seed BERT"], "– / – / 0.7519 / –");
  deepStrictEqual(mrpc["Seed BERTVision"], "– / – / 0.7820 / –");
  match(md, /mrpc \(mrpc-msr\): the head trained on 50% of the training rows/);
  match(md, /sst2: a less-data sweep over 10%, 100% of the training rows/);

  // MNLI from the real run: its numbers in MNLI-m / MNLI-mm order, the seed's beside them.
  const [m1, m2] = md.split("\n").filter((l) => l.startsWith("| mnli |")).map(cells);
  const fmt = (row: number) =>
    mnli.metricKeys.map((k) => fmtMetric(k, mnli.rows[row].metrics[k])).join(" / ");
  deepStrictEqual(m1["Dev metric"], "MNLI-m / MNLI-mm");
  deepStrictEqual([m1["BERT Epoch"], m1["BERT Dev"]], ["1", fmt(0)]);
  deepStrictEqual([m2["BERT Epoch"], m2["BERT Dev"]], ["2", fmt(1)]);
  deepStrictEqual([m1["BERTVision Dev"], m2["BERTVision Dev"]], [fmt(2), fmt(2)]);
  deepStrictEqual([m1.Ensemble, m2.Ensemble], [fmt(3), fmt(4)]);
  deepStrictEqual([m1["Seed BERT"], m1["Seed BERTVision"]], ["0.8304 / 0.8348", "0.8287 / 0.8303"]);
  match(md, /published numbers are bert-base-uncased's; this run's BERT is .*bert/);

  // The unfinished run, the figure sets and the chart are named.
  match(md, /qnli: no results\.json/);
  deepStrictEqual(report.figures.map((f) => [f.kind, f.rel, f.task]), [
    ["less-data", "mnli", "mnli"],
    ["search", "search-sst2", "sst2"],
    ["less-data", "sst2/fractions", "sst2"],
    ["search", "tuning/mnli-ap", "mnli"],
  ]);
  ok(md.includes("![sst2/fractions](sst2/fractions/fractions.svg)"), md);
  ok(md.includes("From `search-sst2/trials.md`") && !md.includes("fractions.json"), md);
  ok(md.includes("| 0.1 | 0.7 |") && md.includes('"adapterDim": 64'), md);
  ok(md.includes("![BERT vs BERTVision across tasks](report.svg)"));
  // One task's directory as RESULTS_DIR: its own results.json, its figures.
  const one = await findResults(`${res}/sst2`);
  deepStrictEqual(one.runs.map((r) => [r.rel, r.results.task]), [[".", "sst2"]]);
  deepStrictEqual(one.figures.map((f) => [f.rel, f.task]), [["fractions", "sst2"]]);

  // One chart: a group per task and main metric (MNLI two), five series, labels inside.
  const svg = await Deno.readTextFile(`${res}/report.svg`);
  const groups = [...svg.matchAll(/<text class="group"[^>]*>([^<]*)</g)].map((m) => m[1]);
  deepStrictEqual(groups, [
    "squad f1",
    "sst2 accuracy",
    "mrpc (mrpc-msr) MRPC dev accuracy",
    "mrpc (mrpc-msr) MSRP test accuracy",
    "mnli MNLI-m",
    "mnli MNLI-mm",
  ]);
  ok(assertLabelsInside(svg) > 20);

  // One self-contained page: every SVG inline, nothing fetched, no script.
  const html = await Deno.readTextFile(`${res}/report.html`);
  ok(!/\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i.test(html), "an external src/href");
  ok(!/<script|<link|<iframe|@import|url\(/i.test(html), "an external asset or a script");
  ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${REPORT_CSP}">`));
  deepStrictEqual(html.match(/<svg/g)!.length, 1, "the chart inline");
  // The four figures as images of their files' bytes, the planted script and links with them.
  const images = [
    ...html.matchAll(/<img alt="([^"]*)" src="data:image\/svg\+xml;base64,([^"]*)">/g),
  ];
  deepStrictEqual(html.match(/<img/g)!.length, 4);
  deepStrictEqual(images.length, 4);
  const fig = images.find((m) => m[1] === "sst2/fractions/fractions.svg")!;
  deepStrictEqual(
    new TextDecoder().decode(Uint8Array.from(atob(fig[2]), (c) => c.charCodeAt(0))),
    curve,
  );
  ok(!html.includes(">curve</text>") && html.includes("<td>0.905</td>"), "figure and table");
  ok(html.includes('<td class="seed">0.9163</td>'), "the seed's SST-2 number in a seed cell");
  ok(html.includes('<td class="seed">72.8000 / 77.7000 / – / –</td>'));
  ok(html.includes('<th colspan="4">BERT</th>') && html.includes("Seed (published)"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: the chart keeps every label inside with many tasks and long names", () => {
  const runs = PUBLISHED.filter((p) => p.model === "bert-base-uncased").map((p, i) => {
    const results = made(p.task, ["accuracy"], [
      ["BERT", { accuracy: -0.2 }],
      ["BERTVision (AP)", { accuracy: 1 }],
      ["Ensemble", { accuracy: 0.5 }],
    ], {});
    return {
      dir: `x/${p.task}`,
      rel: p.task,
      results,
      lines: [{ task: `${p.task} ${"W".repeat(10 * i)}`, metricKeys: ["accuracy"] }],
      notes: [],
    };
  });
  const svg = crossSvg({ resultsDir: "x", runs, missing: [], figures: [] });
  ok(assertLabelsInside(svg) > 9);
});

Deno.test("report: bad input is an InputError naming the file or directory", async () => {
  const dir = await Deno.makeTempDir();
  await rejects(
    findResults(`${dir}/none`),
    (e) => e instanceof InputError && /no such dir/.test(e.message),
  );
  await rejects(
    findResults(dir),
    (e) => e instanceof InputError && e.message.includes(`${dir}: no results found`),
  );
  const bad = (text: string, re: RegExp) => {
    try {
      parseResults(text, "x/results.json");
    } catch (e) {
      ok(
        e instanceof InputError && e.message.startsWith("x/results.json: ") && re.test(e.message),
        String(e),
      );
      return;
    }
    throw new Error(`accepted ${text}`);
  };
  bad("{", /not valid JSON/);
  bad("[]", /expected an object/);
  bad(`{"task": "sst2", "metricKeys": ["accuracy"]}`, /"rows" is/);
  bad(
    `{"task": "sst2", "metricKeys": ["accuracy"], "rows": [{"model": "BERT", "metrics": {"accuracy": "x"}}]}`,
    /rows\[0\]\.metrics\.accuracy/,
  );
  // A NaN metric (JSON null) is shown as "–".
  const ok1 = parseResults(
    `{"task": "sst2", "metricKeys": ["accuracy"], "rows": [{"model": "BERT", "metrics": {"accuracy": null}}]}`,
    "y",
  );
  ok(Number.isNaN(ok1.rows[0].metrics.accuracy));
  // The command: a bad results.json is one line naming it (exit 1), no RESULTS_DIR a usage error.
  await Deno.mkdir(`${dir}/sst2`);
  await Deno.writeTextFile(`${dir}/sst2/results.json`, `{"task": 1}`);
  const r = await runCli("report.ts", [dir]);
  deepStrictEqual(r.code, 1, r.err);
  match(r.err, new RegExp(`^report: ${dir}/sst2/results.json: not a results.json`));
  deepStrictEqual(r.err.trim().split("\n").length, 1, r.err);
  const u = await runCli("report.ts", []);
  deepStrictEqual(u.code, 2);
  match(u.err, /missing RESULTS_DIR/);
  // A good one: the three files, at --out.
  await writeResults(
    `${dir}/sst2`,
    made("sst2", ["accuracy"], [["BERT", { accuracy: 0.5 }]], { devSplits: ["dev"] }),
  );
  const g = await runCli("report.ts", [dir, "--out", `${dir}/site`]);
  deepStrictEqual(g.code, 0, g.err);
  match(g.out, /1 task\(s\) \(sst2\), 1 line\(s\)/);
  const md = await Deno.readTextFile(`${dir}/site/report.md`);
  ok(md.includes("[results.md](../sst2/results.md)"), md);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("report: published numbers, SVG images and Markdown helpers", () => {
  deepStrictEqual(publishedFor("squad", "bert-large-uncased")?.ensemble?.dev.f1, 79.8);
  deepStrictEqual(publishedFor("squad", "/models/bert-base-uncased/")?.bert.dev.exact, 70.395);
  deepStrictEqual(publishedFor("wnli"), undefined);
  deepStrictEqual(
    svgImage('<svg>é"</svg>', 'a "b" <c>'),
    `<img alt="a &quot;b&quot; &lt;c&gt;" src="data:image/svg+xml;base64,${
      btoa(String.fromCharCode(...new TextEncoder().encode('<svg>é"</svg>')))
    }">`,
  );
  deepStrictEqual(
    markdownHtml("## T\n\n| a | b\\|c |\n|---|---|\n| 1 | `2` |\n\n> n <x>"),
    "<h2>T</h2>\n<table>\n<tr><th>a</th><th>b|c</th></tr>\n<tr><td>1</td><td><code>2</code></td></tr>\n" +
      "</table>\n<blockquote>n &lt;x&gt;</blockquote>",
  );
});
