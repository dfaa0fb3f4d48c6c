// CST to AST: turns Chevrotain's concrete syntax tree into the typed AST of ast.ts.
// Only run on a tree without syntax errors, so every mandatory child is present.
import type { CstElement, CstNode, IToken } from "chevrotain";
import type * as A from "./ast.ts";
import { parser } from "./parser.ts";

type Children = Record<string, CstElement[] | undefined>;

const BaseVisitor = parser.getBaseCstVisitorConstructor();

function tokenSpan(t: IToken): A.Span {
  return { start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1, line: t.startLine ?? 1, col: t.startColumn ?? 1 };
}

function nodeSpan(n: CstNode): A.Span {
  const l = n.location!;
  return { start: l.startOffset, end: (l.endOffset ?? l.startOffset) + 1, line: l.startLine ?? 1, col: l.startColumn ?? 1 };
}

function join(a: A.Span, b: A.Span): A.Span {
  return { start: a.start, end: b.end, line: a.line, col: a.col };
}

function tok(ctx: Children, key: string, i = 0): IToken {
  const t = ctx[key]?.[i];
  if (!t || !("image" in t)) throw new Error(`internal: missing token ${key}`);
  return t;
}

function toks(ctx: Children, key: string): IToken[] {
  return (ctx[key] ?? []) as IToken[];
}

function nodes(ctx: Children, key: string): CstNode[] {
  return (ctx[key] ?? []) as CstNode[];
}

function node(ctx: Children, key: string, i = 0): CstNode {
  const n = ctx[key]?.[i];
  if (!n || !("children" in n)) throw new Error(`internal: missing node ${key}`);
  return n;
}

function name(t: IToken): A.Name {
  return { text: t.image, span: tokenSpan(t) };
}

/** Decodes a string literal's escapes (\" \\ \n \t); other escapes stand for the character. */
export function decodeString(raw: string): string {
  return raw.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}

function stringLit(t: IToken): A.StringLit {
  return { kind: "String", value: decodeString(t.image), raw: t.image, span: tokenSpan(t) };
}

/** Binary operators of one precedence level fold left: a - b - c is (a - b) - c. */
function foldLeft(v: AstBuilder, ctx: Children): A.Expr {
  const operands = nodes(ctx, "operands").map((n) => v.visit(n) as A.Expr);
  const ops = toks(ctx, "ops");
  let acc = operands[0]!;
  for (let i = 0; i < ops.length; i++) {
    const right = operands[i + 1]!;
    acc = { kind: "Binary", op: ops[i]!.image as A.BinaryOp, left: acc, right, opSpan: tokenSpan(ops[i]!), span: join(acc.span, right.span) };
  }
  return acc;
}

class AstBuilder extends BaseVisitor {
  constructor(private readonly path: string, private readonly text: string) {
    super();
    this.validateVisitor();
  }

  /** Every rule method receives its node as the second argument, for the node's location. */
  override visit(n: CstNode | CstNode[]): any {
    const single = Array.isArray(n) ? n[0]! : n;
    return super.visit(single, single);
  }

  file(ctx: Children): A.SourceFile {
    const items: A.TopLevel[] = [];
    for (const key of ["importDecl", "blockDecl", "modelDecl"]) {
      for (const n of nodes(ctx, key)) items.push(this.visit(n));
    }
    items.sort((a, b) => a.span.start - b.span.start);
    return {
      kind: "File",
      path: this.path,
      text: this.text,
      items,
      imports: items.filter((i): i is A.ImportDecl => i.kind === "Import"),
      blocks: items.filter((i): i is A.BlockDecl => i.kind === "Block"),
      models: items.filter((i): i is A.ModelDecl => i.kind === "Model"),
      comments: [],
    };
  }

