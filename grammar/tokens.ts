// Tokens of the .drifa language. Newlines are insignificant: every statement starts with a
// keyword or with `name =` / `a, b =`, so the grammar never needs them to find a boundary.
import { createToken, Lexer, type TokenType } from "chevrotain";

export const Identifier = createToken({ name: "Identifier", pattern: /[A-Za-z_][A-Za-z0-9_]*/ });

function keyword(word: string): TokenType {
  return createToken({ name: word[0]!.toUpperCase() + word.slice(1), pattern: word, longer_alt: Identifier });
}

export const Import = keyword("import");
export const From = keyword("from");
export const Block = keyword("block");
export const Model = keyword("model");
export const Input = keyword("input");
export const Param = keyword("param");
export const Layer = keyword("layer");
export const Return = keyword("return");
export const For = keyword("for");
export const In = keyword("in");
export const If = keyword("if");
export const Then = keyword("then");
export const Else = keyword("else");
export const Task = keyword("task");
export const Train = keyword("train");
export const As = keyword("as");
export const And = keyword("and");
export const Or = keyword("or");
export const Not = keyword("not");
export const True = keyword("true");
export const False = keyword("false");

export const DocComment = createToken({ name: "DocComment", pattern: /##[^\n\r]*/, group: "comments" });
export const Comment = createToken({ name: "Comment", pattern: /#[^\n\r]*/, group: "comments" });
export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });

// Numbers: a float has a fraction or an exponent; everything else is an integer.
export const FloatLiteral = createToken({ name: "FloatLiteral", pattern: /\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+/ });
export const IntLiteral = createToken({ name: "IntLiteral", pattern: /\d+/ });
export const StringLiteral = createToken({ name: "StringLiteral", pattern: /"(?:[^"\\\n\r]|\\.)*"/ });

export const Arrow = createToken({ name: "Arrow", pattern: "->" });
export const EqEq = createToken({ name: "EqEq", pattern: "==" });
export const NotEq = createToken({ name: "NotEq", pattern: "!=" });
export const LessEq = createToken({ name: "LessEq", pattern: "<=" });
export const GreaterEq = createToken({ name: "GreaterEq", pattern: ">=" });
export const Less = createToken({ name: "Less", pattern: "<" });
export const Greater = createToken({ name: "Greater", pattern: ">" });
export const Power = createToken({ name: "Power", pattern: "**" });
export const FloorDiv = createToken({ name: "FloorDiv", pattern: "//" });
export const Plus = createToken({ name: "Plus", pattern: "+" });
export const Minus = createToken({ name: "Minus", pattern: "-" });
export const Star = createToken({ name: "Star", pattern: "*" });
export const Slash = createToken({ name: "Slash", pattern: "/" });
export const Percent = createToken({ name: "Percent", pattern: "%" });
export const Assign = createToken({ name: "Assign", pattern: "=" });
export const Colon = createToken({ name: "Colon", pattern: ":" });
export const Comma = createToken({ name: "Comma", pattern: "," });
export const LParen = createToken({ name: "LParen", pattern: "(" });
export const RParen = createToken({ name: "RParen", pattern: ")" });
export const LBracket = createToken({ name: "LBracket", pattern: "[" });
export const RBracket = createToken({ name: "RBracket", pattern: "]" });
export const LBrace = createToken({ name: "LBrace", pattern: "{" });
export const RBrace = createToken({ name: "RBrace", pattern: "}" });

export const keywords = [
  Import, From, Block, Model, Input, Param, Layer, Return, For, In, If, Then, Else, Task, Train,
  As, And, Or, Not, True, False,
];

export const allTokens: TokenType[] = [
  WhiteSpace, DocComment, Comment,
  ...keywords,
  Identifier, FloatLiteral, IntLiteral, StringLiteral,
  Arrow, EqEq, NotEq, LessEq, GreaterEq, Less, Greater, Power, FloorDiv,
  Plus, Minus, Star, Slash, Percent, Assign, Colon, Comma,
  LParen, RParen, LBracket, RBracket, LBrace, RBrace,
];

export const lexer = new Lexer(allTokens, { positionTracking: "full", ensureOptimizations: false });

export const keywordNames = new Set(keywords.map((k) => k.PATTERN as string));
