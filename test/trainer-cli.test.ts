// The Node command line of the generated trainer, run in-process with a CPU runner on the
// built-in synthetic data.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { PassThrough } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { loadSafetensors } from "../runtime/checkpoint/index.ts";
import { runTrainerCli, type TrainerCliHooks } from "../runtime/trainer/cli.ts";
import { LinearRunner, type TrainSettings } from "../runtime/trainer/index.ts";
import { formatRate } from "../runtime/trainer/progress.ts";

const inputs = [
  { name: "skin", shape: [3, 8, 8] },
  { name: "cells", shape: [3, 8, 8] },
];
const tasks = [
  { name: "skin_dx", classes: ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], weight: 1, data: "skin" },
  { name: "cells_dx", classes: ["dys", "koi", "met", "par", "sup"], weight: 1, data: "cells" },
];
const defaults: TrainSettings = {
  optimizer: { kind: "adam", lr: 0.05 },
  schedule: { kind: "plateau", factor: 0.2, patience: 5, min_lr: 1e-5 },
  batch: 16,
  epochs: 2,
  earlyStop: 10,
  seed: 1,
};

function capture(tty = false) {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (d) => (text += d));
  if (tty) Object.assign(stream, { isTTY: true, columns: 100 });
  return { stream, text: () => text };
}

async function cli(args: string[], hooks: TrainerCliHooks = {}) {
  const out = capture();
  const err = capture();
  const r = await runTrainerCli(args, async (o) => new LinearRunner({ inputs, tasks, seed: o.seed }), defaults, {
    name: "drifa-test",
    synthetic: { trainSize: 64, valSize: 24 },
    stdout: out.stream,
    stderr: err.stream,
    ...hooks,
  });
  return { ...r, stdout: out.text(), stderr: err.text() };
}

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "drifa-trainer-"));

test("--json prints exactly one JSON object per epoch and nothing else; metrics.jsonl holds the same", async () => {
  const dir = tmp();
  const r = await cli(["--synthetic", "--json", "--epochs", "3", "--out", dir, "--log-every", "2"]);
  assert.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.is(lines.length, 3);
  lines.forEach((line, i) => {
    const o = JSON.parse(line);
    assert.is(o.epoch, i + 1);
    for (const k of ["train_loss", "val_loss", "acc_skin_dx", "acc_cells_dx", "loss_skin_dx", "lr", "seconds", "samples_per_s"]) assert.type(o[k], "number", k);
    assert.is(o.lr, 0.05);
    assert.type(o.best, "boolean");
  });
  assert.is(fs.readFileSync(path.join(dir, "metrics.jsonl"), "utf8"), r.stdout);
  assert.match(r.stderr, /best epoch \d/);
  assert.is(r.options!.logEvery, 2);
  assert.equal(r.options!.schedule, defaults.schedule);
});

test("the best and last checkpoints are written with shapes, metadata and the trainer state", async () => {
  const dir = tmp();
  const r = await cli(["--synthetic", "--json", "--out", dir, "--seed", "7"]);
  assert.is(r.exitCode, 0, r.stderr);
  const best = loadSafetensors(path.join(dir, "best.safetensors"));
  const weight = best.tensors.get("skin_dx.weight")!;
  assert.equal(weight.shape, [7, 3 * 8 * 8]);
  assert.is(weight.dtype, "F32");
  assert.ok(best.tensors.has("cells_dx.bias.momentum"));
  assert.is(best.metadata.epoch, String(r.result!.bestEpoch));
  assert.is(best.metadata.format, "drifa-trainer");
  const last = loadSafetensors(path.join(dir, "last.safetensors"));
  const state = JSON.parse(last.metadata.trainer_state!);
  assert.is(state.epoch, 2);
  assert.is(state.seed, 7);
  assert.is(state.history.length, 2);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  assert.is(config.seed, 7);
  assert.equal(fs.readdirSync(dir).sort(), ["best.safetensors", "config.json", "last.safetensors", "metrics.jsonl"], "no temporary files left");
});

