// A compiled model as a ModelRunner for the trainer: the training plan on a GpuTrainer, the
// inference and MC-dropout plans on GpuPredictors that read the trainer's parameters in place.
// Browser-safe: files are read through a `readText` function (fetch in a page, fs in Node).
import type { Gpu } from "../device.ts";
import { acquireDevice } from "../device.ts";
import { initTensor } from "../init.ts";
import { GpuPredictor, GpuTrainer } from "../trainer-exec.ts";
import type { Batch, ModelRunner, RunnerInput, RunnerTask } from "../trainer/types.ts";
import { GpuGradcam, type GradcamOutput, type GradcamPlanInfo, explainBatch } from "./gradcam.ts";
import { type BatchPlans, type Manifest, MANIFEST_FORMAT, hydrate } from "./manifest.ts";

export type ReadText = (relative: string) => Promise<string>;

export interface LoadOptions {
  batch: number;
  seed: number;
  gpu?: Gpu;
}

export class CompiledModelError extends Error {}

/** Reads a manifest and its shaders. */
export async function readCompiled(read: ReadText): Promise<{ manifest: Manifest; shaders: string[] }> {
  const manifest = JSON.parse(await read("manifest.json")) as Manifest;
  if (manifest.format !== MANIFEST_FORMAT) throw new CompiledModelError(`manifest format ${String(manifest.format)} is not ${MANIFEST_FORMAT}: recompile with this drifa`);
  const shaders = await Promise.all(manifest.shaders.map((s) => read(s)));
  return { manifest, shaders };
}

/** Initial parameters and buffers from the manifest's initialisers (runtime/init.ts). */
export function initialState(manifest: Manifest, seed: number): Map<string, Float32Array> {
  const state = new Map<string, Float32Array>();
  for (const p of manifest.parameters) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    state.set(p.name, Float32Array.from(initTensor({ name: p.name, size, init: p.init }, seed)));
  }
  return state;
}

export class CompiledRunner implements ModelRunner {
  readonly inputs: RunnerInput[];
  readonly tasks: RunnerTask[];
  readonly stateShapes: Record<string, readonly number[]>;
  private mc: GpuPredictor | null = null;
  private cam: GpuGradcam | null = null;

  private constructor(
    readonly manifest: Manifest,
    readonly batch: number,
    readonly gpu: Gpu,
    readonly trainer: GpuTrainer,
    readonly predictor: GpuPredictor,
    private readonly plans: BatchPlans,
    private readonly shaders: string[],
  ) {
    this.inputs = manifest.inputs;
    this.tasks = manifest.tasks;
    this.stateShapes = Object.fromEntries(manifest.parameters.map((p) => [p.name, p.shape]));
  }

  static async create(manifest: Manifest, shaders: string[], options: LoadOptions): Promise<CompiledRunner> {
    const plans = manifest.plans[String(options.batch)];
    if (!plans) {
      throw new CompiledModelError(`this model was compiled for batch sizes ${Object.keys(manifest.plans).join(", ")}, not ${options.batch}`);
    }
    const gpu = options.gpu ?? (await acquireDevice());
    const trainer = await GpuTrainer.create(gpu, hydrate(plans.train, shaders), { state: initialState(manifest, options.seed), seed: options.seed });
    const predictor = await GpuPredictor.create(gpu, hydrate(plans.infer, shaders), { share: trainer });
    return new CompiledRunner(manifest, options.batch, gpu, trainer, predictor, plans, shaders);
  }

  private check(batch: Batch): void {
    if (batch.size !== this.batch) throw new CompiledModelError(`batch of ${batch.size} given to a model planned for ${this.batch}`);
  }

  async trainStep(batch: Batch, lr: number, wantLoss: boolean): Promise<{ loss?: number; taskLosses?: Record<string, number> }> {
    this.check(batch);
    const r = await this.trainer.trainStep({ inputs: batch.inputs, labels: batch.labels }, { lr, readLoss: wantLoss });
    return wantLoss ? { loss: r.loss, taskLosses: r.taskLosses } : {};
  }

  async predict(batch: Batch, options: { mc?: boolean; seed?: number } = {}): Promise<Record<string, Float32Array>> {
    this.check(batch);
    let predictor = this.predictor;
    if (options.mc) {
      this.mc ??= await GpuPredictor.create(this.gpu, hydrate(this.plans.mc, this.shaders), { share: this.trainer });
      predictor = this.mc;
    }
    const r = await predictor.predict(batch.inputs, { seed: options.seed ?? 0, sample: 0 });
    return Object.fromEntries(Object.entries(r.tasks).map(([name, t]) => [name, t.probs]));
  }

  /** The modalities this folder's Grad-CAM plan explains (none when it has no such plan). */
  get gradcamMaps(): GradcamPlanInfo["maps"] {
    return this.plans.gradcam?.maps ?? [];
  }

  /**
   * Grad-CAM maps of every modality for one batch, explaining for each sample the class
   * `options.classes[i]` of `options.task`, by default the class the model predicts (argmax of
   * the inference plan's probabilities). Model inputs missing from the batch are fed zeros. One
   * submit for the prediction, one for the forward and backward pass of the maps.
   */
  async gradcam(batch: Batch, options: { task: string; classes?: ArrayLike<number>; details?: boolean }): Promise<GradcamOutput & { targets: Int32Array }> {
    this.check(batch);
    const plan = this.plans.gradcam;
    if (!plan) throw new CompiledModelError(`this folder has no Grad-CAM plan for batch ${this.batch}: recompile it with this drifa (drifac compile)`);
    this.cam ??= await GpuGradcam.create(this.gpu, hydrate(plan, this.shaders), this.trainer.exec);
    return explainBatch(this.predictor, this.cam, batch, options);
  }

  /** Mean cross-entropy over the valid items of each task, from the inference probabilities
   * (so padded items of a last batch never count). */
  async evalLoss(batch: Batch): Promise<{ loss: number; taskLosses: Record<string, number> }> {
    const probs = await this.predict(batch);
    const taskLosses: Record<string, number> = {};
    let loss = 0;
    for (const t of this.tasks) {
      const p = probs[t.name]!;
      const k = t.classes.length;
      const labels = batch.labels[t.name]!;
      const valid = batch.valid?.[t.name];
      let sum = 0;
      let n = 0;
      for (let i = 0; i < batch.size; i++) {
        if (valid && !valid[i]) continue;
        sum -= Math.log(Math.max(p[i * k + labels[i]!]!, 1e-30));
        n++;
      }
      taskLosses[t.name] = n > 0 ? sum / n : 0;
      loss += t.weight * taskLosses[t.name]!;
    }
    return { loss, taskLosses };
  }

  async state(): Promise<Map<string, Float32Array>> {
    return this.trainer.state();
  }

  async load(state: Map<string, Float32Array>): Promise<void> {
    this.trainer.load(state);
  }

  destroy(): void {
    this.cam?.destroy();
    this.mc?.exec.destroy();
    this.predictor.exec.destroy();
    this.trainer.destroy();
  }
}
