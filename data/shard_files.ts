/**
 * The store files a `--h5` names (data/shard_set.ts reads them as one store): a file as it is, a
 * glob expanded (`*`, `?` and `[...]` in any path component, sorted), a `.txt` manifest read (one
 * path or glob per line, relative to its folder; `#` comments and blank lines skipped), with the
 * manifest and line each file came from, so that an error about a file can name where it was
 * listed. Checked by data/shard_set_test.ts.
 * @module
 */
import { InputError } from "./errors.ts";
import { readInputText, regularFileExists } from "./files.ts";

/** The characters that make a path a glob. */
export const GLOB_CHARS = /[*?[]/;

/** A path component's glob as a RegExp (`*`, `?`, `[abc]`, `[a-z]`, `[!a]`). */
function segmentRegExp(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i];
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = seg.indexOf("]", i + 2);
      if (end < 0) {
        re += "\\[";
        continue;
      }
      let body = seg.slice(i + 1, end);
      if (body[0] === "!") body = "^" + body.slice(1);
      re += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The files matching a glob, sorted; components without glob characters are taken as they are. */
async function expandGlob(pattern: string): Promise<string[]> {
  const segs = pattern.split("/").filter((x) => x !== "");
  const join = (dir: string, name: string) =>
    dir === "" ? name : dir === "/" ? `/${name}` : `${dir}/${name}`;
  let found = [pattern.startsWith("/") ? "/" : ""];
  for (const [k, seg] of segs.entries()) {
    const next: string[] = [];
    for (const dir of found) {
      if (!GLOB_CHARS.test(seg)) {
        next.push(join(dir, seg));
        continue;
      }
      const re = segmentRegExp(seg);
      let entries: Deno.DirEntry[] = [];
      try {
        entries = await Array.fromAsync(Deno.readDir(dir === "" ? "." : dir));
      } catch { /* no such folder: no matches */ }
      for (const e of entries) {
        if (e.name.startsWith(".") && !seg.startsWith(".")) continue;
        if (!re.test(e.name)) continue;
        if (k < segs.length - 1 && !e.isDirectory && !e.isSymlink) continue;
        next.push(join(dir, e.name));
      }
    }
    found = next;
  }
  const files: string[] = [];
  for (const f of found) {
    if ((await Deno.stat(f).catch(() => null))?.isFile) files.push(f);
  }
  return files.sort();
}

/** Whether `spec` names a shard set (a glob or a `.txt` manifest) rather than one store. */
export function isShardSetSpec(spec: string): boolean {
  return GLOB_CHARS.test(spec) || spec.endsWith(".txt");
}

/** A store file a set names, and whether a glob matched it (rather than naming it). */
export interface NamedFile {
  file: string;
  /** Matched by a glob (on the command line or a manifest line), not named as such. */
  matched: boolean;
  /** The manifest that named it, if one did, and the line (from 1). */
  from?: string;
  line?: number;
}

/**
 * The store files `specs` name, in the order given: a file as it is; a glob expanded (sorted;
 * an error naming it when it matches nothing); a `.txt` manifest read (one path or glob per
 * line, relative to its folder; `#` comments and blank lines skipped). A path that exists is
 * taken as a file even with glob characters in its name. A file named twice is an error, and
 * so is a manifest, or a file it names, that is not a regular file (a FIFO would block).
 */
export async function resolveStoreFiles(specs: string | string[]): Promise<string[]> {
  return (await resolveNamed(specs)).map((n) => n.file);
}

/** {@linkcode resolveStoreFiles}, saying which files a glob matched. */
export async function resolveNamed(specs: string | string[]): Promise<NamedFile[]> {
  const out: NamedFile[] = [];
  const one = async (spec: string, from?: string, line?: number) => {
    const isFile = (await Deno.stat(spec).catch(() => null))?.isFile ?? false;
    if (!isFile && GLOB_CHARS.test(spec)) {
      let files: string[];
      try {
        files = await expandGlob(spec);
      } catch (e) {
        // A character class JavaScript cannot compile ([z-a]): the glob is wrong, not the code.
        if (!(e instanceof SyntaxError)) throw e;
        throw new InputError(
          `${from ? `${from}: ` : ""}${spec} is not a glob this reads (${e.message}); ` +
            `name the shard files, or use *, ? and [a-z]`,
          { file: from ?? spec, cause: e },
        );
      }
      if (!files.length) {
        throw new InputError(
          `${from ? `${from}: ` : ""}no file matches ${spec} (a glob of shard files; quote it ` +
            `so that the shell passes it as it is)`,
          { file: from ?? spec },
        );
      }
      out.push(...files.map((file) => ({ file, matched: true, from, line })));
    } else if (spec.endsWith(".txt") && !from) {
      let text: string;
      try {
        text = await readInputText(spec, { what: "manifest of shard files" });
      } catch (e) {
        const why = (e as Error).message.replace(`${spec}: `, "");
        throw new InputError(`${spec}: cannot read this manifest of shard files (${why})`, {
          file: spec,
          cause: e,
        });
      }
      const dir = spec.includes("/") ? spec.slice(0, spec.lastIndexOf("/")) : ".";
      const lines = text.split(/\r?\n/).map((l, i) => ({ l: l.trim(), line: i + 1 }))
        .filter(({ l }) => l !== "" && !l.startsWith("#"));
      if (!lines.length) {
        throw new InputError(`${spec}: the manifest lists no shard files (one path per line)`, {
          file: spec,
        });
      }
      for (const { l, line } of lines) {
        await one(l.startsWith("/") ? l : `${dir}/${l}`, spec, line);
      }
    } else {
      if (from) {
        try {
          regularFileExists(spec, { what: "shard file" });
        } catch (e) {
          throw new InputError(`${from}:${line}: names ${(e as Error).message}`, {
            file: from,
            line,
            cause: e,
          });
        }
      }
      out.push({ file: spec, matched: false, from, line });
    }
  };
  for (const s of [specs].flat()) await one(s);
  const seen = new Map<string, number>();
  for (const [i, { file: f }] of out.entries()) {
    const key = await Deno.realPath(f).catch(() => f);
    if (seen.has(key)) {
      throw new InputError(
        `${f}: named twice in ${[specs].flat().join(" ")} (as ${out[seen.get(key)!].file} too); ` +
          `name each shard once`,
        { file: f },
      );
    }
    seen.set(key, i);
  }
  return out;
}
