/**
 * make-tiny-bert: writes a seeded, randomly initialised BERT in the Hugging Face layout
 * (config.json, model.safetensors, vocab.txt, tokenizer.json, tokenizer_config.json), so
 * capture, training and the GPU checks can run without downloading bert-base-uncased.
 *
 * Expected result: a directory that `loadBertCheckpoint`, `loadTokenizer` and Hugging Face
 * `BertModel.from_pretrained` all load; the same flags give byte-identical files.
 * Cost: well under a second for tiny shapes; ~1 min of CPU for a BERT-base-sized model.
 *
 * ```
 * deno task make-tiny-bert --out /tmp/tiny-bert --seed 0 --layers 2 --hidden 64 --heads 2 \
 *   --intermediate 128 [--vocab ../shared/data/bert-base-uncased/vocab.txt] [--max-positions 512]
 * ```
 * @module
 */

import { makeTinyBert } from "../model/init.ts";
import { parseCommand, runMain } from "./_cli.ts";
import { defaultFor } from "./_flags.ts";

if (import.meta.main) {
  await runMain("make-tiny-bert", async () => {
    const { values: v } = parseCommand("make-tiny-bert", Deno.args);
    const int = (name: string) => (v[name] ?? defaultFor(name, "make-tiny-bert")) as number;
    const opts = {
      out: v.out as string,
      seed: int("seed"),
      layers: int("layers"),
      hidden: int("hidden"),
      heads: int("heads"),
      intermediate: int("intermediate"),
      vocab: v.vocab as string | undefined,
      maxPositions: int("max-positions"),
    };
    await makeTinyBert(opts);
    console.log(
      `wrote ${opts.out}: BERT L=${opts.layers} H=${opts.hidden} A=${opts.heads} ` +
        `I=${opts.intermediate} P=${opts.maxPositions} seed=${opts.seed}` +
        (opts.vocab ? ` vocab=${opts.vocab}` : " (built-in vocabulary)"),
    );
  });
}
