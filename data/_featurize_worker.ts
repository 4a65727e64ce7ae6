/**
 * Worker half of {@linkcode featurizeParallel}: loads the tokenizer of a model directory once,
 * featurises the chunks it is sent and transfers the arrays back.
 * @module
 */
import { loadTokenizer } from "./tokenize.ts";
import { featurize, type TextExample } from "./features.ts";

interface Job {
  modelDir: string;
  maxSeqLength: number;
  labelWidth: number;
  examples: TextExample[];
}

const self = globalThis as unknown as {
  onmessage: (e: MessageEvent<Job>) => void;
  postMessage: (m: unknown, transfer?: Transferable[]) => void;
};

self.onmessage = async (e) => {
  try {
    const tok = await loadTokenizer(e.data.modelDir);
    const f = featurize(e.data.examples, tok, e.data.maxSeqLength, e.data.labelWidth);
    const buffers = [f.inputIds, f.tokenTypeIds, f.attentionMask, f.labels].map((a) =>
      a.buffer as ArrayBuffer
    );
    self.postMessage({ ok: true, f }, buffers);
  } catch (err) {
    self.postMessage({ ok: false, error: String((err as Error).message ?? err) });
  }
};
