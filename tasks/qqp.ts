/**
 * QQP (Quora Question Pairs): question pair, duplicate 1 / not 0; accuracy and F1. The original
 * files have malformed rows (wrong column count); they are skipped and counted, as the GLUE
 * reference code does.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The QQP task. */
export const qqp = glueTask({
  name: "qqp",
  kind: "classification",
  dir: "QQP",
  labels: ["0", "1"],
  textA: "question1",
  textB: "question2",
  label: "is_duplicate",
  skipMalformed: true,
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["accuracy", "f1"],
  source: {
    type: "glue-zip",
    zip: "QQP-clean.zip",
    dir: "QQP",
    files: ["train.tsv", "dev.tsv", "test.tsv"],
  },
});
