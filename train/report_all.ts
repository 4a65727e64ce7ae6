/**
 * One report across tasks (`deno task report RESULTS_DIR`): every task's `results.json` that
 * `reproduce --out RESULTS_DIR` wrote (`RESULTS_DIR/<task>/results.json`, or RESULTS_DIR's own),
 * as one table in the seed's layout — Epoch, Batch, L2 and the dev metrics of BERT, then of
 * BERTVision, then the ensemble, side by side — with the seed's published numbers
 * (train/published.ts) in their own columns, one bar chart across tasks, and the less-data
 * curves and hyperparameter-search plots found under RESULTS_DIR. Written as `report.md` +
 * `report.svg` and as one self-contained `report.html` (inline CSS and SVG, nothing fetched).
 *
 * Rows: one per BERT checkpoint of a run (with `--capture-at 1 --epochs 2`, BERT at 1 and at 2
 * epochs), each beside the run's head and the ensemble of that checkpoint with the head; a row
 * of `results.json` that is none of these gets a line of its own. Metric cells hold the task's
 * dev metrics in the run's order (MNLI: `MNLI-m / MNLI-mm`), joined by " / ".
 *
 * Figures picked up (`*.svg` shown, `*.md` tables included, `best.json` the best configuration),
 * down to three directories below RESULTS_DIR, never inside BERT checkpoints or activation
 * stores: every one under a directory whose name contains `fraction` or `less-data` (a
 * less-data sweep), or `search`, `study`, `hyperopt` or `trial` (a search); those of a directory
 * holding a study log (`trials-*.jsonl`) or a `best.json` (a search); and, anywhere else, SVG and
 * Markdown files whose own name says so (`fractions.svg`, `fractions.md` beside a head). Each set
 * is shown under the task whose directory holds it (or whose name its path contains).
 *
 * Host-side and fast (milliseconds per task). Bad input is an {@linkcode InputError} naming the
 * file: a `results.json` that is not JSON or not `reproduce`'s, a RESULTS_DIR that is missing
 * or holds no results.
 * @module
 */
import { esc, fmtMetric, type ResultRow, type Results, textWidth } from "../data/report.ts";
import { InputError, preview, readInputText } from "../data/errors.ts";
import { mergeDevMetrics, resolveTask, type Task, TASK_NAMES } from "../tasks/mod.ts";
import { PUBLISHED, publishedFor, type PublishedResult } from "./published.ts";

/** A model's cell group of the table: its settings and dev metrics. */
export interface ReportCell {
  /** The row's name in results.json ("BERT (1 ep)", "BERTVision (AP)", "Ensemble", ...). */
  model: string;
  epochs?: number;
  batch?: number;
  l2?: number;
  /** Dev metrics by report column (the run's `metricKeys`). */
  metrics: Record<string, number>;
}

/** One line of the cross-task table. */
export interface ReportLine {
  /** The task's label: its name, with the directory when that is not the name. */
  task: string;
  /** The run's metric columns, in order. */
  metricKeys: string[];
  bert?: ReportCell;
  head?: ReportCell;
  ensemble?: ReportCell;
  /** The published numbers beside it, by the same metric columns. */
  seed?: {
    result: PublishedResult;
    bert: Record<string, number>;
    bertvision: Record<string, number>;
    ensemble?: Record<string, number>;
  };
}

/** A task's run as found: its directory, its results and the lines it makes. */
export interface FoundRun {
  /** The directory holding results.json. */
  dir: string;
  /** Its path relative to RESULTS_DIR ("." for RESULTS_DIR's own). */
  rel: string;
  results: Results;
  lines: ReportLine[];
  /** Caveats shown under the table (published numbers on another split or model, ...). */
  notes: string[];
}

/** Less-data curves or a search's plots, tables and best configuration found under a run. */
export interface FigureSet {
  kind: "less-data" | "search";
  /** The directory whose name matched. */
  dir: string;
  /** Relative to RESULTS_DIR. */
  rel: string;
  /** The task label it belongs to, when known. */
  task?: string;
  svgs: string[];
  tables: string[];
  best?: string;
}

/** Everything the report shows. */
export interface CrossReport {
  resultsDir: string;
  runs: FoundRun[];
  /** Directories that look like a task's run but hold no results.json (unfinished runs). */
  missing: string[];
  figures: FigureSet[];
}

