// The output protocol's pieces (data/output/): an atomic write that fails leaves no temporary
// file and says `PATH: cannot write it (why)`; the one settings diff shape; completion markers
// written, read, refused when unreadable and removed. The end-to-end check that every kind of
// output fails the same way is tests/output_test.ts.
import { deepStrictEqual, equal, match, ok, rejects, throws } from "node:assert/strict";
import { InputError } from "../errors.ts";
import {
  hasMarker,
  markerPathOf,
  readMarker,
  removeMarker,
  settingsDiff,
  settingsMismatch,
  tempPathOf,
  writeFileAtomicSync,
  writeJsonAtomic,
  writeMarker,
} from "./mod.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("atomic write: replaces whole, through PATH.tmp-PID, and leaves nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_test_" });
  const path = `${dir}/results.json`;
  await writeJsonAtomic(path, { a: 1 });
  await writeJsonAtomic(path, { a: 2 });
  deepStrictEqual(JSON.parse(await Deno.readTextFile(path)), { a: 2 });
  equal(tempPathOf(path), `${path}.tmp-${Deno.pid}-${Deno.hostname()}`);
  deepStrictEqual(await names(dir), ["results.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic write: a failure is one InputError naming the path, no temp file left", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_test_" });
  // A folder where the file should go: the rename fails after the temp file was written.
  const path = `${dir}/taken`;
  await Deno.mkdir(`${path}/inside`, { recursive: true });
  await rejects(writeJsonAtomic(path, { a: 1 }), (e) => {
    ok(e instanceof InputError);
    match((e as Error).message, new RegExp(`^${path}: cannot write it \\(`));
    equal((e as InputError).file, path);
    return true;
  });
  throws(() => writeFileAtomicSync(path, new Uint8Array(3)), /: cannot write it \(/);
  // A missing folder fails at the first write.
  await rejects(writeJsonAtomic(`${dir}/no/such/x.json`, 1), /no\/such\/x\.json: cannot write it/);
  deepStrictEqual(await names(dir), ["taken"], "no .tmp-PID left");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("atomic write: BERTVISION_TEST_WRITE_FAIL fails the writes of matching paths", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_test_" });
  Deno.env.set("BERTVISION_TEST_WRITE_FAIL", "victim");
  try {
    await rejects(
      writeJsonAtomic(`${dir}/victim.json`, 1),
      /victim\.json: cannot write it \(injected/,
    );
    await writeJsonAtomic(`${dir}/other.json`, 1);
  } finally {
    Deno.env.delete("BERTVISION_TEST_WRITE_FAIL");
  }
  deepStrictEqual(await names(dir), ["other.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("settingsDiff: sorted `key: there → now`, unset named, key order and ignored keys not differences", () => {
  deepStrictEqual(settingsDiff({ lr: 1e-3, seed: 1, b: "x" }, { seed: 2, lr: 1e-3, c: [1] }), [
    'b: "x" → (unset)',
    "c: (unset) → [1]",
    "seed: 1 → 2",
  ]);
  deepStrictEqual(settingsDiff({ o: { a: 1, b: 2 } }, { o: { b: 2, a: 1 } }), []);
  deepStrictEqual(settingsDiff({ at: "x", n: 1 }, { at: "y", n: 1 }, new Set(["at"])), []);
  // Own keys only: "constructor" is a setting here, not Object.prototype's.
  deepStrictEqual(settingsDiff({}, { constructor: 1 }), ["constructor: (unset) → 1"]);
  // `defaults`: a key absent on a side counts as its default (precision recorded only when
  // f16-mixed): absent equals "f32", and a difference names both values, never (unset).
  const p = { precision: "f32" };
  deepStrictEqual(settingsDiff({ seed: 1 }, { seed: 1, precision: "f32" }, undefined, p), []);
  deepStrictEqual(settingsDiff({ precision: "f16-mixed" }, {}, undefined, p), [
    'precision: "f16-mixed" → "f32"',
  ]);
  deepStrictEqual(settingsDiff({}, { precision: "f16-mixed" }, undefined, p), [
    'precision: "f32" → "f16-mixed"',
  ]);
  const e = settingsMismatch("out/ap", ["seed: 1 → 2"], "rerun with --overwrite");
  ok(e instanceof InputError);
  equal(e.message, "out/ap was made with other settings (seed: 1 → 2); rerun with --overwrite");
});

Deno.test("markers: written last and read back, absent is null, unreadable is an error, removed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "output_test_" });
  equal(await readMarker(dir), null);
  equal(await hasMarker(dir), false);
  await writeMarker(dir, { dev: ["dev"] });
  deepStrictEqual(await readMarker(dir), { dev: ["dev"] });
  ok(await hasMarker(dir));
  await Deno.writeTextFile(markerPathOf(dir), "{half");
  await rejects(readMarker(dir), /complete\.json: unreadable .*delete it to redo/);
  await removeMarker(dir);
  await removeMarker(dir); // absent is fine
  equal(await hasMarker(dir), false);
  await Deno.remove(dir, { recursive: true });
});
