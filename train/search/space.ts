/**
 * Search spaces of `deno task search` (train/search/study.ts): what each hyperparameter may be, the
 * seed's space as the default, a JSON space file for others, and draws from the prior.
 *
 * The seed searched heads and BERT alike, with hyperopt's TPE; its three searches are named
 * presets ({@linkcode SEED_SPACES}, `--space NAME`), each with the number of evaluations it ran
 * and the share of the training rows each trial saw:
 *
 * - `seed-ap-glue` (the default for heads; {@linkcode SEED_HEAD_SPACE}): adapter size ∈ {8, 16,
 *   32, 64, 128, 256} (`hp.choice`), learning rate ~ U(1e-6, 1e-3), seed `hp.uniformint(1,
 *   2000)` — hyperopt's quniform with q = 1, so TPE models it as a Gaussian mixture over 1..2000,
 *   not as 2000 categories — minimizing −dev accuracy, 480 evaluations (`max_evals=8 * 60 * 60 /
 *   60`) on the whole training set: `code/torch/models/ap_glue/__main__hyperopt.py` @ b9b8061.
 * - `seed-ap-hypersearch`: learning rate ~ U(0, 3e-5) (`--lr-low 0e-5 --lr-high 3e-5`), seed
 *   `hp.randint('seed', 1000)` (0..999, categories), minimizing 1 − the dev metric, 200
 *   evaluations, each trial on a 10% sample of the training rows (`--shard 0.10`) for QQP, QNLI,
 *   MNLI, SST-2 and MRPC, the whole set for the others: `code/torch/models/ap_hypersearch/
 *   __main__.py` and `args.py` @ b8178e7, the tasks in `common/trainers/H5_search_trainer.py`
 *   @ b8178e7. The adapter size is not searched (its flag or default applies).
 * - `seed-bert` (the default for `--model bert`): BERT's learning rate ~ U(0, 3e-5), seed
 *   `hp.randint('seed', 1000)`, 100 evaluations, a 10% sample for QQP, QNLI and MNLI:
 *   `code/torch/models/hypersearch/__main__.py` and `args.py` @ 884216e, the tasks in
 *   `common/trainers/bert_search_trainer.py` @ 884216e. Our BERT trials train on the whole
 *   split (the plan says so for those tasks).
 *
 * A space file is one JSON object, a key per hyperparameter (named as its flag), each a
 * distribution or a fixed value:
 *
 * ```json
 * {
 *   "adapter-dim": { "choice": [8, 16, 32, 64, 128, 256] },
 *   "lr": { "loguniform": [1e-6, 1e-3] },
 *   "l2": { "uniform": [0, 0.1] },
 *   "seed": { "quniform": [1, 2000, 1] },
 *   "model": "ap"
 * }
 * ```
 *
 * - `{"choice": [a, b, ...]}`: one of the values (numbers, strings or booleans);
 * - `{"uniform": [lo, hi]}`: a real number in [lo, hi];
 * - `{"loguniform": [lo, hi]}`: its logarithm uniform in [log lo, log hi] (0 < lo < hi; the
 *   bounds are values, not hyperopt's logs);
 * - `{"quniform": [lo, hi, q]}`: `round(uniform(lo, hi) / q) · q`;
 * - `{"randint": [lo, hi]}`: an integer from lo to hi, both included (TPE: categories, as
 *   hyperopt's `hp.randint`; `quniform` with q = 1 is `hp.uniformint`, a Gaussian mixture);
 * - a plain number or string: fixed.
 *
 * Keys: heads `adapter-dim`, `lr`, `l2`, `seed`, `model` (ap, lp or avg); BERT `lr`, `l2`,
 * `seed`, `batch-size`, `warmup-proportion`. Checked by train/search/study_test.ts.
 * @module
 */
import { decodeUtf8, InputError } from "../../data/errors.ts";
import { readInput } from "../../data/files.ts";
import type { Rng } from "../../data/rng.ts";

/** A hyperparameter's value. */
export type ParamValue = number | string | boolean;

/** One hyperparameter's distribution. */
export type Dist =
  | { kind: "choice"; options: ParamValue[] }
  | { kind: "uniform"; lo: number; hi: number }
  | { kind: "loguniform"; lo: number; hi: number }
  | { kind: "quniform"; lo: number; hi: number; q: number }
  | { kind: "randint"; lo: number; hi: number }
  | { kind: "fixed"; value: ParamValue };

