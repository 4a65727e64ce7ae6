// The precision preset (train/precision.ts): f16-mixed only for training on a hardware adapter
// with shader-f16; f32 for capture, evaluation and software adapters; a given value wins, and
// f16-mixed on an adapter without shader-f16 says in its one line how it runs there. A resumed
// output's own precision is the default (float32 for one recorded before `--precision`).
import { deepStrictEqual, match, throws } from "node:assert/strict";
import { resolvePrecision, resumePrecision, trainingPrecision } from "./precision.ts";

const hw = { isFallback: false, hasF16: true, adapterName: "NVIDIA H100" };
const sw = { isFallback: true, hasF16: false, adapterName: "SwiftShader Device" };

Deno.test("precision: the preset follows the seed and the adapter", () => {
  deepStrictEqual(resolvePrecision(hw, undefined, "training").precision, "f16-mixed");
  deepStrictEqual(resolvePrecision(hw, undefined, "capture").precision, "f32");
  deepStrictEqual(resolvePrecision(hw, undefined, "evaluation").precision, "f32");
  match(resolvePrecision(sw, undefined, "training").why, /SwiftShader Device is a software/);
  deepStrictEqual(resolvePrecision(sw, undefined, "training").precision, "f32");
  const noF16 = { ...hw, hasF16: false };
  match(resolvePrecision(noF16, undefined, "training").why, /does not offer shader-f16/);
});

Deno.test("precision: given wins; f16-mixed without shader-f16 says how it runs, in one line", () => {
  deepStrictEqual(resolvePrecision(hw, "f32", "training"), { precision: "f32", why: "given" });
  const c = resolvePrecision(sw, "f16-mixed", "training");
  deepStrictEqual(c.precision, "f16-mixed");
  match(c.why, /SwiftShader Device lacks shader-f16.*unpack2x16float/);
  deepStrictEqual(c.why.includes("\n"), false);
  throws(() => resolvePrecision(hw, "bf16", "training"), /--precision bf16: expected one of f32/);
});

Deno.test("precision: a resumed output's own is the default; given still wins", () => {
  // Recorded before --precision existed (no key): float32, even where the preset is f16-mixed.
  const old = { what: "the run in r", settings: { lr: 1e-5 } };
  deepStrictEqual(resumePrecision(hw, undefined, old), {
    precision: "f32",
    why: "preset: resumes the run in r, made in f32",
  });
  const mixed = { what: "the run in r", settings: { precision: "f16-mixed" } };
  deepStrictEqual(resumePrecision(sw, undefined, mixed).precision, "f16-mixed");
  // Given: as resolvePrecision (the output's settings diff then refuses the other one).
  deepStrictEqual(resumePrecision(hw, "f32", mixed), { precision: "f32", why: "given" });
  deepStrictEqual(resumePrecision(hw, undefined, null).precision, "f16-mixed");
  // A choice already resolved passes through a stage unchanged.
  const c = { precision: "f16-mixed" as const, why: "from the caller" };
  deepStrictEqual(trainingPrecision(sw, c), c);
  deepStrictEqual(trainingPrecision(sw, undefined).precision, "f32");
});
