/**
 * bertvision: BERTVision on Deno + WebGPU. BERT, its backward pass, hidden-state capture and the
 * adapter-pooler models run in hand-written WGSL kernels with a thin tape autograd.
 *
 * The public API, by layer (README "How it is built"), lowest first:
 * - data: tokenization, features, the HDF5 activation store, the seeded RNG, downloads,
 *   progress bars.
 * - kernels: {@linkcode getGpu} and the device runtime; kernel launchers live in `kernels/*.ts`.
 * - model: {@linkcode Tensor}, the tape ({@linkcode backward}, {@linkcode scope},
 *   {@linkcode noGrad}), the differentiable ops, {@linkcode BertModel} and its head,
 *   {@linkcode AdamW}, checkpoints, the BERTVision heads.
 * - tasks: the nine GLUE tasks and SQuAD 2.0 (readers, metrics) and the head kinds.
 * - train: fine-tuning, capture, head training, ensembling and the whole reproduction.
 *
 * @example
 * ```ts ignore
 * import { BertModel, initGpu, loadBertCheckpoint, noGrad } from "./mod.ts";
 * await initGpu();
 * const ck = await loadBertCheckpoint("path/to/bert-base-uncased");
 * const bert = BertModel.fromHost(ck.config, ck.weights);
 * ```
 * @module
 */

export { fmtBytes, getGpu, Gpu, NoAdapterError } from "./kernels/device.ts";
export { MATMUL_VARIANTS, type MatmulVariant, pickMatmulVariant } from "./kernels/matmul.ts";

export { backward, clearTape, gpu, initGpu, keep, noGrad, scope, Tensor } from "./model/tensor.ts";
export * as ops from "./model/ops.ts";
export {
  type BertConfig,
  bertWeightShapes,
  type HostWeights,
  parseBertConfig,
} from "./model/config.ts";
export { type BertBatch, BertModel, type BertOutput, MASK_VALUE } from "./model/bert.ts";
export { AdamW, type AdamWOptions, type ParamGroup } from "./model/optim.ts";
export { readSafetensors, writeSafetensors } from "./model/safetensors.ts";
export { loadBertCheckpoint, resolveModel, saveBertCheckpoint } from "./model/checkpoint.ts";
export { makeTinyBert, randomBertWeights } from "./model/init.ts";
export { BertHead, type BertHeadSpec } from "./model/bert_head.ts";
export {
  BvHead,
  type HeadConfig,
  loadHead,
  type Pooling,
  type Readout,
  saveHead,
} from "./model/heads.ts";

export { loadTokenizer, tokenizerFromVocab } from "./data/tokenize.ts";
export { featurize, squadFeatures } from "./data/features.ts";
export { H5Reader, H5Store, SeedStoreReader, type StoreReader } from "./data/h5_store.ts";
export { parseShard, type Shard, shardPath, shardRange, shardRows } from "./data/shard.ts";
export { mergeShards, openStore, ShardSetReader, shardStatus } from "./data/shard_set.ts";
export { downloadFile } from "./data/download.ts";
export { Progress } from "./data/progress.ts";
export { Rng } from "./data/rng.ts";

export {
  getTask,
  type HeadKind,
  headKind,
  kindOf,
  KINDS,
  type Task,
  TASK_NAMES,
  type TaskKind,
  TASKS,
} from "./tasks/mod.ts";
export {
  type EnsembleClassification,
  ensembleClassification,
} from "./tasks/kinds/classification.ts";
export { ensembleRegression } from "./tasks/kinds/regression.ts";
export { ensembleSpan } from "./tasks/kinds/span.ts";

export { evaluateBert, fineTune, type FineTuneOptions } from "./train/finetune.ts";
export { capture, type CaptureOptions } from "./train/capture.ts";
export { evaluateAp, trainAp, type TrainApOptions } from "./train/heads/mod.ts";
export {
  type FractionSweepOptions,
  type FractionSweepResult,
  trainFractions,
} from "./train/heads/fractions.ts";
export {
  ablateHead,
  type AblateOptions,
  type ProbeOptions,
  type ProbeResult,
  trainProbes,
} from "./train/heads/mod.ts";
export { ensembleFiles, type EnsembleFilesOptions, ensembleScores } from "./train/ensemble.ts";
export { loadRows, type SplitRows } from "./train/rows.ts";
export { reproduce, type ReproduceOptions } from "./train/reproduce.ts";
export { runSearch, type SearchOptions, type SearchResult } from "./train/search/study.ts";
export {
  parseSpace,
  readSpace,
  SEED_HEAD_SPACE,
  SEED_SPACES,
  type Space,
  type SpacePreset,
} from "./train/search/space.ts";
export { tpeSuggest } from "./train/search/tpe.ts";
export { type CrossReport, findResults, writeCrossReport } from "./report/cross.ts";
export { PUBLISHED, publishedFor, type PublishedResult } from "./report/published.ts";
export { CAPTURE_DEFAULTS, FINETUNE_DEFAULTS, HEAD_DEFAULTS } from "./train/defaults.ts";
export {
  type EarlyStopOn,
  presetFor,
  SEED_DEFAULT_ORIGINS,
  SEED_DEFAULTS,
  SEED_PRESETS,
  type Seeded,
  seedOrigins,
  type SeedPreset,
  seedSeqLength,
  seedSettings,
  type TrainSettings,
} from "./train/presets.ts";
