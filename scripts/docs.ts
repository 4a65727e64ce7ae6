/**
 * docs: writes the README's flag reference (between `<!-- flags:start -->` and
 * `<!-- flags:end -->`) from the flag table in scripts/_flags.ts, so the README, the help texts
 * and the code's defaults are one table.
 *
 *   deno task docs            # rewrite the section
 *   deno task docs --check    # exit 1 when it is out of date (scripts/flags_test.ts checks too)
 *
 * Costs nothing.
 * @module
 */
import { flagsMarkdown } from "./_flag_docs.ts";

const START = "<!-- flags:start -->", END = "<!-- flags:end -->";

/** Markdown as `deno fmt` writes it (tables padded), so the README stays fmt-clean. */
async function fmtMarkdown(text: string): Promise<string> {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = p.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await p.output();
  if (!out.success) throw new Error(`deno fmt: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** The README with its flag section replaced by the generated one (formatted as deno fmt does). */
export async function withFlagSection(readme: string): Promise<string> {
  const a = readme.indexOf(START), b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${START} … ${END} section`);
  return await fmtMarkdown(
    readme.slice(0, a + START.length) + "\n\n" + flagsMarkdown() + "\n\n" + readme.slice(b),
  );
}

if (import.meta.main) {
  const path = new URL("../README.md", import.meta.url).pathname;
  const now = await Deno.readTextFile(path);
  const want = await withFlagSection(now);
  if (Deno.args.includes("--check")) {
    if (now !== want) {
      console.error("docs: README.md's flag section is out of date; run deno task docs");
      Deno.exit(1);
    }
  } else if (now !== want) {
    await Deno.writeTextFile(path, want);
    console.log("docs: README.md flag section rewritten");
  }
}
