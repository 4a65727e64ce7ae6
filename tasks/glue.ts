/**
 * The GLUE distribution's TSV files and a factory for the nine GLUE task modules.
 *
 * The files are read as the GLUE reference code reads them: split on newlines and tabs, no quote
 * processing (quotes are part of the text). Quirks handled: CoLA's train/dev files have no header
 * (its test file has one), MRPC's header starts with a byte-order mark, STS-B has ten columns and
 * a float score, MNLI has `dev_matched`/`dev_mismatched`, test files have no label column, and
 * QQP has malformed rows that are skipped and counted. Any other row with the wrong number of
 * columns, a label outside the label space (for STS-B: a score that is not a decimal number in
 * `scoreRange`, [0, 5]) or bytes that are not UTF-8 are an {@linkcode InputError} naming
 * `file:line`. The label cell is parsed by the task's head kind (a class name, a score, or a
 * comma-separated set of labels).
 *
 * A new GLUE-format task is one file calling {@linkcode glueTask} plus its line in the registry
 * (tasks/mod.ts); see README "Adding a task".
 * @module
 */

import { accuracy, f1Binary, matthews, pearson, spearman } from "./metrics.ts";
import type { GlueExample, GlueRead, GlueTask } from "./types.ts";
import { kindOf } from "./kinds/mod.ts";
import { featurize, featurizeParallel } from "../data/features.ts";
import type { DataSource } from "../data/fetch.ts";
import { decodeUtf8, InputError, readInput } from "../data/errors.ts";

/** How one GLUE task lays out its files. */
export interface GlueSpec {
  /** Command-line name. */
  name: string;
  /** Head kind (tasks/kinds/mod.ts): "classification", "regression", "multilabel", ... */
  kind: string;
  /** Folder under the GLUE root, e.g. `SST-2`. */
  dir: string;
  /** Label strings as written in the files (index = class id); empty for regression. */
  labels: string[];
  /** Header names of the first sentence, the second (pairs) and the label columns. */
  textA: string;
  textB?: string;
  label: string;
  /**
   * Split name -> file name inside `dir`. Splits starting with `test` have no labels; those
   * starting with `dev` are the task's default dev splits; any other labelled split (MRPC's
   * `msr_test`) is evaluated when asked for (`--dev-split`).
   */
  files: Record<string, string>;
  /** Report names of dev splits shown side by side (MNLI: `{ dev_matched: "MNLI-m", ... }`). */
  devLabels?: Record<string, string>;
  /** Header of labelled files that have none (CoLA). */
  impliedHeader?: string[];
  /** Skip (and count) rows with the wrong number of columns instead of throwing (QQP). */
  skipMalformed?: boolean;
  /** Regression: the range every score lies in (STS-B: [0, 5]); a score outside is an error. */
  scoreRange?: readonly [number, number];
  /**
   * Metric names computed by `metrics`, the first is the primary one: accuracy, f1, matthews,
   * pearson, spearman, or one the head kind defines (multi-label: micro_f1, exact_match).
   */
  metrics: string[];
  /**
   * Where `fetch-data` gets the files; default the GLUE zip `<dir>.zip` holding every file of
   * `files`. `{ type: "none" }` for a task with no download.
   */
  source?: DataSource;
}

type MetricFn = (preds: ArrayLike<number>, golds: ArrayLike<number>) => number;

const METRIC_FNS: Record<string, MetricFn> = {
  accuracy,
  f1: (p, g) => f1Binary(p, g, 1),
  matthews,
  pearson,
  spearman,
};

/**
 * Parses the text of one GLUE TSV file.
 *
 * @example
 * ```ts
 * import { parseGlueTsv } from "./glue.ts";
 * import { sst2 } from "./sst2.ts";
 * const { examples } = parseGlueTsv(sst2, "sentence\tlabel\ngood fun \t1\n", "dev.tsv");
 * console.assert(examples[0].textA === "good fun " && examples[0].label === 1);
 * ```
 */
export function parseGlueTsv(
  task: GlueTaskWithSpec,
  text: string,
  file: string,
  opts: { test?: boolean } = {},
): GlueRead {
  const spec = task.spec;
  const test = opts.test ?? false;
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let first = 0;
  let header: string[];
  if (spec.impliedHeader && !test) {
    header = spec.impliedHeader;
  } else {
    if (lines.length === 0) {
      throw new InputError(`${file}: empty file (expected a header line)`, { file });
    }
    header = lines[0].replace(/^\uFEFF/, "").replace(/\r$/, "").split("\t");
    first = 1;
  }
  const col = (name: string | undefined, required: boolean): number => {
    if (name === undefined) return -1;
    const i = header.indexOf(name);
    if (i < 0 && required) {
      throw new InputError(
        `${file}:1: no column "${name}" in the header (${
          header.join(", ")
        }); is this a ${spec.name} file?`,
        { file, line: 1 },
      );
    }
    return i;
  };
  const ca = col(spec.textA, true);
  const cb = col(spec.textB, true);
  const cl = test ? -1 : col(spec.label, true);
  const kind = kindOf(task);
  const examples: GlueExample[] = [];
  let skipped = 0;
  for (let i = first; i < lines.length; i++) {
    const lineNo = i + 1;
    const fields = lines[i].replace(/\r$/, "").split("\t");
    if (fields.length !== header.length) {
      if (spec.skipMalformed) {
        skipped++;
        continue;
      }
      throw new InputError(
        `${file}:${lineNo}: expected ${header.length} tab-separated columns, got ${fields.length}`,
        { file, line: lineNo },
      );
    }
    const ex: GlueExample = { idx: examples.length, line: lineNo, textA: fields[ca] };
    if (cb >= 0) ex.textB = fields[cb];
    if (cl >= 0) {
      let row: number[];
      try {
        row = kind.parseLabel(fields[cl], `${file}:${lineNo}`);
      } catch (e) {
        if (!spec.skipMalformed) throw e;
        skipped++;
        continue;
      }
      ex.label = row.length === 1 ? row[0] : row;
    }
    examples.push(ex);
  }
  return { examples, skipped };
}

