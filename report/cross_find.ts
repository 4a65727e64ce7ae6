/**
 * The cross-task report's data: reading and checking each `results.json`, its lines beside the
 * seed's published numbers, the figure sets found under RESULTS_DIR, and the table's columns and
 * cells shared by the Markdown, SVG and HTML renderings (report/cross.ts writes them).
 * @module
 */
import { fmtMetric, type ResultRow, type Results } from "./report.ts";
import { InputError, preview, readInputText } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { underOverwrite } from "../data/output/mod.ts";
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

/**
 * Less-data curves, a search's plots, tables and best configuration, or which layers carry the
 * task (probe curves, ablations, LP weights: report/layers.ts), found under a run.
 */
export interface FigureSet {
  kind: "less-data" | "search" | "layers";
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
 * Parses and checks a `results.json` as `reproduce` writes it (report/report.ts `Results`);
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
export function taskOf(name: string): Task | undefined {
  return TASK_NAMES.includes(name) ? resolveTask(name) : undefined;
}

const num = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;

/** The dev splits a run reported (settings.devSplits), else the task's default ones. */
export function devSplitsOf(r: Results, task: Task | undefined): string[] | undefined {
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
/** A study log of `deno task search` (train/search/log.ts) or its best configuration. */
const STUDY_FILE = /^(trials-.*\.jsonl|best\.json)$/;
/** Layer probes and ablations (`deno task probe`, `deno task ablate`): their files or folders. */
const LAYERS = /^(probe|ablate)(_weights)?\.(svg|md)$|^(probes?|ablat\w*|layers)$/i;

/** What a directory or file name says it holds, if it says. */
function kindOfName(name: string): FigureSet["kind"] | undefined {
  return LESS_DATA.test(name)
    ? "less-data"
    : SEARCH.test(name)
    ? "search"
    : LAYERS.test(name)
    ? "layers"
    : undefined;
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
  // A run being overwritten (data/output/overwrite.ts) has no results yet: its old ones are void.
  // A results.json that is a FIFO or device is refused, naming it (reading it would block).
  const finished = async (dir: string) =>
    regularFileExists(`${dir}/results.json`, { what: "results.json" }) &&
    !(await underOverwrite(dir));
  if (await finished(root)) candidates.push({ dir: root, rel: "." });
  const missing: string[] = [];
  const entries: string[] = [];
  for await (const e of Deno.readDir(root)) {
    if (e.isDirectory && !e.name.startsWith(".")) entries.push(e.name);
  }
  entries.sort();
  for (const name of entries) {
    const dir = `${root}/${name}`;
    if (await finished(dir)) candidates.push({ dir, rel: name });
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
  const figures: FigureSet[] = [];
  for (const f of found) {
    if (!(f.svgs.length || f.tables.length || f.best)) continue;
    if (await underOverwrite(f.dir)) continue; // being overwritten: void
    figures.push(f);
  }
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
export const missingNote = (dir: string) =>
  `${dir}: no results.json (its reproduce has not finished, or was not run there)`;

/** The table's column groups and their columns. */
export function columns(report: CrossReport) {
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
    m ? line.metricKeys.map((k) => fmtMetric(k, m[k])).join(" / ") : "–";
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
export function sources(report: CrossReport): string[] {
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
