// Loading a .drifa file with its imports: relative paths, each file parsed once, cycles
// detected and reported with the chain of files, and for each file the map of block names it
// can see (its own blocks and everything it imports, which it also passes on to its importers).
import fs from "node:fs";
import path from "node:path";
import type { BlockDecl, ImportDecl, SourceFile } from "../../grammar/ast.ts";
import type { Diagnostic } from "../../grammar/diagnostic.ts";
import { parseSource } from "../../grammar/parse.ts";
import { closest } from "../diagnostics/suggest.ts";
import type { BlockRef } from "./values.ts";

export interface Module {
  /** Absolute path. */
  path: string;
  /** Path as shown to the user (relative to the working directory). */
  display: string;
  file: SourceFile;
  /** Every block name visible in this file. */
  scope: Map<string, BlockRef>;
}

export interface LoadResult {
  entry: Module | null;
  modules: Map<string, Module>;
  diagnostics: Diagnostic[];
  /** Every file read, by displayed path, including those that failed to parse. */
  texts: Map<string, string>;
}

export function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel && !rel.startsWith("..") ? rel : p;
}

export type ReadFile = (absPath: string) => string;

const defaultRead: ReadFile = (p) => fs.readFileSync(p, "utf8");

/** Loads `entry` and, transitively, its imports. Diagnostics of every file are collected. */
export function loadModules(entry: string, read: ReadFile = defaultRead, source?: string): LoadResult {
  const modules = new Map<string, Module>();
  const diagnostics: Diagnostic[] = [];
  const state = new Map<string, "loading" | "done" | "failed">();
  const texts = new Map<string, string>();

  const load = (abs: string, text: string | null, stack: string[]): Module | null => {
    const status = state.get(abs);
    if (status === "done") return modules.get(abs)!;
    if (status === "failed") return null;
    state.set(abs, "loading");
    const display = displayPath(abs);
    if (text === null) text = read(abs);
    texts.set(display, text);
    const parsed = parseSource(text, display);
    diagnostics.push(...parsed.diagnostics);
    if (!parsed.file) {
      state.set(abs, "failed");
      return null;
    }
    const file = parsed.file;
    const scope = new Map<string, BlockRef>();
    const mod: Module = { path: abs, display, file, scope };
    const define = (decl: BlockDecl, ref: BlockRef, span = decl.name.span) => {
      const existing = scope.get(decl.name.text);
      if (existing && existing.decl !== decl) {
        diagnostics.push({
          code: "E205",
          severity: "error",
          message: `block '${decl.name.text}' is defined more than once`,
          file: display,
          span,
          notes: [{ message: "the other definition", file: existing.file, span: existing.decl.name.span }],
        });
        return;
      }
      scope.set(decl.name.text, ref);
    };
    for (const decl of file.blocks) define(decl, { decl, file: display, scope });
    let ok = true;
    for (const imp of file.imports) {
      const target = resolveImport(imp, abs, display, diagnostics);
      if (!target) {
        ok = false;
        continue;
      }
      if (state.get(target) === "loading") {
        const chain = [...stack, abs, target].slice(stack.indexOf(target) >= 0 ? stack.indexOf(target) : 0).map(displayPath);
        diagnostics.push({
          code: "E203",
          severity: "error",
          message: `import cycle: ${chain.join(" -> ")}`,
          file: display,
          span: imp.pathSpan,
          help: "move the shared blocks into a file that both can import",
        });
        ok = false;
        continue;
      }
      let targetText: string;
      try {
        targetText = read(target);
      } catch {
        diagnostics.push({
          code: "E202",
          severity: "error",
          message: `cannot read imported file '${imp.path}' (${displayPath(target)})`,
          file: display,
          span: imp.pathSpan,
        });
        ok = false;
        continue;
      }
      const imported = load(target, targetText, [...stack, abs]);
      if (!imported) {
        ok = false;
        continue;
      }
      if (imp.names === null) {
        for (const [, ref] of imported.scope) define(ref.decl, ref, imp.pathSpan);
      } else {
        for (const n of imp.names) {
          const ref = imported.scope.get(n.text);
          if (!ref) {
            const suggestion = closest(n.text, [...imported.scope.keys()]);
            diagnostics.push({
              code: "E204",
              severity: "error",
              message: `'${imp.path}' has no block '${n.text}'`,
              file: display,
              span: n.span,
              help: suggestion ? `did you mean '${suggestion}'?` : undefined,
            });
            ok = false;
            continue;
          }
          define(ref.decl, ref, n.span);
        }
      }
    }
    modules.set(abs, mod);
    state.set(abs, ok ? "done" : "failed");
    return ok ? mod : null;
  };

  const abs = path.resolve(entry);
  let text: string;
  try {
    text = source ?? read(abs);
  } catch (e) {
    diagnostics.push({
      code: "E202",
      severity: "error",
      message: `cannot read '${entry}': ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
      file: entry,
      span: { start: 0, end: 0, line: 1, col: 1 },
    });
    return { entry: null, modules, diagnostics, texts };
  }
  const mod = load(abs, text, []);
  return { entry: mod, modules, diagnostics, texts };
}

function resolveImport(imp: ImportDecl, from: string, display: string, diagnostics: Diagnostic[]): string | null {
  if (!imp.path.startsWith("./") && !imp.path.startsWith("../")) {
    diagnostics.push({
      code: "E202",
      severity: "error",
      message: `import paths are relative to the importing file: write "./${imp.path}"`,
      file: display,
      span: imp.pathSpan,
    });
    return null;
  }
  const target = path.resolve(path.dirname(from), imp.path);
  if (!fs.existsSync(target) || !fs.statSync(target).isFile()) {
    diagnostics.push({
      code: "E202",
      severity: "error",
      message: `imported file '${imp.path}' not found (looked for ${displayPath(target)})`,
      file: display,
      span: imp.pathSpan,
    });
    return null;
  }
  return target;
}
