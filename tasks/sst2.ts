/**
 * SST-2 (Stanford Sentiment Treebank, binary): single sentence, negative 0 / positive 1; accuracy.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The SST-2 task. */
export const sst2 = glueTask({
  name: "sst2",
  kind: "classification",
  dir: "SST-2",
  labels: ["0", "1"],
  textA: "sentence",
  label: "label",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy"],
});
