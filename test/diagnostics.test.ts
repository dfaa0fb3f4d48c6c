// Bad programs give exit 1 and located diagnostics: code, file:line:col, the source line with a
// caret under the cause, and a suggestion where one helps. Never a stack trace.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { drifac, root, scratch } from "./helpers.ts";

const header = 'import { RRA, Stem } from "./lib/resnet.drifa"\nimport { MFA } from "./lib/mfa.drifa"\n';

async function checkError(source: string, expect: { code: string; line: number; col: number; message: RegExp; caret?: string; help?: RegExp }, extra: Record<string, string> = {}) {
  const dir = scratch({ "m.drifa": source, ...extra });
  const r = await drifac("check", path.join(dir, "m.drifa"));
  assert.is(r.code, 1, `exit code; stderr:\n${r.err}`);
  assert.match(r.err, new RegExp(`error\\[${expect.code}\\]`), r.err);
  assert.match(r.err, expect.message, r.err);
  assert.match(r.err, new RegExp(`m\\.drifa:${expect.line}:${expect.col}\\b`), r.err);
  if (expect.caret) assert.ok(r.err.includes(expect.caret), `caret line ${JSON.stringify(expect.caret)} in\n${r.err}`);
  if (expect.help) assert.match(r.err, expect.help, r.err);
  assert.not.match(r.err, /\n\s+at .+:\d+:\d+/, "no stack trace");
  return r;
}

test("a misspelt block name is located and gets a suggestion", async () => {
  await checkError(`${header}model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = MFa(x)\n}\n`, {
    code: "E201",
    line: 5,
    col: 7,
    message: /unknown block or function 'MFa'/,
    caret: "  |       ^^^",
    help: /did you mean 'MFA'\?/,
  });
});

test("a shape mismatch names both shapes at the offending operator", async () => {
  await checkError(`model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = conv(x, 8, k: 3)\n  z = conv(x, 16, k: 3, stride: 2)\n  w = y + z\n}\n`, {
    code: "E300",
    line: 5,
    col: 9,
    message: /cannot combine \[N, C=8, H=32, W=32\] with \[N, C=16, H=16, W=16\]/,
    caret: "  |         ^",
  });
});

test("a block argument of the wrong shape names the declared and the actual shape", async () => {
  await checkError(`${header}model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = MFA(gap(x))\n}\n`, {
    code: "E300",
    line: 5,
    col: 11,
    message: /argument 'x' of MFA: expected a 4-D tensor \[N, C, H, W\], found \[N, C=3\]/,
  });
});

test("a wrong argument count says how many the block takes", async () => {
  await checkError(`${header}model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = RRA(x, 8, 2, 5)\n}\n`, {
    code: "E207",
    line: 5,
    col: 20,
    message: /RRA takes 2 to 3 arguments, got 4/,
  });
  await checkError(`${header}model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = RRA(x)\n}\n`, {
    code: "E207",
    line: 5,
    col: 7,
    message: /missing 'out'/,
  });
});

test("an unknown parameter, in a call or in --set, is named with a suggestion", async () => {
  await checkError(`model M() {\n  input x: [N, C: 3, H: 32, W: 32]\n  y = conv(x, 8, stirde: 2)\n}\n`, {
    code: "E206",
    line: 3,
    col: 18,
    message: /conv has no parameter 'stirde'/,
    help: /did you mean 'stride'\?/,
  });
  const r = await drifac("params", path.join(root, "models/drifa.drifa"), "--set", "widht=16");
  assert.is(r.code, 1);
  assert.match(r.err, /error\[E206\]: model DrifaNet has no parameter 'widht'/);
  assert.match(r.err, /did you mean 'width'\?/);
});

test("an import cycle is reported with the chain of files", async () => {
  const dir = scratch({
    "a.drifa": 'import "./b.drifa"\nblock A(x: [N]) -> [N] {\n  return x\n}\n',
    "b.drifa": 'import "./a.drifa"\nblock B(x: [N]) -> [N] {\n  return x\n}\n',
  });
  const r = await drifac("check", path.join(dir, "a.drifa"));
  assert.is(r.code, 1);
  assert.match(r.err, /error\[E203\]: import cycle: \S*a\.drifa -> \S*b\.drifa -> \S*a\.drifa/);
  // Reported in the file that closes the cycle, at its import.
  assert.match(r.err, /b\.drifa:1:8/);
  assert.ok(r.err.includes('1 | import "./a.drifa"'));
});

test("syntax errors: several per run, each located", async () => {
  const r = await checkError(`block A(x: [N, C]) -> [N, C] {\n  y = (x + \n  return y\n}\nmodel { }\n`, {
    code: "E101",
    line: 3,
    col: 3,
    message: /unexpected 'return'/,
  });
  assert.match(r.err, /m\.drifa:5:7/);
  assert.match(r.err, /2 errors/);
});

test("a misspelt keyword gets a suggestion", async () => {
  await checkError("blok A(x: [N]) -> [N] {\n  return x\n}\n", {
    code: "E101",
    line: 1,
    col: 1,
    message: /unexpected 'blok' at the top level/,
    help: /did you mean 'block'\?/,
  });
});

test("missing import files and unknown names", async () => {
  await checkError('import { X } from "./nope.drifa"\n', { code: "E202", line: 1, col: 19, message: /imported file '.\/nope.drifa' not found/ });
  await checkError(`model M() {\n  input x: [N, C: 3, H: 8, W: 8]\n  y = relu(xx)\n}\n`, { code: "E200", line: 3, col: 12, message: /unknown name 'xx'/, help: /did you mean 'x'\?/ });
});

test("the real command exits 1 with diagnostics and no stack trace", () => {
  const dir = scratch({ "m.drifa": "model M( {\n" });
  const r = spawnSync(process.execPath, [path.join(root, "compiler/drifac.js"), "check", path.join(dir, "m.drifa")], { encoding: "utf8" });
  assert.is(r.status, 1);
  assert.match(r.stderr, /error\[E101\]/);
  assert.not.match(r.stderr, /\n\s+at /);
  const usage = spawnSync(process.execPath, [path.join(root, "compiler/drifac.js"), "params"], { encoding: "utf8" });
  assert.is(usage.status, 2);
});

test.run();
