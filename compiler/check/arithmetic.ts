// Compile-time arithmetic and comparison on numbers, symbolic sizes, strings and lists: what
// `+`, `//`, `**`, `==`, `<` and friends mean when no tensor is involved.
import type * as A from "../../grammar/ast.ts";
import { Size } from "./size.ts";
import { type Located, type Value, describeValue, fail } from "./values.ts";

export function numeric(op: string, a: Located, b: Located, span: A.Span, file: string): Value {
  const x = a.value;
  const y = b.value;
  const isNum = (v: Value) => v.k === "int" || v.k === "float";
  if (!isNum(x)) fail("E302", `cannot use ${describeValue(x)} with ${symbolOf(op)}`, file, a.span);
  if (!isNum(y)) fail("E302", `cannot use ${describeValue(y)} with ${symbolOf(op)}`, file, b.span);
  if (x.k === "int" && y.k === "int") {
    const p = x.v;
    const q = y.v;
    switch (op) {
      case "add":
        return { k: "int", v: p.add(q) };
      case "sub":
        return { k: "int", v: p.sub(q) };
      case "mul":
        return checkedInt(p.mul(q), file, span);
      case "//": {
        if (q.value === undefined || q.value <= 0) fail("E400", q.value === 0 ? "division by zero" : "// needs a known positive divisor", file, b.span);
        return { k: "int", v: p.floorDiv(q.value) };
      }
      case "maximum":
      case "minimum":
      case "%":
      case "**": {
        if (p.value === undefined || q.value === undefined) fail("E400", `${symbolOf(op)} needs known integers, found ${p} and ${q}`, file, span);
        const [m, n] = [p.value, q.value];
        if (op === "%" && n === 0) fail("E400", "modulo by zero", file, b.span);
        if (op === "**" && n < 0) return { k: "float", v: m ** n };
        const r = op === "%" ? ((m % n) + n) % n : op === "**" ? m ** n : op === "maximum" ? Math.max(m, n) : Math.min(m, n);
        return checkedInt(Size.of(r), file, span);
      }
      case "div":
        if (p.value === undefined || q.value === undefined) fail("E400", "use // to divide sizes", file, span);
        if (q.value === 0) fail("E400", "division by zero", file, b.span);
        return { k: "float", v: p.value / q.value };
    }
  }
  const num = (v: Value, at: Located) => {
    if (v.k === "float") return v.v;
    if (v.k === "int" && v.v.isConstant) return v.v.constant;
    return fail("E400", `the symbolic size ${v.k === "int" ? v.v : ""} cannot be used in float arithmetic`, file, at.span);
  };
  const m = num(x, a);
  const n = num(y, b);
  const results: Record<string, () => number> = {
    add: () => m + n, sub: () => m - n, mul: () => m * n, div: () => m / n, "//": () => Math.floor(m / n),
    "%": () => m % n, "**": () => m ** n, maximum: () => Math.max(m, n), minimum: () => Math.min(m, n),
  };
  if ((op === "div" || op === "//" || op === "%") && n === 0) fail("E400", "division by zero", file, b.span);
  const r = results[op]!();
  if (!Number.isFinite(r)) fail("E400", `${symbolOf(op)} overflows`, file, span);
  return { k: "float", v: r };
}

export function compare(op: string, a: Located, b: Located, span: A.Span, file: string): Value {
  const x = a.value;
  const y = b.value;
  if (op === "==" || op === "!=") {
    const eq = valuesEqual(x, y);
    if (eq === null) fail("E302", `cannot compare ${describeValue(x)} with ${describeValue(y)}`, file, span);
    return { k: "bool", v: op === "==" ? eq : !eq };
  }
  const num = (v: Value, at: Located): number => {
    if (v.k === "float") return v.v;
    if (v.k === "int" && v.v.isConstant) return v.v.constant;
    if (v.k === "int") return fail("E400", `cannot order the symbolic size ${v.v}`, file, at.span);
    return fail("E302", `cannot order ${describeValue(v)}`, file, at.span);
  };
  const m = num(x, a);
  const n = num(y, b);
  const r = op === "<" ? m < n : op === "<=" ? m <= n : op === ">" ? m > n : m >= n;
  return { k: "bool", v: r };
}

export function isArithmetic(op: A.BinaryOp): boolean {
  return op === "+" || op === "-" || op === "*" || op === "/";
}

function symbolOf(op: string): string {
  return ({ add: "+", sub: "-", mul: "*", div: "/", maximum: "max", minimum: "min" } as Record<string, string>)[op] ?? op;
}

function checkedInt(s: Size, file: string, span: A.Span): Value {
  if (s.isConstant && !Number.isSafeInteger(s.constant)) fail("E400", "integer overflow", file, span);
  return { k: "int", v: s };
}

function valuesEqual(x: Value, y: Value): boolean | null {
  if ((x.k === "int" || x.k === "float") && (y.k === "int" || y.k === "float")) {
    if (x.k === "int" && y.k === "int") {
      if (x.v.equals(y.v)) return true;
      return x.v.isConstant && y.v.isConstant ? false : null;
    }
    const a = x.k === "int" ? x.v.value : x.v;
    const b = y.k === "int" ? y.v.value : y.v;
    if (a === undefined || b === undefined) return null;
    return a === b;
  }
  if (x.k === "string" && y.k === "string") return x.v === y.v;
  if (x.k === "bool" && y.k === "bool") return x.v === y.v;
  if (x.k === "list" && y.k === "list") {
    if (x.items.length !== y.items.length) return false;
    for (let i = 0; i < x.items.length; i++) {
      const eq = valuesEqual(x.items[i]!, y.items[i]!);
      if (eq !== true) return eq;
    }
    return true;
  }
  return null;
}
