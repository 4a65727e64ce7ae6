/**
 * QNLI (Question NLI, from SQuAD): question/sentence pair, entailment or not_entailment; accuracy.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The QNLI task. */
export const qnli = glueTask({
  name: "qnli",
  dir: "QNLI",
  labels: ["entailment", "not_entailment"],
  textA: "question",
  textB: "sentence",
  label: "label",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy"],
});
