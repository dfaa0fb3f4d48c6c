// Broadcasting, reductions and movement: broadcast/reduce are the explicit transpose pair that
// elementwise broadcasting lowers to; concat/slice/reshape move data; one_hot and dropout are the
// two primitives that read integers (labels, and the RNG's seed and step).
import { broadcastTo, concatOf, constant, mul } from "../emit.ts";
import { type Emitter, type OpRule, alignIndex, checkAlign, fmtShape, irAssert, numel, sameShape } from "../primitives.ts";
import { pcgHash } from "../../../runtime/init.ts";

type Layout = "broadcast" | "reduce" | "argmask" | "concat" | "slice" | "reshape" | "one_hot" | "dropout";

/** Splits a shape around `axis` into (outer, size, inner) extents, for concat and slice loops. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

// The PCG hash lives in runtime/init.ts (initialisation shares it); dropout's rule uses it here.
export { pcgHash };

/** The dropout draw for one element: a uniform in [0, 1) from the counter (seed, step, stream,
 * index), hashed as a chain so each component changes every bit of the result. */
export function dropoutUniform(seed: number, step: number, stream: number, index: number): number {
  let h = pcgHash(seed >>> 0);
  h = pcgHash((h + (step >>> 0)) >>> 0);
  h = pcgHash((h + (stream >>> 0)) >>> 0);
  h = pcgHash((h + (index >>> 0)) >>> 0);
  return h / 4294967296;
}

function reduceShape([x]: number[][], a: { shape: number[]; axes: number[] }): number[] {
  checkAlign(a.shape, x!, a.axes, "reduce");
  return [...a.shape];
}

/** The leading axes up to the last kept one, when a broadcast along `axes` also spreads over
 * axes both before it and after it (a [C] spread over [N, C, H, W]: [N, C]); else undefined. */
function planeHead(big: readonly number[], axes: readonly number[]): number[] | undefined {
  const last = axes.length > 0 ? axes[axes.length - 1]! : -1;
  if (last < 0) return undefined;
  const kept = new Set(axes);
  const before = big.slice(0, last).some((_, i) => !kept.has(i) && big[i]! > 1);
  const after = numel(big.slice(last + 1)) > 1;
  return before && after ? big.slice(0, last + 1) : undefined;
}

/** Whether the product chain that built `g` multiplies in a value that is constant over each
 * plane (broadcast from `head` over the trailing axes, or arithmetic of such values: σ of a
 * broadcast gate); looks a few operations deep. */
function hasPlaneFactor(e: Emitter, g: number, head: readonly number[], depth = 4): boolean {
  const n = e.node(g);
  if (n.prim === "broadcast" || UNARY_ARITH.has(n.prim) || (BINARY_ARITH.has(n.prim) && n.prim !== "mul")) return planeConstant(e, g, head, depth);
  if (depth === 0 || n.prim !== "mul") return false;
  return n.inputs.some((i) => planeConstant(e, i, head, depth - 1) || hasPlaneFactor(e, i, head, depth - 1));
}

const UNARY_ARITH = new Set(["neg", "exp", "log", "sqrt", "relu", "sigmoid"]);
const BINARY_ARITH = new Set(["add", "sub", "mul", "div", "maximum", "minimum"]);

/** A value the same at every element of each plane, not a constant: a broadcast from `head`
 * over the trailing axes, or arithmetic of such values and constants. */
function planeConstant(e: Emitter, v: number, head: readonly number[], depth: number): boolean {
  const n = e.node(v);
  if (n.prim === "broadcast") {
    const a = n.attrs as { axes: number[] };
    const s = e.shapeOf(n.inputs[0]!);
    return s.length === head.length && s.every((d, i) => d === head[i] && a.axes[i] === i);
  }
  if (depth === 0) return false;
  if (UNARY_ARITH.has(n.prim)) return planeConstant(e, n.inputs[0]!, head, depth - 1);
  if (BINARY_ARITH.has(n.prim)) {
    const [x, y] = n.inputs.map((i) => (e.node(i).prim === "const" ? "const" : planeConstant(e, i, head, depth - 1)));
    return (x === true || y === true) && x !== false && y !== false;
  }
  return false;
}