/** A search space: a distribution per hyperparameter, by its flag name. */
export type Space = Record<string, Dist>;

/** One trial's hyperparameters, by flag name. */
export type Params = Record<string, ParamValue>;

/**
 * The seed's space for the heads (`seed-ap-glue`): adapter size, learning rate and seed, as
 * `code/torch/models/ap_glue/__main__hyperopt.py` @ b9b8061 defines it.
 */
export const SEED_HEAD_SPACE: Readonly<Space> = {
  // `adapter_dims = [2**x for x in range(3,9)]`; `hp.choice('adapter_size', adapter_dims)`
  "adapter-dim": { kind: "choice", options: [8, 16, 32, 64, 128, 256] },
  // `hp.uniform('learning_rate', 1e-6, 1e-3)`
  lr: { kind: "uniform", lo: 1e-6, hi: 1e-3 },
  // `hp.uniformint("seed",1,2000)`: quniform, q = 1
  seed: { kind: "quniform", lo: 1, hi: 2000, q: 1 },
};

/** A search of the seed's, by name: its space, its evaluations and each trial's share of rows. */
export interface SpacePreset {
  /** What its trials train. */
  target: "head" | "bert";
  space: Readonly<Space>;
  /** hyperopt's `max_evals`: `--trials` when not given (nor `--minutes`). */
  trials: number;
  /** The seed's `--shard`: the share of the training rows each trial saw, for these tasks. */
  shard?: { fraction: number; tasks: readonly string[] };
  /** Where the seed defines it: file @ commit. */
  source: string;
}

/** The seed's three searches (README "Hyperparameter search"); `seed-ap-glue` is the default. */
export const SEED_SPACES: Readonly<Record<string, SpacePreset>> = {
  "seed-ap-glue": {
    target: "head",
    space: SEED_HEAD_SPACE,
    trials: 480, // `max_evals=8 * 60 * 60 / 60`
    source: "code/torch/models/ap_glue/__main__hyperopt.py @ b9b8061",
  },
  "seed-ap-hypersearch": {
    target: "head",
    space: {
      // `hp.uniform('lr', low=args.lr_low, high=args.lr_high)`, args.py `--lr-low` 0e-5,
      // `--lr-high` 3e-5
      lr: { kind: "uniform", lo: 0, hi: 3e-5 },
      // `hp.randint('seed', 1000)`: 0..999
      seed: { kind: "randint", lo: 0, hi: 999 },
    },
    trials: 200, // `max_evals=200`
    // args.py `--shard` 0.10; H5_search_trainer.py shards AP_QQP, AP_QNLI, AP_MNLI, AP_SST, AP_MSR
    shard: { fraction: 0.1, tasks: ["qqp", "qnli", "mnli", "sst2", "mrpc"] },
    source: "code/torch/models/ap_hypersearch/__main__.py, args.py, " +
      "common/trainers/H5_search_trainer.py @ b8178e7",
  },
  "seed-bert": {
    target: "bert",
    space: {
      // `hp.uniform('lr', low=0e-5, high=3e-5)`
      lr: { kind: "uniform", lo: 0, hi: 3e-5 },
      // `hp.randint('seed', 1000)`: 0..999
      seed: { kind: "randint", lo: 0, hi: 999 },
    },
    trials: 100, // `max_evals=100`
    // args.py `--shard` 0.10; bert_search_trainer.py shards QQP, QNLI, MNLI
    shard: { fraction: 0.1, tasks: ["qqp", "qnli", "mnli"] },
    source: "code/torch/models/hypersearch/__main__.py, args.py, " +
      "common/trainers/bert_search_trainer.py @ 884216e",
  },
};

/** The default preset of what is searched: the seed's ap_glue for heads, its BERT search. */
export function defaultSpaceName(target: "head" | "bert"): string {
  return target === "bert" ? "seed-bert" : "seed-ap-glue";
}

/** The keys a space may have, per what is searched. */
export const SPACE_KEYS = {
  head: ["adapter-dim", "lr", "l2", "seed", "model"],
  bert: ["lr", "l2", "seed", "batch-size", "warmup-proportion"],
} as const;