// ---- finding and reading results

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    throw e;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses and checks a `results.json` as `reproduce` writes it (data/report.ts `Results`);
 * metric values written as `null` (NaN in JSON) come back as NaN. Anything else is an
 * {@linkcode InputError} naming `path` and the entry at fault.
 */
export function parseResults(text: string, path: string): Results {
  const bad = (what: string): never => {
    throw new InputError(
      `${path}: not a results.json of deno task reproduce (${what}); rerun the task's ` +
        `reproduce (it resumes) or move the file out of the results directory`,
      { file: path },
    );
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  if (!isObject(raw)) return bad(`expected an object, got ${preview(raw)}`);
  if (typeof raw.task !== "string" || !raw.task) return bad(`"task" is ${preview(raw.task)}`);
  const keys = raw.metricKeys;
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) {
    return bad(`"metricKeys" is ${preview(keys)}, expected a list of metric names`);
  }
  if (!Array.isArray(raw.rows) || !raw.rows.length) {
    return bad(`"rows" is ${preview(raw.rows)}, expected a list of the models' rows`);
  }
  const rows: ResultRow[] = raw.rows.map((row: unknown, i: number) => {
    if (!isObject(row) || typeof row.model !== "string") {
      return bad(`rows[${i}] is ${preview(row)}, expected {model, params, share, metrics}`);
    }
    if (!isObject(row.metrics)) return bad(`rows[${i}].metrics is ${preview(row.metrics)}`);
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(row.metrics)) {
      if (v !== null && typeof v !== "number") {
        return bad(`rows[${i}].metrics.${k} is ${preview(v)}, expected a number`);
      }
      metrics[k] = v ?? NaN;
    }
    const num = (x: unknown) => (typeof x === "number" ? x : NaN);
    return { model: row.model, params: num(row.params), share: num(row.share), metrics };
  });
  for (const f of ["settings", "stageSeconds"] as const) {
    if (raw[f] !== undefined && !isObject(raw[f])) return bad(`"${f}" is ${preview(raw[f])}`);
  }
  if (raw.notes !== undefined && !Array.isArray(raw.notes)) {
    return bad(`"notes" is ${preview(raw.notes)}`);
  }
  return {
    task: raw.task,
    metricKeys: keys as string[],
    rows,
    stageSeconds: (raw.stageSeconds ?? {}) as Record<string, number>,
    adapter: typeof raw.adapter === "string" ? raw.adapter : "",
    model: typeof raw.model === "string" ? raw.model : "",
    settings: (raw.settings ?? {}) as Record<string, unknown>,
    finished: typeof raw.finished === "string" ? raw.finished : "",
    notes: ((raw.notes ?? []) as unknown[]).filter((n): n is string => typeof n === "string"),
  };
}

/** The task module of a results' task name, or undefined for a task this build does not know. */
function taskOf(name: string): Task | undefined {
  return TASK_NAMES.includes(name) ? resolveTask(name) : undefined;
}

const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/** The dev splits a run reported (settings.devSplits), else the task's default ones. */
function devSplitsOf(r: Results, task: Task | undefined): string[] | undefined {
  const s = r.settings.devSplits;
  if (Array.isArray(s) && s.every((x) => typeof x === "string")) return s as string[];
  return task?.devSplits;
}

/** Published metrics of one model, as the run's report columns (mergeDevMetrics' keys). */
function publishedColumns(
  task: Task,
  splits: string[],
  bySplit: PublishedResult["bert"],
): Record<string, number> {
  return mergeDevMetrics(
    task,
    splits.map((s) => [s, Object.hasOwn(bySplit, s) ? bySplit[s] : {}] as const),
  );
}

