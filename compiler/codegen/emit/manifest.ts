// A checked program to the data of a compiled model: the training, inference and MC-dropout
// plans for each batch size, every distinct WGSL kernel stored once, and the parameter table.
import path from "node:path";
import type { KernelLaunch } from "../../../runtime/executor.ts";
import { type BatchPlans, type Manifest, MANIFEST_FORMAT, type Stored, type StoredKernel } from "../../../runtime/compiled/manifest.ts";
import type { Program } from "../../check/program.ts";
import { differentiateModel } from "../../ir/autodiff.ts";
import { lower } from "../../ir/lower.ts";
import { planInference, planTrainStep } from "../train-plan.ts";
import { planGradcam } from "../gradcam-plan.ts";

export interface CompiledOutput {
  manifest: Manifest;
  /** Shader texts by file name (relative to the output folder). */
  shaders: Map<string, string>;
}

export class ShaderTable {
  readonly files: string[] = [];
  readonly texts: string[] = [];
  private readonly index = new Map<string, number>();

  /** Stores each distinct WGSL once; the file name says which primitive it computes (and
   * which variant, for the alternatives the runtime may pick instead). */
  store(wgsl: string, label: string, variant?: string): number {
    let i = this.index.get(wgsl);
    if (i === undefined) {
      i = this.files.length;
      const prim = /^%\d+ (\w+)/.exec(label)?.[1] ?? label.split(/\W+/)[0] ?? "kernel";
      const name = variant ? `${prim}-${variant}` : prim;
      this.files.push(`kernels/${String(i).padStart(4, "0")}-${name.replace(/[^\w-]/g, "")}.wgsl`);
      this.texts.push(wgsl);
      this.index.set(wgsl, i);
    }
    return i;
  }

  strip<P extends { kernels: KernelLaunch[] }>(plan: P): Stored<P> {
    const kernel = ({ wgsl, variants, ...k }: KernelLaunch): StoredKernel => ({
      ...k,
      shader: this.store(wgsl, k.label),
      ...(variants ? { variants: variants.map(({ wgsl: v, ...rest }) => ({ ...rest, shader: this.store(v, k.label, rest.name) })) } : {}),
    });
    return { ...plan, kernels: plan.kernels.map(kernel) } as unknown as Stored<P>;
  }
}

/** The runtime's plan data: the compiler-side summary, optimiser spec, graph and fusion
 * decisions stay behind. */
function planData<P extends { summary: unknown }>(p: P): Omit<P, "summary"> {
  const rest: Partial<P> & { spec?: unknown; fusion?: unknown; graph?: unknown } = { ...p };
  delete rest.summary;
  delete rest.spec;
  delete rest.fusion;
  delete rest.graph;
  return rest as Omit<P, "summary">;
}

export interface SourceInfo {
  file: string;
  compiler: string;
  drifac: string;
}

export interface CompileOptions {
  /** The fusion pass (default on); `drifac compile --no-fuse` turns it off for comparison. */
  fuse?: boolean;
  /** Called with each batch size's training plan (for --report). */
  onTrainPlan?: (batch: number, plan: ReturnType<typeof planTrainStep>) => void;
}

export function compileProgram(program: Program, batches: number[], source: SourceInfo, options: CompileOptions = {}): CompiledOutput {
  const fuse = options.fuse ?? true;
  const table = new ShaderTable();
  const plans: Record<string, BatchPlans> = {};
  for (const batch of batches) {
    const train = planTrainStep(differentiateModel(lower(program, { batch, mode: "train" })), { fuse });
    options.onTrainPlan?.(batch, train);
    const infer = planInference(program, { batch, fuse });
    const mc = planInference(program, { batch, mcDropout: true, fuse });
    const gradcam = planGradcam(program, batch);
    plans[String(batch)] = {
      train: table.strip(planData(train)),
      infer: table.strip(planData(infer)),
      mc: table.strip(planData(mc)),
      // Null for a model with no class score or no convolution branch to explain.
      ...(gradcam ? { gradcam: table.strip(planData(gradcam)) } : {}),
      stats: { train: train.summary, infer: infer.summary, mc: mc.summary },
    };
  }
  let offset = 0;
  const parameters = program.params.map((p) => {
    const shape = p.shape.map((s) => s.value!);
    const entry = { name: p.name, shape, role: p.role, init: p.init, offset };
    offset += shape.reduce((a, b) => a * b, 1) * 4;
    return entry;
  });
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    model: program.model,
    source: { file: path.resolve(source.file), settings: program.settings, compiler: source.compiler, drifac: source.drifac, ...(fuse ? {} : { fuse: false }) },
    inputs: program.inputs.map((i) => ({ name: i.name, shape: i.shape.slice(1).map((a) => a.size.value!) })),
    tasks: program.tasks.map((t) => ({ name: t.name, classes: t.classes, weight: t.weight, data: t.data })),
    train: program.train,
    parameters,
    shaders: table.files,
    plans,
  };
  return { manifest, shaders: new Map(table.files.map((f, i) => [f, table.texts[i]!])) };
}
