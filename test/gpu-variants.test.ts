// Kernel variants: the shared-memory tiled family (compiler/codegen/wgsl/tiled.ts) against the
// float64 interpreter on odd shapes, the autotuner (runtime/autotune.ts) choosing the faster
// of two kernels and caching the choice, DRIFA_AUTOTUNE=off, and variants surviving a
// compiled folder's manifest. The cache lives in a temporary XDG_CACHE_HOME, never ~/.cache.
// With no adapter the GPU tests are skipped with a message saying what to install.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ShaderTable } from "../compiler/codegen/emit/manifest.ts";
import { relError, roundFeeds } from "../compiler/codegen/gpucheck.ts";
import { planGraph } from "../compiler/codegen/plan.ts";
import { blockedVariant } from "../compiler/codegen/wgsl/conv-blocked.ts";
import { pointwiseVariant } from "../compiler/codegen/wgsl/conv-pointwise.ts";
import { type KernelVariant, kernelFor } from "../compiler/codegen/wgsl/index.ts";
import { Graph } from "../compiler/ir/graph.ts";
import { evaluate, seededUniform } from "../compiler/ir/interpret.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { autotuneCounters, nodeCacheFile, pickVariant, tuneKey } from "../runtime/autotune.ts";
import { hydrate } from "../runtime/compiled/manifest.ts";
import { type ExecPlan, Executor } from "../runtime/executor.ts";
import { blockedConvCases, convCases } from "./conv-cases.ts";
import { gpuForTests } from "./helpers.ts";

const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-autotune-"));
let started = performance.now();
const { gpu, gpuTest } = await gpuForTests("gpu-variants");
// uvu imports every suite before running any: the environment is set when this suite starts
// and restored when it ends, so other suites keep theirs.
const saved = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME, DRIFA_AUTOTUNE: process.env.DRIFA_AUTOTUNE };
const restore = (name: keyof typeof saved) => (saved[name] === undefined ? delete process.env[name] : (process.env[name] = saved[name]));
test.before(() => {
  started = performance.now();
  process.env.XDG_CACHE_HOME = cacheHome;
  delete process.env.DRIFA_AUTOTUNE;
});

const rand = seededUniform(11);
const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/** Runs `outputs` of `graph` with every kernel's variant `name` and compares each with the
 * interpreter; inputs x0, x1, ... are random normals. `attach` supplies the variant of a node
 * (default: the emitter's own variants). */
async function variantAgrees(g: Graph, inputs: number[], outputs: Record<string, number>, name = "tiled", attach?: (node: number) => KernelVariant | undefined): Promise<void> {
  const ids = Object.values(outputs);
  const plan = planGraph(g, ids);
  // Plans carry the emitters' variants (a plan built before they existed would not).
  plan.kernels.forEach((k, i) => {
    if (attach) {
      const v = attach(plan.specs[i]!.node);
      if (v) k.variants = [v];
    } else k.variants ??= plan.specs[i]!.variants;
  });
  assert.ok(
    plan.kernels.every((k) => k.variants?.some((v) => v.name === name)),
    `every kernel has a ${name} variant`,
  );
  const feeds = roundFeeds({
    inputs: new Map(inputs.map((x, i) => [`x${i}`, Float64Array.from({ length: numel(g.shapeOf(x)) }, normal)])),
    params: new Map(),
  });
  const exec = await Executor.create(gpu!, plan, {
    autotune: { prefer: name },
  });
  try {
    assert.equal(
      [...exec.variants],
      plan.kernels.map(() => name),
    );
    const got = await exec.run(feeds);
    const ref = evaluate(g, feeds, ids);
    const bad = Object.keys(outputs).flatMap((name, i) => {
      const e = relError(ref[i]!, got[i]!);
      return e > 1e-4 ? [`${name}: error ${e.toExponential(2)}`] : [];
    });
    assert.equal(bad, []);
  } finally {
    exec.destroy();
  }
}

