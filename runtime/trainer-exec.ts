/// <reference types="@webgpu/types" />
// Persistent execution for training and inference: the parameters, the batchnorm buffers and
// the optimiser slots live in GPU buffers created once and updated in place by the kernels;
// each step uploads only its feeds (data, labels, the RNG counter, the optimiser's scalars),
// encodes the plan's commands (compute passes and buffer copies) into ONE command encoder,
// submits once, and reads back only what the caller asks for (the loss every N steps, all the
// state for a checkpoint). Like executor.ts it knows nothing about the IR: plans come from
// compiler/codegen/train-plan.ts as plain data (JSON-serialisable), so generated host code can
// embed them, and this file stays importable by a browser bundle.
import type { AutotuneOptions } from "./autotune.ts";
import { DeviceError, type Gpu, withErrorScopes } from "./device.ts";
import { type BufferSpec, type ExecStats, type KernelLaunch, type Resources, checkUncaptured, createResources, encodeReadback, upload } from "./executor.ts";

/** What a step's encoder holds, in order: a compute pass running kernels (by index), or a copy
 * between two buffers of the same size (running statistics into their storage, gradients into
 * the optimiser's flat layout when a value could not be placed there directly). */
export type Command = { pass: number[] } | { copy: [from: number, to: number] };

export interface StatePlan {
  /** Roots and views. init "param" = persistent state named by init.name (written by
   * writeState, read by readState, never uploaded per step); "input" = a per-run feed. */
  buffers: BufferSpec[];
  kernels: KernelLaunch[];
  commands: Command[];
  /** Buffers run() can read back, by name ("loss", "loss.<task>", "grad.<param>", ...). */
  outputs: Record<string, number>;
  /** Roots that hold only persistent state, by label: another plan of the same model (the
   * inference plan of a trainer) binds the same GPU buffers instead of a copy of the state. */
  shared: number[];
}

export interface RunStats extends ExecStats {
  /** Per run: compute dispatches, compute passes, buffer copies, and submits (always 1). */
  dispatches: number;
  passes: number;
  copies: number;
  submits: 1;
}

/** Buffer index by name of the buffers with init `kind`. */
function named(plan: StatePlan, kind: "param" | "input"): Map<string, number> {
  const out = new Map<string, number>();
  plan.buffers.forEach((b, i) => {
    if (b.init.kind === kind) out.set(b.init.name, i);
  });
  return out;
}

export class StateExecutor {
  /** Submit-to-readback time of the last run that read something back (the first run on
   * lavapipe includes compiling every shader). */
  lastRunMs = 0;
  readonly stats: RunStats;
  private readonly state: Map<string, number>;
  private readonly inputs: Map<string, number>;

  private constructor(
    readonly gpu: Gpu,
    readonly plan: StatePlan,
    private readonly res: Resources,
  ) {
    this.state = named(plan, "param");
    this.inputs = named(plan, "input");
    const passes = plan.commands.filter((c) => "pass" in c) as { pass: number[] }[];
    this.stats = { ...res.stats, dispatches: passes.reduce((n, c) => n + c.pass.length, 0), passes: passes.length, copies: plan.commands.length - passes.length, submits: 1 };
  }

  /** Compiles the kernels and creates the buffers. With `share`, the plan's shared roots are
   * the other executor's buffers (same labels, sizes and state layout), so both see the same
   * parameters with no copy; `share` must outlive this executor. */
  static async create(gpu: Gpu, plan: StatePlan, options: { share?: StateExecutor; autotune?: AutotuneOptions } = {}): Promise<StateExecutor> {
    const borrow = new Map<number, GPUBuffer>();
    const other = options.share;
    if (other) {
      if (other.gpu !== gpu) throw new DeviceError("validation", "an executor can only share buffers with one on the same device");
      for (const i of plan.shared) {
        const spec = plan.buffers[i]!;
        const j = other.plan.shared.find((k) => other.plan.buffers[k]!.label === spec.label);
        if (j === undefined || other.plan.buffers[j]!.floats !== spec.floats) throw new DeviceError("validation", `cannot share ${spec.label}: the other plan has no root of that name and size`);
        borrow.set(i, other.res.placed[j]!.buffer);
      }
      // Same names must sit at the same places, or the two plans would read each other's values.
      for (const [name, i] of named(plan, "param")) {
        const b = plan.buffers[i]!;
        const j = other.state.get(name);
        const c = j === undefined ? undefined : other.plan.buffers[j]!;
        const root = (x: BufferSpec, p: StatePlan) => (x.view ? p.buffers[x.view.of]!.label : x.label);
        if (b.view && plan.shared.includes(b.view.of) && (!c || c.floats !== b.floats || c.view?.offset !== b.view.offset || root(c, other.plan) !== root(b, plan))) {
          throw new DeviceError("validation", `cannot share state ${name}: the two plans place it differently`);
        }
      }
    }
    return new StateExecutor(gpu, plan, await createResources(gpu, plan.buffers, plan.kernels, borrow, { autotune: options.autotune }));
  }

