// The Prettier plugin for .drifa files: our own parser (grammar/parse.ts) behind Prettier's
// parser interface, and a printer that places comments itself (comments.ts) rather than through
// Prettier's generic attachment, which knows nothing of line comments between arbitrary tokens.
import type { AstPath, Doc, Parser, Plugin, Printer, SupportLanguage } from "prettier";
import type { SourceFile } from "../ast.ts";
import type { Diagnostic } from "../diagnostic.ts";
import { parseSource } from "../parse.ts";
import { CommentMap } from "./comments.ts";
import { DrifaPrinter } from "./printer.ts";

/** What the parser hands the printer. Deliberately without a `comments` key: Prettier would
 * take that over and try to attach the comments its own way. */
export interface DrifaRoot {
  kind: "DrifaRoot";
  file: SourceFile;
  commentMap: CommentMap;
  span: { start: number; end: number };
}

/** A file that does not parse; the message is the first diagnostic as `path:line:col: message`. */
export class FormatError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    const d = diagnostics[0]!;
    super(`${d.file}:${d.span.line}:${d.span.col}: ${d.message}`);
    this.name = "FormatError";
  }
}

export function parseDrifa(text: string, path: string): DrifaRoot {
  const result = parseSource(text, path);
  if (!result.file) {
    if (result.diagnostics.length === 0) throw new Error(`${path}: could not be parsed`);
    throw new FormatError(result.diagnostics);
  }
  return { kind: "DrifaRoot", file: result.file, commentMap: new CommentMap(result.file, result.tokens), span: { start: 0, end: text.length } };
}

type Located = { span?: { start: number; end: number } };

const parser: Parser<Located> = {
  astFormat: "drifa",
  parse: (text, options) => parseDrifa(text, options.filepath ?? "<input>"),
  locStart: (node) => node.span?.start ?? 0,
  locEnd: (node) => node.span?.end ?? 0,
};

const printer: Printer<Located> = {
  print(path: AstPath<Located>): Doc {
    const root = path.node as DrifaRoot;
    if (root.kind !== "DrifaRoot") throw new Error("internal: the drifa printer prints whole files only");
    return new DrifaPrinter(root.commentMap).file();
  },
};

export const languages: SupportLanguage[] = [
  { name: "Drifa", parsers: ["drifa"], extensions: [".drifa"], vscodeLanguageIds: ["drifa"] },
];

export const parsers = { drifa: parser };
export const printers = { drifa: printer };
export const defaultOptions = { printWidth: 100, tabWidth: 2, useTabs: false };

const plugin: Plugin = { languages, parsers, printers, defaultOptions };
export default plugin;
