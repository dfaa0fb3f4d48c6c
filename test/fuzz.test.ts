// Robustness: thousands of programs mutated from the shipped models (token deletions,
// insertions, swaps, truncations, random bytes) never crash, hang or print a stack trace, and
// pathological nesting and runaway loops end in a diagnostic.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import { renderDiagnostic } from "../compiler/diagnostics/render.ts";
import { lexer } from "../grammar/tokens.ts";
import { libraryFiles, modelFiles, root } from "./helpers.ts";

/** Deterministic PRNG (mulberry32), so a failure can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sources = [...modelFiles(), ...libraryFiles()].map((file) => ({ file, text: fs.readFileSync(file, "utf8") }));
const vocabulary = [...new Set(sources.flatMap((s) => lexer.tokenize(s.text).tokens.map((t) => t.image)))];

function mutate(text: string, random: () => number): string {
  const tokens = lexer.tokenize(text).tokens;
  if (tokens.length === 0) return `${text}${vocabulary[Math.floor(random() * vocabulary.length)]}`;
  const pick = (n: number) => Math.floor(random() * n);
  const spliceAt = (start: number, end: number, insert: string) => text.slice(0, start) + insert + text.slice(end);
  const t = tokens[pick(tokens.length)]!;
  const u = tokens[pick(tokens.length)]!;
  switch (pick(6)) {
    case 0: // delete a token
      return spliceAt(t.startOffset, t.endOffset! + 1, "");
    case 1: // insert a token from the corpus
      return spliceAt(t.startOffset, t.startOffset, ` ${vocabulary[pick(vocabulary.length)]} `);
    case 2: { // swap two tokens
      const [a, b] = t.startOffset < u.startOffset ? [t, u] : [u, t];
      if (a === b) return text;
      return text.slice(0, a.startOffset) + b.image + text.slice(a.endOffset! + 1, b.startOffset) + a.image + text.slice(b.endOffset! + 1);
    }
    case 3: // truncate
      return text.slice(0, pick(text.length));
    case 4: { // random bytes
      const bytes = Array.from({ length: 1 + pick(8) }, () => String.fromCharCode(pick(256)));
      const at = pick(text.length);
      return spliceAt(at, at, bytes.join(""));
    }
    default: // replace a number with another
      return spliceAt(t.startOffset, t.endOffset! + 1, /^\d/.test(t.image) ? String(pick(5)) : t.image);
  }
}

function checkOnce(file: string, text: string): { ms: number; internal: string[] } {
  const start = performance.now();
  const r = checkFile(file, {}, text);
  const rendered = r.diagnostics.map((d) => renderDiagnostic(d, (f) => r.sources.get(f) ?? (f === path.relative(process.cwd(), file) ? text : undefined)));
  const internal = r.diagnostics.filter((d) => d.code === "E999").map((d) => d.message);
  for (const s of rendered) assert.not.match(s, /\n\s+at .+:\d+/, "a diagnostic carries no stack trace");
  return { ms: performance.now() - start, internal };
}

test("2,000 mutated programs: no crash, no internal error, each well under a second", () => {
  const random = rng(20261128);
  let slowest = 0;
  let slowestCase = "";
  const failures: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const src = sources[i % sources.length]!;
    let text = src.text;
    const rounds = 1 + Math.floor(random() * 3);
    for (let k = 0; k < rounds; k++) text = mutate(text, random);
    let result;
    try {
      result = checkOnce(src.file, text);
    } catch (e) {
      failures.push(`case ${i} (${path.basename(src.file)}): threw ${(e as Error).stack}`);
      continue;
    }
    if (result.internal.length) failures.push(`case ${i} (${path.basename(src.file)}): ${result.internal.join("; ")}\n${text}`);
    if (result.ms > slowest) {
      slowest = result.ms;
      slowestCase = `case ${i}`;
    }
  }
  assert.equal(failures.slice(0, 3), []);
  assert.ok(slowest < 1000, `slowest check took ${slowest.toFixed(0)} ms (${slowestCase})`);
});

function expectDiagnosticOnly(text: string, code?: string) {
  const file = path.join(root, "models/generated.drifa");
  const start = performance.now();
  const r = checkFile(file, {}, text);
  const ms = performance.now() - start;
  assert.ok(ms < 3000, `took ${ms} ms`);
  assert.not.ok(r.diagnostics.some((d) => d.code === "E999"), JSON.stringify(r.diagnostics.map((d) => d.message)));
  if (code) assert.ok(r.diagnostics.some((d) => d.code === code), `${code} in ${JSON.stringify(r.diagnostics.map((d) => `${d.code} ${d.message}`))}`);
  return r;
}

test("deeply nested expressions end in a diagnostic, not a stack overflow", () => {
  const deep = 20000;
  expectDiagnosticOnly(`block A(x: [N]) -> [N] {\n  return ${"(".repeat(deep)}x${")".repeat(deep)}\n}\n`, "E103");
  expectDiagnosticOnly(`block A(x: [N]) -> [N] {\n  return ${"-".repeat(deep)}x\n}\n`, "E103");
  expectDiagnosticOnly(`block A(x: [N]) -> [N] {\n  return ${"[".repeat(deep)}`, "E103");
  expectDiagnosticOnly(`model M(a = 1) {\n  b = ${"if true then ".repeat(deep)}1${" else 2".repeat(deep)}\n}\n`, "E103");
  // Nesting within the limit still works.
  const ok = expectDiagnosticOnly(`model M(a = 1) {\n  b = ${"(".repeat(150)}a${")".repeat(150)}\n}\n`);
  assert.equal(ok.diagnostics, []);
});

test("long flat chains are fine: 5,000-term sums and 3,000 chained statements and blocks", () => {
  const sum = Array.from({ length: 5000 }, () => "x").join(" + ");
  const r1 = expectDiagnosticOnly(`block A(x: [N, C]) -> [N, C] {\n  return ${sum}\n}\n`);
  assert.equal(r1.diagnostics.map((d) => d.message), []);
  const stmts = Array.from({ length: 3000 }, () => "  x = relu(x)").join("\n");
  const r2 = expectDiagnosticOnly(`model M() {\n  input x: [N, C: 3]\n${stmts}\n}\n`);
  assert.equal(r2.diagnostics, []);
  const blocks = Array.from({ length: 40 }, (_, i) => `block B${i + 1}(x: [N, C]) -> [N, C] {\n  return B${i}(x)\n}`).join("\n");
  const r3 = expectDiagnosticOnly(`block B0(x: [N, C]) -> [N, C] {\n  return relu(x)\n}\n${blocks}\nmodel M() {\n  input x: [N, C: 3]\n  y = B40(x)\n}\n`);
  assert.equal(r3.diagnostics, []);
});

test("recursion and runaway loops stop with a diagnostic", () => {
  expectDiagnosticOnly(`block R(x: [N, C]) -> [N, C] {\n  return R(x)\n}\nmodel M() {\n  input x: [N, C: 3]\n  y = R(x)\n}\n`, "E401");
  expectDiagnosticOnly(`model M() {\n  input x: [N, C: 3]\n  for i in range(100000) {\n    for j in range(100000) {\n      k = i\n    }\n  }\n}\n`, "E401");
  expectDiagnosticOnly(`model M() {\n  a = 2 ** 2000\n}\n`, "E400");
});

test.run();