  /** Per kernel: the name of the variant that runs (see runtime/autotune.ts). */
  get variants(): readonly string[] {
    return this.res.variants;
  }

  /** Names of the persistent state tensors. */
  stateNames(): string[] {
    return [...this.state.keys()];
  }

  stateSize(name: string): number {
    const i = this.state.get(name);
    if (i === undefined) throw new DeviceError("validation", `no state tensor ${name}`);
    return this.plan.buffers[i]!.floats;
  }

  /** Uploads state tensors by name (ordered before the next submit). Unknown names throw; so
   * do missing ones unless `partial` (a checkpoint without optimiser slots, say). */
  writeState(values: ReadonlyMap<string, ArrayLike<number>>, options: { partial?: boolean } = {}): void {
    this.gpu.assertAlive();
    for (const name of values.keys()) if (!this.state.has(name)) throw new DeviceError("validation", `no state tensor ${name} in this plan`);
    for (const [name, i] of this.state) {
      const v = values.get(name);
      if (v === undefined && options.partial) continue;
      upload(this.gpu, this.res.placed[i]!, this.plan.buffers[i]!, v, `state ${name}`);
    }
  }

  /** Reads state tensors back (all of them by default) in one copy-and-map. */
  async readState(names: readonly string[] = this.stateNames()): Promise<Map<string, Float32Array>> {
    const ids = names.map((n) => {
      const i = this.state.get(n);
      if (i === undefined) throw new DeviceError("validation", `no state tensor ${n}`);
      return i;
    });
    const { device } = this.gpu;
    return withErrorScopes(device, "reading the state", async () => {
      const encoder = device.createCommandEncoder({ label: "read state" });
      const read = encodeReadback(device, encoder, ids.map((i) => this.res.placed[i]!), ids.map((i) => this.plan.buffers[i]!.floats));
      device.queue.submit([encoder.finish()]);
      const out = await read();
      return new Map(names.map((n, k) => [n, out[k]!]));
    });
  }

  /** One run: uploads every input, encodes the plan's commands into one encoder, submits once,
   * and reads back the outputs named in `read` (nothing by default: no wait for the GPU). */
  async run(inputs: ReadonlyMap<string, ArrayLike<number>>, read: readonly string[] = []): Promise<Map<string, Float32Array>> {
    this.gpu.assertAlive();
    const { device } = this.gpu;
    const { plan, res } = this;
    const outs = read.map((n) => {
      const i = plan.outputs[n];
      if (i === undefined) throw new DeviceError("validation", `no output ${n}; this plan has ${Object.keys(plan.outputs).join(", ")}`);
      return i;
    });
    return withErrorScopes(device, "running a step", async () => {
      for (const [name, i] of this.inputs) upload(this.gpu, res.placed[i]!, plan.buffers[i]!, inputs.get(name), `input ${name}`);
      const encoder = device.createCommandEncoder({ label: "step" });
      for (const c of plan.commands) {
        if ("copy" in c) {
          const [from, to] = c.copy.map((i) => res.placed[i]!);
          encoder.copyBufferToBuffer(from!.buffer, from!.offset, to!.buffer, to!.offset, plan.buffers[c.copy[0]]!.floats * 4);
          continue;
        }
        // WebGPU orders the dispatches of a pass and makes each one's writes visible to the next.
        const pass = encoder.beginComputePass();
        for (const k of c.pass) {
          pass.setPipeline(res.pipelines[k]!);
          pass.setBindGroup(0, res.bindGroups[k]!);
          // The grid of the variant createResources chose for this adapter.
          pass.dispatchWorkgroups(...res.dispatch[k]!);
        }
        pass.end();
      }
      const finish = outs.length > 0 ? encodeReadback(device, encoder, outs.map((i) => res.placed[i]!), outs.map((i) => plan.buffers[i]!.floats)) : null;
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      const values = finish ? await finish() : [];
      if (finish) this.lastRunMs = performance.now() - t0;
      checkUncaptured(this.gpu, "running a step");
      return new Map(read.map((n, k) => [n, values[k]!]));
    });
  }

