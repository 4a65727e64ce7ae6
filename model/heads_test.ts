// BERTVision heads on the kernels against the TF.js references in tests/oracle/tf_heads.ts:
// forward values and the gradient of every parameter (and of x) through Σ y·W for a fixed random
// W, at awkward sizes (L 3, T 7, F 13, D 5), shared and per-layer adapters, skip on/off, LP/AvgP,
// the "cls" layout; plus init, parameter counts and save/load.
import { deepStrictEqual, ok, rejects, throws } from "node:assert/strict";
import type * as tfType from "@tensorflow/tfjs";
import { assertClose, oracle, randn } from "../tests/helpers.ts";
import {
  tfApGlue,
  tfApSquad,
  tfAveragePooling,
  tfLearnedPooling,
  tfSpanLogits,
} from "../tests/oracle/tf_heads.ts";
import { tfLinear } from "../tests/oracle/tf_bert.ts";
import {
  BvHead,
  type HeadConfig,
  headParamCount,
  initHeadWeights,
  loadHead,
  resolveHeadConfig,
  saveHead,
} from "./heads.ts";
import { backward, initGpu, scope, Tensor } from "./tensor.ts";
import { mul, sumAll } from "./ops.ts";

const tf = await oracle();
await initGpu();

const B = 2, L = 3, T = 7, F = 13, D = 5;
// Sums of up to T·D·L = 105 products of O(1) terms in float32, and erf-approximation error of
// tf.erf in the GELU (≤ 1.5e-7 on Φ): a few 1e-6 absolute.
const TOL = { atol: 2e-5, rtol: 2e-4 };

type Tf = typeof tfType;
type Params = Record<string, tfType.Tensor>;

/** The TF.js reference of a head config: x + params → [B, N] or [B, 2, T]. */
function reference(tf: Tf, cfg: Required<HeadConfig>, x: tfType.Tensor, p: Params): tfType.Tensor {
  const bs = x.shape[0];
  const x4 = x.rank === 3 ? x.reshape([bs, cfg.layers, 1, cfg.features]) : x;
  const skip = cfg.skip ? { w: p["skip.weight"], b: p["skip.bias"] } : undefined;
  if (cfg.pooling === "ap") {
    if (cfg.readout === "pooled") {
      return tfApGlue(
        x4,
        p["adapter.weight"],
        p["adapter.bias"],
        p["classifier.weight"],
        p["classifier.bias"],
      );
    }
    const { start, end } = tfApSquad(
      x4,
      p["adapter.weight"],
      p["adapter.bias"],
      p["qa_outputs.weight"],
      p["qa_outputs.bias"],
      skip,
    );
    return tf.stack([start, end], 1);
  }
  const pooled = cfg.pooling === "lp"
    ? tfLearnedPooling(x4, p["pooling.layer_logits"], p["pooling.scale"])
    : tfAveragePooling(x4);
  if (cfg.readout === "pooled") {
    return tfLinear(pooled.reshape([bs, -1]), p["classifier.weight"], p["classifier.bias"]);
  }
  let { start, end } = tfSpanLogits(pooled, p["qa_outputs.weight"], p["qa_outputs.bias"]);
  if (skip) {
    const last = tf.slice(x4, [0, cfg.layers - 1, 0, 0], [bs, 1, cfg.tokens, cfg.features])
      .reshape([bs, cfg.tokens, cfg.features]);
    const s = tfSpanLogits(last, skip.w, skip.b);
    start = start.add(s.start);
    end = end.add(s.end);
  }
  return tf.stack([start, end], 1);
}

