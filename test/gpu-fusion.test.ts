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
import { buildTrainGraph, evaluate, initState, seededUniform, trainStep } from "../compiler/ir/interpret.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { Executor } from "../runtime/executor.ts";
import { GpuTrainer } from "../runtime/trainer-exec.ts";
import { gpuForTests, modulationGraph, scratch } from "./helpers.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const { gpu, gpuTest } = await gpuForTests("gpu-fusion");

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

/** One training step fused and unfused from the same state and data: loss, gradients, the
 * plans' dispatch counts and kernel labels. */
async function stepBothWays(file: string, settings: Record<string, string>) {
  const r = checkFile(file, { settings });
  assert.equal(r.diagnostics.map((d) => d.message), []);
  const p = r.programs[0]!;
  const model = buildTrainGraph(p, 4);
  const state = initState(p, 2);
  const data = {
    inputs: Object.fromEntries(p.inputs.map((i) => [i.name, Float32Array.from({ length: numel(model.graph.shapeOf(model.graph.inputs.get(i.name)!)) }, normal)])),
    labels: Object.fromEntries(p.tasks.map((t) => [t.name, [0, 1, t.classes.length - 1, 0]])),
  };
  const results = [];
  for (const fuse of [true, false]) {
    // Every candidate recomputed (at these sizes the default threshold would keep them all), so
    // the fused step checks recomputation too.
    const plan = planTrainStep(model, { fuse, ...(fuse ? { remat: { minFloats: 0 } } : {}) });
    const trainer = await GpuTrainer.create(gpu!, plan, { state: state.params, seed: 5 });
    try {
      const names = Object.keys(plan.outputs).filter((n) => n.startsWith("grad."));
      const step = await trainer.trainStep(data, { readLoss: true, read: names });
      results.push({ loss: step.loss!, grads: step.values, dispatches: plan.summary.dispatches, labels: plan.kernels.map((k) => k.label) });
    } finally {
      trainer.destroy();
    }
  }
  const [fused, unfused] = results;
  assert.ok(fused!.dispatches * 2 < unfused!.dispatches, `${fused!.dispatches} vs ${unfused!.dispatches} dispatches`);
  assert.ok(Math.abs(fused!.loss - unfused!.loss) <= 1e-5 * Math.abs(unfused!.loss), `loss ${fused!.loss} vs ${unfused!.loss}`);
  // Every gradient within 1e-5 of the unfused one, or, where they differ more, no further from
  // the float64 interpreter than 1e-5 or twice the unfused gradient's error: on a tensor whose
  // f32 rounding is amplified to ~1e-5 (conv.weight of EPILOGUE_MODEL below: fused 1.1e-5 and
  // unfused 0.6e-5 from float64) two orders of summation differ by that much. And all
  // gradients as one vector within 1e-5.
  const ref = trainStep(model, { ...state, params: new Map([...state.params].map(([k, v]) => [k, Float64Array.from(v, Math.fround)])) }, {
    inputs: Object.fromEntries(Object.entries(data.inputs).map(([k, v]) => [k, Float64Array.from(v)])),
    labels: data.labels,
  }).grads;
  let [diff, total] = [0, 0];
  for (const [name, v] of unfused!.grads) {
    if (!name.startsWith("grad.")) continue; // (the loss comes with the values read)
    const f = fused!.grads.get(name)!;
    const e = relError(v, f);
    const [ef, eu] = [relError(ref.get(name.slice("grad.".length))!, f), relError(ref.get(name.slice("grad.".length))!, v)];
    assert.ok(e <= 1e-5 || ef <= Math.max(1e-5, 2 * eu), `${name}: fused and unfused differ by ${e}; against float64 fused ${ef}, unfused ${eu}`);
    for (let i = 0; i < v.length; i++) [diff, total] = [diff + (v[i]! - f[i]!) ** 2, total + v[i]! ** 2];
  }
  assert.ok(Math.sqrt(diff / total) <= 1e-5, `all gradients as one vector differ by ${Math.sqrt(diff / total)}`);
  return { fused: fused!, unfused: unfused! };
}

gpuTest("a fused training step of ResNet-18 (width 4) matches the unfused one: loss and every gradient within 1e-5", async () => {
  await stepBothWays(path.join(root, "models/resnet18.drifa"), { width: "4", size: "16" });
});

// MFA without a batchnorm after it (so ωc's gradient is well conditioned): 1x1 convolutions and
// a dense layer with bias and sigmoid epilogues, a 3x3 convolution with a ReLU epilogue, and in
// backward input gradients with the activation masks as epilogues.
const EPILOGUE_MODEL = `import { MFA } from "./lib/mfa.drifa"

model Epi(width: int = 4, size: int = 8) {
  input x: [N, C: 3, H: size, W: size]
  h = relu(conv(x, width, k: 3) as "conv")
  h = MFA(h) as "mfa"
  task y: classify(dense(gap(h), 3) as "head", classes: ["a", "b", "c"])
}
`;

gpuTest("convolution and matmul epilogues: a fused step matches the unfused one within 1e-5", async () => {
  const dir = scratch({ "epi.drifa": EPILOGUE_MODEL });
  const { fused } = await stepBothWays(path.join(dir, "epi.drifa"), {});
  const epilogues = fused.labels.filter((l) => / \+ %\d+ /.test(l) && /conv2d|matmul/.test(l));
  assert.ok(epilogues.some((l) => l.includes("conv2d_input_grad")), `an input gradient with an epilogue: ${fused.labels.join("; ")}`);
  assert.ok(epilogues.some((l) => /conv2d \+/.test(l) && l.includes("sigmoid")), `a convolution with a sigmoid epilogue: ${fused.labels.join("; ")}`);
});

test.run();
