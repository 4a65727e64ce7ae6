/**
 * Checks the TF.js BERT oracle (`tf_bert.ts`) against a plain float64 TypeScript forward written
 * from the Hugging Face formulas, against float64 central finite differences for its gradients,
 * and for the invariances a BERT must have (appended padding changes nothing). The float64
 * reference is deliberately loop-per-element: slow, obvious, and sharing no code with the oracle.
 */
import * as tf from "@tensorflow/tfjs";
import assert from "node:assert/strict";
import type { BertConfig, HostWeights } from "../../model/config.ts";
import {
  MASK_VALUE,
  mulberry32,
  randomHostWeights,
  tfBertBenchmark,
  tfBertForward,
  toTfWeights,
} from "./tf_bert.ts";

// The oracle's gradients are only available on CPU; pin it so an imported WebGPU backend (higher
// priority) can never become the default under our feet.
await tf.setBackend("cpu");

// ---------------------------------------------------------------------------------------------
// float64 reference

/** erf in float64: Maclaurin series for |x| < 3, continued fraction for erfc beyond (≤1e-15). */
function erf64(x: number): number {
  const s = Math.sign(x), a = Math.abs(x);
  if (a < 3) {
    let sum = 0, term = a;
    for (let n = 0; n < 200; n++) {
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17 * Math.abs(sum)) break;
      term *= -a * a / (n + 1);
    }
    return s * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (a + f);
  return s * (1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f));
}

type W64 = Map<string, Float64Array>;
interface RefOpts {
  gelu?: "erf" | "tanh";
  maskValue?: number;
}

function to64(host: HostWeights): W64 {
  const m: W64 = new Map();
  for (const [k, v] of host) m.set(k, Float64Array.from(v.data));
  return m;
}

/** float64 BERT forward. Returns hidden[l][(b·S + s)·H + h] and pooled[b·H + h]. */
function refForward(
  cfg: BertConfig,
  w: W64,
  ids: Int32Array,
  types: Int32Array,
  mask: Int32Array,
  B: number,
  S: number,
  opts: RefOpts = {},
): { hidden: Float64Array[]; pooled: Float64Array } {
  const H = cfg.hiddenSize, A = cfg.numAttentionHeads, d = H / A;
  // Written out rather than imported: the reference must not follow a changed oracle constant.
  const maskValue = opts.maskValue ?? -10000;
  const g = (n: string) => w.get(n)!;
  // y[r, o] = Σ_i x[r, i]·W[o, i] + b[o]   (PyTorch Linear, W [out, in])
  const linear = (x: Float64Array, rows: number, inF: number, name: string) => {
    const W = g(name + ".weight"), b = g(name + ".bias"), outF = b.length;
    const y = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        let acc = b[o];
        for (let i = 0; i < inF; i++) acc += x[r * inF + i] * W[o * inF + i];
        y[r * outF + o] = acc;
      }
    }
    return y;
  };
  const layerNorm = (x: Float64Array, rows: number, name: string) => {
    const gam = g(name + ".weight"), bet = g(name + ".bias");
    const y = new Float64Array(x.length);
    for (let r = 0; r < rows; r++) {
      let mu = 0;
      for (let i = 0; i < H; i++) mu += x[r * H + i];
      mu /= H;
      let v = 0;
      for (let i = 0; i < H; i++) v += (x[r * H + i] - mu) ** 2;
      v /= H; // biased, as torch.nn.LayerNorm
      const inv = 1 / Math.sqrt(v + cfg.layerNormEps);
      for (let i = 0; i < H; i++) y[r * H + i] = (x[r * H + i] - mu) * inv * gam[i] + bet[i];
    }
    return y;
  };
  const gelu = (x: number) =>
    opts.gelu === "tanh"
      ? 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
      : 0.5 * x * (1 + erf64(x / Math.SQRT2));

  const rows = B * S;
  const emb = new Float64Array(rows * H);
  const we = g("embeddings.word_embeddings.weight");
  const pe = g("embeddings.position_embeddings.weight");
  const te = g("embeddings.token_type_embeddings.weight");
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const r = b * S + s;
      for (let i = 0; i < H; i++) {
        emb[r * H + i] = we[ids[r] * H + i] + pe[s * H + i] + te[types[r] * H + i];
      }
    }
  }
  let x = layerNorm(emb, rows, "embeddings.LayerNorm");
  const hidden = [x];
  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const q = linear(x, rows, H, p + "attention.self.query");
    const k = linear(x, rows, H, p + "attention.self.key");
    const v = linear(x, rows, H, p + "attention.self.value");
    const ctx = new Float64Array(rows * H);
    for (let b = 0; b < B; b++) {
      for (let a = 0; a < A; a++) {
        for (let i = 0; i < S; i++) {
          const sc = new Float64Array(S);
          let mx = -Infinity;
          for (let j = 0; j < S; j++) {
            let dot = 0;
            for (let e = 0; e < d; e++) {
              dot += q[(b * S + i) * H + a * d + e] * k[(b * S + j) * H + a * d + e];
            }
            sc[j] = dot / Math.sqrt(d) + (1 - mask[b * S + j]) * maskValue;
            mx = Math.max(mx, sc[j]);
          }
          let z = 0;
          for (let j = 0; j < S; j++) z += sc[j] = Math.exp(sc[j] - mx);
          for (let e = 0; e < d; e++) {
            let acc = 0;
            for (let j = 0; j < S; j++) acc += (sc[j] / z) * v[(b * S + j) * H + a * d + e];
            ctx[(b * S + i) * H + a * d + e] = acc;
          }
        }
      }
    }
    const ao = linear(ctx, rows, H, p + "attention.output.dense");
    for (let i = 0; i < ao.length; i++) ao[i] += x[i];
    const attn = layerNorm(ao, rows, p + "attention.output.LayerNorm");
    const inter = linear(attn, rows, H, p + "intermediate.dense").map(gelu);
    const out = linear(inter, rows, cfg.intermediateSize, p + "output.dense");
    for (let i = 0; i < out.length; i++) out[i] += attn[i];
    x = layerNorm(out, rows, p + "output.LayerNorm");
    hidden.push(x);
  }
  const cls = new Float64Array(B * H);
  for (let b = 0; b < B; b++) for (let i = 0; i < H; i++) cls[b * H + i] = x[b * S * H + i];
  const pooled = linear(cls, B, H, "pooler.dense").map(Math.tanh);
  return { hidden, pooled };
}