gpuTest("tiled matmul agrees with the interpreter: transposes, sizes not multiples of 16", async () => {
  for (const [m, k, n] of [
    [3, 5, 7],
    [17, 33, 18],
  ] as const) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const g = new Graph();
        const a = g.input("x0", transA ? [k, m] : [m, k]);
        const b = g.input("x1", transB ? [n, k] : [k, n]);
        await variantAgrees(g, [a, b], {
          [`matmul ${m}x${k}x${n} tA=${transA} tB=${transB}`]: g.emit("matmul", [a, b], { transA, transB }),
        });
      }
    }
  }
});

// [x shape, weight shape, attrs]: padding, stride, dilation, groups, 7x7, 1x1, edges of 16.
const convs: typeof convCases = [
  ...convCases,
  [[2, 5, 9, 7], [18, 5, 3, 3], { stride: 1, padding: 1, dilation: 1, groups: 1 }],
];

/** A graph with the three convolution primitives of one case, inputs named x0, x1, x2. */
function convTriple([xs, ws, a]: (typeof convCases)[number]) {
  const g = new Graph();
  const x = g.input("x0", xs);
  const w = g.input("x1", ws);
  const y = g.input("x2", g.shapeOf(g.emit("conv2d", [x, w], a)));
  const tag = `${xs}*${ws} ${JSON.stringify(a)}`;
  const outputs: Record<string, number> = {
    [`conv2d ${tag}`]: g.emit("conv2d", [x, w], a),
    [`conv2d_input_grad ${tag}`]: g.emit("conv2d_input_grad", [y, w], { ...a, h: xs[2]!, w: xs[3]! }),
    [`conv2d_weight_grad ${tag}`]: g.emit("conv2d_weight_grad", [x, y], { ...a, k: ws[2]! }),
  };
  return { g, inputs: [x, w, y], outputs, tag };
}

gpuTest("tiled conv2d, conv2d_input_grad, conv2d_weight_grad agree with the interpreter", async () => {
  for (const c of convs) {
    const { g, inputs, outputs } = convTriple(c);
    await variantAgrees(g, inputs, outputs);
  }
});

// The register-blocked family (conv-blocked.ts) on its own cases (see conv-cases.ts).
gpuTest("blocked conv2d, conv2d_input_grad, conv2d_weight_grad agree with the interpreter", async () => {
  for (const c of blockedConvCases) {
    const { g, inputs, outputs, tag } = convTriple(c);
    const a = c[2];
    const attach = (id: number) => {
      const node = g.node(id);
      return blockedVariant({ node, attrs: node.attrs, inShapes: node.inputs.map((i) => g.shapeOf(i)), outShape: node.shape }, { force: true });
    };
    // The input gradient of a strided convolution (a scatter) has no blocked form.
    if (a.stride > 1) {
      assert.equal(attach(outputs[`conv2d_input_grad ${tag}`]!), undefined);
      delete outputs[`conv2d_input_grad ${tag}`];
    }
    await variantAgrees(g, inputs, outputs, "blocked", attach);
  }
});

// The pointwise family (conv-pointwise.ts): 1x1 convolutions and their input gradients with
// planes of 16, 8 and 4 (and 12) pixels (four, two and one vec4 per invocation), more output
// channels than input ones and fewer.
gpuTest("pointwise conv2d and conv2d_input_grad (1x1) agree with the interpreter", async () => {
  const cases: [number[], number[]][] = [
    [[2, 5, 4, 4], [7, 5, 1, 1]],
    [[3, 6, 2, 4], [4, 6, 1, 1]],
    [[2, 3, 3, 4], [5, 3, 1, 1]],
    [[2, 9, 2, 2], [9, 9, 1, 1]],
  ];
  const a = { stride: 1, padding: 0, dilation: 1, groups: 1 };
  for (const [xs, ws] of cases) {
    const g = new Graph();
    const x = g.input("x0", xs);
    const w = g.input("x1", ws);
    const dy = g.input("x2", [xs[0]!, ws[0]!, xs[2]!, xs[3]!]);
    const outputs = {
      [`conv2d ${xs}*${ws}`]: g.emit("conv2d", [x, w], a),
      [`conv2d_input_grad ${xs}*${ws}`]: g.emit("conv2d_input_grad", [dy, w], { ...a, h: xs[2]!, w: xs[3]! }),
    };
    const attach = (id: number) => {
      const node = g.node(id);
      return pointwiseVariant({ node, attrs: node.attrs, inShapes: node.inputs.map((i) => g.shapeOf(i)), outShape: node.shape });
    };
    await variantAgrees(g, [x, w, dy], outputs, "pointwise", attach);
  }
});

