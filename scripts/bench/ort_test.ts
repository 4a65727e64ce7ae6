// The ONNX BERT of scripts/bench/onnx_bert.ts, run by onnxruntime-web (a third, independent
// BERT: Microsoft's kernels, on the CPU through WebAssembly), against ours on the GPU, from the
// same Hugging Face checkpoint: every hidden state and the pooled output, with padding.
import { strictEqual } from "node:assert/strict";
import { type BertBatch, BertModel } from "../../model/bert.ts";
import type { BertConfig } from "../../model/config.ts";
import { loadBertCheckpoint, saveBertCheckpoint } from "../../model/checkpoint.ts";
import { initGpu, noGrad, scope } from "../../model/tensor.ts";
import { randomHostWeights } from "../../tests/oracle/tf_bert.ts";
import { bertOnnx } from "./onnx_bert.ts";

// Awkward sizes: 3 heads of 12, an intermediate of 37, 3 layers, 11 tokens.
const CFG: BertConfig = {
  vocabSize: 101,
  hiddenSize: 36,
  numHiddenLayers: 3,
  numAttentionHeads: 3,
  intermediateSize: 37,
  maxPositionEmbeddings: 40,
  typeVocabSize: 2,
  layerNormEps: 1e-12,
  hiddenAct: "gelu",
};

// onnxruntime-web is a bench dependency fetched from npm: skip, saying why, where it cannot load.
let ort: typeof import("./ort.ts") | null = null;
let why = "";
try {
  ort = await import("./ort.ts");
} catch (e) {
  why = (e as Error).message.split("\n")[0];
}

Deno.test({
  name: "onnxruntime-web runs our ONNX BERT: every hidden state and the pooled output match ours",
  ignore: ort === null,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await saveBertCheckpoint(dir, CFG, randomHostWeights(CFG, 7, 0.3));
      const { weights } = await loadBertCheckpoint(dir);
      const [B, S] = [3, 11];
      const b: BertBatch = {
        inputIds: Int32Array.from({ length: B * S }, (_, i) => (i * 37 + 5) % CFG.vocabSize),
        tokenTypeIds: Int32Array.from({ length: B * S }, (_, i) => (i % S) >= 6 ? 1 : 0),
        // Rows with 11, 7 and 1 real tokens.
        attentionMask: Int32Array.from(
          { length: B * S },
          (_, i) => (i % S) < [11, 7, 1][Math.floor(i / S)] ? 1 : 0,
        ),
        batch: B,
        seq: S,
      };
      await initGpu();
      const model = BertModel.fromHost(CFG, weights);
      const outs = noGrad(() =>
        scope(() => {
          const o = model.forward(b);
          return [...o.hidden, o.pooled];
        })
      );
      const ours: Float32Array[] = [];
      for (const t of outs) ours.push(await t.readF32());
      outs.forEach((t) => t.dispose());
      model.dispose();

      const session = await ort!.ortSession(bertOnnx(CFG, weights, S), "wasm");
      const names = [
        ...Array.from({ length: CFG.numHiddenLayers + 1 }, (_, l) => `hidden_${l}`),
        "pooled",
      ];
      const res = await session.run(ort!.ortFeeds(b, B, S), names);
      await session.release();
      // Weights of std 0.3 make the attention peaked and the activations large; both sides are
      // float32 in other orders: the bench's tolerance (2e-4 + 1e-3·|x|) holds with room.
      names.forEach((n, i) => {
        const peer = res[n].data as Float32Array;
        strictEqual(peer.length, ours[i].length, n);
        strictEqual(ort!.worstMismatch(ours[i], peer), null, `${n}: ours vs onnxruntime`);
      });
      // The comparison can fail: a perturbed output is caught.
      const bent = ours[2].slice();
      bent[5] += 0.01;
      strictEqual(typeof ort!.worstMismatch(bent, res["hidden_2"].data as Float32Array), "string");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (ort === null) console.log(`ort_test: onnxruntime-web did not load (${why}); skipped`);
