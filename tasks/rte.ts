/**
 * RTE (Recognizing Textual Entailment): sentence pair, entailment or not_entailment; accuracy.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The RTE task. */
export const rte = glueTask({
  name: "rte",
  kind: "classification",
  dir: "RTE",
  labels: ["entailment", "not_entailment"],
  textA: "sentence1",
  textB: "sentence2",
  label: "label",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy"],
});
