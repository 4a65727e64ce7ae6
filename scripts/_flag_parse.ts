/**
 * The flag table's parser (scripts/_flags.ts): a command's arguments to typed values, with every
 * refusal a {@linkcode UsageError}.
 * @module
 */
import { parseArgs } from "node:util";
import { TASK_NAMES } from "../tasks/mod.ts";
import { usage } from "./_flag_docs.ts";
import {
  COMMANDS,
  type Flag,
  FLAGS,
  type Mode,
  MODE_TITLES,
  ONE_OF,
  POSITIONALS,
  SEED_DATASETS,
  UsageError,
} from "./_flags.ts";

/** The flag called `name` as `mode` uses it (the glue `--model` is not capture's). */
function flagFor(name: string, mode: Mode): Flag | undefined {
  return FLAGS.find((f) => f.name === name && mode in f.in) ??
    FLAGS.find((f) => f.name === name);
}

/** Flags of a command (any of its modes), one per name. */
function commandFlags(command: string): Flag[] {
  const modes = COMMANDS[command];
  const out = new Map<string, Flag>();
  for (const f of FLAGS) {
    if (modes.some((m) => m in f.in) && !out.has(f.name)) out.set(f.name, f);
  }
  return [...out.values()];
}

/** The default the table gives a flag in a mode (a number, string or boolean), if any. */
export function defaultFor(name: string, mode: Mode): string | number | boolean | undefined {
  const d = flagFor(name, mode)?.in[mode];
  return d === null || (typeof d === "string" && d.startsWith("required")) ? undefined : d;
}

/** Parsed flags of one command: the mode it runs in and every given value, typed. */
export interface Parsed {
  mode: Mode;
  /** Values by flag name: numbers, number lists, strings, string lists (files), booleans. */
  values: Record<string, string | string[] | number | number[] | boolean | undefined>;
  /** The positional argument of a command in {@linkcode POSITIONALS} (absent for the others). */
  positional?: string;
  /** Every positional argument (a command whose positional takes `many`). */
  positionals?: string[];
}

/**
 * `--f A B C` as `--f A --f B --f C` for the "files" flags `names`: the words after such a
 * flag, up to the next one starting with "-", are its values.
 */
