/**
 * demo: the whole reproduction on the embedded default, on any machine, with no arguments.
 *
 *   deno task demo [--out results/demo]
 *
 * A seeded tiny BERT (2 layers, hidden 64; the real bert-base-uncased vocabulary when
 * `../shared` has it, else the built-in one) is fine-tuned for 2 epochs on a generated
 * SST-2-format task (sentences whose sentiment words carry the label); its hidden states after
 * epoch 1 are captured to HDF5, the adapter-pooler is trained on them, and BERT (at 1 and 2
 * epochs), BERTVision and their ensemble are compared in the seed's table.
 *
 * Expected result: all three well above chance (≥ 0.9 accuracy on the generated dev set), the
 * AP head at about 0.05% of the tiny BERT's parameters. Randomly initialised weights cannot
 * reproduce the paper's numbers; the demo says so and prints the GPU-server command.
 * Cost: 2–4 minutes on a 2-core CPU with Mesa's software Vulkan; seconds on a GPU.
 * @module
 */
import { parseCommand, runMain, tuneKernels } from "./_cli.ts";
import { reproduce } from "../train/reproduce.ts";
import { makeTinyBert } from "../model/init.ts";
import { writeSyntheticSst2 } from "../data/synthetic.ts";
import { resultsMarkdown } from "../data/report.ts";

/** The real vocabulary when `../shared` is beside the project, else undefined. */
function sharedVocab(): string | undefined {
  const p = new URL("../../shared/data/bert-base-uncased/vocab.txt", import.meta.url).pathname;
  try {
    return Deno.statSync(p).isFile ? p : undefined;
  } catch {
    return undefined;
  }
}

if (import.meta.main) {
  await runMain("demo", async () => {
    const { values: v } = parseCommand("demo", Deno.args);
    await tuneKernels();
    const out = (v.out as string) ?? "results/demo";
    const vocab = sharedVocab();
    const modelDir = `${out}/tiny-bert`;
    const dataDir = `${out}/glue`;
    try {
      await Deno.stat(`${modelDir}/model.safetensors`);
    } catch {
      await makeTinyBert({
        out: modelDir,
        seed: 1,
        layers: 2,
        hidden: 64,
        heads: 4,
        intermediate: 128,
        vocab,
        maxPositions: 64,
      });
    }
    await writeSyntheticSst2(dataDir, { train: 512, dev: 200, seed: 7 });
    const notes = [
      `Tiny BERT with random initial weights (seed 1; ${
        vocab ? "real bert-base-uncased vocabulary" : "built-in vocabulary: ../shared was not found"
      }) on a generated SST-2-format task: a check that every stage works, not the paper's numbers, which need pretrained weights.`,
      "On a GPU server with real weights and data: deno task fetch-data --task sst2 --out glue_data && deno task reproduce --task sst2 --model bert-base-uncased --data-dir glue_data",
    ];
    const { results, files } = await reproduce({
      task: "sst2",
      model: modelDir,
      dataDir,
      out: `${out}/results`,
      epochs: 2,
      captureAt: 1, // BERTVision's experiment: AP on BERT after part of the training
      batchSize: 16,
      lr: 2e-3,
      maxSeqLength: 32,
      seed: 42,
      adapterDim: 8,
      apEpochs: 3,
      apLr: 3e-3,
      notes,
      silent: !!v.quiet,
    });
    console.log("\n" + resultsMarkdown(results));
    console.log(files.join("\n"));
  });
}
