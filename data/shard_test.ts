// --shard I/N: parsing, `auto` from Slurm's or Kubernetes' index variable, the errors for a
// missing variable or an index outside 0..N-1, {shard} in paths, and the contiguous splits
// (items evenly; rows at example boundaries, a SQuAD question's windows in one shard).
import assert from "node:assert/strict";
import { parseShard, shardPath, shardRange, shardRows } from "./shard.ts";
import { InputError } from "./errors.ts";

const none = {};

Deno.test("parseShard: I/N as given, auto from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX", () => {
  assert.deepEqual(parseShard("0/1", none), { index: 0, count: 1 });
  assert.deepEqual(parseShard(" 2 / 3 ", none), { index: 2, count: 3 });
  assert.deepEqual(parseShard("auto/3", { SLURM_ARRAY_TASK_ID: "1" }), { index: 1, count: 3 });
  assert.deepEqual(parseShard("auto/4", { JOB_COMPLETION_INDEX: "3" }), { index: 3, count: 4 });
  // Both set and agreeing (a Slurm job inside a pod, say) is fine.
  assert.deepEqual(
    parseShard("auto/4", { SLURM_ARRAY_TASK_ID: "2", JOB_COMPLETION_INDEX: "2" }),
    { index: 2, count: 4 },
  );
  // The process environment by default.
  const env = (k: string) => k === "JOB_COMPLETION_INDEX" ? "0" : undefined;
  assert.deepEqual(parseShard("auto/2", env), { index: 0, count: 2 });
});

Deno.test("parseShard: clear errors for a bad spec, a missing variable, an index outside 0..N-1", () => {
  const refused = (spec: string, env: Record<string, string>, re: RegExp) =>
    assert.throws(
      () => parseShard(spec, env),
      (e) => e instanceof InputError && re.test(e.message),
    );
  refused("3", none, /--shard "3": not I\/N with 0 ≤ I < N; give I\/N, the 0-based shard I of N/);
  refused("a/3", none, /give I\/N/);
  refused("-1/3", none, /give I\/N/);
  refused("0/0", none, /the shard count N must be 1 to 1,000,000/);
  // A count past any array's size (it once reached an array allocation: "Invalid array length").
  refused("0/99999999999", none, /the shard count N must be 1 to 1,000,000/);
  refused("3/3", none, /index 3 is outside 0\.\.2; .*sbatch --array=0-2/);
  refused(
    "auto/3",
    none,
    /auto reads the index from SLURM_ARRAY_TASK_ID .* or JOB_COMPLETION_INDEX .*neither is set; .*sbatch --array=0-2\) or give the index \(--shard 0\/3\)/,
  );
  refused(
    "auto/3",
    { SLURM_ARRAY_TASK_ID: "5" },
    /index 5 \(SLURM_ARRAY_TASK_ID=5\) is outside 0\.\.2/,
  );
  refused("auto/3", { JOB_COMPLETION_INDEX: "x" }, /JOB_COMPLETION_INDEX="x" is not an index/);
  refused(
    "auto/3",
    { SLURM_ARRAY_TASK_ID: "1", JOB_COMPLETION_INDEX: "2" },
    /SLURM_ARRAY_TASK_ID=1 and JOB_COMPLETION_INDEX=2 disagree/,
  );
});

Deno.test("shardPath replaces every {shard}; shardRange tiles 0..count evenly", () => {
  assert.equal(
    shardPath("acts/{shard}/train-{shard}.h5", { index: 7, count: 9 }),
    "acts/7/train-7.h5",
  );
  assert.equal(shardPath("acts/train.h5", { index: 7, count: 9 }), "acts/train.h5");
  for (const [count, N] of [[10, 3], [3, 3], [2, 5], [1000, 7], [0, 2]]) {
    const ranges = Array.from({ length: N }, (_, i) => shardRange(count, { index: i, count: N }));
    assert.equal(ranges[0].start, 0);
    assert.equal(ranges.at(-1)!.end, count);
    for (let i = 1; i < N; i++) assert.equal(ranges[i].start, ranges[i - 1].end);
    const sizes = ranges.map((r) => r.end - r.start);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${count}/${N}: ${sizes}`);
  }
});

Deno.test("shardRows: contiguous, about equal rows, never splitting an example's rows", () => {
  // SQuAD-like: example k has 1 + (k*7 mod 4) windows.
  const idx: number[] = [];
  for (let k = 0; k < 40; k++) for (let w = 0; w <= (k * 7) % 4; w++) idx.push(100 + k);
  for (const N of [1, 2, 3, 5, 8]) {
    const parts = Array.from({ length: N }, (_, i) => shardRows(idx, { index: i, count: N }));
    assert.equal(parts[0].rowStart, 0);
    assert.equal(parts[0].exampleStart, 0);
    assert.equal(parts.at(-1)!.rowEnd, idx.length);
    assert.equal(parts.at(-1)!.exampleEnd, 40);
    for (const [i, p] of parts.entries()) {
      if (i > 0) {
        assert.equal(p.rowStart, parts[i - 1].rowEnd);
        assert.equal(p.exampleStart, parts[i - 1].exampleEnd);
      }
      // Boundaries fall between examples, and the example count matches the rows'.
      assert.ok(p.rowStart === 0 || idx[p.rowStart] !== idx[p.rowStart - 1]);
      assert.equal(new Set(idx.slice(p.rowStart, p.rowEnd)).size, p.exampleEnd - p.exampleStart);
      // About equal: within one example's rows (at most 4) of rows/N.
      assert.ok(
        Math.abs(p.rowEnd - p.rowStart - idx.length / N) <= 4 + 1,
        `${N}: ${p.rowStart}..${p.rowEnd}`,
      );
    }
  }
  // One row per example (GLUE): the rows split as shardRange splits them.
  const glue = Array.from({ length: 10 }, (_, i) => i);
  for (let i = 0; i < 3; i++) {
    const p = shardRows(glue, { index: i, count: 3 });
    const r = shardRange(10, { index: i, count: 3 });
    assert.deepEqual([p.rowStart, p.rowEnd], [r.start, r.end]);
  }
  // More shards than examples: every shard's command says so (not only the empty one's).
  assert.throws(
    () => shardRows([0, 0, 1, 1], { index: 0, count: 3 }),
    /--shard 0\/3: shard \d would hold no rows: the split has 2 examples in 4 rows/,
  );
});
