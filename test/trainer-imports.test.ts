// runtime/trainer ships inside browser bundles of compiled models: it must never import the
// compiler or the grammar, and its browser-safe core (index.ts and everything it reaches) must not
// reach Node built-ins or Node-only packages. cli.ts and progress.ts are the Node side.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { TrainConfig } from "../compiler/check/program.ts";
import type { TrainSettings } from "../runtime/trainer/index.ts";

// Compile-time check (tsc): the compiler's train section can be handed to runTrainerCli as is.
export const compilerDefaultsFit = (c: TrainConfig): TrainSettings => c;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const trainer = path.join(root, "runtime", "trainer");

/** Module specifiers a file loads at run time (type-only imports are erased, so they do not count). */
function runtimeImports(file: string): string[] {
  const src = fs.readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(import|export)\s+(type\s+)?([^;]*?)\s*from\s*["']([^"']+)["']/g)) {
    if (!m[2]) out.push(m[4]!);
  }
  for (const m of src.matchAll(/(?:^|\n)\s*import\s*["']([^"']+)["']/g)) out.push(m[1]!);
  for (const m of src.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)) out.push(m[1]!);
  return out;
}

test("no file of runtime/trainer imports compiler/ or grammar/ (not even types)", () => {
  const files = fs.readdirSync(trainer).filter((f) => f.endsWith(".ts"));
  assert.ok(files.length >= 8);
  for (const f of files) {
    const src = fs.readFileSync(path.join(trainer, f), "utf8");
    assert.not.match(src, /from\s+["'][^"']*\/(compiler|grammar)\//, f);
    assert.not.match(src, /import\(\s*["'][^"']*\/(compiler|grammar)\//, f);
  }
});

test("the browser-safe core reaches no Node built-in, Node-only package, compiler or grammar file", () => {
  const seen = new Set<string>();
  const queue = [path.join(trainer, "index.ts")];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const rel = path.relative(root, file);
    assert.ok(rel.startsWith("runtime" + path.sep), `${rel} is outside runtime/`);
    for (const spec of runtimeImports(file)) {
      assert.ok(spec.startsWith("."), `${rel} imports the package ${spec}; the browser core may only import runtime/ files`);
      queue.push(path.resolve(path.dirname(file), spec));
    }
  }
  const names = [...seen].map((f) => path.relative(root, f));
  assert.ok(names.includes(path.join("runtime", "trainer", "loop.ts")));
  assert.ok(names.includes(path.join("runtime", "metrics", "classification.ts")));
  assert.not.ok(names.some((n) => /cli\.ts$|progress\.ts$|checkpoint[/\\]file\.ts$/.test(n)), names.join(", "));
});

test.run();
