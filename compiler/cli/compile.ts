// `drifac compile FILE -o DIR`: WGSL kernels, the host module (TypeScript and JavaScript), the
// trainer entry point, the bundled runtime and manifest.json. The folder is written next to
// the target and renamed into place, so a failed compile never leaves a half-written folder.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { displayPath } from "../check/modules.ts";
import type { Program } from "../check/program.ts";
import { bundleRuntime } from "../codegen/emit/bundle.ts";
import { hostFiles } from "../codegen/emit/host.ts";
import { compileProgram } from "../codegen/emit/manifest.ts";
import { renderFusionReport } from "../codegen/fusion-report.ts";
import { planTrainStep } from "../codegen/train-plan.ts";
import { differentiateModel } from "../ir/autodiff.ts";
import { lower } from "../ir/lower.ts";
import type { Io } from "./main.ts";
import { formatCount } from "./report.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;

export interface CompileCommandOptions {
  /** false: one kernel per IR value (--no-fuse). */
  fuse?: boolean;
  /** Print what fused into each kernel of the training step, and what did not and why. */
  report?: boolean;
}

export async function compileCommand(program: Program, file: string, out: string, batches: number[], io: Io, options: CompileCommandOptions = {}): Promise<number> {
  const started = performance.now();
  const fuse = options.fuse ?? true;
  const { manifest, shaders } = compileProgram(
    program,
    batches,
    { file, compiler: version, drifac: path.join(root, "compiler/drifac.js") },
    {
      fuse,
      onTrainPlan: (batch, plan) => {
        if (!options.report) return;
        const unfused = fuse ? planTrainStep(differentiateModel(lower(program, { batch, mode: "train" })), { fuse: false }).summary.dispatches : plan.summary.dispatches;
        io.out(renderFusionReport(`${program.model}, training step at batch ${batch}`, plan.graph, plan.fusion, unfused));
      },
    },
  );
  const planned = performance.now();
  const host = await hostFiles(manifest);
  const [nodeRuntime, browserRuntime] = await Promise.all([bundleRuntime("node"), bundleRuntime("browser")]);
  const target = path.resolve(out);
  const staging = `${target}.drifa-compile-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(path.join(staging, "kernels"), { recursive: true });
  for (const [name, text] of shaders) fs.writeFileSync(path.join(staging, name), text);
  for (const [name, text] of Object.entries(host)) fs.writeFileSync(path.join(staging, name), text);
  fs.chmodSync(path.join(staging, "train.js"), 0o755);
  fs.writeFileSync(path.join(staging, "runtime.js"), nodeRuntime);
  fs.writeFileSync(path.join(staging, "runtime.browser.js"), browserRuntime);
  fs.writeFileSync(path.join(staging, "manifest.json"), `${JSON.stringify(manifest)}\n`);
  fs.writeFileSync(path.join(staging, "package.json"), `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`);
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(staging, target);
  const shown = displayPath(target);
  io.out(`${program.model} -> ${shown}: ${shaders.size} kernels, ${manifest.parameters.length} parameter tensors (planned in ${((planned - started) / 1000).toFixed(1)} s)\n`);
  for (const [batch, p] of Object.entries(manifest.plans)) {
    const t = p.stats.train;
    io.out(`  batch ${batch}: training step ${formatCount(t.dispatches)} dispatches, ${t.copies} copies, ${t.submits} submit, ${mib(t.bytes)} MiB (${mib(t.unplannedBytes)} MiB without buffer reuse); inference ${formatCount(p.stats.infer.dispatches)} dispatches${fuse ? "" : " (unfused)"}\n`);
  }
  io.out(`  train: node ${path.join(shown, "train.js")} --synthetic --epochs 3\n`);
  return 0;
}
