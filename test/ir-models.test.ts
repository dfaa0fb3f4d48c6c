// Whole models through the IR: DRIFA-Net's gradients against finite differences, every model
// file lowered, differentiated and trained for one step in the float64 interpreter, and the
// interpreter's pieces (initialisation, optimisers, running statistics, dumps).
import fs from "node:fs";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkFile } from "../compiler/check/index.ts";
import type { Program } from "../compiler/check/program.ts";
import { differentiateModel } from "../compiler/ir/autodiff.ts";
import { gradcheck } from "../compiler/ir/gradcheck.ts";
import { type Batch, buildTrainGraph, evaluate, feedsFor, initParams, initState, optimiserStep, trainStep } from "../compiler/ir/interpret.ts";
import { lower } from "../compiler/ir/lower.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { graphToDot, printGraph } from "../compiler/ir/print.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const small = { width: "4", size: "16" };

/** Checks a model file at width 4, size 16 (only the settings the model declares). */
function program(file: string): Program {
  let settings: Record<string, string> = { ...small };
  let r = checkFile(file, { settings });
  if (r.programs.length === 0 && r.diagnostics.some((d) => d.code === "E206")) {
    settings = Object.fromEntries(Object.entries(small).filter(([k]) => r.diagnostics.every((d) => !d.message.includes(`'${k}'`))));
    r = checkFile(file, { settings });
  }
  assert.equal(r.diagnostics.map((d) => d.message), [], file);
  return r.programs[0]!;
}

function randomBatch(p: Program, batch: number, seed: number): Batch {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const g = lower(p, { batch }).graph;
  const inputs: Batch["inputs"] = {};
  for (const i of p.inputs) inputs[i.name] = Float64Array.from({ length: numel(g.shapeOf(g.inputs.get(i.name)!)) }, () => 2 * next() - 1);
  const labels: Batch["labels"] = {};
  for (const t of p.tasks) labels[t.name] = Array.from({ length: batch }, () => Math.floor(next() * t.classes.length));
  return { inputs, labels };
}

const drifa = program(path.join(root, "models/drifa.drifa"));

test("gradcheck: DRIFA-Net (width 4, size 16, batch 2) agrees with finite differences", () => {
  const res = gradcheck(drifa, { batch: 2, seed: 1, samplesPerKind: 4 });
  const kinds = new Set(res.rows.map((r) => r.kind));
  for (const k of ["conv", "dense", "batchnorm", "param"]) assert.ok(kinds.has(k), `no ${k} parameter sampled`);
  assert.ok(Number.isFinite(res.loss));
  if (process.env.IR_VERBOSE) console.log(`gradcheck drifa.drifa: max relative error ${res.maxRelError} over ${res.rows.length} elements`);
  assert.ok(res.maxRelError < 1e-5, `max relative error ${res.maxRelError}: ${JSON.stringify(res.rows.filter((r) => r.relError >= 1e-5))}`);
});

const files = fs.readdirSync(path.join(root, "models")).filter((f) => f.endsWith(".drifa"));
for (const f of files) {
  test(`${f}: lowers, differentiates and trains one step with a finite loss`, () => {
    const p = f === "drifa.drifa" ? drifa : program(path.join(root, "models", f));
    const model = buildTrainGraph(p, 2);
    const trainable = p.params.filter((q) => q.role === "param").map((q) => q.name);
    assert.equal([...model.grads.keys()].sort(), [...new Set(trainable)].sort());
    const state = initState(p, 3);
    const before = new Map([...state.params].map(([k, v]) => [k, v.slice()]));
    const res = trainStep(model, state, randomBatch(p, 2, 7));
    assert.ok(Number.isFinite(res.loss), `loss ${res.loss}`);
    for (const g of res.grads.values()) assert.ok(g.every(Number.isFinite));
    // Adam moved the trained weights; batchnorm's running statistics were updated.
    const changed = (name: string) => state.params.get(name)!.some((v, i) => v !== before.get(name)![i]);
    assert.ok(trainable.filter(changed).length > trainable.length / 2);
    const buffers = p.params.filter((q) => q.role === "buffer").map((q) => q.name);
    assert.ok(buffers.length === 0 || buffers.every(changed));
  });
}

