// The layering holds: reads every project source file's imports and fails on any that goes up
// (or to a layer that is not below), as README "How it is built" draws it:
//
//   scripts/ ← train/ ← report/ ← tasks/ ← model/ ← kernels/ ← data/
//
// each importing only its own layer and those to its right; data/ imports none of the others.
// Tests (`*_test.ts`, tests/) may import anything, as may mod.ts, which re-exports the public API.
// One exception, named: the benchmarks (scripts/bench/) run the TF.js reference implementations
// of tests/oracle/ as the peer they measure against.
import { deepStrictEqual } from "node:assert/strict";

const LAYERS = ["data", "kernels", "model", "tasks", "report", "train", "scripts"] as const;
const ROOT = new URL("../", import.meta.url).pathname;

/** Allowed imports outside the layering, with the reason. */
const EXCEPTIONS: { from: RegExp; to: RegExp; why: string }[] = [
  {
    from: /^scripts\/bench(\.ts|\/)/,
    to: /^tests\/oracle\//,
    why: "benchmarks time the TF.js reference BERT as the peer",
  },
];

/** Relative module specifiers a file imports (static, re-exports, dynamic, worker URLs). */
export function importsOf(source: string): string[] {
  // Comments hold JSDoc examples whose imports are not the module's own.
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;"'`]*?from\s*["']([^"']+)["']/g,
    /\bimport\s*["']([^"']+)["']/g,
    /\bimport\(\s*["']([^"']+)["']\s*\)/g,
    /new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]);
  // Modules only: `new URL("../../shared/data/...", import.meta.url)` is a data path.
  return out.filter((s) => s.startsWith(".") && /\.(ts|js)$/.test(s));
}

/** The layer index of a project path, or -1 outside the layers. */
function layerOf(path: string): number {
  return LAYERS.indexOf(path.split("/")[0] as typeof LAYERS[number]);
}

function exempt(path: string): boolean {
  return path.endsWith("_test.ts") || path.startsWith("tests/") || path === "mod.ts";
}

/** Every import that breaks the layering: "from → to (why)". */
export function violations(files: Map<string, string>): string[] {
  const bad: string[] = [];
  for (const [from, source] of files) {
    if (exempt(from)) continue;
    const lf = layerOf(from);
    for (const spec of importsOf(source)) {
      const to = new URL(spec, `file:///${from}`).pathname.slice(1);
      if (EXCEPTIONS.some((e) => e.from.test(from) && e.to.test(to))) continue;
      const lt = layerOf(to);
      if (lt < 0) bad.push(`${from} → ${to} (outside the layers)`);
      else if (lt > lf) bad.push(`${from} → ${to} (${LAYERS[lf]}/ may not import ${LAYERS[lt]}/)`);
    }
  }
  return bad.sort();
}

async function projectFiles(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(`${ROOT}${dir}`)) {
      const rel = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory && !["node_modules", ".git", ".device", "results"].includes(e.name)) {
        await walk(rel);
      } else if (e.isFile && rel.endsWith(".ts")) {
        files.set(rel, await Deno.readTextFile(`${ROOT}${rel}`));
      }
    }
  };
  for (const l of [...LAYERS, "tests"]) await walk(l);
  files.set("mod.ts", await Deno.readTextFile(`${ROOT}mod.ts`));
  return files;
}

Deno.test("the checker sees static, re-exported, dynamic and worker imports, not commented ones", () => {
  const src = [
    `import { a } from "../model/tensor.ts";`,
    `export { b } from "./x.ts";`,
    `import type {\n  C,\n} from "../train/loop.ts";`,
    `const m = await import("../scripts/_cli.ts");`,
    `new Worker(new URL("./_w.ts", import.meta.url).href);`,
    `/** @example\n * import { z } from "../train/reproduce.ts";\n */`,
    `// import { y } from "../train/finetune.ts";`,
    `import h5 from "h5wasm/node";`,
  ].join("\n");
  deepStrictEqual(importsOf(src), [
    "../model/tensor.ts",
    "./x.ts",
    "../train/loop.ts",
    "../scripts/_cli.ts",
    "./_w.ts",
  ]);
  const fake = new Map([
    ["model/ops.ts", `import { t } from "../tasks/mod.ts";`],
    ["data/x.ts", `import { k } from "../kernels/device.ts";`],
    ["train/ok.ts", `import { t } from "../tasks/mod.ts";`],
    ["model/ops_test.ts", `import { t } from "../train/loop.ts";`],
  ]);
  deepStrictEqual(violations(fake), [
    "data/x.ts → kernels/device.ts (data/ may not import kernels/)",
    "model/ops.ts → tasks/mod.ts (model/ may not import tasks/)",
  ]);
});

Deno.test("every import goes down the layers: scripts ← train ← report ← tasks ← model ← kernels ← data", async () => {
  const files = await projectFiles();
  deepStrictEqual(violations(files), []);
  // The check saw the project, not an empty folder.
  for (const l of LAYERS) {
    const n = [...files.keys()].filter((f) => f.startsWith(`${l}/`)).length;
    deepStrictEqual(n > 2, true, `${l}/ has ${n} files`);
  }
});
