/**
 * SQuAD 2.0: the reader for the official JSON and the task module (head kind "span"; its rows are
 * sliding-window features, data/features.ts). Post-processing of logits into answers is in
 * tasks/squad_postprocess.ts (re-exported here).
 * @module
 */

import { type SquadExampleLike, squadFeatures } from "../data/features.ts";
import { SQUAD_FILES } from "../data/fetch.ts";
import type { TaskBase } from "./types.ts";
import { evaluateSquad } from "./squad_eval.ts";
import { kindOf } from "./kinds/mod.ts";

export * from "./squad_postprocess.ts";

/** One SQuAD question with its paragraph. */
export interface SquadExample extends SquadExampleLike {
  /** Article title. */
  title: string;
  /** Plausible (but wrong) answers of impossible questions, when the file has them. */
  plausibleAnswers?: { text: string; start: number }[];
}

/** The SQuAD task: span head, span cross-entropy, official EM/F1. */
export interface SquadTask extends TaskBase {
  format: "squad-json";
  /** Reads `dataDir/squad/{train,dev}-v2.0.json`. */
  readSplit(dataDir: string, split: string): Promise<SquadExample[]>;
  /** Reads a SQuAD 2.0 JSON file. */
  readFile(path: string): Promise<SquadExample[]>;
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
 * Parses the text of a SQuAD (1.1 or 2.0) JSON file; `file` names it in errors, which also give
 * the JSON path of the offending entry.
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
    throw new Error(`${file}: not JSON (${(e as Error).message})`);
  }
  const fail = (path: string, what: string): never => {
    throw new Error(`${file}: not a SQuAD file: ${path} ${what}`);
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
        out.push(ex);
      });
    });
  });
  return out;
}

/** Reads a SQuAD JSON file (see {@linkcode parseSquad}). */
export async function readSquad(path: string): Promise<SquadExample[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(`squad: ${path} not found (run: deno task fetch-data --task squad)`);
    }
    throw e;
  }
  return parseSquad(text, path);
}

const FILES: Record<string, string> = { train: "train-v2.0.json", dev: "dev-v2.0.json" };

/** SQuAD windows as BERTVision made them: context pieces between window starts. */
export const SQUAD_DOC_STRIDE = 128;
/** Question pieces kept per SQuAD window. */
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
    const f = FILES[split];
    if (f === undefined) throw new Error(`squad has no split "${split}" (splits: train, dev)`);
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
    const all = await readSquad(path);
    const examples = o.limit === undefined ? all : all.slice(0, o.limit);
    if (examples.length === 0) throw new Error(`${path}: no examples`);
    const { features } = squadFeatures(examples, o.tokenizer, {
      maxSeqLength: o.maxSeqLength,
      docStride: o.docStride ?? SQUAD_DOC_STRIDE,
      maxQueryLength: o.maxQueryLength ?? SQUAD_MAX_QUERY_LENGTH,
    });
    const n = features.length, S = o.maxSeqLength;
    const rows = {
      n,
      seq: S,
      inputIds: new Int32Array(n * S),
      tokenTypeIds: new Int32Array(n * S),
      attentionMask: new Int32Array(n * S),
      labels: new Float64Array(n * 2),
      labelWidth: 2,
      idx: Float64Array.from(features, (f) => f.exampleIndex),
      nExamples: examples.length,
      squad: { examples, features },
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
