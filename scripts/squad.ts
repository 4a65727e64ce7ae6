/**
 * squad: `deno task glue` with the task fixed to SQuAD 2.0 (the seed's `models.squad` and
 * `models.ap_squad`).
 *
 * ```
 * deno task squad --model bert --bert bert-base-uncased --data-dir glue_data --epochs 1 \
 *   --batch-size 16 --lr 3e-5 --max-seq-length 384 --save-at 0.3,1
 * deno task squad --dataset SQuADH5 --h5 squad_train.h5 --dev-h5 squad_dev.h5 --adapter-dim 386
 * ```
 * Expected result (BERT-base, 1 epoch): BERT EM 70.40 / F1 73.57, AP 70.06 / 73.36. Cost: a full
 * SQuAD 2.0 epoch (130k questions, ~132k windows at 384 tokens) is hours on one GPU, and the
 * full-layout activations are ~15 MB per window in float32: capture with --dtype f16.
 * @module
 */
import { main } from "./glue.ts";
import { runMain } from "./_cli.ts";

if (import.meta.main) await runMain("squad", () => main(Deno.args, "squad"));
