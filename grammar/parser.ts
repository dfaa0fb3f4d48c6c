// The Chevrotain parser: tokens to a concrete syntax tree. Grammar only; the meaning of the
// tree is given by the visitor (visitor.ts) and the checker (compiler/).
import { CstParser, type CstNode, type IToken } from "chevrotain";
import { errorMessages } from "./messages.ts";
import * as T from "./tokens.ts";

export class DrifaParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: "full", errorMessageProvider: errorMessages });
    this.performSelfAnalysis();
  }

  file = this.RULE("file", () => {
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.importDecl) },
        { ALT: () => this.SUBRULE(this.blockDecl) },
        { ALT: () => this.SUBRULE(this.modelDecl) },
      ]);
    });
  });

  importDecl = this.RULE("importDecl", () => {
    this.CONSUME(T.Import);
    this.OPTION(() => {
      this.CONSUME(T.LBrace);
      this.CONSUME(T.Identifier, { LABEL: "names" });
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.CONSUME2(T.Identifier, { LABEL: "names" });
      });
      this.CONSUME(T.RBrace);
      this.CONSUME(T.From);
    });
    this.CONSUME(T.StringLiteral);
  });

  blockDecl = this.RULE("blockDecl", () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.paramList);
    this.OPTION(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.returnType);
    });
    this.SUBRULE(this.body);
  });

  modelDecl = this.RULE("modelDecl", () => {
    this.CONSUME(T.Model);
    this.CONSUME(T.Identifier);
    this.SUBRULE(this.paramList);
    this.SUBRULE(this.body);
  });

  paramList = this.RULE("paramList", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.paramDecl);
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RParen,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.paramDecl);
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: "trailingComma" }));
    });
    this.CONSUME(T.RParen);
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Assign);
      this.SUBRULE(this.expression);
    });
  });

  returnType = this.RULE("returnType", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.typeExpr);
          this.MANY(() => {
            this.CONSUME(T.Comma);
            this.SUBRULE2(this.typeExpr);
          });
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE3(this.typeExpr) },
    ]);
  });

  typeExpr = this.RULE("typeExpr", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.tensorType) },
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.CONSUME(T.Block, { LABEL: "Identifier" }) },
    ]);
    this.MANY(() => {
      this.CONSUME(T.LBracket, { LABEL: "listOpen" });
      this.CONSUME(T.RBracket, { LABEL: "listClose" });
    });
  });

  tensorType = this.RULE("tensorType", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.dim);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.dim);
      });
    });
    this.CONSUME(T.RBracket);
  });

  dim = this.RULE("dim", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Colon,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: "label" });
        this.CONSUME(T.Colon);
      },
    });
    this.SUBRULE(this.additive);
  });

  body = this.RULE("body", () => {
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.statement));
    this.CONSUME(T.RBrace);
  });

  statement = this.RULE("statement", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.paramStmt) },
      { ALT: () => this.SUBRULE(this.layerStmt) },
      { ALT: () => this.SUBRULE(this.inputStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.taskStmt) },
      { ALT: () => this.SUBRULE(this.trainStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
    ]);
  });

  paramStmt = this.RULE("paramStmt", () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.tensorType);
    this.OPTION(() => {
      this.CONSUME(T.Assign);
      this.SUBRULE(this.expression);
    });
  });

  layerStmt = this.RULE("layerStmt", () => {
    this.CONSUME(T.Layer);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expression);
  });

  inputStmt = this.RULE("inputStmt", () => {
    this.CONSUME(T.Input);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.tensorType);
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier, { LABEL: "vars" });
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier, { LABEL: "vars" });
    });
    this.CONSUME(T.In);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.body);
  });

  ifStmt = this.RULE("ifStmt", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expression);
    this.SUBRULE(this.body, { LABEL: "then" });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        { ALT: () => this.SUBRULE(this.ifStmt, { LABEL: "elseIf" }) },
        { ALT: () => this.SUBRULE2(this.body, { LABEL: "otherwise" }) },
      ]);
    });
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.SUBRULE(this.expression);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.expression);
    });
  });

  taskStmt = this.RULE("taskStmt", () => {
    this.CONSUME(T.Task);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.expression);
  });

  trainStmt = this.RULE("trainStmt", () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.LBrace);
    this.MANY(() => {
      this.SUBRULE(this.recordEntry);
      this.OPTION(() => this.CONSUME(T.Comma));
    });
    this.CONSUME(T.RBrace);
  });

  recordEntry = this.RULE("recordEntry", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.expression);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.CONSUME(T.Identifier, { LABEL: "targets" });
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.CONSUME2(T.Identifier, { LABEL: "targets" });
    });
    this.CONSUME(T.Assign);
    this.SUBRULE(this.expression);
  });

  // ---- expressions, lowest precedence first ----------------------------------------------

  expression = this.RULE("expression", () => {
    this.SUBRULE(this.condExpr);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.StringLiteral);
    });
  });

  condExpr = this.RULE("condExpr", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.If);
          this.SUBRULE(this.expression, { LABEL: "cond" });
          this.CONSUME(T.Then);
          this.SUBRULE2(this.expression, { LABEL: "then" });
          this.CONSUME(T.Else);
          this.SUBRULE3(this.expression, { LABEL: "otherwise" });
        },
      },
      { ALT: () => this.SUBRULE(this.orExpr) },
    ]);
  });

  orExpr = this.RULE("orExpr", () => {
    this.SUBRULE(this.andExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.Or, { LABEL: "ops" });
      this.SUBRULE2(this.andExpr, { LABEL: "operands" });
    });
  });

  andExpr = this.RULE("andExpr", () => {
    this.SUBRULE(this.notExpr, { LABEL: "operands" });
    this.MANY(() => {
      this.CONSUME(T.And, { LABEL: "ops" });
      this.SUBRULE2(this.notExpr, { LABEL: "operands" });
    });
  });

  notExpr = this.RULE("notExpr", () => {
    this.OR([
      {
        ALT: () => {
          this.CONSUME(T.Not);
          this.SUBRULE(this.notExpr);
        },
      },
      { ALT: () => this.SUBRULE(this.comparison) },
    ]);
  });

  comparison = this.RULE("comparison", () => {
    this.SUBRULE(this.additive, { LABEL: "operands" });
    this.OPTION(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.EqEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.NotEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.LessEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.GreaterEq, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Less, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Greater, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.additive, { LABEL: "operands" });
    });
  });

  additive = this.RULE("additive", () => {
    this.SUBRULE(this.multiplicative, { LABEL: "operands" });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Plus, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Minus, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.multiplicative, { LABEL: "operands" });
    });
  });

  multiplicative = this.RULE("multiplicative", () => {
    this.SUBRULE(this.unary, { LABEL: "operands" });
    this.MANY(() => {
      this.OR([
        { ALT: () => this.CONSUME(T.Star, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Slash, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.FloorDiv, { LABEL: "ops" }) },
        { ALT: () => this.CONSUME(T.Percent, { LABEL: "ops" }) },
      ]);
      this.SUBRULE2(this.unary, { LABEL: "operands" });
    });
  });

  unary = this.RULE("unary", () => {
    this.OR([
      {
        ALT: () => {
          this.OR2([
            { ALT: () => this.CONSUME(T.Minus, { LABEL: "op" }) },
            { ALT: () => this.CONSUME(T.Plus, { LABEL: "op" }) },
          ]);
          this.SUBRULE(this.unary);
        },
      },
      { ALT: () => this.SUBRULE(this.power) },
    ]);
  });

  power = this.RULE("power", () => {
    this.SUBRULE(this.postfix);
    this.OPTION(() => {
      this.CONSUME(T.Power);
      this.SUBRULE(this.unary, { LABEL: "exponent" });
    });
  });

  postfix = this.RULE("postfix", () => {
    this.SUBRULE(this.primary);
    this.MANY(() => {
      this.OR([
        { ALT: () => this.SUBRULE(this.callSuffix, { LABEL: "suffixes" }) },
        { ALT: () => this.SUBRULE(this.indexSuffix, { LABEL: "suffixes" }) },
      ]);
    });
  });

  callSuffix = this.RULE("callSuffix", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY({
        GATE: () => this.LA(2).tokenType !== T.RParen,
        DEF: () => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.arg);
        },
      });
      this.OPTION2(() => this.CONSUME2(T.Comma, { LABEL: "trailingComma" }));
    });
    this.CONSUME(T.RParen);
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.expression);
    this.CONSUME(T.RBracket);
  });

  arg = this.RULE("arg", () => {
    this.OPTION({
      GATE: () => this.LA(2).tokenType === T.Colon,
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: "name" });
        this.CONSUME(T.Colon);
      },
    });
    this.SUBRULE(this.expression);
  });

  primary = this.RULE("primary", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.FloatLiteral) },
      { ALT: () => this.CONSUME(T.IntLiteral) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.Identifier) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.expression);
          this.CONSUME(T.RParen);
        },
      },
      { ALT: () => this.SUBRULE(this.listExpr) },
    ]);
  });

  listExpr = this.RULE("listExpr", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expression, { LABEL: "items" });
      this.OR([
        {
          ALT: () => {
            this.CONSUME(T.For);
            this.CONSUME(T.Identifier, { LABEL: "vars" });
            this.MANY(() => {
              this.CONSUME(T.Comma);
              this.CONSUME2(T.Identifier, { LABEL: "vars" });
            });
            this.CONSUME(T.In);
            this.SUBRULE(this.orExpr, { LABEL: "iterable" });
            this.OPTION3(() => {
              this.CONSUME(T.If);
              this.SUBRULE2(this.orExpr, { LABEL: "filter" });
            });
          },
        },
        {
          ALT: () => {
            this.MANY2({
              GATE: () => this.LA(2).tokenType !== T.RBracket,
              DEF: () => {
                this.CONSUME2(T.Comma);
                this.SUBRULE2(this.expression, { LABEL: "items" });
              },
            });
            this.OPTION4(() => this.CONSUME3(T.Comma, { LABEL: "trailingComma" }));
          },
        },
      ]);
    });
    this.CONSUME(T.RBracket);
  });
}

/** One parser instance is reused: Chevrotain parsers are built once and reset per input. */
export const parser = new DrifaParser();

export function parseTokens(tokens: IToken[]): { cst: CstNode; errors: typeof parser.errors } {
  parser.input = tokens;
  const cst = parser.file();
  return { cst, errors: parser.errors };
}
