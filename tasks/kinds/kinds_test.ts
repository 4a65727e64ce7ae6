// The head kinds by hand: the registry, what each task's kind says about heads, labels and the
// store, label cells and predictions, the saved logits layout, scoring (including unlabelled
// rows), and losses against closed forms.
import { deepStrictEqual, ok, throws } from "node:assert/strict";
import { getTask, TASK_NAMES } from "../mod.ts";
import { headKind, KIND_NAMES, kindOf } from "./mod.ts";
import { initGpu, Tensor } from "../../model/tensor.ts";

Deno.test("registry: every task names a kind, and each kind describes its heads", () => {
  deepStrictEqual([...KIND_NAMES], ["classification", "regression", "span", "multilabel"]);
  throws(() => headKind("ranking"), /unknown head kind "ranking" \(kinds: classification/);
  const rows = TASK_NAMES.map((n) => {
    const k = kindOf(getTask(n));
    return `${n} ${k.name} ${k.readout}(${k.outputs}) ${k.labelType}[${k.labelWidth}] ` +
      `T=${k.defaultMaxSeqLength} ${k.bertHeadNames[0]}`;
  });
  deepStrictEqual(rows, [
    "cola classification pooled(2) int64[1] T=128 classifier.weight",
    "sst2 classification pooled(2) int64[1] T=128 classifier.weight",
    "mrpc classification pooled(2) int64[1] T=128 classifier.weight",
    "stsb regression pooled(1) float32[1] T=128 classifier.weight",
    "qqp classification pooled(2) int64[1] T=128 classifier.weight",
    "mnli classification pooled(3) int64[1] T=128 classifier.weight",
    "qnli classification pooled(2) int64[1] T=128 classifier.weight",
    "rte classification pooled(2) int64[1] T=128 classifier.weight",
    "wnli classification pooled(2) int64[1] T=128 classifier.weight",
    "squad span token(2) int64[2] T=384 qa_outputs.weight",
  ]);
  deepStrictEqual(kindOf(getTask("mnli")).hfConfig.id2label, {
    "0": "contradiction",
    "1": "entailment",
    "2": "neutral",
  });
  deepStrictEqual(kindOf(getTask("stsb")).hfConfig.problem_type, "regression");
});

Deno.test("classification and regression: cells, predictions, scores, unlabelled rows", () => {
  const c = kindOf(getTask("rte")), r = kindOf(getTask("stsb"));
  deepStrictEqual(c.parseLabel("not_entailment", "f:2"), [1]);
  throws(() => c.parseLabel("maybe", "f:2"), /f:2: label "maybe" is not one of rte's labels/);
  deepStrictEqual(r.parseLabel(" 3.5", "f:2"), [3.5]);
  throws(() => r.parseLabel("", "f:3"), /f:3: score "" is not a number/);
  deepStrictEqual(c.formatPrediction([0]), "entailment");
  deepStrictEqual(r.formatPrediction([2.25]), "2.25");
  const logits = [0.2, 0.1, -1, 3, 5, 5]; // argmax 0, 1, 0 (a tie goes to the first class)
  deepStrictEqual([...c.predict(logits, 3)], [0, 1, 0]);
  deepStrictEqual(c.logitsShape(3, 128), [3, 2]);
  deepStrictEqual(c.score(logits, { n: 3, seq: 8, labels: [0, 1, 1] }).metrics, {
    accuracy: 2 / 3,
  });
  deepStrictEqual(c.score(logits, { n: 3, seq: 8, labels: [0, -1, 1] }).metrics, {});
  deepStrictEqual(r.score([1, 2, 3], { n: 3, seq: 8, labels: [1, 2, NaN] }).metrics, {});
  const m = r.score([1, 2, 3], { n: 3, seq: 8, labels: [2, 4, 6] }).metrics;
  ok(Math.abs(m.pearson - 1) < 1e-12 && Math.abs(m.spearman - 1) < 1e-12, JSON.stringify(m));
});

Deno.test("span: [B, 2, T] head output saved as [B, T, 2]; token accuracies without questions", () => {
  const k = kindOf(getTask("squad"));
  throws(() => k.parseLabel("1", "f:1"), /squad reads spans from SQuAD JSON/);
  // Two rows, T = 3: starts then ends per row.
  const out = Float32Array.of(0, 5, 1, 2, 0, 9, 7, 0, 0, 0, 0, 8);
  const saved = k.toSaved(out, 2, 3);
  deepStrictEqual([...saved], [0, 2, 5, 0, 1, 9, 7, 0, 0, 0, 0, 8]);
  deepStrictEqual(k.logitsShape(2, 3), [2, 3, 2]);
  deepStrictEqual([...k.predict(saved, 2)], [1, 2, 0, 2]);
  deepStrictEqual(k.score(saved, { n: 2, seq: 3, labels: [1, 2, 0, 1] }).metrics, {
    start_accuracy: 1,
    end_accuracy: 0.5,
    span_accuracy: 0.5,
  });
});

Deno.test("losses against closed forms, with labels that name their row", async () => {
  await initGpu();
  const c = kindOf(getTask("sst2")), s = kindOf(getTask("squad"));
  // CE of [0, ln 3] against class 1: -ln(3/4).
  const z = Tensor.from([0, Math.log(3)], [1, 2]);
  deepStrictEqual(
    Math.abs((await c.loss(z, [1], (i) => `row ${i}`).item()) + Math.log(0.75)) < 1e-6,
    true,
  );
  throws(
    () => c.loss(z, [-1], (i) => `dev.tsv row ${i}`),
    /dev.tsv row 0 has label -1 .*unlabelled/,
  );
  // Span: start and end rows each uniform over 4 tokens: loss ln 4.
  const sp = Tensor.zeros([1, 2, 4]);
  ok(Math.abs((await s.loss(sp, [1, 3], (i) => `w${i}`).item()) - Math.log(4)) < 1e-6);
  throws(() => s.loss(sp, [1, 4], (i) => `window ${i}`), /window 0 has label 4 outside \[0, 4\)/);
  [z, sp].forEach((t) => t.dispose());
});

Deno.test("meanLoss (the dev loss of --early-stop loss) is each kind's training loss, on the host", async () => {
  await initGpu();
  const where = (i: number) => `row ${i}`;
  // Awkward sizes; each kind's host loss on saved-layout logits against its GPU loss on the
  // heads' layout (float32 on the GPU: 1e-5).
  const near = (a: number, b: number, what: string) =>
    ok(Math.abs(a - b) < 1e-5 * (1 + Math.abs(b)), `${what}: ${a} vs ${b}`);
  const c = kindOf(getTask("mnli")); // 3 classes
  const zc = Float32Array.from({ length: 5 * 3 }, (_, i) => Math.sin(i) * 3);
  const yc = [0, 2, 1, 1, 0];
  const tc = Tensor.from(zc, [5, 3]);
  near(c.meanLoss(zc, yc, 5, 1), await c.loss(tc, yc, where).item(), "classification");
  ok(Number.isNaN(c.meanLoss(zc, [0, 1, -1, 0, 0], 5, 1)), "an unlabelled row: NaN");
  const r = kindOf(getTask("stsb"));
  const zr = Float32Array.from([0.5, 2, 4.5]), yr = [1, 2, 3];
  const tr = Tensor.from(zr, [3, 1]);
  near(r.meanLoss(zr, yr, 3, 1), await r.loss(tr, yr, where).item(), "regression");
  const s = kindOf(getTask("squad"));
  const T = 7, out = Float32Array.from({ length: 2 * 2 * T }, (_, i) => Math.cos(i * 1.3) * 2);
  const ys = [1, 6, 0, 3]; // [s0, e0, s1, e1]
  const ts = Tensor.from(out, [2, 2, T]);
  near(s.meanLoss(s.toSaved(out, 2, T), ys, 2, T), await s.loss(ts, ys, where).item(), "span");
  [tc, tr, ts].forEach((t) => t.dispose());
});