/** A GLUE task with the layout it was built from. */
export type GlueTaskWithSpec = GlueTask & { spec: GlueSpec };

/**
 * Builds a {@linkcode GlueTask} (with its `spec` attached) from a file layout; its head kind
 * checks the labels at once (e.g. classification needs two or more).
 */
export function glueTask(spec: GlueSpec): GlueTaskWithSpec {
  const isTest = (split: string) => split.startsWith("test");
  const fileFor = (split: string): string => {
    const f = Object.hasOwn(spec.files, split) ? spec.files[split] : undefined;
    if (f === undefined) {
      throw new InputError(
        `${spec.name} has no split "${split}" (splits: ${Object.keys(spec.files).join(", ")})`,
      );
    }
    return `${spec.dir}/${f}`;
  };
  const task: GlueTaskWithSpec = {
    spec,
    name: spec.name,
    kind: spec.kind,
    format: "glue-tsv",
    labels: spec.labels,
    numLabels: 0, // the kind's outputs, set below
    loss: "",
    splits: Object.keys(spec.files),
    devSplits: Object.keys(spec.files).filter((s) => s.startsWith("dev")),
    devLabels: spec.devLabels,
    fileFor,
    primaryMetric: spec.metrics[0],
    reportMetrics: [...spec.metrics],
    scoreRange: spec.scoreRange,
    source: spec.source ??
      { type: "glue-zip", zip: `${spec.dir}.zip`, dir: spec.dir, files: Object.values(spec.files) },
    parse: (text, file, opts) => parseGlueTsv(task, text, file, opts),
    async readFile(path, opts) {
      const bytes = await readInput(path, {
        notFound: `${spec.name}: ${path} not found (run: deno task fetch-data --task ${spec.name})`,
      });
      const text = decodeUtf8(bytes, path);
      const read = parseGlueTsv(task, text, path, opts);
      if (read.skipped > 0) {
        console.warn(`${path}: skipped ${read.skipped} malformed rows`);
      }
      return read;
    },
    async readSplit(dataDir, split) {
      const path = `${dataDir.replace(/\/+$/, "")}/${fileFor(split)}`;
      return (await task.readFile(path, { test: isTest(split) })).examples;
    },
    async readRows(path, o) {
      const all = (await task.readFile(path, { test: o.test })).examples;
      const examples = o.limit === undefined ? all : all.slice(0, o.limit);
      if (examples.length === 0) throw new InputError(`${path}: no examples`, { file: path });
      const S = o.maxSeqLength, width = kind.labelWidth;
      const f = o.workers && o.workers.count > 1
        ? await featurizeParallel(
          examples,
          o.workers.modelDir,
          o.tokenizer,
          S,
          o.workers.count,
          width,
        )
        : featurize(examples, o.tokenizer, S, width);
      return {
        n: f.n,
        seq: S,
        inputIds: f.inputIds,
        tokenTypeIds: f.tokenTypeIds,
        attentionMask: f.attentionMask,
        labels: f.labels,
        labelWidth: width,
        idx: Float64Array.from(examples, (e) => e.idx),
        nExamples: examples.length,
      };
    },
    parsePrediction(value, where) {
      const row = kind.parsePrediction(value, where);
      return row.length === 1 ? row[0] : row;
    },
    formatPrediction: (pred) => kind.formatPrediction(typeof pred === "number" ? [pred] : pred),
    metrics(preds, golds) {
      const out: Record<string, number> = {};
      for (const m of spec.metrics) out[m] = metricFn(m)(preds, golds);
      return out;
    },
  };
  const kind = kindOf(task);
  const metricFn = (m: string): MetricFn => {
    const f = METRIC_FNS[m] ?? kind.metricFns?.[m];
    if (!f) {
      throw new Error(
        `task ${spec.name}: no metric "${m}" (metrics: ${
          [...Object.keys(METRIC_FNS), ...Object.keys(kind.metricFns ?? {})].join(", ")
        })`,
      );
    }
    return f;
  };
  spec.metrics.forEach(metricFn); // unknown names fail when the task is built
  task.numLabels = kind.outputs;
  task.loss = kind.lossName;
  return task;
}
