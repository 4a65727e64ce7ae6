/**
 * What a store holds, read back and compared: its settings as recorded in the file
 * ({@linkcode storeSettingsOf}), their comparison in the output protocol's one shape
 * (`key: there → now`, {@linkcode storeSettingsDiff}) and its fingerprint
 * ({@linkcode storeFingerprint}), the hash its completion marker records.
 * Checked by data/h5_store_test.ts and data/shard_set_test.ts.
 * @module
 */
import { createHash } from "node:crypto";
import { settingsDiff } from "../output/mod.ts";
import type { StoreReader } from "./reader.ts";
import { type H5StoreSettings, normalise } from "./settings.ts";

/** Attributes H5Store writes itself (the rest are the caller's `attrs`). */
const OWN_ATTRS = new Set([
  "layout",
  "dtype",
  "max_seq_length",
  "num_layers",
  "hidden_size",
  "label_type",
  "format",
  "rows_complete",
  "complete",
  "fingerprint",
]);

/**
 * Attributes that describe who wrote a store rather than what it holds (not settings, not in
 * the fingerprint): `adapter`, the device(s) that computed its rows.
 */
export const INFO_ATTRS: ReadonlySet<string> = new Set(["adapter"]);

/**
 * The settings a store was made with, read back from an open reader: its shapes, dtype, label
 * layout, chunking and the caller's attributes (every attribute but the store's own and
 * {@linkcode INFO_ATTRS}).
 */
export function storeSettingsOf(r: StoreReader): Required<H5StoreSettings> {
  const attrs = Object.fromEntries(
    Object.entries(r.attrs).filter(([k]) => !OWN_ATTRS.has(k) && !INFO_ATTRS.has(k)),
  );
  return normalise({
    n: r.shape.n,
    layers: r.shape.layers,
    tokens: r.shape.tokens,
    hidden: r.shape.hidden,
    layout: r.shape.layout,
    dtype: r.dtype,
    labelType: r.attrs.label_type as "int64" | "float32",
    labelWidth: r.labelWidth,
    chunkRows: r.chunkRows,
    attrs,
  }, r.path);
}

/**
 * The fingerprint of a store: the first 16 hex digits of a sha256 over its settings and
 * attributes (the model's `weights_hash` and the rows' `inputs_hash` among them), so what a
 * store holds is known from its completion marker without reading its rows again.
 */
export function storeFingerprint(s: Readonly<Required<H5StoreSettings>>): string {
  const attrs = Object.fromEntries(Object.entries(s.attrs).sort(([a], [b]) => a < b ? -1 : 1));
  const key = JSON.stringify({
    n: s.n,
    layers: s.layers,
    tokens: s.tokens,
    hidden: s.hidden,
    layout: s.layout,
    dtype: s.dtype,
    labelType: s.labelType,
    labelWidth: s.labelWidth,
    attrs,
  });
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

/**
 * Settings as a flat record for {@linkcode settingsDiff}: every field but `attrs`, and each
 * attribute as `attrs.NAME` (so a long attribute list differs line by line, never as one blob).
 */
function settingsRecord(s: Readonly<Required<H5StoreSettings>>): Record<string, unknown> {
  // fromEntries: an attribute named "__proto__" is kept as data, not taken as the prototype.
  return Object.fromEntries([
    ...Object.entries(s).filter(([k]) => k !== "attrs"),
    ...Object.entries(s.attrs).map(([k, v]) => [`attrs.${k}`, v]),
  ]);
}

/**
 * How settings `now` differ from `there`, as `key: there → now` lines (keys sorted, attributes
 * as `attrs.NAME`; empty when equal). Keys in `ignore` (e.g. `n`, `attrs.shard_index`) are not
 * compared; keys of `defaults` absent on a side compare as their default.
 */
export function storeSettingsDiff(
  there: Readonly<Required<H5StoreSettings>>,
  now: Readonly<Required<H5StoreSettings>>,
  ignore?: ReadonlySet<string>,
  defaults?: Readonly<Record<string, unknown>>,
): string[] {
  return settingsDiff(settingsRecord(there), settingsRecord(now), ignore, defaults);
}
