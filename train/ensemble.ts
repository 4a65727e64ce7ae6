/**
 * Ensembling models' dev predictions, as the BERTVision paper does (BERT with the
 * adapter-pooler, BERT at two checkpoints, or any number of runs): the task's head kind combines
 * the saved logits (the element-wise maximum of their probability distributions) and scores the
 * result with the task's metrics. {@linkcode ensembleFiles} is `deno task ensemble`: saved
 * `.npy` logits and the dev file they were computed on. Checked by tasks/kinds/ensemble_test.ts
 * (the kinds' arithmetic), train/ensemble_test.ts (the command against
 * {@linkcode ensembleScores}, refusals) and tests/reproduce_test.ts (end to end).
 * @module
 */
import { resolve } from "node:path";
import {
  type EvalRows,
  isGlueTask,
  kindOf,
  resolveTask,
  type Scored,
  type Task,
} from "../tasks/mod.ts";
import { decodeNpy } from "../data/npy.ts";
import { InputError, readInput } from "../data/errors.ts";
import { loadTokenizer } from "../data/tokenize.ts";
import { resolveModel } from "../model/checkpoint.ts";
import { loadRows } from "./rows.ts";
import {
  firstRowDifference,
  type LogitRows,
  logitRowsPath,
  readLogitRows,
} from "../data/logit_rows.ts";
import type { RowSourceOptions } from "./options.ts";
import { squadRowsFor } from "./squad_settings.ts";

/**
 * Scores the ensemble of several models' saved-layout dev logits of the same rows (`rows` gives
 * their labels and, for SQuAD, the windows). `ensembleScores(task, a, b, rows)` is the paper's
 * two-model form. Logits of different rows are an error.
 *
 * @example
 * ```ts
 * import { ensembleScores } from "./ensemble.ts";
 * import { getTask } from "../tasks/mod.ts";
 * // Two SST-2 rows, gold [1, 0]: run A is sure of row 0's class 1, run B of row 1's class 0.
 * const a = Float32Array.from([-2, 2, 0, 0.1]), b = Float32Array.from([0, 0, 3, -3]);
 * const s = ensembleScores(getTask("sst2"), [a, b], { n: 2, seq: 0, labels: [1, 0] });
 * console.assert(s.metrics.accuracy === 1);
 * ```
 */
export function ensembleScores(
  task: Task,
  runs: readonly ArrayLike<number>[],
  rows: EvalRows,
): Scored;
/** The ensemble of two runs' logits `a` and `b` (BERT and the AP head). */
export function ensembleScores(
  task: Task,
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  rows: EvalRows,
): Scored;
export function ensembleScores(
  task: Task,
  ...args: [readonly ArrayLike<number>[], EvalRows] | [
    ArrayLike<number>,
    ArrayLike<number>,
    EvalRows,
  ]
): Scored {
  const [runs, rows] = args.length === 2 ? args : [[args[0], args[1]], args[2]];
  const kind = kindOf(task);
  const want = kind.logitsShape(rows.n, rows.seq).reduce((x, y) => x * y, 1);
  if (runs.length < 2 || runs.some((r) => r.length !== want)) {
    throw new Error(
      `ensemble: ${task.name} dev logits of ${runs.map((r) => r.length).join(", ")} values, ` +
        `but the ${rows.n} dev rows need ${want} each (at least two runs); were they all made ` +
        `from the same dev split and --dev-limit?`,
    );
  }
  const ensembled = kind.ensemble(runs, rows.n, rows.seq);
  return kind.scoreEnsemble ? kind.scoreEnsemble(ensembled, rows) : kind.score(ensembled, rows);
}

