// The shipped models: they check, their parameter counts are those of the paper's network, and
// parameter names are the stable hierarchical ones checkpoints rely on.
import { test } from "uvu";
import * as assert from "uvu/assert";
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import { totalParameters } from "../compiler/cli/params.ts";
import { drifac, libraryFiles, modelFiles, root } from "./helpers.ts";

const drifa = path.join(root, "models/drifa.drifa");

test("every model and library file checks without diagnostics", () => {
  for (const f of [...modelFiles(), ...libraryFiles()]) {
    const r = checkFile(f);
    assert.equal(r.diagnostics.map((d) => `${d.file}:${d.span.line} ${d.message}`), [], f);
  }
  assert.ok(modelFiles().length >= 5);
});

test("drifac check models/*.drifa exits 0", async () => {
  const r = await drifac("check", ...modelFiles());
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /model DrifaNet ok: 2 inputs, 53,865,668 parameters/);
});

test("DRIFA-Net has 53,865,668 parameters at width 64 and 3,397,988 at width 16", async () => {
  const full = await drifac("params", drifa);
  assert.is(full.code, 0);
  const lines = full.out.trim().split("\n");
  assert.is(lines[lines.length - 1], "total parameters: 53,865,668");
  const small = await drifac("params", drifa, "--set", "width=16");
  assert.is(small.out.trim().split("\n").pop(), "total parameters: 3,397,988");
  assert.match(small.out, /parameter tensors: 1052/);
  assert.match(small.out, /RRA\s+16\s+2,811,744/);
});

test("--set overrides several parameters; --json gives the same total", async () => {
  const r = await drifac("params", drifa, "--set", "width=8,size=32", "--json");
  const json = JSON.parse(r.out);
  assert.is(json.settings.width, 8);
  assert.is(json.settings.size, 32);
  assert.is(json.total, json.rows.reduce((n: number, row: { params: number }) => n + row.params, 0));
});

test("parameter names follow the block path", () => {
  const p = checkFile(drifa, { settings: { width: "4", size: "16" } }).programs[0]!;
  const names = new Set(p.params.map((x) => x.name));
  for (const n of [
    "skin.stage2.block1.mfa2.hifa.l3.weight",
    "cervix.stem.conv.weight",
    "skin.stage1.block1.bn1.running_var",
    "mifa3.fc.weight",
    "mifa3.conv1.bias",
    "mifa3.wc",
    "skin.stage4.block1.proj.weight",
    "skin_head.bias",
  ]) {
    assert.ok(names.has(n), n);
  }
  assert.is(names.size, p.params.length, "names are unique");
  // The MGIFA dense layer is shared by the three pools: one set of weights per MIFA.
  assert.is(p.params.filter((x) => x.name.startsWith("mifa1.fc")).length, 2);
});

test("the variants differ from layout A where they should", () => {
  const count = (f: string) => totalParameters(checkFile(path.join(root, "models", f)).programs[0]!);
  const a = count("drifa.drifa");
  assert.ok(count("drifa-nomifa.drifa") < a);
  assert.ok(count("drifa-alg1.drifa") < a);
  assert.ok(count("drifa-3m.drifa") > a);
  // Plain ResNet-18: torchvision's 11,176,512 per branch without its ImageNet head, plus a bias
  // on each of its convolutions (4,800 channels), plus our two heads on 1,024 features.
  assert.is(count("resnet18.drifa"), 2 * (11_176_512 + 4_800) + 1024 * 12 + 12);
  const p = checkFile(path.join(root, "models/drifa-3m.drifa")).programs[0]!;
  assert.equal(p.tasks.map((t) => t.classes.length), [7, 5, 4]);
  assert.is(p.inputs.length, 3);
});

test.run();