export const layoutRules: { [P in Layout]: OpRule<P> } = {
  broadcast: {
    arity: 1,
    shape([x], a) {
      checkAlign(x!, a.shape, a.axes, "broadcast");
      return [...a.shape];
    },
    eval([x], a, [xs], out) {
      const map = alignIndex(xs!, out, a.axes);
      const y = new Float64Array(map.length);
      for (let i = 0; i < y.length; i++) y[i] = x![map[i]!]!;
      return y;
    },
    // The transpose of a broadcast is the sum over what was broadcast. A per-channel [C] spread
    // over [N, C, H, W] whose cotangent carries a per-(n, c) factor (the modulation's ωc: the
    // cotangent is dy * x * σ(z)[n, c]) is summed in two steps: over each (n, c)'s contiguous
    // plane first, then over n. The first step has the input shape and output space of the
    // per-plane sums beside it in backward (the gate's gradient Σ_hw dy ωc x), so fusion takes
    // both in one pass over the big tensors, with the factor loaded once per plane. Without such
    // a factor there is no such neighbour, and one sum is one kernel.
    vjp: (e, node, g) => {
      const xs = e.shapeOf(node.inputs[0]!);
      const axes = node.attrs.axes;
      const head = planeHead(node.shape, axes);
      if (head && hasPlaneFactor(e, g, head)) {
        const planes = e.emit("reduce", [g], { op: "sum", shape: head, axes: head.map((_, i) => i) });
        return [e.emit("reduce", [planes], { op: "sum", shape: [...xs], axes: [...axes] })];
      }
      return [e.emit("reduce", [g], { op: "sum", shape: [...xs], axes: [...axes] })];
    },
  },
  reduce: {
    arity: 1,
    shape: reduceShape,
    eval([x], a, [xs], out) {
      const map = alignIndex(out, xs!, a.axes);
      const init = a.op === "sum" ? 0 : a.op === "max" ? -Infinity : Infinity;
      const y = new Float64Array(numel(out)).fill(init);
      for (let i = 0; i < map.length; i++) {
        const j = map[i]!;
        const v = x![i]!;
        if (a.op === "sum") y[j]! += v;
        else if (a.op === "max" ? v > y[j]! : v < y[j]!) y[j] = v;
      }
      return y;
    },
    vjp: (e, node, g) => {
      const x = node.inputs[0]!;
      const xs = e.shapeOf(x);
      const spread = broadcastTo(e, g, xs, node.attrs.axes);
      if (node.attrs.op === "sum") return [spread];
      // max/min: the gradient goes to the first extremal element of each group (argmask).
      const mask = e.emit("argmask", [x], { op: node.attrs.op, shape: [...node.attrs.shape], axes: [...node.attrs.axes] });
      return [mul(e, spread, mask)];
    },
  },
  argmask: {
    arity: 1,
    shape([x], a) {
      checkAlign(a.shape, x!, a.axes, "argmask");
      return [...x!];
    },
    eval([x], a, [xs]) {
      const map = alignIndex(a.shape, xs!, a.axes);
      const best = new Int32Array(numel(a.shape)).fill(-1);
      // Row-major order over the input visits each group's elements in row-major order of the
      // reduced axes; a strict comparison keeps the first of equal extrema.
      for (let i = 0; i < map.length; i++) {
        const j = map[i]!;
        const b = best[j]!;
        if (b < 0 || (a.op === "max" ? x![i]! > x![b]! : x![i]! < x![b]!)) best[j] = i;
      }
      const y = new Float64Array(x!.length);
      for (const b of best) y[b] = 1;
      return y;
    },
    vjp: null,
  },
  concat: {
    arity: "variadic",
    shape(xs, a) {
      irAssert(xs.length >= 1, () => "concat of nothing");
      const first = xs[0]!;
      irAssert(Number.isInteger(a.axis) && a.axis >= 0 && a.axis < first.length, () => `axis ${a.axis} outside rank ${first.length}`);
      let total = 0;
      for (const s of xs) {
        irAssert(s.length === first.length && s.every((d, i) => i === a.axis || d === first[i]), () => `cannot concat ${fmtShape(s)} with ${fmtShape(first)} on axis ${a.axis}`);
        total += s[a.axis]!;
      }
      return first.map((d, i) => (i === a.axis ? total : d));
    },
    eval(xs, a, shapes, out) {
      const y = new Float64Array(numel(out));
      const [outer, size, inner] = around(out, a.axis);
      let offset = 0;
      xs.forEach((x, k) => {
        const n = shapes[k]![a.axis]! * inner;
        for (let o = 0; o < outer; o++) y.set(x.subarray(o * n, (o + 1) * n), o * size * inner + offset);
        offset += n;
      });
      return y;
    },
    vjp: (e, node, g, needs) => {
      let start = 0;
      return node.inputs.map((x, k) => {
        const size = e.shapeOf(x)[node.attrs.axis]!;
        start += size;
        return needs[k] ? e.emit("slice", [g], { axis: node.attrs.axis, start: start - size, end: start }) : null;
      });
    },
  },
  slice: {
    arity: 1,
    shape([x], a) {
      irAssert(a.axis >= 0 && a.axis < x!.length && a.start >= 0 && a.end > a.start && a.end <= x![a.axis]!, () => `slice ${a.start}:${a.end} of axis ${a.axis} of ${fmtShape(x!)}`);
      return x!.map((d, i) => (i === a.axis ? a.end - a.start : d));
    },
    eval([x], a, [xs], out) {
      const y = new Float64Array(numel(out));
      const [outer, size, inner] = around(xs!, a.axis);
      const n = (a.end - a.start) * inner;
      for (let o = 0; o < outer; o++) y.set(x!.subarray(o * size * inner + a.start * inner, o * size * inner + a.start * inner + n), o * n);
      return y;
    },
    // The transpose embeds the gradient between zeros.
    vjp: (e, node, g) => {
      const xs = e.shapeOf(node.inputs[0]!);
      const { axis, start, end } = node.attrs;
      const zeros = (n: number) => constant(e, 0, xs.map((d, i) => (i === axis ? n : d)));
      const parts = [...(start > 0 ? [zeros(start)] : []), g, ...(end < xs[axis]! ? [zeros(xs[axis]! - end)] : [])];
      return [concatOf(e, parts, axis)];
    },
  },
  reshape: {
    arity: 1,
    shape([x], a) {
      irAssert(numel(x!) === numel(a.shape), () => `cannot reshape ${fmtShape(x!)} to ${fmtShape(a.shape)}`);
      return [...a.shape];
    },
    eval: ([x]) => x!.slice(),
    vjp: (e, node, g) => [e.emit("reshape", [g], { shape: [...e.shapeOf(node.inputs[0]!)] })],
  },
  one_hot: {
    arity: 1,
    shape([x], a) {
      irAssert(x!.length === 1 && Number.isInteger(a.classes) && a.classes >= 1, () => `one_hot of ${fmtShape(x!)}`);
      return [x![0]!, a.classes];
    },
    eval([x], a) {
      const y = new Float64Array(x!.length * a.classes);
      x!.forEach((label, n) => {
        irAssert(Number.isInteger(label) && label >= 0 && label < a.classes, () => `label ${label} outside 0..${a.classes - 1}`);
        y[n * a.classes + label] = 1;
      });
      return y;
    },
    vjp: null,
  },
  dropout: {
    arity: 2,
    shape([x, rng], a) {
      irAssert(sameShape(rng!, [2]), () => `dropout's rng input must be [2] = [seed, step], found ${fmtShape(rng!)}`);
      irAssert(a.p >= 0 && a.p < 1, () => `dropout probability ${a.p}`);
      return [...x!];
    },
    eval([x, rng], a) {
      const keep = 1 / (1 - a.p);
      const y = new Float64Array(x!.length);
      for (let i = 0; i < y.length; i++) y[i] = dropoutUniform(rng![0]!, rng![1]!, a.stream, i) >= a.p ? x![i]! * keep : 0;
      return y;
    },
    // Linear in x with a mask that depends only on the counter: the VJP is the same dropout.
    vjp: (e, node, g) => [e.emit("dropout", [g, node.inputs[1]!], { ...node.attrs }), null],
  },
};