/** Forward and every gradient (parameters and x) of our head vs the reference. */
async function checkHead(name: string, config: HeadConfig, seed = 3, cls = false) {
  const cfg = resolveHeadConfig(config);
  const host = initHeadWeights(cfg, seed);
  // LP's logits start near 0 (uniform weights); spread them so a wrong softmax shows.
  if (cfg.pooling === "lp") {
    host.get("pooling.layer_logits")!.data.set([0.9, -0.4, 0.3]);
    host.get("pooling.scale")!.data[0] = 1.7;
  }
  const xShape = cls ? [B, L, F] : [B, L, T, F];
  const xData = randn(seed + 1, xShape.reduce((a, b) => a * b, 1));
  const head = BvHead.fromHost(cfg, host);
  const x = Tensor.from(xData, xShape, { requiresGrad: true, name: "x" });
  const ours = await scope(async () => {
    const y = head.forward(x);
    const w = Tensor.from(randn(seed + 1000, y.size), y.shape);
    backward(sumAll(mul(y, w)));
    return { y: await y.readF32(), w: await w.readF32(), shape: [...y.shape] };
  });
  const grads = new Map<string, Float32Array>();
  for (const [n, t] of head.params) {
    ok(t.grad, `${name}: parameter ${n} got no gradient`);
    grads.set(n, await t.grad.readF32());
  }
  const gx = await x.grad!.readF32();
  x.grad!.dispose();
  x.dispose();
  head.dispose();

  const names = [...host.keys()];
  const tx = tf.tensor(xData, xShape);
  const tp = names.map((n) => tf.tensor(host.get(n)!.data, host.get(n)!.shape));
  const asParams = (ts: tfType.Tensor[]) => Object.fromEntries(names.map((n, i) => [n, ts[i]]));
  const ty = reference(tf, cfg, tx, asParams(tp));
  deepStrictEqual(ours.shape, ty.shape, `${name}: output shape`);
  assertClose(ours.y, ty.dataSync(), TOL, `${name} forward`);
  const W = tf.tensor(ours.w, ty.shape);
  const f = (...ts: tfType.Tensor[]) =>
    tf.sum(tf.mul(reference(tf, cfg, ts[0], asParams(ts.slice(1))), W)) as tfType.Scalar;
  const tg = tf.grads(f)([tx, ...tp]);
  assertClose(gx, tg[0].dataSync(), TOL, `${name} d/dx`);
  names.forEach((n, i) => assertClose(grads.get(n)!, tg[i + 1].dataSync(), TOL, `${name} d/d${n}`));
  tf.dispose([tx, ...tp, ty, W, ...tg]);
}

const base = { layers: L, tokens: T, features: F, adapterDim: D };

Deno.test("AP_GLUE shared vs tfApGlue: values and every gradient", async () => {
  await checkHead("ap glue shared", {
    ...base,
    pooling: "ap",
    readout: "pooled",
    outputs: 3,
  });
});

Deno.test("AP_GLUE per-layer adapters vs tfApGlue", async () => {
  await checkHead("ap glue per-layer", {
    ...base,
    pooling: "ap",
    readout: "pooled",
    outputs: 3,
    shared: false,
  });
});

Deno.test("AP_GLUE regression (one output) on the cls layout [B, L, F]", async () => {
  await checkHead(
    "ap stsb cls",
    { ...base, tokens: 1, pooling: "ap", readout: "pooled", outputs: 1 },
    5,
    true,
  );
});

Deno.test("AP_SQuAD vs tfApSquad, shared and per-layer, skip off and on", async () => {
  for (const shared of [true, false]) {
    for (const skip of [false, true]) {
      await checkHead(`ap squad shared=${shared} skip=${skip}`, {
        ...base,
        pooling: "ap",
        readout: "token",
        outputs: 2,
        shared,
        skip,
      });
    }
  }
});

Deno.test("LP and AvgP with GLUE and span heads vs tfLearnedPooling / tfAveragePooling", async () => {
  for (const pooling of ["lp", "avg"] as const) {
    await checkHead(`${pooling} glue`, { ...base, pooling, readout: "pooled", outputs: 2 });
    await checkHead(`${pooling} squad skip`, {
      ...base,
      pooling,
      readout: "token",
      outputs: 2,
      skip: true,
    });
  }
});

Deno.test("init: PyTorch Linear bounds, seeded, per-name streams; LP starts near uniform", () => {
  const cfg: HeadConfig = { ...base, pooling: "ap", readout: "pooled", outputs: 2 };
  const a = initHeadWeights(cfg, 1), b = initHeadWeights(cfg, 1), c = initHeadWeights(cfg, 2);
  for (const [n, w] of a) {
    deepStrictEqual(w.data, b.get(n)!.data, `${n}: same seed, same values`);
    ok(w.data.some((v, i) => v !== c.get(n)!.data[i]), `${n}: another seed differs`);
  }
  const bound = (n: string, fan: number) => {
    const d = a.get(n)!.data;
    const m = d.reduce((x, v) => Math.max(x, Math.abs(v)), 0);
    ok(m <= 1 / Math.sqrt(fan) && m > 0.8 / Math.sqrt(fan), `${n}: max |w| ${m} vs 1/√${fan}`);
  };
  bound("adapter.weight", F);
  bound("adapter.bias", F);
  bound("classifier.weight", T * D * L);
  // The adapter does not depend on what sits above it (own stream per name).
  const span = initHeadWeights({ ...cfg, readout: "token", outputs: 2 }, 1);
  deepStrictEqual(span.get("adapter.weight")!.data, a.get("adapter.weight")!.data);
  const lp = initHeadWeights({ ...cfg, pooling: "lp" }, 1);
  deepStrictEqual([...lp.get("pooling.scale")!.data], [1]);
  ok(lp.get("pooling.layer_logits")!.data.every((v) => Math.abs(v) < 0.5));
});

