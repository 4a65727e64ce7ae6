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

/** Inputs of {@linkcode evaluateFiles}. */
export interface EvaluateArgs {
  task: string;
  data: string;
  pred: string;
  naProb?: string;
  /** Where warnings go (default console.warn). */
  warn?: (msg: string) => void;
}

async function readJsonObject(path: string, what: string): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: cannot read ${what} (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new Error(`${path}: ${what} must be a JSON object {question id: ...}`);
  }
  return v as Record<string, unknown>;
}

/** Computes the metrics (GLUE as fractions, SQuAD as the official percentages). */
export async function evaluateFiles(args: EvaluateArgs): Promise<Record<string, number>> {
  const task = getTask(args.task);
  if (!isGlueTask(task)) {
    const examples = await readSquad(args.data);
    const preds = await readJsonObject(args.pred, "predictions");
    for (const [id, v] of Object.entries(preds)) {
      if (typeof v !== "string") {
        throw new Error(`${args.pred}: prediction for ${id} is ${JSON.stringify(v)}, not a string`);
      }
    }
    let naProbs: Record<string, number> | undefined;
    if (args.naProb) {
      const raw = await readJsonObject(args.naProb, "no-answer probabilities");
      for (const [id, v] of Object.entries(raw)) {
        if (typeof v !== "number") {
          throw new Error(
            `${args.naProb}: probability for ${id} is ${JSON.stringify(v)}, not a number`,
          );
        }
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
  if (args.naProb) throw new Error(`--na-prob is for squad only, not ${task.name}`);
  const { examples } = await task.readFile(args.data);
  const golds = examples.map((e) => e.label);
  if (golds.some((g) => g === undefined)) throw new Error(`${args.data}: has no labels`);
  const lines = (await Deno.readTextFile(args.pred)).split("\n");
  while (lines.length && lines.at(-1)!.trim() === "") lines.pop();
  if (lines.length !== examples.length) {
    throw new Error(
      `${args.pred}: ${lines.length} predictions for ${examples.length} examples in ${args.data}` +
        " (one per line, in file order)",
    );
  }
  const preds = lines.map((l, i) => task.parsePrediction(l, `${args.pred}:${i + 1}`));
  // One value per row, or one per label (multi-label): both as flat n × width arrays.
  return task.metrics(preds.flat(), (golds as (number | readonly number[])[]).flat());
}
