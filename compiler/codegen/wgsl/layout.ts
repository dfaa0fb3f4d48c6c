// Broadcasting, reductions and movement. Reductions are deterministic (no float atomics): one
// invocation per output element loops over its group in row-major order, or, when the groups
// are large and few (a loss, batch statistics), one workgroup per output element reduces with
// a fixed tree in workgroup memory. argmask finds the FIRST extremum of each group, as the
// reference does, so gradients of max/min go to the same element on both sides.
import type { PrimAttrs } from "../../ir/primitives.ts";
import { numel, strides } from "../../ir/primitives.ts";
import { type KernelBody, type KernelEmitter, coord, f32, linear, u32, vec4Fits } from "./kernel.ts";

type Layout = "broadcast" | "reduce" | "argmask" | "concat" | "slice" | "reshape";

/** Per axis of `big`, the stride in `small` of the small axis aligned with it, or 0 where the
 * axis is broadcast / reduced (no small axis, or a small axis of size 1). */
export function smallStep(small: readonly number[], big: readonly number[], axes: readonly number[]): number[] {
  const ss = strides(small);
  const step = new Array<number>(big.length).fill(0);
  axes.forEach((a, i) => {
    if (small[i] !== 1) step[a] = ss[i]!;
  });
  return step;
}

const broadcast: KernelEmitter<"broadcast"> = ({ attrs, inShapes, outShape }) => {
  const step = smallStep(inShapes[0]!, outShape, attrs.axes);
  const src = linear(outShape.map((_, a) => [coord("i", outShape, a), step[a]!]));
  return { invocations: numel(outShape), body: `y[i] = x0[${src}];` };
};

/** A reduction group: where it starts in x for output index `i`, and the reduced axes
 * (size, stride in x), outermost first, so loops visit the group in row-major order. */
export interface Groups {
  base: string;
  reduced: [number, number][];
  count: number;
}

export function groups(a: PrimAttrs["reduce"] | PrimAttrs["argmask"], xs: readonly number[], index = "i"): Groups {
  const xst = strides(xs);
  const step = smallStep(a.shape, xs, a.axes);
  const base = linear(a.shape.map((_, k) => [coord(index, a.shape, k), a.shape[k] === 1 ? 0 : xst[a.axes[k]!]!]));
  const reduced: [number, number][] = [];
  xs.forEach((size, ax) => {
    if (step[ax] === 0 && size > 1) reduced.push([size, xst[ax]!]);
  });
  return { base, reduced, count: numel(reduced.map(([s]) => s)) };
}

/** Nested loops over a group, in a block of their own; `inner` sees the element's offset in x
 * as `off`. */
export function loops(g: Groups, inner: string): string {
  const lines: string[] = [`let o0 = ${g.base};`];
  g.reduced.forEach(([size, stride], k) => {
    lines.push(`${"  ".repeat(k)}for (var r${k} = 0u; r${k} < ${u32(size)}; r${k}++) {`);
    lines.push(`${"  ".repeat(k + 1)}let o${k + 1} = o${k} + r${k} * ${u32(stride)};`);
  });
  const depth = g.reduced.length;
  lines.push(`${"  ".repeat(depth)}let off = o${depth};`);
  lines.push(...inner.split("\n").map((l) => `${"  ".repeat(depth)}${l}`));
  for (let k = depth - 1; k >= 0; k--) lines.push(`${"  ".repeat(k)}}`);
  return `{\n${lines.map((l) => `  ${l}`).join("\n")}\n}`;
}

export const INIT = { sum: "0.0", max: f32(-Infinity), min: f32(Infinity) };
export const combine = (op: "sum" | "max" | "min", a: string, b: string) => (op === "sum" ? `${a} + ${b}` : `${op}(${a}, ${b})`);

/** Groups at least this large, and at most this many, are reduced by a workgroup each. */
export const TREE_MIN_GROUP = 1024;
export const TREE_MAX_OUTPUTS = 1024;
/** Lanes of such a workgroup. Each lane strides through the group, then lane 0 combines the
 * lanes' partial results in order after one barrier. Few lanes with long strides suit lavapipe,
 * where every invocation repeats the group's set-up (its hoisted loads, a modulation's σ) and
 * each barrier is a switch between coroutines: on the modulation's backward (1024 groups of
 * 1024) 16 lanes ran in 2.6 ms, 64 lanes with a halving tree in 5.0 ms. */
export const TREE_LANES = 16;

