// The generated documentation is current: the built-ins table matches the checker's table and
// the syntax diagrams cover every grammar rule.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import path from "node:path";
import { builtins } from "../compiler/check/builtins/index.ts";
import { grammarDiagramsHtml, withBuiltinsTable } from "../compiler/cli/docs.ts";
import { parser } from "../grammar/parser.ts";
import { drifac, root } from "./helpers.ts";

test("docs/language.md lists every built-in (run `npm run docs` after adding one)", () => {
  const text = fs.readFileSync(path.join(root, "docs/language.md"), "utf8");
  assert.is(withBuiltinsTable(text), text, "the built-ins table is out of date: run npm run docs");
  for (const name of builtins.keys()) assert.ok(text.includes(`\`${name}(`), name);
});

test("docs/language.md documents every diagnostic code the compiler emits", () => {
  const text = fs.readFileSync(path.join(root, "docs/language.md"), "utf8");
  const sources = ["grammar", "compiler"].flatMap((dir) => fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: false }).map((f) => path.join(root, dir, String(f)))).filter((f) => f.endsWith(".ts"));
  const codes = new Set(sources.flatMap((f) => [...fs.readFileSync(f, "utf8").matchAll(/"(E\d{3})"/g)].map((m) => m[1]!)));
  assert.ok(codes.size > 15);
  for (const code of codes) assert.ok(text.includes(`| ${code} |`), `${code} is documented`);
});

test("the grammar diagrams are self-contained and cover every rule", async () => {
  const html = grammarDiagramsHtml();
  assert.not.match(html, /<script src=|<link rel='stylesheet' href='http/);
  for (const rule of Object.keys(parser.getGAstProductions())) assert.ok(html.includes(`"${rule}"`), rule);
  const out = path.join(fs.mkdtempSync(path.join(root, ".tmp-docs-")), "grammar.html");
  try {
    const r = await drifac("docs", "--out", out);
    assert.is(r.code, 0);
    assert.is(fs.readFileSync(out, "utf8"), html);
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
});

test.run();
