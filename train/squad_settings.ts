/**
 * SQuAD's own settings, beside the training settings of train/presets.ts: how long a question
 * may be and how logits become answers (one model's, and an ensemble's). Each has the seed's
 * value (the preset, used by the commands) and the library's default (run_squad.py's, used when
 * the library is called without `preset`); a value given wins over both. Plans show each value
 * with its origin ({@linkcode describeSquadSettings}).
 *
 * | setting | the seed's (preset) | where in the seed | default |
 * | ------- | ------------------- | ----------------- | ------- |
 * | `--max-question-length` | 0 (whole question) | `code/torch/utils/squad_preprocess.py` (dfdafad, 0c7e25c): `tokenizer(question, context, truncation="only_second", max_length=384, stride=128)` cuts only the context | 64 |
 * | `--squad-null` | max | same file, `postprocess_qa_predictions`: `if min_null_score is None or min_null_score < feature_null_score: min_null_score = feature_null_score` (keeps the largest) | min |
 * | `--max-context` | off | same function: no `token_is_max_context` check | on |
 * | `--squad-ensemble` | seed | `code/tensorflow/utils/evaluation.py` (dfdafad) `SquadModelEvaluation`: start and end argmax each on its own, the window with the largest product of the maxima | ours |
 *
 * Checked by train/squad_settings_test.ts.
 * @module
 */
import { HF_ANSWER_RULE, SEED_ANSWER_RULE, type SquadAnswerRule } from "../tasks/mod.ts";
import { SQUAD_DEFAULTS } from "./defaults.ts";
import { InputError } from "../data/errors.ts";

/** SQuAD's settings: question length and the answer rule. */
export interface SquadSettings extends SquadAnswerRule {
  /** Question pieces kept per window; 0: the whole question. */
  maxQuestionLength: number;
}

/** The keys of {@linkcode SquadSettings}, in the order plans show them. */
export const SQUAD_SETTING_KEYS: readonly (keyof SquadSettings)[] = [
  "maxQuestionLength",
  "nullScore",
  "maxContext",
  "ensemble",
];

/** The flag of each setting. */
export const SQUAD_SETTING_FLAGS: Readonly<Record<keyof SquadSettings, string>> = {
  maxQuestionLength: "--max-question-length",
  nullScore: "--squad-null",
  maxContext: "--max-context",
  ensemble: "--squad-ensemble",
};

/** The seed's SQuAD settings (the preset; sources in the module doc). */
export const SQUAD_SEED_SETTINGS: Readonly<SquadSettings> = {
  maxQuestionLength: 0, // utils/squad_preprocess.py (dfdafad, 0c7e25c): truncation="only_second"
  ...SEED_ANSWER_RULE, // postprocess_qa_predictions; tensorflow/utils/evaluation.py (dfdafad)
};

/** The library's SQuAD settings when no preset is asked for (run_squad.py's). */
export const SQUAD_LIBRARY_SETTINGS: Readonly<SquadSettings> = {
  maxQuestionLength: SQUAD_DEFAULTS.maxQuestionLength,
  ...HF_ANSWER_RULE,
};

/** Where an effective SQuAD setting came from. */
export type SquadOrigin = "given" | "preset" | "default";

/** Effective SQuAD settings and the origin of each. */
export interface ResolvedSquadSettings {
  values: SquadSettings;
  from: Record<keyof SquadSettings, SquadOrigin>;
}

/**
 * The effective SQuAD settings: each value given (not undefined) wins; the rest are the seed's
 * when `usePreset`, else the library's.
 *
 * @example
 * ```ts
 * import { resolveSquadSettings } from "./squad_settings.ts";
 * const r = resolveSquadSettings({ nullScore: "min" }, true);
 * console.assert(r.values.nullScore === "min" && r.from.nullScore === "given");
 * console.assert(r.values.maxQuestionLength === 0 && r.from.maxQuestionLength === "preset");
 * ```
 */
