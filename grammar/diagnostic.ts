// A diagnostic: what went wrong, where, and what to do about it. Produced by every stage from
// the lexer to the checker; rendered for people by compiler/diagnostics/render.ts.
import type { Span } from "./ast.ts";

export type Severity = "error" | "warning";

export interface Diagnostic {
  /** Stable code, documented in docs/language.md (e.g. E202). */
  code: string;
  severity: Severity;
  message: string;
  file: string;
  span: Span;
  /** "did you mean ...?" and other hints. */
  help?: string;
  /** Secondary locations (e.g. the first definition of a duplicate). */
  notes?: { message: string; file: string; span: Span }[];
}

/** Thrown inside a stage to abandon the current unit of work with one diagnostic. */
export class DiagnosticError extends Error {
  constructor(public readonly diagnostic: Diagnostic) {
    super(diagnostic.message);
  }
}

export function spanAt(text: string, start: number, end: number): Span {
  let line = 1;
  let lineStart = 0;
  const limit = Math.min(start, text.length);
  for (let i = 0; i < limit; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { start, end: Math.max(end, start), line, col: start - lineStart + 1 };
}
