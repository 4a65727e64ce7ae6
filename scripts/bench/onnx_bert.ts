/**
 * A BERT encoder as an ONNX model, written from Hugging Face weights (the names and [out, in]
 * layouts of `model.safetensors`), so onnxruntime-web runs the same weights as ours in the bench.
 * Bench only: nothing in the product reads or writes ONNX.
 *
 * The graph is Hugging Face's `BertModel` written with standard ONNX operators (opset 17):
 *   embeddings  Gather(word, ids) + Gather(type, token types) + Gather(position, 0..S-1),
 *               LayerNormalization
 *   mask        (1 - attention_mask) · -10000 as [B, 1, 1, S], added to every head's scores
 *   each layer  Q, K, V = MatMul + Add; [B, S, A, D] → [B, A, S, D]; Softmax(QKᵀ/√D + mask) V;
 *               dense + residual + LayerNormalization; GELU as x·½·(1 + erf(x/√2)) (exact, as
 *               BERT); dense + residual + LayerNormalization
 *   pooler      tanh(dense(hidden[:, 0]))
 * Outputs: `hidden_0` (the embeddings) … `hidden_L` ([B, S, H] each) and `pooled` ([B, H]).
 * The sequence length is fixed when the model is written (the position ids are a constant);
 * the batch is free. Inputs are int64 `input_ids`, `token_type_ids`, `attention_mask` [B, S].
 *
 * The protobuf encoding is the minimum ONNX needs (varints, length-delimited fields, packed
 * int64s), following onnx/onnx.proto's field numbers. Checked by scripts/bench/ort_test.ts,
 * which runs the model in onnxruntime-web and compares every hidden state with ours.
 * @module
 */
import type { BertConfig, HostWeights } from "../../model/config.ts";
import { MASK_VALUE } from "../../model/bert.ts";

/** Protobuf writer: fields appended in order, messages nested as bytes. */
class Pb {
  #parts: Uint8Array[] = [];
  #len = 0;
  #push(b: Uint8Array): void {
    this.#parts.push(b);
    this.#len += b.length;
  }
  #varint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    const out: number[] = [];
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x) byte |= 0x80;
      out.push(byte);
    } while (x);
    this.#push(Uint8Array.from(out));
  }
  /** A varint field (int32, int64, enum). */
  int(field: number, v: number | bigint): this {
    this.#varint(field << 3);
    this.#varint(v);
    return this;
  }
  /** A 32-bit float field. */
  float(field: number, v: number): this {
    this.#varint((field << 3) | 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.#push(b);
    return this;
  }
  /** A length-delimited field: bytes, a string or a nested message. */
  bytes(field: number, v: Uint8Array | string | Pb): this {
    const b = typeof v === "string"
      ? new TextEncoder().encode(v)
      : v instanceof Pb
      ? v.finish()
      : v;
    this.#varint((field << 3) | 2);
    this.#varint(b.length);
    this.#push(b);
    return this;
  }
  /** A packed repeated int64 field. */
  packed(field: number, vs: number[]): this {
    const inner = new Pb();
    for (const v of vs) inner.#varint(v);
    return this.bytes(field, inner.finish());
  }
  /** The encoded message. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#len);
    let o = 0;
    for (const p of this.#parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** ONNX TensorProto.DataType values used here. */
const FLOAT = 1, INT64 = 7;

/** An ONNX TensorProto with raw little-endian data. */
function tensor(name: string, dims: number[], type: number, raw: Uint8Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d);
  return t.int(2, type).bytes(8, name).bytes(9, raw);
}

