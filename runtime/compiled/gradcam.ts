// Grad-CAM on a compiled model (Selvaraju et al. 2017), run entirely by the compiled plan: the
// inference forward pass, the backward pass of a class score to the last convolution stage of
// every modality, and the map relu(sum_c mean_hw(dScore/dA)_c * A_c) per modality, all in one
// submit. The plan (compiler/codegen/gradcam-plan.ts) reads the model's state arenas in place,
// like the inference plans, so a trainer's or a checkpoint's parameters need no copy.
// Browser-safe: no Node built-ins.
import { DeviceError, type Gpu } from "../device.ts";
import { GpuPredictor, type InferPlanInfo, StateExecutor, type StatePlan } from "../trainer-exec.ts";
import type { Batch } from "../trainer/types.ts";

/** One modality's Grad-CAM target: the activation it explains and the plan's outputs for it. */
export interface GradcamMap {
  /** The model input (modality) the activation belongs to. */
  input: string;
  /** Scope of the activation in the .drifa program (e.g. "skin.stage4.block2"). */
  scope: string;
  /** The activation's shape per sample, [C, H, W]. */
  shape: [number, number, number];
  /** Outputs: the map [batch, H, W], the activation and its gradient [batch, C, H, W]. */
  cam: string;
  activation: string;
  gradient: string;
}

/** The plan data of `drifac compile`'s Grad-CAM plan for one batch size. */
export interface GradcamPlanInfo extends StatePlan {
  model: string;
  batch: number;
  /** The model's data inputs the plan reads, [batch, ...shape] floats each. */
  inputs: { name: string; floats: number }[];
  /** Per task: the [batch, classes] input selecting the explained class of each sample (the
   * score differentiated is sum over tasks of sum(logits * mask)), and its logits output. */
  tasks: { name: string; classes: number; mask: string; logits: string }[];
  maps: GradcamMap[];
}

export interface GradcamOutput {
  /** Per task: logits [batch, classes] of the same forward pass. */
  logits: Record<string, Float32Array>;
  /** Per modality input: the map [batch, H, W] (not normalised), and H, W. */
  cams: Record<string, { data: Float32Array; height: number; width: number }>;
  /** With `details`: activations and gradients per modality input. */
  activations?: Record<string, Float32Array>;
  gradients?: Record<string, Float32Array>;
}

/** The per-task mask inputs: one-hot rows of `targets` for `task`, zero for every other task. */
export function gradcamMasks(plan: GradcamPlanInfo, task: string, targets: ArrayLike<number>): Map<string, Float32Array> {
  const t = plan.tasks.find((x) => x.name === task);
  if (!t) throw new DeviceError("validation", `no task ${task} in the Grad-CAM plan (tasks: ${plan.tasks.map((x) => x.name).join(", ")})`);
  if (targets.length !== plan.batch) throw new DeviceError("validation", `${targets.length} target classes for a batch of ${plan.batch}`);
  const out = new Map<string, Float32Array>();
  for (const x of plan.tasks) out.set(x.mask, new Float32Array(plan.batch * x.classes));
  const mask = out.get(t.mask)!;
  for (let i = 0; i < plan.batch; i++) {
    const c = targets[i]!;
    if (!Number.isInteger(c) || c < 0 || c >= t.classes) throw new DeviceError("validation", `class ${c} of sample ${i} is not a class of ${task} (0..${t.classes - 1})`);
    mask[i * t.classes + c] = 1;
  }
  return out;
}

export class GpuGradcam {
  constructor(
    readonly exec: StateExecutor,
    readonly plan: GradcamPlanInfo,
  ) {}

  /** Shares the state buffers of `share` (the trainer's executor of the same model). */
  static async create(gpu: Gpu, plan: GradcamPlanInfo, share: StateExecutor): Promise<GpuGradcam> {
    return new GpuGradcam(await StateExecutor.create(gpu, plan, { share }), plan);
  }