  importDecl(ctx: Children, n: CstNode): A.ImportDecl {
    const names = ctx.LBrace ? toks(ctx, "names").map(name) : null;
    const pathTok = tok(ctx, "StringLiteral");
    return { kind: "Import", names, path: decodeString(pathTok.image), pathSpan: tokenSpan(pathTok), span: nodeSpan(n) };
  }

  blockDecl(ctx: Children, n: CstNode): A.BlockDecl {
    const body = this.visit(node(ctx, "body")) as { stmts: A.Stmt[]; end: A.Span };
    return {
      kind: "Block",
      name: name(tok(ctx, "Identifier")),
      doc: [],
      params: this.visit(node(ctx, "paramList")),
      returns: ctx.returnType ? this.visit(node(ctx, "returnType")) : null,
      body: body.stmts,
      span: nodeSpan(n),
      endSpan: body.end,
    };
  }

  modelDecl(ctx: Children, n: CstNode): A.ModelDecl {
    const body = this.visit(node(ctx, "body")) as { stmts: A.Stmt[]; end: A.Span };
    return {
      kind: "Model",
      name: name(tok(ctx, "Identifier")),
      doc: [],
      params: this.visit(node(ctx, "paramList")),
      body: body.stmts,
      span: nodeSpan(n),
      endSpan: body.end,
    };
  }

  paramList(ctx: Children): A.ParamDecl[] {
    return nodes(ctx, "paramDecl").map((p) => this.visit(p));
  }

  paramDecl(ctx: Children, n: CstNode): A.ParamDecl {
    return {
      name: name(tok(ctx, "Identifier")),
      type: ctx.typeExpr ? this.visit(node(ctx, "typeExpr")) : null,
      default: ctx.expression ? this.visit(node(ctx, "expression")) : null,
      span: nodeSpan(n),
    };
  }

  returnType(ctx: Children): A.TypeExpr[] {
    return nodes(ctx, "typeExpr").map((t) => this.visit(t));
  }

  typeExpr(ctx: Children, n: CstNode): A.TypeExpr {
    let type: A.TypeExpr = ctx.tensorType
      ? this.visit(node(ctx, "tensorType"))
      : { kind: "ScalarType", name: name(tok(ctx, "Identifier")), span: tokenSpan(tok(ctx, "Identifier")) };
    for (const close of toks(ctx, "listClose")) {
      type = { kind: "ListType", element: type, span: join(type.span, tokenSpan(close)) };
    }
    void n;
    return type;
  }

  tensorType(ctx: Children, n: CstNode): A.TensorType {
    return { kind: "TensorType", dims: nodes(ctx, "dim").map((d) => this.visit(d)), span: nodeSpan(n) };
  }

  dim(ctx: Children, n: CstNode): A.DimExpr {
    const size = this.visit(node(ctx, "additive")) as A.Expr;
    const wildcard = size.kind === "Ident" && size.name === "_";
    return { label: ctx.label ? name(tok(ctx, "label")) : null, size: wildcard ? null : size, span: nodeSpan(n) };
  }

  body(ctx: Children): { stmts: A.Stmt[]; end: A.Span } {
    return { stmts: nodes(ctx, "statement").map((s) => this.visit(s)), end: tokenSpan(tok(ctx, "RBrace")) };
  }

  statement(ctx: Children): A.Stmt {
    const key = Object.keys(ctx)[0]!;
    return this.visit(node(ctx, key));
  }

  paramStmt(ctx: Children, n: CstNode): A.ParamStmt {
    return {
      kind: "Param",
      name: name(tok(ctx, "Identifier")),
      type: this.visit(node(ctx, "tensorType")),
      init: ctx.expression ? this.visit(node(ctx, "expression")) : null,
      span: nodeSpan(n),
    };
  }

  layerStmt(ctx: Children, n: CstNode): A.LayerStmt {
    const value = this.visit(node(ctx, "expression")) as A.Expr;
    return { kind: "Layer", name: name(tok(ctx, "Identifier")), value: value as A.CallExpr, span: nodeSpan(n) };
  }

