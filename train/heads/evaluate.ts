/**
 * Evaluating a head: every row of a store or a stream, in consecutive blocks without gradients,
 * scored by the head kind (or custom metrics), the logits (with the record of their rows,
 * `dev_logits.rows.json`) and SQuAD's answers saved.
 * @module
 */
import { type BvHead, describeConfig } from "../../model/heads.ts";
import { initGpu, noGrad, scope } from "../../model/tensor.ts";
import type { StoreReader } from "../../data/h5_store.ts";
import { writeFileAtomic, writeJsonAtomic } from "../../data/output/mod.ts";
import { encodeNpy } from "../../data/npy.ts";
import { writeLogitRows } from "../../data/logit_rows.ts";
import { Progress } from "../../data/progress.ts";
import { type EvalRows, kindOf, resolveTask, type Task } from "../../tasks/mod.ts";
import { HEAD_DEFAULTS } from "../defaults.ts";
import { type ActivationSource, StoreSource } from "../sources.ts";
import { stageError } from "../loop.ts";
import { checkStore, type StoreExpectations } from "./checks.ts";
import type { MetricsFn } from "./options.ts";

/** Options of {@linkcode evaluateAp}. */
export interface EvaluateApOptions {
  /** Rows per forward [64]. */
  batchSize?: number;
  /** Write `dev_logits.npy` and `dev_idx.npy` here (or `prefix`_logits.npy ...). */
  outDir?: string;
  /** File name prefix in outDir ["dev"]. */
  prefix?: string;
  /** The store's rows as `loadRows` makes them (SQuAD: scored by EM/F1); see TrainApOptions. */
  rows?: EvalRows;
  /** Custom metrics instead of the head kind's scoring. */
  metrics?: MetricsFn;
  /** Check the store against these first (task is taken from the `task` argument). */
  expect?: Omit<StoreExpectations, "task">;
  /** No progress bar. */
  silent?: boolean;
}

/** What {@linkcode evaluateAp} returns. */
export interface EvaluateApResult {
  /** Row-major logits in the kind's saved layout: [N, numLabels], or span [N, T, 2]. */
  logits: Float32Array;
  /** Shape of `logits`. */
  shape: number[];
  /** The kind's per-row predictions (classes, values, 0/1 per label, start/end tokens). */
  preds: Float64Array;
  /** Labels as stored. */
  golds: Int32Array | Float32Array;
  /** Example / feature index per row. */
  idx: Float64Array;
  /** Metrics (the head kind's, or `metrics`'); empty for unlabelled rows. */
  metrics: Record<string, number>;
  /** SQuAD with `rows`: answers per question id. */
  answers?: Record<string, string>;
  /** SQuAD with `rows`: null score − best span score per question id (the na-prob file). */
  naProbs?: Record<string, number>;
  /** Saved logits path (.npy) when `outDir` was given. */
  logitsPath?: string;
  /**
   * SQuAD with `rows` and `outDir`: `predictions.json` ({id: answer}) and `na_probs.json` ({id:
   * no-answer score}), the official evaluator's inputs (`deno task evaluate --pred ... --na-prob
   * ...` scores them to `metrics`); `<prefix>_predictions.json` ... for a prefix other than "dev".
   */
  predictionsPath?: string;
  naProbsPath?: string;
}

/**
 * Runs a head over every row of a store (consecutive blocks, no gradients) and scores it.
 * `store` is a path or an open reader (left open).
 */
export async function evaluateAp(
  head: BvHead,
  store: string | StoreReader,
  taskOrName: string | Task,
  o: EvaluateApOptions = {},
): Promise<EvaluateApResult> {
  await initGpu();
  const task = resolveTask(taskOrName);
  const source = typeof store === "string" ? await StoreSource.open(store) : StoreSource.of(store);
  try {
    checkStore(source.reader, { task, ...o.expect });
    return await evaluateHead(head, source, task, o);
  } finally {
    if (typeof store === "string") source.close();
  }
}

