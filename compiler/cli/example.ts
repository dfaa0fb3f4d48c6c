// `drifac example`: the quickstart's main job. Until code generation lands, it checks every
// shipped model, prints the parameter summary of DRIFA-Net at a small size, and checks the
// compiler's gradients of a tiny DRIFA-Net against finite differences in float64.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkFile } from "../check/index.ts";
import { gradcheckCommand } from "./ir.ts";
import type { Io } from "./main.ts";
import { renderParams, totalParameters } from "./params.ts";
import { formatCount, printDiagnostics } from "./report.ts";

export async function exampleCommand(io: Io): Promise<number> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
  const modelsDir = path.join(root, "models");
  const files = fs.readdirSync(modelsDir).filter((f) => f.endsWith(".drifa")).sort();
  let code = 0;
  io.out(`checking ${files.length} models in ${path.relative(process.cwd(), modelsDir) || "."}\n`);
  for (const f of files) {
    const r = checkFile(path.join(modelsDir, f));
    printDiagnostics(r.diagnostics, r.sources, io.err);
    if (r.diagnostics.length > 0) code = 1;
    for (const p of r.programs) io.out(`  ${f}: ${p.model}, ${p.inputs.length} modalities, ${p.tasks.length} tasks, ${formatCount(totalParameters(p))} parameters\n`);
  }
  const small = checkFile(path.join(modelsDir, "drifa.drifa"), { settings: { width: "16", size: "64" } });
  printDiagnostics(small.diagnostics, small.sources, io.err);
  if (small.programs[0]) io.out(`\nDRIFA-Net at width 16, 64x64:\n${renderParams(small.programs[0])}\n`);
  else code = 1;
  const tiny = checkFile(path.join(modelsDir, "drifa.drifa"), { settings: { width: "4", size: "16" } });
  if (tiny.programs[0]) {
    io.out("\nautodiff against finite differences, DRIFA-Net at width 4, 16x16, batch 2:\n");
    code = Math.max(code, gradcheckCommand(tiny.programs[0], { batch: 2, seed: 1, samples: 4, tolerance: 1e-5 }, io));
  } else code = 1;
  return code;
}
