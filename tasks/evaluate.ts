/**
 * Scores a predictions file against a task's labelled file: the logic of
 * `deno task evaluate --task T --data FILE --pred FILE [--na-prob FILE]`.
 *
 * GLUE: `data` is the task's dev TSV, `pred` one value per line in file order (a label as the
 * file writes it, or a float for STS-B; for QQP one per row kept after skipping malformed rows).
 * SQuAD: `data` is the dataset JSON, `pred` a JSON object {question id: answer text} and
 * `naProb` an optional JSON object {question id: probability of no answer}: the interface of
 * the official evaluate-v2.0.py.
 * @module
 */

import { getTask, isGlueTask } from "./mod.ts";
import { readSquad } from "./squad.ts";
import { evaluateSquad } from "./squad_eval.ts";
import { decodeUtf8, InputError, plainRecord, preview, readInput } from "../data/errors.ts";

/** Inputs of {@linkcode evaluateFiles}. */
export interface EvaluateArgs {
  task: string;
  data: string;
  pred: string;
  naProb?: string;
  /** Where warnings go (default console.warn). */
  warn?: (msg: string) => void;
}

/** A JSON object {question id: ...} from `path`, prototype-free (see `plainRecord`). */
async function readJsonObject(path: string, what: string): Promise<Record<string, unknown>> {
  let bytes: Uint8Array;
  try {
    bytes = await readInput(path);
  } catch (e) {
    throw new InputError(`${path}: cannot read ${what} (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  const text = decodeUtf8(bytes, path);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: cannot read ${what} (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new InputError(`${path}: ${what} must be a JSON object {question id: ...}`, {
      file: path,
    });
  }
  return plainRecord(v as Record<string, unknown>);
}

/** The first few of `ids`, for a message. */
function someIds(ids: readonly string[]): string {
  return ids.slice(0, 5).map((id) => JSON.stringify(id)).join(", ") +
    (ids.length > 5 ? ", ..." : "");
}

/** Computes the metrics (GLUE as fractions, SQuAD as the official percentages). */
export async function evaluateFiles(args: EvaluateArgs): Promise<Record<string, number>> {
  const task = getTask(args.task);
  if (!isGlueTask(task)) {
    const examples = await readSquad(args.data, { warn: args.warn });
    const preds = await readJsonObject(args.pred, "predictions");
    for (const [id, v] of Object.entries(preds)) {
      if (typeof v !== "string") {
        throw new InputError(
          `${args.pred}: prediction for ${id} is ${preview(v)}, not a string`,
          { file: args.pred, jsonPath: JSON.stringify(id) },
        );
      }
    }
    let naProbs: Record<string, number> | undefined;
    if (args.naProb) {
      const file = args.naProb;
      const raw = await readJsonObject(file, "no-answer probabilities");
      for (const [id, v] of Object.entries(raw)) {
        if (typeof v !== "number" || !Number.isFinite(v)) {
          throw new InputError(`${file}: probability for ${id} is ${preview(v)}, not a number`, {
            file,
            jsonPath: JSON.stringify(id),
          });
        }
      }
      // The official script reads na_probs[qid] for every question of the dataset.
      const missing = examples.map((e) => e.id).filter((id) => !Object.hasOwn(raw, id));
      if (missing.length) {
        throw new InputError(
          `${file}: no-answer probabilities missing for ${missing.length} of ${examples.length} ` +
            `questions of ${args.data}: ${someIds(missing)}`,
          { file },
        );
      }
      naProbs = raw as Record<string, number>;
    }
    const ids = new Set(examples.map((e) => e.id));
    const extra = Object.keys(preds).filter((k) => !ids.has(k));
    if (extra.length) {
      (args.warn ?? console.warn)(
        `${args.pred}: ${extra.length} predictions for ids not in ${args.data} (ignored): ${
          extra.slice(0, 5).join(", ")
        }`,
      );
    }
    return evaluateSquad(
      examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
      preds as Record<string, string>,
      { naProbs, warn: args.warn, predFile: args.pred },
    );
  }
  if (args.naProb) {
    throw new InputError(`--na-prob is for squad only, not ${task.name}`, { file: args.naProb });
  }
  const { examples } = await task.readFile(args.data);
  const golds = examples.map((e) => e.label);
  if (golds.some((g) => g === undefined)) {
    throw new InputError(`${args.data}: has no labels`, { file: args.data });
  }
  const lines = decodeUtf8(await readInput(args.pred), args.pred).split("\n");
  while (lines.length && lines.at(-1)!.trim() === "") lines.pop();
  if (lines.length !== examples.length) {
    throw new InputError(
      `${args.pred}: ${lines.length} predictions for ${examples.length} examples in ${args.data}` +
        " (one per line, in file order)",
      { file: args.pred },
    );
  }
  const preds = lines.map((l, i) => task.parsePrediction(l, `${args.pred}:${i + 1}`));
  // One value per row, or one per label (multi-label): both as flat n × width arrays.
  return task.metrics(preds.flat(), (golds as (number | readonly number[])[]).flat());
}
