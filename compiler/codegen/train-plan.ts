// Whole training steps and inference as StatePlans (runtime/trainer-exec.ts): ONE command
// encoder and ONE submit per step.
//
// Training step, in the encoder's order:
//   1. one compute pass: every kernel of the differentiated graph (forward and backward), then
//      the optimiser, one dispatch per 128 MiB of parameters (one for any model so far);
//   2. one copy (per run of consecutive tensors) of the new running statistics into their
//      storage.
// Memory: the trained parameters form one flat arena, and every gradient value is computed
// directly into a gradient arena laid out alike, so the optimiser updates all parameters in one
// dispatch with no gathering. The batchnorm updates are likewise computed into an arena laid
// out like the buffers' arena, so their copy is a single copyBufferToBuffer. A value that
// cannot be placed (a leaf, or a kernel that would bind one arena both read-only and writable)
// gets its own buffer and a copy; a plan with gradient copies splits the pass in two around them.
import type { Command, InferPlanInfo, TrainPlanInfo } from "../../runtime/trainer-exec.ts";
import type { BufferSpec, KernelLaunch } from "../../runtime/executor.ts";
import type { Differentiated } from "../ir/autodiff.ts";
import { type RematOptions, type Rematerialised, rematerialise } from "../ir/remat.ts";
import { broadcastTo, div, sub, sumTo } from "../ir/emit.ts";
import { type Lowered, RNG_INPUT, lower } from "../ir/lower.ts";
import type { Program } from "../check/program.ts";
import { IRError, numel } from "../ir/primitives.ts";
import { OPTIM_CHUNK, OPTIM_SCALARS, type OptimSpec, optimSpec, optimiserLaunch, slotsOf } from "./optim.ts";
import type { FusionPlan } from "./fuse.ts";
import type { Graph } from "../ir/graph.ts";
import { Buffers, type Placement, coalescedCopies, placeValues, stateLayout } from "./state-plan.ts";

/** Name of the optimiser's per-step scalar input. */
export const OPTIM_INPUT = "$optim";

export interface PlanSummary {
  /** Kernels dispatched per step, compute passes, buffer copies, submits (1). */
  dispatches: number;
  passes: number;
  copies: number;
  submits: 1;
  /** Distinct WGSL texts: the pipelines a runtime compiles. */
  pipelines: number;
  /** GPU memory of all buffers, in bytes, as planned (with buffer reuse when planned). */
  bytes: number;
  /** The same without buffer reuse: one buffer per value. */
  unplannedBytes: number;
}

export interface TrainPlan extends TrainPlanInfo {
  spec: OptimSpec;
  summary: PlanSummary;
  /** What the fusion pass decided (for --report), over `graph`. */
  fusion: FusionPlan;
  graph: Graph;
}

export interface InferPlan extends InferPlanInfo {
  summary: PlanSummary;
  fusion: FusionPlan;
  graph: Graph;
}

function summarise(buffers: BufferSpec[], kernels: KernelLaunch[], commands: Command[], temps: { planned: number; unplanned: number }): PlanSummary {
  const bytes = buffers.reduce((n, b) => n + (b.view ? 0 : Math.max(4, b.floats * 4)), 0);
  const passes = commands.filter((c) => "pass" in c) as { pass: number[] }[];
  return {
    dispatches: passes.reduce((n, c) => n + c.pass.length, 0),
    passes: passes.length,
    copies: commands.length - passes.length,
    submits: 1,
    pipelines: new Set(kernels.map((k) => `${k.access.join()}\n${k.wgsl}`)).size,
    bytes,
    unplannedBytes: bytes - temps.planned + temps.unplanned,
  };
}

/** The state arenas of a model (parameters "state:params", buffers "state:buffers"). */
function stateArenas(b: Buffers, program: Program) {
  const layout = stateLayout(program);
  const params = b.arena("state:params", layout.params, (name) => ({ kind: "param", name }));
  const buffers = b.arena("state:buffers", layout.buffers, (name) => ({ kind: "param", name }));
  return { layout, params, buffers, state: new Map([...params.views, ...buffers.views]) };
}

/** Data inputs of the program that the plan reads, with their sizes. */
function dataInputs(model: Lowered, specs: BufferSpec[]): { name: string; floats: number }[] {
  const fed = new Set(specs.flatMap((s) => (s.init.kind === "input" ? [s.init.name] : [])));
  return model.program.inputs.filter((i) => fed.has(i.name)).map((i) => ({ name: i.name, floats: numel(model.graph.shapeOf(model.graph.inputs.get(i.name)!)) }));
}