  inputStmt(ctx: Children, n: CstNode): A.InputStmt {
    return { kind: "Input", name: name(tok(ctx, "Identifier")), type: this.visit(node(ctx, "tensorType")), span: nodeSpan(n) };
  }

  forStmt(ctx: Children, n: CstNode): A.ForStmt {
    const body = this.visit(node(ctx, "body")) as { stmts: A.Stmt[]; end: A.Span };
    return {
      kind: "For",
      vars: toks(ctx, "vars").map(name),
      iterable: this.visit(node(ctx, "expression")),
      body: body.stmts,
      span: nodeSpan(n),
      endSpan: body.end,
    };
  }

  ifStmt(ctx: Children, n: CstNode): A.IfStmt {
    const then = this.visit(node(ctx, "then")) as { stmts: A.Stmt[]; end: A.Span };
    let otherwise: A.Stmt[] | null = null;
    let end = then.end;
    if (ctx.elseIf) {
      const nested = this.visit(node(ctx, "elseIf")) as A.IfStmt;
      otherwise = [nested];
      end = nested.endSpan;
    } else if (ctx.otherwise) {
      const b = this.visit(node(ctx, "otherwise")) as { stmts: A.Stmt[]; end: A.Span };
      otherwise = b.stmts;
      end = b.end;
    }
    return { kind: "If", cond: this.visit(node(ctx, "expression")), then: then.stmts, otherwise, span: nodeSpan(n), endSpan: end };
  }

  returnStmt(ctx: Children, n: CstNode): A.ReturnStmt {
    return { kind: "Return", values: nodes(ctx, "expression").map((e) => this.visit(e)), span: nodeSpan(n) };
  }

  taskStmt(ctx: Children, n: CstNode): A.TaskStmt {
    const value = this.visit(node(ctx, "expression")) as A.Expr;
    return { kind: "Task", name: name(tok(ctx, "Identifier")), value: value as A.CallExpr, span: nodeSpan(n) };
  }

  trainStmt(ctx: Children, n: CstNode): A.TrainStmt {
    return {
      kind: "Train",
      entries: nodes(ctx, "recordEntry").map((e) => this.visit(e)),
      span: nodeSpan(n),
      endSpan: tokenSpan(tok(ctx, "RBrace")),
    };
  }

  recordEntry(ctx: Children, n: CstNode): A.RecordEntry {
    return { key: name(tok(ctx, "Identifier")), value: this.visit(node(ctx, "expression")), span: nodeSpan(n) };
  }

  assignStmt(ctx: Children, n: CstNode): A.AssignStmt {
    return { kind: "Assign", targets: toks(ctx, "targets").map(name), value: this.visit(node(ctx, "expression")), span: nodeSpan(n) };
  }

  expression(ctx: Children, n: CstNode): A.Expr {
    const value = this.visit(node(ctx, "condExpr")) as A.Expr;
    if (!ctx.As) return value;
    return { kind: "Named", value, name: stringLit(tok(ctx, "StringLiteral")), span: nodeSpan(n) };
  }

  condExpr(ctx: Children, n: CstNode): A.Expr {
    if (!ctx.If) return this.visit(node(ctx, "orExpr"));
    return {
      kind: "Cond",
      cond: this.visit(node(ctx, "cond")),
      then: this.visit(node(ctx, "then")),
      otherwise: this.visit(node(ctx, "otherwise")),
      span: nodeSpan(n),
    };
  }

  orExpr(ctx: Children): A.Expr {
    return foldLeft(this, ctx);
  }

  andExpr(ctx: Children): A.Expr {
    return foldLeft(this, ctx);
  }

  notExpr(ctx: Children, n: CstNode): A.Expr {
    if (!ctx.Not) return this.visit(node(ctx, "comparison"));
    return { kind: "Unary", op: "not", operand: this.visit(node(ctx, "notExpr")), span: nodeSpan(n) };
  }

