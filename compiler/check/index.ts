// The front end's entry point: load a file with its imports, resolve names, elaborate its
// models (or check its blocks generically when it is a library), and collect diagnostics.
import { type Diagnostic, DiagnosticError } from "../../grammar/diagnostic.ts";
import { checkBlocksGeneric, elaborateModel, type Settings } from "./model.ts";
import { loadModules, type Module } from "./modules.ts";
import type { Program } from "./program.ts";
import { resolveNames } from "./resolve.ts";

export interface CheckResult {
  diagnostics: Diagnostic[];
  programs: Program[];
  /** Source text by displayed path, for rendering diagnostics. */
  sources: Map<string, string>;
  entry: Module | null;
}

export interface CheckOptions {
  settings?: Settings;
  /** Elaborate only this model of the file. */
  model?: string;
}

/** Converts anything thrown by a stage into a diagnostic: no stack trace ever reaches a user. */
export function asDiagnostic(e: unknown, file: string): Diagnostic {
  if (e instanceof DiagnosticError) return e.diagnostic;
  const span = { start: 0, end: 0, line: 1, col: 1 };
  if (e instanceof RangeError) {
    return { code: "E401", severity: "error", message: "the program is nested too deeply to check (recursion limit)", file, span };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: "E999", severity: "error", message: `internal compiler error: ${message}`, file, span, help: "please report this with the file that caused it" };
}

export function checkFile(path: string, options: CheckOptions = {}, source?: string): CheckResult {
  const sources = new Map<string, string>();
  const programs: Program[] = [];
  let loaded;
  try {
    loaded = loadModules(path, undefined, source);
  } catch (e) {
    return { diagnostics: [asDiagnostic(e, path)], programs, sources, entry: null };
  }
  for (const [file, text] of loaded.texts) sources.set(file, text);
  const diagnostics = [...loaded.diagnostics];
  const entry = loaded.entry;
  if (diagnostics.length > 0 || !entry) return { diagnostics, programs, sources, entry };
  try {
    for (const m of loaded.modules.values()) diagnostics.push(...resolveNames(m));
    if (diagnostics.length > 0) return { diagnostics, programs, sources, entry };
    const models = options.model ? entry.file.models.filter((m) => m.name.text === options.model) : entry.file.models;
    if (options.model && models.length === 0) {
      programs.push(elaborateModel(entry, options.settings, options.model));
    }
    for (const m of models) {
      try {
        programs.push(elaborateModel(entry, options.settings, m.name.text));
      } catch (e) {
        diagnostics.push(asDiagnostic(e, entry.display));
      }
    }
    if (entry.file.models.length === 0) diagnostics.push(...checkBlocksGeneric(entry));
  } catch (e) {
    diagnostics.push(asDiagnostic(e, entry.display));
  }
  return { diagnostics, programs, sources, entry };
}