/** Keys whose values must be integers; and the allowed values of string keys. */
const INTEGER_KEYS = new Set(["adapter-dim", "seed", "batch-size"]);
const STRING_KEYS: Record<string, readonly string[]> = { model: ["ap", "lp", "avg"] };

/**
 * The space of a preset (default: `target`'s, {@linkcode defaultSpaceName}), less `adapter-dim`
 * for lp/avg heads (only the adapter-pooler has an adapter).
 */
export function defaultSpace(target: "head" | "bert", pooling = "ap", name?: string): Space {
  const s: Space = { ...SEED_SPACES[name ?? defaultSpaceName(target)].space };
  if (pooling !== "ap") delete s["adapter-dim"];
  return s;
}

/** A distribution in words, e.g. `U(1e-6, 1e-3)`, `{8, 16, 32}`, `1..2000`, `qU(1, 2000, 1)`. */
export function describeDist(d: Dist): string {
  const f = (x: number) => (x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential() : String(x));
  switch (d.kind) {
    case "choice":
      return `{${d.options.map(String).join(", ")}}`;
    case "uniform":
      return `U(${f(d.lo)}, ${f(d.hi)})`;
    case "loguniform":
      return `logU(${f(d.lo)}, ${f(d.hi)})`;
    case "quniform":
      return `qU(${f(d.lo)}, ${f(d.hi)}, ${f(d.q)})`;
    case "randint":
      return `${d.lo}..${d.hi}`;
    case "fixed":
      return String(d.value);
  }
}

/** The space in words: `adapter-dim ∈ {8, ...}, lr ~ U(1e-6, 1e-3), seed ~ qU(1, 2000, 1)`. */
export function describeSpace(space: Space): string {
  return Object.entries(space).map(([k, d]) =>
    `${k} ${d.kind === "fixed" ? "=" : d.kind === "choice" || d.kind === "randint" ? "∈" : "~"} ` +
    describeDist(d)
  ).join(", ");
}

/**
 * Parses a space from JSON text (`file` names it in errors): an {@linkcode InputError} naming
 * the file and the key for anything malformed, an unknown key (with the allowed ones) or a
 * value the key cannot take.
 */
export function parseSpace(text: string, file: string, target: "head" | "bert"): Space {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(`${file}: not JSON (${(e as Error).message})`, { file, cause: e });
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InputError(`${file}: a space is a JSON object, a key per hyperparameter`, { file });
  }
  const allowed: readonly string[] = SPACE_KEYS[target];
  const space: Space = {};
  for (const [key, raw] of Object.entries(json)) {
    const at = (msg: string) =>
      new InputError(`${file}: "${key}": ${msg}`, { file, jsonPath: key });
    if (!allowed.includes(key)) {
      throw at(
        `not a hyperparameter of ${target === "bert" ? "BERT" : "a head"} (one of ${
          allowed.join(", ")
        })`,
      );
    }
    const d = parseDist(raw, at);
    checkValues(key, d, at);
    space[key] = d;
  }
  if (!Object.keys(space).length) throw new InputError(`${file}: the space is empty`, { file });
  return space;
}

/** Reads and parses a space file (errors name it). */
export async function readSpace(path: string, target: "head" | "bert"): Promise<Space> {
  let bytes: Uint8Array;
  try {
    bytes = await readInput(path, { what: "search space file" });
  } catch (e) {
    throw new InputError(`--space ${path}: cannot read it (${(e as Error).message})`, {
      file: path,
      cause: e,
    });
  }
  return parseSpace(decodeUtf8(bytes, path), path, target);
}

