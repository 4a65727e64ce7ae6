/**
 * The small interface every benchmark module under `tasks/` implements.
 * @module
 */

/** The task names accepted on every command line. */
export const TASK_NAMES = [
  "cola",
  "sst2",
  "mrpc",
  "stsb",
  "qqp",
  "mnli",
  "qnli",
  "rte",
  "wnli",
  "squad",
] as const;

/** One of {@linkcode TASK_NAMES}. */
export type TaskName = typeof TASK_NAMES[number];

/** Head kind: classification on [CLS], regression on [CLS], or span start/end per token. */
export type TaskKind = "classification" | "regression" | "span";

/** Loss the head is trained with. */
export type LossKind = "cross_entropy" | "mse" | "span_cross_entropy";

/** One GLUE example, in file order. */
export interface GlueExample {
  /** 0-based position among the examples of the file (file order). */
  idx: number;
  /** 1-based line of the file it came from (for error messages). */
  line: number;
  /** First (or only) sentence. */
  textA: string;
  /** Second sentence of pair tasks. */
  textB?: string;
  /** Label index into `labels`, the float score for regression, undefined for test files. */
  label?: number;
}

/** Everything shared by GLUE and SQuAD task modules. */
export interface TaskBase {
  /** Command-line name. */
  name: TaskName;
  /** Head kind. */
  kind: TaskKind;
  /** Label strings as the files write them (index = class id); empty for regression and span. */
  labels: string[];
  /** Output units of the head: labels.length, 1 for regression, 2 (start, end) for span. */
  numLabels: number;
  /** Split names this task has, e.g. `train`, `dev`, `test` (MNLI: `dev_matched`, ...). */
  splits: string[];
  /** The labelled evaluation splits (MNLI has two). */
  devSplits: string[];
  /** Path of a split's file relative to the data root, e.g. `SST-2/dev.tsv`. */
  fileFor(split: string): string;
  /** Training loss. */
  loss: LossKind;
  /** Key of the metric reported first (e.g. `matthews`). */
  primaryMetric: string;
}

/** Result of reading a GLUE file. */
export interface GlueRead {
  /** Examples in file order. */
  examples: GlueExample[];
  /** Malformed rows skipped (only QQP skips; every other task throws on them). */
  skipped: number;
}

/** A GLUE task: TSV reader, labels, head, loss and metrics. */
export interface GlueTask extends TaskBase {
  kind: "classification" | "regression";
  /** Reads `dataDir/fileFor(split)` (dataDir = the GLUE root holding `SST-2/` etc.). */
  readSplit(dataDir: string, split: string): Promise<GlueExample[]>;
  /** Like readSplit, also returning how many malformed rows were skipped. */
  readFile(path: string, opts?: { test?: boolean }): Promise<GlueRead>;
  /** Parses TSV text; `file` names it in errors; `test` files have no label column. */
  parse(text: string, file: string, opts?: { test?: boolean }): GlueRead;
  /** Parses one prediction as written in a file (a label string, or a float for regression). */
  parsePrediction(value: string, where: string): number;
  /** Writes a prediction the way the task's files write labels. */
  formatPrediction(pred: number): string;
  /** Metrics as fractions, e.g. `{ accuracy, f1 }`. */
  metrics(preds: ArrayLike<number>, golds: ArrayLike<number>): Record<string, number>;
}
