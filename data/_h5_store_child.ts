/**
 * Test helper for `h5_store_test.ts`: deterministic rows, a store's whole contents, and (run as a program) a writer that
 * writes some batches and then waits to be killed with SIGKILL, to test resuming; with
 * `--finish`, a whole write that a kill hook (data/output/kill.ts) can end at any step.
 * @module
 */

import { type H5Rows, H5Store, type H5StoreSettings } from "./h5_store.ts";
import h5wasm from "h5wasm/node";

/** Deterministic rows [start, start+count) for `s` (embeds span several binades and signs). */
export function makeRows(s: H5StoreSettings, start: number, count: number): H5Rows {
  const row = s.layout === "full" ? s.layers * s.tokens * s.hidden : s.layers * s.hidden;
  const embeds = new Float32Array(count * row);
  for (let i = 0; i < embeds.length; i++) {
    const g = start * row + i;
    embeds[i] = Math.sin(g * 0.37) * 2 ** ((g % 9) - 4);
  }
  const T = s.tokens, lw = s.labelWidth ?? 1;
  const ints = (f: (r: number, t: number) => number) =>
    Int32Array.from({ length: count * T }, (_, k) => f(start + Math.floor(k / T), k % T));
  return {
    embeds,
    inputIds: ints((r, t) => (r * 31 + t * 7) % 1000),
    tokenTypeIds: ints((r, t) => (t > T / 2 ? 1 : 0) * (r % 2)),
    attentionMask: ints((r, t) => (t < 2 + (r % T) ? 1 : 0)),
    labels: Array.from(
      { length: count * lw },
      (_, k) => s.labelType === "float32" ? (start * lw + k) * 0.25 : (start * lw + k) % 3,
    ),
    idx: Array.from({ length: count }, (_, k) => 1000 + start + k),
  };
}

/** Writes every row of `s` not yet in the store at `path` (creating or resuming it), then closes. */
export async function finishStore(path: string, s: H5StoreSettings, b: number): Promise<void> {
  const store = await H5Store.openOrCreate(path, s, { flushEveryRows: b });
  for (let i = store.rowsDone; i < s.n; i += b) {
    await store.writeRows(i, makeRows(s, i, Math.min(b, s.n - i)));
  }
  await store.close();
}

if (import.meta.main && Deno.args[0] === "--finish") {
  // A whole write (create or resume, every row, close): killed by BERTVISION_TEST_EXIT_AT.
  const [, path, settingsJson, batchRows] = Deno.args;
  await finishStore(path, JSON.parse(settingsJson), Number(batchRows));
  console.log("done");
} else if (import.meta.main) {
  const [path, settingsJson, batches, batchRows] = Deno.args;
  const settings = JSON.parse(settingsJson) as H5StoreSettings;
  const b = Number(batchRows);
  const store = await H5Store.create(path, settings, { flushEveryRows: b });
  for (let k = 0; k < Number(batches); k++) {
    await store.writeRows(k * b, makeRows(settings, k * b, b));
  }
  // Rows past the last flush: written to the file but never claimed by the sidecar.
  await store.writeRows(Number(batches) * b, makeRows(settings, Number(batches) * b, 1));
  console.log("ready");
  setInterval(() => {}, 1000); // wait for SIGKILL without ever closing the store
}

/** Every dataset and file attribute (except the devices that wrote it) of a store. */
export async function storeContents(path: string): Promise<unknown> {
  await h5wasm.ready;
  const f = new h5wasm.File(path, "r");
  try {
    const attrs = Object.fromEntries(
      Object.entries(f.attrs).filter(([k]) => k !== "adapter").map(([k, v]) => [k, v.value]),
    );
    const data = Object.fromEntries(
      f.keys().sort().map((k) => [k, (f.get(k) as InstanceType<typeof h5wasm.Dataset>).value]),
    );
    return { attrs, data };
  } finally {
    f.close();
  }
}
