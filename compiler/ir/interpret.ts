// The float64 reference interpreter: runs any IR graph with the registry's reference
// implementations, and on top of it one training step (forward, backward, batchnorm running
// statistics, optimiser update) and seeded parameter initialisation. It is the oracle the
// generated WebGPU code is tested against, so it favours clarity over speed.
import type { ParamInfo, Program, TrainConfig } from "../check/program.ts";
import { type Differentiated, differentiateModel } from "./autodiff.ts";
import type { Graph } from "./graph.ts";
import { ruleOf } from "./graph.ts";
import { type Lowered, RNG_INPUT, lower } from "./lower.ts";
import { type EvalContext, IRError, type IRNode, type Prim, numel } from "./primitives.ts";
import { initTensor, seededUniform } from "../../runtime/init.ts";

export interface Feeds {
  /** Graph inputs by name (data, labels, the RNG counter). */
  inputs: ReadonlyMap<string, Float64Array>;
  /** Parameters and buffers by name. */
  params: ReadonlyMap<string, Float64Array>;
}

/** Evaluates the values `outputs` (and only what they depend on); returns them in order. */
export function evaluate(graph: Graph, feeds: Feeds, outputs: number[]): Float64Array[] {
  const last = Math.max(-1, ...outputs);
  const live = new Uint8Array(last + 1);
  for (const o of outputs) live[o] = 1;
  for (let id = last; id >= 0; id--) if (live[id]) for (const i of graph.node(id).inputs) live[i] = 1;
  // Free each value after its last use, so a whole training graph fits in little memory.
  const lastUse = new Int32Array(last + 1).fill(-1);
  for (let id = 0; id <= last; id++) if (live[id]) for (const i of graph.node(id).inputs) lastUse[i] = id;
  for (const o of outputs) lastUse[o] = last + 1;
  const ctx: EvalContext = {
    feed(node) {
      const name = node.attrs.name;
      const v = node.prim === "input" ? feeds.inputs.get(name) : feeds.params.get(name);
      if (!v) throw new IRError(`no value fed for ${node.prim} ${name}`);
      return v;
    },
  };
  const vals: (Float64Array | undefined)[] = new Array(last + 1);
  for (let id = 0; id <= last; id++) {
    if (!live[id]) continue;
    const node = graph.node(id);
    const ins = node.inputs.map((i) => vals[i]!);
    const rule = ruleOf(node.prim as Prim);
    const out = rule.eval(ins, node.attrs as never, node.inputs.map((i) => graph.shapeOf(i)), node.shape, node as IRNode<never>, ctx);
    if (out.length !== numel(node.shape)) throw new IRError(`${node.prim} %${id} produced ${out.length} values for ${node.shape}`);
    vals[id] = out;
    for (const i of node.inputs) if (lastUse[i] === id) vals[i] = undefined;
  }
  return outputs.map((o) => vals[o]!);
}

// ---- Seeded initialisation (runtime/init.ts, shared with the generated trainers) ----

export { seededUniform };

/** Initial values of every parameter and buffer (see runtime/init.ts). */
export function initParams(params: readonly ParamInfo[], seed: number): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const p of params) {
    const n = p.shape.reduce((acc, s) => acc * (s.value ?? NaN), 1);
    if (!Number.isInteger(n)) throw new IRError(`parameter ${p.name} has a symbolic shape`);
    out.set(p.name, initTensor({ name: p.name, size: n, init: p.init }, seed));
  }
  return out;
}

// ---- Training ----

export interface TrainState {
  /** Parameters and buffers by name; updated in place by trainStep. */
  params: Map<string, Float64Array>;
  /** Optimiser slots per parameter (Adam: m, v; SGD: the momentum buffer in m). */
  slots: Map<string, { m: Float64Array; v: Float64Array }>;
  /** Steps taken; also the RNG step for dropout. */
  step: number;
  seed: number;
}

export type TrainGraph = Differentiated;

/** Lowers a Program for training at a batch size and differentiates it. */
export function buildTrainGraph(program: Program, batch: number): TrainGraph {
  return differentiateModel(lower(program, { batch, mode: "train" }));
}

