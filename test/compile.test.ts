// `drifac compile` and the generated trainer: the folder's contents, formatted host code, and a
// synthetic training run whose loss falls and repeats exactly with the same seed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import prettier from "prettier";
import { drifac, root } from "./helpers.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-compile-"));
const out = path.join(dir, "resnet");

test("compile writes kernels, host code, trainer, runtime and manifest", async () => {
  const r = await drifac("compile", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16", "--batch", "8", "-o", out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /batch 8: training step [\d,]+ dispatches, \d+ copies, 1 submit/);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "manifest.json"), "utf8"));
  assert.is(manifest.format, "drifa-compiled/1");
  assert.is(manifest.model, "ResNet18Baseline");
  assert.equal(Object.keys(manifest.plans), ["8"]);
  assert.is(manifest.plans["8"].stats.train.submits, 1);
  assert.is(fs.readdirSync(path.join(out, "kernels")).length, manifest.shaders.length);
  for (const s of manifest.shaders) assert.match(fs.readFileSync(path.join(out, s), "utf8"), /@compute @workgroup_size/);
  assert.ok(manifest.parameters.some((p: { name: string }) => p.name === "skin.stage4.block2.conv2.weight"));
  const modelTs = fs.readFileSync(path.join(out, "model.ts"), "utf8");
  assert.match(modelTs, /export async function createModel\(read: ReadText, options: LoadOptions\): Promise<CompiledRunner>/);
  assert.is(await prettier.format(modelTs, { parser: "typescript", printWidth: 100 }), modelTs, "model.ts is prettier-formatted");
  for (const js of ["model.js", "train.js", "runtime.js", "runtime.browser.js"]) {
    const check = spawnSync(process.execPath, ["--check", path.join(out, js)], { encoding: "utf8" });
    assert.is(check.status, 0, `${js}: ${check.stderr}`);
  }
  const browser = fs.readFileSync(path.join(out, "runtime.browser.js"), "utf8");
  assert.not.match(browser, /from ["']node:/, "the browser runtime imports no Node built-in");
});

test("compile --report says what fused and what did not; --no-fuse compiles one kernel per value and says so in the manifest", async () => {
  const fused = path.join(dir, "fused");
  const r = await drifac("compile", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16", "--batch", "2", "-o", fused, "--report");
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /ResNet18Baseline, training step at batch 2: [\d,]+ kernels \([\d,]+ without fusion\)/);
  assert.match(r.out, /#\d+ fused elementwise: writes %\d+ \w+\[[\d,]+\]; reads \d+; computes inline: /);
  assert.match(r.out, /- %\d+ \w+\[[\d,]+\]: read by conv2d %\d+, which reads its inputs from memory/);
  const plain = path.join(dir, "plain");
  const u = await drifac("compile", path.join(root, "models/resnet18.drifa"), "--set", "width=4,size=16", "--batch", "2", "-o", plain, "--no-fuse");
  assert.is(u.code, 0, u.err);
  const a = JSON.parse(fs.readFileSync(path.join(fused, "manifest.json"), "utf8"));
  const b = JSON.parse(fs.readFileSync(path.join(plain, "manifest.json"), "utf8"));
  assert.is(a.source.fuse, undefined);
  assert.is(b.source.fuse, false);
  assert.ok(b.plans["2"].stats.train.dispatches > 2 * a.plans["2"].stats.train.dispatches, `${b.plans["2"].stats.train.dispatches} vs ${a.plans["2"].stats.train.dispatches}`);
  const stats = a.plans["2"].stats.train;
  assert.ok(stats.bytes < stats.unplannedBytes, `planned ${stats.bytes}, unplanned ${stats.unplannedBytes}`);
});

function train(args: string[]) {
  return spawnSync(process.execPath, [path.join(out, "train.js"), ...args], { encoding: "utf8", timeout: 300_000, env: { ...process.env, FORCE_COLOR: "0" } });
}

test("the generated trainer learns the synthetic set, and the same seed repeats exactly", async () => {
  const { tryAcquireDevice } = await import("../runtime/device.ts");
  const probe = await tryAcquireDevice();
  if (!probe.gpu) {
    console.log(`  skipped: no WebGPU adapter (${probe.reason.split("\n")[0]})`);
    return;
  }
  probe.gpu.destroy();
  const args = (run: string) => ["--synthetic", "--synthetic-size", "64", "--epochs", "3", "--batch", "8", "--seed", "1", "--json", "--out", path.join(dir, run)];
  const a = train(args("a"));
  assert.is(a.status, 0, a.stderr);
  const epochs = a.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.is(epochs.length, 3);
  for (const e of epochs) for (const key of ["epoch", "train_loss", "val_loss", "acc_skin_dx", "acc_cervix_dx"]) assert.ok(key in e, key);
  assert.ok(epochs[2].train_loss < epochs[0].train_loss, `training loss falls: ${epochs.map((e) => e.train_loss).join(", ")}`);
  const b = train(args("b"));
  assert.is(b.status, 0, b.stderr);
  assert.equal(b.stdout.trim().split("\n").map((l) => JSON.parse(l).train_loss), epochs.map((e) => e.train_loss));
  assert.ok(fs.existsSync(path.join(dir, "a", "best.safetensors")));
  assert.is(fs.readFileSync(path.join(dir, "a", "metrics.jsonl"), "utf8").trim().split("\n").length, 3);
});

test("a batch size the folder was not planned for is planned on first use", async () => {
  const { tryAcquireDevice } = await import("../runtime/device.ts");
  const probe = await tryAcquireDevice();
  if (!probe.gpu) return;
  probe.gpu.destroy();
  const r = train(["--synthetic", "--synthetic-size", "8", "--epochs", "1", "--batch", "4", "--json", "--out", path.join(dir, "c")]);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /planning ResNet18Baseline for batch 4/);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "manifest.json"), "utf8"));
  assert.equal(Object.keys(manifest.plans).sort(), ["4", "8"]);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

test.run();
