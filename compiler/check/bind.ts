// Binding arguments to parameters (positional, named, defaults, variadic) and matching values
// against declared types. A tensor type both checks and binds: `x: [N, C, H, W]` binds the
// dimension variables N, C, H, W on first sight and checks them everywhere after, and it gives
// the tensor's axes the declared labels inside the block.
import type { DimExpr, Span, TypeExpr } from "../../grammar/ast.ts";
import { closest } from "../diagnostics/suggest.ts";
import type { ParamSpec } from "./builtins/context.ts";
import { type Axis, formatShape } from "./shape.ts";
import type { Size } from "./size.ts";
import { type Located, type TensorValue, type Value, describeValue, fail, int } from "./values.ts";

export interface ArgIn {
  name: { text: string; span: Span } | null;
  value: Located;
}

/** Binds call arguments to parameter specs. Absent optional parameters are left out of the
 * result so that callers can evaluate defaults lazily (block defaults are expressions). */
export function bindArguments(
  callee: string,
  params: { name: string; required: boolean }[],
  args: ArgIn[],
  variadic: boolean,
  file: string,
  span: Span,
): Map<string, Located> {
  const bound = new Map<string, Located>();
  const positional = args.filter((a) => a.name === null);
  const named = args.filter((a) => a.name !== null);
  const required = params.filter((p) => p.required).length;
  const countText = () => `${required === params.length ? params.length : `${required} to ${params.length}`} argument${params.length === 1 ? "" : "s"}`;
  if (variadic) {
    bound.set(params[0]!.name, { value: { k: "list", items: positional.map((a) => a.value.value) }, span: positional[0]?.value.span ?? span });
  } else {
    if (positional.length > params.length) {
      fail("E207", `wrong number of arguments: ${callee} takes ${countText()}, got ${positional.length}`, file, positional[params.length]!.value.span);
    }
    positional.forEach((a, i) => bound.set(params[i]!.name, a.value));
  }
  for (const a of named) {
    const name = a.name!;
    const p = params.find((q) => q.name === name.text);
    if (!p || (variadic && p === params[0])) {
      const suggestion = closest(name.text, params.map((q) => q.name));
      fail("E206", `${callee} has no parameter '${name.text}'`, file, name.span, suggestion ? `did you mean '${suggestion}'?` : `its parameters are: ${params.map((q) => q.name).join(", ") || "none"}`);
    }
    if (bound.has(p.name)) fail("E207", `argument '${p.name}' of ${callee} is given twice`, file, name.span);
    bound.set(p.name, a.value);
  }
  const missing = params.filter((p) => p.required && !bound.has(p.name) && !(variadic && p === params[0]));
  if (missing.length > 0) {
    const given = args.length;
    fail("E207", `wrong number of arguments: ${callee} takes ${countText()}, got ${given} (missing ${missing.map((m) => `'${m.name}'`).join(", ")})`, file, span);
  }
  return bound;
}

export function specParams(specs: ParamSpec[]): { name: string; required: boolean }[] {
  return specs.map((s) => ({ name: s.name, required: s.default === undefined }));
}

/** What type matching needs from the evaluator: dimension variables and size evaluation. */
export interface DimScope {
  lookup(name: string): Value | undefined;
  bind(name: string, value: Value): void;
  evalSize(e: NonNullable<DimExpr["size"]>): Size;
}

function dimLabel(d: DimExpr): string | null {
  if (d.label) return d.label.text;
  if (d.size && d.size.kind === "Ident") return d.size.name;
  return null;
}

/** Matches a tensor against a tensor type, binding new dimension variables; returns the tensor
 * relabelled with the declared labels. `what` names the thing for the error message. */
export function matchTensor(t: TensorValue, dims: DimExpr[], scope: DimScope, file: string, span: Span, what: string): TensorValue {
  const expected = () => `[${dims.map((d) => (d.label ? `${d.label.text}: ` : "") + (d.size ? exprText(d.size) : "_")).join(", ")}]`;
  if (t.shape.length !== dims.length) {
    fail("E300", `${what}: expected a ${dims.length}-D tensor ${expected()}, found ${formatShape(t.shape)}`, file, span);
  }
  const shape: Axis[] = [];
  dims.forEach((d, i) => {
    const axis = t.shape[i]!;
    const label = dimLabel(d);
    if (label !== null && axis.label !== null && axis.label !== label) {
      const elsewhere = dims.findIndex((e) => dimLabel(e) === axis.label);
      if (elsewhere >= 0) {
        fail("E300", `${what}: axis ${i} is ${axis.label} but ${expected()} expects ${label} there (axes out of order?)`, file, span);
      }
    }
    if (d.size) {
      if (d.size.kind === "Ident" && scope.lookup(d.size.name) === undefined) {
        scope.bind(d.size.name, { k: "int", v: axis.size });
      } else {
        const want = scope.evalSize(d.size);
        if (!want.equals(axis.size)) {
          fail("E300", `${what}: expected ${expected()} with ${label ?? `axis ${i}`} = ${want}, found ${formatShape(t.shape)}`, file, span);
        }
      }
    }
    shape.push({ label: label ?? axis.label, size: axis.size });
  });
  return { k: "tensor", node: t.node, shape };
}

export function matchType(v: Located, type: TypeExpr, scope: DimScope, file: string, what: string): Value {
  switch (type.kind) {
    case "TensorType":
      if (v.value.k !== "tensor") fail("E302", `${what} must be a tensor, found ${describeValue(v.value)}`, file, v.span);
      return matchTensor(v.value, type.dims, scope, file, v.span, what);
    case "ListType": {
      if (v.value.k !== "list") fail("E302", `${what} must be a list, found ${describeValue(v.value)}`, file, v.span);
      return { k: "list", items: v.value.items.map((item, i) => matchType({ value: item, span: v.span }, type.element, scope, file, `${what}[${i}]`)) };
    }
    case "ScalarType":
      return matchScalar(v, type.name.text, type.name.span, file, what);
  }
}

function matchScalar(v: Located, typeName: string, typeSpan: Span, file: string, what: string): Value {
  const value = v.value;
  const ok = (): Value => value;
  switch (typeName) {
    case "int":
      if (value.k === "int") return ok();
      if (value.k === "float" && Number.isInteger(value.v)) return int(value.v);
      break;
    case "float":
      if (value.k === "float") return ok();
      if (value.k === "int" && value.v.isConstant) return { k: "float", v: value.v.constant };
      break;
    case "bool":
      if (value.k === "bool") return ok();
      break;
    case "string":
      if (value.k === "string") return ok();
      break;
    case "block":
      if (value.k === "block" || value.k === "builtin" || value.k === "layer") return ok();
      break;
    case "tensor":
      if (value.k === "tensor") return ok();
      break;
    default:
      fail("E302", `unknown type '${typeName}'`, file, typeSpan, "types are int, float, bool, string, block, tensor, a shape like [N, C, H, W], or T[] for a list");
  }
  return fail("E302", `${what} must be ${typeName}, found ${describeValue(value)}`, file, v.span);
}

/** Source-like text of a dimension expression, for messages. */
export function exprText(e: NonNullable<DimExpr["size"]>): string {
  switch (e.kind) {
    case "Ident":
      return e.name;
    case "Number":
      return e.raw;
    case "Binary":
      return `${exprText(e.left)} ${e.op} ${exprText(e.right)}`;
    case "Paren":
      return `(${exprText(e.value)})`;
    case "Call":
      return `${exprText(e.callee)}(...)`;
    default:
      return "...";
  }
}