function parseDist(raw: unknown, at: (msg: string) => InputError): Dist {
  if (typeof raw === "number" || typeof raw === "string" || typeof raw === "boolean") {
    if (typeof raw === "number" && !Number.isFinite(raw)) throw at(`not a finite number`);
    return { kind: "fixed", value: raw };
  }
  const forms = `{"choice": [...]}, {"uniform": [lo, hi]}, {"loguniform": [lo, hi]}, ` +
    `{"quniform": [lo, hi, q]}, {"randint": [lo, hi]} or a fixed value`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw at(`expected ${forms}`);
  const entries = Object.entries(raw);
  if (entries.length !== 1) throw at(`expected one of ${forms}`);
  const [kind, args] = entries[0];
  if (!Array.isArray(args)) throw at(`"${kind}" takes a list`);
  if (kind === "choice") {
    if (!args.length) throw at(`"choice" needs at least one value`);
    for (const v of args) {
      const ok = typeof v === "string" || typeof v === "boolean" ||
        (typeof v === "number" && Number.isFinite(v));
      if (!ok) {
        throw at(`"choice" values are numbers, strings or booleans, got ${JSON.stringify(v)}`);
      }
    }
    return { kind: "choice", options: args as ParamValue[] };
  }
  const nums = args.every((v) => typeof v === "number" && Number.isFinite(v));
  const n = kind === "quniform" ? 3 : 2;
  if (!["uniform", "loguniform", "quniform", "randint"].includes(kind)) {
    throw at(`unknown distribution "${kind}"; expected ${forms}`);
  }
  if (!nums || args.length !== n) throw at(`"${kind}" takes ${n} finite numbers`);
  const [lo, hi, q] = args as number[];
  if (!(lo < hi)) throw at(`"${kind}": the low bound ${lo} must be below the high bound ${hi}`);
  if (kind === "loguniform" && !(lo > 0)) throw at(`"loguniform" bounds must be > 0, got ${lo}`);
  if (kind === "quniform" && !(q > 0)) throw at(`"quniform": q must be > 0, got ${q}`);
  if (kind === "randint" && !(Number.isInteger(lo) && Number.isInteger(hi))) {
    throw at(`"randint" bounds must be integers`);
  }
  if (kind === "randint" && hi - lo > 1e6) throw at(`"randint" spans over 1e6 values`);
  return kind === "quniform"
    ? { kind, lo, hi, q }
    : { kind: kind as "uniform" | "loguniform" | "randint", lo, hi };
}

/** The values a distribution can give, checked against what the key accepts. */
function checkValues(key: string, d: Dist, at: (msg: string) => InputError): void {
  const strings = STRING_KEYS[key];
  const values: ParamValue[] = d.kind === "choice"
    ? d.options
    : d.kind === "fixed"
    ? [d.value]
    : [d.lo, d.hi];
  for (const v of values) {
    if (strings) {
      if (typeof v !== "string" || !strings.includes(v)) {
        throw at(`takes ${strings.join(", ")}, got ${JSON.stringify(v)}`);
      }
      continue;
    }
    if (typeof v !== "number") throw at(`takes numbers, got ${JSON.stringify(v)}`);
    if (v < 0) throw at(`must be ≥ 0, got ${v}`);
  }
  if (strings && !(d.kind === "choice" || d.kind === "fixed")) {
    throw at(`takes "choice" or a fixed value`);
  }
  if (INTEGER_KEYS.has(key)) {
    const ints = d.kind === "randint" || d.kind === "choice" || d.kind === "fixed" ||
      (d.kind === "quniform" && Number.isInteger(d.q) && Number.isInteger(d.lo));
    if (!ints || !values.every((v) => Number.isInteger(v))) {
      throw at(`takes integers: use "choice", "randint" or a fixed integer`);
    }
    if (!values.every((v) => (v as number) >= (key === "seed" ? 0 : 1))) {
      throw at(`must be ≥ ${key === "seed" ? 0 : 1}`);
    }
  }
  if (key === "warmup-proportion" && !values.every((v) => (v as number) <= 1)) {
    throw at(`must be ≤ 1`);
  }
}

/** Draws one value of `d` from its prior (what random search does). */
export function samplePrior(d: Dist, rng: Rng): ParamValue {
  switch (d.kind) {
    case "fixed":
      return d.value;
    case "choice":
      return d
        .options[Math.min(d.options.length - 1, Math.floor(rng.uniform() * d.options.length))];
    case "uniform":
      return d.lo + (d.hi - d.lo) * rng.uniform();
    case "loguniform":
      return Math.exp(Math.log(d.lo) + (Math.log(d.hi) - Math.log(d.lo)) * rng.uniform());
    case "quniform":
      return Math.round((d.lo + (d.hi - d.lo) * rng.uniform()) / d.q) * d.q;
    case "randint": {
      const n = d.hi - d.lo + 1;
      return d.lo + Math.min(n - 1, Math.floor(rng.uniform() * n));
    }
  }
}

/** One draw of every hyperparameter from the prior (random search), in the space's key order. */
export function randomParams(space: Space, rng: Rng): Params {
  return Object.fromEntries(Object.entries(space).map(([k, d]) => [k, samplePrior(d, rng)]));
}
