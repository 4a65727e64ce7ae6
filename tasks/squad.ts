/**
 * SQuAD 2.0: the reader for the official JSON and the task module (head kind "span"; its rows are
 * sliding-window features, data/features.ts). Post-processing of logits into answers is in
 * tasks/squad_postprocess.ts (re-exported here).
 * @module
 */

import {
  SQUAD_DEFAULT_DOC_STRIDE,
  type SquadExampleLike,
  type SquadFeature,
  squadFeatures,
  type SquadFeatureStats,
} from "../data/features.ts";
import { SQUAD_FILES } from "../data/fetch.ts";
import type { TaskBase } from "./types.ts";
import { evaluateSquad } from "./squad_eval.ts";
import { kindOf } from "./kinds/mod.ts";
import { decodeUtf8, InputError, readInput } from "../data/errors.ts";

export * from "./squad_postprocess.ts";
export * from "./squad_seed.ts";

/** One SQuAD question with its paragraph. */
export interface SquadExample extends SquadExampleLike {
  /** Article title. */
  title: string;
  /** Plausible (but wrong) answers of impossible questions, when the file has them. */
  plausibleAnswers?: { text: string; start: number }[];
  /**
   * Indices into `answers` of answers whose text is not the context at their `answer_start`
   * (the file is wrong there; training leaves such a question out); absent when all match.
   */
  badAnswers?: number[];
}

/** The SQuAD task: span head, span cross-entropy, official EM/F1. */
export interface SquadTask extends TaskBase {
  format: "squad-json";
  /** Reads `dataDir/squad/{train,dev}-v2.0.json`. */
  readSplit(dataDir: string, split: string): Promise<SquadExample[]>;
  /** Reads a SQuAD 2.0 JSON file (see {@linkcode readSquad}). */
  readFile(path: string, opts?: ReadSquadOptions): Promise<SquadExample[]>;
  /** Official metrics from predictions {id: text} (and optional no-answer probabilities). */
  metrics(
    examples: readonly SquadExample[],
    preds: Record<string, string>,
    naProbs?: Record<string, number>,
  ): Record<string, number>;
}

/** Converts a Python (code point) index into a JavaScript (UTF-16) index of `s`. */
function utf16Index(s: string, codePoint: number): number {
  let cp = 0, i = 0;
  while (cp < codePoint && i < s.length) {
    const c = s.charCodeAt(i);
    i += c >= 0xD800 && c <= 0xDBFF && i + 1 < s.length ? 2 : 1;
    cp++;
  }
  return i;
}

/**
 * Parses the text of a SQuAD (1.1 or 2.0) JSON file; `file` names it in errors (an
 * {@linkcode InputError}), which also give the JSON path of the offending entry. An answer whose
 * text is not the context at its `answer_start` is no error (the official files have none, and
 * evaluation compares texts): the example lists it in `badAnswers`.
 *
 * @example
 * ```ts
 * import { parseSquad } from "./squad.ts";
 * const json = { version: "v2.0", data: [{ title: "T", paragraphs: [{ context: "Bob ran.",
 *   qas: [{ id: "q", question: "Who?", answers: [{ text: "Bob", answer_start: 0 }] }] }] }] };
 * const [ex] = parseSquad(JSON.stringify(json), "x.json");
 * console.assert(ex.answers[0].text === "Bob" && !ex.isImpossible);
 * ```
 */