function f32Tensor(name: string, dims: number[], data: Float32Array): Pb {
  return tensor(name, dims, FLOAT, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

function i64Tensor(name: string, dims: number[], data: number[]): Pb {
  return tensor(name, dims, INT64, new Uint8Array(BigInt64Array.from(data, BigInt).buffer));
}

/** A ValueInfoProto of a tensor; a string dimension is symbolic (e.g. the batch). */
function valueInfo(name: string, type: number, dims: (number | string)[]): Pb {
  const shape = new Pb();
  for (const d of dims) {
    shape.bytes(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().bytes(2, d));
  }
  const tensorType = new Pb().int(1, type).bytes(2, shape);
  return new Pb().bytes(1, name).bytes(2, new Pb().bytes(1, tensorType));
}

/** An attribute: an int, a float or a list of ints. */
type Attr = number | { f: number } | number[];

/** Builds the graph's nodes, initializers and names. */
class Graph {
  nodes: Pb[] = [];
  inits: Pb[] = [];
  #n = 0;
  /** Adds a node and returns its output name. */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    const out = output ?? `t${this.#n++}`;
    const node = new Pb();
    for (const i of inputs) node.bytes(1, i);
    node.bytes(2, out).bytes(3, `${type}_${this.#n++}`).bytes(4, type);
    for (const [name, v] of Object.entries(attrs)) {
      const a = new Pb().bytes(1, name);
      if (Array.isArray(v)) a.packed(8, v).int(20, 7);
      else if (typeof v === "number") a.int(3, v).int(20, 2);
      else a.float(2, v.f).int(20, 1);
      node.bytes(5, a);
    }
    this.nodes.push(node);
    return out;
  }
  /** Adds a float initializer and returns its name. */
  f32(name: string, dims: number[], data: Float32Array): string {
    this.inits.push(f32Tensor(name, dims, data));
    return name;
  }
  /** Adds an int64 initializer and returns its name. */
  i64(name: string, dims: number[], data: number[]): string {
    this.inits.push(i64Tensor(name, dims, data));
    return name;
  }
}

/** [out, in] → [in, out], so MatMul(x, W) is x·Wᵀ with the same numbers. */
function transposed(w: { shape: number[]; data: Float32Array }): Float32Array {
  const [o, i] = w.shape;
  const t = new Float32Array(o * i);
  for (let r = 0; r < o; r++) for (let c = 0; c < i; c++) t[c * o + r] = w.data[r * i + c];
  return t;
}

/**
 * The ONNX model bytes of BERT `cfg` with `weights`, for sequences of length `seq`.
 *
 * @throws Error naming the first weight that is missing or of the wrong shape
 */
export function bertOnnx(cfg: BertConfig, weights: HostWeights, seq: number): Uint8Array {
  const H = cfg.hiddenSize, A = cfg.numAttentionHeads, D = H / A;
  const g = new Graph();
  const w = (name: string, shape: number[]) => {
    const t = weights.get(name);
    if (!t || t.shape.join() !== shape.join()) {
      throw new Error(
        `bertOnnx: weight ${name} is ${t ? `[${t.shape}]` : "missing"}, expected [${shape}]`,
      );
    }
    return t;
  };
  const vec = (name: string, n: number) => g.f32(name, [n], w(name, [n]).data);
  const dense = (x: string, name: string, out: number, inp: number) => {
    const wt = g.f32(`${name}.weight.T`, [inp, out], transposed(w(`${name}.weight`, [out, inp])));
    return g.op("Add", [g.op("MatMul", [x, wt]), vec(`${name}.bias`, out)]);
  };
  const layerNorm = (x: string, name: string) =>
    g.op("LayerNormalization", [x, vec(`${name}.weight`, H), vec(`${name}.bias`, H)], {
      axis: -1,
      epsilon: { f: cfg.layerNormEps },
    });
  const table = (name: string, rows: number) => g.f32(name, [rows, H], w(name, [rows, H]).data);

  // Embeddings.
  const word = g.op("Gather", [
    table("embeddings.word_embeddings.weight", cfg.vocabSize),
    "input_ids",
  ]);
  const type = g.op("Gather", [
    table("embeddings.token_type_embeddings.weight", cfg.typeVocabSize),
    "token_type_ids",
  ]);
  const posIds = g.i64("position_ids", [seq], Array.from({ length: seq }, (_, i) => i));
  const pos = g.op("Gather", [
    table("embeddings.position_embeddings.weight", cfg.maxPositionEmbeddings),
    posIds,
  ]);
  let h = layerNorm(g.op("Add", [g.op("Add", [word, type]), pos]), "embeddings.LayerNorm");
  const outputs = [g.op("Identity", [h], {}, "hidden_0")];

  // The additive mask [B, 1, 1, S].
  const one = g.f32("one", [], Float32Array.of(1));
  const maskF = g.op("Cast", ["attention_mask"], { to: FLOAT });
  const maskAdd = g.op("Mul", [
    g.op("Sub", [one, maskF]),
    g.f32("mask_value", [], Float32Array.of(MASK_VALUE)),
  ]);
  const mask4 = g.op("Unsqueeze", [maskAdd, g.i64("axes_12", [2], [1, 2])]);
  const heads = g.i64("shape_heads", [4], [0, 0, A, D]);
  const merged = g.i64("shape_merged", [3], [0, 0, H]);
  const scale = g.f32("inv_sqrt_d", [], Float32Array.of(1 / Math.sqrt(D)));
  const half = g.f32("half", [], Float32Array.of(0.5));
  const sqrt2 = g.f32("sqrt2", [], Float32Array.of(Math.SQRT2));

  for (let l = 0; l < cfg.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}.`;
    const split = (x: string, perm: number[]) =>
      g.op("Transpose", [g.op("Reshape", [x, heads])], { perm });
    const q = split(dense(h, `${p}attention.self.query`, H, H), [0, 2, 1, 3]);
    const kT = split(dense(h, `${p}attention.self.key`, H, H), [0, 2, 3, 1]);
    const v = split(dense(h, `${p}attention.self.value`, H, H), [0, 2, 1, 3]);
    const scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kT]), scale]), mask4]);
    const ctx = g.op("MatMul", [g.op("Softmax", [scores], { axis: -1 }), v]);
    const ctxMerged = g.op("Reshape", [g.op("Transpose", [ctx], { perm: [0, 2, 1, 3] }), merged]);
    const attn = dense(ctxMerged, `${p}attention.output.dense`, H, H);
    h = layerNorm(g.op("Add", [attn, h]), `${p}attention.output.LayerNorm`);
    const inter = dense(h, `${p}intermediate.dense`, cfg.intermediateSize, H);
    const erf = g.op("Erf", [g.op("Div", [inter, sqrt2])]);
    const gelu = g.op("Mul", [g.op("Mul", [inter, half]), g.op("Add", [erf, one])]);
    const out = dense(gelu, `${p}output.dense`, H, cfg.intermediateSize);
    h = layerNorm(g.op("Add", [out, h]), `${p}output.LayerNorm`);
    outputs.push(g.op("Identity", [h], {}, `hidden_${l + 1}`));
  }
  const cls = g.op("Gather", [h, g.i64("zero", [], [0])], { axis: 1 });
  outputs.push(g.op("Tanh", [dense(cls, "pooler.dense", H, H)], {}, "pooled"));

  const graph = new Pb();
  for (const n of g.nodes) graph.bytes(1, n);
  graph.bytes(2, "bert");
  for (const t of g.inits) graph.bytes(5, t);
  for (const name of ["input_ids", "token_type_ids", "attention_mask"]) {
    graph.bytes(11, valueInfo(name, INT64, ["batch", seq]));
  }
  for (const o of outputs) {
    graph.bytes(12, valueInfo(o, FLOAT, o === "pooled" ? ["batch", H] : ["batch", seq, H]));
  }
  return new Pb()
    .int(1, 8) // ir_version 8 (ONNX 1.10+), which opset 17 needs at least
    .bytes(2, "bertvision")
    .bytes(7, graph)
    .bytes(8, new Pb().bytes(1, "").int(2, 17))
    .finish();
}
