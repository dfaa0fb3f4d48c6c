// `drifac fmt`: --check on the shipped models, rewriting a file, refusing a broken one.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import path from "node:path";
import { drifac, libraryFiles, modelFiles, scratch } from "./helpers.ts";

test("fmt --check passes on every shipped .drifa file", async () => {
  const r = await drifac("fmt", "--check", ...modelFiles(), ...libraryFiles());
  assert.is(r.code, 0, r.out + r.err);
  assert.match(r.out, /already formatted/);
});

test("fmt rewrites an unformatted file, keeps its comments, and is then clean", async () => {
  const dir = scratch({ "m.drifa": "# header\nmodel   M( width=4 ){input x:[N,C:3]  # the input\n y=relu( x )}\n" });
  const file = path.join(dir, "m.drifa");
  const check = await drifac("fmt", "--check", file);
  assert.is(check.code, 1);
  assert.match(check.out, /would reformat/);
  assert.is(fs.readFileSync(file, "utf8").includes("model   M"), true, "--check writes nothing");
  const r = await drifac("fmt", file);
  assert.is(r.code, 0, r.err);
  assert.is(fs.readFileSync(file, "utf8"), "# header\nmodel M(width = 4) {\n  input x: [N, C: 3] # the input\n  y = relu(x)\n}\n");
  assert.is((await drifac("fmt", "--check", file)).code, 0);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), [], "no temporary file left behind");
});

test("fmt refuses a file with a syntax error and leaves it untouched", async () => {
  const dir = scratch({ "bad.drifa": "model M( {\n" });
  const file = path.join(dir, "bad.drifa");
  const r = await drifac("fmt", file);
  assert.is(r.code, 1);
  assert.match(r.err, /error\[E101\]/);
  assert.is(fs.readFileSync(file, "utf8"), "model M( {\n");
});

test.run();
