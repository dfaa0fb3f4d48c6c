// The fusion pass and the memory plan (compiler/codegen/fuse.ts, memory-plan.ts), without a
// GPU: what fuses (the modulation of MFA/MIFA above all), the binding limit, the schedule, and
// that no buffer is reused while a value in it is still to be read. test/gpu-fusion.test.ts
// runs fused plans against unfused ones on the GPU.
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { checkFile } from "../compiler/check/index.ts";
import { DEFAULT_FUSION, planFusion } from "../compiler/codegen/fuse.ts";
import { renderFusionReport } from "../compiler/codegen/fusion-report.ts";
import { planMemory } from "../compiler/codegen/memory-plan.ts";
import { planGraph } from "../compiler/codegen/plan.ts";
import { planInference, planTrainStep } from "../compiler/codegen/train-plan.ts";
import { differentiateModel } from "../compiler/ir/autodiff.ts";
import { add } from "../compiler/ir/emit.ts";
import { Graph } from "../compiler/ir/graph.ts";
import { lower } from "../compiler/ir/lower.ts";
import type { BufferSpec, KernelLaunch } from "../runtime/executor.ts";
import { modulationGraph } from "./helpers.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

test("the modulation: forward one kernel, backward (gradients of x, d, l, wd, wl, wc) two", () => {
  const cases = [
    { variant: "model", packed: true },
    { variant: "model", packed: false },
    { variant: "full", packed: false },
  ] as const;
  for (const { variant, packed } of cases) {
    const what = `${variant}${packed ? " packed" : ""}`;
    const { g, y, grads } = modulationGraph(variant, [4, 8, 32, 32], { packed });
    const fwd = planGraph(g, [y], { fuse: true });
    assert.is(fwd.kernels.length, 1, `${what}: ${fwd.specs.map((k) => k.label).join("; ")}`);
    assert.ok(fwd.specs[0]!.wgsl.includes("exp("), "sigmoid computed in the kernel");
    const bwd = planGraph(g, grads, { fuse: true });
    const labels = `${what}: ${bwd.specs.map((k) => k.label).join("; ")}`;
    const kernelOf = (v: number) => bwd.fusion.groups.findIndex((k) => k.roots.includes(v));
    const [dx, dd, dl, dwd, dwl, dwc] = grads;
    if (variant === "full") {
      // Per-element d and l: one elementwise kernel (dx, dd, dl), one for the three sums.
      assert.is(bwd.kernels.length, 2, labels);
      assert.is(kernelOf(dx!), kernelOf(dd!));
      assert.is(kernelOf(dx!), kernelOf(dl!));
      assert.ok(kernelOf(dwd!) === kernelOf(dwl!) && kernelOf(dwl!) === kernelOf(dwc!));
    } else {
      // d and l per sample and channel: the first kernel makes one pass over each plane (dx
      // written on the way, the plane sums of the gate's and of ωc's gradients), the second sums
      // over the batch. With d and l packed beside the parameters (the bench's hand-fused
      // layout) dd and dl are written by the second kernel too; with d, l, x and dy in four
      // buffers of their own the two kernels would need 10 bindings, so dd and dl take a third.
      assert.is(bwd.kernels.length, packed ? 2 : 3, labels);
      assert.is(kernelOf(dx!), 0, labels);
      assert.ok(kernelOf(dwc!) === 1 && kernelOf(dwd!) === 1 && kernelOf(dwl!) === 1, labels);
      if (packed) assert.ok(kernelOf(dd!) === 1 && kernelOf(dl!) === 1, labels);
      // The sum over the planes of ωc's gradient is a per-plane pattern of the first kernel.
      const first = bwd.specs[0]!.wgsl;
      assert.ok(/reduction kernel: .*reduce x2 -> \[4,8\], \[4,8\]/.test(first), first.split("\n")[0]);
      // Forward and backward together: the forward is written in the first backward pass.
      if (packed) assert.is(planGraph(g, [y, ...grads], { fuse: true }).kernels.length, 2);
    }
    for (const k of bwd.kernels) assert.ok(k.buffers.length <= 8, `${k.label}: ${k.buffers.length} bindings`);
  }
});

test("without fusion every value is its own kernel; fusion off and on compute the same set of outputs", () => {
  const { g, grads } = modulationGraph("model", [2, 4, 3, 3]);
  const off = planGraph(g, grads, { fuse: false });
  const on = planGraph(g, grads, { fuse: true });
  assert.ok(off.kernels.length > 3 * on.kernels.length, `${off.kernels.length} vs ${on.kernels.length}`);
  assert.equal(off.fusion.groups.map((k) => k.kind).filter((k) => k !== "node"), []);
  for (const o of grads) assert.ok(on.bufferOf.has(o), "every output has a buffer");
});

