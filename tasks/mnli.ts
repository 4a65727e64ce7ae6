/**
 * MNLI (Multi-Genre NLI): premise/hypothesis pair, three labels; accuracy on dev_matched and
 * dev_mismatched. Both are the task's dev splits: fine-tuning, head training and `reproduce`
 * evaluate each and report them as two columns, `MNLI-m` and `MNLI-mm` (the seed's "Dev.
 * Matched" and "Dev. Mismatched"); `--dev-split dev_matched` evaluates one. Train has 12
 * columns, dev 16 (five annotator labels), the gold label is `gold_label`.
 * @module
 */
import { glueTask } from "./glue.ts";

/** The MNLI task. */
export const mnli = glueTask({
  name: "mnli",
  kind: "classification",
  dir: "MNLI",
  labels: ["contradiction", "entailment", "neutral"],
  textA: "sentence1",
  textB: "sentence2",
  label: "gold_label",
  files: {
    train: "train.tsv",
    dev_matched: "dev_matched.tsv",
    dev_mismatched: "dev_mismatched.tsv",
    test_matched: "test_matched.tsv",
    test_mismatched: "test_mismatched.tsv",
  },
  devLabels: { dev_matched: "MNLI-m", dev_mismatched: "MNLI-mm" },
  metrics: ["accuracy"],
  source: {
    type: "glue-zip",
    zip: "MNLI.zip",
    dir: "MNLI",
    files: ["train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"],
  },
});
