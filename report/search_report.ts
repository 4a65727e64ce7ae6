/**
 * A hyperparameter study's report (`deno task search`, train/search/study.ts): the trials as a
 * Markdown table and an SVG plot of the dev score against the trial, with the running best.
 * Host side only: it gets a plain {@linkcode SearchSummary}, knows nothing of how trials ran.
 * Checked by train/search/study_test.ts.
 * @module
 */
import { textWidth } from "./report.ts";
import { formatMetric } from "../tasks/metrics.ts";

/** One trial's row. */
export interface SearchRow {
  /** The trial's id (`<worker>-<number>`). */
  id: string;
  worker: string;
  /** "complete", "pruned" (stopped by successive halving), "failed" or "running". */
  state: string;
  /** Its score: the full budget's dev metric, or a pruned trial's last rung's; null if none. */
  score: number | null;
  /** Hyperparameters by flag name. */
  params: Record<string, number | string | boolean>;
  /** Its score at each rung (null where it did not get to). */
  rungScores: (number | null)[];
  /** Seconds it took (all its attempts' last). */
  seconds?: number;
  /** Why it failed. */
  error?: string;
}

/** Everything the report shows. */
export interface SearchSummary {
  task: string;
  /** What was searched: "BERT" or the head ("AP head"). */
  target: string;
  /** The dev metric maximized. */
  metric: string;
  /** The space in words. */
  space: string;
  /** "tpe" or "random", and its settings in words. */
  sampler: string;
  /** The rungs' epochs (the last is the full budget). */
  rungs: number[];
  eta: number;
  /** Trials in the order they started. */
  rows: SearchRow[];
  /** The best complete trial's id. */
  best?: string;
  /** The study's folder and logs. */
  dir: string;
  logs: string[];
}

/** The study's metric as every report prints it (tasks/metrics.ts `formatMetric`). */
function fmtScore(metric: string, v: number | null | undefined): string {
  return formatMetric(metric, v);
}

