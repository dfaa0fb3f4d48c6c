// `drifac example`: the quickstart's main job on a small built-in example: checks every shipped
// model, prints DRIFA-Net's parameter summary at a small size, checks the compiler's gradients of
// a tiny DRIFA-Net against finite differences in float64, then compiles that network for WebGPU
// and trains it for a few epochs on the built-in synthetic data (when an adapter is present).
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkFile } from "../check/index.ts";
import { trainMain } from "../../runtime/compiled/node.ts";
import { tryAcquireDevice } from "../../runtime/device.ts";
import { compileCommand } from "./compile.ts";
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
  } else return 1;

  const probe = await tryAcquireDevice();
  if (!probe.gpu) {
    io.out(`\nno WebGPU adapter, so no training run: ${probe.reason}\n`);
    return code;
  }
  probe.gpu.destroy();
  const out = path.resolve("runs/example");
  io.out(`\ncompiling DRIFA-Net at width 4, 16x16 for WebGPU (${probe.gpu.adapterName}):\n`);
  code = Math.max(code, await compileCommand(tiny.programs[0], path.join(modelsDir, "drifa.drifa"), path.join(out, "model"), [8], io));
  io.out("\ntraining it for 3 epochs on the synthetic two-modality data (the first epoch compiles the shaders):\n");
  const trained = await trainMain(path.join(out, "model"), ["--synthetic", "--synthetic-size", "128", "--epochs", "3", "--batch", "8", "--seed", "1", "--out", path.join(out, "run"), "--no-progress"]);
  io.out(`\nthe run is in ${path.relative(process.cwd(), path.join(out, "run"))}: metrics.jsonl, best.safetensors\n`);
  return Math.max(code, trained);
}
