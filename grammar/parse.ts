// Source text to AST: lexing, a nesting guard, parsing with recovery (several syntax errors per
// run), the CST-to-AST visitor, and the small syntactic checks the grammar cannot express.
import type { IToken } from "chevrotain";
import { distance } from "fastest-levenshtein";
import type { CommentToken, SourceFile, Span, Stmt } from "./ast.ts";
import { type Diagnostic, spanAt } from "./diagnostic.ts";
import { parser, parseTokens } from "./parser.ts";
import * as T from "./tokens.ts";
import { buildAst, buildExpression } from "./visitor.ts";

/** Brackets nested deeper than this are refused before parsing, so that no input can exhaust
 * the parser's stack. Real models nest a handful of levels. */
export const MAX_NESTING = 200;

export interface ParseResult {
  file: SourceFile | null;
  diagnostics: Diagnostic[];
  tokens: IToken[];
  comments: CommentToken[];
}

function tokenSpan(t: IToken): Span {
  return { start: t.startOffset, end: (t.endOffset ?? t.startOffset) + 1, line: t.startLine ?? 1, col: t.startColumn ?? 1 };
}

export function parseSource(text: string, path: string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const lexed = T.lexer.tokenize(text);
  for (const e of lexed.errors) {
    const bad = text.slice(e.offset, e.offset + Math.max(1, e.length));
    const unterminated = bad.startsWith('"');
    diagnostics.push({
      code: unterminated ? "E102" : "E100",
      severity: "error",
      message: unterminated ? "unterminated string" : `unexpected character ${JSON.stringify(bad.slice(0, 1))}`,
      file: path,
      span: spanAt(text, e.offset, e.offset + (unterminated ? e.length : 1)),
      help: unterminated ? "strings end with '\"' on the same line" : undefined,
    });
  }
  const comments: CommentToken[] = (lexed.groups.comments ?? []).map((t: IToken) => ({
    text: t.image,
    span: tokenSpan(t),
    doc: t.tokenType === T.DocComment,
  }));
  const tokens = lexed.tokens;

  const tooDeep = findExcessiveNesting(tokens);
  if (tooDeep) {
    diagnostics.push({
      code: "E103",
      severity: "error",
      message: `brackets nested more than ${MAX_NESTING} levels deep`,
      file: path,
      span: tokenSpan(tooDeep),
      help: "split the expression into named steps",
    });
    return { file: null, diagnostics, tokens, comments };
  }

  let result;
  try {
    result = parseTokens(tokens);
  } catch (e) {
    if (e instanceof RangeError) {
      diagnostics.push({ code: "E103", severity: "error", message: "expression nested too deeply", file: path, span: spanAt(text, 0, 0) });
      return { file: null, diagnostics, tokens, comments };
    }
    throw e;
  }
  for (const err of result.errors) {
    const t = err.token;
    const atEof = !t || t.tokenType.name === "EOF" || Number.isNaN(t.startOffset);
    const span = atEof ? spanAt(text, text.length, text.length) : tokenSpan(t);
    const keyword = !atEof && t.tokenType === T.Identifier ? misspeltKeyword(t.image) : null;
    diagnostics.push({ code: "E101", severity: "error", message: err.message, file: path, span, help: keyword ? `did you mean '${keyword}'?` : undefined });
  }
  if (diagnostics.length > 0) return { file: null, diagnostics, tokens, comments };

  let file: SourceFile;
  try {
    file = buildAst(result.cst, path, text);
  } catch (e) {
    if (e instanceof RangeError) {
      diagnostics.push({ code: "E103", severity: "error", message: "expression nested too deeply", file: path, span: spanAt(text, 0, 0) });
      return { file: null, diagnostics, tokens, comments };
    }
    throw e;
  }
  file.comments = comments;
  attachDocComments(file, text);
  checkStatementForms(file, diagnostics);
  return { file: diagnostics.length ? null : file, diagnostics, tokens, comments };
}