// ---------------------------------------------------------------------------------------------
// helpers

/** Max |a-b| and the first few pairs beyond atol + rtol·|b| (llm.c style), for messages. */
function compare(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number) {
  assert.equal(got.length, want.length, "length");
  let maxDiff = 0;
  const bad: string[] = [];
  for (let i = 0; i < want.length; i++) {
    const diff = Math.abs(got[i] - want[i]);
    maxDiff = Math.max(maxDiff, diff);
    if (!(diff <= atol + rtol * Math.abs(want[i])) && bad.length < 5) {
      bad.push(`[${i}] got ${got[i]} want ${want[i]}`);
    }
  }
  return { maxDiff, bad };
}

function assertClose(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  atol: number,
  rtol: number,
  what: string,
) {
  const { maxDiff, bad } = compare(got, want, atol, rtol);
  assert.ok(
    bad.length === 0,
    `${what}: max |diff| ${maxDiff}; first mismatches: ${bad.join(", ")}`,
  );
}

function tinyConfig(layers: number): BertConfig {
  return {
    vocabSize: 11,
    hiddenSize: 4,
    numHiddenLayers: layers,
    numAttentionHeads: 2,
    intermediateSize: 8,
    maxPositionEmbeddings: 8,
    typeVocabSize: 2,
    layerNormEps: 1e-12,
    hiddenAct: "gelu",
  };
}

// Two sequences of 5: the second padded after 3 tokens; id 7 repeats (gather-grad accumulation).
const B = 2, S = 5;
const IDS = Int32Array.from([1, 7, 3, 7, 2, 1, 9, 2, 0, 0]);
const TYPES = Int32Array.from([0, 0, 1, 1, 1, 0, 1, 1, 0, 0]);
const MASK = Int32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
// std 0.5 (not BERT's 0.02) so attention is far from uniform and GELU sees |x| ~ 1..3, where a
// wrong mask, a missing 1/√d or the tanh GELU visibly change the output.
const STD = 0.5;

// ---------------------------------------------------------------------------------------------
// tests

Deno.test("MASK_VALUE is BERT's -10000 (the WGSL attention kernel relies on it)", () => {
  // Padding tests cannot see this: exp(-100) already underflows to ~0 in float32. Pin it here.
  assert.equal(MASK_VALUE, -10000);
});