/** A hyperparameter's value as the table prints it (4 significant digits for reals). */
export function fmtParam(v: number | string | boolean): string {
  if (typeof v !== "number" || Number.isInteger(v)) return String(v);
  return Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

function shorten(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The study as Markdown: its settings, the best trial, and one row per trial. */
export function searchMarkdown(s: SearchSummary): string {
  const keys = [...new Set(s.rows.flatMap((r) => Object.keys(r.params)))];
  const count = (st: string) => s.rows.filter((r) => r.state === st).length;
  const best = s.rows.find((r) => r.id === s.best);
  const lines = [
    `# ${s.task}: hyperparameter search (${s.target})`,
    "",
    `Maximizing dev ${s.metric} over ${s.space}; sampler ${s.sampler}; successive halving ` +
    `(η = ${s.eta}) at epochs ${s.rungs.map((e) => fmtParam(e)).join(", ")}.`,
    "",
    `${s.rows.length} trials: ${count("complete")} complete, ${count("pruned")} pruned, ` +
    `${count("failed")} failed, ${count("running")} running or interrupted.`,
    "",
    best
      ? `Best: ${best.id}, ${s.metric} ${fmtScore(s.metric, best.score)} with ${
        keys.map((k) => `${k} ${fmtParam(best.params[k])}`).join(", ")
      }.`
      : "No trial has completed yet.",
    "",
  ];
  const rungHead = s.rungs.map((e) => `@${fmtParam(e)} ep`);
  const head = ["#", "trial", ...keys, ...rungHead, s.metric, "state", "seconds"];
  lines.push(
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => i < 2 ? "---" : "---:").join("|")}|`,
  );
  s.rows.forEach((r, i) => {
    const b = r.id === s.best ? "**" : "";
    const cells = [
      String(i + 1),
      `${b}${r.id}${b}`,
      ...keys.map((k) => (k in r.params ? fmtParam(r.params[k]) : "")),
      ...s.rungs.map((_, k) => fmtScore(s.metric, r.rungScores[k])),
      `${b}${fmtScore(s.metric, r.score)}${b}`,
      r.state + (r.error ? ` (${shorten(r.error.replaceAll("|", "/"), 100)})` : ""),
      r.seconds === undefined ? "" : r.seconds.toFixed(1),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  });
  lines.push("", `Logs: ${s.logs.join(", ")}.`);
  return lines.join("\n") + "\n";
}

/**
 * The score of every trial against its number (complete: filled; pruned: hollow, at its last
 * rung's score; failed: a cross at the bottom) and the running best of the complete trials as
 * a step line, as a standalone SVG.
 */
export function searchSvg(s: SearchSummary): string {
  const W = 640, H = 372, left = 60, right = 20, top = 40, bottom = 72;
  const title = `${s.task}: ${s.target} search, dev ${s.metric} per trial`;
  const width = Math.ceil(Math.max(W, textWidth(title, 14) + 20));
  const pw = width - left - right, ph = H - top - bottom;
  const scores = s.rows.map((r) => r.score).filter((v): v is number =>
    v !== null && Number.isFinite(v)
  );
  let lo = Math.min(...scores), hi = Math.max(...scores);
  if (!scores.length) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.08;
  lo -= pad;
  hi += pad;
  const n = Math.max(1, s.rows.length);
  const x = (i: number) => left + (n === 1 ? pw / 2 : (pw * i) / (n - 1));
  const y = (v: number) => top + ph * (1 - (v - lo) / (hi - lo));
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  for (let t = 0; t <= 4; t++) {
    const v = lo + ((hi - lo) * t) / 4;
    out.push(
      `<line x1="${left}" x2="${left + pw}" y1="${y(v).toFixed(1)}" y2="${
        y(v).toFixed(1)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${
        String(Number(v.toPrecision(4)))
      }</text>`,
    );
  }
  const ticks = Math.min(n, 10);
  for (let t = 0; t < ticks; t++) {
    const i = ticks === 1 ? 0 : Math.round(((n - 1) * t) / (ticks - 1));
    out.push(
      `<text x="${x(i).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle">${i + 1}</text>`,
    );
  }
  out.push(
    `<text x="${left + pw / 2}" y="${top + ph + 34}" text-anchor="middle">trial</text>`,
    `<text x="14" y="${top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${
      top + ph / 2
    })">dev ${esc(s.metric)}</text>`,
  );
  // The running best of the complete trials, as steps.
  let best = -Infinity;
  const path: string[] = [];
  s.rows.forEach((r, i) => {
    if (r.state === "complete" && r.score !== null && r.score > best) {
      if (path.length) path.push(`L${x(i).toFixed(1)},${y(best).toFixed(1)}`);
      best = r.score;
      path.push(`${path.length ? "L" : "M"}${x(i).toFixed(1)},${y(best).toFixed(1)}`);
    }
  });
  if (path.length) {
    path.push(`L${x(n - 1).toFixed(1)},${y(best).toFixed(1)}`);
    out.push(
      `<path class="best" d="${path.join(" ")}" fill="none" stroke="#e15759" stroke-width="2"/>`,
    );
  }
  s.rows.forEach((r, i) => {
    const tip = `<title>${esc(r.id)} ${r.state} ${fmtScore(s.metric, r.score)} ${
      esc(Object.entries(r.params).map(([k, v]) => `${k}=${fmtParam(v)}`).join(" "))
    }</title>`;
    if (r.score === null || !Number.isFinite(r.score)) {
      if (r.state !== "failed") return;
      const cx = x(i), cy = top + ph - 4;
      out.push(
        `<path class="failed" d="M${cx - 4},${cy - 4} L${cx + 4},${cy + 4} M${cx - 4},${cy + 4} L${
          cx + 4
        },${cy - 4}" stroke="#888">${tip}</path>`,
      );
      return;
    }
    const filled = r.state === "complete";
    out.push(
      `<circle class="${r.state}" cx="${x(i).toFixed(1)}" cy="${y(r.score).toFixed(1)}" r="4" ` +
        `fill="${filled ? "#4e79a7" : "white"}" stroke="#4e79a7">${tip}</circle>`,
    );
  });
  const ly = H - 10;
  out.push(
    `<circle cx="${left}" cy="${ly - 4}" r="4" fill="#4e79a7"/>`,
    `<text x="${left + 8}" y="${ly}">complete</text>`,
    `<circle cx="${left + 90}" cy="${ly - 4}" r="4" fill="white" stroke="#4e79a7"/>`,
    `<text x="${left + 98}" y="${ly}">pruned (last rung's score)</text>`,
    `<line x1="${left + 280}" x2="${left + 300}" y1="${ly - 4}" y2="${
      ly - 4
    }" stroke="#e15759" stroke-width="2"/>`,
    `<text x="${left + 306}" y="${ly}">best so far</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}