export function initState(program: Program, seed = program.train.seed): TrainState {
  return { params: initParams(program.params, seed), slots: new Map(), step: 0, seed };
}

export interface Batch {
  /** Data inputs by Program input name, each numel([batch, ...shape]) values. */
  inputs: Record<string, Float64Array>;
  /** Integer labels by task name, one per sample. */
  labels: Record<string, ArrayLike<number>>;
}

/** Feeds for a lowered graph: data, labels and the RNG counter (seed, step). */
export function feedsFor(model: Lowered, state: TrainState, batch: Batch): Feeds {
  const inputs = new Map<string, Float64Array>();
  for (const [name, v] of Object.entries(batch.inputs)) inputs.set(name, v);
  for (const t of model.tasks) {
    const labels = batch.labels[t.name];
    if (labels) inputs.set(t.labels, Float64Array.from(labels));
  }
  inputs.set(RNG_INPUT, Float64Array.of(state.seed, state.step));
  return { inputs, params: state.params };
}

export interface StepResult {
  loss: number;
  taskLosses: Record<string, number>;
  grads: Map<string, Float64Array>;
}

/** One training step: forward, backward, running statistics, optimiser. `lr` overrides the
 * configured learning rate (a schedule's current value). */
export function trainStep(model: TrainGraph, state: TrainState, batch: Batch, train: TrainConfig = model.program.train, lr?: number): StepResult {
  const feeds = feedsFor(model, state, batch);
  const gradNames = [...model.grads.keys()];
  const updNames = [...model.updates.keys()];
  const outs = evaluate(model.graph, feeds, [model.loss, ...model.tasks.map((t) => t.loss), ...gradNames.map((n) => model.grads.get(n)!), ...updNames.map((n) => model.updates.get(n)!)]);
  const loss = outs[0]![0]!;
  const taskLosses = Object.fromEntries(model.tasks.map((t, i) => [t.name, outs[1 + i]![0]!]));
  const grads = new Map(gradNames.map((n, i) => [n, outs[1 + model.tasks.length + i]!]));
  updNames.forEach((n, i) => state.params.get(n)!.set(outs[1 + model.tasks.length + gradNames.length + i]!));
  state.step++;
  optimiserStep(train.optimizer, state, grads, lr ?? train.optimizer.lr);
  return { loss, taskLosses, grads };
}

function opt(o: TrainConfig["optimizer"], key: string, fallback: number): number {
  const v = o[key];
  return typeof v === "number" ? v : fallback;
}

/** Adam (with bias correction; adamw decouples the weight decay) or SGD with momentum
 * (PyTorch's form: v = momentum v + g, p -= lr v). `state.step` must already count this step. */
export function optimiserStep(o: TrainConfig["optimizer"], state: TrainState, grads: Map<string, Float64Array>, lr: number): void {
  const wd = opt(o, "weight_decay", 0);
  for (const [name, g] of grads) {
    const p = state.params.get(name)!;
    let slot = state.slots.get(name);
    if (!slot) state.slots.set(name, (slot = { m: new Float64Array(p.length), v: new Float64Array(o.kind === "sgd" ? 0 : p.length) }));
    if (o.kind === "sgd") {
      const mom = opt(o, "momentum", 0);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! + wd * p[i]!;
        slot.m[i] = mom * slot.m[i]! + gi;
        p[i]! -= lr * slot.m[i]!;
      }
      continue;
    }
    const b1 = opt(o, "beta1", 0.9);
    const b2 = opt(o, "beta2", 0.999);
    const eps = opt(o, "eps", 1e-8);
    const c1 = 1 - b1 ** state.step;
    const c2 = 1 - b2 ** state.step;
    for (let i = 0; i < p.length; i++) {
      const gi = o.kind === "adam" ? g[i]! + wd * p[i]! : g[i]!;
      if (o.kind === "adamw") p[i]! -= lr * wd * p[i]!;
      slot.m[i] = b1 * slot.m[i]! + (1 - b1) * gi;
      slot.v[i] = b2 * slot.v[i]! + (1 - b2) * gi * gi;
      p[i]! -= (lr * (slot.m[i]! / c1)) / (Math.sqrt(slot.v[i]! / c2) + eps);
    }
  }
}
