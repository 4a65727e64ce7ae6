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

import { parseArgs } from "node:util";
import { makeTinyBert } from "../model/init.ts";

const USAGE = `usage: deno task make-tiny-bert --out DIR [--seed 0] [--layers 2] [--hidden 64]
  [--heads 2] [--intermediate 128] [--vocab vocab.txt] [--max-positions 512]`;

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer, got "${v}"\n${USAGE}`);
  return n;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      seed: { type: "string" },
      layers: { type: "string" },
      hidden: { type: "string" },
      heads: { type: "string" },
      intermediate: { type: "string" },
      vocab: { type: "string" },
      "max-positions": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  try {
    if (!values.out) throw new Error(`--out DIR is required\n${USAGE}`);
    const opts = {
      out: values.out,
      seed: int("seed", values.seed, 0),
      layers: int("layers", values.layers, 2),
      hidden: int("hidden", values.hidden, 64),
      heads: int("heads", values.heads, 2),
      intermediate: int("intermediate", values.intermediate, 128),
      vocab: values.vocab,
      maxPositions: int("max-positions", values["max-positions"], 512),
    };
    await makeTinyBert(opts);
    console.log(
      `wrote ${opts.out}: BERT L=${opts.layers} H=${opts.hidden} A=${opts.heads} ` +
        `I=${opts.intermediate} P=${opts.maxPositions} seed=${opts.seed}` +
        (opts.vocab ? ` vocab=${opts.vocab}` : " (built-in vocabulary)"),
    );
  } catch (e) {
    console.error(`make-tiny-bert: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