test("pointwise variants: 1x1 convolutions and input gradients, stride 1, no padding, one group, planes of a multiple of 4 pixels", () => {
  const g = new Graph();
  const a = { stride: 1, padding: 0, dilation: 1, groups: 1 };
  const x = g.input("x", [8, 16, 16, 16]);
  const w = g.input("w", [16, 16, 1, 1]);
  const names = (id: number) => (kernelFor(g, id).variants ?? []).map((v) => v.name);
  const y = g.emit("conv2d", [x, w], a);
  assert.equal(names(y), ["blocked", "pointwise", "tiled"]);
  assert.equal(names(g.emit("conv2d_input_grad", [y, w], { ...a, h: 16, w: 16 })), ["blocked", "pointwise", "tiled"]);
  assert.not.ok(names(g.emit("conv2d_weight_grad", [x, y], { ...a, k: 1 })).includes("pointwise"));
  assert.ok(names(g.emit("conv2d", [g.input("small", [8, 128, 2, 2]), g.input("w2", [128, 128, 1, 1])], a)).includes("pointwise"), "a 2x2 plane is one vec4");
  for (const [xs, ws, at] of [
    [[8, 16, 16, 16], [16, 16, 1, 1], { ...a, stride: 2 }],
    [[8, 16, 16, 16], [16, 16, 1, 1], { ...a, padding: 1 }],
    [[8, 16, 16, 16], [16, 8, 1, 1], { ...a, groups: 2 }],
    [[8, 16, 3, 3], [16, 16, 1, 1], a],
    [[8, 16, 16, 16], [16, 16, 3, 3], a],
  ] as const) {
    assert.not.ok(names(g.emit("conv2d", [g.input(`x${g.nodes.length}`, [...xs]), g.input(`w${g.nodes.length}`, [...ws])], at)).includes("pointwise"), `${xs} * ${ws} ${JSON.stringify(at)}`);
  }
});

