/**
 * Completion markers: an output directory is complete when its marker file is there, written
 * last (atomically) after everything it vouches for, and removed first when the output is
 * reopened for writing. A marker is JSON naming what it vouches for (e.g. the dev rows a
 * checkpoint was evaluated on). HDF5 stores carry their marker as the `complete` attribute
 * instead (data/h5/): the same rule, inside the file.
 * Checked by data/output/output_test.ts.
 * @module
 */
import { InputError } from "../errors.ts";
import { regularFileExists } from "../files.ts";
import { writeJsonAtomic } from "./atomic.ts";
import { underOverwrite } from "./overwrite.ts";

/** The marker file of a directory output. */
export const MARKER_FILE = "complete.json";

/** The marker path of output directory `dir` (its marker file `file`). */
export function markerPathOf(dir: string, file = MARKER_FILE): string {
  return `${dir.replace(/\/+$/, "")}/${file}`;
}

/** Marks `dir` complete: writes its marker `file` (last, atomically) with `value`. */
export async function writeMarker(dir: string, value: unknown = {}, file = MARKER_FILE) {
  await writeJsonAtomic(markerPathOf(dir, file), value);
}

/**
 * The marker of `dir`, or null when it is not complete (a marker under an overwrite still
 * removing the old contents, data/output/overwrite.ts, is an old one: not complete); an
 * unreadable marker is an error.
 */
export async function readMarker<T = unknown>(dir: string, file = MARKER_FILE): Promise<T | null> {
  const path = markerPathOf(dir, file);
  // A FIFO or device planted as a marker (results.json) is refused, naming it, never opened.
  if (!regularFileExists(path, { what: "marker file" })) return null;
  if ((await underOverwrite(dir))?.mark.phase === "removing") return null;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new InputError(`${path}: unreadable (${(e as Error).message})`, { file: path, cause: e });
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InputError(
      `${path}: unreadable (${(e as Error).message}); delete it to redo that output`,
      { file: path, cause: e },
    );
  }
}

/** Whether `dir` carries its marker `file`. */
export async function hasMarker(dir: string, file = MARKER_FILE): Promise<boolean> {
  if (!(await Deno.stat(markerPathOf(dir, file)).then(() => true, () => false))) return false;
  return (await underOverwrite(dir))?.mark.phase !== "removing";
}

/** Removes the marker of `dir` (first, before it is written again); absent is fine. */
export async function removeMarker(dir: string, file = MARKER_FILE): Promise<void> {
  const path = markerPathOf(dir, file);
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new InputError(`${path}: cannot remove it (${(e as Error).message})`, {
        file: path,
        cause: e,
      });
    }
  });
}