test("a shared layer is one parameter value: MIFA's dense layer serves all three pools", () => {
  const g = lower(drifa, { batch: 2 }).graph;
  const id = g.params.get("mifa1.fc.weight");
  assert.ok(id !== undefined);
  const users = g.nodes.filter((n) => n.inputs.includes(id!));
  assert.is(users.length, 3);
  assert.is(g.params.size, new Set(drifa.params.map((p) => p.name)).size);
});

test("inference mode uses running statistics and no dropout unless MC is asked for", () => {
  const batch = randomBatch(drifa, 2, 5);
  const state = initState(drifa, 1);
  const run = (mcDropout: boolean, step: number) => {
    const m = lower(drifa, { batch: 2, mode: "infer", mcDropout });
    assert.is(m.updates.size, 0);
    return [...evaluate(m.graph, feedsFor(m, { ...state, step }, batch), [m.tasks[0]!.logits])[0]!];
  };
  assert.equal(run(false, 1), run(false, 2));
  assert.not.equal(run(true, 1), run(true, 2));
});

test("initialisation: seeded, per-name streams, the right distributions", () => {
  const a = initParams(drifa.params, 1);
  const b = initParams(drifa.params, 1);
  const c = initParams(drifa.params, 2);
  const w = "skin.stage4.block2.conv1.weight";
  assert.equal([...a.get(w)!], [...b.get(w)!]);
  assert.not.equal([...a.get(w)!], [...c.get(w)!]);
  const info = drifa.params.find((p) => p.name === w)!;
  assert.is(info.init.kind, "he");
  const v = a.get(w)!;
  const std = Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length);
  const want = Math.sqrt(2 / (info.init as { fanIn: number }).fanIn);
  assert.ok(Math.abs(std / want - 1) < 0.1, `std ${std}, want ${want}`);
  const dense = drifa.params.find((p) => p.init.kind === "glorot")!;
  const { fanIn, fanOut } = dense.init as { fanIn: number; fanOut: number };
  assert.ok(a.get(dense.name)!.every((x) => Math.abs(x) <= Math.sqrt(6 / (fanIn + fanOut))));
  assert.ok(a.get("skin.stem.bn.running_var")!.every((x) => x === 1));
});

test("optimisers: Adam's first step is lr * sign(g); SGD with momentum accumulates", () => {
  const state = { params: new Map([["w", Float64Array.of(1, 1)]]), slots: new Map(), step: 1, seed: 0 };
  optimiserStep({ kind: "adam", lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-12 }, state, new Map([["w", Float64Array.of(3, -0.5)]]), 0.1);
  assert.ok(Math.abs(state.params.get("w")![0]! - 0.9) < 1e-9 && Math.abs(state.params.get("w")![1]! - 1.1) < 1e-9);
  const sgd = { params: new Map([["w", Float64Array.of(0)]]), slots: new Map(), step: 1, seed: 0 };
  for (let i = 0; i < 2; i++) optimiserStep({ kind: "sgd", lr: 0.5, momentum: 0.9 }, sgd, new Map([["w", Float64Array.of(1)]]), 0.5);
  // v1 = 1, w = -0.5; v2 = 0.9 + 1 = 1.9, w = -0.5 - 0.95 = -1.45
  assert.ok(Math.abs(sgd.params.get("w")![0]! + 1.45) < 1e-12);
});

test("dumps: one line per value with names, attributes and shapes; dot output", () => {
  const m = differentiateModel(lower(drifa, { batch: 2 }));
  const text = printGraph(m.graph, { outputs: new Map([["loss", m.loss]]) });
  assert.is(text.trim().split("\n").length, m.graph.nodes.length + 2);
  assert.match(text, "= conv2d(%skin, %skin.stem.conv.weight) {stride=2,padding=3,dilation=1,groups=1} : [2,4,8,8]");
  assert.match(text, /= conv2d_weight_grad\(%\d+, %\d+\) \{stride=1,padding=1,dilation=1,groups=1,k=3\} : \[8,8,3,3\]/);
  assert.match(text, `output loss = %${m.loss}`);
  const dot = graphToDot(m.graph);
  assert.ok(dot.startsWith("digraph ir {") && dot.includes("v2 -> v4;"));
});

test.run();
