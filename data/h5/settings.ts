/**
 * A store's settings: what an HDF5 activation store holds ({@linkcode H5StoreSettings}), the
 * writer's knobs that do not change its content ({@linkcode H5WriterOptions}), and their
 * checking with defaults filled ({@linkcode normalise}).
 * Checked by data/h5_store_test.ts and data/h5_store_errors_test.ts.
 * @module
 */
import { InputError, preview } from "../errors.ts";

/** What a store holds; a resumed run must ask for exactly the same. */
export interface H5StoreSettings {
  /** Number of rows (examples or SQuAD features). */
  n: number;
  /** Hidden states per row: L + 1 (embedding output + every encoder layer). */
  layers: number;
  /** Tokens per row: max_seq_length. */
  tokens: number;
  /** Features per token: hidden size. */
  hidden: number;
  /** "full": every token ([N, L+1, T, H], BERTVision's); "cls": [CLS] only ([N, L+1, H]). */
  layout: "cls" | "full";
  /** "f32", or "f16" (half the size; values rounded to nearest float16). */
  dtype: "f32" | "f16";
  /** "int64" class ids (default) or "float32" regression targets (STS-B). */
  labelType?: "int64" | "float32";
  /** Labels per row; 1 (default) gives `labels` [N], W > 1 gives [N, W] (SQuAD start/end). */
  labelWidth?: number;
  /**
   * Rows per HDF5 chunk along N. Default: as many as fit in 1 MiB of embeds (HDF5's default
   * chunk cache), at least 1, so a shuffled read of one row never decodes a huge chunk.
   */
  chunkRows?: number;
  /** Stored as file attributes: model_id, weights_hash, task, split, ... */
  attrs?: Record<string, string | number>;
}

/** Writer-only knobs that do not change the file's content. */
export interface H5WriterOptions {
  /** Rows between flush + sidecar update. Default: the multiple of chunkRows nearest 256. */
  flushEveryRows?: number;
  /**
   * Resuming a store made with other settings replaces it (file and sidecar) instead of
   * refusing (`--overwrite`).
   */
  overwrite?: boolean;
  /**
   * The device computing the rows (e.g. "NVIDIA H100 80GB HBM3"), recorded in the attribute
   * `adapter`. Not a setting (not in the fingerprint, not compared on resume): a store resumed
   * on another device lists both, separated by "; ".
   */
  adapter?: string;
  /**
   * Settings a store may lack, as the value it was made with (e.g. `attrs.precision`: "f32",
   * recorded only when f16-mixed): compared on resume as that value (data/output/settings.ts
   * `settingsDiff`'s `defaults`).
   */
  defaults?: Readonly<Record<string, unknown>>;
  /** The fix a refusal of a store made with other settings names, given the differences. */
  fix?: (diff: readonly string[]) => string;
}

/** The shape of one row of `embeds`: [L+1, T, H] (full) or [L+1, H] (cls). */
export function embedsRowShape(s: H5StoreSettings): number[] {
  return s.layout === "full" ? [s.layers, s.tokens, s.hidden] : [s.layers, s.hidden];
}

/** The product of `a`'s entries (values per row of a shape). */
export function prod(a: number[]): number {
  return a.reduce((x, y) => x * y, 1);
}

/** Fills defaults and checks every field, naming the bad one. */
export function normalise(s: H5StoreSettings, where: string): Required<H5StoreSettings> {
  if (typeof s !== "object" || s === null) {
    throw new InputError(`${where}: settings must be an object, got ${preview(s)}`);
  }
  for (const k of ["n", "layers", "tokens", "hidden"] as const) {
    if (!Number.isInteger(s[k]) || s[k] <= 0) {
      throw new InputError(
        `${where}: setting ${k} must be a positive integer, got ${preview(s[k])}`,
      );
    }
  }
  if (s.layout !== "cls" && s.layout !== "full") {
    throw new InputError(`${where}: layout must be "cls" or "full", got ${preview(s.layout)}`);
  }
  if (s.dtype !== "f32" && s.dtype !== "f16") {
    throw new InputError(`${where}: dtype must be "f32" or "f16", got ${preview(s.dtype)}`);
  }
  const labelType = s.labelType ?? "int64";
  if (labelType !== "int64" && labelType !== "float32") {
    throw new InputError(
      `${where}: labelType must be "int64" or "float32", got ${preview(labelType)}`,
    );
  }
  const labelWidth = s.labelWidth ?? 1;
  const rowBytes = prod(embedsRowShape(s)) * (s.dtype === "f16" ? 2 : 4);
  const chunkRows = s.chunkRows ?? Math.max(1, Math.min(s.n, Math.floor((1 << 20) / rowBytes)));
  for (const [k, v] of [["labelWidth", labelWidth], ["chunkRows", chunkRows]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new InputError(`${where}: setting ${k} must be a positive integer, got ${preview(v)}`);
    }
  }
  const attrs: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(s.attrs ?? {})) {
    if (typeof v !== "string" && typeof v !== "number") {
      throw new InputError(`${where}: attribute ${k} must be a string or number, got ${typeof v}`);
    }
    // defineProperty: a key such as "__proto__" is kept as data, not taken as the prototype.
    Object.defineProperty(attrs, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return {
    n: s.n,
    layers: s.layers,
    tokens: s.tokens,
    hidden: s.hidden,
    layout: s.layout,
    dtype: s.dtype,
    labelType,
    labelWidth,
    chunkRows: Math.min(chunkRows, s.n),
    attrs,
  };
}
