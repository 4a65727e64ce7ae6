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
 * An existing `--out` is left alone when it already holds exactly these files, and refused
 * (naming what differs) otherwise; `--overwrite` replaces it whole, so nothing of another model
 * (an optimizer state, say) stays beside the new weights.
 * @module
 */

import { makeTinyBert } from "../model/init.ts";
import { parseCommand, runMain } from "./_cli.ts";
import { defaultFor } from "./_flag_parse.ts";
import { InputError } from "../data/errors.ts";
import { settingsDiff } from "../data/output/mod.ts";

/**
 * Writes a directory through `write` into a sibling temporary directory first; when `out` is
 * missing or empty, or `overwrite` is set, the result replaces it. An existing `out` holding
 * exactly the same files is kept (returns true); anything else is refused naming the
 * differences (config keys, files that differ, files that would be left beside it).
 */
async function writeOwned(
  out: string,
  overwrite: boolean,
  write: (dir: string) => Promise<void>,
): Promise<boolean> {
  const names = async (dir: string) => {
    try {
      const all: string[] = [];
      for await (const e of Deno.readDir(dir)) all.push(e.name);
      return all.sort();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return null;
      if (e instanceof Deno.errors.NotADirectory) {
        throw new InputError(`--out ${out}: is a file, not a directory`, { file: out });
      }
      throw e;
    }
  };
  const there = await names(out);
  // Made beside `out` and renamed into place, so a failed or killed run leaves no half model.
  const tmp = `${out.replace(/\/+$/, "")}.tmp-${Deno.pid}`;
  try {
    await write(tmp);
    if (!there?.length) {
      if (there) await Deno.remove(out);
      await Deno.rename(tmp, out);
      return false;
    }
    const made = (await names(tmp))!;
    const same = async (f: string) => {
      const [a, b] = await Promise.all([
        Deno.readFile(`${out}/${f}`),
        Deno.readFile(`${tmp}/${f}`),
      ]);
      return a.length === b.length && a.every((x, i) => x === b[i]);
    };
    const differ: string[] = [];
    for (const f of made) if (!there.includes(f) || !(await same(f))) differ.push(f);
    const extra = there.filter((f) => !made.includes(f));
    if (!differ.length && !extra.length) return true;
    if (!overwrite) {
      const lines: string[] = [];
      if (differ.includes("config.json") && there.includes("config.json")) {
        const read = async (d: string) => JSON.parse(await Deno.readTextFile(`${d}/config.json`));
        lines.push(...settingsDiff(await read(out), await read(tmp)).map((d) => `config ${d}`));
      }
      if (differ.length) lines.push(`files that would change: ${differ.join(", ")}`);
      if (extra.length) lines.push(`files of another run there: ${extra.join(", ")}`);
      throw new InputError(
        `--out ${out} holds another model (${lines.join("; ")}); ` +
          `choose another --out, or --overwrite to replace the directory whole`,
        { file: out },
      );
    }
    await Deno.remove(out, { recursive: true });
    await Deno.rename(tmp, out);
    return false;
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

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
    const kept = await writeOwned(
      opts.out,
      !!v.overwrite,
      (dir) => makeTinyBert({ ...opts, out: dir }),
    );
    if (kept) {
      console.log(`${opts.out} already holds this model, byte for byte: left as it is`);
      return;
    }
    console.log(
      `wrote ${opts.out}: BERT L=${opts.layers} H=${opts.hidden} A=${opts.heads} ` +
        `I=${opts.intermediate} P=${opts.maxPositions} seed=${opts.seed}` +
        (opts.vocab ? ` vocab=${opts.vocab}` : " (built-in vocabulary)"),
    );
  });
}
