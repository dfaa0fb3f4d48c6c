// Diagnostics for people: code, message, file:line:col, the source line with a caret under the
// offending span, and any help or notes. The same format for every stage.
import type { Diagnostic } from "../../grammar/diagnostic.ts";

export type SourceLookup = (file: string) => string | undefined;

function sourceLine(text: string, line: number): string {
  return text.split(/\r?\n/)[line - 1] ?? "";
}

function excerpt(text: string | undefined, line: number, col: number, length: number): string[] {
  if (text === undefined) return [];
  const src = sourceLine(text, line).replace(/\t/g, " ");
  const gutter = String(line).length;
  const pad = " ".repeat(gutter);
  const width = Math.max(1, Math.min(length, src.length - col + 1));
  return [`${pad} |`, `${line} | ${src}`, `${pad} | ${" ".repeat(Math.max(0, col - 1))}${"^".repeat(width)}`];
}

export function renderDiagnostic(d: Diagnostic, lookup: SourceLookup, color = false): string {
  const red = (s: string) => (color ? `\x1b[1;31m${s}\x1b[0m` : s);
  const bold = (s: string) => (color ? `\x1b[1m${s}\x1b[0m` : s);
  const out = [`${red(`${d.severity}[${d.code}]`)}: ${bold(d.message)}`, `  --> ${d.file}:${d.span.line}:${d.span.col}`];
  const text = lookup(d.file);
  const firstLineEnd = text ? text.indexOf("\n", d.span.start) : -1;
  const length = (firstLineEnd >= 0 ? Math.min(d.span.end, firstLineEnd) : d.span.end) - d.span.start;
  out.push(...excerpt(text, d.span.line, d.span.col, length));
  if (d.help) out.push(`  = help: ${d.help}`);
  for (const n of d.notes ?? []) {
    out.push(`  = note: ${n.message} at ${n.file}:${n.span.line}:${n.span.col}`);
  }
  return out.join("\n");
}
