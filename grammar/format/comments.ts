// Where each comment of a .drifa file goes when the file is reprinted. Newlines are insignificant
// in the language, so a `#` comment can sit between any two tokens; the AST keeps none of them.
// Every comment is tied to an *element* of a *container*: a statement of a body, an item of the
// file, an argument of a call, an entry of `train`, a parameter, a dimension, a list item. A
// comment alone on its line leads the element after it; one after code trails the element before
// it; with no element on that side it is kept just after the opening bracket or just before the
// closing one. A comment somewhere an element cannot hold it (inside `a + b`, say) moves to the
// innermost element around it, so that nothing is ever lost and a second run changes nothing.
import type { IToken } from "chevrotain";
import type * as A from "../ast.ts";

export interface Spanned {
  span: A.Span;
}

export interface Container {
  /** Offsets of the opening and closing bracket; the file's container spans the whole text. */
  open: number;
  close: number;
  elements: Spanned[];
  /** Statement-like containers (bodies, `train`, the file) keep the author's blank lines. */
  body: boolean;
  /** Comments on the opening bracket's line, before any element. */
  afterOpen: A.CommentToken[];
  /** Comments after the last element, on lines of their own. */
  dangling: A.CommentToken[];
}

export interface Attached {
  /** Comments moved out of the element's inside: printed first, so `##` docs stay adjacent. */
  hoisted: A.CommentToken[];
  leading: A.CommentToken[];
  trailing: A.CommentToken[];
}

const NONE: Attached = Object.freeze({ hoisted: [], leading: [], trailing: [] }) as Attached;

/** Bracket positions the AST does not record, recovered from the token stream. */
class TokenIndex {
  private readonly starts: number[];
  private readonly partner = new Map<number, number>();

  constructor(private readonly tokens: IToken[]) {
    this.starts = tokens.map((t) => t.startOffset);
    const stack: number[] = [];
    for (const t of tokens) {
      if (t.image === "(" || t.image === "[" || t.image === "{") stack.push(t.startOffset);
      else if (t.image === ")" || t.image === "]" || t.image === "}") {
        const open = stack.pop();
        if (open !== undefined) this.partner.set(open, t.startOffset);
      }
    }
  }

  private indexAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Offset of the first token spelled `image` at or after `offset`. */
  find(offset: number, image: string): number {
    for (let i = this.indexAt(offset); i < this.tokens.length; i++) {
      if (this.tokens[i]!.image === image) return this.tokens[i]!.startOffset;
    }
    throw new Error(`internal: no ${image} after offset ${offset}`);
  }

  /** The token following the one that starts at `offset`. */
  after(offset: number): IToken | undefined {
    return this.tokens[this.indexAt(offset) + 1];
  }

  match(open: number): number {
    const close = this.partner.get(open);
    if (close === undefined) throw new Error(`internal: unmatched bracket at offset ${open}`);
    return close;
  }
}

function container(open: number, close: number, elements: Spanned[], body = false): Container {
  return { open, close, elements, body, afterOpen: [], dangling: [] };
}

function contains(node: Spanned, offset: number): boolean {
  return node.span.start <= offset && offset < node.span.end;
}

const SKIPPED_KEYS = new Set(["span", "opSpan", "pathSpan", "endSpan", "comments", "imports", "blocks", "models"]);

/** Sub-nodes of any AST node, found by shape so that every node kind is covered. */
function children(node: object): Spanned[] {
  const out: Spanned[] = [];
  const add = (v: unknown) => {
    if (v && typeof v === "object" && "span" in v) out.push(v as Spanned);
  };
  for (const [key, value] of Object.entries(node)) {
    if (SKIPPED_KEYS.has(key)) continue;
    if (Array.isArray(value)) value.forEach(add);
    else add(value);
  }
  return out;
}

export class CommentMap {
  private readonly tokens: TokenIndex;
  private readonly containers = new Map<object, Record<string, Container>>();
  private readonly attached = new Map<object, Attached>();

  constructor(readonly file: A.SourceFile, tokens: IToken[]) {
    this.tokens = new TokenIndex(tokens);
    for (const c of file.comments) this.place(c);
  }

  /** The containers of one node, by role (`body`, `args`, `then`, ...). */
  of(node: object): Record<string, Container> {
    let found = this.containers.get(node);
    if (!found) {
      found = this.build(node as A.SourceFile | A.TopLevel | A.Stmt | A.Expr | A.TypeExpr);
      this.containers.set(node, found);
    }
    return found;
  }

  comments(node: object): Attached {
    return this.attached.get(node) ?? NONE;
  }

  /** An `else` followed directly by `if` (rather than by a `{` block holding an if). */
  isElseIf(stmt: A.IfStmt): boolean {
    return stmt.otherwise !== null && this.of(stmt).else === undefined;
  }

