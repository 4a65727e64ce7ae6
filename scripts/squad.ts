/**
 * squad: `deno task glue` with the task fixed to SQuAD 2.0 (the seed's `models.squad` and
 * `models.ap_squad`).
 *
 * ```
 * deno task squad --model bert --bert bert-base-uncased --data-dir glue_data --save-at 0.3,1
 * deno task squad --dataset SQuADH5 --h5 squad_train.h5 --dev-h5 squad_dev.h5 \
 *   --dev-file glue_data/squad/dev-v2.0.json --adapter-dim 386
 * ```
 * Windows overlap by `--doc-stride` tokens (default 128, the seed's tokenizer stride) and hold the
 * whole question (`--max-question-length 0`, the seed's); answers follow the seed's rule (the
 * largest null score over windows, no max-context check: `--squad-null max --max-context off`;
 * run_squad.py's by `--squad-null min --max-context on`). A head on
 * stored activations needs `--dev-file`, the file the dev store was captured from: re-featurized
 * (and checked against the store's input_ids) so its span logits become answers, it reports the
 * official EM/F1 keys and writes `predictions.json` and `na_probs.json`, which `deno task
 * evaluate` scores to the same numbers (README "SQuAD windows and answers").
 * Settings not given are the seed's SQuAD commands (the squad preset: batch 16, 1 epoch, lr 2e-5,
 * l2 1.0, for BERT and the head; the AP adapter size = the token count, 384 by default). What
 * the seed reported with them (BERT-base; its table, not a number this implementation has
 * reproduced): BERT EM 70.3950 / F1 73.5724, AP 70.0581 / 73.3558. Cost: a full
 * SQuAD 2.0 epoch (130k questions, ~132k windows at 384 tokens) is hours on one GPU, and the
 * full-layout activations are ~15 MB per window in float32: capture with --dtype f16.
 * @module
 */
import { main } from "./glue.ts";
import { runMain } from "./_cli.ts";

if (import.meta.main) await runMain("squad", () => main(Deno.args, "squad"));
