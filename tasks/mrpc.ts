/**
 * MRPC (Microsoft Research Paraphrase Corpus): sentence pair, paraphrase 1 / not 0; accuracy and
 * F1 (GLUE's: binary F1 of the paraphrase class). The header starts with a byte-order mark.
 *
 * Splits: GLUE's `train` (3,668 pairs), `dev` (408, the default dev split) and unlabelled `test`,
 * plus `msr_test`: the labelled MSR paraphrase test file `MRPC/msr_paraphrase_test.txt` (1,725
 * pairs, 1,147 paraphrases), which `fetch-data` keeps beside them. It is what the seed (BERTVision)
 * evaluated MSR on — its "dev" set — so `--dev-split msr_test` reproduces its table; the seed's
 * "Dev. F1" column there is micro-F1, equal to accuracy. It trained on `msr_train`, the whole MSR
 * training file `MRPC/msr_paraphrase_train.txt` (4,076 pairs: GLUE's train and dev), so the
 * preset (train/presets.ts) trains on `msr_train` and evaluates `msr_test` with no flags. The
 * files have GLUE's MRPC columns
 * (`Quality`, `#1 ID`, `#2 ID`, `#1 String`, `#2 String`), so the same reader reads it.
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
  files: {
    train: "train.tsv",
    dev: "dev.tsv",
    test: "test.tsv",
    msr_test: "msr_paraphrase_test.txt",
    msr_train: "msr_paraphrase_train.txt",
  },
  devLabels: { dev: "MRPC dev", msr_test: "MSRP test" },
  metrics: ["accuracy", "f1"],
  // Rebuilt from the MSR paraphrase files as GLUE's download script does.
  source: { type: "msr-paraphrase", dir: "MRPC" },
});
