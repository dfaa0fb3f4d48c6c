// Printing diagnostics and tables for the terminal.
import type { Diagnostic } from "../../grammar/diagnostic.ts";
import { renderDiagnostic } from "../diagnostics/render.ts";

export function printDiagnostics(diagnostics: Diagnostic[], sources: Map<string, string>, out: (s: string) => void = (s) => process.stderr.write(s)): void {
  const color = process.stderr.isTTY === true && !process.env.NO_COLOR;
  for (const d of diagnostics) out(`${renderDiagnostic(d, (f) => sources.get(f), color)}\n\n`);
  const errors = diagnostics.filter((d) => d.severity === "error").length;
  if (errors > 0) out(`${errors} error${errors === 1 ? "" : "s"}\n`);
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** A plain text table: first row is the header; columns listed in `right` are right-aligned. */
export function table(rows: string[][], right: number[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}