  /**
   * Times every kernel of the plan on its own, for finding where a step's time goes: per kernel,
   * the best of `rounds` submits of `reps` dispatches in one pass, in ms per dispatch (so the
   * fixed cost of a submit is spread out and the cost of a dispatch stays in). The kernels run
   * on whatever the buffers hold, and kernels that update in place (the optimiser) run `reps`
   * times: load the state again before training on.
   */
  async profileKernels(options: { reps?: number; rounds?: number } = {}): Promise<number[]> {
    this.gpu.assertAlive();
    const { device } = this.gpu;
    const { res } = this;
    const reps = options.reps ?? 8;
    const rounds = options.rounds ?? 2;
    return withErrorScopes(device, "profiling the kernels", async () => {
      const ms: number[] = [];
      for (let k = 0; k < res.pipelines.length; k++) {
        let best = Infinity;
        for (let r = 0; r < rounds; r++) {
          const encoder = device.createCommandEncoder({ label: "profile" });
          const pass = encoder.beginComputePass();
          pass.setPipeline(res.pipelines[k]!);
          pass.setBindGroup(0, res.bindGroups[k]!);
          for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(...res.dispatch[k]!);
          pass.end();
          const t0 = performance.now();
          device.queue.submit([encoder.finish()]);
          await device.queue.onSubmittedWorkDone();
          best = Math.min(best, (performance.now() - t0) / reps);
        }
        ms.push(best);
      }
      checkUncaptured(this.gpu, "profiling the kernels");
      return ms;
    });
  }

  /** Resolves when the GPU has finished everything submitted so far. */
  async sync(): Promise<void> {
    await this.gpu.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    for (const b of this.res.owned) b.destroy();
  }
}

// ---- Training ----

export interface OptimiserInfo {
  kind: string;
  /** The configured learning rate (a schedule passes its own value per step). */
  lr: number;
  beta1: number;
  beta2: number;
}

/** The optimiser's per-step scalars: [lr, step, 1 - beta1^step, 1 - beta2^step], the bias
 * corrections in float64 as the interpreter computes them. `step` counts this step (from 1). */
export function optimiserScalars(o: OptimiserInfo, lr: number, step: number): Float32Array {
  return Float32Array.of(lr, step, 1 - o.beta1 ** step, 1 - o.beta2 ** step);
}

/** A training-step plan: forward, backward, optimiser and running statistics in one submit. */
export interface TrainPlanInfo extends StatePlan {
  model: string;
  batch: number;
  optimizer: OptimiserInfo;
  /** The model's data inputs, [batch, ...shape] floats each. */
  inputs: { name: string; floats: number }[];
  /** Per task: the input holding its labels (one integer per sample, stored as f32) and the
   * output holding its mean cross-entropy. "loss" is the weighted sum. */
  tasks: { name: string; labels: string; loss: string; weight: number }[];
  /** The [seed, step] input dropout masks are drawn from, when the model has dropout. */
  rng: string | null;
  /** The optimiser's per-step scalar input. */
  scalars: string;
  /** State names: trained parameters, buffers (running statistics), optimiser slots. */
  paramNames: string[];
  bufferNames: string[];
  slotNames: string[];
}

/** Name of the step counter in state(): a checkpoint restores the dropout stream too. */
export const STEP_STATE = "optimizer.step";

export interface TrainBatch {
  inputs: Record<string, ArrayLike<number>>;
  labels: Record<string, ArrayLike<number>>;
}

export class GpuTrainer {
  private constructor(
    readonly exec: StateExecutor,
    readonly plan: TrainPlanInfo,
    public seed: number,
    /** Steps taken; the dropout masks of the next step use this value, the optimiser step+1
     * (the interpreter's trainStep convention). */
    public step: number,
  ) {}

  /** Compiles the plan; `state` (parameters and buffers, slots optional: zero) is uploaded. */
  static async create(gpu: Gpu, plan: TrainPlanInfo, init: { state: ReadonlyMap<string, ArrayLike<number>>; seed: number; step?: number }): Promise<GpuTrainer> {
    const exec = await StateExecutor.create(gpu, plan);
    const t = new GpuTrainer(exec, plan, init.seed, init.step ?? 0);
    t.load(init.state);
    return t;
  }

  /** Loads parameters and buffers (and slots, and STEP_STATE, when present; missing slots are
   * zero, a fresh optimiser). */
  load(state: ReadonlyMap<string, ArrayLike<number>>): void {
    const values = new Map(state);
    const step = values.get(STEP_STATE);
    values.delete(STEP_STATE);
    if (step) this.step = step[0]!;
    for (const s of this.plan.slotNames) if (!values.has(s)) values.set(s, new Float32Array(this.exec.stateSize(s)));
    for (const n of [...this.plan.paramNames, ...this.plan.bufferNames]) if (!values.has(n)) throw new DeviceError("validation", `no value for ${n} in the state loaded`);
    this.exec.writeState(values);
  }

