// Fused kernels on the GPU: the modulation's fused forward and backward (vec4 paths, reduction
// prologues, tree reductions) against the float64 interpreter, and a whole fused training step
// against the unfused one from the same state and data (`drifac compile --no-fuse` compiles the
// latter): losses and gradients within 1e-5. Without an adapter the tests are skipped.
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkFile } from "../compiler/check/index.ts";
import { relError, roundFeeds } from "../compiler/codegen/gpucheck.ts";
import { planGraph } from "../compiler/codegen/plan.ts";
import { planTrainStep } from "../compiler/codegen/train-plan.ts";
import { buildTrainGraph, evaluate, initState, seededUniform } from "../compiler/ir/interpret.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { type Gpu, tryAcquireDevice } from "../runtime/device.ts";
import { Executor } from "../runtime/executor.ts";
import { GpuTrainer } from "../runtime/trainer-exec.ts";
import { modulationGraph } from "./helpers.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const acquired = await tryAcquireDevice();
const gpu: Gpu | null = acquired.gpu;
if (!gpu) console.log(`\n[gpu-fusion] SKIPPED: no WebGPU adapter.\n${acquired.reason}\n`);
const gpuTest = (name: string, fn: () => Promise<void> | void) => (gpu ? test(name, fn) : test.skip(name, fn));

const u = seededUniform(31);
const normal = () => Math.fround(Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));

gpuTest("the fused modulation, forward and backward, against the float64 interpreter (1e-5)", async () => {
  // 32x32 planes: the per-channel sums take the workgroup-tree path; 3x5: scalar kernels.
  for (const [variant, shape] of [["full", [4, 8, 32, 32]], ["model", [4, 8, 32, 32]], ["model", [2, 3, 3, 5]]] as const) {
    const { g, y, grads } = modulationGraph(variant, [...shape]);
    const outputs = [y, ...grads];
    const inputs = new Map([...g.inputs].map(([name, id]) => [name, Float64Array.from({ length: numel(g.shapeOf(id)) }, normal)]));
    const params = new Map([...g.params].map(([name, id]) => [name, Float64Array.from({ length: numel(g.shapeOf(id)) }, normal)]));
    const feeds = roundFeeds({ inputs, params });
    const ref = evaluate(g, feeds, outputs);
    const plan = planGraph(g, outputs, { fuse: true });
    const exec = await Executor.create(gpu!, plan);
    try {
      const got = await exec.run({ inputs: new Map([...feeds.inputs].map(([k, v]) => [k, Float32Array.from(v)])), params: new Map([...feeds.params].map(([k, v]) => [k, Float32Array.from(v)])) });
      outputs.forEach((_, k) => assert.ok(relError(ref[k]!, got[k]!) < 1e-5, `${variant} ${shape}: output ${k} error ${relError(ref[k]!, got[k]!)}`));
    } finally {
      exec.destroy();
    }
  }
});

gpuTest("a fused training step of ResNet-18 (width 4) matches the unfused one: loss and every gradient within 1e-5", async () => {
  const r = checkFile(path.join(root, "models/resnet18.drifa"), { settings: { width: "4", size: "16" } });
  const p = r.programs[0]!;
  const model = buildTrainGraph(p, 4);
  const state = initState(p, 2);
  const data = {
    inputs: Object.fromEntries(p.inputs.map((i) => [i.name, Float32Array.from({ length: numel(model.graph.shapeOf(model.graph.inputs.get(i.name)!)) }, normal)])),
    labels: Object.fromEntries(p.tasks.map((t) => [t.name, [0, 1, t.classes.length - 1, 0]])),
  };
  const results = [];
  for (const fuse of [true, false]) {
    const plan = planTrainStep(model, { fuse });
    const trainer = await GpuTrainer.create(gpu!, plan, { state: state.params, seed: 5 });
    try {
      const names = Object.keys(plan.outputs).filter((n) => n.startsWith("grad."));
      const step = await trainer.trainStep(data, { readLoss: true, read: names });
      results.push({ loss: step.loss!, grads: step.values, dispatches: plan.summary.dispatches });
    } finally {
      trainer.destroy();
    }
  }
  const [fused, unfused] = results;
  assert.ok(fused!.dispatches * 2 < unfused!.dispatches, `${fused!.dispatches} vs ${unfused!.dispatches} dispatches`);
  assert.ok(Math.abs(fused!.loss - unfused!.loss) <= 1e-5 * Math.abs(unfused!.loss), `loss ${fused!.loss} vs ${unfused!.loss}`);
  let worst = 0;
  let where = "";
  for (const [name, v] of unfused!.grads) {
    const e = relError(v, fused!.grads.get(name)!);
    if (e > worst) [worst, where] = [e, name];
  }
  assert.ok(worst <= 1e-5, `gradients differ by ${worst} (${where})`);
});

test.run();