export interface TrainPlanOptions {
  /** The optimiser; default the model's train section. */
  optimizer?: Program["train"]["optimizer"];
  /** Also make every graph value readable, as output `%<id>` (for checks: verify). The values
   * of parameter leaves are not among them: after a step their buffers hold the new values. */
  readValues?: boolean;
  /** Run the fusion pass (compiler/codegen/fuse.ts); false gives one kernel per IR node, for
   * comparison (`drifac compile --no-fuse`). Default true. */
  fuse?: boolean;
  /** Recompute cheap forward values in backward instead of keeping them (compiler/ir/remat.ts);
   * options change which. Default: with fusion. Plan ids then refer to the plan's own graph
   * (`plan.graph`). */
  remat?: boolean | RematOptions;
}

/** The training step of a differentiated model (buildTrainGraph / differentiateModel). */
export function planTrainStep(written: Differentiated, options: TrainPlanOptions = {}): TrainPlan {
  if (written.mode !== "train") throw new IRError("planTrainStep needs a graph lowered in train mode");
  const remat = options.remat ?? options.fuse ?? true;
  const model: Differentiated = remat ? rematerialise(written, remat === true ? {} : remat) : written;
  const recomputed = (model as Partial<Rematerialised>).recomputed ?? new Map<number, number>();
  const spec = optimSpec(options.optimizer ?? model.program.train.optimizer);
  const b = new Buffers();
  const { layout, params, buffers, state } = stateArenas(b, model.program);
  const slots = slotsOf(spec).map(({ slot, suffix }) => ({ slot, ...b.arena(`state:${suffix}`, layout.params, (name) => ({ kind: "param", name: `${name}.${suffix}` }), `.${suffix}`) }));
  const grads = b.root("gradients", layout.params.total);
  const updates = b.root("running-statistics updates", layout.buffers.total);

  // A value that is the gradient (or update) of two tensors stays in its own buffer and is
  // copied to both: a copy within one buffer is not allowed.
  const uses = new Map<number, number>();
  for (const id of [...model.grads.values(), ...model.updates.values()]) uses.set(id, (uses.get(id) ?? 0) + 1);
  const wanted = new Map<number, Placement>();
  for (const [name, id] of model.grads) if (uses.get(id) === 1) wanted.set(id, { arena: grads, offset: layout.params.offsets.get(name)! });
  for (const [name, id] of model.updates) if (uses.get(id) === 1) wanted.set(id, { arena: updates, offset: layout.buffers.offsets.get(name)! });
  const outputs = [model.loss, ...model.tasks.map((t) => t.loss), ...model.grads.values(), ...model.updates.values()];
  // readValues keeps every stored value to the end (no buffer reuse), for checks.
  const { bufferOf, kernels, placed, fusion, tempBytes } = placeValues(model.graph, outputs, b, state, wanted, { fusion: { enabled: options.fuse ?? true }, reuse: !options.readValues, recomputed });
  const keptSmall = (model as Partial<Rematerialised>).keptSmall;
  if (keptSmall?.values) fusion.keptSmall = keptSmall;
  const graphKernels = kernels.map((_, k) => k);

  // Gradients: the value's buffer when it was placed in the arena, else a view to copy into.
  const gradView = new Map<string, number>();
  const gradCopies: [number, number][] = [];
  for (const [name, floats] of layout.params.sizes) {
    const id = model.grads.get(name);
    const offset = layout.params.offsets.get(name)!;
    if (id !== undefined && placed.has(id) && b.specs[bufferOf.get(id)!]!.view?.offset === offset) {
      gradView.set(name, bufferOf.get(id)!);
      continue;
    }
    // A parameter the loss does not reach keeps a zero gradient (the view's fill).
    const v = b.view(grads, offset, floats, `grad ${name}`, id === undefined ? { kind: "fill", value: 0 } : { kind: "none" });
    gradView.set(name, v);
    if (id !== undefined) gradCopies.push([bufferOf.get(id)!, v]);
  }

  const scalars = b.root(OPTIM_INPUT, OPTIM_SCALARS, { kind: "input", name: OPTIM_INPUT });
  const optimKernels: number[] = [];
  const total = layout.params.total;
  for (let start = 0; start < total; start += OPTIM_CHUNK) {
    const n = Math.min(OPTIM_CHUNK, total - start);
    const chunk = (root: number) => (n === total ? root : b.view(root, start, n, `${b.specs[root]!.label}[${start}..]`));
    const slotOf = (s: "m" | "v") => {
      const a = slots.find((x) => x.slot === s);
      return a ? chunk(a.root) : undefined;
    };
    const m = slotOf("m");
    const v = slotOf("v");
    kernels.push(optimiserLaunch(spec, { hyper: scalars, g: chunk(grads), p: chunk(params.root), ...(m === undefined ? {} : { m }), ...(v === undefined ? {} : { v }) }, n, `optimiser ${spec.kind} [${start}..${start + n})`));
    optimKernels.push(kernels.length - 1);
  }

  // Running statistics into their storage, after every kernel that reads the old values.
  const statPairs: [number, number][] = [];
  for (const [name, id] of model.updates) statPairs.push([bufferOf.get(id)!, buffers.views.get(name)!]);
  const statCopies = coalescedCopies(b, statPairs, [...buffers.views.values()]);

  const commands: Command[] =
    gradCopies.length === 0
      ? [{ pass: [...graphKernels, ...optimKernels] }]
      : [{ pass: graphKernels }, ...gradCopies.map((c) => ({ copy: c })), { pass: optimKernels }];
  commands.push(...statCopies.map((c) => ({ copy: c })));

  const out: Record<string, number> = { loss: bufferOf.get(model.loss)! };
  for (const t of model.tasks) out[`loss.${t.name}`] = bufferOf.get(t.loss)!;
  for (const [name, v] of gradView) out[`grad.${name}`] = v;
  if (options.readValues) for (const [id, v] of bufferOf) if (model.graph.node(id).prim !== "param") out[`%${id}`] = v;
  const hasRng = model.graph.inputs.has(RNG_INPUT) && b.specs.some((s) => s.init.kind === "input" && s.init.name === RNG_INPUT);
  return {
    model: model.program.model,
    batch: model.batch,
    buffers: b.specs,
    kernels,
    commands,
    outputs: out,
    shared: [params.root, buffers.root],
    optimizer: { kind: spec.kind, lr: spec.lr, beta1: spec.beta1, beta2: spec.beta2 },
    spec,
    inputs: dataInputs(model, b.specs),
    tasks: model.tasks.map((t) => ({ name: t.name, labels: t.labels, loss: `loss.${t.name}`, weight: t.weight })),
    rng: hasRng ? RNG_INPUT : null,
    scalars: OPTIM_INPUT,
    paramNames: [...layout.params.offsets.keys()],
    bufferNames: [...layout.buffers.offsets.keys()],
    slotNames: slots.flatMap((s) => [...s.views.keys()].map((name) => b.specs[s.views.get(name)!]!.label)),
    summary: summarise(b.specs, kernels, commands, tempBytes),
    fusion,
    graph: model.graph,
  };
}