function findExcessiveNesting(tokens: IToken[]): IToken | null {
  let depth = 0;
  let prefixRun = 0;
  let prevIsOperand = false;
  for (const t of tokens) {
    const type = t.tokenType;
    if (type === T.LParen || type === T.LBracket || type === T.LBrace) {
      if (++depth > MAX_NESTING) return t;
    } else if (type === T.RParen || type === T.RBracket || type === T.RBrace) {
      depth = Math.max(0, depth - 1);
    }
    // Prefix operators, `if ... then` and the right-associative ** recurse in the parser too:
    // bound their runs the same way. A + or - after an operand is binary and ends a run.
    const binarySign = (type === T.Minus || type === T.Plus) && prevIsOperand;
    if (!binarySign && (type === T.Minus || type === T.Plus || type === T.Not || type === T.If || type === T.Power)) {
      if (++prefixRun > MAX_NESTING) return t;
    } else if (binarySign || !(operandTypes.has(type) || type === T.Then || type === T.Else)) {
      prefixRun = 0;
    }
    prevIsOperand = operandTypes.has(type) || type === T.RParen || type === T.RBracket;
  }
  return null;
}

const operandTypes = new Set([T.Identifier, T.IntLiteral, T.FloatLiteral, T.StringLiteral, T.True, T.False]);

/** A name where the grammar wanted something else may be a misspelt keyword (`blok`, `retrun`). */
function misspeltKeyword(name: string): string | null {
  if (name.length < 3) return null;
  let best: string | null = null;
  for (const k of T.keywordNames) {
    const d = distance(name.toLowerCase(), k);
    if (d <= (k.length > 5 ? 2 : 1) && (best === null || d < distance(name.toLowerCase(), best))) best = k;
  }
  return best;
}

/** `##` comments directly above a block or model document it. */
function attachDocComments(file: SourceFile, text: string): void {
  const docs = file.comments.filter((c) => c.doc);
  let previousEnd = 0;
  for (const item of file.items) {
    const after = previousEnd;
    previousEnd = item.span.end;
    if (item.kind === "Import") continue;
    const lines: string[] = [];
    let line = item.span.line - 1;
    for (let i = docs.length - 1; i >= 0; i--) {
      const d = docs[i]!;
      // Only comments between the previous declaration and this one can document it.
      if (d.span.start < after) break;
      if (d.span.line === line && text.slice(d.span.start - d.span.col + 1, d.span.start).trim() === "") {
        lines.unshift(d.text.replace(/^##\s?/, ""));
        line--;
      }
    }
    item.doc = lines;
  }
}

/** `layer` and `task` take a call; the grammar accepts any expression there for better recovery. */
function checkStatementForms(file: SourceFile, diagnostics: Diagnostic[]): void {
  const visit = (stmts: Stmt[]) => {
    for (const s of stmts) {
      if ((s.kind === "Layer" || s.kind === "Task") && s.value.kind !== "Call") {
        const what = s.kind === "Layer" ? "a layer declaration needs a layer call, e.g. `layer fc = dense(C)`" : "a task needs a call, e.g. `task dx: classify(logits, classes: 7)`";
        diagnostics.push({ code: "E104", severity: "error", message: what, file: file.path, span: (s.value as { span: Span }).span });
      }
      if (s.kind === "For") visit(s.body);
      if (s.kind === "If") {
        visit(s.then);
        if (s.otherwise) visit(s.otherwise);
      }
    }
  };
  for (const item of file.items) if (item.kind !== "Import") visit(item.body);
}

export { parser };

/** Parses one expression (the `{...}` parts of an interpolated string); null when malformed. */
export function parseExpression(text: string): import("./ast.ts").Expr | null {
  const lexed = T.lexer.tokenize(text);
  if (lexed.errors.length > 0 || lexed.tokens.length === 0 || findExcessiveNesting(lexed.tokens)) return null;
  parser.input = lexed.tokens;
  const cst = parser.expression();
  if (parser.errors.length > 0) return null;
  try {
    return buildExpression(cst, "<string>", text);
  } catch {
    return null;
  }
}
