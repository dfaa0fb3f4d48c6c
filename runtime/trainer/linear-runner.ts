// A ModelRunner in plain TypeScript: one softmax regression per task on the pixels of the task's
// input, trained by SGD with momentum. It is the reference implementation of the ModelRunner
// contract (valid masks, Σ weight · CE, optimiser slots in state()) and lets the loop, the CLI
// and `--synthetic` run on any machine without a GPU, in tests and in a browser alike.

import { Rng } from "../data/rng.ts";
import type { Batch, ModelRunner, RunnerInput, RunnerTask } from "./types.ts";

export interface LinearRunnerOptions {
  inputs: RunnerInput[];
  tasks: RunnerTask[];
  seed?: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
}

interface Head {
  task: RunnerTask;
  input: string;
  k: number;
  d: number;
  /** [K, D] weights, then [K] biases: one array so the momentum slot mirrors it. */
  w: Float32Array;
  m: Float32Array;
}

export class LinearRunner implements ModelRunner {
  readonly inputs: RunnerInput[];
  readonly tasks: RunnerTask[];
  readonly stateShapes: Record<string, readonly number[]> = {};
  private readonly heads: Head[];
  private readonly momentum: number;

  constructor(options: LinearRunnerOptions) {
    this.inputs = options.inputs;
    this.tasks = options.tasks;
    this.momentum = options.momentum ?? 0.9;
    const rng = Rng.of(options.seed ?? 0, "linear-runner-init");
    this.heads = options.tasks.map((task) => {
      const input = options.inputs.find((i) => i.name === task.data);
      if (!input) throw new Error(`linear runner: task ${task.name} reads unknown input ${task.data}`);
      const d = input.shape.reduce((a, b) => a * b, 1);
      const k = task.classes.length;
      const w = new Float32Array(k * d + k);
      for (let j = 0; j < k * d; j++) w[j] = 0.01 * rng.normal();
      this.stateShapes[`${task.name}.weight`] = [k, d];
      this.stateShapes[`${task.name}.bias`] = [k];
      this.stateShapes[`${task.name}.weight.momentum`] = [k, d];
      this.stateShapes[`${task.name}.bias.momentum`] = [k];
      return { task, input: input.name, k, d, w, m: new Float32Array(w.length) };
    });
  }

  /** Softmax probabilities [B, K] of one head. Features are scaled by 1/√D so one lr fits any image size. */
  private forward(h: Head, batch: Batch): Float32Array {
    const x = batch.inputs[h.input];
    if (!x || x.length !== batch.size * h.d)
      throw new Error(`linear runner: input ${h.input} has ${x?.length ?? "no"} values, expected ${batch.size} x ${h.d}`);
    const scale = 1 / Math.sqrt(h.d);
    const p = new Float32Array(batch.size * h.k);
    const z = new Float64Array(h.k);
    for (let i = 0; i < batch.size; i++) {
      let max = -Infinity;
      for (let c = 0; c < h.k; c++) {
        let s = h.w[h.k * h.d + c]!;
        const row = c * h.d;
        const xi = i * h.d;
        for (let j = 0; j < h.d; j++) s += h.w[row + j]! * x[xi + j]! * scale;
        z[c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < h.k; c++) sum += z[c] = Math.exp(z[c]! - max);
      for (let c = 0; c < h.k; c++) p[i * h.k + c] = z[c]! / sum;
    }
    return p;
  }

  /** Mean CE over valid items, and the gradient of it when `grad` is given. */
  private lossOf(h: Head, batch: Batch, p: Float32Array, grad?: Float64Array): { loss: number; n: number } {
    const y = batch.labels[h.task.name];
    if (!y) throw new Error(`linear runner: batch has no labels for task ${h.task.name}`);
    const valid = batch.valid?.[h.task.name];
    let n = 0;
    for (let i = 0; i < batch.size; i++) n += !valid || valid[i] ? 1 : 0;
    if (n === 0) return { loss: NaN, n };
    const x = batch.inputs[h.input]!;
    const scale = 1 / Math.sqrt(h.d);
    let loss = 0;
    for (let i = 0; i < batch.size; i++) {
      if (valid && !valid[i]) continue;
      loss -= Math.log(Math.max(p[i * h.k + y[i]!]!, 1e-12));
      if (!grad) continue;
      for (let c = 0; c < h.k; c++) {
        const g = (p[i * h.k + c]! - (c === y[i] ? 1 : 0)) / n;
        if (g === 0) continue;
        const row = c * h.d;
        const xi = i * h.d;
        for (let j = 0; j < h.d; j++) grad[row + j]! += g * x[xi + j]! * scale;
        grad[h.k * h.d + c]! += g;
      }
    }
    return { loss: loss / n, n };
  }

  async trainStep(batch: Batch, lr: number, wantLoss: boolean): Promise<{ loss?: number; taskLosses?: Record<string, number> }> {
    const taskLosses: Record<string, number> = {};
    let loss = 0;
    for (const h of this.heads) {
      const grad = new Float64Array(h.w.length);
      const r = this.lossOf(h, batch, this.forward(h, batch), grad);
      if (r.n === 0) continue;
      taskLosses[h.task.name] = r.loss;
      loss += h.task.weight * r.loss;
      // SGD with momentum (PyTorch form): m = μm + w_t·g; w -= lr·m.
      for (let j = 0; j < h.w.length; j++) {
        h.m[j] = this.momentum * h.m[j]! + h.task.weight * grad[j]!;
        h.w[j]! -= lr * h.m[j]!;
      }
    }
    return wantLoss ? { loss, taskLosses } : {};
  }

  async predict(batch: Batch): Promise<Record<string, Float32Array>> {
    return Object.fromEntries(this.heads.map((h) => [h.task.name, this.forward(h, batch)]));
  }

  async evalLoss(batch: Batch): Promise<{ loss: number; taskLosses: Record<string, number> }> {
    const taskLosses: Record<string, number> = {};
    let loss = 0;
    for (const h of this.heads) {
      const r = this.lossOf(h, batch, this.forward(h, batch));
      taskLosses[h.task.name] = r.loss;
      if (r.n > 0) loss += h.task.weight * r.loss;
    }
    return { loss, taskLosses };
  }

  async state(): Promise<Map<string, Float32Array>> {
    const s = new Map<string, Float32Array>();
    for (const h of this.heads) {
      const kd = h.k * h.d;
      s.set(`${h.task.name}.weight`, h.w.slice(0, kd));
      s.set(`${h.task.name}.bias`, h.w.slice(kd));
      s.set(`${h.task.name}.weight.momentum`, h.m.slice(0, kd));
      s.set(`${h.task.name}.bias.momentum`, h.m.slice(kd));
    }
    return s;
  }

  async load(state: Map<string, Float32Array>): Promise<void> {
    for (const h of this.heads) {
      const kd = h.k * h.d;
      const parts: [string, Float32Array, number, number][] = [
        ["weight", h.w, 0, kd],
        ["bias", h.w, kd, h.k],
        ["weight.momentum", h.m, 0, kd],
        ["bias.momentum", h.m, kd, h.k],
      ];
      for (const [name, into, at, len] of parts) {
        const v = state.get(`${h.task.name}.${name}`);
        if (!v || v.length !== len) throw new Error(`linear runner: state ${h.task.name}.${name} is ${v ? `${v.length} values, expected ${len}` : "missing"}`);
        into.set(v, at);
      }
    }
  }
}
