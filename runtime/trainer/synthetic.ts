// A built-in synthetic multimodal data set for `--synthetic`: a smoke test of a compiled model and
// its trainer without downloading anything. Browser-safe, in memory, deterministic from a seed.
//
// Every task is one modality with K classes; sample i of every modality shares the index i
// (modalities paired by index, as in the paper), but each modality draws its own labels. An
// image of class c (of K) in modality m is the sum of
//   - a colour tint on the hue wheel at angle 2πc/K (+ m)     — learnable by a linear model
//   - stripes at angle πc/K (+ 0.3m), random phase             — what a small CNN picks up
//   - a Gaussian blob at angle 2πc/K (+ m) from the centre, randomly shifted
//   - per-image brightness jitter and per-pixel noise (std `noise`)
// so a small CNN learns it within a few epochs and even softmax regression beats chance, while
// the noise keeps it from being trivial. Values are roughly zero-mean, unit-scale, like
// normalised pictures. Inputs that no task reads (e.g. extra views of one source) show the class
// of the first task: another view of the same sample.
//
// Images are drawn on demand from (seed, split, input, index), not stored, so a 128 x 128 model
// costs no memory beyond the batch being built; the same sample is the same picture every epoch.

import { Rng } from "../data/rng.ts";
import type { Batch, BatchSource, RunnerInput, RunnerTask } from "./types.ts";

export interface SyntheticOptions {
  batch: number;
  seed?: number;
  /** Training samples per epoch (default 512; at least one batch). */
  trainSize?: number;
  /** Validation samples (default 128). */
  valSize?: number;
  /** Per-pixel noise std (default 0.6). */
  noise?: number;
  /** The validation set's incomplete last batch: "pad" with valid = 0 (default) or keep it "short". */
  last?: "pad" | "short";
}

export interface SyntheticModel {
  inputs: readonly RunnerInput[];
  tasks: readonly RunnerTask[];
}

export type Split = "train" | "val";

interface Plan {
  /** Per input: the task whose class it shows. */
  taskOf: RunnerTask[];
  /** Per split, per task name: the label of each sample. */
  labels: Record<Split, Record<string, Int32Array>>;
}

/** Balanced labels (each class ⌊n/K⌋ or ⌈n/K⌉ times) in a seeded order. */
function balancedLabels(n: number, k: number, rng: Rng): Int32Array {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[order[i]!] = i % k;
  return out;
}

function plan(model: SyntheticModel, seed: number, sizes: Record<Split, number>): Plan {
  if (!model.tasks.length) throw new Error("synthetic data: the model has no tasks");
  const taskOf = model.inputs.map((input) => model.tasks.find((t) => t.data === input.name) ?? model.tasks[0]!);
  for (const t of model.tasks) {
    if (!model.inputs.some((i) => i.name === t.data)) throw new Error(`synthetic data: task ${t.name} reads unknown input ${t.data}`);
    if (t.classes.length < 2) throw new Error(`synthetic data: task ${t.name} needs at least 2 classes`);
  }
  const labels = {} as Plan["labels"];
  for (const split of ["train", "val"] as const) {
    labels[split] = {};
    for (const t of model.tasks) labels[split][t.name] = balancedLabels(sizes[split], t.classes.length, Rng.of(seed, "synthetic-labels", split, t.name));
  }
  return { taskOf, labels };
}

/**
 * Draws one image [C, H, W] of class `cls` (of k) for modality `m` into out[offset...].
 * Exported for tests and for previews.
 */
export function drawSynthetic(out: Float32Array, offset: number, shape: readonly number[], cls: number, k: number, m: number, rng: Rng, noise = 0.6): void {
  const [ch, h, w] = shape as [number, number, number];
  const hue = (2 * Math.PI * cls) / k + m;
  const theta = (Math.PI * cls) / k + 0.3 * m;
  const freq = 4; // stripe cycles across the image: coarse enough to survive 3x3 convolutions at 16 px
  const phase = rng.uniform(0, 2 * Math.PI);
  const bx = 0.22 * Math.cos(hue) + rng.uniform(-0.06, 0.06);
  const by = 0.22 * Math.sin(hue) + rng.uniform(-0.06, 0.06);
  const inv2s2 = 1 / (2 * 0.12 * 0.12);
  const brightness = rng.uniform(-0.2, 0.2);
  const cosT = Math.cos(theta);
  const sinT = Math.sin(theta);
  for (let y = 0; y < h; y++) {
    const v = (y + 0.5) / h - 0.5;
    for (let x = 0; x < w; x++) {
      const u = (x + 0.5) / w - 0.5;
      const stripes = 0.8 * Math.sin(2 * Math.PI * freq * (u * cosT + v * sinT) + phase);
      const blob = 1.2 * Math.exp(-((u - bx) ** 2 + (v - by) ** 2) * inv2s2);
      const base = stripes + blob + brightness;
      for (let c = 0; c < ch; c++) {
        const tint = 0.5 * Math.cos(hue + (2 * Math.PI * (c % 3)) / 3);
        // Sum of three uniforms: near-Gaussian noise at a third of Box-Muller's cost.
        const n = (rng.next() + rng.next() + rng.next() - 1.5) * 2;
        out[offset + (c * h + y) * w + x] = base + tint + noise * n;
      }
    }
  }
}