/** "(2 ep)" / "BERT 2 ep" in a row's name: the BERT epoch it belongs to. */
function epochIn(name: string, re: RegExp): number | undefined {
  const m = re.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The lines of one run: one per BERT row, then one for each row that fits none. */
export function runLines(r: Results, label: string): { lines: ReportLine[]; notes: string[] } {
  const task = taskOf(r.task);
  const s = r.settings;
  const bertRows = r.rows.filter((x) => /^BERT\b(?!Vision)/.test(x.model));
  const headRows = r.rows.filter((x) => /^BERTVision\b/.test(x.model));
  const ensRows = r.rows.filter((x) => /^Ensemble\b/.test(x.model));
  const others = r.rows.filter((x) => ![bertRows, headRows, ensRows].some((g) => g.includes(x)));
  const bertCell = (row: ResultRow): ReportCell => ({
    model: row.model,
    epochs: epochIn(row.model, /\((\d+(?:\.\d+)?) ep\)/) ?? num(s.captureAt) ?? num(s.epochs),
    batch: num(s.batchSize),
    l2: num(s.l2),
    metrics: row.metrics,
  });
  const headCell = (row: ResultRow): ReportCell => ({
    model: row.model,
    epochs: num(s.apEpochs),
    batch: num(s.apBatchSize) ?? num(s.batchSize),
    l2: num(s.apL2),
    metrics: row.metrics,
  });
  const ensCell = (row: ResultRow): ReportCell => ({ model: row.model, metrics: row.metrics });
  const notes: string[] = [];
  // The published numbers, by this run's columns.
  let seed: ReportLine["seed"];
  const pub = publishedFor(r.task, r.model);
  const splits = devSplitsOf(r, task);
  if (pub && task && splits) {
    seed = {
      result: pub,
      bert: publishedColumns(task, splits, pub.bert),
      bertvision: publishedColumns(task, splits, pub.bertvision),
      ensemble: pub.ensemble && publishedColumns(task, splits, pub.ensemble),
    };
    const on = Object.keys(pub.bert);
    if (!on.some((x) => splits.includes(x))) {
      notes.push(
        `${label}: the published numbers are on ${on.join(", ")}; this run evaluated ` +
          `${splits.join(", ")} (${pub.note ?? `rerun with --dev-split ${on.join(",")}`})`,
      );
    }
    if (pub.model !== r.model && r.model.split("/").at(-1) !== pub.model) {
      notes.push(`${label}: published numbers are ${pub.model}'s; this run's BERT is ${r.model}`);
    }
  }
  const pct = (f: number) => `${Math.round(f * 1000) / 10}%`;
  const fraction = num(s.trainFraction);
  if (fraction !== undefined && fraction !== 1) {
    notes.push(`${label}: the head trained on ${pct(fraction)} of the training rows`);
  }
  const sweep = Array.isArray(s.trainFractions) ? s.trainFractions.filter((f) => num(f)) : [];
  if (sweep.length) {
    notes.push(
      `${label}: a less-data sweep over ${sweep.map(pct).join(", ")} of the training rows; ` +
        `the table's head is the largest share's (the curve is under "Less data")`,
    );
  }
  const used = new Set<ResultRow>();
  const lines: ReportLine[] = [];
  const base = { task: label, metricKeys: r.metricKeys, ...(seed ? { seed } : {}) };
  const head = headRows[0];
  if (head) used.add(head);
  for (const [i, b] of bertRows.entries()) {
    const cell = bertCell(b);
    // Its ensemble: the one naming this BERT epoch, else (one BERT row) the plain "Ensemble".
    const ens = ensRows.find((e) =>
      !used.has(e) && epochIn(e.model, /BERT (\d+(?:\.\d+)?) ep/) === cell.epochs
    ) ?? (i === 0
      ? ensRows.find((e) => !used.has(e) && !/ ep\b/.test(e.model))
      : undefined);
    if (ens) used.add(ens);
    lines.push({
      ...base,
      bert: cell,
      ...(head ? { head: headCell(head) } : {}),
      ...(ens ? { ensemble: ensCell(ens) } : {}),
    });
  }
  if (!bertRows.length && head) lines.push({ ...base, head: headCell(head) });
  for (const row of [...headRows.slice(1), ...ensRows.filter((e) => !used.has(e)), ...others]) {
    const line: ReportLine = { ...base, task: `${label}: ${row.model}` };
    if (/^Ensemble\b/.test(row.model)) line.ensemble = ensCell(row);
    else line.head = headCell(row);
    lines.push(line);
  }
  return { lines, notes };
}

/** Directory names never searched for figures (checkpoints, stores, dependencies). */
const SKIP_DIR = /^(\.|activations$|node_modules$|checkpoint-)/;
const LESS_DATA = /fraction|less[-_]?data/i;
const SEARCH = /search|study|hyperopt|trial/i;
/** A study log of `deno task search` (train/search_log.ts) or its best configuration. */
const STUDY_FILE = /^(trials-.*\.jsonl|best\.json)$/;

/** What a directory or file name says it holds, if it says. */
function kindOfName(name: string): FigureSet["kind"] | undefined {
  return LESS_DATA.test(name) ? "less-data" : SEARCH.test(name) ? "search" : undefined;
}

async function sortedEntries(dir: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  for await (const e of Deno.readDir(dir)) entries.push(e);
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Adds a figure file to `set`: an SVG, a Markdown table or the best configuration. */
function addFigure(set: FigureSet, path: string, name: string): void {
  if (name.endsWith(".svg")) set.svgs.push(path);
  else if (name.endsWith(".md")) set.tables.push(path);
  else if (name === "best.json" && set.best === undefined) set.best = path;
}

/** Every figure file under `dir` (svg, md, best.json) into `set`, down to `depth` directories. */
async function collectFigures(dir: string, set: FigureSet, depth: number): Promise<void> {
  const entries = await sortedEntries(dir);
  // A BERT checkpoint's directory holds weights, not figures.
  if (entries.some((e) => e.name === "model.safetensors")) return;
  for (const e of entries) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (depth > 0 && !SKIP_DIR.test(e.name)) await collectFigures(p, set, depth - 1);
    } else if (e.isFile) addFigure(set, p, e.name);
  }
}

