import { deepStrictEqual, equal, ok } from "node:assert/strict";
import {
  finishOverwrite,
  hasMarker,
  overwriteMarkerPathOf,
  readMarker,
  readOverwrite,
  resumeOverwrite,
  startOverwrite,
  underOverwrite,
  writeMarker,
} from "./mod.ts";

Deno.test("overwrite: marked before removing, void to readers while removing, continued, unmarked last", async () => {
  const dir = await Deno.makeTempDir({ prefix: "overwrite_unit_" });
  const sub = `${dir}/ap`;
  await Deno.mkdir(sub);
  await writeMarker(sub, { old: true }, "results.json");
  await writeMarker(dir, { old: true });
  // A kill inside the removal: the mark is there, the old markers too.
  let removed = 0;
  await startOverwrite(dir, "test --overwrite", () => {
    throw new Error("killed");
  }).catch(() => {});
  equal((await readOverwrite(dir))?.phase, "removing");
  equal((await underOverwrite(sub))?.dir, dir);
  equal(await readMarker(sub, "results.json"), null, "an old marker under a removal is void");
  equal(await hasMarker(dir), false);
  // A rerun continues: the removal is redone, then the new output is being written.
  const m = await resumeOverwrite(dir, async () => {
    removed++;
    await Deno.remove(sub, { recursive: true });
    await Deno.remove(`${dir}/complete.json`);
  });
  equal(m?.command, "test --overwrite");
  equal(removed, 1);
  equal((await readOverwrite(dir))?.phase, "writing");
  await writeMarker(dir, { new: true });
  deepStrictEqual(await readMarker(dir), { new: true }, "the new output's own marker counts");
  await resumeOverwrite(dir, () => Promise.reject(new Error("not again")));
  await finishOverwrite(dir);
  ok(!(await Deno.stat(overwriteMarkerPathOf(dir)).then(() => true, () => false)));
  equal(await underOverwrite(dir), null);
  await finishOverwrite(dir); // none is fine
  await Deno.remove(dir, { recursive: true });
});
