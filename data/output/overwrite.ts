/**
 * Overwrites: an output replaced (`--overwrite`) is marked invalid before anything of it is
 * removed, so a kill part-way never leaves old results beside wiped ones looking valid.
 *
 * 1. {@linkcode startOverwrite} writes `DIR/.overwriting` (atomically) naming the command, in
 *    phase `removing`; then removes the old contents (the caller's `remove`, which takes the
 *    completion marker first); then marks phase `writing`.
 * 2. The command writes the new output; {@linkcode finishOverwrite} removes the marker last,
 *    once the new output is complete.
 * 3. Readers treat an output under a marker as not finished: {@linkcode readMarker} (the
 *    completion check of checkpoints, heads, fractions) ignores a completion marker under an
 *    overwrite still `removing`; the cross-task report skips a directory under any overwrite.
 * 4. A rerun of a directory carrying the marker continues the overwrite ({@linkcode
 *    resumeOverwrite}: the removal is redone when it had not finished) instead of refusing.
 *
 * Checked by tests/overwrite_kill_test.ts.
 * @module
 */
import { InputError } from "../errors.ts";
import { regularFileExists } from "../files.ts";
import { writeJsonAtomic } from "./atomic.ts";
import { exitIfAsked } from "./kill.ts";

/** The marker of an output being overwritten, in its directory. */
export const OVERWRITE_MARKER = ".overwriting";

/** What the marker says: the command replacing the output, and how far it got. */
export interface OverwriteMark {
  /** The command overwriting it (e.g. `glue --overwrite`). */
  command: string;
  /** `removing`: old contents may remain; `writing`: they are gone, the new output is partial. */
  phase: "removing" | "writing";
  /** When the overwrite started. */
  startedAt: string;
}

/** The overwrite marker path of output directory `dir`. */
export function overwriteMarkerPathOf(dir: string): string {
  return `${dir.replace(/\/+$/, "")}/${OVERWRITE_MARKER}`;
}

/** The overwrite marker of `dir` itself, or null when it carries none. */
export async function readOverwrite(dir: string): Promise<OverwriteMark | null> {
  const path = overwriteMarkerPathOf(dir);
  let text: string;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) regularFileExists(path, { what: "overwrite marker" }); // throws, naming it
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) return null;
    if (e instanceof InputError) throw e;
    throw new InputError(`${path}: unreadable (${(e as Error).message})`, { file: path, cause: e });
  }
  try {
    const mark = JSON.parse(text) as OverwriteMark;
    return mark.phase === "writing" ? mark : { ...mark, phase: "removing" };
  } catch {
    // A marker torn some other way still says the output is being replaced.
    return { command: "(unknown)", phase: "removing", startedAt: "" };
  }
}

/**
 * The nearest directory at or above `path` that is being overwritten, with its marker, or null.
 * An output inside an overwritten directory (a reproduction's `ap/`) is as invalid as it.
 */
export async function underOverwrite(
  path: string,
): Promise<{ dir: string; mark: OverwriteMark } | null> {
  let dir = path.replace(/\/+$/, "") || "/";
  if (!dir.startsWith("/")) dir = `${Deno.cwd()}/${dir}`;
  for (;;) {
    const mark = await readOverwrite(dir);
    if (mark) return { dir, mark };
    const up = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (up === dir) return null;
    dir = up;
  }
}

async function mark(dir: string, command: string, phase: OverwriteMark["phase"], at?: string) {
  await writeJsonAtomic(
    overwriteMarkerPathOf(dir),
    {
      command,
      phase,
      startedAt: at ?? new Date().toISOString(),
    } satisfies OverwriteMark,
  );
}

/**
 * Starts overwriting `dir`: marks it (`removing`), runs `remove` (the old contents; the
 * completion marker first), then marks it `writing`. Kill hooks: `overwrite:marked`,
 * `overwrite:removed`.
 */
export async function startOverwrite(
  dir: string,
  command: string,
  remove: () => Promise<void>,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const at = new Date().toISOString();
  await mark(dir, command, "removing", at);
  exitIfAsked("overwrite", "marked");
  await remove();
  exitIfAsked("overwrite", "removed");
  await mark(dir, command, "writing", at);
}

/**
 * Continues an overwrite of `dir` that a kill interrupted: a removal not finished is redone.
 * Returns the marker (the caller then writes as an `--overwrite` would, and finishes it), or
 * null when `dir` is not being overwritten.
 */
export async function resumeOverwrite(
  dir: string,
  remove: () => Promise<void>,
): Promise<OverwriteMark | null> {
  const m = await readOverwrite(dir);
  if (m?.phase === "removing") {
    await remove();
    exitIfAsked("overwrite", "removed");
    await mark(dir, m.command, "writing", m.startedAt);
  }
  return m;
}

/** Ends the overwrite of `dir` (last, once the new output is complete); none is fine. */
export async function finishOverwrite(dir: string): Promise<void> {
  exitIfAsked("overwrite", "finishing");
  await Deno.remove(overwriteMarkerPathOf(dir)).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new InputError(`${overwriteMarkerPathOf(dir)}: cannot remove it (${e.message})`, {
        file: overwriteMarkerPathOf(dir),
        cause: e,
      });
    }
  });
}

/** Removes `paths` (files or directories, recursively), in order; absent ones are fine. */
export async function removePaths(paths: string[]): Promise<void> {
  for (const p of paths) {
    await Deno.remove(p, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new InputError(`${p}: cannot remove it (${e.message})`, { file: p, cause: e });
      }
    });
  }
}
