// Every primitive's VJP rule against central finite differences in float64, on random inputs of
// several shapes (broadcasting included), plus forward checks of the primitives without gradient.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { differentiate } from "../compiler/ir/autodiff.ts";
import { constant, sumTo } from "../compiler/ir/emit.ts";
import { Graph } from "../compiler/ir/graph.ts";
import { evaluate, seededUniform } from "../compiler/ir/interpret.ts";
import { type Prim, type PrimAttrs, numel } from "../compiler/ir/primitives.ts";
import { prims } from "../compiler/ir/registry.ts";
import { softmaxCrossEntropy } from "../compiler/ir/lower.ts";

const exercised = new Set<Prim>();
const rand = seededUniform(42);
type Gen = (i: number) => number;
const normal: Gen = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
const positive: Gen = () => 0.5 + 2 * rand();
/** Away from 0, so relu and comparisons are not evaluated at their kink. */
const awayFromZero: Gen = () => (rand() < 0.5 ? -1 : 1) * (0.2 + rand());

/**
 * Builds `f` on parameter leaves filled by `gens`, forms L = sum(c * f(x)) with a random
 * cotangent c, and compares autodiff's dL/dx with central differences for every element.
 * Returns the largest relative error |a - b| / max(|a|, |b|, 1e-3 (1 + max |a|)).
 */
function vjpError(shapes: number[][], f: (g: Graph, xs: number[]) => number, gens: Gen[] = []): number {
  const g = new Graph();
  const xs = shapes.map((s, i) => g.param(`x${i}`, s));
  const y = f(g, xs);
  for (const n of g.nodes) exercised.add(n.prim);
  const c = g.input("c", g.shapeOf(y));
  const loss = sumTo(g, g.emit("mul", [y, c], {}), [], []);
  const { byValue } = differentiate(g, loss, xs);
  for (const n of g.nodes) exercised.add(n.prim);
  const params = new Map(shapes.map((s, i) => [`x${i}`, Float64Array.from({ length: numel(s) }, (_, k) => (gens[i] ?? normal)(k))]));
  const feeds = { inputs: new Map([["c", Float64Array.from({ length: numel(g.shapeOf(y)) }, () => normal(0))]]), params };
  const grads = evaluate(g, feeds, xs.map((x) => byValue.get(x)!));
  const h = 1e-5;
  let worst = 0;
  shapes.forEach((_, i) => {
    const x = params.get(`x${i}`)!;
    const ana = grads[i]!;
    const scale = 1e-3 * (1 + Math.max(...ana.map(Math.abs)));
    for (let k = 0; k < x.length; k++) {
      const keep = x[k]!;
      x[k] = keep + h;
      const up = evaluate(g, feeds, [loss])[0]![0]!;
      x[k] = keep - h;
      const down = evaluate(g, feeds, [loss])[0]![0]!;
      x[k] = keep;
      const fd = (up - down) / (2 * h);
      worst = Math.max(worst, Math.abs(fd - ana[k]!) / Math.max(Math.abs(fd), Math.abs(ana[k]!), scale));
    }
  });
  return worst;
}

let worstOverall = 0;
function check(name: string, shapes: number[][], f: (g: Graph, xs: number[]) => number, gens?: Gen[]): void {
  test(`vjp ${name}`, () => {
    const err = vjpError(shapes, f, gens);
    worstOverall = Math.max(worstOverall, err);
    assert.ok(err < 1e-6, `${name}: relative error ${err}`);
  });
}

const un = (p: Prim) => (g: Graph, [x]: number[]) => g.emit(p as "neg", [x!], {});
const bin = (p: Prim) => (g: Graph, [a, b]: number[]) => g.emit(p as "add", [a!, b!], {});

for (const s of [[5], [2, 3, 4]]) {
  for (const p of ["neg", "exp", "sigmoid"] as const) check(`${p} ${s}`, [s], un(p));
  check(`log ${s}`, [s], un("log"), [positive]);
  check(`sqrt ${s}`, [s], un("sqrt"), [positive]);
  check(`relu ${s}`, [s], un("relu"), [awayFromZero]);
  for (const p of ["add", "sub", "mul"] as const) check(`${p} ${s}`, [s, s], bin(p));
  check(`div ${s}`, [s, s], bin("div"), [normal, awayFromZero]);
  // Operands 1 apart in a random direction: never tied.
  const apart: Gen = (i) => (i % 2 ? 1 : -1) * (0.5 + rand());
  check(`maximum ${s}`, [s, s], (g, [a, b]) => g.emit("maximum", [a!, g.emit("add", [a!, b!], {})], {}), [normal, apart]);
  check(`minimum ${s}`, [s, s], (g, [a, b]) => g.emit("minimum", [a!, g.emit("add", [a!, b!], {})], {}), [normal, apart]);
}
check("sigmoid saturated", [[4]], un("sigmoid"), [(i) => [-40, -12, 15, 38][i]!]);

