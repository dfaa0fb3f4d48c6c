// Our compile of models/drifa.drifa (width 16, 64x64, batch 8), built in-process the way
// `drifac compile` does (check -> lower -> differentiate -> planTrainStep), fused or not, and
// trained on the GPU with the runtime's GpuTrainer: one submit per step. A step is timed up to
// the loss read back (the map of the read-back buffer resolves after the whole step's work).
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import type { Program } from "../compiler/check/program.ts";
import { planTrainStep } from "../compiler/codegen/train-plan.ts";
import { differentiateModel } from "../compiler/ir/autodiff.ts";
import { initState } from "../compiler/ir/interpret.ts";
import { lower } from "../compiler/ir/lower.ts";
import { autotuneMode } from "../runtime/autotune.ts";
import type { Gpu } from "../runtime/device.ts";
import { GpuTrainer } from "../runtime/trainer-exec.ts";
import { BENCH_CONFIG, syntheticBatch } from "./net-spec.ts";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

export interface OursResult {
  fuse: boolean;
  params: number;
  /** Median of the timed steps, ms. */
  stepMs: number;
  stepsMs: number[];
  losses: number[];
  dispatchesPerStep: number;
  submitsPerStep: number;
  passes: number;
  copies: number;
  pipelines: number;
  /** GPU memory as planned, and with one buffer per value. */
  peakBytes: number;
  unplannedBytes: number;
  /** Check, lower, differentiate and plan (IR and WGSL generation), ms. */
  compileMs: number;
  /** GpuTrainer.create: pipelines (and autotuning), buffers, bind groups, ms. */
  pipelineMs: number;
  autotuneMs: number;
  /** The first step after creation, ms; firstStepMs = pipelineMs + this. */
  firstRunMs: number;
  firstStepMs: number;
  autotune: string;
  /** Kernels per variant that runs (runtime/autotune.ts). */
  variants: Record<string, number>;
}

export function benchProgram(): Program {
  const cfg = BENCH_CONFIG;
  const r = checkFile(path.join(root, "models", "drifa.drifa"), { settings: { width: String(cfg.width), size: String(cfg.size) } });
  if (r.diagnostics.length > 0) throw new Error(`models/drifa.drifa: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  return r.programs[0]!;
}

export async function benchOurs(gpu: Gpu, options: { fuse: boolean; steps: number; warmup: number; log: (s: string) => void }): Promise<OursResult> {
  const cfg = BENCH_CONFIG;
  const what = options.fuse ? "fused" : "unfused";
  const t0 = performance.now();
  const program = benchProgram();
  const plan = planTrainStep(differentiateModel(lower(program, { batch: cfg.batch, mode: "train" })), { fuse: options.fuse });
  const compileMs = performance.now() - t0;
  const params = program.params.filter((p) => p.role === "param").reduce((n, p) => n + p.shape.reduce((a, s) => a * s.value!, 1), 0);
  options.log(`ours ${what}: compiled in ${(compileMs / 1000).toFixed(1)} s: ${plan.summary.dispatches} dispatches, ${plan.summary.pipelines} pipelines; creating pipelines`);

  const t1 = performance.now();
  const trainer = await GpuTrainer.create(gpu, plan, { state: initState(program, 1).params, seed: 1 });
  const pipelineMs = performance.now() - t1;
  try {
    const data = syntheticBatch(cfg);
    const batch = {
      inputs: Object.fromEntries(cfg.modalities.map((m, i) => [m, data.inputs[i]!])),
      labels: Object.fromEntries(program.tasks.map((t, i) => [t.name, data.labels[i]!])),
    };
    const losses: number[] = [];
    const times: number[] = [];
    let firstRunMs = 0;
    const total = options.warmup + options.steps;
    for (let s = 1; s <= total; s++) {
      const ts = performance.now();
      const { loss } = await trainer.trainStep(batch, { readLoss: true });
      const ms = performance.now() - ts;
      losses.push(loss!);
      if (s === 1) firstRunMs = ms;
      if (s > options.warmup) times.push(ms);
      if (!Number.isFinite(loss)) throw new Error(`ours ${what}: loss of step ${s} is ${loss}`);
    }
    options.log(`ours ${what}: losses ${losses.map((l) => l.toFixed(4)).join(" ")}`);
    const variants: Record<string, number> = {};
    for (const v of trainer.exec.variants) variants[v] = (variants[v] ?? 0) + 1;
    const sorted = [...times].sort((a, b) => a - b);
    const m = sorted.length >> 1;
    return {
      fuse: options.fuse,
      params,
      stepMs: sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2,
      stepsMs: times,
      losses,
      dispatchesPerStep: plan.summary.dispatches,
      submitsPerStep: plan.summary.submits,
      passes: plan.summary.passes,
      copies: plan.summary.copies,
      pipelines: plan.summary.pipelines,
      peakBytes: plan.summary.bytes,
      unplannedBytes: plan.summary.unplannedBytes,
      compileMs,
      pipelineMs,
      autotuneMs: trainer.exec.stats.autotuneMs,
      firstRunMs,
      firstStepMs: pipelineMs + firstRunMs,
      autotune: autotuneMode(),
      variants,
    };
  } finally {
    trainer.destroy();
  }
}
