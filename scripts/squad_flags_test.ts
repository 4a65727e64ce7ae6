import assert from "node:assert/strict";
import {
  describeSquadSettings,
  SQUAD_LIBRARY_SETTINGS,
  squadPlanLines,
} from "../train/squad_settings.ts";
import { parseCommand } from "./_flag_parse.ts";
import { squadSettings } from "./_cli.ts";
import { getTask } from "../tasks/mod.ts";

// The seed's values, written from its code: code/torch/utils/squad_preprocess.py (dfdafad,
// 0c7e25c) cuts only the context and keeps the largest null score with no max-context check;
// code/tensorflow/utils/evaluation.py (dfdafad): the ensemble's independent argmaxes.
const SEED = { maxQuestionLength: 0, nullScore: "max", maxContext: false, ensemble: "seed" };

Deno.test("SQuAD settings from the command line: flags, the seed's default, the plan's line", () => {
  const none = squadSettings(parseCommand("squad", ["--model", "bert", "--data-dir", "d"]).values);
  assert.deepEqual(none.values, SEED);
  assert.equal(
    describeSquadSettings(none),
    "squad: question whole (preset), null score max over windows (preset), max-context off " +
      "(preset), ensemble rule seed (preset)",
  );
  const given = squadSettings(
    parseCommand("squad", [
      "--model",
      "bert",
      "--data-dir",
      "d",
      "--max-question-length",
      "64",
      "--squad-null",
      "min",
      "--max-context",
      "on",
    ]).values,
  );
  assert.deepEqual(given.values, { ...SQUAD_LIBRARY_SETTINGS, ensemble: "seed" });
  assert.equal(
    describeSquadSettings(given),
    "squad: question ≤ 64 tokens (--max-question-length), null score min over windows " +
      "(--squad-null), max-context on (--max-context), ensemble rule seed (preset)",
  );
  const ens = squadSettings(
    parseCommand("ensemble", [
      "--task",
      "squad",
      "--logits",
      "a.npy",
      "b.npy",
      "--data",
      "d.json",
      "--squad-ensemble",
      "ours",
    ]).values,
  );
  assert.equal(ens.values.ensemble, "ours");
  // A plan shows the line for SQuAD only; a library run without preset shows its defaults.
  assert.deepEqual(squadPlanLines(getTask("sst2"), none, true), []);
  assert.match(squadPlanLines(getTask("squad"), undefined, false)[0], /null score min .*default/);
});
