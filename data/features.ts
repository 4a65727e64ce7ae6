/**
 * Model inputs from examples: padded GLUE features, and SQuAD 2.0 sliding-window features with
 * the token -> character offset map that post-processing needs.
 *
 * SQuAD windows are made as BERTVision made them, with the Hugging Face fast tokenizer's
 * `stride` and `return_overflowing_tokens`: the question is cut to `maxQueryLength` word pieces
 * (0: kept whole, as the seed's `truncation="only_second"` keeps it), the context is tokenised once and covered by windows of `room = maxSeqLength - query - 3`
 * pieces, consecutive windows OVERLAPPING by `docStride` pieces (each starts `room - docStride`
 * pieces after the one before; the last ends at the context's end). This is not Google's
 * `run_squad.py`, where `doc_stride` is the step between window starts. When `docStride` leaves
 * no room to advance (`docStride >= room`, a short `maxSeqLength`) and the context needs another
 * window, the default overlap becomes half the room (`floor(room / 2)`) for that question; an
 * overlap the caller chose is an {@linkcode InputError} naming the fix (`noRoom`).
 * `[CLS] question [SEP] window [SEP]`, padded. A window that does not contain the whole answer, and
 * every window of an impossible question, is labelled at [CLS] (position 0). Answers are mapped
 * to tokens through the offsets: the first piece ending after the answer's first character to
 * the last piece starting before its end.
 * @module
 */

import { type BertTokenizerLike, encodeIds } from "./tokenize.ts";
import { InputError } from "./errors.ts";

/** What {@linkcode featurize} needs of a GLUE example. */
export interface TextExample {
  textA: string;
  textB?: string;
  /** Class index or regression target, one 0/1 per label (multi-label), or undefined (test). */
  label?: number | readonly number[];
}

/** A batch of padded GLUE features: `n` rows of `maxSeqLength`, row-major. */
export interface GlueFeatures {
  /** Number of examples. */
  n: number;
  /** Row length. */
  maxSeqLength: number;
  /** (n, maxSeqLength) token ids. */
  inputIds: Int32Array;
  /** (n, maxSeqLength) segment ids. */
  tokenTypeIds: Int32Array;
  /** (n, maxSeqLength) 1 = real token. */
  attentionMask: Int32Array;
  /** (n, labelWidth) labels as float64 (class index, score, 0/1); NaN where there is none. */
  labels: Float64Array;
  /** Labels per row. */
  labelWidth: number;
  /** Examples whose pieces did not fit and were truncated. */
  truncated: number;
}

/**
 * Tokenises GLUE examples into padded row-major arrays (`[CLS] a [SEP] (b [SEP])`, longest-first
 * truncation).
 *
 * @example
 * ```ts
 * import { featurize } from "./features.ts";
 * import { tokenizerFromVocab } from "./tokenize.ts";
 * const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good"]);
 * const f = featurize([{ textA: "good", label: 1 }], tok, 4);
 * console.assert(f.inputIds.join() === "2,4,3,0" && f.labels[0] === 1);
 * ```
 */
export function featurize(
  examples: readonly TextExample[],
  tokenizer: BertTokenizerLike,
  maxSeqLength: number,
  labelWidth = 1,
): GlueFeatures {
  const n = examples.length;
  const inputIds = new Int32Array(n * maxSeqLength);
  const tokenTypeIds = new Int32Array(n * maxSeqLength);
  const attentionMask = new Int32Array(n * maxSeqLength);
  const labels = new Float64Array(n * labelWidth).fill(NaN);
  let truncated = 0;
  for (let i = 0; i < n; i++) {
    const ex = examples[i];
    const a = tokenizer.tokenizeWithOffsets(ex.textA).ids;
    const b = ex.textB === undefined ? undefined : tokenizer.tokenizeWithOffsets(ex.textB).ids;
    if (a.length + (b?.length ?? 0) + (b ? 3 : 2) > maxSeqLength) truncated++;
    const e = encodeIds(a, b, maxSeqLength, tokenizer);
    inputIds.set(e.inputIds, i * maxSeqLength);
    tokenTypeIds.set(e.tokenTypeIds, i * maxSeqLength);
    attentionMask.set(e.attentionMask, i * maxSeqLength);
    if (ex.label !== undefined) {
      const row = typeof ex.label === "number" ? [ex.label] : ex.label;
      if (row.length !== labelWidth) {
        throw new RangeError(`featurize: example ${i} has ${row.length} labels, not ${labelWidth}`);
      }
      labels.set(row, i * labelWidth);
    }
  }
  return { n, maxSeqLength, inputIds, tokenTypeIds, attentionMask, labels, labelWidth, truncated };
}

