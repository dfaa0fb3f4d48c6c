// Our compile of models/drifa.drifa (width 16, 64x64, batch 8), built in-process the way
// `drifac compile` does (check -> lower -> differentiate -> planTrainStep), fused or not, and
// trained on the GPU with the runtime's GpuTrainer: one submit per step. A step is timed up to
// the loss read back (the map of the read-back buffer resolves after the whole step's work).
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import type { Program } from "../compiler/check/program.ts";
import { type TrainPlan, type TrainPlanOptions, planTrainStep } from "../compiler/codegen/train-plan.ts";
import { differentiateModel } from "../compiler/ir/autodiff.ts";
import { initState } from "../compiler/ir/interpret.ts";
import { lower } from "../compiler/ir/lower.ts";
import { autotuneMode } from "../runtime/autotune.ts";
import type { Gpu } from "../runtime/device.ts";
import { GpuTrainer, type TrainBatch } from "../runtime/trainer-exec.ts";
import { BENCH_CONFIG, syntheticBatch } from "./net-spec.ts";
import { median } from "./timing.ts";

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

/** The training step of `program` at BENCH_CONFIG's batch, planned as `drifac compile` plans it. */
export function benchPlan(program: Program, options: TrainPlanOptions = {}): TrainPlan {
  return planTrainStep(differentiateModel(lower(program, { batch: BENCH_CONFIG.batch, mode: "train" })), options);
}

/** The synthetic batch of BENCH_CONFIG, keyed by the program's input and task names. */
export function benchBatch(program: Program): TrainBatch {
  const cfg = BENCH_CONFIG;
  const data = syntheticBatch(cfg);
  return {
    inputs: Object.fromEntries(cfg.modalities.map((m, i) => [m, data.inputs[i]!])),
    labels: Object.fromEntries(program.tasks.map((t, i) => [t.name, data.labels[i]!])),
  };
}

/** One compile (fused or not): its plan, built once, and what its trials measured. */
interface Config {
  fuse: boolean;
  what: string;
  program: Program;
  plan: TrainPlan;
  /** The synthetic batch every step trains on. */
  batch: TrainBatch;
  params: number;
  compileMs: number;
  /** Of the first trial (a user's first run): GpuTrainer.create, autotuning, the first step. */
  pipelineMs: number;
  autotuneMs: number;
  firstRunMs: number;
  variants: Record<string, number>;
  /** Losses of the first trial. */
  losses: number[];
  times: number[];
}

function compile(fuse: boolean, log: (s: string) => void): Config {
  const what = fuse ? "fused" : "unfused";
  const t0 = performance.now();
  const program = benchProgram();
  const plan = benchPlan(program, { fuse });
  const compileMs = performance.now() - t0;
  const params = program.params.filter((p) => p.role === "param").reduce((n, p) => n + p.shape.reduce((a, s) => a * s.value!, 1), 0);
  log(`ours ${what}: compiled in ${(compileMs / 1000).toFixed(1)} s: ${plan.summary.dispatches} dispatches, ${plan.summary.pipelines} pipelines`);
  return { fuse, what, program, plan, batch: benchBatch(program), params, compileMs, pipelineMs: 0, autotuneMs: 0, firstRunMs: 0, variants: {}, losses: [], times: [] };
}

/** A trainer of one trial, after its first step (on lavapipe the shaders' machine code is
 * compiled at the first dispatch). */
interface Live {
  config: Config;
  trainer: GpuTrainer;
  losses: number[];
}

async function start(gpu: Gpu, config: Config, first: boolean): Promise<Live> {
  const t1 = performance.now();
  const trainer = await GpuTrainer.create(gpu, config.plan, { state: initState(config.program, 1).params, seed: 1 });
  const live: Live = { config, trainer, losses: [] };
  try {
    const pipelineMs = performance.now() - t1;
    const firstRunMs = await step(live);
    if (first) {
      Object.assign(config, { pipelineMs, firstRunMs, autotuneMs: trainer.exec.stats.autotuneMs });
      for (const v of trainer.exec.variants) config.variants[v] = (config.variants[v] ?? 0) + 1;
    }
  } catch (e) {
    trainer.destroy();
    throw e;
  }
  return live;
}