// Convolutions with epilogues (wgsl/epilogue.ts), in every variant (the blocked one stores vec4s
// through its epilogue), against the interpreter; and twin kernels (the same WGSL, independent,
// as the two modality branches have) paired into one dispatch (pairing.ts) against the same
// kernels unpaired, bit for bit. Convolutions are not paired (long modules: compile time).
gpuTest("epilogues in every convolution variant, and paired twin kernels (1x1 convolutions in every variant, pointwise too), agree with the interpreter", async () => {
  const g = new Graph();
  const a = { stride: 1, padding: 1, dilation: 1, groups: 1 };
  const outputs: Record<string, number> = {};
  const inputs: number[] = [];
  for (const [size, channels] of [
    [8, 4],
    [16, 16],
  ] as const) {
    for (const t of [0, 1]) {
      const big = [8, channels, size, size];
      const at = inputs.length;
      const x = g.input(`x${at}`, big);
      const w = g.input(`x${at + 1}`, [channels, channels, 3, 3]);
      const b = g.input(`x${at + 2}`, [channels]);
      const dy = g.input(`x${at + 3}`, big);
      const w1 = g.input(`x${at + 4}`, [channels, channels, 1, 1]);
      inputs.push(x, w, b, dy, w1);
      const conv = g.emit("conv2d", [x, w], a);
      const tag = `${size}x${size}x${channels} ${t}`;
      const bias = g.emit("broadcast", [b], { shape: big, axes: [1] });
      outputs[`sigmoid(conv + b) ${tag}`] = g.emit("sigmoid", [g.emit("add", [conv, bias], {})], {});
      outputs[`input grad ${tag}`] = g.emit("conv2d_input_grad", [dy, w], { ...a, h: size, w: size });
      outputs[`weight grad ${tag}`] = g.emit("conv2d_weight_grad", [x, dy], { ...a, k: 3 });
      // 1x1 convolutions (HIFA's), which pair with all their variants (KernelSpec.quickToCompile).
      const a1 = { ...a, padding: 0 };
      outputs[`1x1 sigmoid(conv + b) ${tag}`] = g.emit("sigmoid", [g.emit("add", [g.emit("conv2d", [x, w1], a1), bias], {})], {});
      outputs[`1x1 weight grad ${tag}`] = g.emit("conv2d_weight_grad", [x, dy], { ...a1, k: 1 });
      // Twins of a short kernel that fusion does not group (it reads memory): argmask, the
      // mask of each plane's first maximum (max pooling's gradient).
      outputs[`argmask ${tag}`] = g.emit("argmask", [dy], { op: "max", shape: [8, channels], axes: [0, 1] });
    }
  }
  const ids = Object.values(outputs);
  const plan = planGraph(g, ids, { fuse: true });
  const labels = plan.kernels.map((k) => k.label).join("; ");
  const paired = plan.kernels.filter((k) => k.label.includes(" | "));
  // Paired: the argmask twins and the 1x1 convolutions' (forward with its epilogue, weight
  // gradient: two pairs per size), never the 3x3 ones.
  const pairedConvs = paired.filter((k) => /conv2d/.test(k.label));
  assert.ok(paired.length >= 6 && paired.every((k) => k.dispatch[2] === 2), labels);
  assert.is(pairedConvs.length, 4, labels);
  assert.ok(pairedConvs.every((k) => k.variants?.some((v) => v.name === "blocked" && v.dispatch[2] === 2)), labels);
  assert.ok(plan.kernels.some((k) => /conv2d \+ %\d+ sigmoid/.test(k.label) && k.variants?.some((v) => v.name === "blocked")), labels);
  const single = planGraph(g, ids, { fuse: true, pair: false });
  assert.is(single.kernels.length, plan.kernels.length + paired.length);
  const rng = seededUniform(5);
  const feeds = roundFeeds({ inputs: new Map(inputs.map((x, i) => [`x${i}`, Float64Array.from({ length: numel(g.shapeOf(x)) }, () => rng() - 0.5)])), params: new Map() });
  const ref = evaluate(g, feeds, ids);
  const run = async (p: typeof plan, name: string) => {
    const exec = await Executor.create(gpu!, p, { autotune: { prefer: name } });
    try {
      return await exec.run(feeds);
    } finally {
      exec.destroy();
    }
  };
  assert.ok(pairedConvs.some((k) => k.variants?.some((v) => v.name === "pointwise" && v.dispatch[2] === 2)), labels);
  for (const name of ["register", "tiled", "blocked", "pointwise"]) {
    const [two, one] = [await run(plan, name), await run(single, name)];
    // The same arithmetic in one dispatch or two: identical bits; and near float64 (the
    // weight gradients sum up to 2048 products: 1e-3).
    const bad = Object.keys(outputs).flatMap((o, i) => {
      const e = relError(ref[i]!, two[i]!);
      const same = two[i]!.every((v, j) => v === one[i]![j]);
      return e > 1e-3 || !same ? [`${name} ${o}: error ${e.toExponential(2)}, ${same ? "" : "differs from unpaired"}`] : [];
    });
    assert.equal(bad, []);
  }
});

