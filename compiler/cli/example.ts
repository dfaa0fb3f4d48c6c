// `drifac example`: the quickstart's main job. Checks every shipped model, prints DRIFA-Net's
// parameter summary at a small size and checks the compiler's gradients of a tiny DRIFA-Net
// against finite differences in float64; then, with a WebGPU adapter, the paper's workflow end
// to end on a small configuration: `drifac synth` data in the real layouts, `drifac train`
// (compile, train, evaluate the best checkpoint on the test split, report), `drifac predict
// --mc` (MC-dropout uncertainty) and `drifac gradcam`, each called as a function, not a process.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { checkFile } from "../check/index.ts";
import { synth } from "../../runtime/data/index.ts";
import { tryAcquireDevice } from "../../runtime/device.ts";
import { gradcamCommand } from "./gradcam.ts";
import { gradcheckCommand } from "./ir.ts";
import type { Io } from "./main.ts";
import { renderParams, totalParameters } from "./params.ts";
import { predictCommand } from "./predict.ts";
import { formatCount, printDiagnostics } from "./report.ts";
import { trainCommand } from "./train.ts";

/** The workflow's configuration: small enough for a few minutes on a CPU (lavapipe), large
 * enough (64x64) that DRIFA-Net's last stage has a 2x2 map for Grad-CAM to show. */
const WORKFLOW = { width: "4", size: "64", perClass: 8, epochs: 3, batch: 8, mc: 5, gradcamLimit: 8 };

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
  const rel = (p: string) => path.relative(process.cwd(), p) || ".";
  const data = path.join(out, "data");
  const run = path.join(out, "run");
  // A fresh folder each time: a run left by an older example would otherwise be mixed in.
  fs.rmSync(out, { recursive: true, force: true });
  const { width, size } = WORKFLOW;
  let clock = performance.now();
  /** Seconds since the last call: where the example's minutes go. */
  const lap = () => {
    const now = performance.now();
    const s = ((now - clock) / 1000).toFixed(0);
    clock = now;
    return `(${s} s)`;
  };
  io.out(`\n1. drifac synth --out ${rel(data)} --per-class ${WORKFLOW.perClass} --size ${size}\n`);
  const synthetic = await synth(data, { perClass: WORKFLOW.perClass, size: Number(size), seed: 0 });
  io.out(`   ${synthetic.counts.skin} skin images (HAM10000 layout), ${synthetic.counts.cervix} cervix images (SIPaKMeD layout) ${lap()}\n`);
  const dataArgs = [`skin=${synthetic.skin}`, `cervix=${synthetic.cervix}`];
  const file = path.join(modelsDir, "drifa.drifa");
  const settings = { width, size };
  const workflow = checkFile(file, { settings });
  printDiagnostics(workflow.diagnostics, workflow.sources, io.err);
  if (!workflow.programs[0]) return 1;
  io.out(`\n2. drifac train models/drifa.drifa --set width=${width},size=${size} --data skin=... --data cervix=... --epochs ${WORKFLOW.epochs} --batch ${WORKFLOW.batch} --out ${rel(run)}\n`);
  io.out("   (compiles for WebGPU, trains, evaluates the best checkpoint on the test split; the first epoch compiles the shaders)\n");
  const trained = await trainCommand(workflow.programs[0], file, { set: settings, data: dataArgs, out: run, epochs: WORKFLOW.epochs, batch: WORKFLOW.batch, seed: 1, progress: false }, io);
  if (trained !== 0) return trained;
  io.out(`   ${lap()}\n`);
  io.out(`\n3. drifac predict ${rel(run)} --data skin=... --data cervix=... --mc ${WORKFLOW.mc} --top 3\n`);
  const predicted = await predictCommand(run, { data: dataArgs, mc: WORKFLOW.mc, seed: 0, top: 3 }, io);
  if (predicted !== 0) return predicted;
  io.out(`   ${lap()}\n`);
  const cams = path.join(run, "report", "gradcam");
  io.out(`\n4. drifac gradcam ${rel(run)} --data skin=... --data cervix=... --limit ${WORKFLOW.gradcamLimit} --out ${rel(cams)}\n`);
  const explained = await gradcamCommand(run, { data: dataArgs, out: cams, limit: WORKFLOW.gradcamLimit }, io);
  if (explained !== 0) return explained;
  io.out(`   ${lap()}\n`);
  const report = path.join(run, "report");
  io.out(`\nthe report is in ${rel(report)}: index.html (evaluation on the test split: metrics, curves, confusion matrices),\n`);
  io.out(`uncertain.html (MC-dropout uncertainty), gradcam/index.html (Grad-CAM overlays); the run's checkpoint, metrics and\n`);
  io.out(`eval.json are in ${rel(run)}\n`);
  return code;
}