/**
 * Figure sets under `dir`: (1) a directory whose name says less data or search, with every
 * figure file beneath it; (2) a directory holding a study log (`trials-*.jsonl`) or `best.json`,
 * a search, with its own figure files; (3) elsewhere, files whose own name says so
 * (`fractions.svg`, `fractions.md`), with the others of their kind in the same directory.
 */
async function findFigures(
  dir: string,
  rel: string[],
  depth: number,
  out: FigureSet[],
): Promise<void> {
  const entries = await sortedEntries(dir);
  if (entries.some((e) => e.name === "model.safetensors")) return;
  const at = (kind: FigureSet["kind"]) => {
    let set = out.find((f) => f.dir === dir && f.kind === kind);
    if (!set) {
      set = { kind, dir, rel: rel.join("/") || ".", svgs: [], tables: [] };
      out.push(set);
    }
    return set;
  };
  if (rel.length && entries.some((e) => e.isFile && STUDY_FILE.test(e.name))) {
    const set = at("search");
    for (const e of entries) if (e.isFile) addFigure(set, `${dir}/${e.name}`, e.name);
  } else {
    for (const e of entries) {
      const kind = e.isFile && /\.(svg|md)$/.test(e.name) ? kindOfName(e.name) : undefined;
      if (kind) addFigure(at(kind), `${dir}/${e.name}`, e.name);
    }
  }
  for (const e of entries) {
    if (!e.isDirectory || SKIP_DIR.test(e.name)) continue;
    const p = `${dir}/${e.name}`, r = [...rel, e.name];
    const kind = kindOfName(e.name);
    if (kind) {
      const set: FigureSet = { kind, dir: p, rel: r.join("/"), svgs: [], tables: [] };
      await collectFigures(p, set, 4);
      out.push(set);
    } else if (depth > 0) {
      await findFigures(p, r, depth - 1, out);
    }
  }
}

/**
 * Finds every task's results under `resultsDir` (`<task>/results.json`, or its own
 * results.json), the directories that look like a run but have none, and the figure sets.
 * A missing directory, or one with no results.json, is an {@linkcode InputError}.
 */
export async function findResults(resultsDir: string): Promise<CrossReport> {
  const root = resultsDir.replace(/\/+$/, "") || "/";
  const st = await statOrNull(root);
  if (!st) {
    throw new InputError(
      `${root}: no such directory (give the --out directory of deno task reproduce, ` +
        `default results)`,
      { file: root },
    );
  }
  if (!st.isDirectory) {
    throw new InputError(`${root}: not a directory (give the directory holding <task>/)`, {
      file: root,
    });
  }
  const candidates: { dir: string; rel: string }[] = [];
  if (await statOrNull(`${root}/results.json`)) candidates.push({ dir: root, rel: "." });
  const missing: string[] = [];
  const entries: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (e.isDirectory && !e.name.startsWith(".")) entries.push(e.name);
  }
  entries.sort();
  for (const name of entries) {
    const dir = `${root}/${name}`;
    if ((await statOrNull(`${dir}/results.json`))?.isFile) candidates.push({ dir, rel: name });
    else if (TASK_NAMES.includes(name) || (await statOrNull(`${dir}/bert`))?.isDirectory) {
      missing.push(dir);
    }
  }
  if (!candidates.length) {
    throw new InputError(
      `${root}: no results found (expected ${root}/<task>/results.json, as deno task reproduce ` +
        `--out ${root} writes${missing.length ? `; none in ${missing.join(", ")}` : ""})`,
      { file: root },
    );
  }
  const runs: FoundRun[] = [];
  for (const c of candidates) {
    const path = `${c.dir}/results.json`;
    const results = parseResults(await readInputText(path), path);
    const base = c.dir.split("/").at(-1)!;
    const label = c.rel === "." || base === results.task
      ? results.task
      : `${results.task} (${base})`;
    const { lines, notes } = runLines(results, label);
    runs.push({ dir: c.dir, rel: c.rel, results, lines, notes });
  }
  // Tasks in the order the seed's README lists them, then the others by name.
  const order = [...new Set(PUBLISHED.map((p) => p.task))];
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  runs.sort((a, b) =>
    rank(a.results.task) - rank(b.results.task) ||
    (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)
  );
  const found: FigureSet[] = [];
  await findFigures(root, [], 3, found);
  const figures = found.filter((f) => f.svgs.length || f.tables.length || f.best);
  for (const f of figures) {
    const parts = f.rel.split("/");
    const run = runs.find((r) => r.rel !== "." && parts[0] === r.rel) ??
      runs.find((r) => parts.includes(r.results.task) || f.rel.includes(r.results.task)) ??
      runs.find((r) => r.rel === "."); // RESULTS_DIR is one task's directory
    if (run) f.task = run.lines[0]?.task.split(":")[0] ?? run.results.task;
  }
  return { resultsDir: root, runs, missing, figures };
}