  /** One training step in one submit. The loss (and per-task losses) are read back only when
   * `readLoss`, plus any outputs in `read` (gradients, for checks). */
  async trainStep(batch: TrainBatch, options: { lr?: number; readLoss?: boolean; read?: string[] } = {}): Promise<{ loss?: number; taskLosses?: Record<string, number>; values: Map<string, Float32Array> }> {
    const p = this.plan;
    const feeds = new Map<string, ArrayLike<number>>();
    for (const i of p.inputs) feeds.set(i.name, batch.inputs[i.name]!);
    for (const t of p.tasks) feeds.set(t.labels, batch.labels[t.name]!);
    if (p.rng) feeds.set(p.rng, [this.seed, this.step]);
    feeds.set(p.scalars, optimiserScalars(p.optimizer, options.lr ?? p.optimizer.lr, this.step + 1));
    const read = [...(options.readLoss ? ["loss", ...p.tasks.map((t) => t.loss)] : []), ...(options.read ?? [])];
    const values = await this.exec.run(feeds, read);
    this.step++;
    if (!options.readLoss) return { values };
    return { loss: values.get("loss")![0]!, taskLosses: Object.fromEntries(p.tasks.map((t) => [t.name, values.get(t.loss)![0]!])), values };
  }

  /** Parameters, buffers, optimiser slots and the step counter, for checkpoints. */
  async state(): Promise<Map<string, Float32Array>> {
    const s = await this.exec.readState();
    s.set(STEP_STATE, Float32Array.of(this.step));
    return s;
  }

  destroy(): void {
    this.exec.destroy();
  }
}

// ---- Inference ----

export interface InferPlanInfo extends StatePlan {
  model: string;
  batch: number;
  inputs: { name: string; floats: number }[];
  /** Per task: outputs with its logits and softmax probabilities, [batch, classes]; with
   * losses, its labels input and mean cross-entropy output ("loss" the weighted sum). */
  tasks: { name: string; classes: number; logits: string; probs: string; labels?: string; loss?: string }[];
  /** The [seed, sample] input of MC dropout, null when the plan has no dropout on. */
  rng: string | null;
}

export class GpuPredictor {
  private constructor(
    readonly exec: StateExecutor,
    readonly plan: InferPlanInfo,
  ) {}

  /** With `share` (a trainer of the same model), the predictor reads the trainer's parameters
   * and buffers in place: evaluate between steps with no upload. */
  static async create(gpu: Gpu, plan: InferPlanInfo, options: { share?: GpuTrainer | StateExecutor } = {}): Promise<GpuPredictor> {
    const share = options.share instanceof GpuTrainer ? options.share.exec : options.share;
    return new GpuPredictor(await StateExecutor.create(gpu, plan, share ? { share } : {}), plan);
  }

  /** Per task: probabilities (and logits) for one batch; `sample` picks the MC-dropout mask. */
  async predict(inputs: Record<string, ArrayLike<number>>, options: { seed?: number; sample?: number; labels?: Record<string, ArrayLike<number>> } = {}) {
    const p = this.plan;
    const feeds = new Map<string, ArrayLike<number>>();
    for (const i of p.inputs) feeds.set(i.name, inputs[i.name]!);
    if (p.rng) feeds.set(p.rng, [options.seed ?? 0, options.sample ?? 0]);
    const withLoss = options.labels !== undefined && p.tasks.every((t) => t.labels && t.loss);
    if (withLoss) for (const t of p.tasks) feeds.set(t.labels!, options.labels![t.name]!);
    const read = p.tasks.flatMap((t) => [t.logits, t.probs, ...(withLoss ? [t.loss!] : [])]);
    const v = await this.exec.run(feeds, withLoss ? [...read, "loss"] : read);
    const tasks = Object.fromEntries(p.tasks.map((t) => [t.name, { logits: v.get(t.logits)!, probs: v.get(t.probs)!, loss: withLoss ? v.get(t.loss!)![0]! : undefined }]));
    return { tasks, loss: withLoss ? v.get("loss")![0]! : undefined };
  }

  /** MC dropout: `samples` forward passes with masks [seed, 0..samples-1]; per task, the
   * probabilities of each pass. One submit per pass. */
  async predictMC(inputs: Record<string, ArrayLike<number>>, samples: number, seed: number): Promise<Record<string, Float32Array[]>> {
    if (!this.plan.rng) throw new DeviceError("validation", "this plan has no dropout: plan it with mcDropout for MC inference");
    const out: Record<string, Float32Array[]> = Object.fromEntries(this.plan.tasks.map((t) => [t.name, []]));
    for (let s = 0; s < samples; s++) {
      const r = await this.predict(inputs, { seed, sample: s });
      for (const [name, v] of Object.entries(r.tasks)) out[name]!.push(v.probs);
    }
    return out;
  }

  destroy(): void {
    this.exec.destroy();
  }
}