  comparison(ctx: Children): A.Expr {
    return foldLeft(this, ctx);
  }

  additive(ctx: Children): A.Expr {
    return foldLeft(this, ctx);
  }

  multiplicative(ctx: Children): A.Expr {
    return foldLeft(this, ctx);
  }

  unary(ctx: Children, n: CstNode): A.Expr {
    if (!ctx.op) return this.visit(node(ctx, "power"));
    return { kind: "Unary", op: tok(ctx, "op").image as "-" | "+", operand: this.visit(node(ctx, "unary")), span: nodeSpan(n) };
  }

  power(ctx: Children): A.Expr {
    const base = this.visit(node(ctx, "postfix")) as A.Expr;
    if (!ctx.Power) return base;
    const exponent = this.visit(node(ctx, "exponent")) as A.Expr;
    return { kind: "Binary", op: "**", left: base, right: exponent, opSpan: tokenSpan(tok(ctx, "Power")), span: join(base.span, exponent.span) };
  }

  postfix(ctx: Children): A.Expr {
    let expr = this.visit(node(ctx, "primary")) as A.Expr;
    for (const suffix of nodes(ctx, "suffixes")) {
      const end = nodeSpan(suffix);
      if (suffix.name === "callSuffix") {
        const args = nodes(suffix.children, "arg").map((a) => this.visit(a) as A.Arg);
        expr = { kind: "Call", callee: expr, args, span: join(expr.span, end) };
      } else {
        expr = { kind: "Index", target: expr, index: this.visit(node(suffix.children, "expression")), span: join(expr.span, end) };
      }
    }
    return expr;
  }

  callSuffix(): never {
    throw new Error("internal: callSuffix is visited through postfix");
  }

  indexSuffix(): never {
    throw new Error("internal: indexSuffix is visited through postfix");
  }

  arg(ctx: Children, n: CstNode): A.Arg {
    return { name: ctx.name ? name(tok(ctx, "name")) : null, value: this.visit(node(ctx, "expression")), span: nodeSpan(n) };
  }

  primary(ctx: Children, n: CstNode): A.Expr {
    if (ctx.FloatLiteral || ctx.IntLiteral) {
      const t = ctx.FloatLiteral ? tok(ctx, "FloatLiteral") : tok(ctx, "IntLiteral");
      return { kind: "Number", value: Number(t.image), isInt: !ctx.FloatLiteral, raw: t.image, span: tokenSpan(t) };
    }
    if (ctx.StringLiteral) return stringLit(tok(ctx, "StringLiteral"));
    if (ctx.True || ctx.False) return { kind: "Bool", value: !!ctx.True, span: nodeSpan(n) };
    if (ctx.Identifier) {
      const t = tok(ctx, "Identifier");
      return { kind: "Ident", name: t.image, span: tokenSpan(t) };
    }
    if (ctx.expression) return { kind: "Paren", value: this.visit(node(ctx, "expression")), span: nodeSpan(n) };
    return this.visit(node(ctx, "listExpr"));
  }

  listExpr(ctx: Children, n: CstNode): A.Expr {
    const items = nodes(ctx, "items").map((i) => this.visit(i) as A.Expr);
    if (ctx.For) {
      return {
        kind: "Comprehension",
        body: items[0]!,
        vars: toks(ctx, "vars").map(name),
        iterable: this.visit(node(ctx, "iterable")),
        filter: ctx.filter ? this.visit(node(ctx, "filter")) : null,
        span: nodeSpan(n),
      };
    }
    return { kind: "List", items, span: nodeSpan(n) };
  }
}

export function buildAst(cst: CstNode, path: string, text: string): A.SourceFile {
  return new AstBuilder(path, text).visit(cst) as A.SourceFile;
}

export function buildExpression(cst: CstNode, path: string, text: string): A.Expr {
  return new AstBuilder(path, text).visit(cst) as A.Expr;
}
