// Declarations and statements to Prettier docs: the canonical layout of a .drifa file.
import { doc, type Doc } from "prettier";
import type * as A from "../ast.ts";
import type { CommentMap, Container, Spanned } from "./comments.ts";
import { ExprPrinter } from "./expr.ts";
import { hasComments, printBraced, printList, printSequence } from "./layout.ts";

const { group, hardline, indent, join, line } = doc.builders;

export class DrifaPrinter extends ExprPrinter {
  constructor(cm: CommentMap) {
    super(cm);
  }

  file(): Doc {
    const file = this.cm.file;
    const items = printSequence(this.cm, this.cm.of(file).items!, (el) => this.topLevel(el as A.TopLevel), {
      // One empty line between declarations; a run of imports keeps the author's spacing.
      blankBefore: (el, i) => i > 0 && !((el as A.TopLevel).kind === "Import" && file.items[i - 1]!.kind === "Import"),
      keepDocs: true,
    });
    return items.length > 0 ? [...items, hardline] : "";
  }

  private topLevel(item: A.TopLevel): Doc {
    if (item.kind !== "Import") return this.declaration(item);
    const path = this.cm.file.text.slice(item.pathSpan.start, item.pathSpan.end);
    if (!item.names) return ["import ", path];
    const names = item.names.map((n) => n.text);
    const list = printList(this.cm, this.cm.of(item).names!, names, "{", "}", { trailingComma: false, spaced: true });
    return ["import ", list, " from ", path];
  }

  private declaration(decl: A.BlockDecl | A.ModelDecl): Doc {
    const cts = this.cm.of(decl);
    // One group for the whole header, so that the parameters break when the return type would
    // not fit after them, rather than the return type breaking inside its brackets.
    const params = printList(this.cm, cts.params!, decl.params.map((p) => this.param(p)), "(", ")", {
      trailingComma: true,
      bare: true,
    });
    let returns: Doc = "";
    if (decl.kind === "Block" && decl.returns) {
      const types = decl.returns.map((t) => this.type(t));
      const single = decl.returns.length === 1 && !(cts.returns && hasComments(this.cm, cts.returns));
      returns = [" -> ", single ? types[0]! : printList(this.cm, cts.returns!, types, "(", ")", { trailingComma: false })];
    }
    const keyword = decl.kind === "Block" ? "block " : "model ";
    return [group([keyword, decl.name.text, params, returns]), " ", this.body(cts.body!)];
  }

  private param(p: A.ParamDecl): Doc {
    return [p.name.text, p.type ? [": ", this.type(p.type)] : "", p.default ? [" = ", this.expr(p.default)] : ""];
  }

  private body(ct: Container | undefined): Doc {
    return printBraced(this.cm, ct!, (el: Spanned) => this.statement(el as A.Stmt));
  }

  private statement(s: A.Stmt): Doc {
    switch (s.kind) {
      case "Assign":
        return [s.targets.map((t) => t.text).join(", "), " = ", this.expr(s.value)];
      case "Param":
        return ["param ", s.name.text, ": ", this.type(s.type), s.init ? [" = ", this.expr(s.init)] : ""];
      case "Layer":
        return ["layer ", s.name.text, " = ", this.expr(s.value)];
      case "Input":
        return ["input ", s.name.text, ": ", this.type(s.type)];
      case "For":
        return ["for ", s.vars.map((v) => v.text).join(", "), " in ", this.expr(s.iterable), " ", this.body(this.cm.of(s).body)];
      case "If":
        return this.ifStatement(s);
      case "Return": {
        const values = s.values.map((v) => this.expr(v));
        return values.length === 1 ? ["return ", values[0]!] : group(["return ", indent(join([",", line], values))]);
      }
      case "Task":
        return ["task ", s.name.text, ": ", this.expr(s.value)];
      case "Train":
        return [
          "train ",
          printBraced(this.cm, this.cm.of(s).entries!, (el) => {
            const entry = el as A.RecordEntry;
            return [entry.key.text, ": ", this.expr(entry.value)];
          }),
        ];
    }
  }

  private ifStatement(s: A.IfStmt): Doc {
    const cts = this.cm.of(s);
    const head: Doc[] = ["if ", this.expr(s.cond), " ", this.body(cts.then)];
    if (!s.otherwise) return head;
    if (this.cm.isElseIf(s)) return [...head, " else ", this.ifStatement(s.otherwise[0] as A.IfStmt)];
    return [...head, " else ", this.body(cts.else)];
  }
}