  /** One forward and backward pass explaining class targets[i] of `task` for sample i. A model
   * input missing from `inputs` is fed zeros. */
  async run(inputs: Record<string, ArrayLike<number>>, task: string, targets: ArrayLike<number>, options: { details?: boolean } = {}): Promise<GradcamOutput> {
    const p = this.plan;
    const feeds = new Map<string, ArrayLike<number>>(gradcamMasks(p, task, targets));
    for (const i of p.inputs) feeds.set(i.name, inputs[i.name] ?? new Float32Array(i.floats));
    const read = [...p.tasks.map((t) => t.logits), ...p.maps.map((m) => m.cam), ...(options.details ? p.maps.flatMap((m) => [m.activation, m.gradient]) : [])];
    const v = await this.exec.run(feeds, read);
    const out: GradcamOutput = {
      logits: Object.fromEntries(p.tasks.map((t) => [t.name, v.get(t.logits)!])),
      cams: Object.fromEntries(p.maps.map((m) => [m.input, { data: v.get(m.cam)!, height: m.shape[1], width: m.shape[2] }])),
    };
    if (options.details) {
      out.activations = Object.fromEntries(p.maps.map((m) => [m.input, v.get(m.activation)!]));
      out.gradients = Object.fromEntries(p.maps.map((m) => [m.input, v.get(m.gradient)!]));
    }
    return out;
  }

  destroy(): void {
    this.exec.destroy();
  }
}

/** Explains `batch` with `cam` for `task`: class `classes[i]` for sample i, by default the class
 * `predictor` (sharing cam's state) predicts. Model inputs missing from the batch are fed zeros. */
export async function explainBatch(
  predictor: GpuPredictor,
  cam: GpuGradcam,
  batch: Batch,
  options: { task: string; classes?: ArrayLike<number>; details?: boolean },
): Promise<GradcamOutput & { targets: Int32Array }> {
  const task = predictor.plan.tasks.find((t) => t.name === options.task);
  if (!task) throw new DeviceError("validation", `no task ${options.task}; the tasks are ${predictor.plan.tasks.map((t) => t.name).join(", ")}`);
  let targets: Int32Array;
  if (options.classes) targets = Int32Array.from(options.classes);
  else {
    const inputs = Object.fromEntries(predictor.plan.inputs.map((i) => [i.name, batch.inputs[i.name] ?? new Float32Array(i.floats)]));
    targets = argmaxRows((await predictor.predict(inputs)).tasks[task.name]!.probs, task.classes);
  }
  return { ...(await cam.run(batch.inputs, task.name, targets, { details: options.details })), targets };
}

/**
 * Grad-CAM of a trained model without a trainer: the Grad-CAM plan owns the parameters and
 * buffers, the inference plan (for the predicted classes) reads them in place, and the training
 * plan is never compiled (on lavapipe, its hundreds of pipelines are most of the start-up).
 */
export class GradcamRunner {
  private constructor(
    readonly cam: GpuGradcam,
    readonly predictor: GpuPredictor,
  ) {}

  static async create(gpu: Gpu, plans: { gradcam: GradcamPlanInfo; infer: InferPlanInfo }): Promise<GradcamRunner> {
    const exec = await StateExecutor.create(gpu, plans.gradcam);
    const cam = new GpuGradcam(exec, plans.gradcam);
    try {
      return new GradcamRunner(cam, await GpuPredictor.create(gpu, plans.infer, { share: exec }));
    } catch (e) {
      cam.destroy();
      throw e;
    }
  }

  get maps(): GradcamMap[] {
    return this.cam.plan.maps;
  }

  /** Loads parameters and buffers (a checkpoint's other tensors, optimiser slots, are ignored). */
  load(state: ReadonlyMap<string, ArrayLike<number>>): void {
    const names = this.cam.exec.stateNames();
    const missing = names.filter((n) => !state.has(n));
    if (missing.length) throw new DeviceError("validation", `the state has no ${missing.slice(0, 3).join(", ")}${missing.length > 3 ? ` (and ${missing.length - 3} more)` : ""}`);
    this.cam.exec.writeState(new Map(names.map((n) => [n, state.get(n)!])));
  }

  gradcam(batch: Batch, options: { task: string; classes?: ArrayLike<number>; details?: boolean }): Promise<GradcamOutput & { targets: Int32Array }> {
    if (batch.size !== this.cam.plan.batch) throw new DeviceError("validation", `batch of ${batch.size} given to a model planned for ${this.cam.plan.batch}`);
    return explainBatch(this.predictor, this.cam, batch, options);
  }

  destroy(): void {
    this.predictor.destroy();
    this.cam.destroy();
  }
}

/** Index of the largest value of each row of a flat [n, k] array (the first on ties). */
export function argmaxRows(values: ArrayLike<number>, k: number): Int32Array {
  const n = Math.floor(values.length / k);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (values[i * k + c]! > values[i * k + best]!) best = c;
    out[i] = best;
  }
  return out;
}
