/**
 * STS-B (Semantic Textual Similarity Benchmark): sentence pair, similarity score 0..5
 * (regression, MSE); Pearson and Spearman. Ten columns; the score is the last.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The STS-B task. */
export const stsb = glueTask({
  name: "stsb",
  kind: "regression",
  dir: "STS-B",
  labels: [],
  textA: "sentence1",
  textB: "sentence2",
  label: "score",
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["pearson", "spearman"],
  scoreRange: [0, 5],
});