test("blocked variants: attached to large convolutions with widths multiple of 4, never to strided input gradients", () => {
  const g = new Graph();
  const a = { stride: 1, padding: 1, dilation: 1, groups: 1 };
  const x = g.input("x", [8, 64, 32, 32]);
  const w = g.input("w", [64, 64, 3, 3]);
  const y = g.emit("conv2d", [x, w], a);
  const names = (id: number) => (kernelFor(g, id).variants ?? []).map((v) => v.name);
  assert.equal(names(y), ["blocked", "tiled"]);
  assert.equal(names(g.emit("conv2d_input_grad", [y, w], { ...a, h: 32, w: 32 })), ["blocked", "tiled"]);
  assert.equal(names(g.emit("conv2d_weight_grad", [x, y], { ...a, k: 3 })), ["blocked", "tiled"]);
  const s2 = g.emit("conv2d", [x, w], { ...a, stride: 2 });
  assert.equal(names(s2), ["blocked", "tiled"]);
  assert.equal(names(g.emit("conv2d_input_grad", [s2, w], { ...a, stride: 2, h: 32, w: 32 })), ["tiled"]);
  assert.equal(names(g.emit("conv2d", [g.input("odd", [8, 64, 31, 31]), w], a)), ["tiled"]);
  assert.equal(names(g.emit("conv2d", [g.input("small", [1, 4, 8, 8]), g.input("ws", [4, 4, 3, 3])], a)), ["tiled"]);
});

/** y = 2x over n floats; `extra` adds a long dependent loop whose result is kept (so the
 * shader compiler cannot drop it) but never changes y: the same values, a slower kernel. */
