/**
 * Test fixtures for capture (train/capture_test.ts, tests/capture_test.ts): a tiny seeded BERT
 * and small SST-2, STS-B and SQuAD files in the GLUE distribution layout, so the tests run
 * without ../shared; plus a direct-forward reference of what a store must hold.
 * @module
 */

import { makeTinyBert } from "../model/init.ts";
import { BertModel } from "../model/bert.ts";
import { loadBertCheckpoint } from "../model/checkpoint.ts";
import { initGpu, noGrad, scope } from "../model/tensor.ts";
import type { CaptureLayout } from "./capture.ts";
import { rangeBatch } from "./rows.ts";
import type { TaskRows } from "../tasks/mod.ts";

/** Real SST-2 dev file and BERT vocabulary, when the shared data is there. */
export const SHARED_GLUE = new URL("../../shared/data/glue", import.meta.url).pathname;
export const SHARED_VOCAB =
  new URL("../../shared/data/bert-base-uncased/vocab.txt", import.meta.url).pathname;

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const SENTENCES = [
  "a good film , and a great story",
  "the worst movie of the year",
  "it is very good",
  "not good at all .",
  "one of the best films this year , really",
  "bad",
  "i love this little movie",
  "you will want your time back",
  "what a great , great life story !",
  "there is no story here",
  "people who like water will love it",
];

/** Writes the fixture tree under `root`: `tiny/` (model), `glue/SST-2`, `glue/STS-B`, `glue/squad`. */
export async function writeFixture(root: string): Promise<{ model: string; glue: string }> {
  const model = `${root}/tiny`;
  await makeTinyBert({
    out: model,
    seed: 7,
    layers: 2,
    hidden: 16,
    heads: 2,
    intermediate: 32,
    maxPositions: 64,
  });
  const glue = `${root}/glue`;
  await Deno.mkdir(`${glue}/SST-2`, { recursive: true });
  await Deno.writeTextFile(
    `${glue}/SST-2/dev.tsv`,
    "sentence\tlabel\n" + SENTENCES.map((s, i) => `${s} \t${(i * 7) % 2}\n`).join(""),
  );
  await Deno.mkdir(`${glue}/STS-B`, { recursive: true });
  const head =
    "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore";
  await Deno.writeTextFile(
    `${glue}/STS-B/dev.tsv`,
    head + "\n" +
      SENTENCES.slice(0, 5).map((s, i) =>
        `${i}\tmain\tx\t2012\t000${i}\tnone\tnone\t${s}\t${SENTENCES[i + 5]}\t${
          (i * 1.25).toFixed(3)
        }\n`
      ).join(""),
  );
  await Deno.mkdir(`${glue}/squad`, { recursive: true });
  const context = "the film was made in the year one , and the story of the man who made it " +
    "is a long story about water , time and people who love a good question .";
  const squad = {
    version: "v2.0",
    data: [{
      title: "T",
      paragraphs: [{
        context,
        qas: [
          {
            id: "q1",
            question: "what was made ?",
            answers: [{ text: "the film", answer_start: 0 }],
            is_impossible: false,
          },
          {
            id: "q2",
            question: "who love a good question ?",
            answers: [{ text: "people", answer_start: context.indexOf("people") }],
            is_impossible: false,
          },
          { id: "q3", question: "why ?", answers: [], is_impossible: true },
        ],
      }],
    }],
  };
  await Deno.writeTextFile(`${glue}/squad/dev-v2.0.json`, JSON.stringify(squad));
  return { model, glue };
}

/**
 * What a store must hold, computed independently of captureRows: a plain BertModel.forward per
 * batch (cut at the same rows), hidden states read back one by one and laid out on the host as
 * (rows, L+1, S, H) or, for "cls", token 0 of each.
 */
export async function referenceEmbeds(
  modelDir: string,
  inputs: TaskRows,
  batchSize: number,
  layout: CaptureLayout,
): Promise<Float32Array> {
  await initGpu();
  const { config, weights } = await loadBertCheckpoint(modelDir);
  const model = BertModel.fromHost(config, weights);
  const S = inputs.seq, H = config.hiddenSize, L1 = config.numHiddenLayers + 1;
  const row = layout === "full" ? L1 * S * H : L1 * H;
  const out = new Float32Array(inputs.n * row);
  try {
    for (let s = 0; s < inputs.n; s += batchSize) {
      const count = Math.min(batchSize, inputs.n - s);
      const hidden = await noGrad(() =>
        scope(async () => {
          const o = model.forward(rangeBatch(inputs, s, count));
          return await Promise.all(o.hidden.map((h) => h.readF32()));
        })
      );
      for (let e = 0; e < count; e++) {
        for (let l = 0; l < L1; l++) {
          const src = hidden[l].subarray(e * S * H, e * S * H + (layout === "full" ? S * H : H));
          out.set(src, (s + e) * row + l * (layout === "full" ? S * H : H));
        }
      }
    }
  } finally {
    model.dispose();
  }
  return out;
}