/** What {@linkcode squadFeatures} needs of a SQuAD example (see tasks/squad.ts). */
export interface SquadExampleLike {
  /** Question id. */
  id: string;
  question: string;
  context: string;
  /** Gold answers; `start` is a UTF-16 index into `context`. Empty for impossible questions. */
  answers: { text: string; start: number }[];
  isImpossible: boolean;
}

/** Options of {@linkcode squadFeatures}. */
export interface SquadFeatureOptions {
  /** Tokens per feature. Default 384 (the paper used 386). */
  maxSeqLength?: number;
  /**
   * Overlap in context pieces between consecutive windows (Hugging Face's `stride`, as
   * BERTVision featurized). Default {@linkcode SQUAD_DEFAULT_DOC_STRIDE} (128).
   */
  docStride?: number;
  /**
   * What happens when `docStride` leaves a question no room to advance (`docStride >=` its
   * context room) and its context needs another window: "halve" overlaps its windows by half the
   * room instead, "error" throws an {@linkcode InputError} naming the fix. Default "halve" when
   * `docStride` is not given (the default overlap), "error" when it is.
   */
  noRoom?: "halve" | "error";
  /**
   * Question pieces kept. Default 64 (run_squad.py's `max_query_length`); 0 keeps the whole
   * question, as the seed's tokenizer call (`truncation="only_second"`) does.
   */
  maxQueryLength?: number;
}

/** The default overlap of consecutive SQuAD windows, in pieces (the seed's `stride=128`). */
export const SQUAD_DEFAULT_DOC_STRIDE = 128;

/** One window of one SQuAD example. */
export interface SquadFeature {
  /** Index of the example in the input array. */
  exampleIndex: number;
  /** Question id. */
  exampleId: string;
  /** Window number within the example (0, 1, ...). */
  windowIndex: number;
  /** Index of the window's first piece in the context's pieces. */
  contextStart: number;
  /** Context pieces in the window. */
  contextLength: number;
  inputIds: Int32Array;
  tokenTypeIds: Int32Array;
  attentionMask: Int32Array;
  /** Per token: character start in the context, -1 outside the context window. */
  charStart: Int32Array;
  /** Per token: character end (exclusive) in the context, -1 outside the context window. */
  charEnd: Int32Array;
  /** Per token: 1 where this window gives the token its most context (run_squad.py). */
  maxContext: Uint8Array;
  /** Token index of the answer start (0 = [CLS] = no answer in this window). */
  startPosition: number;
  /** Token index of the answer end (inclusive; 0 = no answer). */
  endPosition: number;
}

/** Statistics of a {@linkcode squadFeatures} run. */
export interface SquadFeatureStats {
  /** Questions cut to maxQueryLength. */
  truncatedQuestions: number;
  /** Examples needing more than one window. */
  multiWindow: number;
  /** The overlap asked for (`docStride`, or the default). */
  docStride: number;
  /** Tokens per window. */
  maxSeqLength: number;
  /**
   * Questions whose windows overlap by half their context room instead of `docStride` (it left
   * no room to advance), with the smallest and largest such room and overlap; 0 and [] if none.
   */
  strideReduced: number;
  reducedRoom: [number, number] | [];
  reducedOverlap: [number, number] | [];
}

