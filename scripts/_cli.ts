/**
 * What the CLI scripts share besides the flag table (scripts/_flags.ts): a main that prints
 * errors as one line (usage errors exit 2, others 1; `BERTVISION_DEBUG=1` adds the stack), and
 * the per-adapter kernel tuning every GPU command does first.
 * @module
 */
import { getGpu } from "../kernels/device.ts";
import { pickMatmulVariant } from "../kernels/matmul.ts";
import { cacheRoot } from "../model/checkpoint.ts";
import { UsageError } from "./_flags.ts";

export { parseCommand, UsageError } from "./_flags.ts";

/**
 * Picks the matmul variant for this adapter by a quick measurement, once per adapter: the choice
 * is cached in `~/.cache/bertvision/tuning.json` (`BERTVISION_CACHE` overrides).
 */
export async function tuneKernels(): Promise<void> {
  await pickMatmulVariant(await getGpu(), `${cacheRoot()}/tuning.json`);
}

/**
 * Runs a CLI main: errors print `<command>: <message>` without a stack trace; usage errors exit
 * 2, others 1.
 */
export async function runMain(command: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    console.error(`${command}: ${(e as Error).message}`);
    if (Deno.env.get("BERTVISION_DEBUG")) console.error(e);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
