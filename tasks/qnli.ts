/**
 * QNLI (Question NLI, from SQuAD): question/sentence pair, entailment or not_entailment; accuracy.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The QNLI task. */
export const qnli = glueTask({
  name: "qnli",
  kind: "classification",
  dir: "QNLI",
  labels: ["entailment", "not_entailment"],
  textA: "question",
  textB: "sentence",
  label: "label",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy"],
  source: {
    type: "glue-zip",
    zip: "QNLIv2.zip",
    dir: "QNLI",
    files: ["train.tsv", "dev.tsv", "test.tsv"],
  },
});