/** Inputs of {@linkcode ensembleFiles} (`deno task ensemble`). */
export interface EnsembleFilesOptions extends Pick<RowSourceOptions, "docStride" | "squad"> {
  /** A task name, or a task module of the caller's. */
  task: string | Task;
  /** Two or more saved dev logits (`dev_logits.npy` of checkpoints and heads), same rows. */
  logits: string[];
  /** The labelled dev file they were computed on: a GLUE TSV, or SQuAD's JSON. */
  data: string;
  /** Only its first N examples (the `--dev-limit` the logits were computed with). */
  devLimit?: number;
  /**
   * SQuAD: the model (directory or hub id) whose tokenizer made the windows, e.g. the
   * fine-tuned checkpoint; the windows' token count is the logits' T.
   */
  model?: string;
  /** Where the note on logits whose rows cannot be verified goes (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * Refuses runs whose records (data/logit_rows.ts) say they hold different rows, naming both
 * files and the first row that differs. Logits saved without a record (before records were)
 * cannot be checked: said once, in one note naming them, and let through.
 */
function checkSameRows(
  runs: { file: string; rows: LogitRows | null }[],
  warn: (message: string) => void,
): void {
  const known = runs.filter((r) => r.rows !== null);
  for (const r of known.slice(1)) {
    const d = firstRowDifference(known[0].rows!, r.rows!);
    if (d) {
      throw new InputError(
        `${r.file}: holds other rows than ${known[0].file}: its row ${d.row} is ${d.b}, theirs ` +
          `is ${d.a}; the runs of an ensemble must be evaluated on the same rows in the same ` +
          `order (same dev file, --dev-limit and store)`,
        { file: r.file },
      );
    }
  }
  const unknown = [...new Set(runs.filter((r) => r.rows === null).map((r) => r.file))];
  if (unknown.length) {
    warn(
      `note: ${unknown.join(", ")}: no record of which rows ${
        unknown.length > 1 ? "they hold" : "it holds"
      } (${
        unknown.map((f) => logitRowsPath(f).split("/").pop()).join(", ")
      }, which evaluations write beside their logits since row records were added); the rows ` +
        `could not be verified to be the same as the other runs'`,
    );
  }
}

/**
 * Refuses `--data` when the runs' records name another data file: scores against another file's
 * labels would be reported for rows they did not come from (a dev file shifted by ten rows has
 * the same count). The records name the file relative to the data root, so `--data` must end
 * with that path.
 */
function checkDataFile(runs: { file: string; rows: LogitRows | null }[], data: string): void {
  const named = runs.find((r) => r.rows?.dataFile !== undefined);
  if (!named) return;
  const recorded = named.rows!.dataFile!;
  // An absolute path is compared as such; a path relative to the data root by its tail.
  if (recorded.startsWith("/") && resolve(data) === resolve(recorded)) return;
  const want = recorded.replace(/^(\.?\/)+/, "");
  const path = resolve(data);
  if (path === want || path.endsWith(`/${want}`)) return;
  throw new InputError(
    `${data}: ${named.file} was evaluated on ${want} (its record ${
      logitRowsPath(named.file)
    }), not on this file; score it against that file (--data ${
      recorded.startsWith("/") ? recorded : `DIR/${want}`
    })`,
    { file: data },
  );
}

/** Rows of `data` as scoring needs them, and a phrase saying what they are, for errors. */
async function evalRowsOf(
  task: Task,
  o: EnsembleFilesOptions,
  tokens: number,
): Promise<{ rows: EvalRows; what: string }> {
  const limit = o.devLimit === undefined ? "" : ` (first ${o.devLimit})`;
  if (isGlueTask(task)) {
    for (const [flag, v] of [["--model", o.model], ["--doc-stride", o.docStride]] as const) {
      if (v !== undefined) {
        throw new InputError(
          `${flag} is for squad (its windows); ${task.name} has one row of logits per example of ` +
            `${o.data}`,
          { file: o.data },
        );
      }
    }
    squadRowsFor(task, o.squad, false); // a SQuAD setting given is an error here
    const { examples: all } = await task.readFile(o.data);
    const examples = o.devLimit === undefined ? all : all.slice(0, o.devLimit);
    if (examples.some((e) => e.label === undefined)) {
      throw new InputError(`${o.data}: has no labels to score the ensemble against`, {
        file: o.data,
      });
    }
    const labels = examples.flatMap((e) => typeof e.label === "number" ? [e.label] : [...e.label!]);
    return {
      rows: { n: examples.length, seq: tokens, labels },
      what: `${examples.length} examples${limit}`,
    };
  }
  if (o.model === undefined) {
    throw new InputError(
      `--model is needed for ${task.name}: the model whose tokenizer cut ${o.data} into the ` +
        `windows the logits score (e.g. the fine-tuned checkpoint)`,
      { file: o.data },
    );
  }
  const tokenizer = await loadTokenizer(await resolveModel(o.model));
  const rows = await loadRows(task, {
    split: "dev",
    dataFile: o.data,
    tokenizer,
    maxSeqLength: tokens,
    limit: o.devLimit,
    docStride: o.docStride,
    ...squadRowsFor(task, o.squad, false),
  });
  return {
    rows,
    what: `${rows.n} windows of ${tokens} tokens from ${rows.nExamples} questions${limit} ` +
      `with ${o.model}'s tokenizer`,
  };
}

/**
 * `deno task ensemble`: reads two or more saved dev logits, checks that they have one shape and
 * that it is the shape of `data`'s rows (SQuAD: the windows `model`'s tokenizer cuts at the
 * logits' token count), and scores their ensemble with {@linkcode ensembleScores}. A file of
 * another shape, or rows of another count, is an {@linkcode InputError} naming the files.
 */
export async function ensembleFiles(o: EnsembleFilesOptions): Promise<Scored> {
  const task = resolveTask(o.task);
  const kind = kindOf(task);
  if (o.logits.length < 2) {
    throw new InputError(
      `--logits: an ensemble needs two or more logits files, got ${o.logits.length}`,
      { file: o.logits[0] },
    );
  }
  const runs: { file: string; data: Float32Array; shape: number[]; rows: LogitRows | null }[] = [];
  for (const file of o.logits) {
    const bytes = await readInput(file);
    const { data, shape } = decodeNpy(bytes, file);
    if (!(data instanceof Float32Array)) {
      throw new InputError(`${file}: holds int32 values; logits are float32`, { file });
    }
    const first = runs[0];
    if (first && first.shape.join() !== shape.join()) {
      throw new InputError(
        `${file}: logits of shape [${shape.join(", ")}], but ${first.file} has [${
          first.shape.join(", ")
        }]: the ` +
          `runs of an ensemble must be saved on the same dev rows (same file, --dev-limit and, ` +
          `for SQuAD, --max-seq-length)`,
        { file },
      );
    }
    runs.push({ file, data, shape, rows: await readLogitRows(file, bytes, shape[0]) });
  }
  checkSameRows(runs, o.warn ?? ((m) => console.error(m)));
  checkDataFile(runs, o.data);
  // The token count of span logits [N, T, 2] is T; row-level kinds have none.
  const shape = runs[0].shape;
  const perToken = kind.readout === "token";
  if (perToken && (shape.length !== 3 || shape[1] < 2)) {
    throw new InputError(
      `${runs[0].file}: logits of shape [${shape.join(", ")}]; ${task.name}'s are per token: ` +
        `[rows, tokens, ${kind.outputs}]`,
      { file: runs[0].file },
    );
  }
  const tokens = perToken ? shape[1] : 0;
  const { rows, what } = await evalRowsOf(task, o, tokens);
  const want = kind.logitsShape(rows.n, rows.seq);
  if (want.join() !== shape.join()) {
    throw new InputError(
      `${o.logits.join(", ")}: logits of shape [${shape.join(", ")}], but ${task.name} on ` +
        `${o.data} (${what}) needs [${want.join(", ")}]: were they computed on this file` +
        (o.devLimit === undefined ? " (with --dev-limit?)" : " with this --dev-limit") +
        (perToken
          ? ", and cut into windows with this --doc-stride and --max-question-length (the " +
            "seed's, 0, keeps whole questions; the library's default is 64)?"
          : "?"),
      { file: runs[0].file },
    );
  }
  return ensembleScores(task, runs.map((r) => r.data), rows);
}
