// Leaves and elementwise primitives. Binary operands must have equal shapes: broadcasting is an
// explicit `broadcast` value (rules/layout.ts), whose transpose (a sum) is where the gradient of
// a broadcast operand gets reduced. That keeps every elementwise VJP a one-liner.
import { add, constant, div, mul, neg, sub } from "../emit.ts";
import { type Emitter, type EvalContext, type IRNode, type OpRule, fmtShape, irAssert, numel, sameShape } from "../primitives.ts";

type Leaf = "input" | "param" | "const";
type Unary = "neg" | "exp" | "log" | "sqrt" | "relu" | "sigmoid";
type Binary = "add" | "sub" | "mul" | "div" | "maximum" | "minimum" | "gt" | "ge";

function leafShape(_: number[][], attrs: { shape: number[] }): number[] {
  irAssert(attrs.shape.every((s) => Number.isInteger(s) && s >= 1), () => `bad leaf shape ${fmtShape(attrs.shape)}`);
  return [...attrs.shape];
}

function fed(node: IRNode<"input" | "param">, ctx: EvalContext): Float64Array {
  const v = ctx.feed(node);
  irAssert(v.length === numel(node.shape), () => `${node.prim} ${node.attrs.name}: fed ${v.length} values for ${fmtShape(node.shape)}`);
  return v;
}

export const leafRules: { [P in Leaf]: OpRule<P> } = {
  input: { arity: 0, shape: leafShape, eval: (_i, _a, _s, _o, node, ctx) => fed(node, ctx), vjp: null },
  param: { arity: 0, shape: leafShape, eval: (_i, _a, _s, _o, node, ctx) => fed(node, ctx), vjp: null },
  const: { arity: 0, shape: leafShape, eval: (_i, a, _s, out) => new Float64Array(numel(out)).fill(a.value), vjp: null },
};

type Vjp1<P extends Unary> = (e: Emitter, node: IRNode<P>, g: number, x: number) => number;

function unary<P extends Unary>(f: (x: number) => number, vjp: Vjp1<P>): OpRule<P> {
  return {
    arity: 1,
    shape: ([x]) => [...x!],
    eval([x]) {
      const out = new Float64Array(x!.length);
      for (let i = 0; i < out.length; i++) out[i] = f(x![i]!);
      return out;
    },
    vjp: (e, node, g) => [vjp(e, node, g, node.inputs[0]!)],
  };
}

/** The logistic function without overflow for large |x| (exp of a non-positive number only). */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const z = Math.exp(x);
  return z / (1 + z);
}

export const unaryRules: { [P in Unary]: OpRule<P> } = {
  neg: unary((x) => -x, (e, _n, g) => neg(e, g)),
  exp: unary(Math.exp, (e, n, g) => mul(e, g, n.id)),
  log: unary(Math.log, (e, _n, g, x) => div(e, g, x)),
  // d sqrt(x) = 1 / (2 sqrt(x)), written with the result so nothing is recomputed.
  sqrt: unary(Math.sqrt, (e, n, g) => div(e, g, add(e, n.id, n.id))),
  // The gradient at exactly 0 is taken as 0 (the subgradient PyTorch uses).
  relu: unary((x) => (x > 0 ? x : 0), (e, n, g, x) => mul(e, g, e.emit("gt", [x, constant(e, 0, n.shape)], {}))),
  // s' = s (1 - s), from the result.
  sigmoid: unary(sigmoid, (e, n, g) => mul(e, g, mul(e, n.id, sub(e, constant(e, 1, n.shape), n.id)))),
};

type Vjp2<P extends Binary> = ((e: Emitter, node: IRNode<P>, g: number, a: number, b: number, needs: boolean[]) => (number | null)[]) | null;

function binary<P extends Binary>(f: (a: number, b: number) => number, vjp: Vjp2<P>): OpRule<P> {
  return {
    arity: 2,
    shape([a, b]) {
      irAssert(sameShape(a!, b!), () => `operands ${fmtShape(a!)} and ${fmtShape(b!)} differ (broadcast explicitly)`);
      return [...a!];
    },
    eval([a, b]) {
      const out = new Float64Array(a!.length);
      for (let i = 0; i < out.length; i++) out[i] = f(a![i]!, b![i]!);
      return out;
    },
    vjp: vjp === null ? null : (e, node, g, needs) => vjp(e, node, g, node.inputs[0]!, node.inputs[1]!, needs),
  };
}

const ge = (e: Emitter, a: number, b: number) => e.emit("ge", [a, b], {});
const gt = (e: Emitter, a: number, b: number) => e.emit("gt", [a, b], {});

export const binaryRules: { [P in Binary]: OpRule<P> } = {
  add: binary((a, b) => a + b, (_e, _n, g) => [g, g]),
  sub: binary((a, b) => a - b, (e, _n, g, _a, _b, needs) => [g, needs[1] ? neg(e, g) : null]),
  mul: binary((a, b) => a * b, (e, _n, g, a, b, needs) => [needs[0] ? mul(e, g, b) : null, needs[1] ? mul(e, g, a) : null]),
  div: binary(
    (a, b) => a / b,
    (e, n, g, _a, b, needs) => {
      // d(a/b)/da = 1/b; d(a/b)/db = -(a/b)/b, written with the result.
      const gOverB = div(e, g, b);
      return [gOverB, needs[1] ? neg(e, mul(e, gOverB, n.id)) : null];
    },
  ),
  // Ties send the whole gradient to the first operand (a), so the two masks partition it.
  maximum: binary(Math.max, (e, _n, g, a, b, needs) => [needs[0] ? mul(e, g, ge(e, a, b)) : null, needs[1] ? mul(e, g, gt(e, b, a)) : null]),
  minimum: binary(Math.min, (e, _n, g, a, b, needs) => [needs[0] ? mul(e, g, ge(e, b, a)) : null, needs[1] ? mul(e, g, gt(e, a, b)) : null]),
  gt: binary((a, b) => (a > b ? 1 : 0), null),
  ge: binary((a, b) => (a >= b ? 1 : 0), null),
};

