/**
 * MRPC (Microsoft Research Paraphrase Corpus): sentence pair, paraphrase 1 / not 0; accuracy and
 * F1. The header starts with a byte-order mark.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The MRPC task. */
export const mrpc = glueTask({
  name: "mrpc",
  kind: "classification",
  dir: "MRPC",
  labels: ["0", "1"],
  textA: "#1 String",
  textB: "#2 String",
  label: "Quality",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy", "f1"],
  // Rebuilt from the MSR paraphrase files as GLUE's download script does.
  source: { type: "msr-paraphrase", dir: "MRPC" },
});
