/**
 * Which layers a trained BERTVision head relies on: its dev metric with each stored layer's
 * activations replaced by that layer's training mean, one evaluation pass per layer, nothing
 * trained; LP heads also report their learned layer weights.
 *
 *   deno task ablate --task T --head DIR --dev-h5 DEV.h5 [--h5 TRAIN.h5] [--out DIR]
 *
 * The means come from the head's `layer_means.safetensors` (heads save them when they train);
 * heads trained before that need their training store (`--h5`). Writes `ablate.json` (last),
 * `ablate.md`, `ablate.svg` (LP: `ablate_weights.svg`) into `--out`, default the head's
 * directory. Expected: on a fine-tuned BERT the last layers cost most; costs L+2 dev evaluations.
 * @module
 */
import { ablateHead } from "../train/heads/ablate.ts";
import { outputOptions, parseCommand, runMain } from "./_cli.ts";

if (import.meta.main) {
  await runMain("ablate", async () => {
    const { values: v } = parseCommand("ablate", Deno.args);
    const a = await ablateHead({
      ...outputOptions(v),
      task: v.task as string,
      head: v.head as string,
      devH5: v["dev-h5"] as string[],
      trainH5: v.h5 as string | undefined,
      outDir: v.out as string | undefined,
    });
    console.log(await Deno.readTextFile(a.files[1]));
  });
}
