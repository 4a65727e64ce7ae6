// A few AdamW steps of a tiny BERT with a classification head reproduce the loss sequence of the
// same model and update written in TF.js ops (its own autodiff), weight decay groups and global
// norm clipping included.
import type * as tfType from "@tensorflow/tfjs";
import { assertClose, oracle } from "./helpers.ts";
import { randomHostWeights, tfBertForward, toTfWeights } from "./oracle/tf_bert.ts";
import { tfClassifierLoss } from "./oracle/tf_heads.ts";
import type { BertConfig } from "../model/config.ts";
import { BertModel } from "../model/bert.ts";
import { BertHead } from "../model/bert_head.ts";
import { AdamW } from "../model/optim.ts";
import { backward, initGpu, scope, Tensor } from "../model/tensor.ts";
import { getTask, kindOf } from "../tasks/mod.ts";
import { randn } from "./helpers.ts";

const cfg: BertConfig = {
  vocabSize: 50,
  hiddenSize: 16,
  numHiddenLayers: 2,
  numAttentionHeads: 2,
  intermediateSize: 24,
  maxPositionEmbeddings: 16,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

Deno.test("5 AdamW steps of BERT + classifier match TF.js's loss sequence", async () => {
  const tf = await oracle();
  await initGpu();
  const B = 4, S = 7, steps = 5;
  const h = { lr: 3e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01, maxNorm: 1.0 };
  const host = randomHostWeights(cfg, 4, 0.2);
  const clsW = randn(8, 2 * cfg.hiddenSize, 0.2), clsB = randn(9, 2, 0.1);
  const ids = Int32Array.from({ length: B * S }, (_, i) => (i % S === 0 ? 2 : 3 + ((i * 7) % 45)));
  const types = Int32Array.from({ length: B * S }, (_, i) => (i % S > 3 ? 1 : 0));
  const mask = Int32Array.from({ length: B * S }, (_, i) => (i % S < S - (i / S | 0) ? 1 : 0));
  const labels = Int32Array.from([0, 1, 1, 0]);
  const noDecay = (n: string) => n.endsWith(".bias") || n.includes("LayerNorm");

  // Ours.
  const bert = BertModel.fromHost(cfg, host, true);
  const kind = kindOf(getTask("sst2"));
  const head = new BertHead(
    { readout: kind.readout, outputs: kind.outputs, names: kind.bertHeadNames, what: "sst2" },
    Tensor.from(clsW, [2, cfg.hiddenSize], { requiresGrad: true, name: "classifier.weight" }),
    Tensor.from(clsB, [2], { requiresGrad: true, name: "classifier.bias" }),
  );
  const params = [...bert.parameters(), ...head.parameters()];
  const opt = new AdamW([
    { params: params.filter((p) => !noDecay(p.name)), weightDecay: h.wd },
    { params: params.filter((p) => noDecay(p.name)), weightDecay: 0 },
  ], { lr: h.lr, eps: h.eps, maxGradNorm: h.maxNorm });
  const ours: number[] = [];
  const batch = { inputIds: ids, tokenTypeIds: types, attentionMask: mask, batch: B, seq: S };
  for (let s = 0; s < steps; s++) {
    ours.push(
      await scope(async () => {
        const l = kind.loss(head.forward(bert.forward(batch)), labels, (i) => `row ${i}`);
        const v = await l.item();
        backward(l);
        opt.step();
        return v;
      }),
    );
  }
  opt.dispose();
  bert.dispose();
  head.dispose();

  // TF.js: the same forward, tf.variableGrads, and torch's AdamW written out in tf ops.
  const vars = toTfWeights(host, { trainable: true });
  vars["classifier.weight"] = tf.variable(tf.tensor(clsW, [2, cfg.hiddenSize]));
  vars["classifier.bias"] = tf.variable(tf.tensor(clsB, [2]));
  const m: Record<string, tfType.Tensor> = {}, v: Record<string, tfType.Tensor> = {};
  for (const k in vars) {
    m[k] = tf.zerosLike(vars[k]);
    v[k] = tf.zerosLike(vars[k]);
  }
  const theirs: number[] = [];
  for (let s = 1; s <= steps; s++) {
    const { value, grads } = tf.variableGrads(() => {
      const o = tfBertForward(cfg, vars, ids, types, mask, B, S);
      return tfClassifierLoss(o.pooled, vars["classifier.weight"], vars["classifier.bias"], labels);
    });
    theirs.push(value.dataSync()[0]);
    // variableGrads keys gradients by tf.Variable name; map them back to weight names.
    const byName = new Map(Object.entries(vars).map(([k, x]) => [(x as tfType.Variable).name, k]));
    for (const n of Object.keys(grads)) {
      const k = byName.get(n);
      if (k && k !== n) {
        grads[k] = grads[n];
        delete grads[n];
      }
    }
    const used = Object.keys(grads).filter((k) => grads[k] && k in vars);
    const norm = Math.sqrt(used.reduce((a, k) => a + tf.sum(tf.square(grads[k])).dataSync()[0], 0));
    const clip = Math.min(1, h.maxNorm / (norm + 1e-6));
    const bc1 = 1 - h.b1 ** s, bc2 = 1 - h.b2 ** s;
    tf.tidy(() => {
      for (const k of used) {
        const g = tf.mul(grads[k], clip);
        const mk = tf.add(tf.mul(m[k], h.b1), tf.mul(g, 1 - h.b1));
        const vk = tf.add(tf.mul(v[k], h.b2), tf.mul(tf.square(g), 1 - h.b2));
        tf.dispose([m[k], v[k]]);
        m[k] = tf.keep(mk);
        v[k] = tf.keep(vk);
        const decayed = tf.mul(vars[k], 1 - h.lr * (noDecay(k) ? 0 : h.wd));
        const step = tf.div(mk, tf.add(tf.div(tf.sqrt(vk), Math.sqrt(bc2)), h.eps));
        (vars[k] as tfType.Variable).assign(tf.sub(decayed, tf.mul(step, h.lr / bc1)));
      }
    });
    tf.dispose([value, ...used.map((k) => grads[k])]);
  }
  // Each step moves weights by ≤ lr; the loss sequences agree to float32 rounding amplified over
  // 5 steps (Adam's normalised update divides tiny gradient differences by √v): rtol 1e-4.
  assertClose(ours, theirs, { atol: 1e-5, rtol: 1e-4 }, "loss sequence");
  if (!(theirs[steps - 1] < theirs[0])) throw new Error(`loss did not fall: ${theirs}`);
  tf.dispose([...Object.values(vars), ...Object.values(m), ...Object.values(v)]);
});
