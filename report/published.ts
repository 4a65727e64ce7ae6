/**
 * The seed's published numbers, in one table: what `deno task report` prints beside a run's own
 * numbers, in their own columns. Each entry names where it was published; the values are
 * copied as printed there (GLUE as fractions, SQuAD 2.0 as the official script's percentages),
 * keyed by the dev split they were measured on and our metric key for the same quantity.
 *
 * Sources:
 * - **The seed's README** (BERTVision, `code/torch/README.md`, the section with the
 *   `models.<task>` / `models.ap_<task>` commands that train/presets.ts copies; the BERTVision
 *   repository by Jiang, King, Benge and Fogarty): BERT-base uncased fine-tuned for 1 epoch, and
 *   the AP model on its 1-epoch activations. Its tables give "Epoch 1, Batch Size 16, L2 1.0"
 *   for every task, though the commands above them pass `--l2 1.0` only for SQuAD, MSR and
 *   MNLI (the others ran with `args.py`'s 0.01); the table's values are shown as published.
 *   Its "Dev. F1" of the single-label tasks is micro-F1, equal to accuracy, so it is not GLUE's
 *   F1 (of the positive class) and is not listed; its MSR numbers are on the labelled MSR
 *   paraphrase test file, our MRPC split `msr_test`, not GLUE's 408-pair dev. WNLI has none.
 * - **The paper** (Jiang, King and Benge, "BERTVision: A Parameter-Efficient Approach for
 *   Question Answering", 2020, arXiv 2202.12210): BERT-large uncased on SQuAD 2.0, BERT at 1
 *   epoch, the AP model (adapter size 386, shared) on its activations and their ensemble;
 *   batch size and L2 are not stated with them.
 *
 * ../shared/docs/BERTVISION.md lists the same numbers ("Results to reproduce", rounded).
 * @module
 */

/** One model's published dev metrics: split → our metric key → value. */
export type PublishedMetrics = Readonly<Record<string, Readonly<Record<string, number>>>>;

/** One published result set: BERT and BERTVision (and an ensemble, when given) on one task. */
export interface PublishedResult {
  /** Our task name (tasks/mod.ts). */
  task: string;
  /** The BERT the numbers are for (a hub id). */
  model: string;
  /** Where the numbers were published. */
  source: string;
  /** The settings printed with them (the seed's table columns); undefined where not stated. */
  epochs?: number;
  batchSize?: number;
  l2?: number;
  bert: PublishedMetrics;
  bertvision: PublishedMetrics;
  ensemble?: PublishedMetrics;
  /** What a reader comparing with them should know. */
  note?: string;
}

const SEED_README = "the seed's README (BERTVision code/torch/README.md)";
const seedRow = (
  task: string,
  bert: PublishedMetrics,
  bertvision: PublishedMetrics,
  note?: string,
): PublishedResult => ({
  task,
  model: "bert-base-uncased",
  source: SEED_README,
  epochs: 1,
  batchSize: 16,
  l2: 1.0,
  bert,
  bertvision,
  ...(note ? { note } : {}),
});

/** Every published number, in the order the seed's README lists its tasks. */
export const PUBLISHED: readonly PublishedResult[] = [
  seedRow(
    "squad",
    { dev: { exact: 70.3950, f1: 73.5724 } },
    { dev: { exact: 70.0581, f1: 73.3558 } },
  ),
  seedRow("sst2", { dev: { accuracy: 0.91628 } }, { dev: { accuracy: 0.9128 } }),
  seedRow(
    "mrpc",
    { msr_test: { accuracy: 0.75188 } },
    { msr_test: { accuracy: 0.7820 } },
    "the seed's MSR dev set is the MSR paraphrase test file: compare a run with " +
      "--dev-split msr_test",
  ),
  seedRow("rte", { dev: { accuracy: 0.5848 } }, { dev: { accuracy: 0.6354 } }),
  seedRow("qnli", { dev: { accuracy: 0.9078 } }, { dev: { accuracy: 0.8948 } }),
  seedRow("qqp", { dev: { accuracy: 0.8962 } }, { dev: { accuracy: 0.8963 } }),
  seedRow(
    "stsb",
    { dev: { pearson: 0.84533, spearman: 0.84609 } },
    { dev: { pearson: 0.8571, spearman: 0.8568 } },
  ),
  seedRow("cola", { dev: { matthews: 0.5131 } }, { dev: { matthews: 0.5408 } }),
  seedRow(
    "mnli",
    { dev_matched: { accuracy: 0.8304 }, dev_mismatched: { accuracy: 0.8348 } },
    { dev_matched: { accuracy: 0.8287 }, dev_mismatched: { accuracy: 0.8303 } },
  ),
  {
    task: "squad",
    model: "bert-large-uncased",
    source: "the paper (Jiang, King and Benge 2020, arXiv 2202.12210)",
    epochs: 1,
    bert: { dev: { exact: 72.8, f1: 77.7 } },
    bertvision: { dev: { exact: 74.9, f1: 79.0 } },
    ensemble: { dev: { exact: 75.6, f1: 79.8 } },
    note: "BERT-large at 1 epoch; AP adapter size 386 (shared) on its activations",
  },
];

/**
 * The published result to show beside a run of `task` from `model` (a hub id or a directory):
 * the entry for that model when there is one (`bert-large-uncased` → the paper's), else the
 * task's first (the seed's BERT-base numbers), else undefined.
 *
 * @example
 * ```ts
 * import { publishedFor } from "./published.ts";
 * console.assert(publishedFor("sst2")?.bert.dev.accuracy === 0.91628);
 * console.assert(publishedFor("squad", "bert-large-uncased")?.ensemble?.dev.f1 === 79.8);
 * ```
 */
export function publishedFor(task: string, model?: string): PublishedResult | undefined {
  const all = PUBLISHED.filter((p) => p.task === task);
  const base = model?.replace(/\/+$/, "").split("/").at(-1);
  return all.find((p) => p.model === model || p.model === base) ?? all[0];
}
