/**
 * bench: our WebGPU kernels and model against TensorFlow.js's WebGPU backend on the same
 * adapter, in the same run. Sections live in scripts/bench/ and are selected with `--only`.
 *
 *   deno task bench                          # every section, readable table
 *   deno task bench -- --only matmul --shapes 4096x
 *   deno task bench -- --only kernels        # memory-bound kernels in GB/s
 *   deno task bench -- --only ort            # BERT forward vs onnxruntime-web's WebGPU provider
 *   deno task bench -- --only scale          # the seed's real shapes (slow; only when asked)
 *   deno task bench -- --quick               # one small case per section (smoke run)
 *   deno task bench -- --full                # also the 32·128-token matmuls on llvmpipe
 *   deno task bench -- --json                # one JSON object per result line on stdout
 *
 * Also runs as a standalone bundle (`deno bundle`, then `deno run -A --no-config bench.js`),
 * so nothing here reads deno.json at run time.
 * @module
 */
import { getGpu, NoAdapterError } from "../kernels/device.ts";
import {
  type BenchArgs,
  type BenchResult,
  fmtNum,
  formatTable,
  jsonLine,
  parseBenchArgs,
  type Section,
} from "./bench/common.ts";
import { matmulSection } from "./bench/matmul.ts";
import { kernelsSection } from "./bench/kernels.ts";
import { bertSection } from "./bench/bert.ts";
import { captureSection } from "./bench/capture.ts";
import { trainSection } from "./bench/train.ts";
import { scaleSection } from "./bench/scale.ts";
import { streamSection } from "./bench/stream.ts";
import { ortSection } from "./bench/ort.ts";
import { mixedSection } from "./bench/mixed.ts";

/** Every section, in run order. Add new ones here (see scripts/bench/common.ts `Section`). */
export const SECTIONS: Section[] = [
  matmulSection,
  kernelsSection,
  bertSection,
  ortSection,
  captureSection,
  trainSection,
  mixedSection,
  streamSection,
  scaleSection,
];

/** The 1, 5 and 15 minute load averages: other processes on the machine skew the figures. */
function loadavg(): string {
  try {
    return Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
}

async function main(argv: string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  const known = SECTIONS.map((s) => s.name);
  const unknown = args.only.filter((n) => !known.includes(n));
  if (unknown.length) {
    console.error(`bench: unknown section(s) ${unknown.join(", ")}; known: ${known.join(", ")}`);
    return 2;
  }
  const sections = args.only.length
    ? SECTIONS.filter((s) => args.only.includes(s.name))
    : SECTIONS.filter((s) => !s.onlyWhenAsked);
  let gpu;
  try {
    gpu = await getGpu();
  } catch (e) {
    if (e instanceof NoAdapterError) {
      console.error(`bench: ${e.message}`);
      return 1;
    }
    throw e;
  }
  const log = (msg: string) => console.error(msg);
  const header = `adapter: ${gpu.adapterName}${gpu.isFallback ? " (software fallback)" : ""}\n` +
    `date: ${new Date().toISOString()}  deno ${Deno.version.deno}  ` +
    `args: ${argv.join(" ") || "(default)"}  load average: ${loadavg()}`;
  if (args.json) log(header);
  else console.log(header);
  const results: BenchResult[] = [];
  const t0 = performance.now();
  for (const section of sections) {
    log(`== ${section.name}: ${section.title}`);
    const ts = performance.now();
    await section.run({
      gpu,
      args,
      log,
      emit(r) {
        results.push(r);
        if (args.json) console.log(jsonLine(r));
        else {
          const q = r.ours !== null && r.peer ? ` (${(r.ours / r.peer).toFixed(2)}×)` : "";
          log(
            `  ${r.name}: ours ${fmtNum(r.ours)}, peer ${fmtNum(r.peer)} ` +
              `${r.unit}${q}`,
          );
        }
      },
    });
    log(`== ${section.name} done in ${((performance.now() - ts) / 1000).toFixed(1)} s`);
  }
  if (!args.json) {
    console.log("");
    console.log(formatTable(results));
    console.log(
      `\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s, load average now ${loadavg()}`,
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
