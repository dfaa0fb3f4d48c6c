// `drifac fmt`: formats .drifa files through the Prettier plugin (grammar/format/). Files with
// syntax errors are reported and left untouched; a rewrite is atomic (temporary file, fsync,
// rename), so an interrupted run never leaves a half-written source file.
import fs from "node:fs";
import { parseSource } from "../../grammar/parse.ts";
import { writeFileAtomic } from "../../runtime/checkpoint/file.ts";
import { displayPath } from "../check/modules.ts";
import type { Io } from "./main.ts";
import { printDiagnostics } from "./report.ts";

export async function fmtCommand(files: string[], check: boolean, io: Io): Promise<number> {
  // Loaded on demand: Prettier is large and only this command needs it.
  const { formatDrifa } = await import("../../grammar/format/index.ts");
  let code = 0;
  let changed = 0;
  for (const file of files) {
    const shown = displayPath(file);
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      io.err(`${shown}: cannot read: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}\n`);
      code = 1;
      continue;
    }
    const parsed = parseSource(text, shown);
    if (!parsed.file) {
      printDiagnostics(parsed.diagnostics, new Map([[shown, text]]), io.err);
      code = 1;
      continue;
    }
    const formatted = await formatDrifa(text, shown);
    if (formatted === text) continue;
    changed++;
    if (check) {
      io.out(`would reformat ${shown}\n`);
      code = 1;
    } else {
      writeFileAtomic(file, [new TextEncoder().encode(formatted)]);
      io.out(`formatted ${shown}\n`);
    }
  }
  if (check && changed === 0 && code === 0) io.out(`${files.length} file${files.length === 1 ? "" : "s"} already formatted\n`);
  return code;
}