Deno.test("parameter counts by formula, share of BERT, defaults", () => {
  const bertBase = 109_482_240;
  // AP_GLUE shared, BERT-base shapes, D 8, T 128, L 13: (768·8 + 8) + 2·(128·8·13) + 2.
  const glue = BvHead.create({
    pooling: "ap",
    readout: "pooled",
    outputs: 2,
    layers: 13,
    tokens: 128,
    features: 768,
    adapterDim: 8,
  }, 0);
  deepStrictEqual(glue.numParams, 768 * 8 + 8 + 2 * 128 * 8 * 13 + 2);
  const r = glue.report(bertBase);
  ok(r.fraction > 0.0002 && r.fraction < 0.0004, `share ${r.fraction}`);
  glue.dispose();
  // AP_SQuAD: adapter size defaults to tokens (386), Linear(386·25 → 2) for BERT-large.
  const sq = resolveHeadConfig({
    pooling: "ap",
    readout: "token",
    outputs: 2,
    layers: 25,
    tokens: 386,
    features: 1024,
  });
  deepStrictEqual(sq.adapterDim, 386);
  deepStrictEqual(headParamCount(sq), 1024 * 386 + 386 + 2 * 386 * 25 + 2);
  deepStrictEqual(
    headParamCount({ ...sq, shared: false, skip: true }),
    25 * (1024 * 386 + 386) + 2 * 386 * 25 + 2 + 2 * 1024 + 2,
  );
  deepStrictEqual(headParamCount({ ...sq, pooling: "avg" }), 2 * 1024 + 2);
  deepStrictEqual(headParamCount({ ...sq, pooling: "lp" }), 25 + 1 + 2 * 1024 + 2);
  throws(() => resolveHeadConfig({ ...sq, readout: "pooled", skip: true }), /skip/);
});

Deno.test("forward rejects a mismatched input, naming the expected shape", () => {
  const head = BvHead.create({ ...base, pooling: "ap", readout: "pooled", outputs: 2 }, 0);
  const x = Tensor.zeros([2, L, T + 1, F]);
  throws(() => head.forward(x), /does not match \[B, L=3, T=7, F=13\]/);
  x.dispose();
  head.dispose();
});

Deno.test("saveHead / loadHead round-trip the config and weights; bad files named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cfg: HeadConfig = { ...base, pooling: "ap", readout: "token", outputs: 2, skip: true };
    const head = BvHead.create(cfg, 9);
    await saveHead(`${dir}/h.safetensors`, head, { task: "squad" });
    const back = await loadHead(`${dir}/h.safetensors`);
    deepStrictEqual(back.config, head.config);
    const a = await head.toHost(), b = await back.toHost();
    for (const [n, w] of a) deepStrictEqual(b.get(n)!.data, w.data, n);
    head.dispose();
    back.dispose();
    await Deno.writeFile(`${dir}/bad.safetensors`, new Uint8Array(4));
    await rejects(loadHead(`${dir}/bad.safetensors`), /bad\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AdamW groups are chosen by name: a per-layer adapter bias [L, D] is a bias", () => {
  const names = (ps: Tensor[]) => ps.map((p) => p.name).sort();
  const cases: [HeadConfig, string[], string[]][] = [
    [
      { ...base, pooling: "ap", shared: false, readout: "pooled", outputs: 2 },
      ["adapter.weight", "classifier.weight"],
      ["adapter.bias", "classifier.bias"],
    ],
    [
      { ...base, pooling: "lp", readout: "token", outputs: 2, skip: true },
      ["qa_outputs.weight", "skip.weight"],
      ["pooling.layer_logits", "pooling.scale", "qa_outputs.bias", "skip.bias"],
    ],
  ];
  for (const [cfg, decayed, kept] of cases) {
    const head = BvHead.create(cfg, 3);
    try {
      if (cfg.pooling === "ap") deepStrictEqual(head.params.get("adapter.bias")!.shape, [L, D]);
      const [d, n] = head.paramGroups(0.5);
      deepStrictEqual([names(d.params), d.weightDecay], [decayed, 0.5], `${cfg.pooling}: decayed`);
      deepStrictEqual([names(n.params), n.weightDecay], [kept, 0], `${cfg.pooling}: not decayed`);
      // The seed's heads: every parameter decays.
      const [all, none] = head.paramGroups(0.5, true);
      deepStrictEqual(names(all.params), [...decayed, ...kept].sort());
      deepStrictEqual(none.params.length, 0);
    } finally {
      head.dispose();
    }
  }
});
