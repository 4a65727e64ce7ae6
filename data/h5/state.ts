/**
 * A store's resume state: the sidecar `FILE.state.json` (settings + rows done), replaced
 * atomically through the output protocol (data/output/) after every flush, so a capture killed
 * between writes continues from the rows it claims.
 * Checked by data/h5_store_test.ts (kill -9 and resume) and data/h5_store_errors_test.ts.
 * @module
 */
import { InputError, preview } from "../errors.ts";
import { readTextIfExists } from "../files.ts";
import { writeJsonAtomic } from "../output/mod.ts";
import type { H5StoreSettings } from "./settings.ts";

/** The `format` of a sidecar. */
export const STATE_FORMAT = "bertvision-h5-state/1";

/** A sidecar's content. */
export interface State {
  format: string;
  settings: Required<H5StoreSettings>;
  rowsDone: number;
  complete: boolean;
  updatedAt: string;
}

/** The sidecar path of a store. */
export function statePath(path: string): string {
  return `${path}.state.json`;
}

/** A sidecar's `rowsDone`, checked to be a row count of a store of `n` rows. */
export function checkedRowsDone(state: { rowsDone?: unknown }, n: number, sp: string): number {
  const r = state.rowsDone;
  if (!Number.isSafeInteger(r) || (r as number) < 0 || (r as number) > n) {
    throw new InputError(
      `${sp}: rowsDone is ${preview(r)}, not a row count of 0..${n}; delete it and its store, ` +
        `then rerun`,
      { file: sp },
    );
  }
  return r as number;
}

/**
 * The rows a store's sidecar claims, or null when there is none (a finished or foreign store)
 * or it is not a sidecar; a claim that is not a row count is an error naming the sidecar.
 */
export async function sidecarRows(path: string): Promise<number | null> {
  const sp = statePath(path);
  let st: unknown;
  try {
    const text = await readTextIfExists(sp, { what: "sidecar" });
    if (text !== undefined) st = JSON.parse(text);
  } catch (e) {
    if (e instanceof InputError) throw e; // a FIFO or device where the sidecar goes
    /* unreadable or not JSON: not a sidecar */
  }
  if (typeof st === "object" && st !== null && (st as State).format === STATE_FORMAT) {
    return checkedRowsDone(st as State, Number.MAX_SAFE_INTEGER, sp);
  }
  return null;
}

/**
 * Replaces the sidecar of the store at `path` (atomically, through the output protocol): its
 * settings, the rows on disk and whether it is complete.
 */
export async function saveState(
  path: string,
  settings: Required<H5StoreSettings>,
  rowsDone: number,
  complete: boolean,
): Promise<void> {
  const state: State = {
    format: STATE_FORMAT,
    settings,
    rowsDone,
    complete,
    updatedAt: new Date().toISOString(),
  };
  await writeJsonAtomic(statePath(path), state);
}