export function parseSquad(text: string, file: string): SquadExample[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: not JSON (${(e as Error).message})`, { file, cause: e });
  }
  const fail = (path: string, what: string): never => {
    throw new InputError(`${file}: not a SQuAD file: ${path} ${what}`, { file, jsonPath: path });
  };
  const obj = (v: unknown, path: string): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? v as Record<string, unknown>
      : fail(path, "is not an object");
  const arr = (v: unknown, path: string): unknown[] =>
    Array.isArray(v) ? v : fail(path, "is not an array");
  const str = (v: unknown, path: string): string =>
    typeof v === "string" ? v : fail(path, "is not a string");
  const answers = (v: unknown, path: string, context: string) =>
    arr(v, path).map((a, k) => {
      const o = obj(a, `${path}[${k}]`);
      const t = str(o.text, `${path}[${k}].text`);
      const s = o.answer_start;
      if (typeof s !== "number" || !Number.isInteger(s) || s < 0) {
        fail(`${path}[${k}].answer_start`, "is not a non-negative integer");
      }
      return { text: t, start: utf16Index(context, s as number) };
    });
  const root = obj(json, "the top level");
  const out: SquadExample[] = [];
  const seen = new Set<string>();
  arr(root.data, "data").forEach((art, i) => {
    const a = obj(art, `data[${i}]`);
    const title = typeof a.title === "string" ? a.title : "";
    arr(a.paragraphs, `data[${i}].paragraphs`).forEach((par, j) => {
      const pp = `data[${i}].paragraphs[${j}]`;
      const p = obj(par, pp);
      const context = str(p.context, `${pp}.context`);
      arr(p.qas, `${pp}.qas`).forEach((qa, k) => {
        const qp = `${pp}.qas[${k}]`;
        const q = obj(qa, qp);
        const id = str(q.id, `${qp}.id`);
        if (seen.has(id)) fail(`${qp}.id`, `repeats question id ${id}`);
        seen.add(id);
        const ans = answers(q.answers ?? [], `${qp}.answers`, context);
        const isImpossible = q.is_impossible === true || ans.length === 0;
        const bad = isImpossible
          ? []
          : ans.flatMap((a, m) =>
            a.text !== "" && context.slice(a.start, a.start + a.text.length) === a.text ? [] : [m]
          );
        const ex: SquadExample = {
          id,
          title,
          question: str(q.question, `${qp}.question`),
          context,
          answers: isImpossible ? [] : ans,
          isImpossible,
        };
        if (q.plausible_answers !== undefined) {
          ex.plausibleAnswers = answers(q.plausible_answers, `${qp}.plausible_answers`, context);
        }
        if (bad.length) ex.badAnswers = bad;
        out.push(ex);
      });
    });
  });
  return out;
}

/** Options of {@linkcode readSquad}. */
export interface ReadSquadOptions {
  /** Where the warning about answers not at their `answer_start` goes (default console.warn). */
  warn?: (msg: string) => void;
}

async function readSquadQuiet(path: string): Promise<SquadExample[]> {
  const bytes = await readInput(path, {
    notFound: `squad: ${path} not found (run: deno task fetch-data --task squad)`,
  });
  return parseSquad(decodeUtf8(bytes, path), path);
}

/**
 * The warning for questions with an answer that is not the context at its `answer_start`
 * (see {@linkcode parseSquad}), or null when there are none: the file, the count and the first
 * few question ids; `training` says they are left out.
 */
export function badAnswersWarning(
  path: string,
  examples: readonly SquadExample[],
  training: boolean,
): string | null {
  const bad = examples.filter((e) => e.badAnswers);
  if (bad.length === 0) return null;
  const short = (id: string) => (id.length > 40 ? id.slice(0, 39) + "…" : id);
  const ids = bad.slice(0, 5).map((e) => short(e.id)).join(", ") + (bad.length > 5 ? ", ..." : "");
  return `${path}: ${bad.length} of ${examples.length} questions have an answer whose text is ` +
    `not the context at its answer_start (${ids}); ` +
    (training
      ? "left out of training, as run_squad.py does"
      : "kept (evaluation compares answer texts)");
}

/**
 * Reads a SQuAD JSON file (see {@linkcode parseSquad}); warns (naming the file, the count and the
 * first ids) when answers are not the context at their `answer_start`.
 */
export async function readSquad(
  path: string,
  opts: ReadSquadOptions = {},
): Promise<SquadExample[]> {
  const examples = await readSquadQuiet(path);
  const w = badAnswersWarning(path, examples, false);
  if (w) (opts.warn ?? console.warn)(w);
  return examples;
}

const FILES: Record<string, string> = { train: "train-v2.0.json", dev: "dev-v2.0.json" };

/**
 * SQuAD windows as BERTVision made them (the Hugging Face fast tokenizer's `stride=128`): the
 * default overlap in tokens between consecutive windows of a context (`--doc-stride`).
 */
export const SQUAD_DOC_STRIDE = SQUAD_DEFAULT_DOC_STRIDE;
/**
 * Question pieces kept per SQuAD window by default (run_squad.py's `max_query_length`); the
 * seed never cuts the question (`--max-question-length 0`).
 */
export const SQUAD_MAX_QUERY_LENGTH = 64;

/** The SQuAD 2.0 task. */
export const squad: SquadTask = {
  name: "squad",
  kind: "span",
  format: "squad-json",
  labels: [],
  numLabels: 2,
  loss: "",
  splits: Object.keys(FILES),
  devSplits: ["dev"],
  fileFor(split) {
    const f = Object.hasOwn(FILES, split) ? FILES[split] : undefined;
    if (f === undefined) {
      throw new InputError(`squad has no split "${split}" (splits: train, dev)`);
    }
    return `squad/${f}`;
  },
  primaryMetric: "f1",
  reportMetrics: ["exact", "f1", "HasAns_exact", "NoAns_exact"],
  source: { type: "pinned", host: "squad", dir: "squad", files: SQUAD_FILES },
  readFile: readSquad,
  readSplit(dataDir, split) {
    return readSquad(`${dataDir.replace(/\/+$/, "")}/${squad.fileFor(split)}`);
  },
  async readRows(path, o) {
    const all = await readSquadQuiet(path);
    const read = o.limit === undefined ? all : all.slice(0, o.limit);
    const w = badAnswersWarning(path, read, o.training ?? false);
    if (w) console.warn(w);
    // Training leaves out questions whose answer is not where the file says (run_squad.py);
    // `fileIdx` keeps each kept question's position in the file for `idx`.
    const fileIdx: number[] = [];
    const examples = read.filter((e, i) => {
      const keep = !(o.training && e.badAnswers);
      if (keep) fileIdx.push(i);
      return keep;
    });
    if (examples.length === 0) throw new InputError(`${path}: no examples`, { file: path });
    let features: SquadFeature[], stats: SquadFeatureStats;
    try {
      ({ features, stats } = squadFeatures(examples, o.tokenizer, {
        maxSeqLength: o.maxSeqLength,
        docStride: o.docStride,
        noRoom: o.noRoom,
        maxQueryLength: o.maxQueryLength ?? SQUAD_MAX_QUERY_LENGTH,
      }));
    } catch (e) {
      // A question too long for the window names its id; say which file it is in.
      throw new InputError(`${path}: ${(e as Error).message}`, { file: path, cause: e });
    }
    const n = features.length, S = o.maxSeqLength;
    const rows = {
      n,
      seq: S,
      inputIds: new Int32Array(n * S),
      tokenTypeIds: new Int32Array(n * S),
      attentionMask: new Int32Array(n * S),
      labels: new Float64Array(n * 2),
      labelWidth: 2,
      idx: Float64Array.from(features, (f) => fileIdx[f.exampleIndex]),
      nExamples: examples.length,
      squad: { examples, features, stats, ...(o.answerRule ? { rule: o.answerRule } : {}) },
    };
    features.forEach((f, i) => {
      rows.inputIds.set(f.inputIds, i * S);
      rows.tokenTypeIds.set(f.tokenTypeIds, i * S);
      rows.attentionMask.set(f.attentionMask, i * S);
      rows.labels[2 * i] = f.startPosition;
      rows.labels[2 * i + 1] = f.endPosition;
    });
    return rows;
  },
  metrics(examples, preds, naProbs) {
    return evaluateSquad(
      examples.map((e) => ({ id: e.id, answers: e.answers.map((a) => a.text) })),
      preds,
      { naProbs },
    );
  },
};
squad.loss = kindOf(squad).lossName;