function treeReduce(op: "sum" | "max" | "min", g: Groups, outputs: number): KernelBody {
  // Offset of the r-th element of the group: r decomposed row-major over the reduced axes.
  const sizes = g.reduced.map(([s]) => s);
  const off = linear(g.reduced.map(([, stride], k) => [coord("r", sizes, k), stride]));
  const body = [
    `let base = ${g.base};`,
    `var acc = ${INIT[op]};`,
    `for (var r = lane; r < ${u32(g.count)}; r += ${u32(TREE_LANES)}) {`,
    `  acc = ${combine(op, "acc", `x0[base + ${off}]`)};`,
    `}`,
    `partial[lane] = acc;`,
    `workgroupBarrier();`,
    `if (lane == 0u) {`,
    `  var total = partial[0];`,
    `  for (var s = 1u; s < ${u32(TREE_LANES)}; s++) { total = ${combine(op, "total", "partial[s]")}; }`,
    `  y[i] = total;`,
    `}`,
  ].join("\n");
  return { invocations: outputs, mode: "workgroup", workgroupSize: TREE_LANES, decls: `var<workgroup> partial: array<f32, ${TREE_LANES}>;`, body };
}

const reduce: KernelEmitter<"reduce"> = ({ attrs, inShapes, outShape }) => {
  const g = groups(attrs, inShapes[0]!);
  const outputs = numel(outShape);
  if (g.count >= TREE_MIN_GROUP && outputs <= TREE_MAX_OUTPUTS) return treeReduce(attrs.op, g, outputs);
  const body = [`var acc = ${INIT[attrs.op]};`, loops(g, `acc = ${combine(attrs.op, "acc", "x0[off]")};`), `y[i] = acc;`].join("\n");
  return { invocations: outputs, body };
};

const argmask: KernelEmitter<"argmask"> = ({ attrs, inShapes }) => {
  const g = groups(attrs, inShapes[0]!);
  const better = attrs.op === "max" ? ">" : "<";
  // Pass 1 finds the first extremum (strict comparison keeps the earliest of equals); pass 2
  // writes the whole group, so every output element is written by exactly one invocation.
  const body = [
    `var best = ${g.base};`,
    `var bv = x0[best];`,
    loops(g, `let v = x0[off];\nif (v ${better} bv) { bv = v; best = off; }`),
    loops(g, `y[off] = select(0.0, 1.0, off == best);`),
  ].join("\n");
  return { invocations: numel(attrs.shape), body };
};

/** Splits a shape around `axis` into (outer, size, inner) extents. */
function around(shape: readonly number[], axis: number): [number, number, number] {
  return [numel(shape.slice(0, axis)), shape[axis]!, numel(shape.slice(axis + 1))];
}

const concat: KernelEmitter<"concat"> = ({ attrs, inShapes, outShape }) => {
  const [, size, inner] = around(outShape, attrs.axis);
  const rows = inShapes.map((s) => s[attrs.axis]! * inner);
  // Each output row (one outer index) is the parts' rows side by side; vec4 when every part's
  // row is a whole number of vec4s.
  const unit = vec4Fits(...rows) ? 4 : 1;
  const row = (size * inner) / unit;
  const lines = [`let o = i / ${u32(row)};`, `let r = i % ${u32(row)};`];
  let start = 0;
  rows.forEach((n, k) => {
    const len = n / unit;
    const read = `y[i] = x${k}[o * ${u32(len)} + r - ${u32(start)}];`;
    if (k === 0) lines.push(rows.length === 1 ? read : `if (r < ${u32(len)}) {\n  ${read}\n}`);
    else lines.push(k === rows.length - 1 ? `else {\n  ${read}\n}` : `else if (r < ${u32(start + len)}) {\n  ${read}\n}`);
    start += len;
  });
  const T = unit === 4 ? "vec4<f32>" : "f32";
  return { invocations: numel(outShape) / unit, types: [...inShapes.map(() => T), T] as ("f32" | "vec4<f32>")[], body: lines.join("\n").replace(/}\nelse/g, "} else") };
};

const slice: KernelEmitter<"slice"> = ({ attrs, inShapes, outShape }) => {
  const [, size, inner] = around(inShapes[0]!, attrs.axis);
  const n = (attrs.end - attrs.start) * inner;
  const unit = vec4Fits(n, size * inner, attrs.start * inner) ? 4 : 1;
  const T = unit === 4 ? "vec4<f32>" : "f32";
  const body = `let o = i / ${u32(n / unit)};\nlet r = i % ${u32(n / unit)};\ny[i] = x0[o * ${u32((size * inner) / unit)} + ${u32((attrs.start * inner) / unit)} + r];`;
  return { invocations: numel(outShape) / unit, types: [T, T], body };
};

/** A copy: row-major data is already in the new shape's order. (A memory planner can alias
 * the buffers instead; the kernel keeps the one-value-one-buffer plan simple.) */
const reshape: KernelEmitter<"reshape"> = ({ outShape }) => {
  const n = numel(outShape);
  const unit = vec4Fits(n) ? 4 : 1;
  const T = unit === 4 ? "vec4<f32>" : "f32";
  return { invocations: n / unit, types: [T, T], body: "y[i] = x0[i];" };
};

export const layoutEmitters: { [P in Layout]: KernelEmitter<P> } = { broadcast, reduce, argmask, concat, slice, reshape };
