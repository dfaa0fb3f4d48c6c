// The IR's vocabulary: a small set of tensor primitives, their attributes, and the shape of a
// rule in the op registry. Everything here is a type or a pure helper without imports, so the
// rule files and the graph can import it without import cycles.
//
// Values are float64 tensors with concrete shapes (number[]): the batch size is fixed when a
// checked Program is lowered. Integer data (class labels, the RNG seed and step) travel as
// float64 holding exact integers.

/** Result of a `windows` gather at a padded position: what a pooling reduction should ignore. */
export type PadValue = number;

export interface ConvAttrs {
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
}

export interface WindowAttrs {
  k: number;
  stride: number;
  padding: number;
}

type None = Record<string, never>;

/**
 * Every primitive with its attributes. `broadcast`, `reduce` and `argmask` share one way to line
 * a small tensor up with a big one: `axes[i]` is the axis of the big tensor that axis i of the
 * small tensor maps to (strictly increasing); a small axis of size 1 against a bigger big axis
 * is broadcast (resp. reduced but kept); big axes that no small axis maps to are broadcast
 * (resp. reduced away). `shape` is the shape of the other side (the result of a broadcast, the
 * result of a reduction).
 */
export interface PrimAttrs {
  // Leaves.
  input: { name: string; shape: number[] };
  param: { name: string; shape: number[] };
  const: { value: number; shape: number[] };
  // Elementwise, operands of equal shape (broadcasting is explicit).
  neg: None;
  exp: None;
  log: None;
  sqrt: None;
  relu: None;
  sigmoid: None;
  add: None;
  sub: None;
  mul: None;
  div: None;
  maximum: None;
  minimum: None;
  /** 1 where a > b, else 0; no gradient. */
  gt: None;
  /** 1 where a >= b, else 0; no gradient. */
  ge: None;
  // Broadcasting and reductions.
  broadcast: { shape: number[]; axes: number[] };
  reduce: { op: "sum" | "max" | "min"; shape: number[]; axes: number[] };
  /** One-hot of the FIRST maximal (minimal) element of each reduction group, in row-major order
   * of the reduced axes; same shape as the input; no gradient. This fixes where the gradient of a
   * max/min reduction goes when there are ties. */
  argmask: { op: "max" | "min"; shape: number[]; axes: number[] };
  // Routines.
  /** [M, K] x [K, N] with either operand optionally transposed. */
  matmul: { transA: boolean; transB: boolean };
  /** x [N, C, H, W], w [O, C/groups, k, k] -> [N, O, Ho, Wo]; no bias (lowering adds it). */
  conv2d: ConvAttrs;
  /** (g [N, O, Ho, Wo], w) -> dx [N, C, h, w]: the transposed convolution. */
  conv2d_input_grad: ConvAttrs & { h: number; w: number };
  /** (x, g [N, O, Ho, Wo]) -> dw [O, C/groups, k, k]. */
  conv2d_weight_grad: ConvAttrs & { k: number };
  /** x [N, C, H, W] -> [N, C, Ho, Wo, k*k], window elements in row-major (kh, kw) order;
   * positions in the padding read `pad` (-inf for max pooling, +inf for min, 0 for average). */
  windows: WindowAttrs & { pad: PadValue };
  /** The transpose of `windows`: scatter-add [N, C, Ho, Wo, k*k] back to [N, C, h, w]. */
  windows_transpose: WindowAttrs & { h: number; w: number };
  // Movement.
  concat: { axis: number };
  slice: { axis: number; start: number; end: number };
  reshape: { shape: number[] };
  // Randomness and labels.
  /** (x, rng [2] = [seed, step]) -> x * mask / (1 - p). The mask is a pure function of
   * (seed, step, stream, element index), so backward recomputes it instead of storing it. */
  dropout: { p: number; stream: number };
  /** labels [N] (integers as float64) -> [N, classes]; no gradient. */
  one_hot: { classes: number };
}

export type Prim = keyof PrimAttrs;

export interface IRNode<P extends Prim = Prim> {
  id: number;
  prim: P;
  inputs: number[];
  attrs: PrimAttrs[P];
  shape: number[];
  /** The checked Program node this value was lowered from, if any (for dumps and reports). */
  origin?: number;
}

/** What the interpreter provides to leaf rules. */
export interface EvalContext {
  feed(node: IRNode<"input" | "param">): Float64Array;
}

/** Emits IR; implemented by Graph (graph.ts). Rules see only this, so they cannot evaluate. */
export interface Emitter {
  emit<P extends Prim>(prim: P, inputs: number[], attrs: PrimAttrs[P]): number;
  shapeOf(id: number): number[];
  /** A value's node (rules may look at how their cotangent was built). */
  node(id: number): IRNode;
}

/**
 * One registry entry. `vjp` receives the node, the id of its cotangent (same shape as the node)
 * and which inputs need a gradient; it returns, per input, the id of the gradient value it
 * emitted or null (no gradient: zero, or not needed). `null` instead of a function marks a
 * primitive without gradient (leaves, masks, comparisons).
 */
export interface OpRule<P extends Prim> {
  /** Number of inputs, or "variadic" (concat). */
  arity: number | "variadic";
  shape(inputs: number[][], attrs: PrimAttrs[P]): number[];
  eval(inputs: Float64Array[], attrs: PrimAttrs[P], inShapes: number[][], outShape: number[], node: IRNode<P>, ctx: EvalContext): Float64Array;
  vjp: ((e: Emitter, node: IRNode<P>, g: number, needs: boolean[]) => (number | null)[]) | null;
}

export type Registry = { [P in Prim]: OpRule<P> };

// ---- Tensor helpers shared by rules, interpreter and tests ----

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

export function fmtShape(s: readonly number[]): string {
  return `[${s.join(",")}]`;
}

export class IRError extends Error {}

export function irAssert(cond: boolean, message: () => string): asserts cond {
  if (!cond) throw new IRError(message());
}

/** Checks an alignment of `small` against `big` (see PrimAttrs). */
export function checkAlign(small: readonly number[], big: readonly number[], axes: readonly number[], what: string): void {
  irAssert(axes.length === small.length, () => `${what}: ${axes.length} axes for a rank-${small.length} operand`);
  axes.forEach((a, i) => {
    irAssert(Number.isInteger(a) && a >= 0 && a < big.length && (i === 0 || a > axes[i - 1]!), () => `${what}: axes ${fmtShape(axes)} must increase within rank ${big.length}`);
    irAssert(small[i] === 1 || small[i] === big[a], () => `${what}: axis ${i} of ${fmtShape(small)} does not fit axis ${a} of ${fmtShape(big)}`);
  });
}

/** For every flat index of `big`, the flat index of `small` it is aligned with. */
export function alignIndex(small: readonly number[], big: readonly number[], axes: readonly number[]): Int32Array {
  const ss = strides(small);
  const step = new Array<number>(big.length).fill(0);
  axes.forEach((a, i) => {
    if (small[i] !== 1) step[a] = ss[i]!;
  });
  const out = new Int32Array(numel(big));
  const idx = new Array<number>(big.length).fill(0);
  let off = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = off;
    // Odometer increment over big's axes, keeping the small offset in step.
    for (let d = big.length - 1; d >= 0; d--) {
      idx[d]!++;
      off += step[d]!;
      if (idx[d]! < big[d]!) break;
      off -= step[d]! * big[d]!;
      idx[d] = 0;
    }
  }
  return out;
}