function spreadFiles(args: string[], names: Set<string>): string[] {
  const out: string[] = [];
  let current: string | undefined;
  for (const a of args) {
    if (a.startsWith("-")) {
      const name = a.replace(/^--?/, "").split("=")[0];
      current = names.has(name) ? `--${name}` : undefined;
      out.push(a);
    } else if (current !== undefined && out.at(-1) !== current) {
      out.push(current, a);
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * `--f -1/3` as `--f=-1/3` for the flags `names` that take one value: a value that starts with
 * "-" and a digit or "." (a negative number, a `--shard -1/3`) reaches the flag's own check, which
 * says what it must be, instead of the argument parser's "ambiguous".
 */
function joinDashValues(args: string[], names: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    const name = /^--([^=]+)$/.exec(a)?.[1];
    if (name !== undefined && names.has(name) && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * Refuses a flag that takes one value given more than once (`--epochs 3 ... --epochs 5` would
 * silently take the last), naming it and its values. Flags of several values (`--logits A B`,
 * `--dev-h5 A B`) and switches are left alone.
 */
function refuseRepeats(
  tokens: { kind: string; name?: string; value?: string }[],
  single: Set<string>,
): void {
  const seen = new Map<string, string[]>();
  for (const t of tokens) {
    if (t.kind !== "option" || t.name === undefined || !single.has(t.name)) continue;
    const values = seen.get(t.name) ?? [];
    values.push(t.value ?? "");
    seen.set(t.name, values);
  }
  for (const [name, values] of seen) {
    if (values.length > 1) {
      throw new UsageError(
        `--${name} is given ${values.length} times (${
          values.map((v) => JSON.stringify(v)).join(", ")
        }); it takes one value: give it once`,
      );
    }
  }
}

function convert(
  f: Flag,
  raw: string | string[] | boolean,
): string | string[] | number | number[] | boolean {
  if (f.value === "files") return typeof raw === "string" ? [raw] : raw;
  if (f.value === "boolean" || typeof raw === "boolean" || Array.isArray(raw)) return raw;
  if (f.value === "string") return raw;
  if (f.value === "choice") {
    if (!f.choices!.includes(raw)) {
      const c = f.choices!;
      const list = `${c.slice(0, -1).join(", ")} or ${c.at(-1)}`;
      throw new UsageError(`--${f.name} must be ${list}, got "${raw}"`);
    }
    return raw;
  }
  if (f.value === "numbers") {
    const xs = raw.split(",").map((s) => Number(s.trim()));
    if (
      !xs.length ||
      xs.some((x) => !Number.isFinite(x) || x <= 0 || (f.max !== undefined && x > f.max))
    ) {
      throw new UsageError(
        `--${f.name} must be positive numbers${
          f.max !== undefined ? ` ≤ ${f.max}` : ""
        } separated by commas, got "${raw}"`,
      );
    }
    return xs;
  }
  const n = Number(raw);
  const int = f.value === "int";
  const bad = raw.trim() === "" || !Number.isFinite(n) || (int && !Number.isInteger(n)) ||
    (f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max);
  if (bad) {
    const range = [
      int ? "an integer" : "a number",
      f.min !== undefined ? `≥ ${f.min}` : "",
      f.max !== undefined ? `≤ ${f.max}` : "",
    ].filter(Boolean).join(" ");
    throw new UsageError(`--${f.name} must be ${range}, got "${raw}"`);
  }
  return n;
}

/**
 * Parses `args` for `command`: unknown flags, flags its mode would ignore (each named with the
 * modes that use it), bad values and missing required flags are {@linkcode UsageError}s (as is
 * a group of {@linkcode ONE_OF} none of which was given, named by its first flag);
 * `--help` prints {@linkcode usage} and exits. `glue`'s mode comes from `--model` (or the seed's
 * `--dataset ...H5`), which also resolves to `task`.
 */
export function parseCommand(command: string, args: string[]): Parsed {
  const text = usage(command);
  const flags = commandFlags(command);
  let raw: Record<string, string | string[] | boolean | undefined>;
  let positionals: string[] = [];
  const pos = POSITIONALS[command];
  try {
    const options = Object.fromEntries(
      flags.map((f) => [
        f.name,
        {
          type: f.value === "boolean" ? "boolean" : "string",
          multiple: f.value === "files",
        } as const,
      ]),
    );
    const files = new Set(flags.filter((f) => f.value === "files").map((f) => f.name));
    const single = new Set(
      flags.filter((f) => f.value !== "files" && f.value !== "boolean").map((f) => f.name),
    );
    const parsed = parseArgs({
      args: spreadFiles(joinDashValues(args, single), files),
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: !!pos,
      tokens: true,
    });
    refuseRepeats(parsed.tokens ?? [], single);
    raw = parsed.values as Record<string, string | string[] | boolean | undefined>;
    positionals = parsed.positionals;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`${(e as Error).message}\n${text}`);
  }
  if (raw.help) {
    console.log(text);
    Deno.exit(0);
  }
  delete raw.help;
  const modes = COMMANDS[command];
  let mode = modes[0];
  // glue/squad: the mode follows --model, or the seed's H5 dataset names.
  let task = typeof raw.task === "string" ? raw.task : undefined;
  if (typeof raw.dataset === "string") {
    if (task !== undefined) throw new UsageError(`give --task or --dataset, not both`);
    const h5 = raw.dataset.endsWith("H5");
    const name = raw.dataset.slice(0, h5 ? -2 : undefined);
    task = SEED_DATASETS[name];
    if (!task) {
      throw new UsageError(
        `--dataset ${raw.dataset} is not one of the seed's datasets (${
          Object.keys(SEED_DATASETS).join(" ")
        }, each also with H5 appended); or use --task (${TASK_NAMES.join(" ")})`,
      );
    }
    if (h5 && command === "reproduce") {
      throw new UsageError(
        `--dataset ${raw.dataset} selects head training on stored activations; reproduce runs ` +
          `every stage: use --dataset ${name}`,
      );
    }
    if (h5 && raw.model === "bert") {
      throw new UsageError(
        `--dataset ${raw.dataset} selects head training but --model bert fine-tunes BERT; ` +
          `use --dataset ${name} or --model ap|lp|avg`,
      );
    }
    if (h5 && raw.model === undefined) raw.model = "ap";
    delete raw.dataset;
  }
  if (command === "squad") {
    if (task !== undefined && task !== "squad") {
      throw new UsageError(`deno task squad trains SQuAD; use deno task glue for ${task}`);
    }
    task = "squad";
  }
  if (task !== undefined) raw.task = task;
  if (command === "glue" || command === "squad" || command === "search") {
    const model = raw.model ?? (command === "search" ? "ap" : "bert");
    convert(flagFor("model", "glue:bert")!, model as string);
    const acts = raw.activations === undefined
      ? "store"
      : convert(flagFor("activations", "glue:head")!, raw.activations as string);
    if (model === "bert" && raw.activations !== undefined) {
      throw new UsageError(
        `--activations is for head training (--model ap|lp|avg); --model bert fine-tunes BERT`,
      );
    }
    const kind = model === "bert" ? "bert" : acts === "stream" ? "stream" : "head";
    mode = `${command === "search" ? "search" : "glue"}:${kind}` as Mode;
  }
  // probe: on stores, or with --activations stream on hidden states computed now.
  if (command === "probe" && raw.activations !== undefined) {
    const acts = convert(flagFor("activations", "probe")!, raw.activations as string);
    mode = acts === "stream" ? "probe:stream" : "probe";
  }
  const values: Parsed["values"] = {};
  for (const [name, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    const f = flagFor(name, mode)!;
    if (!(mode in f.in)) {
      const users = (Object.keys(f.in) as Mode[]).filter((m) => modes.includes(m));
      throw new UsageError(
        `--${name} is not used by ${MODE_TITLES[mode]}; it is for ${
          users.map((m) => MODE_TITLES[m]).join(", ")
        }`,
      );
    }
    values[name] = convert(f, v);
  }
  const missing = flags.filter((f) => f.in[mode] === "required" && values[f.name] === undefined)
    .map((f) => `--${f.name}`);
  // Groups of which at least one must be given (capture: --data-dir or --data-file).
  for (const group of ONE_OF[mode] ?? []) {
    if (group.every((n) => values[n] === undefined)) missing.push(`--${group[0]}`);
  }
  if (pos && (pos.many ? positionals.length === 0 : positionals.length !== 1)) {
    if (positionals.length) {
      throw new UsageError(
        `give one ${pos.arg}, got ${positionals.length}: ${positionals.join(" ")}`,
      );
    }
    missing.unshift(pos.arg);
  }
  if (missing.length) throw new UsageError(`missing ${missing.join(", ")}\n${text}`);
  if (pos?.many) return { mode, values, positional: positionals[0], positionals };
  return pos ? { mode, values, positional: positionals[0] } : { mode, values };
}
