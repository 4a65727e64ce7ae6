// The `--json` schema of `deno task bench` (scripts/bench/common.ts `jsonLine`, BENCHMARKS.md):
// every stdout line is one JSON object with at least name, shape, adapter, ours, peer and unit;
// ours is a positive (higher-is-better) figure, peer a positive one or null. Checked on a quick
// run of the cheapest sections, and on jsonLine itself for the figures a section may lack.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { type BenchResult, JSON_KEYS, jsonLine } from "./common.ts";

/**
 * The sections cheap enough in `--quick` for the suite (about 15 s together on llvmpipe with 2
 * cores): three with a TF.js peer, and capture, whose peer is null. train, the costliest (both
 * sides' fine-tuning steps, then an HDF5 file written and trained on), is left out.
 */
const CHEAP = ["kernels", "matmul", "bert", "capture"];

/** Asserts one parsed `--json` row follows the schema; `where` names it in failures. */
function checkRow(row: Record<string, unknown>, where: string): void {
  for (const k of JSON_KEYS) ok(k in row, `${where}: no "${k}"`);
  ok(typeof row.name === "string" && row.name.length > 0, `${where}: name`);
  ok(
    Array.isArray(row.shape) && row.shape.length > 0 &&
      row.shape.every((d) => Number.isInteger(d) && d > 0),
    `${where}: shape ${JSON.stringify(row.shape)}`,
  );
  ok(typeof row.adapter === "string" && row.adapter.length > 0, `${where}: adapter`);
  ok(typeof row.unit === "string" && row.unit.length > 0, `${where}: unit`);
  ok(typeof row.ours === "number" && row.ours > 0, `${where}: ours ${row.ours}`);
  ok(
    row.peer === null || (typeof row.peer === "number" && row.peer > 0),
    `${where}: peer ${row.peer}`,
  );
  ok(!String(row.note ?? "").includes("RESULT MISMATCH"), `${where}: ${row.note}`);
}

Deno.test("bench: jsonLine always writes the schema keys, null for a missing figure", () => {
  const r: BenchResult = {
    section: "s",
    name: "case",
    shape: [2, 3],
    ours: 1.5,
    peer: null,
    unit: "GB/s",
    adapter: "llvmpipe",
  };
  const row = JSON.parse(jsonLine(r));
  deepStrictEqual(Object.keys(row).slice(0, 6), [
    "name",
    "shape",
    "ours",
    "peer",
    "unit",
    "adapter",
  ]);
  equal(row.peer, null);
  // A figure a section failed to produce (undefined, NaN) is null, never a missing key.
  const broken = JSON.parse(jsonLine({ ...r, ours: undefined as unknown as null, peer: NaN }));
  ok("ours" in broken && broken.ours === null && broken.peer === null);
});

Deno.test(`bench --quick --json --only ${CHEAP}: every line carries the schema`, async () => {
  const root = new URL("../..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "scripts/bench.ts", "--quick", "--json", "--only", CHEAP.join(",")],
      ...["--min-seconds", "0.2"], // the figures only need to exist
    ],
    cwd: root,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  equal(out.code, 0, `bench exited ${out.code}:\n${stderr.slice(-2000)}`);
  const lines = new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim());
  ok(lines.length > 0, `no JSON lines; stderr:\n${stderr.slice(-2000)}`);
  const sections = new Set<string>();
  lines.forEach((line, i) => {
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch {
      throw new Error(`stdout line ${i + 1} is not JSON: ${line.slice(0, 200)}`);
    }
    ok(row !== null && typeof row === "object" && !Array.isArray(row), `line ${i + 1}: object`);
    checkRow(row, `line ${i + 1} (${row.name})`);
    sections.add(String(row.section));
  });
  deepStrictEqual([...sections].sort(), [...CHEAP].sort(), "one row or more per section");
});
