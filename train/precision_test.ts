// The precision preset (train/precision.ts): f16-mixed only for training on a hardware adapter
// with shader-f16; f32 for capture, evaluation and software adapters; a given value wins, and
// f16-mixed on an adapter without shader-f16 says in its one line how it runs there.
import { deepStrictEqual, match, throws } from "node:assert/strict";
import { resolvePrecision } from "./precision.ts";

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