// Broadcasting cases: by a missing axis, by a size-1 axis, from a scalar, then elementwise.
const bcases: [number[], number[], number[]][] = [
  [[3], [2, 3, 4], [1]],
  [[4], [2, 3, 4], [2]],
  [[2, 1], [2, 3], [0, 1]],
  [[], [2, 3], []],
  [[2, 4], [2, 3, 4], [0, 2]],
];
for (const [small, big, axes] of bcases) {
  check(`broadcast ${small}->${big}`, [small], (g, [x]) => g.emit("broadcast", [x!], { shape: big, axes }));
  check(`mul with broadcast ${small}->${big}`, [small, big], (g, [x, y]) => g.emit("mul", [g.emit("broadcast", [x!], { shape: big, axes }), y!], {}));
  for (const op of ["sum", "max", "min"] as const) {
    check(`reduce ${op} ${big}->${small}`, [big], (g, [x]) => g.emit("reduce", [x!], { op, shape: small, axes }));
  }
}

for (const transA of [false, true]) {
  for (const transB of [false, true]) {
    const a = transA ? [4, 3] : [3, 4];
    const b = transB ? [5, 4] : [4, 5];
    check(`matmul tA=${transA} tB=${transB}`, [a, b], (g, [x, y]) => g.emit("matmul", [x!, y!], { transA, transB }));
  }
}

// Convolutions: [x shape, weight shape, attrs].
const convs: [number[], number[], PrimAttrs["conv2d"]][] = [
  [[2, 3, 5, 5], [4, 3, 3, 3], { stride: 1, padding: 1, dilation: 1, groups: 1 }],
  [[1, 2, 7, 6], [3, 2, 3, 3], { stride: 2, padding: 1, dilation: 1, groups: 1 }],
  [[2, 4, 6, 6], [2, 2, 3, 3], { stride: 1, padding: 2, dilation: 2, groups: 2 }],
  [[1, 3, 9, 9], [2, 3, 7, 7], { stride: 2, padding: 3, dilation: 1, groups: 1 }],
  [[2, 4, 3, 3], [4, 4, 1, 1], { stride: 2, padding: 0, dilation: 1, groups: 1 }],
];
for (const [xs, ws, a] of convs) {
  const tag = `${xs}*${ws} ${JSON.stringify(a)}`;
  check(`conv2d ${tag}`, [xs, ws], (g, [x, w]) => g.emit("conv2d", [x!, w!], a));
  const probe = new Graph();
  const ys = probe.shapeOf(probe.emit("conv2d", [probe.param("x", xs), probe.param("w", ws)], a));
  check(`conv2d_input_grad ${tag}`, [ys, ws], (g, [y, w]) => g.emit("conv2d_input_grad", [y!, w!], { ...a, h: xs[2]!, w: xs[3]! }));
  check(`conv2d_weight_grad ${tag}`, [xs, ys], (g, [x, y]) => g.emit("conv2d_weight_grad", [x!, y!], { ...a, k: ws[2]! }));
}

// Windowed pooling: the gather and its transpose, and max/min/avg pooling built on them.
for (const [xs, k, stride, padding] of [[[2, 2, 5, 5], 3, 2, 1], [[1, 3, 4, 6], 2, 2, 0], [[1, 1, 6, 5], 3, 1, 1]] as [number[], number, number, number][]) {
  const w = { k, stride, padding };
  const tag = `${xs} k=${k} s=${stride} p=${padding}`;
  check(`windows ${tag}`, [xs], (g, [x]) => g.emit("windows", [x!], { ...w, pad: 0 }));
  const probe = new Graph();
  const ws = probe.shapeOf(probe.emit("windows", [probe.param("x", xs)], { ...w, pad: 0 }));
  check(`windows_transpose ${tag}`, [ws], (g, [y]) => g.emit("windows_transpose", [y!], { ...w, h: xs[2]!, w: xs[3]! }));
  for (const [op, pad] of [["max", -Infinity], ["min", Infinity], ["sum", 0]] as const) {
    check(`${op} pool ${tag}`, [xs], (g, [x]) => g.emit("reduce", [g.emit("windows", [x!], { ...w, pad })], { op, shape: ws.slice(0, 4), axes: [0, 1, 2, 3] }));
  }
}