  /** True when only blank space precedes the comment on its line. */
  ownLine(c: A.CommentToken): boolean {
    const text = this.file.text;
    const lineStart = text.lastIndexOf("\n", c.span.start - 1) + 1;
    return text.slice(lineStart, c.span.start).trim() === "";
  }

  /** Whether the author left an empty line between two offsets. */
  blankBetween(from: number, to: number): boolean {
    // The gap may hold tokens (`{`, `,`): only a line with nothing on it counts.
    return /\n[ \t\r]*\n/.test(this.file.text.slice(from, to));
  }

  private build(node: A.SourceFile | A.TopLevel | A.Stmt | A.Expr | A.TypeExpr): Record<string, Container> {
    const tk = this.tokens;
    switch (node.kind) {
      case "File":
        return { items: container(-1, node.text.length + 1, node.items, true) };
      case "Import": {
        if (!node.names) return {};
        const open = tk.find(node.span.start, "{");
        return { names: container(open, tk.match(open), node.names) };
      }
      case "Block":
      case "Model": {
        const open = tk.find(node.name.span.end, "(");
        const close = tk.match(open);
        const out: Record<string, Container> = { params: container(open, close, node.params) };
        let headerEnd = close + 1;
        if (node.kind === "Block" && node.returns) {
          const next = tk.after(tk.find(close, "->"));
          if (next?.image === "(") {
            out.returns = container(next.startOffset, tk.match(next.startOffset), node.returns);
            headerEnd = out.returns.close + 1;
          } else {
            headerEnd = node.returns[node.returns.length - 1]!.span.end;
          }
        }
        out.body = container(tk.find(headerEnd, "{"), node.endSpan.start, node.body, true);
        return out;
      }
      case "For":
        return { body: container(tk.find(node.iterable.span.end, "{"), node.endSpan.start, node.body, true) };
      case "If": {
        const open = tk.find(node.cond.span.end, "{");
        const close = tk.match(open);
        const out: Record<string, Container> = { then: container(open, close, node.then, true) };
        const afterElse = node.otherwise ? tk.after(tk.after(close)!.startOffset) : undefined;
        if (node.otherwise && afterElse?.image === "{") {
          out.else = container(afterElse.startOffset, tk.match(afterElse.startOffset), node.otherwise, true);
        }
        return out;
      }
      case "Train":
        return { entries: container(tk.find(node.span.start, "{"), node.endSpan.start, node.entries, true) };
      case "Call":
        return { args: container(tk.find(node.callee.span.end, "("), node.span.end - 1, node.args) };
      case "List":
        return { items: container(node.span.start, node.span.end - 1, node.items) };
      case "Comprehension": {
        const parts: Spanned[] = [node.body, node.iterable];
        if (node.filter) parts.push(node.filter);
        return { parts: container(node.span.start, node.span.end - 1, parts) };
      }
      case "TensorType":
        return { dims: container(node.span.start, node.span.end - 1, node.dims) };
      default:
        return {};
    }
  }

  private slot(node: object): Attached {
    let a = this.attached.get(node);
    if (!a) this.attached.set(node, (a = { hoisted: [], leading: [], trailing: [] }));
    return a;
  }

  private place(c: A.CommentToken): void {
    this.inContainer(this.of(this.file).items!, c, this.ownLine(c));
  }

  private inContainer(ct: Container, c: A.CommentToken, own: boolean): void {
    const at = c.span.start;
    const inside = ct.elements.find((e) => contains(e, at));
    if (inside) return this.inNode(inside, c, own, inside, [inside]);
    const prev = ct.elements.filter((e) => e.span.end <= at).pop();
    const next = ct.elements.find((e) => e.span.start > at);
    if (!own) (prev ? this.slot(prev).trailing : ct.afterOpen).push(c);
    else (next ? this.slot(next).leading : ct.dangling).push(c);
  }

  private inNode(node: Spanned, c: A.CommentToken, own: boolean, owner: Spanned, path: Spanned[]): void {
    const at = c.span.start;
    for (const ct of Object.values(this.of(node))) {
      if (ct.open < at && at < ct.close) return this.inContainer(ct, c, own);
    }
    const child = children(node).find((ch) => contains(ch, at));
    if (child) return this.inNode(child, c, own, owner, [...path, child]);
    if (own) {
      this.slot(owner).hoisted.push(c);
      return;
    }
    // In a header (`for x in xs # note` then `{`): keep it on the line of the next `{`.
    const bodies = path.flatMap((n) => Object.values(this.of(n))).filter((ct) => ct.body && ct.open > at);
    const first = bodies.sort((a, b) => a.open - b.open)[0];
    (first ? first.afterOpen : this.slot(owner).trailing).push(c);
  }
}