/**
 * The windows of a context of `length` pieces: `[start, length]` of each, `room` pieces long,
 * consecutive ones overlapping by `overlap` pieces (each starts `room - overlap` after the one
 * before); the last ends at the context's end. At least one window (an empty context has one
 * empty window). This is the Hugging Face tokenizers' `truncate` with `stride`.
 *
 * @example
 * ```ts
 * import { squadWindows } from "./features.ts";
 * // 10 pieces, 4 per window, overlap 1: starts 0, 3, 6 (6 + 4 = 10 ends it)
 * console.assert(JSON.stringify(squadWindows(10, 4, 1)) === "[[0,4],[3,4],[6,4]]");
 * ```
 */
export function squadWindows(length: number, room: number, overlap: number): [number, number][] {
  if (!(Number.isInteger(room) && room >= 1)) throw new RangeError(`window room ${room} < 1`);
  if (!(Number.isInteger(overlap) && overlap >= 0 && (overlap < room || length <= room))) {
    throw new RangeError(`window overlap ${overlap} leaves no room to advance in ${room}`);
  }
  const spans: [number, number][] = [];
  for (let start = 0;; start += room - overlap) {
    const len = Math.min(length - start, room);
    spans.push([start, len]);
    if (start + len >= length) return spans;
  }
}

/**
 * One line saying how SQuAD windows were cut (for plans): the overlap and, when the default
 * left no room to advance, that those questions' windows overlap by half the room.
 */
export function describeSquadWindows(s: SquadFeatureStats, questions: number): string {
  const range = (r: [number, number] | []) =>
    r.length && r[0] !== r[1] ? `${r[0]}–${r[1]}` : `${r[0]}`;
  const base = `SQuAD windows: consecutive windows overlap by ${s.docStride} tokens ` +
    `(--doc-stride); ${s.multiWindow} of ${questions} questions need more than one`;
  if (!s.strideReduced) return base;
  return `${base}; --doc-stride ${s.docStride} (the default) leaves no room to advance at ` +
    `--max-seq-length ${s.maxSeqLength} for ${s.strideReduced} of them (${
      range(s.reducedRoom)
    } context tokens per window): reduced to half the context room, ${
      range(s.reducedOverlap)
    } tokens of overlap`;
}

/**
 * Sliding-window SQuAD 2.0 features. Context tokenisation is cached per distinct context.
 *
 * @example
 * ```ts
 * import { squadFeatures } from "./features.ts";
 * import { tokenizerFromVocab } from "./tokenize.ts";
 * const tok = tokenizerFromVocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "who", "?", "bob", "ran"]);
 * const ex = { id: "q1", question: "who?", context: "bob ran", isImpossible: false,
 *   answers: [{ text: "bob", start: 0 }] };
 * const [f] = squadFeatures([ex], tok, { maxSeqLength: 8 }).features;
 * console.assert(f.startPosition === 4 && f.endPosition === 4); // [CLS] who ? [SEP] bob
 * ```
 */
