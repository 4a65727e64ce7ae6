/**
 * What the flag table (scripts/_flags.ts) generates for people: each command's help text and
 * the README's flag reference.
 * @module
 */
import { COMMANDS, type Flag, FLAGS, type Mode, MODE_TITLES, POSITIONALS } from "./_flags.ts";

function showDefault(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined || v === false) return "";
  if (v === true) return "on";
  if (typeof v === "number" && v !== 0 && Math.abs(v) < 1e-3) return v.toExponential();
  return String(v);
}

/** The help text of a command: usage, then its flags by mode with their defaults. */
export function usage(command: string): string {
  const modes = COMMANDS[command];
  if (!modes) throw new Error(`no command "${command}"`);
  const fixed = command === "squad" ? " (the task is squad)" : "";
  const pos = POSITIONALS[command];
  const lines = [`usage: deno task ${command}${pos ? ` ${pos.arg}` : ""} [flags]${fixed}`];
  if (pos) lines.push(`  ${pos.arg.padEnd(30)} ${pos.help}`);
  // Flags grouped by the set of this command's modes that use them: every mode first.
  const groups = new Map<string, { modes: Mode[]; flags: Flag[] }>();
  for (const f of FLAGS) {
    if (f.hidden || (command === "squad" && (f.name === "task" || f.name === "dataset"))) continue;
    const set = modes.filter((m) => m in f.in);
    if (!set.length) continue;
    const key = set.join(" ");
    if (!groups.has(key)) groups.set(key, { modes: set, flags: [] });
    groups.get(key)!.flags.push(f);
  }
  const ordered = [...groups.values()].sort((x, y) => y.modes.length - x.modes.length);
  for (const g of ordered) {
    if (modes.length > 1) {
      lines.push(
        g.modes.length === modes.length
          ? "every mode:"
          : `${g.modes.map((m) => MODE_TITLES[m]).join("; ")}:`,
      );
    }
    for (const f of g.flags) {
      const name = `--${f.name}` +
        (f.value === "boolean" ? "" : ` ${f.arg ?? f.choices?.join("|") ?? "V"}`);
      const ds = [...new Set(g.modes.map((m) => showDefault(f.in[m])))].filter(Boolean);
      const d = ds.length ? `  [${ds.join(" / ")}]` : "";
      lines.push(`  ${name.padEnd(30)} ${f.help}${d}`);
    }
  }
  return lines.join("\n");
}

/** The README's flag reference, as Markdown: one table of every visible flag. */
export function flagsMarkdown(): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const lines = [
    "| flag | used by (default) | what |",
    "| ---- | ----------------- | ---- |",
  ];
  for (const f of FLAGS.filter((f) => !f.hidden)) {
    const name = `\`--${f.name}${
      f.value === "boolean" ? "" : ` ${f.arg ?? f.choices?.join("|") ?? "V"}`
    }\``;
    const uses = (Object.entries(f.in) as [Mode, unknown][]).map(([m, d]) => {
      const shown = showDefault(d as string | number | boolean | null);
      return `${m}${shown ? ` (${shown})` : ""}`;
    });
    lines.push(`| ${esc(name)} | ${esc(uses.join(", "))} | ${esc(f.help)} |`);
  }
  return lines.join("\n");
}
