// The multi-label head kind (tasks/kinds/multilabel.ts): its loss and gradient against TF.js's
// sigmoid cross-entropy, label cells, predictions, metrics and ensemble by hand, and the whole
// pipeline (fine-tune → capture → AP → ensemble) on a generated multi-label GLUE-format task
// defined here as a task module, as a user's new task would be.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { checkOp } from "../../tests/op_check.ts";
import { oracle, randn, sharedDir } from "../../tests/helpers.ts";
import { glueTask } from "../glue.ts";
import { kindOf } from "./mod.ts";
import { exactMatch, microF1 } from "./multilabel.ts";
import { makeTinyBert } from "../../model/init.ts";
import { writeSyntheticTopics } from "../../data/synthetic.ts";
import { H5Reader } from "../../data/h5_store.ts";
import { reproduce } from "../../train/reproduce.ts";

/** A multi-label task over the generated TOPICS files: one file's worth of task module. */
const topics = glueTask({
  name: "topics",
  kind: "multilabel",
  dir: "TOPICS",
  labels: ["film", "nature", "people"],
  textA: "sentence",
  label: "labels",
  files: { train: "train.tsv", dev: "dev.tsv" },
  metrics: ["micro_f1", "exact_match"],
  source: { type: "none" },
});

Deno.test("multi-label loss: sigmoid cross-entropy per label vs TF.js, values and gradient", async () => {
  const tf = await oracle();
  const five = glueTask({
    name: "five",
    kind: "multilabel",
    dir: "FIVE",
    labels: ["a", "b", "c", "d", "e"],
    textA: "sentence",
    label: "labels",
    files: { train: "train.tsv" },
    metrics: ["micro_f1"],
    source: { type: "none" },
  });
  const kind = kindOf(five);
  const [B, L] = [7, 5];
  const labels = Float64Array.from({ length: B * L }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  // Logits up to ±40: where the sigmoid saturates and a naive log(sigmoid) would be -∞.
  const z = randn(3, B * L, 15);
  z[0] = 40, z[1] = -40, z[2] = 0;
  await checkOp(
    "multilabel loss",
    [{ data: z, shape: [B, L] }],
    (x) => kind.loss(x, labels, (i) => `row ${i}`),
    (x) =>
      tf.losses.sigmoidCrossEntropy(tf.tensor(Float32Array.from(labels), [B, L]), x).reshape([1]),
    // The per-label terms reach 40 (float32 rounding ~ε·40 = 5e-6 each); their mean keeps that
    // absolute error. Gradients are (σ(z) − y) / (B·L) ≤ 0.03: a few ulps.
    { atol: 1e-5, rtol: 1e-6, gradAtol: 1e-8, gradRtol: 1e-5 },
  );
});

Deno.test("multi-label label cells, predictions, metrics and ensemble, by hand", () => {
  const kind = kindOf(topics);
  deepStrictEqual([kind.outputs, kind.labelWidth, kind.labelType], [3, 3, "int64"]);
  deepStrictEqual(kind.readout, "pooled");
  deepStrictEqual(kind.hfConfig.problem_type, "multi_label_classification");
  const { examples } = topics.parse(
    "sentence\tlabels\nthe film and water\tfilm,nature\nnothing here\t\nthe man\tpeople\n",
    "t.tsv",
  );
  deepStrictEqual(examples.map((e) => e.label), [[1, 1, 0], [0, 0, 0], [0, 0, 1]]);
  throws(
    () => topics.parse("sentence\tlabels\nx\tfilm,news\n", "t.tsv"),
    /t\.tsv:2: label "news" is not one of topics's labels/,
  );
  deepStrictEqual(topics.formatPrediction([1, 0, 1]), "film,people");
  deepStrictEqual(topics.parsePrediction(" nature ", "p:1"), [0, 1, 0]);
  // Two rows: predicted [1,0,1],[0,1,0] against gold [1,1,0],[0,1,0]: TP 2, FP 1, FN 1.
  const logits = [2, -1, 0.5, -3, 4, -0.1];
  deepStrictEqual([...kind.predict(logits, 2)], [1, 0, 1, 0, 1, 0]);
  const gold = [1, 1, 0, 0, 1, 0];
  deepStrictEqual(microF1([1, 0, 1, 0, 1, 0], gold), 4 / 6);
  deepStrictEqual(exactMatch([1, 0, 1, 0, 1, 0], gold, 3), 0.5);
  deepStrictEqual(kind.score(logits, { n: 2, seq: 8, labels: gold }).metrics, {
    micro_f1: 4 / 6,
    exact_match: 0.5,
  });
  // Unlabelled (test) rows are not scored.
  deepStrictEqual(kind.score(logits, { n: 2, seq: 8, labels: [-1, -1, -1, 0, 1, 0] }).metrics, {});
  // max of the sigmoids = sigmoid of the max logit.
  deepStrictEqual([...kind.ensemble([[1, -2, 3], [-1, 2, 2]], 1, 8)], [1, 2, 3]);
  deepStrictEqual([...kind.ensemble([[1, -2, 3], [-1, 2, 2], [0, 5, -9]], 1, 8)], [1, 5, 3]);
  throws(
    () => kind.loss(null!, [0, 2, 1], (i) => `row ${i}`),
    /row 0 has label 2 outside \[0, 2\)/,
  );
});

Deno.test("multi-label end to end: fine-tune, capture, AP head and ensemble on generated topics", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shared = sharedDir();
    await makeTinyBert({
      out: `${dir}/bert`,
      seed: 2,
      layers: 2,
      hidden: 64,
      heads: 2,
      intermediate: 128,
      vocab: shared ? `${shared}/data/bert-base-uncased/vocab.txt` : undefined,
      maxPositions: 32,
    });
    await writeSyntheticTopics(`${dir}/data`, { train: 512, dev: 64, seed: 3 });
    const { results } = await reproduce({
      task: topics,
      model: `${dir}/bert`,
      dataDir: `${dir}/data`,
      out: `${dir}/results`,
      epochs: 4,
      batchSize: 16,
      lr: 1e-3,
      maxSeqLength: 16,
      adapterDim: 4,
      apEpochs: 4,
      apLr: 1e-2,
      silent: true,
    });
    deepStrictEqual(results.metricKeys, ["micro_f1", "exact_match"]);
    deepStrictEqual(results.rows.map((r) => r.model), ["BERT", "BERTVision (AP)", "Ensemble"]);
    // Chance: every label on scores micro-F1 2/3 and exact match 1/8 (each subset is 1/8 of
    // the rows). Measured: 1.0 everywhere with the real vocabulary; with the built-in one BERT
    // 0.85 / 0.53, AP 0.98 / 0.95, the ensemble 0.92 / 0.75.
    const [bert, ap, ensemble] = results.rows.map((r) => r.metrics);
    for (const [name, m, f1, em] of [["BERT", bert, 0.8, 0.4], ["AP", ap, 0.9, 0.8]] as const) {
      ok(m.micro_f1 > f1 && m.exact_match > em, `${name}: ${JSON.stringify(m)}`);
    }
    ok(ensemble.micro_f1 > 0.8 && ensemble.exact_match > 0.4, JSON.stringify(ensemble));
    // The store keeps one 0/1 per label; the checkpoint says what it is to Hugging Face.
    const store = await H5Reader.open(`${dir}/results/topics/activations/dev_full_f32.h5`);
    try {
      deepStrictEqual(store.labelWidth, 3);
      deepStrictEqual(store.attrs.label_type, "int64");
      deepStrictEqual([...store.readRows(0, 2).labels].length, 6);
    } finally {
      store.close();
    }
    const cfg = JSON.parse(
      await Deno.readTextFile(`${dir}/results/topics/bert/checkpoint-4/config.json`),
    );
    deepStrictEqual(cfg.problem_type, "multi_label_classification");
    deepStrictEqual(cfg.id2label, { "0": "film", "1": "nature", "2": "people" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