export function squadFeatures(
  examples: readonly SquadExampleLike[],
  tokenizer: BertTokenizerLike,
  opts: SquadFeatureOptions = {},
): { features: SquadFeature[]; stats: SquadFeatureStats } {
  const maxSeqLength = opts.maxSeqLength ?? 384;
  const docStride = opts.docStride ?? SQUAD_DEFAULT_DOC_STRIDE;
  const noRoom = opts.noRoom ?? (opts.docStride === undefined ? "halve" : "error");
  const maxQueryLength = opts.maxQueryLength ?? 64;
  if (!Number.isInteger(maxQueryLength) || maxQueryLength < 0) {
    throw new InputError(
      `--max-question-length ${maxQueryLength} must be an integer ≥ 0 (0: the whole question)`,
    );
  }
  if (!Number.isInteger(docStride) || docStride < 0) {
    throw new InputError(`--doc-stride ${docStride} must be an integer ≥ 0 (tokens of overlap)`);
  }
  const features: SquadFeature[] = [];
  const stats: SquadFeatureStats = {
    truncatedQuestions: 0,
    multiWindow: 0,
    docStride,
    maxSeqLength,
    strideReduced: 0,
    reducedRoom: [],
    reducedOverlap: [],
  };
  const widen = (r: [number, number] | [], v: number): [number, number] =>
    r.length ? [Math.min(r[0], v), Math.max(r[1], v)] : [v, v];
  // Questions an explicit docStride leaves no room to advance: the error names them all at once.
  let stuck = 0, stuckId = "", stuckRoom = Infinity;
  const cache = new Map<string, { ids: number[]; offsets: [number, number][] }>();
  for (let ei = 0; ei < examples.length; ei++) {
    const ex = examples[ei];
    let q = tokenizer.tokenizeWithOffsets(ex.question).ids;
    if (maxQueryLength > 0 && q.length > maxQueryLength) {
      q = q.slice(0, maxQueryLength);
      stats.truncatedQuestions++;
    }
    let doc = cache.get(ex.context);
    if (doc === undefined) {
      const t = tokenizer.tokenizeWithOffsets(ex.context);
      doc = { ids: t.ids, offsets: t.offsets };
      if (cache.size > 64) cache.clear();
      cache.set(ex.context, doc);
    }
    const maxDoc = maxSeqLength - q.length - 3;
    if (maxDoc < 1) {
      throw new Error(
        `squadFeatures: ${ex.id}: maxSeqLength ${maxSeqLength} leaves no room for context ` +
          `after its question of ${q.length} pieces` +
          (maxQueryLength === 0 || q.length < maxQueryLength
            ? ` (cut questions with --max-question-length N, or raise --max-seq-length)`
            : ` (lower --max-question-length or raise --max-seq-length)`),
      );
    }
    // Gold answer as token span (the first answer, as run_squad.py trains on).
    let ansStart = -1, ansEnd = -1;
    if (!ex.isImpossible && ex.answers.length > 0) {
      [ansStart, ansEnd] = answerTokenSpan(doc.offsets, ex.answers[0]);
    }
    let overlap = docStride;
    if (doc.ids.length > maxDoc && docStride >= maxDoc) {
      // No room to advance: the default halves the room (the caller's value is an error).
      overlap = Math.floor(maxDoc / 2);
      if (noRoom === "error") {
        stuck++;
        if (maxDoc < stuckRoom) [stuckRoom, stuckId] = [maxDoc, ex.id];
      } else {
        stats.strideReduced++;
        stats.reducedRoom = widen(stats.reducedRoom, maxDoc);
        stats.reducedOverlap = widen(stats.reducedOverlap, overlap);
      }
    }
    const spans = squadWindows(doc.ids.length, maxDoc, overlap); // [start, length]
    if (spans.length > 1) stats.multiWindow++;
    const offset = q.length + 2;
    for (let w = 0; w < spans.length; w++) {
      const [ds, dl] = spans[w];
      const inputIds = new Int32Array(maxSeqLength).fill(tokenizer.padId);
      const tokenTypeIds = new Int32Array(maxSeqLength);
      const attentionMask = new Int32Array(maxSeqLength);
      const charStart = new Int32Array(maxSeqLength).fill(-1);
      const charEnd = new Int32Array(maxSeqLength).fill(-1);
      const maxContext = new Uint8Array(maxSeqLength);
      let p = 0;
      inputIds[p++] = tokenizer.clsId;
      for (const id of q) inputIds[p++] = id;
      inputIds[p++] = tokenizer.sepId;
      for (let k = 0; k < dl; k++) {
        const t = ds + k;
        inputIds[p] = doc.ids[t];
        tokenTypeIds[p] = 1;
        charStart[p] = doc.offsets[t][0];
        charEnd[p] = doc.offsets[t][1];
        maxContext[p] = isMaxContext(spans, w, t) ? 1 : 0;
        p++;
      }
      inputIds[p] = tokenizer.sepId;
      tokenTypeIds[p] = 1;
      p++;
      attentionMask.fill(1, 0, p);
      let startPosition = 0, endPosition = 0;
      if (ansStart >= 0 && ansStart >= ds && ansEnd < ds + dl) {
        startPosition = ansStart - ds + offset;
        endPosition = ansEnd - ds + offset;
      }
      features.push({
        exampleIndex: ei,
        exampleId: ex.id,
        windowIndex: w,
        contextStart: ds,
        contextLength: dl,
        inputIds,
        tokenTypeIds,
        attentionMask,
        charStart,
        charEnd,
        maxContext,
        startPosition,
        endPosition,
      });
    }
  }
  if (stuck) {
    throw new InputError(
      `--doc-stride ${docStride} leaves no room to advance at --max-seq-length ${maxSeqLength}: ` +
        `${stuck} question${stuck > 1 ? "s have" : " has"} a context needing more windows ` +
        `with fewer context tokens per window than that (fewest: ${stuckRoom}, question ` +
        `${stuckId}); give --doc-stride below ${stuckRoom} (e.g. ${Math.floor(stuckRoom / 2)}), ` +
        `a larger --max-seq-length, or no --doc-stride (the overlap is then half the room)`,
    );
  }
  return { features, stats };
}

