// Name resolution before elaboration: every name used in a block or model must be a
// parameter, a dimension variable of a parameter's type, something the body binds, a block in
// scope or a built-in. Runs over every block, used or not, and reports all unknown names at once.
import type * as A from "../../grammar/ast.ts";
import type { Diagnostic } from "../../grammar/diagnostic.ts";
import { closest } from "../diagnostics/suggest.ts";
import { builtins } from "./builtins/index.ts";
import type { Module } from "./modules.ts";

export function resolveNames(mod: Module): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const file = mod.display;
  for (const item of mod.file.items) {
    if (item.kind === "Import") continue;
    const seenParams = new Map<string, A.Name>();
    for (const p of item.params) {
      const prior = seenParams.get(p.name.text);
      if (prior) {
        diagnostics.push({ code: "E205", severity: "error", message: `parameter '${p.name.text}' is declared twice`, file, span: p.name.span });
      }
      seenParams.set(p.name.text, p.name);
    }
    const defined = new Set<string>(item.params.map((p) => p.name.text));
    for (const p of item.params) if (p.type) typeDims(p.type, defined);
    if (item.kind === "Block" && item.returns) for (const r of item.returns) typeDims(r, defined);
    collectBindings(item.body, defined);
    const visible = (name: string, local: ReadonlySet<string>) => defined.has(name) || local.has(name) || mod.scope.has(name) || builtins.has(name);
    const report = (name: string, span: A.Span, callee: boolean, local: ReadonlySet<string>) => {
      if (visible(name, local)) return;
      const suggestion = closest(name, [...defined, ...local, ...mod.scope.keys(), ...builtins.keys()]);
      diagnostics.push({
        code: callee ? "E201" : "E200",
        severity: "error",
        message: callee ? `unknown block or function '${name}'` : `unknown name '${name}'`,
        file,
        span,
        help: suggestion ? `did you mean '${suggestion}'?` : undefined,
      });
    };
    const walkExpr = (e: A.Expr, local: ReadonlySet<string>): void => {
      switch (e.kind) {
        case "Ident":
          if (e.name !== "_") report(e.name, e.span, false, local);
          return;
        case "Call":
          if (e.callee.kind === "Ident") {
            if (!(item.kind === "Model" && e.callee.name === "classify")) report(e.callee.name, e.callee.span, true, local);
          } else walkExpr(e.callee, local);
          e.args.forEach((a) => walkExpr(a.value, local));
          return;
        case "Comprehension": {
          walkExpr(e.iterable, local);
          const inner = new Set([...local, ...e.vars.map((v) => v.text)]);
          walkExpr(e.body, inner);
          if (e.filter) walkExpr(e.filter, inner);
          return;
        }
        case "List":
          e.items.forEach((i) => walkExpr(i, local));
          return;
        case "Index":
          walkExpr(e.target, local);
          walkExpr(e.index, local);
          return;
        case "Binary": {
          // Iterate down the left spine: long sums must not deepen the recursion.
          let left: A.Expr = e;
          while (left.kind === "Binary") {
            walkExpr(left.right, local);
            left = left.left;
          }
          walkExpr(left, local);
          return;
        }
        case "Unary":
          walkExpr(e.operand, local);
          return;
        case "Cond":
          walkExpr(e.cond, local);
          walkExpr(e.then, local);
          walkExpr(e.otherwise, local);
          return;
        case "Named":
        case "Paren":
          walkExpr(e.value, local);
          return;
        default:
          return;
      }
    };
    const none = new Set<string>();
    for (const p of item.params) if (p.default) walkExpr(p.default, none);
    const walkStmts = (stmts: A.Stmt[]) => {
      for (const s of stmts) {
        switch (s.kind) {
          case "Assign":
            walkExpr(s.value, none);
            break;
          case "Param":
            s.type.dims.forEach((d) => d.size && walkExpr(d.size, none));
            if (s.init) walkExpr(s.init, none);
            break;
          case "Layer":
          case "Task":
            walkExpr(s.value, none);
            break;
          case "Input":
            // The batch dimension of an input is a fresh symbol: nothing to resolve.
            s.type.dims.slice(1).forEach((d) => d.size && walkExpr(d.size, none));
            break;
          case "For":
            walkExpr(s.iterable, none);
            walkStmts(s.body);
            break;
          case "If":
            walkExpr(s.cond, none);
            walkStmts(s.then);
            if (s.otherwise) walkStmts(s.otherwise);
            break;
          case "Return":
            s.values.forEach((v) => walkExpr(v, none));
            break;
          case "Train":
            s.entries.forEach((en) => walkExpr(en.value, none));
            break;
        }
      }
    };
    walkStmts(item.body);
  }
  return diagnostics;
}

function typeDims(t: A.TypeExpr, out: Set<string>): void {
  if (t.kind === "TensorType") {
    for (const d of t.dims) if (d.size?.kind === "Ident") out.add(d.size.name);
  } else if (t.kind === "ListType") typeDims(t.element, out);
}

function collectBindings(stmts: A.Stmt[], out: Set<string>): void {
  for (const s of stmts) {
    switch (s.kind) {
      case "Assign":
        s.targets.forEach((t) => out.add(t.text));
        break;
      case "Param":
      case "Layer":
      case "Input":
        out.add(s.name.text);
        break;
      case "For":
        s.vars.forEach((v) => out.add(v.text));
        collectBindings(s.body, out);
        break;
      case "If":
        collectBindings(s.then, out);
        if (s.otherwise) collectBindings(s.otherwise, out);
        break;
    }
  }
}
