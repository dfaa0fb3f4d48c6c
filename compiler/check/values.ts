// Compile-time values: what a .drifa expression evaluates to during elaboration. Numbers,
// strings and lists are ordinary values; a tensor is a node of the graph being built with its
// shape; blocks and built-ins are callable values (so `for pool in [gmp, gap, gminp]` works).
import type { BlockDecl, Span } from "../../grammar/ast.ts";
import { DiagnosticError } from "../../grammar/diagnostic.ts";
import type { Shape } from "./shape.ts";
import { formatShape } from "./shape.ts";
import { Size } from "./size.ts";

export interface TensorValue {
  k: "tensor";
  node: number;
  shape: Shape;
}

export interface BlockRef {
  decl: BlockDecl;
  file: string;
  /** Names visible inside the block's file (its own blocks and its imports). */
  scope: ReadonlyMap<string, BlockRef>;
}

export interface LayerInstance {
  /** conv, dense or batchnorm */
  layer: string;
  name: string;
  options: Map<string, Located>;
  /** Set at the first application: the parameter names and the input channel count. */
  bound: { inChannels: Size; params: number[] } | null;
  span: Span;
}

export type Value =
  | { k: "int"; v: Size }
  | { k: "float"; v: number }
  | { k: "bool"; v: boolean }
  | { k: "string"; v: string }
  | { k: "list"; items: Value[] }
  | { k: "tuple"; items: Value[] }
  | TensorValue
  | { k: "block"; ref: BlockRef }
  | { k: "builtin"; name: string }
  | { k: "layer"; layer: LayerInstance }
  | { k: "record"; kind: string; fields: Map<string, Value> };

export function int(n: number): Value {
  return { k: "int", v: Size.of(n) };
}

export function describeValue(v: Value): string {
  switch (v.k) {
    case "int":
      return v.v.isConstant ? "int" : `size ${v.v}`;
    case "tensor":
      return `tensor ${formatShape(v.shape)}`;
    case "list":
      return v.items.length ? `list of ${describeValue(v.items[0]!)}` : "empty list";
    case "tuple":
      return `${v.items.length} values`;
    case "block":
      return `block ${v.ref.decl.name.text}`;
    case "builtin":
      return `built-in ${v.name}`;
    case "layer":
      return `layer ${v.layer.name}`;
    case "record":
      return `${v.kind}(...)`;
    default:
      return v.k;
  }
}

export function showValue(v: Value): string {
  switch (v.k) {
    case "int":
      return v.v.toString();
    case "float":
      return String(v.v);
    case "bool":
      return String(v.v);
    case "string":
      return v.v;
    case "list":
      return `[${v.items.map(showValue).join(", ")}]`;
    default:
      return describeValue(v);
  }
}

export function fail(code: string, message: string, file: string, span: Span, help?: string): never {
  throw new DiagnosticError({ code, severity: "error", message, file, span, help });
}

/** A value with the place it came from, so that a type error can point at the argument. */
export interface Located {
  value: Value;
  span: Span;
}

export function expectInt(a: Located, file: string, what: string): number {
  const v = a.value;
  if (v.k === "int" && v.v.isConstant) return v.v.constant;
  if (v.k === "float" && Number.isInteger(v.v)) return v.v;
  if (v.k === "int") fail("E400", `${what} must be a known integer, but it is the symbolic size ${v.v}`, file, a.span);
  return fail("E302", `${what} must be an int, found ${describeValue(v)}`, file, a.span);
}

export function expectSize(a: Located, file: string, what: string): Size {
  const v = a.value;
  if (v.k === "int") return v.v;
  if (v.k === "float" && Number.isInteger(v.v)) return Size.of(v.v);
  return fail("E302", `${what} must be an int, found ${describeValue(v)}`, file, a.span);
}

export function expectNumber(a: Located, file: string, what: string): number {
  const v = a.value;
  if (v.k === "float") return v.v;
  if (v.k === "int" && v.v.isConstant) return v.v.constant;
  return fail("E302", `${what} must be a number, found ${describeValue(v)}`, file, a.span);
}

export function expectBool(a: Located, file: string, what: string): boolean {
  if (a.value.k === "bool") return a.value.v;
  return fail("E302", `${what} must be true or false, found ${describeValue(a.value)}`, file, a.span);
}

export function expectTensor(a: Located, file: string, what: string): TensorValue {
  if (a.value.k === "tensor") return a.value;
  return fail("E302", `${what} must be a tensor, found ${describeValue(a.value)}`, file, a.span);
}

export function expectList(a: Located, file: string, what: string): Value[] {
  if (a.value.k === "list") return a.value.items;
  return fail("E302", `${what} must be a list, found ${describeValue(a.value)}`, file, a.span);
}

export function expectString(a: Located, file: string, what: string): string {
  if (a.value.k === "string") return a.value.v;
  return fail("E302", `${what} must be a string, found ${describeValue(a.value)}`, file, a.span);
}
