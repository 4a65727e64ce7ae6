/**
 * demo: the whole reproduction on the embedded default, on any machine, with no arguments.
 *
 *   deno task demo [--out results/demo]
 *
 * A seeded tiny BERT (2 layers, hidden 64; the real bert-base-uncased vocabulary when
 * `../shared` has it, else the built-in one) is fine-tuned for 2 epochs on a generated
 * SST-2-format task (sentences whose sentiment words carry the label); its hidden states after
 * epoch 1 are captured to HDF5, the adapter-pooler (adapter size 8) is trained on them for 5
 * epochs, and BERT (at 1 and 2 epochs), BERTVision and the ensembles of each BERT checkpoint with
 * it are compared in the seed's table: BERTVision's claim in miniature, the head on 1-epoch
 * activations as good as BERT trained twice as long. A linear probe per layer and the head's
 * layer ablation (`reproduce --probe`) show which layers carry the task: the [CLS] probe of
 * layer 1 at 0.885 while BERT's own classifier is still at chance; the AP head loses most
 * (1.000 → 0.955) with the embeddings replaced by their mean. They cost about one more head's
 * training (about 6% of the demo's time).
 *
 * Expected result (200 generated dev sentences; measured on Mesa's llvmpipe, real vocabulary /
 * built-in one): BERT (1 ep) 0.500, at chance (after its 32 steps it still answers one class
 * for every sentence, though its hidden states already carry the cue words); BERT (2 ep) 1.000;
 * BERTVision (AP) (1 ep) 1.000 / 0.995; both ensembles 1.000 / 0.995. The AP head has 2.1K
 * parameters: 0.10% of the tiny BERT with the real vocabulary (2.03M), 2.26% with the built-in
 * one (90.9K); the paper's heads are about 0.1% of BERT-base's 110M.
 * Randomly initialised weights cannot reproduce the paper's numbers; the demo says so and prints
 * the GPU-server command.
 * Cost: 20–40 s on a 2-core CPU with Mesa's software Vulkan (the first run also tunes the kernels
 * and fetches Deno's dependencies); seconds on a GPU.
 *
 * The demo owns its output directory: `demo_settings.json` there records what it was built
 * with, a rerun with the same settings resumes (or finds everything done), and a rerun with
 * other settings (another vocabulary, a new version of the demo) rebuilds it from scratch. A
 * directory that is not a demo's is refused.
 * @module
 */
import { parseCommand, runMain, tuneKernels } from "./_cli.ts";
import { reproduce } from "../train/reproduce.ts";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { resultsMarkdown } from "../report/report.ts";
import { InputError } from "../data/errors.ts";
import { regularFileExists } from "../data/files.ts";
import { acquireLock, isLockFile, settingsDiff, writeJsonAtomic } from "../data/output/mod.ts";

/** The real vocabulary when `../shared` is beside the project, else undefined. */
function sharedVocab(): string | undefined {
  const p = new URL("../../shared/data/bert-base-uncased/vocab.txt", import.meta.url).pathname;
  try {
    return Deno.statSync(p).isFile ? p : undefined;
  } catch {
    return undefined;
  }
}

/** What a demo directory is built from: a change rebuilds it. */
export function demoSettings(vocab: string | undefined) {
  return {
    format: "bertvision-demo/2",
    model: { seed: 1, layers: 2, hidden: 64, heads: 4, intermediate: 128, maxPositions: 64 },
    vocab: vocab ?? null,
    data: { train: 512, dev: 200, seed: 7 },
    /** The reproduction's settings (captureAt 1: BERTVision's AP on BERT after part of the training). */
    run: {
      epochs: 2,
      captureAt: 1,
      batchSize: 16,
      lr: 2e-3,
      maxSeqLength: 32,
      seed: 42,
      adapterDim: 8,
      apEpochs: 5,
      apLr: 1e-2,
      /** Which layers carry the task: a probe per layer and the head's ablation. */
      probe: true,
    },
  };
}

/**
 * Makes `out` a demo directory built with `settings`: kept when it records the same settings,
 * emptied (with a note) when it records others or is an earlier demo's (tiny-bert/ and glue/
 * without a record); any other non-empty directory is refused.
 */
export async function ownOutput(
  out: string,
  settings: ReturnType<typeof demoSettings>,
  quiet: boolean,
): Promise<void> {
  const record = `${out}/demo_settings.json`;
  const entries: string[] = [];
  try {
    for await (const e of Deno.readDir(out)) entries.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new InputError(`--out ${out}: not a usable directory (${(e as Error).message})`, {
        file: out,
      });
    }
  }
  let there: Record<string, unknown> | null = null;
  regularFileExists(record); // a FIFO there would block the read
  try {
    there = JSON.parse(await Deno.readTextFile(record));
  } catch { /* no record (or unreadable): judged by the contents below */ }
  const diff = there ? settingsDiff(there, settings) : null;
  if (diff && !diff.length) return;
  const isDemo = there !== null || (entries.includes("tiny-bert") && entries.includes("glue"));
  const others = entries.filter((e) => !isLockFile(e));
  if (others.length && !isDemo) {
    throw new InputError(
      `--out ${out} is not a demo directory (no demo_settings.json; holds ${others.join(", ")}); ` +
        `the demo owns its output directory: choose another --out`,
      { file: out },
    );
  }
  if (others.length) {
    if (!quiet) {
      const why = diff ? ` (${diff.join("; ")})` : "";
      console.error(`${out}: built with other demo settings${why}; rebuilding it`);
    }
    for (const e of others) await Deno.remove(`${out}/${e}`, { recursive: true });
  }
  await Deno.mkdir(out, { recursive: true });
  await writeJsonAtomic(record, settings);
}

if (import.meta.main) {
  await runMain("demo", async () => {
    const { values: v } = parseCommand("demo", Deno.args);
    await tuneKernels();
    const out = (v.out as string) ?? "results/demo";
    const vocab = sharedVocab();
    const settings = demoSettings(vocab);
    // One demo per directory at a time; the stages lock their own outputs inside it too.
    const lock = acquireLock(out, "dir");
    if (lock.tookOver && !v.quiet) console.error(lock.tookOver);
    try {
      await ownOutput(out, settings, !!v.quiet);
      const modelDir = `${out}/tiny-bert`;
      const dataDir = `${out}/glue`;
      try {
        await Deno.stat(`${modelDir}/model.safetensors`);
      } catch {
        await makeTinyBert({ out: modelDir, vocab, ...settings.model });
      }
      await writeSyntheticSst2(dataDir, settings.data);
      const notes = [
        `Tiny BERT with random initial weights (seed 1; ${
          vocab
            ? "real bert-base-uncased vocabulary"
            : "built-in vocabulary: ../shared was not found"
        }) on a generated SST-2-format task: a check that every stage works, not the paper's numbers, which need pretrained weights.`,
        "On a GPU server with real weights and data: deno task fetch-data --task sst2 --out glue_data && deno task reproduce --task sst2 --model bert-base-uncased --data-dir glue_data",
      ];
      const { results, files } = await reproduce({
        task: "sst2",
        model: modelDir,
        dataDir,
        out: `${out}/results`,
        ...settings.run,
        notes,
        silent: !!v.quiet,
      });
      console.log("\n" + resultsMarkdown(results));
      console.log(files.join("\n"));
    } finally {
      lock.release();
    }
  });
}