test("--resume continues a run exactly where it stopped", async () => {
  const whole = tmp();
  const a = await cli(["--synthetic", "--json", "--epochs", "3", "--out", whole, "--log-every", "1"]);
  const part = tmp();
  await cli(["--synthetic", "--json", "--epochs", "2", "--out", part, "--log-every", "1"]);
  const b = await cli(["--synthetic", "--json", "--epochs", "3", "--out", part, "--log-every", "1", "--resume"]);
  assert.is(b.exitCode, 0, b.stderr);
  const strip = (s: string) => s.trimEnd().split("\n").map((l) => ({ ...JSON.parse(l), seconds: 0, samples_per_s: 0 }));
  assert.is(strip(b.stdout).length, 1, "only the third epoch runs");
  assert.equal(strip(fs.readFileSync(path.join(part, "metrics.jsonl"), "utf8")), strip(a.stdout));
  const missing = await cli(["--synthetic", "--out", tmp(), "--resume"]);
  assert.is(missing.exitCode, 1);
  assert.match(missing.stderr, /last\.safetensors does not exist/);
});

test("human output without --json; no progress bar when stderr is not a TTY", async () => {
  const r = await cli(["--synthetic", "--out", tmp()]);
  assert.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0]!, /^epoch 1\/2 {2}train \d\.\d{4} {2}val \d\.\d{4} {2}acc skin_dx \d+\.\d%, cells_dx \d+\.\d%/);
  assert.match(lines[0]!, / \d+(\.\d+)? samples\/s/);
  assert.not.match(r.stderr, /ETA/);
});

test("throughput reads as a number at any speed (a first epoch compiling shaders is under 1 sample/s)", () => {
  assert.is(formatRate(0.19), "0.19");
  assert.is(formatRate(3.456), "3.5");
  assert.is(formatRate(9.96), "10");
  assert.is(formatRate(35.6), "36");
  assert.is(formatRate(0), "0");
});

test("a progress bar on a TTY, none with --no-progress or --json", async () => {
  const run = async (args: string[]) => {
    const err = capture(true);
    await runTrainerCli(args, async () => new LinearRunner({ inputs, tasks }), defaults, { synthetic: { trainSize: 64, valSize: 16 }, stdout: capture().stream, stderr: err.stream });
    return err.text();
  };
  assert.match(await run(["--synthetic", "--out", tmp()]), /epoch 1\/2/);
  assert.not.match(await run(["--synthetic", "--out", tmp(), "--no-progress"]), /ETA/);
  assert.not.match(await run(["--synthetic", "--out", tmp(), "--json"]), /ETA/);
});

test("--help, bad flags and missing data give exit codes and messages, not exceptions", async () => {
  const help = await cli(["--help"]);
  assert.is(help.exitCode, 0);
  assert.match(help.stdout, /Usage: drifa-test/);
  for (const flag of ["--epochs", "--batch", "--lr", "--seed", "--out", "--json", "--synthetic", "--log-every", "--no-progress"]) assert.match(help.stdout, flag);
  const bad = await cli(["--epochs", "0"]);
  assert.is(bad.exitCode, 1);
  assert.match(bad.stderr, /--epochs.*integer >= 1/);
  const unknown = await cli(["--epoch", "3"]);
  assert.is(unknown.exitCode, 1);
  assert.match(unknown.stderr, /unknown option/);
  const noData = await cli(["--out", tmp()]);
  assert.is(noData.exitCode, 1);
  assert.match(noData.stderr, /pass --synthetic/);
});

test("flags override the model's defaults; the data hook supplies real data", async () => {
  let seen: unknown;
  const r = await cli(["--lr", "0.01", "--batch", "8", "--epochs", "1", "--early-stop", "0", "--json", "--out", tmp()], {
    data: async (opts, runner) => {
      seen = { batch: opts.batch, tasks: runner.tasks.length };
      const { SyntheticData } = await import("../runtime/trainer/index.ts");
      return new SyntheticData(runner, { batch: opts.batch, trainSize: 16, valSize: 8 });
    },
  });
  assert.is(r.exitCode, 0, r.stderr);
  assert.equal(seen, { batch: 8, tasks: 2 });
  assert.is(r.options!.optimizer.lr, 0.01);
  assert.is(r.options!.optimizer.kind, "adam");
  assert.is(r.options!.earlyStop, null);
  assert.is(JSON.parse(r.stdout).lr, 0.01);
});

test.run();