/** {@linkcode evaluateAp} on any activation source (a store, or a stream from BERT). */
export async function evaluateHead(
  head: BvHead,
  source: ActivationSource,
  taskOrName: string | Task,
  o: EvaluateApOptions = {},
): Promise<EvaluateApResult> {
  await initGpu();
  const task = resolveTask(taskOrName);
  const kind = kindOf(task);
  const c = head.config;
  const s = source.shape;
  const T = s.layout === "full" ? s.tokens : 1;
  if (c.layers !== s.layers || c.tokens !== T || c.features !== s.hidden) {
    throw new Error(
      `${source.name} holds [L=${s.layers}, T=${T}, F=${s.hidden}] but the head was built for ` +
        describeConfig(c),
    );
  }
  const N = s.n, bs = o.batchSize ?? HEAD_DEFAULTS.evalBatchSize;
  const shape = kind.logitsShape(N, T);
  const width = shape.slice(1).reduce((a, b) => a * b, 1);
  const logits = new Float32Array(N * width);
  const golds = new (kind.labelType === "float32" ? Float32Array : Int32Array)(
    N * source.labelWidth,
  );
  const idx = new Float64Array(N);
  const bar = new Progress({ label: `eval ${task.name}`, total: N, unit: "ex", silent: o.silent });
  for (let start = 0; start < N; start += bs) {
    const count = Math.min(bs, N - start);
    const { out, labels, rowIdx } = await noGrad(() =>
      scope(async () => {
        const data = source.range(start, count);
        return {
          out: await head.forward(data.x).readF32(),
          labels: data.labels,
          rowIdx: data.idx,
        };
      })
    ).catch((e) => {
      throw stageError(e, {
        stage: `evaluate ${task.name} head on ${source.name}`,
        batch: `rows ${start}–${start + count - 1}`,
        batchSize: bs,
      });
    });
    logits.set(kind.toSaved(out, count, T), start * width);
    golds.set(labels, start * source.labelWidth);
    idx.set(rowIdx, start);
    bar.tick(count);
  }
  bar.done();

  if (o.rows && o.rows.n !== N) {
    throw new Error(
      `${source.name} holds ${N} rows but the dev rows given to score it have ` +
        `${o.rows.n} (captured from another file or --dev-limit?)`,
    );
  }
  const rows: EvalRows = o.rows ?? { n: N, seq: T, labels: golds };
  const scored = o.metrics
    ? { metrics: await o.metrics(logits, shape, idx) }
    : kind.score(logits, rows);
  const res: EvaluateApResult = {
    logits,
    shape,
    preds: kind.predict(logits, N),
    golds,
    idx,
    metrics: scored.metrics,
    answers: "answers" in scored ? scored.answers : undefined,
    naProbs: "naProbs" in scored ? scored.naProbs : undefined,
  };
  if (o.outDir) {
    await Deno.mkdir(o.outDir, { recursive: true });
    const prefix = o.prefix ?? "dev";
    res.logitsPath = `${o.outDir}/${prefix}_logits.npy`;
    await writeFileAtomic(res.logitsPath, encodeNpy(logits, res.shape));
    await writeFileAtomic(
      `${o.outDir}/${prefix}_idx.npy`,
      encodeNpy(Int32Array.from(idx), [N]),
    );
    // Which rows these are (data/logit_rows.ts): what `ensemble` checks the runs agree on.
    await writeLogitRows(res.logitsPath, { ...source.rowsIdentity(), idx });
    if (res.answers && res.naProbs) {
      // The official evaluator's file names (the dev split's files keep them unprefixed).
      const p = prefix === "dev" ? "" : `${prefix}_`;
      res.predictionsPath = `${o.outDir}/${p}predictions.json`;
      res.naProbsPath = `${o.outDir}/${p}na_probs.json`;
      await writeJsonAtomic(res.predictionsPath, res.answers);
      await writeJsonAtomic(res.naProbsPath, res.naProbs);
    }
  }
  return res;
}
