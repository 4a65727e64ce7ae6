/**
 * The GLUE distribution's TSV files and a factory for the nine GLUE task modules.
 *
 * The files are read as the GLUE reference code reads them: split on newlines and tabs, no quote
 * processing (quotes are part of the text). Quirks handled: CoLA's train/dev files have no header
 * (its test file has one), MRPC's header starts with a byte-order mark, STS-B has ten columns and
 * a float score, MNLI has `dev_matched`/`dev_mismatched`, test files have no label column, and
 * QQP has malformed rows that are skipped and counted. Any other row with the wrong number of
 * columns, or a label outside the label space, is an error naming `file:line`.
 * @module
 */

import { accuracy, f1Binary, matthews, pearson, spearman } from "./metrics.ts";
import type { GlueExample, GlueRead, GlueTask, LossKind, TaskName } from "./types.ts";

/** How one GLUE task lays out its files. */
export interface GlueSpec {
  /** Command-line name. */
  name: Exclude<TaskName, "squad">;
  /** Folder under the GLUE root, e.g. `SST-2`. */
  dir: string;
  /** Label strings as written in the files (index = class id); empty for regression. */
  labels: string[];
  /** Header names of the first sentence, the second (pairs) and the label columns. */
  textA: string;
  textB?: string;
  label: string;
  /** Split name -> file name inside `dir`. Splits starting with `test` have no labels. */
  files: Record<string, string>;
  /** Header of labelled files that have none (CoLA). */
  impliedHeader?: string[];
  /** Skip (and count) rows with the wrong number of columns instead of throwing (QQP). */
  skipMalformed?: boolean;
  /** Metric names computed by `metrics`, the first is the primary one. */
  metrics: ("accuracy" | "f1" | "matthews" | "pearson" | "spearman")[];
}

const METRIC_FNS = {
  accuracy,
  f1: (p: ArrayLike<number>, g: ArrayLike<number>) => f1Binary(p, g, 1),
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
 * const { examples } = parseGlueTsv(sst2.spec, "sentence\tlabel\ngood fun \t1\n", "dev.tsv");
 * console.assert(examples[0].textA === "good fun " && examples[0].label === 1);
 * ```
 */
export function parseGlueTsv(
  spec: GlueSpec,
  text: string,
  file: string,
  opts: { test?: boolean } = {},
): GlueRead {
  const test = opts.test ?? false;
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let first = 0;
  let header: string[];
  if (spec.impliedHeader && !test) {
    header = spec.impliedHeader;
  } else {
    if (lines.length === 0) throw new Error(`${file}: empty file (expected a header line)`);
    header = lines[0].replace(/^\uFEFF/, "").replace(/\r$/, "").split("\t");
    first = 1;
  }
  const col = (name: string | undefined, required: boolean): number => {
    if (name === undefined) return -1;
    const i = header.indexOf(name);
    if (i < 0 && required) {
      throw new Error(
        `${file}:1: no column "${name}" in the header (${
          header.join(", ")
        }); is this a ${spec.name} file?`,
      );
    }
    return i;
  };
  const ca = col(spec.textA, true);
  const cb = col(spec.textB, true);
  const cl = test ? -1 : col(spec.label, true);
  const regression = spec.labels.length === 0;
  const labelIndex = new Map(spec.labels.map((l, i) => [l, i]));
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
      throw new Error(
        `${file}:${lineNo}: expected ${header.length} tab-separated columns, got ${fields.length}`,
      );
    }
    const ex: GlueExample = { idx: examples.length, line: lineNo, textA: fields[ca] };
    if (cb >= 0) ex.textB = fields[cb];
    if (cl >= 0) {
      const raw = fields[cl];
      if (regression) {
        const v = Number(raw);
        if (raw.trim() === "" || !Number.isFinite(v)) {
          throw new Error(`${file}:${lineNo}: score "${raw}" is not a number`);
        }
        ex.label = v;
      } else {
        const v = labelIndex.get(raw);
        if (v === undefined) {
          if (spec.skipMalformed) {
            skipped++;
            continue;
          }
          throw new Error(
            `${file}:${lineNo}: label "${raw}" is not one of ${spec.name}'s labels (${
              spec.labels.join(", ")
            })`,
          );
        }
        ex.label = v;
      }
    }
    examples.push(ex);
  }
  return { examples, skipped };
}

/** Builds a {@linkcode GlueTask} (with its `spec` attached) from a file layout. */
export function glueTask(spec: GlueSpec): GlueTask & { spec: GlueSpec } {
  const regression = spec.labels.length === 0;
  const isTest = (split: string) => split.startsWith("test");
  const fileFor = (split: string): string => {
    const f = spec.files[split];
    if (f === undefined) {
      throw new Error(
        `${spec.name} has no split "${split}" (splits: ${Object.keys(spec.files).join(", ")})`,
      );
    }
    return `${spec.dir}/${f}`;
  };
  const task: GlueTask & { spec: GlueSpec } = {
    spec,
    name: spec.name,
    kind: regression ? "regression" : "classification",
    labels: spec.labels,
    numLabels: regression ? 1 : spec.labels.length,
    splits: Object.keys(spec.files),
    devSplits: Object.keys(spec.files).filter((s) => s.startsWith("dev")),
    fileFor,
    loss: (regression ? "mse" : "cross_entropy") as LossKind,
    primaryMetric: spec.metrics[0],
    parse: (text, file, opts) => parseGlueTsv(spec, text, file, opts),
    async readFile(path, opts) {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new Error(
            `${spec.name}: ${path} not found (run: deno task fetch-data --task ${spec.name})`,
          );
        }
        throw e;
      }
      const read = parseGlueTsv(spec, text, path, opts);
      if (read.skipped > 0) {
        console.warn(`${path}: skipped ${read.skipped} malformed rows`);
      }
      return read;
    },
    async readSplit(dataDir, split) {
      const path = `${dataDir.replace(/\/+$/, "")}/${fileFor(split)}`;
      return (await task.readFile(path, { test: isTest(split) })).examples;
    },
    parsePrediction(value, where) {
      const v = value.trim();
      if (regression) {
        const x = Number(v);
        if (v === "" || !Number.isFinite(x)) {
          throw new Error(`${where}: prediction "${value}" is not a number`);
        }
        return x;
      }
      const i = spec.labels.indexOf(v);
      if (i < 0) {
        throw new Error(
          `${where}: prediction "${value}" is not one of ${spec.name}'s labels (${
            spec.labels.join(", ")
          })`,
        );
      }
      return i;
    },
    formatPrediction(pred) {
      if (regression) return String(pred);
      const l = spec.labels[pred];
      if (l === undefined) throw new Error(`${spec.name}: no label with index ${pred}`);
      return l;
    },
    metrics(preds, golds) {
      const out: Record<string, number> = {};
      for (const m of spec.metrics) out[m] = METRIC_FNS[m](preds, golds);
      return out;
    },
  };
  return task;
}
