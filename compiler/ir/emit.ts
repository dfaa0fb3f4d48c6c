// Small emitting helpers used by the VJP rules and by lowering, so that they read like the math.
// Type-only imports: the rule files can use these without an import cycle through the registry.
import type { Emitter } from "./primitives.ts";

/** Small emitting helpers used by the VJP rules and lowering: they read like the math. */
export function constant(e: Emitter, value: number, shape: number[]): number {
  return e.emit("const", [], { value, shape: [...shape] });
}
export function add(e: Emitter, a: number, b: number): number {
  return e.emit("add", [a, b], {});
}
export function sub(e: Emitter, a: number, b: number): number {
  return e.emit("sub", [a, b], {});
}
export function mul(e: Emitter, a: number, b: number): number {
  return e.emit("mul", [a, b], {});
}
export function div(e: Emitter, a: number, b: number): number {
  return e.emit("div", [a, b], {});
}
export function neg(e: Emitter, a: number): number {
  return e.emit("neg", [a], {});
}
/** Broadcasts `x` to `shape` along `axes` (see PrimAttrs); a no-op when the shapes agree. */
export function broadcastTo(e: Emitter, x: number, shape: number[], axes: number[]): number {
  const xs = e.shapeOf(x);
  if (xs.length === shape.length && xs.every((s, i) => s === shape[i] && axes[i] === i)) return x;
  return e.emit("broadcast", [x], { shape: [...shape], axes: [...axes] });
}
/** Sums `x` down to `shape` along `axes`; the transpose of broadcastTo. */
export function sumTo(e: Emitter, x: number, shape: number[], axes: number[]): number {
  const xs = e.shapeOf(x);
  if (xs.length === shape.length && xs.every((s, i) => s === shape[i] && axes[i] === i)) return x;
  return e.emit("reduce", [x], { op: "sum", shape: [...shape], axes: [...axes] });
}
/** Multiplies by a scalar constant, broadcast to x's shape. */
export function scale(e: Emitter, x: number, k: number): number {
  return mul(e, x, constant(e, k, e.shapeOf(x)));
}
/** Concatenation along an axis; a single part is returned as is. */
export function concatOf(e: Emitter, parts: number[], axis: number): number {
  return parts.length === 1 ? parts[0]! : e.emit("concat", parts, { axis });
}
