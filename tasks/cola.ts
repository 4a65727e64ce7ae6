/**
 * CoLA (Corpus of Linguistic Acceptability): single sentence, acceptable (1) or not (0); Matthews
 * correlation. train/dev have no header: source, label, original mark, sentence.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The CoLA task. */
export const cola = glueTask({
  name: "cola",
  kind: "classification",
  dir: "CoLA",
  labels: ["0", "1"],
  textA: "sentence",
  label: "label",
  impliedHeader: ["source", "label", "original", "sentence"],
  files: { train: "train.tsv", dev: "dev.tsv", test: "test.tsv" },
  metrics: ["matthews"],
});