async function step(live: Live): Promise<number> {
  const ts = performance.now();
  const { loss } = await live.trainer.trainStep(live.config.batch, { readLoss: true });
  const ms = performance.now() - ts;
  live.losses.push(loss!);
  if (!Number.isFinite(loss)) throw new Error(`ours ${live.config.what}: loss of step ${live.losses.length} is ${loss}`);
  return ms;
}

/**
 * Our fused and unfused compiles (those asked for), timed in `trials` trials. A trial creates a
 * trainer of each (new buffers), runs the warm-up, then rounds of one step of each (which goes
 * first alternates): both medians come from the same stretch of time and from several
 * allocations. On this machine a trainer keeps the speed it starts with: one step of the same
 * plan ran at 550-700 ms in one trainer and 950-1,300 ms in another created a minute later (CPU
 * time per step moved with it, so not the scheduler; likely where its buffers landed in
 * physical memory), so one trial's ratio ranged from 1.16x to 1.97x. The step time is the median
 * of all timed steps of all trials.
 */
export async function benchOurs(gpu: Gpu, options: { fuses: boolean[]; steps: number; warmup: number; trials: number; log: (s: string) => void }): Promise<{ results: OursResult[]; errors: string[] }> {
  const errors: string[] = [];
  const configs: Config[] = [];
  for (const fuse of options.fuses) {
    try {
      configs.push(compile(fuse, options.log));
    } catch (e) {
      errors.push(`ours ${fuse ? "fused" : "unfused"}: ${(e as Error).message}`);
      options.log(errors.at(-1)!);
    }
  }
  const trials = Math.max(1, Math.min(options.trials, options.steps));
  // The first step counts as one of the warm-up steps.
  const warm = Math.max(1, options.warmup) - 1;
  const failed = new Set<Config>();
  for (let t = 0; t < trials; t++) {
    const rounds = Math.floor(options.steps / trials) + (t < options.steps % trials ? 1 : 0);
    const live: Live[] = [];
    try {
      for (const c of configs) {
        if (failed.has(c)) continue;
        try {
          live.push(await start(gpu, c, t === 0));
        } catch (e) {
          failed.add(c);
          errors.push(`ours ${c.what}: ${(e as Error).message}`);
          options.log(errors.at(-1)!);
        }
      }
      for (let r = 0; r < warm + rounds; r++) {
        const order = r % 2 ? [...live].reverse() : live;
        for (const l of order) {
          const ms = await step(l);
          if (r >= warm) l.config.times.push(ms);
        }
      }
      if (t === 0) for (const l of live) l.config.losses = l.losses;
      options.log(`ours, trial ${t + 1} of ${trials}: ${live.map((l) => `${l.config.what} ${median(l.config.times.slice(-rounds)).toFixed(0)} ms`).join(", ")} (median of ${rounds})`);
    } finally {
      for (const l of live) l.trainer.destroy();
    }
  }
  return { results: configs.filter((c) => !failed.has(c)).map(result), errors };
}

function result(c: Config): OursResult {
  const { summary } = c.plan;
  return {
    fuse: c.fuse,
    params: c.params,
    stepMs: median(c.times),
    stepsMs: c.times,
    losses: c.losses,
    dispatchesPerStep: summary.dispatches,
    submitsPerStep: summary.submits,
    passes: summary.passes,
    copies: summary.copies,
    pipelines: summary.pipelines,
    peakBytes: summary.bytes,
    unplannedBytes: summary.unplannedBytes,
    compileMs: c.compileMs,
    pipelineMs: c.pipelineMs,
    autotuneMs: c.autotuneMs,
    firstRunMs: c.firstRunMs,
    firstStepMs: c.pipelineMs + c.firstRunMs,
    autotune: autotuneMode(),
    variants: c.variants,
  };
}