function checkShape(input: RunnerInput): number {
  const s = input.shape;
  if (s.length !== 3 || !s.every((d) => Number.isInteger(d) && d > 0))
    throw new Error(`synthetic data: input ${input.name} has shape [${s}], expected [C, H, W]`);
  return s[0]! * s[1]! * s[2]!;
}

export class SyntheticData implements BatchSource {
  readonly model: SyntheticModel;
  readonly batch: number;
  readonly seed: number;
  readonly trainSize: number;
  readonly valSize: number;
  readonly noise: number;
  readonly last: "pad" | "short";
  readonly trainSteps: number;
  private readonly plan: Plan;
  private readonly sizes: number[];

  constructor(model: SyntheticModel, options: SyntheticOptions) {
    this.model = model;
    this.batch = options.batch;
    this.seed = options.seed ?? 0;
    this.trainSize = options.trainSize ?? 512;
    this.valSize = options.valSize ?? 128;
    this.noise = options.noise ?? 0.6;
    this.last = options.last ?? "pad";
    if (!(Number.isInteger(this.batch) && this.batch >= 1)) throw new Error(`synthetic data: batch must be a positive integer, got ${this.batch}`);
    if (!(this.trainSize >= this.batch)) throw new Error(`synthetic data: trainSize ${this.trainSize} is smaller than one batch (${this.batch})`);
    if (!(this.valSize >= 1)) throw new Error("synthetic data: valSize must be at least 1");
    this.sizes = model.inputs.map(checkShape);
    this.plan = plan(model, this.seed, { train: this.trainSize, val: this.valSize });
    // Full batches only in training: fixed-shape GPU programs, and every sample weighs the same.
    this.trainSteps = Math.floor(this.trainSize / this.batch);
  }

  /** The label of sample i of `split` for task `task`. */
  label(split: Split, task: string, i: number): number {
    return this.plan.labels[split][task]![i]!;
  }

  /** A batch of the given sample indices; `pad` extra items repeat the last one with valid = 0. */
  makeBatch(split: Split, indices: readonly number[], pad = 0): Batch {
    const size = indices.length + pad;
    const inputs: Record<string, Float32Array> = {};
    this.model.inputs.forEach((input, m) => {
      const per = this.sizes[m]!;
      const task = this.plan.taskOf[m]!;
      const out = new Float32Array(size * per);
      for (let b = 0; b < indices.length; b++) {
        const i = indices[b]!;
        const rng = Rng.of(this.seed, "synthetic", split, input.name, i);
        drawSynthetic(out, b * per, input.shape, this.label(split, task.name, i), task.classes.length, m, rng, this.noise);
      }
      for (let b = indices.length; b < size; b++) out.copyWithin(b * per, (indices.length - 1) * per, indices.length * per);
      inputs[input.name] = out;
    });
    const labels: Record<string, Int32Array> = {};
    const valid: Record<string, Uint8Array> = {};
    for (const t of this.model.tasks) {
      const y = new Int32Array(size);
      for (let b = 0; b < size; b++) y[b] = this.label(split, t.name, indices[Math.min(b, indices.length - 1)]!);
      labels[t.name] = y;
      valid[t.name] = new Uint8Array(size).fill(1, 0, indices.length);
    }
    return pad > 0 ? { size, inputs, labels, valid } : { size, inputs, labels };
  }

  /** Training batches of `epoch`: a seeded shuffle per epoch, full batches only. */
  async *train(epoch: number): AsyncGenerator<Batch> {
    const order = Rng.of(this.seed, "synthetic-order", epoch).shuffle(Array.from({ length: this.trainSize }, (_, i) => i));
    for (let s = 0; s < this.trainSteps; s++) yield this.makeBatch("train", order.slice(s * this.batch, (s + 1) * this.batch));
  }

  /** Validation batches, in order; the last one padded (or short). The same every epoch. */
  async *val(_epoch = 0): AsyncGenerator<Batch> {
    for (let start = 0; start < this.valSize; start += this.batch) {
      const indices = Array.from({ length: Math.min(this.batch, this.valSize - start) }, (_, j) => start + j);
      yield this.makeBatch("val", indices, this.last === "pad" ? this.batch - indices.length : 0);
    }
  }
}

/** The synthetic data set for a model's inputs and tasks. */
export function syntheticData(model: SyntheticModel, options: SyntheticOptions): SyntheticData {
  return new SyntheticData(model, options);
}
