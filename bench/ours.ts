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

interface Prepared {
  fuse: boolean;
  what: string;
  plan: ReturnType<typeof planTrainStep>;
  trainer: GpuTrainer;
  batch: { inputs: Record<string, Float32Array>; labels: Record<string, number[]> };
  params: number;
  compileMs: number;
  pipelineMs: number;
  firstRunMs: number;
  losses: number[];
  times: number[];
}

/** Compiles and creates one trainer, and runs its first step (on lavapipe the shaders' machine
 * code is compiled there). */
async function prepare(gpu: Gpu, fuse: boolean, log: (s: string) => void): Promise<Prepared> {
  const cfg = BENCH_CONFIG;
  const what = fuse ? "fused" : "unfused";
  const t0 = performance.now();
  const program = benchProgram();
  const plan = planTrainStep(differentiateModel(lower(program, { batch: cfg.batch, mode: "train" })), { fuse });
  const compileMs = performance.now() - t0;
  const params = program.params.filter((p) => p.role === "param").reduce((n, p) => n + p.shape.reduce((a, s) => a * s.value!, 1), 0);
  log(`ours ${what}: compiled in ${(compileMs / 1000).toFixed(1)} s: ${plan.summary.dispatches} dispatches, ${plan.summary.pipelines} pipelines; creating pipelines`);
  const t1 = performance.now();
  const trainer = await GpuTrainer.create(gpu, plan, { state: initState(program, 1).params, seed: 1 });
  const pipelineMs = performance.now() - t1;
  const data = syntheticBatch(cfg);
  const batch = {
    inputs: Object.fromEntries(cfg.modalities.map((m, i) => [m, data.inputs[i]!])),
    labels: Object.fromEntries(program.tasks.map((t, i) => [t.name, data.labels[i]!])),
  };
  const p: Prepared = { fuse, what, plan, trainer, batch, params, compileMs, pipelineMs, firstRunMs: 0, losses: [], times: [] };
  try {
    p.firstRunMs = await step(p);
  } catch (e) {
    trainer.destroy();
    throw e;
  }
  return p;
}

async function step(p: Prepared): Promise<number> {
  const ts = performance.now();
  const { loss } = await p.trainer.trainStep(p.batch, { readLoss: true });
  const ms = performance.now() - ts;
  p.losses.push(loss!);
  if (!Number.isFinite(loss)) throw new Error(`ours ${p.what}: loss of step ${p.losses.length} is ${loss}`);
  return ms;
}

const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m]! : (sorted[m - 1]! + sorted[m]!) / 2;
};

/**
 * Our fused and unfused compiles (those asked for), timed in alternation: after the first
 * steps and the warm-up, every round runs one step of each (which goes first alternates), so
 * both medians come from the same stretch of time. Lavapipe's speed drifts by 30 % and more
 * within minutes on a shared machine; timed one after the other, a slow stretch fell on one side
 * and moved the fused/unfused ratio between 1.3x and 1.7x.
 */
export async function benchOurs(gpu: Gpu, options: { fuses: boolean[]; steps: number; warmup: number; log: (s: string) => void }): Promise<{ results: OursResult[]; errors: string[] }> {
  const prepared: Prepared[] = [];
  const errors: string[] = [];
  try {
    for (const fuse of options.fuses) {
      try {
        prepared.push(await prepare(gpu, fuse, options.log));
      } catch (e) {
        errors.push(`ours ${fuse ? "fused" : "unfused"}: ${(e as Error).message}`);
        options.log(errors.at(-1)!);
      }
    }
    // The first step counts as one of the warm-up steps.
    const warm = Math.max(1, options.warmup) - 1;
    for (let r = 0; r < warm + options.steps; r++) {
      const order = r % 2 ? [...prepared].reverse() : prepared;
      for (const p of order) {
        const ms = await step(p);
        if (r >= warm) p.times.push(ms);
      }
    }
    return { results: prepared.map(result), errors };
  } finally {
    for (const p of prepared) p.trainer.destroy();
  }
}

function result(p: Prepared): OursResult {
  const variants: Record<string, number> = {};
  for (const v of p.trainer.exec.variants) variants[v] = (variants[v] ?? 0) + 1;
  const { summary } = p.plan;
  return {
    fuse: p.fuse,
    params: p.params,
    stepMs: median(p.times),
    stepsMs: p.times,
    losses: p.losses,
    dispatchesPerStep: summary.dispatches,
    submitsPerStep: summary.submits,
    passes: summary.passes,
    copies: summary.copies,
    pipelines: summary.pipelines,
    peakBytes: summary.bytes,
    unplannedBytes: summary.unplannedBytes,
    compileMs: p.compileMs,
    pipelineMs: p.pipelineMs,
    autotuneMs: p.trainer.exec.stats.autotuneMs,
    firstRunMs: p.firstRunMs,
    firstStepMs: p.pipelineMs + p.firstRunMs,
    autotune: autotuneMode(),
    variants,
  };
}
