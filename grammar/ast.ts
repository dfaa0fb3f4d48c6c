// The abstract syntax tree of a .drifa file: what the parser's CST visitor produces and what the
// checker and the formatter consume. Every node carries its source span for diagnostics.

export interface Span {
  /** 0-based character offsets into the source, end exclusive. */
  start: number;
  end: number;
  /** 1-based line and column of `start`. */
  line: number;
  col: number;
}

export interface SourceFile {
  kind: "File";
  path: string;
  text: string;
  imports: ImportDecl[];
  blocks: BlockDecl[];
  models: ModelDecl[];
  /** Top-level declarations in source order (imports, blocks and models). */
  items: TopLevel[];
  comments: CommentToken[];
}

export type TopLevel = ImportDecl | BlockDecl | ModelDecl;

export interface CommentToken {
  text: string;
  span: Span;
  doc: boolean;
}

export interface Name {
  text: string;
  span: Span;
}

export interface ImportDecl {
  kind: "Import";
  /** Names imported with `import { A, B } from "..."`; null imports every block of the file. */
  names: Name[] | null;
  path: string;
  pathSpan: Span;
  span: Span;
}

export interface ParamDecl {
  name: Name;
  type: TypeExpr | null;
  default: Expr | null;
  span: Span;
}

export interface BlockDecl {
  kind: "Block";
  name: Name;
  doc: string[];
  params: ParamDecl[];
  returns: TypeExpr[] | null;
  body: Stmt[];
  span: Span;
  /** Span of the closing brace, so a formatter can place trailing comments. */
  endSpan: Span;
}

export interface ModelDecl {
  kind: "Model";
  name: Name;
  doc: string[];
  params: ParamDecl[];
  body: Stmt[];
  span: Span;
  endSpan: Span;
}

// ---- types ---------------------------------------------------------------------------------

export type TypeExpr = TensorType | ScalarType | ListType;

/** `[N, C: 3, H: size, _]`: each dimension has an optional label and a size (or `_`). */
export interface TensorType {
  kind: "TensorType";
  dims: DimExpr[];
  span: Span;
}

export interface DimExpr {
  label: Name | null;
  /** null for `_`: any size. */
  size: Expr | null;
  span: Span;
}

/** `int`, `float`, `bool`, `string`, `block`: compile-time values. */
export interface ScalarType {
  kind: "ScalarType";
  name: Name;
  span: Span;
}

/** `T[]`: a list of T. */
export interface ListType {
  kind: "ListType";
  element: TypeExpr;
  span: Span;
}

// ---- statements ----------------------------------------------------------------------------

export type Stmt =
  | AssignStmt
  | ParamStmt
  | LayerStmt
  | InputStmt
  | ForStmt
  | IfStmt
  | ReturnStmt
  | TaskStmt
  | TrainStmt;

export interface AssignStmt {
  kind: "Assign";
  targets: Name[];
  value: Expr;
  span: Span;
}

/** `param wl: [C] = 1`: a learnable tensor with its shape and initialiser. */
export interface ParamStmt {
  kind: "Param";
  name: Name;
  type: TensorType;
  init: Expr | null;
  span: Span;
}

/** `layer fc = dense(C)`: a layer declared once and applied several times (shared weights). */
export interface LayerStmt {
  kind: "Layer";
  name: Name;
  value: CallExpr;
  span: Span;
}

export interface InputStmt {
  kind: "Input";
  name: Name;
  type: TensorType;
  span: Span;
}

export interface ForStmt {
  kind: "For";
  vars: Name[];
  iterable: Expr;
  body: Stmt[];
  span: Span;
  endSpan: Span;
}

export interface IfStmt {
  kind: "If";
  cond: Expr;
  then: Stmt[];
  /** An `else if` is an else branch holding one IfStmt. */
  otherwise: Stmt[] | null;
  span: Span;
  endSpan: Span;
}

export interface ReturnStmt {
  kind: "Return";
  values: Expr[];
  span: Span;
}

export interface TaskStmt {
  kind: "Task";
  name: Name;
  value: CallExpr;
  span: Span;
}

export interface TrainStmt {
  kind: "Train";
  entries: RecordEntry[];
  span: Span;
  endSpan: Span;
}

export interface RecordEntry {
  key: Name;
  value: Expr;
  span: Span;
}

// ---- expressions ---------------------------------------------------------------------------

export type Expr =
  | NumberLit
  | StringLit
  | BoolLit
  | Ident
  | ListExpr
  | Comprehension
  | CallExpr
  | IndexExpr
  | BinaryExpr
  | UnaryExpr
  | CondExpr
  | NamedExpr
  | ParenExpr;

export interface NumberLit {
  kind: "Number";
  value: number;
  isInt: boolean;
  raw: string;
  span: Span;
}

export interface StringLit {
  kind: "String";
  /** The decoded contents, `{...}` interpolations still in place. */
  value: string;
  raw: string;
  span: Span;
}

export interface BoolLit {
  kind: "Bool";
  value: boolean;
  span: Span;
}

export interface Ident {
  kind: "Ident";
  name: string;
  span: Span;
}

export interface ListExpr {
  kind: "List";
  items: Expr[];
  span: Span;
}

/** `[body for a, b in iterable if cond]` */
export interface Comprehension {
  kind: "Comprehension";
  body: Expr;
  vars: Name[];
  iterable: Expr;
  filter: Expr | null;
  span: Span;
}

export interface Arg {
  /** null for a positional argument. */
  name: Name | null;
  value: Expr;
  span: Span;
}

export interface CallExpr {
  kind: "Call";
  callee: Expr;
  args: Arg[];
  span: Span;
}

export interface IndexExpr {
  kind: "Index";
  target: Expr;
  index: Expr;
  span: Span;
}

export type BinaryOp =
  | "+" | "-" | "*" | "/" | "//" | "%" | "**"
  | "==" | "!=" | "<" | "<=" | ">" | ">="
  | "and" | "or";

export interface BinaryExpr {
  kind: "Binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
  opSpan: Span;
  span: Span;
}

export interface UnaryExpr {
  kind: "Unary";
  op: "-" | "+" | "not";
  operand: Expr;
  span: Span;
}

/** `if c then a else b` */
export interface CondExpr {
  kind: "Cond";
  cond: Expr;
  then: Expr;
  otherwise: Expr;
  span: Span;
}

/** `expr as "stage{s}.block{b}"`: everything `expr` creates is named under this path. */
export interface NamedExpr {
  kind: "Named";
  value: Expr;
  name: StringLit;
  span: Span;
}

/** Kept so that the formatter can preserve the author's parentheses. */
export interface ParenExpr {
  kind: "Paren";
  value: Expr;
  span: Span;
}