// ---- the table

/** The note on a task's directory without results.json. */
const missingNote = (dir: string) =>
  `${dir}: no results.json (its reproduce has not finished, or was not run there)`;

/** The table's column groups and their columns. */
function columns(report: CrossReport) {
  const seedEnsemble = report.runs.some((r) => r.lines.some((l) => l.seed?.ensemble));
  return {
    seedEnsemble,
    groups: [
      { name: "", cols: ["Task", "Dev metric"] },
      { name: "BERT", cols: ["Epoch", "Batch", "L2", "Dev"] },
      { name: "BERTVision", cols: ["Epoch", "Batch", "L2", "Dev"] },
      { name: "Ensemble", cols: ["Dev"] },
      {
        name: "Seed (published)",
        cols: ["Epoch", "Batch", "L2", "BERT", "BERTVision", ...(seedEnsemble ? ["Ensemble"] : [])],
      },
    ],
  };
}

const fmtSetting = (v: number | undefined) => (v === undefined ? "–" : String(v));
const fmtL2 = (v: number | undefined) =>
  v === undefined ? "–" : Number.isInteger(v) ? v.toFixed(1) : String(v);

/** The cells of one line, in column order (Task and Dev metric first). */
export function lineCells(line: ReportLine, seedEnsemble: boolean): string[] {
  const metrics = (m: Record<string, number> | undefined) =>
    m ? line.metricKeys.map((k) => fmtMetric(m[k])).join(" / ") : "–";
  const settings = (c: ReportCell | undefined) =>
    c ? [fmtSetting(c.epochs), fmtSetting(c.batch), fmtL2(c.l2)] : ["–", "–", "–"];
  const p = line.seed;
  return [
    line.task,
    line.metricKeys.join(" / "),
    ...settings(line.bert),
    metrics(line.bert?.metrics),
    ...settings(line.head),
    metrics(line.head?.metrics),
    metrics(line.ensemble?.metrics),
    fmtSetting(p?.result.epochs),
    fmtSetting(p?.result.batchSize),
    fmtL2(p?.result.l2),
    metrics(p?.bert),
    metrics(p?.bertvision),
    ...(seedEnsemble ? [metrics(p?.ensemble)] : []),
  ];
}

/** The published sources shown under the table: those of the lines' seed columns. */
function sources(report: CrossReport): string[] {
  const seen = new Map<string, string[]>();
  for (const r of report.runs) {
    const p = r.lines[0]?.seed?.result;
    if (!p) continue;
    const key = `${p.source}: ${p.model}${p.note ? ` (${p.note})` : ""}`;
    if (!seen.has(key)) seen.set(key, []);
    seen.get(key)!.push(r.results.task);
  }
  return [...seen].map(([k, tasks]) => `${tasks.join(", ")} — ${k}`);
}

/** Relative path from directory `from` to `to` (both relative to the working directory or absolute). */
export function relPath(from: string, to: string): string {
  const abs = (p: string) => {
    const parts: string[] = [];
    for (const s of (p.startsWith("/") ? p : `${Deno.cwd()}/${p}`).split("/")) {
      if (s === "" || s === ".") continue;
      if (s === "..") parts.pop();
      else parts.push(s);
    }
    return parts;
  };
  const a = abs(from), b = abs(to);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/") || ".";
}