Deno.test("erf64 reference matches known values", () => {
  // Values from Abramowitz & Stegun table 7.1 / mpmath; the float64 reference must be exact to
  // ~1e-15 or it cannot judge a float32 oracle.
  assert.ok(Math.abs(erf64(0.5) - 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(erf64(1) - 0.8427007929497149) < 1e-15);
  assert.ok(Math.abs(erf64(-2) + 0.9953222650189527) < 1e-15);
  assert.ok(Math.abs(erf64(3.5) - 0.9999992569016276) < 1e-15);
});

Deno.test("tf.erf float32 error is within Abramowitz-Stegun 7.1.26's bound", () => {
  const xs = Array.from({ length: 1201 }, (_, i) => (i - 600) / 100);
  const y = tf.tidy(() => tf.erf(tf.tensor1d(xs)).dataSync());
  let maxErr = 0;
  xs.forEach((x, i) => maxErr = Math.max(maxErr, Math.abs(y[i] - erf64(x))));
  // 1.5e-7 (the approximation) + ~6e-8 (float32 half-ulp near 1): measured 1.7e-7.
  assert.ok(maxErr < 2.5e-7, `tf.erf max abs error ${maxErr}`);
});

for (const layers of [1, 2]) {
  Deno.test(`tfBertForward matches the float64 reference (${layers} layer, H=4, 2 heads)`, () => {
    const cfg = tinyConfig(layers);
    const host = randomHostWeights(cfg, 42, STD);
    const ref = refForward(cfg, to64(host), IDS, TYPES, MASK, B, S);
    tf.tidy(() => {
      const out = tfBertForward(cfg, toTfWeights(host), IDS, TYPES, MASK, B, S);
      assert.equal(out.hidden.length, layers + 1);
      for (let l = 0; l <= layers; l++) {
        assert.deepEqual(out.hidden[l].shape, [B, S, 4]);
        // Post-LayerNorm values are O(1); float32 rounding through a few short sums stays
        // ~1e-6, so 1e-5 catches any formula error while allowing float32.
        assertClose(out.hidden[l].dataSync(), ref.hidden[l], 1e-5, 1e-5, `hidden[${l}]`);
      }
      assert.deepEqual(out.pooled.shape, [B, 4]);
      assertClose(out.pooled.dataSync(), ref.pooled, 1e-5, 1e-5, "pooled"); // same reason
    });
  });
}

Deno.test("the comparison can fail: tanh GELU or no mask differ by far more than 1e-5", () => {
  const cfg = tinyConfig(1);
  const host = randomHostWeights(cfg, 42, STD);
  const got = tf.tidy(() =>
    tfBertForward(cfg, toTfWeights(host), IDS, TYPES, MASK, B, S).hidden[1].dataSync()
  );
  for (const opts of [{ gelu: "tanh" as const }, { maskValue: 0 }]) {
    const ref = refForward(cfg, to64(host), IDS, TYPES, MASK, B, S, opts);
    const { maxDiff } = compare(got, ref.hidden[1], 1e-5, 1e-5);
    // 10× the tolerance above: these variants must be told apart from the real thing.
    assert.ok(maxDiff > 1e-4, `${JSON.stringify(opts)} only differs by ${maxDiff}`);
  }
});

Deno.test("appending [PAD] tokens with mask 0 leaves real positions unchanged", () => {
  const cfg = { ...tinyConfig(2), hiddenSize: 8, intermediateSize: 16 };
  const host = randomHostWeights(cfg, 7, STD);
  const s0 = 4, s1 = 7; // 3 padding positions appended
  const ids0 = Int32Array.from([2, 5, 9, 3, 4, 1, 8, 0]);
  const types0 = Int32Array.from([0, 0, 1, 1, 0, 1, 1, 1]);
  const mask0 = Int32Array.from([1, 1, 1, 1, 1, 1, 1, 0]); // 2nd row already has one pad
  const pad = (a: Int32Array, fill: number) => {
    const out = new Int32Array(2 * s1).fill(fill);
    for (let b = 0; b < 2; b++) out.set(a.subarray(b * s0, (b + 1) * s0), b * s1);
    return out;
  };
  tf.tidy(() => {
    const w = toTfWeights(host);
    const short = tfBertForward(cfg, w, ids0, types0, mask0, 2, s0);
    // Pad id 0 / type 0 like a tokenizer; differing types on pads must not matter either.
    const long = tfBertForward(cfg, w, pad(ids0, 0), pad(types0, 1), pad(mask0, 0), 2, s1);
    for (let l = 0; l < short.hidden.length; l++) {
      const cut = long.hidden[l].slice([0, 0, 0], [2, s0, cfg.hiddenSize]);
      // exp(-10000 + O(1)) is exactly 0 in float32, so only summation order differs: 1e-6.
      assertClose(cut.dataSync(), short.hidden[l].dataSync(), 1e-6, 1e-6, `hidden[${l}]`);
    }
    assertClose(long.pooled.dataSync(), short.pooled.dataSync(), 1e-6, 1e-6, "pooled");
  });
});

Deno.test("tf.variableGrads matches float64 central finite differences", () => {
  const cfg = tinyConfig(2);
  const host = randomHostWeights(cfg, 3, STD);
  const rows = B * S * cfg.hiddenSize;
  const rand = mulberry32(9);
  // loss = Σ hidden[L]·R + Σ pooled·P with fixed random R, P: every output element matters.
  const R = Float64Array.from({ length: rows }, () => rand() - 0.5);
  const P = Float64Array.from({ length: B * cfg.hiddenSize }, () => rand() - 0.5);
  const refLoss = (w: W64) => {
    const o = refForward(cfg, w, IDS, TYPES, MASK, B, S);
    let s = 0;
    o.hidden[cfg.numHiddenLayers].forEach((v, i) => s += v * R[i]);
    o.pooled.forEach((v, i) => s += v * P[i]);
    return s;
  };

  const vars = toTfWeights(host, { trainable: true });
  const { value, grads } = tf.variableGrads(() =>
    tf.tidy(() => {
      const o = tfBertForward(cfg, vars, IDS, TYPES, MASK, B, S);
      return o.hidden[cfg.numHiddenLayers].mul(
        tf.tensor(Float32Array.from(R), [B, S, cfg.hiddenSize]),
      )
        .sum().add(
          o.pooled.mul(tf.tensor(Float32Array.from(P), [B, cfg.hiddenSize])).sum(),
        ) as tf.Scalar;
    })
  );
  const w64 = to64(host);
  // float64 reference loss agrees with the float32 one before we compare slopes.
  assert.ok(Math.abs(value.dataSync()[0] - refLoss(w64)) < 1e-4);

  const h = 1e-5; // float64: truncation ~h²·f''' ≈ 1e-10, rounding ~1e-16/h ≈ 1e-11
  const checks: [string, number][] = [
    ["embeddings.word_embeddings.weight", 7 * 4 + 1], // id 7 occurs twice: grads must add
    ["embeddings.word_embeddings.weight", 10 * 4 + 2], // id 10 unused: grad exactly 0
    ["embeddings.position_embeddings.weight", 2 * 4 + 3],
    ["embeddings.token_type_embeddings.weight", 1 * 4 + 0],
    ["embeddings.LayerNorm.weight", 1],
    ["embeddings.LayerNorm.bias", 2],
    ["encoder.layer.0.attention.self.query.weight", 5],
    ["encoder.layer.0.attention.self.key.weight", 9],
    ["encoder.layer.0.attention.self.key.bias", 0], // softmax shift-invariance: grad ≈ 0
    ["encoder.layer.0.attention.self.value.bias", 3],
    ["encoder.layer.0.attention.output.dense.weight", 6],
    ["encoder.layer.0.attention.output.LayerNorm.weight", 0],
    ["encoder.layer.1.intermediate.dense.weight", 17],
    ["encoder.layer.1.intermediate.dense.bias", 4],
    ["encoder.layer.1.output.dense.weight", 30],
    ["encoder.layer.1.output.LayerNorm.bias", 3],
    ["pooler.dense.weight", 10],
    ["pooler.dense.bias", 1],
  ];
  const bad: string[] = [];
  for (const [name, idx] of checks) {
    const g = grads[vars[name].name];
    assert.ok(g, `no gradient for ${name}`);
    const got = g.dataSync()[idx];
    const w = w64.get(name)!;
    const orig = w[idx];
    w[idx] = orig + h;
    const up = refLoss(w64);
    w[idx] = orig - h;
    const down = refLoss(w64);
    w[idx] = orig;
    const fd = (up - down) / (2 * h);
    // float32 backprop through 2 layers of LayerNorm/softmax accumulates ~1e-6 relative error per
    // op on O(1) values; 1e-4 abs + 1e-3 rel leaves margin yet catches any wrong formula.
    if (!(Math.abs(got - fd) <= 1e-4 + 1e-3 * Math.abs(fd))) {
      bad.push(`${name}[${idx}] tf ${got} fd ${fd}`);
    }
  }
  assert.deepEqual(bad, []);
  tf.dispose([value, ...Object.values(grads), ...Object.values(vars)]);
});

Deno.test("tf.grads gives every parameter a gradient of matching shape", () => {
  const cfg = tinyConfig(2);
  const host = randomHostWeights(cfg, 5);
  const names = [...host.keys()];
  const ws = toTfWeights(host);
  const gs = tf.grads((...ts: tf.Tensor[]) => {
    const rec = Object.fromEntries(names.map((n, i) => [n, ts[i]]));
    const o = tfBertForward(cfg, rec, IDS, TYPES, MASK, B, S);
    return o.pooled.square().sum().add(o.hidden[2].sum());
  })(names.map((n) => ws[n]));
  gs.forEach((g, i) => {
    assert.deepEqual(g.shape, host.get(names[i])!.shape, names[i]);
    assert.ok(g.dataSync().every(Number.isFinite), names[i]);
  });
  tf.dispose([...gs, ...Object.values(ws)]);
});

Deno.test("randomHostWeights is seeded and has the documented statistics", () => {
  const cfg = { ...tinyConfig(1), hiddenSize: 64, intermediateSize: 128 };
  const a = randomHostWeights(cfg, 1), b = randomHostWeights(cfg, 1), c = randomHostWeights(cfg, 2);
  const q = (w: HostWeights) => w.get("encoder.layer.0.attention.self.query.weight")!.data;
  assert.deepEqual(q(a), q(b));
  assert.notDeepEqual(q(a), q(c));
  const std = Math.sqrt(q(a).reduce((s, v) => s + v * v, 0) / q(a).length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`); // 4096 samples: ~1% sampling error
  const ln = a.get("embeddings.LayerNorm.weight")!.data;
  assert.ok(ln.every((v) => Math.abs(v - 1) < 0.1) && ln.some((v) => v !== 1));
  const bias = a.get("pooler.dense.bias")!.data;
  assert.ok(bias.every((v) => Math.abs(v) < 0.1) && bias.every((v) => v !== 0));
});

Deno.test("tfBertForward rejects bad lengths and dropout", () => {
  const cfg = tinyConfig(1);
  const w = toTfWeights(randomHostWeights(cfg, 1));
  assert.throws(() => tfBertForward(cfg, w, IDS, TYPES, MASK, B, S + 1), /inputIds/);
  assert.throws(() => tfBertForward(cfg, w, IDS, TYPES, MASK, B, S, { dropout: 0.1 }), /dropout/);
  tf.dispose(Object.values(w));
});

Deno.test("tfBertBenchmark on cpu returns a finite rate and restores the backend", async () => {
  const cfg = { ...tinyConfig(2), hiddenSize: 16, intermediateSize: 32, maxPositionEmbeddings: 16 };
  const { seqPerSec } = await tfBertBenchmark(cfg, 2, 9, 2, "cpu");
  assert.ok(Number.isFinite(seqPerSec) && seqPerSec > 0, `${seqPerSec}`);
  assert.equal(tf.getBackend(), "cpu");
});

// WebGPU: the same forward must run unchanged and agree with CPU. Skipped when no adapter.
const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
Deno.test({
  name: "tfBertForward runs unchanged on the webgpu backend and agrees with cpu",
  ignore: !adapter,
  sanitizeOps: false, // the WebGPU backend keeps device callbacks alive across tests
  sanitizeResources: false,
  async fn() {
    await import("@tensorflow/tfjs-backend-webgpu");
    // Odd sizes (S=7, H=24, I=40) so no tile size divides them.
    const cfg: BertConfig = {
      ...tinyConfig(2),
      hiddenSize: 24,
      numAttentionHeads: 3,
      intermediateSize: 40,
      vocabSize: 30,
    };
    const host = randomHostWeights(cfg, 11, 0.2);
    const bb = 3, ss = 7;
    const rand = mulberry32(4);
    const ids = Int32Array.from({ length: bb * ss }, () => Math.floor(rand() * 30));
    const types = Int32Array.from({ length: bb * ss }, (_, i) => (i % ss) > 3 ? 1 : 0);
    const mask = Int32Array.from(
      { length: bb * ss },
      (_, i) => (i % ss) < ss - (i / ss | 0) ? 1 : 0,
    );
    const run = async () => {
      const w = toTfWeights(host);
      const o = tfBertForward(cfg, w, ids, types, mask, bb, ss);
      const res = [...await o.hidden[2].data(), ...await o.pooled.data()];
      tf.dispose([...o.hidden, o.pooled, ...Object.values(w)]);
      return res;
    };
    const cpu = await run();
    assert.ok(await tf.setBackend("webgpu"), "webgpu backend failed to initialise");
    try {
      const gpu = await run();
      // Same float32 math, different summation order and exp/erf/rsqrt implementations: 1e-4.
      assertClose(gpu, cpu, 1e-4, 1e-4, "webgpu vs cpu");
      const { seqPerSec } = await tfBertBenchmark(cfg, 2, 7, 2, "webgpu");
      assert.ok(Number.isFinite(seqPerSec) && seqPerSec > 0);
    } finally {
      await tf.setBackend("cpu");
    }
  },
});