function drifaProgram(settings: Record<string, string>) {
  const r = checkFile(path.join(root, "models/drifa.drifa"), { settings });
  assert.equal(r.diagnostics.map((d) => d.message), []);
  return r.programs[0]!;
}

const tiny = drifaProgram({ width: "4", size: "16" });
// Every recomputable value recomputed (at this size the default threshold keeps them all), so
// the checks below cover recomputed values too.
const trainPlan = planTrainStep(differentiateModel(lower(tiny, { batch: 2, mode: "train" })), { remat: { minFloats: 0 } });

/** The GPU buffer a binding lands in (views resolved to their root). */
const rootOf = (buffers: BufferSpec[], b: number) => buffers[b]!.view?.of ?? b;

function checkBindings(buffers: BufferSpec[], kernels: KernelLaunch[]) {
  for (const k of kernels) {
    assert.ok(k.buffers.length <= DEFAULT_FUSION.maxBindings, `${k.label}: ${k.buffers.length} bindings`);
    const written = new Set(k.buffers.filter((_, j) => k.access[j] === "write").map((b) => rootOf(buffers, b)));
    const read = k.buffers.filter((_, j) => k.access[j] === "read").map((b) => rootOf(buffers, b));
    assert.ok(!read.some((b) => written.has(b)), `${k.label} reads and writes one buffer`);
  }
}

test("DRIFA-Net's training step and inference: every kernel within 8 bindings, none binds a buffer for reading and writing", () => {
  checkBindings(trainPlan.buffers, trainPlan.kernels);
  const infer = planInference(tiny, { batch: 2 });
  checkBindings(infer.buffers, infer.kernels);
  const unfused = planTrainStep(differentiateModel(lower(tiny, { batch: 2, mode: "train" })), { fuse: false });
  assert.ok(unfused.summary.dispatches > 2.5 * trainPlan.summary.dispatches, `${unfused.summary.dispatches} unfused vs ${trainPlan.summary.dispatches}`);
  assert.is(trainPlan.summary.submits, 1);
});

test("every value a fused kernel uses is declared before it (hoisted reads, windows gathers, epilogues)", () => {
  const infer = planInference(tiny, { batch: 2 });
  let fused = 0;
  for (const k of [...trainPlan.kernels, ...infer.kernels]) {
    if (!k.wgsl.includes("drifa fused")) continue;
    fused++;
    const declared = new Set<string>();
    for (const line of k.wgsl.split("\n")) {
      const uses = line.replace(/^\s*let (\w+) = /, "").match(/\b(t\d+|w\d+_\w+)\b/g) ?? [];
      for (const u of uses) assert.ok(declared.has(u), `${k.label}: ${u} used before its declaration in: ${line.trim()}`);
      const decl = /^\s*let (\w+) = /.exec(line);
      if (decl) declared.add(decl[1]!);
    }
  }
  assert.ok(fused > 50, `${fused} fused kernels`);
});

test("the memory plan never reuses a buffer while a value in it is still to be read (a pair of kernels counts as one dispatch)", () => {
  const groups = trainPlan.fusion.groups;
  const dispatches = trainPlan.fusion.dispatches!;
  assert.ok(dispatches.some((d) => d.length === 2), "some kernels are paired");
  const slotOf = new Map<number, number>(); // group -> dispatch
  const bufferOf = new Map<number, number>();
  // Buffer of each value written by a kernel: from the launches' write bindings (a pair binds
  // the first kernel's, then the second's).
  dispatches.forEach((d, i) => {
    const k = trainPlan.kernels[i]!;
    const writes = k.buffers.filter((_, j) => k.access[j] === "write");
    d.flatMap((g) => groups[g]!.roots).forEach((v, j) => bufferOf.set(v, writes[j]!));
    d.forEach((g) => slotOf.set(g, i));
  });
  const lastRead = new Map<number, number>();
  groups.forEach((g, k) => g.reads.forEach((r) => lastRead.set(r, Math.max(lastRead.get(r) ?? 0, slotOf.get(k)!))));
  const writers = new Map<number, { slot: number; value: number }[]>(); // root buffer -> writes into it
  groups.forEach((g, k) => g.roots.forEach((v) => {
    const r = rootOf(trainPlan.buffers, bufferOf.get(v)!);
    (writers.get(r) ?? writers.set(r, []).get(r)!).push({ slot: slotOf.get(k)!, value: v });
  }));
  let pooled = 0;
  groups.forEach((g, k) => g.roots.forEach((v) => {
    const buffer = rootOf(trainPlan.buffers, bufferOf.get(v)!);
    if (!trainPlan.buffers[buffer]!.label.startsWith("pool")) return;
    pooled++;
    const def = slotOf.get(k)!;
    const end = lastRead.get(v) ?? def;
    const clobber = writers.get(buffer)!.find((w) => w.value !== v && w.slot >= def && w.slot <= end);
    assert.is(clobber, undefined, `%${v} (dispatch ${def}, read until ${end}) overwritten by %${clobber?.value} in dispatch ${clobber?.slot}`);
  }));
  assert.ok(pooled > 100, `${pooled} pooled values`);
  assert.ok(trainPlan.summary.bytes < trainPlan.summary.unplannedBytes, `${trainPlan.summary.bytes} >= ${trainPlan.summary.unplannedBytes}`);
});