export interface InferOptions {
  batch: number;
  /** Dropout stays on where the model marks it `mc` (MC-dropout uncertainty). */
  mcDropout?: boolean;
  /** Also the task losses (validation): the plan then reads labels. */
  losses?: boolean;
  /** As TrainPlanOptions.fuse. */
  fuse?: boolean;
}

/** Inference: per task, logits and softmax probabilities, from the running statistics. */
export function planInference(program: Program, options: InferOptions): InferPlan {
  const model = lower(program, { batch: options.batch, mode: "infer", mcDropout: options.mcDropout ?? false });
  const g = model.graph;
  // Softmax with the row maximum subtracted, as the loss computes it (exp never overflows).
  const probs = model.tasks.map((t) => {
    const [n, k] = g.shapeOf(t.logits) as [number, number];
    const max = g.emit("reduce", [t.logits], { op: "max", shape: [n], axes: [0] });
    const e = g.emit("exp", [sub(g, t.logits, broadcastTo(g, max, [n, k], [0]))], {});
    return div(g, e, broadcastTo(g, sumTo(g, e, [n], [0]), [n, k], [0]));
  });
  const b = new Buffers();
  const { params, buffers, state } = stateArenas(b, program);
  if (options.losses && model.loss < 0) throw new IRError(`${program.model} has no tasks, so no losses to plan`);
  const lossOuts = options.losses ? [model.loss, ...model.tasks.map((t) => t.loss)] : [];
  const { bufferOf, kernels, fusion, tempBytes } = placeValues(g, [...model.tasks.map((t) => t.logits), ...probs, ...lossOuts], b, state, new Map(), { fusion: { enabled: options.fuse ?? true }, reuse: true });
  const commands: Command[] = [{ pass: kernels.map((_, k) => k) }];
  const outputs: Record<string, number> = {};
  model.tasks.forEach((t, k) => {
    outputs[`logits.${t.name}`] = bufferOf.get(t.logits)!;
    outputs[`probs.${t.name}`] = bufferOf.get(probs[k]!)!;
    if (options.losses) outputs[`loss.${t.name}`] = bufferOf.get(t.loss)!;
  });
  if (options.losses) outputs.loss = bufferOf.get(model.loss)!;
  const hasRng = b.specs.some((s) => s.init.kind === "input" && s.init.name === RNG_INPUT);
  return {
    model: program.model,
    batch: options.batch,
    buffers: b.specs,
    kernels,
    commands,
    outputs,
    shared: [params.root, buffers.root],
    inputs: dataInputs(model, b.specs),
    tasks: model.tasks.map((t) => ({
      name: t.name,
      classes: g.shapeOf(t.logits)[1]!,
      logits: `logits.${t.name}`,
      probs: `probs.${t.name}`,
      ...(options.losses ? { labels: t.labels, loss: `loss.${t.name}` } : {}),
    })),
    rng: hasRng ? RNG_INPUT : null,
    summary: summarise(b.specs, kernels, commands, tempBytes),
    fusion,
    graph: g,
  };
}