const mdCell = (s: string) => s.replaceAll("|", "\\|");

/** Lines of an included Markdown file, its headings moved under the report's own. */
function demote(md: string): string {
  return md.split("\n").map((l) => (/^#{1,3} /.test(l) ? `###${l}` : l)).join("\n").trim();
}

/**
 * The report as Markdown: the table, the chart (`chartFile`, relative to `outDir`), the runs,
 * the figure sets (their SVGs linked, their tables and best configurations included) and the
 * published numbers' sources. `files` reads an included file (tables, best.json).
 */
export function crossMarkdown(
  report: CrossReport,
  outDir: string,
  chartFile: string,
  files: Map<string, string>,
): string {
  const { groups, seedEnsemble } = columns(report);
  const head = groups.flatMap((g) =>
    g.cols.map((c) => (g.name && !(g.name === "Ensemble") ? `${g.name} ${c}` : g.name || c))
  ).map((h) => h.replace("Seed (published)", "Seed"));
  const out = [
    "# BERT vs BERTVision across tasks",
    "",
    `Results of \`deno task reproduce\` under \`${report.resultsDir}\`: ` +
    `${report.runs.map((r) => r.results.task).join(", ")}.`,
    "",
    `| ${head.map(mdCell).join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const r of report.runs) {
    for (const line of r.lines) {
      out.push(`| ${lineCells(line, seedEnsemble).map(mdCell).join(" | ")} |`);
    }
  }
  out.push(
    "",
    "Dev metrics as fractions (SQuAD 2.0: percentages, as the official script prints), several " +
      'joined by " / " in the Dev metric column\'s order; "–" where there is none. BERTVision ' +
      "is the run's head, Ensemble the head with that line's BERT checkpoint. Seed columns: the " +
      "published numbers (train/published.ts):",
    "",
    ...sources(report).map((s) => `- ${s}`),
  );
  const notes = [...report.runs.flatMap((r) => r.notes)];
  for (const m of report.missing) notes.push(missingNote(m));
  if (notes.length) out.push("", ...notes.map((n) => `> ${n}`));
  out.push("", `![BERT vs BERTVision across tasks](${chartFile})`, "", "## Runs", "");
  for (const r of report.runs) {
    const res = r.results;
    const link = relPath(outDir, `${r.dir}/results.md`);
    out.push(
      `- **${r.lines[0]?.task.split(":")[0] ?? res.task}** ([results.md](${link})): BERT ` +
        `\`${res.model}\`, ${res.adapter || "adapter not recorded"}` +
        (res.finished ? `, finished ${res.finished}` : "") +
        (res.notes.length ? `. ${res.notes.join(" ")}` : ""),
    );
  }
  for (const [kind, title] of [["less-data", "Less data"], ["search", "Hyperparameter search"]]) {
    const sets = report.figures.filter((f) => f.kind === kind);
    if (!sets.length) continue;
    out.push("", `## ${title}`);
    for (const f of sets) {
      out.push("", `### ${f.task ? `${f.task}: ` : ""}${f.rel}`, "");
      for (const svg of f.svgs) out.push(`![${f.rel}](${relPath(outDir, svg)})`, "");
      for (const t of f.tables) {
        out.push(`From \`${relPath(report.resultsDir, t)}\`:`, "", demote(files.get(t) ?? ""), "");
      }
      if (f.best) {
        out.push(
          `Best configuration (\`${relPath(report.resultsDir, f.best)}\`):`,
          "",
          "```json",
          (files.get(f.best) ?? "").trim(),
          "```",
          "",
        );
      }
    }
  }
  return out.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

// ---- the chart

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
    ...groups.flatMap((g) => g.values.map((v) => textWidth(fmtMetric(v), c.valueSize))),
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
        }"><title>${esc(`${g.label}: ${series[i].name} ${fmtMetric(v)}`)}</title></rect>`,
        `<text class="value" x="${(x0 + w + 3).toFixed(1)}" y="${
          y + c.barH - 2
        }" font-size="${c.valueSize}">${fmtMetric(v)}</text>`,
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

// ---- HTML

/**
 * An SVG file's markup fit to inline in the page: no XML prolog or doctype, no scripts or
 * event handlers, no link or image pointing outside the page.
 */
export function inlineSvg(svg: string): string {
  return svg
    .replace(/<\?xml[\s\S]*?\?>/g, "")
    .replace(/<!DOCTYPE[\s\S]*?>/gi, "")
    .replace(/<script[\s\S]*?<\/script\s*>/gi, "")
    .replace(/<(script|foreignObject)\b[^>]*\/>/gi, "")
    .replace(/\son\w+\s*=\s*("[^"]*"|'[^']*')/gi, "")
    .replace(/\s(?:xlink:)?(?:href|src)\s*=\s*("(?!#)[^"]*"|'(?!#)[^']*')/gi, "")
    .trim();
}

/** A little Markdown as HTML: headings, pipe tables, code fences, quotes, paragraphs. */
export function markdownHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split("\n");
  const inline = (s: string) =>
    esc(s)
      .replace(/!\[([^\]]*)\]\([^)]*\)/g, "[figure: $1]")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/`([^`]+)`/g, "<code>$1</code>")
      .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  const cells = (l: string) =>
    l.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/).map((x) =>
      x.trim().replaceAll("\\|", "|")
    );
  for (let i = 0; i < lines.length;) {
    const l = lines[i];
    if (l.startsWith("```")) {
      const body: string[] = [];
      for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
      i++;
      out.push(`<pre>${esc(body.join("\n"))}</pre>`);
    } else if (/^#{1,6} /.test(l)) {
      const level = Math.min(6, l.indexOf(" "));
      out.push(`<h${level}>${inline(l.replace(/^#+ /, ""))}</h${level}>`);
      i++;
    } else if (l.trim().startsWith("|")) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i].trim().startsWith("|"); i++) {
        if (!/^\s*\|?\s*:?-+/.test(lines[i])) rows.push(cells(lines[i]));
      }
      const [head, ...body] = rows;
      out.push(
        "<table>",
        `<tr>${head.map((h) => `<th>${inline(h)}</th>`).join("")}</tr>`,
        ...body.map((r) => `<tr>${r.map((x) => `<td>${inline(x)}</td>`).join("")}</tr>`),
        "</table>",
      );
    } else if (l.startsWith(">")) {
      out.push(`<blockquote>${inline(l.replace(/^>\s?/, ""))}</blockquote>`);
      i++;
    } else if (l.trim()) {
      const para: string[] = [];
      for (; i < lines.length && lines[i].trim() && !/^(#|\||>|```)/.test(lines[i].trim()); i++) {
        para.push(lines[i].replace(/^- /, "• "));
      }
      out.push(`<p>${para.map(inline).join("<br>")}</p>`);
    } else i++;
  }
  return out.join("\n");
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td.l,th.l{text-align:left}
tr.first td{border-top:2px solid #999}
td.seed{background:#fafaf0}
svg{max-width:100%;height:auto}
blockquote{color:#555;margin:4px 0 4px 12px}
pre{background:#f6f6f6;padding:8px;overflow-x:auto}
.scroll{overflow-x:auto}`;

/**
 * The report as one self-contained HTML page: inline CSS, the table (two header rows: the
 * models, then Epoch, Batch, L2 and Dev), the chart and every figure set's SVGs inline, their
 * tables and best configurations. Nothing is fetched: no external `src` or `href`.
 */
export function crossHtml(report: CrossReport, chart: string, files: Map<string, string>): string {
  const { groups, seedEnsemble } = columns(report);
  const out: string[] = [
    "<!DOCTYPE html>",
    '<html lang="en"><head><meta charset="utf-8">',
    "<title>BERT vs BERTVision across tasks</title>",
    `<style>${STYLE}</style></head><body>`,
    "<h1>BERT vs BERTVision across tasks</h1>",
    `<p>Results of <code>deno task reproduce</code> under <code>${esc(report.resultsDir)}</code>: ${
      report.runs.map((r) => esc(r.results.task)).join(", ")
    }.</p>`,
    '<div class="scroll"><table>',
    `<tr>${
      groups.map((g) =>
        g.name
          ? `<th colspan="${g.cols.length}">${esc(g.name)}</th>`
          : g.cols.map((c) => `<th class="l" rowspan="2">${esc(c)}</th>`).join("")
      ).join("")
    }</tr>`,
    `<tr>${
      groups.filter((g) => g.name).flatMap((g) => g.cols.map((c) => `<th>${esc(c)}</th>`)).join(
        "",
      )
    }</tr>`,
  ];
  const seedFrom = 2 + 4 + 4 + 1;
  for (const r of report.runs) {
    r.lines.forEach((line, i) => {
      const cells = lineCells(line, seedEnsemble).map((x, j) =>
        `<td${j < 2 ? ' class="l"' : j >= seedFrom ? ' class="seed"' : ""}>${esc(x)}</td>`
      );
      out.push(`<tr${i === 0 ? ' class="first"' : ""}>${cells.join("")}</tr>`);
    });
  }
  out.push(
    "</table></div>",
    "<p>Dev metrics as fractions (SQuAD 2.0: percentages, as the official script prints), " +
      "several joined by “ / ” in the Dev metric column's order; “–” where there is none. " +
      "BERTVision is the run's head, Ensemble the head with that line's BERT checkpoint. Seed " +
      "columns: the published numbers (train/published.ts):</p>",
    `<ul>${sources(report).map((s) => `<li>${esc(s)}</li>`).join("")}</ul>`,
  );
  const notes = [...report.runs.flatMap((r) => r.notes)];
  for (const m of report.missing) notes.push(missingNote(m));
  for (const n of notes) out.push(`<blockquote>${esc(n)}</blockquote>`);
  out.push(`<figure>${inlineSvg(chart)}</figure>`, "<h2>Runs</h2>", "<ul>");
  for (const r of report.runs) {
    const res = r.results;
    out.push(
      `<li><strong>${esc(r.lines[0]?.task.split(":")[0] ?? res.task)}</strong> (${
        esc(`${r.dir}/results.md`)
      }): BERT <code>${esc(res.model)}</code>, ${esc(res.adapter || "adapter not recorded")}${
        res.finished ? `, finished ${esc(res.finished)}` : ""
      }${res.notes.length ? `. ${esc(res.notes.join(" "))}` : ""}</li>`,
    );
  }
  out.push("</ul>");
  for (const [kind, title] of [["less-data", "Less data"], ["search", "Hyperparameter search"]]) {
    const sets = report.figures.filter((f) => f.kind === kind);
    if (!sets.length) continue;
    out.push(`<h2>${title}</h2>`);
    for (const f of sets) {
      out.push(`<h3>${esc(`${f.task ? `${f.task}: ` : ""}${f.rel}`)}</h3>`);
      for (const svg of f.svgs) {
        out.push(
          `<figure>${inlineSvg(files.get(svg) ?? "")}<figcaption>${
            esc(relPath(report.resultsDir, svg))
          }</figcaption></figure>`,
        );
      }
      for (const t of f.tables) {
        out.push(
          `<p>From <code>${esc(relPath(report.resultsDir, t))}</code>:</p>`,
          `<div class="scroll">${markdownHtml(demote(files.get(t) ?? ""))}</div>`,
        );
      }
      if (f.best) {
        out.push(
          `<p>Best configuration (<code>${esc(relPath(report.resultsDir, f.best))}</code>):</p>`,
          `<pre>${esc((files.get(f.best) ?? "").trim())}</pre>`,
        );
      }
    }
  }
  out.push("</body></html>");
  return out.join("\n") + "\n";
}

/** Options of {@linkcode writeCrossReport}. */
export interface CrossReportOptions {
  /** Where report.md, report.svg and report.html go (default: the results directory). */
  out?: string;
}

/**
 * Finds the results under `resultsDir` and writes `report.md`, `report.svg` and `report.html`
 * (into `opts.out`, default `resultsDir`). Returns what it found and the files written.
 */
export async function writeCrossReport(
  resultsDir: string,
  opts: CrossReportOptions = {},
): Promise<{ report: CrossReport; files: string[] }> {
  const report = await findResults(resultsDir);
  const outDir = (opts.out ?? report.resultsDir).replace(/\/+$/, "") || "/";
  // The figure sets' files, read once (a figure that cannot be read is an InputError naming it).
  const files = new Map<string, string>();
  for (const f of report.figures) {
    for (const p of [...f.svgs, ...f.tables, ...(f.best ? [f.best] : [])]) {
      files.set(p, await readInputText(p));
    }
  }
  const chart = crossSvg(report);
  await Deno.mkdir(outDir, { recursive: true });
  const written = [`${outDir}/report.md`, `${outDir}/report.svg`, `${outDir}/report.html`];
  await Deno.writeTextFile(written[0], crossMarkdown(report, outDir, "report.svg", files));
  await Deno.writeTextFile(written[1], chart);
  await Deno.writeTextFile(written[2], crossHtml(report, chart, files));
  return { report, files: written };
}