test("planMemory: best fit, a buffer free only after its last reader, values read after the step never shared", () => {
  const plan = planMemory([
    { id: 1, floats: 100, def: 0, lastUse: 1 },
    { id: 2, floats: 50, def: 1, lastUse: 2 },
    // Kernel 1 reads value 1: value 3 (written by kernel 1) must not take its buffer.
    { id: 3, floats: 80, def: 1, lastUse: 3 },
    { id: 4, floats: 90, def: 2, lastUse: Infinity },
    { id: 5, floats: 40, def: 3, lastUse: 4 },
    { id: 6, floats: 10, def: 5, lastUse: 6 },
  ]);
  const p = (id: number) => plan.poolOf.get(id)!;
  assert.is.not(p(3), p(1));
  assert.is.not(p(3), p(2));
  assert.is(p(4), p(1), "value 4 reuses value 1's buffer (free after kernel 1)");
  assert.is.not(p(5), p(4));
  assert.is.not(p(6), p(4), "a value read after the step keeps its buffer");
  assert.ok(plan.pools.length <= 4, `${plan.pools.length} pools`);
});

test("the binding limit: a sum of many stored values is split into kernels that fit", () => {
  const g = new Graph();
  const xs = Array.from({ length: 12 }, (_, k) => g.input(`x${k}`, [8]));
  let acc = xs[0]!;
  for (const x of xs.slice(1)) acc = g.emit("exp", [add(g, acc, x)], {});
  for (const limit of [4, 8]) {
    const f = planFusion(g, [acc], { maxBindings: limit });
    for (const k of f.groups) assert.ok(k.reads.length + k.roots.length <= limit, `${k.reads.length} reads + ${k.roots.length} writes > ${limit}`);
    assert.ok(f.missed.some((m) => /fits \d+ bindings/.test(m.reason)));
  }
});

test("drifac compile --report lists fused kernels and why candidates were stored", () => {
  const text = renderFusionReport("DrifaNet, training step", trainPlan.graph, trainPlan.fusion, 9999);
  assert.match(text, /kernels \(9999 without fusion\)/);
  assert.match(text, /fused elementwise: writes %\d+ \w+\[/);
  assert.match(text, /computes inline: .*sigmoid/);
  assert.match(text, /read by conv2d %\d+, which reads its inputs from memory/);
  assert.match(text, /#\d+ conv2d \+ epilogue \(its result %\d+ conv2d\[[\d,]+\] not stored\): writes %\d+ sigmoid/);
  assert.match(text, /; one dispatch with #\d+/);
  assert.match(text, /recomputed in backward instead of kept from forward: \d+ values \(.*conv2d x\d+.*\) in \d+ places/);
  const pairs = trainPlan.fusion.dispatches!.filter((d) => d.length === 2).length;
  assert.match(text, new RegExp(`${trainPlan.fusion.dispatches!.length} dispatches \\(${pairs} pairs of twin kernels\\)`));
  // With the default threshold nothing at this size is recomputed, and the report says why.
  const byDefault = planTrainStep(differentiateModel(lower(tiny, { batch: 2, mode: "train" })));
  const plain = renderFusionReport("DrifaNet, training step", byDefault.graph, byDefault.fusion, 9999);
  assert.not.match(plain, /recomputed in backward/);
  assert.match(plain, /kept from forward though recomputable: \d+ values under 16,384 elements/);
});

test.run();