/**
 * Token span [first, last] (inclusive) of a character span through piece offsets: the first piece
 * ending after the answer's start to the last piece starting before its end; [-1, -1] if none.
 */
export function answerTokenSpan(
  offsets: readonly [number, number][],
  answer: { text: string; start: number },
): [number, number] {
  const s = answer.start, e = answer.start + answer.text.length;
  let first = -1, last = -1;
  for (let t = 0; t < offsets.length; t++) {
    if (first < 0 && offsets[t][1] > s) first = t;
    if (offsets[t][0] < e) last = t;
  }
  if (first < 0 || last < first) return [-1, -1];
  return [first, last];
}

/** run_squad.py `_check_is_max_context`: score = min(left, right) context + 0.01 * length. */
function isMaxContext(spans: [number, number][], cur: number, pos: number): boolean {
  let best = -1, bestScore = -Infinity;
  for (let i = 0; i < spans.length; i++) {
    const [s, l] = spans[i];
    const end = s + l - 1;
    if (pos < s || pos > end) continue;
    const score = Math.min(pos - s, end - pos) + 0.01 * l;
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best === cur;
}

/**
 * {@linkcode featurize} spread over `workers` Web Workers (the seed's `--num-workers`): each
 * loads the tokenizer of `modelDir` and featurises a contiguous chunk; the result is identical to
 * the single-threaded one. With `workers` ≤ 1 or few examples it runs on this thread.
 */
export async function featurizeParallel(
  examples: readonly TextExample[],
  modelDir: string,
  tokenizer: BertTokenizerLike,
  maxSeqLength: number,
  workers: number,
  labelWidth = 1,
): Promise<GlueFeatures> {
  const n = examples.length;
  const k = Math.min(Math.floor(workers), Math.ceil(n / 2000));
  if (k <= 1) return featurize(examples, tokenizer, maxSeqLength, labelWidth);
  const size = Math.ceil(n / k);
  const parts = await Promise.all(Array.from({ length: k }, (_, w) => {
    const chunk = examples.slice(w * size, (w + 1) * size).map((e) => ({
      textA: e.textA,
      textB: e.textB,
      label: e.label,
    }));
    return new Promise<GlueFeatures>((resolve, reject) => {
      const worker = new Worker(new URL("./_featurize_worker.ts", import.meta.url).href, {
        type: "module",
      });
      worker.onmessage = (e) => {
        worker.terminate();
        if (e.data.ok) resolve(e.data.f);
        else reject(new Error(`tokenization worker ${w}: ${e.data.error}`));
      };
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        reject(new Error(`tokenization worker ${w}: ${e.message}`));
      };
      worker.postMessage({ modelDir, maxSeqLength, labelWidth, examples: chunk });
    });
  }));
  const out: GlueFeatures = {
    n,
    maxSeqLength,
    inputIds: new Int32Array(n * maxSeqLength),
    tokenTypeIds: new Int32Array(n * maxSeqLength),
    attentionMask: new Int32Array(n * maxSeqLength),
    labels: new Float64Array(n * labelWidth),
    labelWidth,
    truncated: 0,
  };
  let row = 0;
  for (const p of parts) {
    out.inputIds.set(p.inputIds, row * maxSeqLength);
    out.tokenTypeIds.set(p.tokenTypeIds, row * maxSeqLength);
    out.attentionMask.set(p.attentionMask, row * maxSeqLength);
    out.labels.set(p.labels, row * labelWidth);
    out.truncated += p.truncated;
    row += p.n;
  }
  return out;
}
