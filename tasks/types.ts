/**
 * The small interface every benchmark module under `tasks/` implements.
 * @module
 */
import type { BertTokenizerLike } from "../data/tokenize.ts";
import type { SquadFeature, SquadFeatureStats } from "../data/features.ts";
import type { DataSource } from "../data/fetch.ts";
import type { SquadExample } from "./squad.ts";
import type { SquadAnswerRule } from "./squad_postprocess.ts";

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
  /**
   * The label as its head kind parses it: a class index or a score (one number), or one 0/1 per
   * label (multi-label); undefined for test files.
   */
  label?: number | readonly number[];
}

/** How a split becomes rows: the tokenizer, lengths and limits. */
export interface RowOptions {
  tokenizer: BertTokenizerLike;
  /** Tokens per row. */
  maxSeqLength: number;
  /** Keep the file's first `limit` examples. */
  limit?: number;
  /** Whether the file is a test file (no label column). */
  test?: boolean;
  /** Tokenize in parallel workers that load the tokenizer of `modelDir` (`--num-workers`). */
  workers?: { modelDir: string; count: number };
  /**
   * SQuAD windows: overlap in tokens between consecutive windows of a context (default 128,
   * halved to half the context room where it leaves no room to advance; see data/features.ts).
   */
  docStride?: number;
  /**
   * SQuAD windows: when `docStride` leaves no room to advance, "halve" the room or throw
   * ("error"); default "halve" without `docStride`, "error" with it (data/features.ts).
   */
  noRoom?: "halve" | "error";
  /** SQuAD windows: question pieces kept (default 64; 0: the whole question, as the seed). */
  maxQueryLength?: number;
  /**
   * SQuAD: how the rows' logits become answers when they are scored (default run_squad.py's,
   * tasks/squad_postprocess.ts `HF_ANSWER_RULE`); kept with the rows as `squad.rule`.
   */
  answerRule?: SquadAnswerRule;
  /**
   * Rows to train on (default false). SQuAD then leaves out a question whose answer text is not
   * the context at its `answer_start`, as the reference run_squad.py does (evaluation rows keep
   * it: scoring compares answer texts); either way the reader warns with the count.
   */
  training?: boolean;
}

/** A split as padded token rows, ready to batch: GLUE examples or SQuAD windows. */
export interface TaskRows {
  /** Rows: examples (GLUE) or windows (SQuAD). */
  n: number;
  /** Tokens per row. */
  seq: number;
  /** (n, seq) each. */
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  /** (n, labelWidth): class, score, 0/1 per label, or start and end token; NaN where none. */
  labels: Float64Array;
  /** Labels per row (the task's head kind decides). */
  labelWidth: number;
  /** Row → example index in the file (SQuAD: the window's question). */
  idx: Float64Array;
  /** Examples read (after `limit`). */
  nExamples: number;
  /**
   * SQuAD only: the questions and their windows (post-processing needs the offsets), how the
   * windows were cut, and the rule that turns their logits into answers (absent: run_squad.py's).
   */
  squad?: {
    examples: SquadExample[];
    features: SquadFeature[];
    stats?: SquadFeatureStats;
    rule?: SquadAnswerRule;
  };
}

/** Everything shared by GLUE and SQuAD task modules. */
export interface TaskBase {
  /** Command-line name. */
  name: string;
  /** The head kind's name (tasks/kinds/mod.ts): "classification", "regression", "span", ... */
  kind: string;
  /** The file format: GLUE's TSV or SQuAD's JSON. */
  format: "glue-tsv" | "squad-json";
  /** Label strings as the files write them (index = class id); empty for regression and span. */
  labels: string[];
  /** Output units of the head: classes, 1 for regression, labels for multi-label, 2 for span. */
  numLabels: number;
  /** The loss the head kind trains with (for messages and plans). */
  loss: string;
  /** Split names this task has, e.g. `train`, `dev`, `test` (MNLI: `dev_matched`, ...). */
  splits: string[];
  /**
   * The labelled evaluation splits evaluated by default, every one of them (MNLI has two:
   * `dev_matched` and `dev_mismatched`, reported as two columns).
   */
  devSplits: string[];
  /**
   * How reports name a dev split when several are reported side by side (MNLI: `dev_matched` →
   * `MNLI-m`); a split not listed is shown by its name.
   */
  devLabels?: Readonly<Record<string, string>>;
  /** Path of a split's file relative to the data root, e.g. `SST-2/dev.tsv`. */
  fileFor(split: string): string;
  /** Key of the metric reported first (e.g. `matthews`). */
  primaryMetric: string;
  /** Metric keys in the order reports show them (the primary one first). */
  reportMetrics: string[];
  /** Where `deno task fetch-data` downloads the task's files from. */
  source: DataSource;
  /** Reads a split file and turns it into rows (errors name the file). */
  readRows(path: string, o: RowOptions): Promise<TaskRows>;
}

/** Result of reading a GLUE file. */
export interface GlueRead {
  /** Examples in file order. */
  examples: GlueExample[];
  /** Malformed rows skipped (only QQP skips; every other task throws on them). */
  skipped: number;
}

/** A GLUE-format task: TSV reader, labels and metrics. */
export interface GlueTask extends TaskBase {
  format: "glue-tsv";
  /** Reads `dataDir/fileFor(split)` (dataDir = the GLUE root holding `SST-2/` etc.). */
  readSplit(dataDir: string, split: string): Promise<GlueExample[]>;
  /** Like readSplit, also returning how many malformed rows were skipped. */
  readFile(path: string, opts?: { test?: boolean }): Promise<GlueRead>;
  /** Parses TSV text; `file` names it in errors; `test` files have no label column. */
  parse(text: string, file: string, opts?: { test?: boolean }): GlueRead;
  /** Parses one prediction as written in a file (a label string, or a float for regression). */
  parsePrediction(value: string, where: string): number | number[];
  /** Regression: the range every score of the files lies in (STS-B: [0, 5]); else none. */
  scoreRange?: readonly [number, number];
  /** Writes a prediction the way the task's files write labels. */
  formatPrediction(pred: number | ArrayLike<number>): string;
  /** Metrics as fractions, e.g. `{ accuracy, f1 }`; preds and golds are n × labelWidth. */
  metrics(preds: ArrayLike<number>, golds: ArrayLike<number>): Record<string, number>;
}