export function resolveSquadSettings(
  given: Partial<SquadSettings> | undefined,
  usePreset: boolean,
): ResolvedSquadSettings {
  const base = usePreset ? SQUAD_SEED_SETTINGS : SQUAD_LIBRARY_SETTINGS;
  const values = { ...base } as SquadSettings;
  const from = {} as Record<keyof SquadSettings, SquadOrigin>;
  for (const k of SQUAD_SETTING_KEYS) {
    const v = given?.[k];
    if (v !== undefined) (values as unknown as Record<string, unknown>)[k] = v;
    from[k] = v !== undefined ? "given" : usePreset ? "preset" : "default";
  }
  if (!(Number.isInteger(values.maxQuestionLength) && values.maxQuestionLength >= 0)) {
    throw new RangeError(
      `--max-question-length ${values.maxQuestionLength} must be an integer ≥ 0 ` +
        `(0: the whole question)`,
    );
  }
  return { values, from };
}

/**
 * The row readers' options for `task` from a command's SQuAD settings (`squad`; absent: resolved
 * here with `usePreset`): the question length and the answer rule for SQuAD, nothing for another
 * task, for which a value given is an error naming its flag.
 */
export function squadRowsFor(
  task: { name: string; format: string },
  squad: ResolvedSquadSettings | undefined,
  usePreset: boolean,
): { maxQueryLength?: number; answerRule?: SquadAnswerRule } {
  if (task.format !== "squad-json") {
    const given = squad && SQUAD_SETTING_KEYS.find((k) => squad.from[k] === "given");
    if (given) {
      throw new InputError(
        `${SQUAD_SETTING_FLAGS[given]} is a SQuAD setting; task ${task.name} has no questions ` +
          `and windows: leave it out`,
      );
    }
    return {};
  }
  return squadRowOptions((squad ?? resolveSquadSettings(undefined, usePreset)).values);
}

/** What the row readers take from the settings: the question length and the answer rule. */
export function squadRowOptions(
  s: SquadSettings,
): { maxQueryLength: number; answerRule: SquadAnswerRule } {
  return {
    maxQueryLength: s.maxQuestionLength,
    answerRule: { nullScore: s.nullScore, maxContext: s.maxContext, ensemble: s.ensemble },
  };
}

/**
 * A plan's lines for SQuAD's settings of a run of `task` (one, {@linkcode describeSquadSettings}
 * of the settings `keys` the stage uses; none for another task).
 */
export function squadPlanLines(
  task: { format: string },
  squad: ResolvedSquadSettings | undefined,
  usePreset: boolean,
  keys: readonly (keyof SquadSettings)[] = SQUAD_SETTING_KEYS,
): string[] {
  if (task.format !== "squad-json") return [];
  return [describeSquadSettings(squad ?? resolveSquadSettings(undefined, usePreset), keys)];
}

/**
 * The plan's line for SQuAD's settings, each with where it came from, e.g. `squad: question
 * whole (preset), null score max over windows (preset), max-context off (preset), ensemble
 * seed (preset)`; a given value names its flag.
 */
export function describeSquadSettings(
  r: ResolvedSquadSettings,
  keys: readonly (keyof SquadSettings)[] = SQUAD_SETTING_KEYS,
): string {
  const v = r.values;
  const text: Record<keyof SquadSettings, string> = {
    maxQuestionLength: v.maxQuestionLength === 0
      ? "question whole"
      : `question ≤ ${v.maxQuestionLength} tokens`,
    nullScore: `null score ${v.nullScore} over windows`,
    maxContext: `max-context ${v.maxContext ? "on" : "off"}`,
    ensemble: `ensemble rule ${v.ensemble}`,
  };
  const parts = keys.map((k) =>
    `${text[k]} (${r.from[k] === "given" ? SQUAD_SETTING_FLAGS[k] : r.from[k]})`
  );
  return `squad: ${parts.join(", ")}`;
}
