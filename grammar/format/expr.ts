// Expressions and types to Prettier docs. The parser keeps the author's parentheses as Paren
// nodes, so a parsed tree never needs new ones; the precedence table still adds them where a tree
// built by hand would otherwise print as something that reads back differently.
import { doc, type Doc } from "prettier";
import type * as A from "../ast.ts";
import type { CommentMap } from "./comments.ts";
import { hasComments, printList } from "./layout.ts";

const { group, indent, line } = doc.builders;

// Binding strength, loosest first, as in the grammar (parser.ts): `as` < if-then-else < or < and
// < not < comparisons < + - < * / // % < unary - + < ** < call and index < atoms.
const NAMED = 0;
const COND = 1;
const OR = 2;
const NOT = 4;
const COMPARE = 5;
const ADD = 6;
const UNARY = 8;
const POWER = 9;
const POSTFIX = 10;
const ATOM = 11;

const BINARY: Record<A.BinaryOp, number> = {
  or: OR, and: 3,
  "==": COMPARE, "!=": COMPARE, "<": COMPARE, "<=": COMPARE, ">": COMPARE, ">=": COMPARE,
  "+": ADD, "-": ADD,
  "*": 7, "/": 7, "//": 7, "%": 7,
  "**": POWER,
};

function precedence(e: A.Expr): number {
  switch (e.kind) {
    case "Named": return NAMED;
    case "Cond": return COND;
    case "Binary": return BINARY[e.op];
    case "Unary": return e.op === "not" ? NOT : UNARY;
    case "Call":
    case "Index": return POSTFIX;
    default: return ATOM;
  }
}

export class ExprPrinter {
  constructor(readonly cm: CommentMap) {}

  /** `min` is the loosest binding the position accepts without parentheses. */
  expr(e: A.Expr, min = NAMED): Doc {
    const printed = this.bare(e);
    return precedence(e) < min ? ["(", printed, ")"] : printed;
  }

  type(t: A.TypeExpr): Doc {
    switch (t.kind) {
      case "ScalarType":
        return t.name.text;
      case "ListType":
        return [this.type(t.element), "[]"];
      case "TensorType": {
        const dims = t.dims.map((d) => {
          // Sizes are `additive` in the grammar: anything looser needs parentheses.
          const size = d.size ? this.expr(d.size, ADD) : "_";
          return d.label ? [d.label.text, ": ", size] : size;
        });
        return printList(this.cm, this.cm.of(t).dims!, dims, "[", "]", { trailingComma: false });
      }
    }
  }

  private bare(e: A.Expr): Doc {
    switch (e.kind) {
      case "Number":
      case "String":
        return e.raw;
      case "Bool":
        return e.value ? "true" : "false";
      case "Ident":
        return e.name;
      case "Paren":
        return ["(", this.expr(e.value), ")"];
      case "Named":
        // `if c then a else b as "n"` would name only `b`: a condition needs parentheses here.
        return [this.expr(e.value, OR), " as ", e.name.raw];
      case "Unary":
        if (e.op === "not") return ["not ", this.expr(e.operand, NOT)];
        // `- -a`, not `--a`, which reads as a decrement.
        return [e.op, e.operand.kind === "Unary" ? " " : "", this.expr(e.operand, UNARY)];
      case "Binary":
        return this.binary(e);
      case "Cond":
        return this.cond(e);
      case "Index":
        return [this.expr(e.target, POSTFIX), "[", this.expr(e.index), "]"];
      case "Call":
        return this.call(e);
      case "List":
        return printList(this.cm, this.cm.of(e).items!, e.items.map((i) => this.expr(i)), "[", "]", { trailingComma: true });
      case "Comprehension":
        return this.comprehension(e);
    }
  }

  /** A run of one precedence level breaks as a whole, one operand per line, operator last. */
  private binary(e: A.BinaryExpr): Doc {
    const level = BINARY[e.op];
    if (level === POWER) return group([this.expr(e.left, POSTFIX), " **", indent([line, this.expr(e.right, UNARY)])]);
    if (level === COMPARE) return group([this.expr(e.left, ADD), " ", e.op, indent([line, this.expr(e.right, ADD)])]);
    const rest: [A.BinaryOp, A.Expr][] = [];
    let first: A.Expr = e;
    while (first.kind === "Binary" && BINARY[first.op] === level) {
      rest.unshift([first.op, first.right]);
      first = first.left;
    }
    return group([
      this.expr(first, level),
      indent(rest.map(([op, right]) => [" ", op, line, this.expr(right, level + 1)])),
    ]);
  }

  /** `if a then b else if c then d else e`, broken before each `then` and `else`. */
  private cond(e: A.CondExpr): Doc {
    const parts: Doc[] = [];
    let c: A.Expr = e;
    let keyword = "if ";
    while (c.kind === "Cond") {
      parts.push(keyword, this.expr(c.cond), line, "then ", this.expr(c.then), line);
      keyword = "else if ";
      c = c.otherwise;
    }
    parts.push("else ", this.expr(c));
    const [head, cond, ...tail] = parts;
    return group([head!, cond!, indent(tail)]);
  }

  private call(e: A.CallExpr): Doc {
    const callee = this.expr(e.callee, POSTFIX);
    const args = this.cm.of(e).args!;
    const only = e.args.length === 1 ? e.args[0]! : null;
    // `sum([...])` opens the list on the call's line rather than a line of its own.
    if (only && !only.name && (only.value.kind === "List" || only.value.kind === "Comprehension") && !hasComments(this.cm, args)) {
      return [callee, "(", this.expr(only.value), ")"];
    }
    const docs = e.args.map((a) => (a.name ? [a.name.text, ": ", this.expr(a.value)] : this.expr(a.value)));
    return [callee, printList(this.cm, args, docs, "(", ")", { trailingComma: true })];
  }

  private comprehension(e: A.Comprehension): Doc {
    // The iterable and the filter are `or` expressions in the grammar.
    const docs: Doc[] = [this.expr(e.body), ["for ", e.vars.map((v) => v.text).join(", "), " in ", this.expr(e.iterable, OR)]];
    if (e.filter) docs.push(["if ", this.expr(e.filter, OR)]);
    return printList(this.cm, this.cm.of(e).parts!, docs, "[", "]", { trailingComma: false, separator: line });
  }
}
