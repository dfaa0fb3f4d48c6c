// Recomputation in backward (compiler/ir/remat.ts): which forward values are recomputed, that
// the recomputed graph computes exactly what the program as written does, that the fusion pass
// keeps the copies in backward, and what the memory plan gains. The GPU side is covered by
// test/gpu-fusion.test.ts (fused plans, recomputation included, against unfused ones) and by
// `drifac verify` in test/gpu-train.test.ts.
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkFile } from "../compiler/check/index.ts";
import { planTrainStep } from "../compiler/codegen/train-plan.ts";
import { type Differentiated } from "../compiler/ir/autodiff.ts";
import { buildTrainGraph, evaluate, feedsFor, initState, seededUniform } from "../compiler/ir/interpret.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { REMAT_MIN_FLOATS, rematCandidates, rematerialise } from "../compiler/ir/remat.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const program = checkFile(path.join(root, "models/drifa.drifa"), { settings: { width: "4", size: "16" } }).programs[0]!;
const written = buildTrainGraph(program, 2);
// At this size every value is under the size threshold: the tests of what recomputation does
// recompute every candidate (as `drifac verify` does); the threshold has its own test.
const ALL = { minFloats: 0 };
const remat = rematerialise(written, ALL);

test("recomputed: HIFA's and CLIA's sigmoid maps and the modulation's product; never a 3x3 convolution", () => {
  const g = written.graph;
  const chosen = rematCandidates(written, ALL);
  const maps = [...chosen].filter((v) => g.node(v).prim === "sigmoid" && g.shapeOf(v).length === 4);
  // Every MFA has four HIFA maps and one CLIA map.
  const mfas = [...g.params.keys()].filter((n) => n.endsWith(".wc")).length;
  assert.ok(mfas >= 34, `${mfas} MFA blocks`);
  assert.ok(maps.length >= 5 * mfas - 2 * mfas, `${maps.length} sigmoid maps recomputed for ${mfas} MFAs`);
  const products = [...chosen].filter((v) => g.node(v).prim === "mul" && g.shapeOf(v).length === 4);
  assert.ok(products.length >= mfas, `${products.length} modulation products`);
  for (const [id] of remat.recomputed) {
    const node = remat.graph.node(id);
    assert.ok(id > remat.loss, `recomputed %${id} ${node.prim} comes after the loss`);
    if (node.prim === "conv2d") assert.equal(remat.graph.shapeOf(node.inputs[1]!).slice(2), [1, 1], "only 1x1 convolutions are recomputed");
    assert.ok(["conv2d", "neg", "exp", "log", "sqrt", "relu", "sigmoid", "add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "broadcast", "reshape"].includes(node.prim), node.prim);
  }
  // Anchors (values backward reads anyway) are never recomputed: no forward value that backward
  // did not read before is read by backward now.
  const readBefore = new Set<string>();
  for (let id = written.loss + 1; id < g.nodes.length; id++) for (const i of g.node(id).inputs) if (i <= written.loss && !["const", "param", "input"].includes(g.node(i).prim)) readBefore.add(describe(written, i));
  for (let id = remat.loss + 1; id < remat.graph.nodes.length; id++) {
    for (const i of remat.graph.node(id).inputs) if (i <= remat.loss && !["const", "param", "input"].includes(remat.graph.node(i).prim)) assert.ok(readBefore.has(describe(remat, i)), `backward now reads ${describe(remat, i)}`);
  }
});

/** A forward value by what it is, so the two graphs' values can be compared: prim, shape and
 * the parameters it is computed from. */
function describe(m: Differentiated, id: number): string {
  const n = m.graph.node(id);
  if (n.prim === "param" || n.prim === "input") return `${n.prim} ${(n.attrs as { name: string }).name}`;
  return `${n.prim}${JSON.stringify(n.shape)} origin ${n.origin} #${ordinal(m, id)}`;
}

/** Which of the forward values with the same prim and origin `id` is (in id order). */
function ordinal(m: Differentiated, id: number): number {
  const n = m.graph.node(id);
  let k = 0;
  for (let j = 0; j < id; j++) {
    const o = m.graph.node(j);
    if (o.prim === n.prim && o.origin === n.origin && JSON.stringify(o.shape) === JSON.stringify(n.shape)) k++;
  }
  return k;
}

test("the recomputed graph gives exactly the written one's loss, gradients and statistics", () => {
  const state = initState(program, 3);
  const u = seededUniform(7);
  const inputs = Object.fromEntries(program.inputs.map((i) => [i.name, Float64Array.from({ length: numel(written.graph.shapeOf(written.graph.inputs.get(i.name)!)) }, () => u() * 2 - 1)]));
  const labels = Object.fromEntries(program.tasks.map((t) => [t.name, [0, 1]]));
  const outputsOf = (m: Differentiated) => [m.loss, ...m.grads.values(), ...m.updates.values()];
  const a = evaluate(written.graph, feedsFor(written, state, { inputs, labels }), outputsOf(written));
  const b = evaluate(remat.graph, feedsFor(remat, state, { inputs, labels }), outputsOf(remat));
  assert.is(a.length, b.length);
  a.forEach((x, k) => assert.ok(x.every((v, j) => Object.is(v, b[k]![j])), `output ${k} differs`));
});

test("the fusion pass keeps recomputed values out of forward kernels, and the memory plan gains", () => {
  const plan = planTrainStep(written, { remat: ALL });
  assert.is(plan.graph.nodes.length, remat.graph.nodes.length, "planTrainStep recomputes as told");
  const loss = remat.loss; // the plan's graph is the same recomputed graph
  for (const g of plan.fusion.groups) {
    const copies = g.roots.filter((r) => remat.recomputed.has(r));
    if (copies.length === 0) continue;
    assert.ok(
      g.roots.every((r) => r > loss),
      `a kernel computes recomputed ${copies.map((c) => `%${c}`).join(", ")} together with forward values`,
    );
  }
  // Memory: at this size the weights and optimiser state dominate; at the bench's proportions
  // (activations larger than the state) the pooled values shrink by about half.
  const big = buildTrainGraph(checkFile(path.join(root, "models/drifa.drifa"), { settings: { width: "4", size: "64" } }).programs[0]!, 4);
  const [on, off] = [planTrainStep(big, { remat: ALL }), planTrainStep(big, { remat: false })];
  assert.ok(on.summary.bytes < 0.8 * off.summary.bytes, `planned ${on.summary.bytes} with recomputation vs ${off.summary.bytes} without`);
  const without = planTrainStep(written, { remat: false });
  // Unplanned counts only the program's own values (recomputed copies are the plan's); what
  // fusion stores of them may differ by a few small vectors.
  assert.ok(Math.abs(plan.summary.unplannedBytes - without.summary.unplannedBytes) < 0.01 * without.summary.unplannedBytes, `${plan.summary.unplannedBytes} vs ${without.summary.unplannedBytes}`);
});

test("values under the size threshold are kept: a recomputed small value costs a dispatch and frees little", () => {
  const numelOf = (m: Differentiated, v: number) => numel(m.graph.shapeOf(v));
  // drifa at width 4, 16x16, batch 2: every candidate is under the threshold; by default the
  // plan recomputes nothing.
  assert.ok(rematCandidates(written, ALL).size > 0);
  assert.is(rematCandidates(written).size, 0);
  assert.is(planTrainStep(written).graph.nodes.length, written.graph.nodes.length, "nothing recomputed by default at this size");
  // At 64x64, batch 4 the stem's maps (4 x 4 x 32 x 32) reach the threshold and the stage maps
  // do not: only the large ones are recomputed, and every large candidate is.
  const big = buildTrainGraph(checkFile(path.join(root, "models/drifa.drifa"), { settings: { width: "4", size: "64" } }).programs[0]!, 4);
  const all = rematCandidates(big, ALL);
  const chosen = rematCandidates(big);
  assert.ok(chosen.size > 0 && chosen.size < all.size, `${chosen.size} of ${all.size}`);
  for (const v of all) assert.is(chosen.has(v), numelOf(big, v) >= REMAT_MIN_FLOATS, `%${v} ${big.graph.node(v).prim} of ${numelOf(big, v)} elements`);
});

test.run();
