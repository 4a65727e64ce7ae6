/**
 * Scores the ensemble of any runs' saved dev logits and prints the metrics as one JSON object,
 * as `deno task evaluate` does.
 *
 *   deno task ensemble --task T --logits A.npy B.npy [...] --data DEV [--dev-limit N]
 *     [--model M] [--doc-stride N] [--max-question-length N] [--squad-ensemble seed|ours]
 *     [--squad-null max|min] [--max-context on|off]
 *
 * The logits are the project's saved layouts: `dev_logits.npy` of a fine-tuning checkpoint
 * (`runs/T-bert/checkpoint-2/`) or of a head (`runs/T-ap/`), [N, C] per row, or SQuAD's span
 * logits [N, T, 2] per window. The ensemble is BERTVision's: the element-wise maximum of the
 * runs' softmax distributions (SQuAD: per window, of the start and of the end distributions,
 * turned into answers by the seed's notebook rule, `--squad-ensemble seed`, the default, or
 * post-processed as one model's logits, `ours`; train/squad_settings.ts), then the task's metrics: GLUE's as fractions, SQuAD's official
 * EM/F1 keys (`exact`, `f1`, `HasAns_exact`, ...) as percentages. So the paper's "BERT 2 epochs
 * + AP on 1-epoch activations" is
 *
 *   deno task ensemble --task sst2 --data glue_data/SST-2/dev.tsv \
 *     --logits runs/sst2-bert/checkpoint-2/dev_logits.npy runs/sst2-ap/dev_logits.npy
 *
 * `--data` is the labelled dev file the logits were computed on (as `evaluate --data`: one
 * file, whatever directory layout produced it); `--dev-limit` the first N examples, when the
 * runs used one. SQuAD also needs `--model`, the model whose tokenizer made the windows (the
 * fine-tuned checkpoint), to rebuild them and turn spans into answer text (with the
 * `--doc-stride` they were cut with, when it was not the default). Files of different
 * shapes, or another row count than the file gives, are refused naming the files, and so are
 * runs whose rows records (`dev_logits.rows.json`, written beside the logits: each row's
 * example and tokens, data/logit_rows.ts) say they hold other rows, naming both files and the
 * first row that differs; logits saved before those records are scored with a note that their
 * rows could not be verified. Costs
 * seconds (SQuAD: the dev file's tokenization).
 * @module
 */

import { ensembleFiles } from "../train/ensemble.ts";
import { parseCommand, runMain, squadSettings } from "./_cli.ts";

if (import.meta.main) {
  await runMain("ensemble", async () => {
    const { values: v } = parseCommand("ensemble", Deno.args);
    const scored = await ensembleFiles({
      task: v.task as string,
      logits: v.logits as string[],
      data: v.data as string,
      devLimit: v["dev-limit"] as number | undefined,
      model: v.model as string | undefined,
      docStride: v["doc-stride"] as number | undefined,
      squad: squadSettings(v),
    });
    console.log(JSON.stringify(scored.metrics, null, 2));
  });
}
