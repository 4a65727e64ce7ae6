/**
 * The readers under a short seeded fuzz (scripts/fuzz.ts): every format's seeds and mutations,
 * a fixed number per format (the same inputs on any machine, however busy: never a share of a
 * time budget), must end in a valid result or an InputError naming the file. And the fuzzer
 * itself: it must tell a TypeError, an InputError that names no file, an unhandled rejection, a
 * hang and an input past the memory limit from a valid result and a refusal, save each failing
 * input, and replay it.
 */
import assert from "node:assert/strict";
import { replay, runFuzz } from "../scripts/fuzz.ts";
import { FORMATS } from "../scripts/_fuzz_formats.ts";

Deno.test("fuzz: a short seeded run of every reader finds no failure", async () => {
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  try {
    // 300 inputs per format, whatever the machine's speed (about 15 s on 2 idle cores). The
    // limit per input only tells a hang (a slow input is retried with 5x the limit).
    const report = await runFuzz({
      seed: 20,
      inputs: 300,
      out,
      timeoutMs: 4000,
      log: (l) => lines.push(l),
    });
    assert.deepEqual(report.failures, [], lines.join("\n"));
    assert.deepEqual(report.stats.map((s) => s.format), FORMATS.map((f) => f.name));
    for (const s of report.stats) {
      assert.equal(s.inputs, 300, s.format);
      // Both ends are exercised: some inputs are still read, others refused.
      assert.ok(s.accepted > 0 && s.refused > 0, JSON.stringify(s));
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("fuzz: failures are told apart, saved and replayed; a hang is stopped", async () => {
  const out = await Deno.makeTempDir();
  const lines: string[] = [];
  try {
    // The self-check format's 7 seeds, unmutated: one per outcome.
    const report = await runFuzz({
      formats: ["self-check"],
      inputs: 7,
      out,
      timeoutMs: 300,
      memoryMb: 192,
      log: (l) => lines.push(l),
    });
    const [st] = report.stats;
    assert.equal(st.inputs, 7);
    assert.equal(st.accepted, 1, "valid");
    assert.equal(st.refused, 1, "an InputError naming the file");
    const got = report.failures.map((f) => `${f.kind}: ${f.error?.name ?? ""}`);
    // Seeds run last to first: memory, hang, unhandled rejection, unnamed InputError, TypeError.
    assert.deepEqual(got, [
      "memory: ",
      "hang: ",
      "failure: RangeError",
      "failure: InputError (does not name the file)",
      "failure: TypeError",
    ]);
    assert.match(
      lines.join("\n"),
      /FAIL self-check seed 1 input -3 \[seed 2 unmutated\]: TypeError/,
    );
    for (const f of report.failures) {
      assert.ok(f.saved.startsWith(out), f.saved);
      const r = await replay(f.saved, "self-check", 300, 192);
      assert.equal(r.failed, true, r.line);
    }
    const valid = `${out}/valid.txt`;
    await Deno.writeTextFile(valid, "valid");
    assert.deepEqual(await replay(valid, "self-check"), {
      failed: false,
      line: `${valid}: ok (a valid result)`,
    });
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
