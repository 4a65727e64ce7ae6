/**
 * Settings and fingerprint comparison: the one way an output says it was made with other
 * settings than the ones asked for now. Every refusal lists the differences in one shape,
 * `key: there → now`, values shown by `preview` (JSON, long ones cut), keys sorted.
 * Checked by data/output/output_test.ts.
 * @module
 */
import { InputError, preview } from "../errors.ts";

/** Values `there` (what the output was made with) and `now` (what is asked) by key. */
export type Settings = Readonly<Record<string, unknown>>;

const show = (v: unknown) => v === undefined ? "(unset)" : preview(v);

/** Stable text of a value for comparison: object keys sorted, so key order never differs. */
function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]]))
        : x,
  ) ?? "undefined";
}

/**
 * The keys whose values differ between `there` and `now`, as `key: there → now` lines sorted by
 * key (empty when equal); where both values are objects, only their keys that differ are shown. Keys in `ignore` are not compared. Own keys only ("constructor" is a
 * key here, not Object.prototype's). A key of `defaults` absent on a side counts there as its
 * default (a setting recorded only when not the default, e.g. `precision` absent = "f32"), so
 * "not given" equals the default and a refusal shows both values, never `(unset)` for it.
 *
 * @example
 * ```ts
 * import { settingsDiff } from "./settings.ts";
 * const d = settingsDiff({ lr: 1e-3, seed: 1 }, { lr: 2e-3, seed: 1 });
 * console.assert(d.length === 1 && d[0] === "lr: 0.001 → 0.002");
 * const p = settingsDiff({ precision: "f16-mixed" }, {}, undefined, { precision: "f32" });
 * console.assert(p[0] === 'precision: "f16-mixed" → "f32"');
 * ```
 */
export function settingsDiff(
  there: Settings,
  now: Settings,
  ignore: ReadonlySet<string> = new Set(),
  defaults: Settings = {},
): string[] {
  const filled = (s: Settings): Settings =>
    Object.fromEntries([
      ...Object.entries(defaults).filter(([k]) => !Object.hasOwn(s, k)),
      ...Object.entries(s),
    ]);
  if (Object.keys(defaults).length) [there, now] = [filled(there), filled(now)];
  const keys = differing(there, now).filter((k) => !ignore.has(k));
  return keys.map((k) => {
    let [a, b] = [get(there, k), get(now, k)];
    // Two objects (a head's config): only their keys that differ, so a cut preview still
    // shows the difference.
    if (isRecord(a) && isRecord(b)) {
      const sub = differing(a, b);
      const pick = (o: Settings) =>
        Object.fromEntries(sub.flatMap((j) => Object.hasOwn(o, j) ? [[j, o[j]]] : []));
      [a, b] = [pick(a), pick(b)];
    }
    return `${k.length > 60 ? k.slice(0, 59) + "…" : k}: ${show(a)} → ${show(b)}`;
  });
}

const get = (s: Settings, k: string) => Object.hasOwn(s, k) ? s[k] : undefined;

const isRecord = (v: unknown): v is Settings =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The own keys of `a` and `b` whose values differ, sorted. */
function differing(a: Settings, b: Settings): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    .filter((k) => canonical(get(a, k)) !== canonical(get(b, k)));
}

/**
 * The refusal of an output made with other settings: `OUTPUT was made with other settings
 * (d1; d2; ...); FIX`, as an {@linkcode InputError} naming the output.
 */
export function settingsMismatch(
  output: string,
  diffs: readonly string[],
  fix: string,
): InputError {
  const shown = diffs.length > 12 ? [...diffs.slice(0, 12), `… ${diffs.length - 12} more`] : diffs;
  return new InputError(`${output} was made with other settings (${shown.join("; ")}); ${fix}`, {
    file: output,
  });
}
