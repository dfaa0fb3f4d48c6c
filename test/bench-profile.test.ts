// The kernel profile (StateExecutor.profileKernels, bench/profile.ts): one time per kernel of a
// small model's training step, every one positive, summed by kind without losing any. Without
// an adapter the test is skipped.
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { byKind, profilePlan } from "../bench/profile.ts";
import { checkFile } from "../compiler/check/index.ts";
import { planTrainStep } from "../compiler/codegen/train-plan.ts";
import { buildTrainGraph, initState } from "../compiler/ir/interpret.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { GpuTrainer } from "../runtime/trainer-exec.ts";
import { gpuForTests } from "./helpers.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { gpu, gpuTest } = await gpuForTests("bench-profile");

gpuTest("every kernel of a training step timed on its own, summed by kind", async () => {
  const program = checkFile(path.join(root, "models/resnet18.drifa"), { settings: { width: "4", size: "16" } }).programs[0]!;
  const model = buildTrainGraph(program, 2);
  const plan = planTrainStep(model);
  const trainer = await GpuTrainer.create(gpu!, plan, { state: initState(program, 1).params, seed: 1 });
  try {
    const inputs = Object.fromEntries(program.inputs.map((i) => [i.name, new Float32Array(numel(model.graph.shapeOf(model.graph.inputs.get(i.name)!))).fill(0.5)]));
    const labels = Object.fromEntries(program.tasks.map((t) => [t.name, [0, 1]]));
    await trainer.trainStep({ inputs, labels }, { readLoss: true });
    const rows = await profilePlan(trainer, plan);
    assert.is(rows.length, plan.kernels.length);
    assert.ok(rows.every((r) => Number.isFinite(r.ms) && r.ms > 0), "a positive time per kernel");
    const kinds = byKind(rows);
    assert.is(kinds.reduce((n, k) => n + k.kernels, 0), rows.length);
    assert.ok(Math.abs(kinds.reduce((n, k) => n + k.ms, 0) - rows.reduce((n, r) => n + r.ms, 0)) < 1e-9);
    const names = kinds.map((k) => k.kind.split(" ")[0]);
    for (const kind of ["conv2d", "conv2d_input_grad", "conv2d_weight_grad", "optimiser"]) assert.ok(names.includes(kind), `${kind} in ${names.join(", ")}`);
  } finally {
    trainer.destroy();
  }
});

test.run();
