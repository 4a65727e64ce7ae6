/**
 * WNLI (Winograd NLI): sentence pair, entailment 1 / not 0; accuracy. Tiny (635 train, 71 dev).
 * @module
 */
import { glueTask } from "./glue.ts";

/** The WNLI task. */
export const wnli = glueTask({
  name: "wnli",
  kind: "classification",
  dir: "WNLI",
  labels: ["0", "1"],
  textA: "sentence1",
  textB: "sentence2",
  label: "label",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy"],
});
