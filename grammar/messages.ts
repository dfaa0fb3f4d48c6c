// Syntax error messages in the user's terms ("expected ')', found 'x' in a call's arguments")
// instead of Chevrotain's token-type dumps.
import type { IParserErrorMessageProvider, IToken, TokenType } from "chevrotain";
import * as T from "./tokens.ts";

const tokenDescriptions = new Map<TokenType, string>([
  [T.Identifier, "a name"],
  [T.IntLiteral, "an integer"],
  [T.FloatLiteral, "a number"],
  [T.StringLiteral, "a string"],
]);

export function describeTokenType(t: TokenType): string {
  return tokenDescriptions.get(t) ?? (typeof t.PATTERN === "string" ? `'${t.PATTERN}'` : t.name);
}

function describeToken(t: IToken | undefined): string {
  if (!t || t.tokenType.name === "EOF") return "end of file";
  return `'${t.image}'`;
}

const ruleContext: Record<string, string> = {
  file: "at the top level (expected 'import', 'block' or 'model')",
  importDecl: "in an import",
  blockDecl: "in a block declaration",
  modelDecl: "in a model declaration",
  paramList: "in a parameter list",
  paramDecl: "in a parameter",
  tensorType: "in a shape",
  typeExpr: "in a type",
  dim: "in a dimension",
  body: "in a body",
  statement: "where a statement was expected",
  assignStmt: "in an assignment",
  forStmt: "in a for loop",
  ifStmt: "in an if statement",
  trainStmt: "in a train section",
  recordEntry: "in a train setting",
  taskStmt: "in a task",
  callSuffix: "in a call's arguments",
  listExpr: "in a list",
  primary: "where an expression was expected",
  expression: "where an expression was expected",
  condExpr: "where an expression was expected",
  orExpr: "where an expression was expected",
  andExpr: "where an expression was expected",
  notExpr: "where an expression was expected",
  comparison: "where an expression was expected",
  additive: "where an expression was expected",
  multiplicative: "where an expression was expected",
  unary: "where an expression was expected",
  power: "where an expression was expected",
  postfix: "where an expression was expected",
};

function expectedFromPaths(paths: TokenType[][][] | TokenType[][]): string {
  const firsts = new Set<string>();
  const flat = (paths as unknown[]).flat(1) as TokenType[][];
  for (const path of flat) {
    const first = Array.isArray(path) ? path[0] : (path as unknown as TokenType);
    if (first) firsts.add(describeTokenType(first));
  }
  const list = [...firsts];
  if (list.length === 0) return "";
  if (list.length > 6) return "";
  return list.length === 1 ? list[0]! : `one of ${list.join(", ")}`;
}

export const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual, ruleName }) {
    if (expected.name === "EOF") return `unexpected ${describeToken(actual)} at the top level (expected 'import', 'block' or 'model')`;
    const where = ruleContext[ruleName] ? ` ${ruleContext[ruleName]}` : "";
    return `expected ${describeTokenType(expected)}, found ${describeToken(actual)}${where}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${describeToken(firstRedundant)} at the top level (expected 'import', 'block' or 'model')`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const expected = expectedFromPaths(expectedPathsPerAlt);
    const where = ruleContext[ruleName] ? ` ${ruleContext[ruleName]}` : "";
    return `unexpected ${describeToken(actual[0])}${where}${expected ? `; expected ${expected}` : ""}`;
  },
  buildEarlyExitMessage({ expectedIterationPaths, actual, ruleName }) {
    const expected = expectedFromPaths(expectedIterationPaths);
    const where = ruleContext[ruleName] ? ` ${ruleContext[ruleName]}` : "";
    return `unexpected ${describeToken(actual[0])}${where}${expected ? `; expected ${expected}` : ""}`;
  },
};

