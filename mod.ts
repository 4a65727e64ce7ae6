/**
 * bertvision: BERTVision on Deno + WebGPU. BERT, its backward pass, hidden-state capture and the
 * adapter-pooler models run in hand-written WGSL kernels with a thin tape autograd.
 *
 * The public API, by layer (see DESIGN in the README):
 * - kernels: {@linkcode getGpu} and the device runtime; kernel launchers live in `kernels/*.ts`.
 * - model: {@linkcode Tensor}, the tape ({@linkcode backward}, {@linkcode scope},
 *   {@linkcode noGrad}), the differentiable ops, {@linkcode BertModel}, {@linkcode AdamW},
 *   checkpoints, fine-tuning, capture, the BERTVision heads and their training, ensembling.
 * - data: tokenization, features, the HDF5 activation store, downloads, progress bars.
 * - tasks: the nine GLUE tasks and SQuAD 2.0 with their readers and metrics.
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
export {
  evaluateRows,
  fineTune,
  type FineTuneOptions,
  loadTaskRows,
  TaskHead,
} from "./model/finetune.ts";
export { capture, type CaptureOptions } from "./model/capture.ts";
export { BvHead, type HeadConfig, loadHead, type Pooling, saveHead } from "./model/heads.ts";
export { evaluateAp, trainAp, type TrainApOptions } from "./model/ap_train.ts";
export { ensembleClassification, ensembleRegression, ensembleSpan } from "./model/ensemble.ts";

export { loadTokenizer, tokenizerFromVocab } from "./data/tokenize.ts";
export { featurize, squadFeatures } from "./data/features.ts";
export { H5Reader, H5Store } from "./data/h5_store.ts";
export { downloadFile } from "./data/download.ts";
export { Progress } from "./data/progress.ts";

export { getTask, TASK_NAMES } from "./tasks/mod.ts";