function doubling(n: number, extra: number): string {
  return [
    "@group(0) @binding(0) var<storage, read> x0: array<f32>;",
    "@group(0) @binding(1) var<storage, read_write> y: array<f32>;",
    "@compute @workgroup_size(64)",
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {",
    "  let i = gid.x;",
    `  if (i >= ${n}u) { return; }`,
    "  var s = x0[i];",
    `  for (var j = 0u; j < ${extra}u; j++) { s = s * 0.999f + x0[(i + j) % ${n}u]; }`,
    "  y[i] = x0[i] * 2.0f + select(0.0f, s, s == 1234.5f && s != 1234.5f);",
    "}",
  ].join("\n");
}

function tunePlan(n: number): ExecPlan {
  const dispatch: [number, number, number] = [Math.ceil(n / 64), 1, 1];
  return {
    buffers: [
      { label: "x", floats: n, init: { kind: "input", name: "x" } },
      { label: "y", floats: n, init: { kind: "none" } },
    ],
    // The default is the slow one, so the tuner must move off it to win.
    kernels: [
      {
        label: "doubling",
        wgsl: doubling(n, 4096),
        entryPoint: "main",
        buffers: [0, 1],
        access: ["read", "write"],
        workgroupSize: [64, 1, 1],
        dispatch,
        variants: [
          {
            name: "fast",
            wgsl: doubling(n, 0),
            workgroupSize: [64, 1, 1],
            dispatch,
          },
        ],
      },
    ],
    outputs: [1],
  };
}

gpuTest("the autotuner picks the faster variant, caches it, and a second executor only reads the cache", async () => {
  const n = 4096;
  const plan = tunePlan(n);
  const x = Float32Array.from({ length: n }, (_, i) => (i % 13) - 6);
  const feeds = { inputs: new Map([["x", x]]), params: new Map() };
  const before = { ...autotuneCounters };
  const first = await Executor.create(gpu!, plan);
  assert.equal([...first.variants], ["fast"]);
  assert.equal(autotuneCounters.measured, before.measured + 1);
  assert.equal(
    [...(await first.run(feeds))[0]!],
    [...x].map((v) => v * 2),
  );
  first.destroy();
  const file = await nodeCacheFile();
  assert.ok(file.startsWith(cacheHome), file);
  // Other suites in this process may have cached their own kernels here: look up this one's key.
  const stored = JSON.parse(fs.readFileSync(file, "utf8")) as { entries: Record<string, { choice: string; ms: Record<string, number> }> };
  const entry = stored.entries[tuneKey(gpu!.adapterName, plan.kernels[0]!)];
  assert.ok(entry, "the choice is in the cache file");
  assert.equal(entry!.choice, "fast");
  console.log(`[gpu-variants] ${gpu!.adapterName}: doubling ms/dispatch ${JSON.stringify(entry!.ms)}`);

  const second = await Executor.create(gpu!, plan);
  assert.equal([...second.variants], ["fast"]);
  assert.equal(autotuneCounters.measured, before.measured + 1, "the second executor measured nothing");
  assert.equal(autotuneCounters.fromCache, before.fromCache + 1);
  assert.equal(second.stats.autotuneMs < 50, true);
  second.destroy();
});

test("the choice: the fastest variant, unless it is not 10% faster than the default", () => {
  // (A rule on measured times, tested on given ones: two runs of one kernel on a loaded 2-core
  // machine differ by more than 10% often enough that a GPU test of a tie would be flaky.)
  assert.is(pickVariant([1, 0.5, 2]), 1);
  assert.is(pickVariant([1, 0.95, 2]), 0, "a near tie keeps the default");
  assert.is(pickVariant([1, 0.89]), 1);
  assert.is(pickVariant([Infinity, 3, 2]), 2, "a default that could not run is not kept");
  assert.is(pickVariant([0.5, 1]), 0);
  assert.is(pickVariant([Infinity]), 0);
});

gpuTest("DRIFA_AUTOTUNE=off takes the default; cached with no entry takes it too, measuring nothing", async () => {
  const plan = tunePlan(1000); // other shapes: no cache entry
  const before = { ...autotuneCounters };
  process.env.DRIFA_AUTOTUNE = "off";
  try {
    const off = await Executor.create(gpu!, tunePlan(4096)); // cached as "fast", ignored
    assert.equal([...off.variants], ["register"]);
    off.destroy();
    process.env.DRIFA_AUTOTUNE = "cached";
    const cached = await Executor.create(gpu!, plan);
    assert.equal([...cached.variants], ["register"]);
    cached.destroy();
  } finally {
    delete process.env.DRIFA_AUTOTUNE; // this suite runs with none (see test.before)
  }
  assert.equal(autotuneCounters.measured, before.measured);
  assert.equal(autotuneCounters.defaulted, before.defaulted + 2);
});

test("a compiled folder's manifest stores each variant's shader once and hydrate restores it", () => {
  const g = new Graph();
  const x = g.input("x", [2, 3, 6, 6]);
  const w = g.input("w", [4, 3, 3, 3]);
  const y = g.emit("conv2d", [x, w], {
    stride: 1,
    padding: 1,
    dilation: 1,
    groups: 1,
  });
  const y2 = g.emit("conv2d", [x, w], {
    stride: 1,
    padding: 1,
    dilation: 1,
    groups: 1,
  });
  const plan = planGraph(g, [y, y2]);
  const kernels = plan.kernels.map((k, i) => ({
    ...k,
    variants: kernelFor(g, plan.specs[i]!.node).variants,
  }));
  const table = new ShaderTable();
  const stored = table.strip({ kernels });
  // Two identical kernels with one variant each: two shader files, named by variant.
  assert.equal(table.files.length, 2);
  assert.match(table.files[1]!, /conv2d-tiled\.wgsl$/);
  assert.equal(stored.kernels[0]!.variants, [
    {
      name: "tiled",
      shader: 1,
      workgroupSize: [16, 16, 1],
      dispatch: kernels[0]!.variants![0]!.dispatch,
    },
  ]);
  const back = hydrate(JSON.parse(JSON.stringify(stored)) as typeof stored, table.texts);
  assert.equal(back.kernels, kernels);
  // A manifest written before variants existed still hydrates, with none.
  const old = hydrate({ kernels: stored.kernels.map(({ variants: _, ...k }) => k) }, table.texts);
  assert.equal(old.kernels[0]!.variants, undefined);
});

test.after(() => {
  restore("XDG_CACHE_HOME");
  restore("DRIFA_AUTOTUNE");
  fs.rmSync(cacheHome, { recursive: true, force: true });
  if (gpu) console.log(`[gpu-variants] ${((performance.now() - started) / 1000).toFixed(1)} s`);
  gpu?.destroy();
});

test.run();
