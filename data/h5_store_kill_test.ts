// A store's close killed at each of its write steps (rows_complete, fingerprint, complete, the
// file closed before its sidecar) is finished by a rerun, to a store equal to an uninterrupted
// one; a store left with its fingerprint but not its completion marker (the old failure: "HDF5
// could not close it (attribute already exists)") is completed by a rerun.
import assert from "node:assert/strict";
import h5wasm from "h5wasm/node";
import { H5Reader, H5Store, type H5StoreSettings, statePath } from "./h5_store.ts";
import { KILLED_EXIT_CODE } from "./output/kill.ts";
import { finishStore, storeContents as contents } from "./_h5_store_child.ts";

const S: H5StoreSettings = {
  n: 7,
  layers: 2,
  tokens: 4,
  hidden: 3,
  layout: "full",
  dtype: "f16",
  chunkRows: 2,
  attrs: { model_id: "tiny", weights_hash: "abcd", task: "RTE", split: "train" },
};

function child(path: string, exitAt: string) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "--config", new URL("../deno.json", import.meta.url).pathname],
      new URL("./_h5_store_child.ts", import.meta.url).pathname,
      ...["--finish", path, JSON.stringify(S), "3"],
    ],
    env: { BERTVISION_TEST_EXIT_AT: exitAt },
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("h5 store: a close killed at each write step is finished by a rerun", async () => {
  const dir = await Deno.makeTempDir({ prefix: "h5_kill_" });
  try {
    await finishStore(`${dir}/ref.h5`, S, 3);
    const want = await contents(`${dir}/ref.h5`);
    const steps = ["close:rows_complete", "close:fingerprint", "close:complete", "close:closed"];
    await Promise.all(steps.map(async (at) => {
      const path = `${dir}/${at.replace(":", "-")}.h5`;
      const cut = await child(path, at);
      assert.equal(
        cut.code,
        KILLED_EXIT_CODE,
        `killed at ${at}: ${new TextDecoder().decode(cut.stderr)}`,
      );
      await finishStore(path, S, 3);
      assert.deepEqual(await contents(path), want, at);
      const state = JSON.parse(await Deno.readTextFile(statePath(path)));
      assert.equal(state.complete, true, at);
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("h5 store: a store with its fingerprint but no completion marker is completed by a rerun", async () => {
  const dir = await Deno.makeTempDir({ prefix: "h5_kill_" });
  try {
    const path = `${dir}/cut.h5`;
    await finishStore(path, S, 3);
    const want = await contents(path);
    // What a kill between the two marker attributes leaves: the fingerprint, no `complete`,
    // and a sidecar claiming every row but not completion.
    await h5wasm.ready;
    const f = new h5wasm.File(path, "a");
    f.delete_attribute("complete");
    f.close();
    const sp = statePath(path);
    const state = JSON.parse(await Deno.readTextFile(sp));
    await Deno.writeTextFile(sp, JSON.stringify({ ...state, complete: false }));
    const r = await H5Reader.open(path);
    assert.equal(r.complete, false);
    r.close();
    const st = await H5Store.openForResume(path, S, { flushEveryRows: 3 });
    assert.equal(st.rowsDone, S.n);
    await st.close(); // on the old code: "HDF5 could not close it (attribute already exists)"
    assert.deepEqual(await contents(path), want);
    assert.equal(JSON.parse(await Deno.readTextFile(sp)).complete, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