check("concat axis 1", [[2, 3], [2, 1], [2, 4]], (g, xs) => g.emit("concat", xs, { axis: 1 }));
check("concat axis 0", [[1, 3, 2], [2, 3, 2]], (g, xs) => g.emit("concat", xs, { axis: 0 }));
check("slice middle", [[2, 5, 3]], (g, [x]) => g.emit("slice", [x!], { axis: 1, start: 1, end: 3 }));
check("slice first", [[3, 4]], (g, [x]) => g.emit("slice", [x!], { axis: 0, start: 0, end: 1 }));
check("reshape", [[2, 3, 4]], (g, [x]) => g.emit("reshape", [x!], { shape: [6, 4] }));
check("dropout", [[3, 50]], (g, [x]) => g.emit("dropout", [x!, constant(g, 7, [2])], { p: 0.3, stream: 11 }));
check("softmax cross-entropy", [[3, 5]], (g, [x]) => {
  const labels = g.emit("const", [], { value: 2, shape: [3] });
  return softmaxCrossEntropy(g, x!, labels, 5);
});

function run(build: (g: Graph) => number, feeds: Record<string, number[]> = {}): number[] {
  const g = new Graph();
  const y = build(g);
  for (const n of g.nodes) exercised.add(n.prim);
  const inputs = new Map(Object.entries(feeds).map(([k, v]) => [k, Float64Array.from(v)]));
  return [...evaluate(g, { inputs, params: new Map() }, [y])[0]!];
}

test("ties: max/min reductions send the gradient to the first extremum (row-major)", () => {
  const x = [1, 3, 3, 0, 2, 2, 2, 5, -1, -1, 4, -1];
  const mask = (op: "max" | "min") => run((g) => g.emit("argmask", [g.input("x", [3, 4])], { op, shape: [3], axes: [0] }), { x });
  assert.equal(mask("max"), [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0]);
  assert.equal(mask("min"), [0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0]);
});

test("ties: max pooling's gradient goes to the first maximum in row-major window order", () => {
  const g = new Graph();
  const x = g.param("x", [1, 1, 3, 3]);
  const w = g.emit("windows", [x], { k: 2, stride: 1, padding: 0, pad: -Infinity });
  const y = g.emit("reduce", [w], { op: "max", shape: [1, 1, 2, 2], axes: [0, 1, 2, 3] });
  const loss = sumTo(g, y, [], []);
  const dx = differentiate(g, loss, [x]).byValue.get(x)!;
  // Rows [5 5 1], [5 5 1], [0 0 0]: every window's first maximum is its top-left element.
  const params = new Map([["x", Float64Array.of(5, 5, 1, 5, 5, 1, 0, 0, 0)]]);
  const [grad] = evaluate(g, { inputs: new Map(), params }, [dx]);
  assert.equal([...grad!], [1, 1, 0, 1, 1, 0, 0, 0, 0]);
});

test("comparisons, one_hot and the softmax cross-entropy value", () => {
  const a = [1, 2, 3];
  const b = [2, 2, 2];
  assert.equal(run((g) => g.emit("gt", [g.input("a", [3]), g.input("b", [3])], {}), { a, b }), [0, 0, 1]);
  assert.equal(run((g) => g.emit("ge", [g.input("a", [3]), g.input("b", [3])], {}), { a, b }), [0, 1, 1]);
  assert.equal(run((g) => g.emit("one_hot", [g.input("l", [2])], { classes: 3 }), { l: [2, 0] }), [0, 0, 1, 1, 0, 0]);
  // Large logits must not overflow: CE of [1000, 0] with label 1 is 1000.
  const ce = run((g) => softmaxCrossEntropy(g, g.input("z", [2, 2]), g.input("l", [2]), 2), { z: [1000, 0, 0, 0], l: [1, 0] });
  assert.ok(Math.abs(ce[0]! - (1000 + Math.log(2)) / 2) < 1e-9, String(ce));
});

test("dropout: mask depends only on the counter, keeps about 1-p, scales by 1/(1-p)", () => {
  const x = new Array(4000).fill(1);
  const drop = (seed: number, step: number, stream: number) =>
    run((g) => g.emit("dropout", [g.input("x", [4000]), g.input("rng", [2])], { p: 0.25, stream }), { x, rng: [seed, step] });
  const a = drop(1, 5, 9);
  assert.equal(a, drop(1, 5, 9));
  const kept = a.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 4 / 3) < 1e-12));
  assert.ok(Math.abs(kept.length / 4000 - 0.75) < 0.03, String(kept.length));
  for (const other of [drop(2, 5, 9), drop(1, 6, 9), drop(1, 5, 10)]) assert.not.equal(other, a);
});

test("every primitive is exercised", () => {
  const missing = prims.filter((p) => !exercised.has(p));
  assert.equal(missing, []);
  if (process.env.IR_VERBOSE) console.log(`largest VJP relative error: ${worstOverall}`);
});

test.run();
