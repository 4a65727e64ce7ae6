/**
 * gpu_check: what a software adapter cannot tell, measured in one run on a lent GPU.
 *
 *   ../shared/tools/device-prep.sh scripts/gpu_check.ts      # on this machine, once
 *   bash .device/run.sh gpu_check.js [--minutes 8]           # on the GPU machine (carry .device)
 *
 * 1. The planner against the real limits: the device's buffer limits and how each of the seed's
 *    shapes splits (BERT-base and BERT-large: SQuAD capture 16 × 384, fine-tuning 16 × 128,
 *    32 × 384, 16 × 384).
 * 2. The bench sections that matter on a GPU, in order of importance, each while time is left
 *    (`--minutes`, default 8, leaving the rest of a 10-minute call for start-up): `scale`
 *    (BERT-base and BERT-large capture and fine-tuning throughput, planned vs measured peak
 *    bytes), `ort` (BERT-base forward against onnxruntime-web's WebGPU provider, the strongest
 *    peer), `mixed` (f16-mixed against float32: matmul, BERT forward, a fine-tuning step),
 *    `capture` (f16 capture overhead), `stream` (head training from a store vs a stream),
 *    `matmul` (with the 4096³ cases), `kernels`, `train`, `bert`.
 * `--only a,b` keeps those sections (the bench's flags pass through: `--shapes`, `--quick`).
 * Results: one JSON object per line on stdout and in `$OUT/gpu_check.jsonl` (when `$OUT` is set),
 * and a table at the end. Record them, naming the GPU, in BENCHMARKS.md.
 * Cost: about 5–8 minutes on an H100/H200-class GPU.
 * @module
 */
import { getGpu } from "../kernels/device.ts";
import type { BertConfig } from "../model/config.ts";
import { bertRowTensors, limitsOf, splitBatch } from "../train/plan.ts";
import { SECTIONS } from "./bench.ts";
import { type BenchResult, formatTable, jsonLine, parseBenchArgs } from "./bench/common.ts";
import { BERT_BASE } from "./bench/bert.ts";

const ORDER = ["scale", "ort", "mixed", "capture", "stream", "matmul", "kernels", "train", "bert"];
const BERT_LARGE: BertConfig = {
  ...BERT_BASE,
  hiddenSize: 1024,
  numHiddenLayers: 24,
  numAttentionHeads: 16,
  intermediateSize: 4096,
};

async function main(argv: string[]): Promise<number> {
  const i = argv.indexOf("--minutes");
  const minutes = i >= 0 ? Number(argv[i + 1]) : 8;
  const rest = i >= 0 ? [...argv.slice(0, i), ...argv.slice(i + 2)] : argv;
  const args = parseBenchArgs(["--full", ...rest]);
  const gpu = await getGpu();
  const t0 = performance.now();
  const out = Deno.env.get("OUT");
  const lines: string[] = [];
  const say = (s: string) => console.log(s);
  say(`adapter: ${gpu.adapterName}${gpu.isFallback ? " (software fallback)" : ""}`);
  const lim = gpu.limits;
  say(
    `limits: maxStorageBufferBindingSize ${lim.maxStorageBufferBindingSize}, maxBufferSize ` +
      `${lim.maxBufferSize}, maxComputeWorkgroupStorageSize ${lim.maxComputeWorkgroupStorageSize}`,
  );
  const limits = limitsOf(gpu);
  for (const [tag, cfg] of [["base", BERT_BASE], ["large", BERT_LARGE]] as const) {
    for (
      const [what, batch, seq, layout] of [
        ["capture", 16, 384, "full"],
        ["fine-tune", 16, 128, undefined],
        ["fine-tune", 32, 384, undefined],
        ["fine-tune", 16, 384, undefined],
      ] as const
    ) {
      const s = splitBatch(what, batch, bertRowTensors(cfg, seq, layout), limits);
      say(
        `plan ${tag} ${what} ${batch}×${seq}: ${s.parts} micro-batch(es) of ≤ ${s.micro} ` +
          `(${s.largest.what}: ${(s.largest.bytesPerRow * s.micro / 2 ** 20).toFixed(1)} MiB)`,
      );
    }
  }
  const results: BenchResult[] = [];
  // `--only a,b` runs those sections of the order (e.g. `--only ort` to check the peer's bundle).
  for (const name of ORDER.filter((n) => !args.only.length || args.only.includes(n))) {
    const elapsed = (performance.now() - t0) / 60000;
    if (elapsed > minutes) {
      say(`== ${name}: skipped, ${elapsed.toFixed(1)} of ${minutes} minutes used`);
      continue;
    }
    const section = SECTIONS.find((s) => s.name === name)!;
    say(`== ${name}: ${section.title}`);
    try {
      await section.run({
        gpu,
        args,
        log: (m) => console.error(m),
        emit(r) {
          results.push(r);
          const line = jsonLine(r);
          lines.push(line);
          say(line);
        },
      });
    } catch (e) {
      say(`== ${name} failed: ${(e as Error).message}`);
    }
    if (out) await Deno.writeTextFile(`${out}/gpu_check.jsonl`, lines.join("\n") + "\n");
  }
  say("");
  say(formatTable(results));
  say(`total ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
