// One training step on the GPU (the train plan: one encoder, one submit) against the float64
// interpreter's trainStep, from the same f32-rounded weights and data. Two checks:
//
// End to end, per tensor, the relative error in norm  ‖gpu − ref‖ / ‖ref‖. A tensor that is
// zero in exact arithmetic (a bias right before a batchnorm: the batch mean cancels it) has a
// float64 reference of pure rounding noise, under 1e-14 of the largest tensor of its kind (the
// models' others are above 1e-11), and a relative error that means nothing: such tensors are
// judged absolutely, ‖gpu − ref‖ / (largest ‖ref‖ of the kind). Their updated
// values are left out of the end-to-end parameters: Adam normalises a noise gradient into a
// step of ±lr in any precision (the optimiser check covers them). Next to each error, the same
// error for float64 arithmetic on values stored in f32 (each value rounded once) shows how much
// is the conditioning of the step rather than the GPU: batch statistics over 2 samples at 1x1
// pixels amplify a single rounding to 1e-3 and beyond.
//
// The code on its own values: every kernel against its float64 rule evaluated on the inputs it
// actually read (gpucheck's per-kernel check, on this plan's buffers, so the plan's wiring is
// checked too), the optimiser against optimiserStep applied to the GPU's own gradients, and
// the running statistics against the values they were copied from (bit for bit). If these all
// hold, the GPU computed the graph to f32 accuracy, and any end-to-end gap is conditioning.
import type { Program } from "../check/program.ts";
import { type Graph, ruleOf } from "../ir/graph.ts";
import { rematerialise } from "../ir/remat.ts";
import { type Feeds, type TrainState, buildTrainGraph, feedsFor, initState, optimiserStep, seededUniform, trainStep } from "../ir/interpret.ts";
import { type IRNode, type Prim, numel } from "../ir/primitives.ts";
import type { Gpu } from "../../runtime/device.ts";
import { GpuTrainer } from "../../runtime/trainer-exec.ts";
import { checkEveryKernel, roundFeeds } from "./gpucheck.ts";
import { type PlanSummary, type TrainPlan, planTrainStep } from "./train-plan.ts";

/** Below this fraction of the largest reference norm of its kind, a reference tensor is zero in
 * exact arithmetic (float64 rounding noise), and is judged against that largest norm. */
export const ZERO = 1e-14;

export interface Row {
  what: string;
  tensors: number;
  /** Largest error over the tensors, and where. */
  error: number;
  worst: string;
  /** The same measure for float64 arithmetic on f32-stored values (NaN where not measured). */
  storage: number;
}

export interface VerifyResult {
  model: string;
  optimizer: string;
  summary: PlanSummary;
  ms: { plan: number; pipelines: number; firstStep: number; nextStep: number; interpreter: number };
  endToEnd: Row[];
  /** End to end over the whole step: each kind of tensor as one vector, ‖gpu − ref‖ / ‖ref‖. */
  whole: Row[];
  /** Trained tensors whose gradient is zero in exact arithmetic (see ZERO). */
  vanishing: string[];
  code: Row[];
  /** "end-to-end": every per-tensor end-to-end error within tolerance (and the code check);
   * "step": the whole-step errors within tolerance and the code check within a tenth of it, not
   * every per-tensor error (those a few tensors' conditioning puts beyond f32); "fail":
   * neither. */
  verdict: "end-to-end" | "step" | "fail";
  tolerance: number;
  notes: string[];
}

const norm = (v: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
};
const distance = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
};

/** The row over named tensors: ‖got − ref‖ / ‖ref‖, or / largest ‖ref‖ where ‖ref‖ is zero in
 * exact arithmetic (see ZERO); NaN counts as ∞. */
function row(what: string, names: readonly string[], ref: (n: string) => ArrayLike<number>, got: (n: string) => ArrayLike<number>, storage?: (n: string) => ArrayLike<number>): Row {
  const largest = Math.max(1e-300, ...names.map((n) => norm(ref(n))));
  const err = (n: string, x: ArrayLike<number>) => {
    const r = norm(ref(n));
    const e = distance(x, ref(n)) / (r < ZERO * largest ? largest : r);
    return Number.isNaN(e) ? Infinity : e;
  };
  let error = 0;
  let worst = "";
  for (const n of names) {
    const e = err(n, got(n));
    if (e > error || worst === "") [error, worst] = [e, n];
  }
  return { what, tensors: names.length, error, worst, storage: storage ? Math.max(0, ...names.map((n) => err(n, storage(n)))) : NaN };
}

/** The row over named tensors taken as one vector: ‖got − ref‖ / ‖ref‖ of their concatenation. */
function wholeRow(what: string, names: readonly string[], ref: (n: string) => ArrayLike<number>, got: (n: string) => ArrayLike<number>, storage?: (n: string) => ArrayLike<number>): Row {
  const sq = (f: (n: string) => number) => Math.sqrt(names.reduce((a, n) => a + f(n) ** 2, 0));
  const r = sq((n) => norm(ref(n)));
  const of = (x: (n: string) => ArrayLike<number>) => {
    const e = sq((n) => distance(x(n), ref(n))) / Math.max(r, 1e-300);
    return Number.isNaN(e) ? Infinity : e;
  };
  return { what, tensors: names.length, error: of(got), worst: "", storage: storage ? of(storage) : NaN };
}

/** Evaluates `outputs` exactly (float64 rules) but stores every value rounded to f32. */
export function evaluateF32Storage(graph: Graph, feeds: Feeds, outputs: number[]): Float64Array[] {
  const vals: Float64Array[] = [];
  const ctx = {
    feed(node: IRNode) {
      const name = (node.attrs as { name: string }).name;
      return (node.prim === "input" ? feeds.inputs : feeds.params).get(name)!;
    },
  };
  const last = Math.max(...outputs);
  for (let id = 0; id <= last; id++) {
    const node = graph.node(id);
    const ins = node.inputs.map((i) => vals[i]!);
    vals[id] = ruleOf(node.prim as Prim).eval(ins, node.attrs as never, node.inputs.map((i) => graph.shapeOf(i)), node.shape, node as never, ctx as never).map(Math.fround);
  }
  return outputs.map((o) => vals[o]!);
}

const cloneState = (s: TrainState): TrainState => ({ params: new Map([...s.params].map(([k, v]) => [k, v.slice()])), slots: new Map(), step: s.step, seed: s.seed });

export interface VerifyStepOptions {
  batch: number;
  seed: number;
  tolerance: number;
  /** Edits the plan before it runs: tests plant bugs to see them caught. */
  tamper?: (plan: TrainPlan) => void;
}

export async function verifyStep(gpu: Gpu, program: Program, options: VerifyStepOptions): Promise<VerifyResult> {
  const { batch, seed, tolerance } = options;
  const ms = { plan: 0, pipelines: 0, firstStep: 0, nextStep: 0, interpreter: 0 };
  let t = performance.now();
  const lap = () => {
    const now = performance.now();
    const d = now - t;
    t = now;
    return d;
  };
  // The graph as planned (recomputation included), so that plan and interpreter share ids.
  // Every candidate is recomputed whatever its size: at verify's small sizes the trainer's
  // threshold would keep them all, and the check is of the recomputation users get at theirs.
  const model = rematerialise(buildTrainGraph(program, batch), { minFloats: 0 });
  const plan = planTrainStep(model, { readValues: true, remat: false });
  options.tamper?.(plan);
  ms.plan = lap();
  // Weights and data rounded to f32 first, so both sides start from the same numbers.
  const state = initState(program, seed);
  for (const [k, v] of state.params) state.params.set(k, v.map(Math.fround));
  const u = seededUniform((seed * 2654435761 + 0x5eed) >>> 0);
  const normal = () => Math.fround(Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
  const inputs = Object.fromEntries(program.inputs.map((i) => [i.name, Float64Array.from({ length: numel(model.graph.shapeOf(model.graph.inputs.get(i.name)!)) }, normal)]));
  const labels = Object.fromEntries(program.tasks.map((task) => [task.name, Array.from({ length: batch }, () => Math.floor(u() * task.classes.length))]));
  const data = { inputs, labels };

  const trainer = await GpuTrainer.create(gpu, plan, { state: state.params, seed });
  ms.pipelines = lap();
  let gpuLoss: number;
  let values: Map<string, Float32Array>;
  let after: Map<string, Float32Array>;
  try {
    const r = await trainer.trainStep(data, { readLoss: true, read: Object.keys(plan.outputs).filter((n) => n.startsWith("grad.") || n.startsWith("%")) });
    ms.firstStep = lap();
    gpuLoss = r.loss!;
    values = r.values;
    after = await trainer.state();
    lap();
    await trainer.trainStep(data);
    await trainer.exec.sync();
    ms.nextStep = lap();
  } finally {
    trainer.destroy();
  }

  const ref = cloneState(state);
  const step = trainStep(model, ref, data);
  ms.interpreter = lap();
  const gradNames = [...model.grads.keys()];
  const bufNames = [...model.updates.keys()];
  const gpuGrad = (n: string) => values.get(`grad.${n}`)!;
  // Conditioning: the same step in float64 arithmetic on f32-stored values.
  const feeds = roundFeeds(feedsFor(model, state, data));
  const stored = evaluateF32Storage(model.graph, feeds, [model.loss, ...gradNames.map((n) => model.grads.get(n)!), ...bufNames.map((n) => model.updates.get(n)!)]);
  const storedGrad = new Map(gradNames.map((n, k) => [n, stored[1 + k]!]));
  const storedState = cloneState(state);
  storedState.step = 1;
  optimiserStep(program.train.optimizer, storedState, storedGrad, program.train.optimizer.lr);
  bufNames.forEach((n, k) => storedState.params.set(n, stored[1 + gradNames.length + k]!));

  const gradRow = row("gradients", gradNames, (n) => step.grads.get(n)!, gpuGrad, (n) => storedGrad.get(n)!);
  const gFloor = ZERO * Math.max(...gradNames.map((n) => norm(step.grads.get(n)!)));
  const vanishing = gradNames.filter((n) => norm(step.grads.get(n)!) < gFloor);
  const steered = gradNames.filter((n) => !vanishing.includes(n));
  const endToEnd: Row[] = [
    row("loss", ["loss"], () => [step.loss], () => [gpuLoss], () => [stored[0]![0]!]),
    gradRow,
    row("updated parameters", steered, (n) => ref.params.get(n)!, (n) => after.get(n)!, (n) => storedState.params.get(n)!),
    row("running statistics", bufNames, (n) => ref.params.get(n)!, (n) => after.get(n)!, (n) => storedState.params.get(n)!),
  ];

  // The whole step: the loss, all gradients, all updated parameters (every trained tensor: the
  // ±lr steps of noise gradients are a tiny part of the vector) and all running statistics.
  const trained = [...model.grads.keys()];
  const whole: Row[] = [
    endToEnd[0]!,
    wholeRow("gradients", gradNames, (n) => step.grads.get(n)!, gpuGrad, (n) => storedGrad.get(n)!),
    wholeRow("updated parameters", trained, (n) => ref.params.get(n)!, (n) => after.get(n)!, (n) => storedState.params.get(n)!),
    wholeRow("running statistics", bufNames, (n) => ref.params.get(n)!, (n) => after.get(n)!, (n) => storedState.params.get(n)!),
  ];

  // The code on its own values: parameter leaves read the initial state (their buffers now
  // hold the updated values).
  const byId = new Map<number, Float32Array>();
  for (const [name, v] of values) if (name.startsWith("%")) byId.set(Number(name.slice(1)), v);
  for (const [name, id] of model.graph.params) byId.set(id, Float32Array.from(state.params.get(name)!));
  const kernels = checkEveryKernel(model.graph, byId);
  const worstKernel = kernels.reduce((a, k) => (k.error > a.error || Number.isNaN(k.error) ? k : a), { value: -1, prim: "input" as Prim, error: 0 });
  const opt = cloneState(state);
  opt.step = 1;
  optimiserStep(program.train.optimizer, opt, new Map(gradNames.map((n) => [n, Float64Array.from(gpuGrad(n))])), program.train.optimizer.lr);
  const slotNames = plan.slotNames;
  const slotRef = (s: string) => {
    const [name, suffix] = [s.slice(0, s.lastIndexOf(".")), s.slice(s.lastIndexOf(".") + 1)];
    const slot = opt.slots.get(name)!;
    return suffix === "exp_avg_sq" ? slot.v : slot.m;
  };
  const optimiser = row("optimiser (parameters and slots)", [...gradNames, ...slotNames], (n) => (opt.params.get(n) ?? slotRef(n)), (n) => after.get(n)!);
  // Placement: each gradient the optimiser read is its value (placed there, or copied), each
  // running statistic the update value copied in, each input the data uploaded; bit for bit.
  const differs = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length !== b.length || Array.prototype.some.call(a, (x: number, i: number) => !Object.is(x, b[i]));
  const copies = [
    ...gradNames.filter((n) => differs(gpuGrad(n), byId.get(model.grads.get(n)!)!)).map((n) => `grad.${n}`),
    ...bufNames.filter((n) => differs(after.get(n)!, byId.get(model.updates.get(n)!)!)),
    ...[...model.graph.inputs].filter(([n, id]) => byId.has(id) && differs(byId.get(id)!, Float32Array.from(feeds.inputs.get(n)!))).map(([n]) => `input ${n}`),
  ];
  const code: Row[] = [
    { what: "kernels (each on its own inputs)", tensors: kernels.length, error: worstKernel.error, worst: worstKernel.value < 0 ? "" : `%${worstKernel.value} ${worstKernel.prim}`, storage: NaN },
    optimiser,
    { what: "placement and copies", tensors: gradNames.length + bufNames.length + model.graph.inputs.size, error: copies.length > 0 ? Infinity : 0, worst: copies[0] ?? "", storage: NaN },
  ];
  // Each kernel 10x stricter than the end-to-end tolerance (1e-4 by default, gpucheck's).
  const within = (rows: Row[], tol: number) => rows.every((r) => r.error <= tol);
  const codeHolds = within(code, tolerance / 10);
  const verdict = within(endToEnd, tolerance) && codeHolds ? "end-to-end" : within(whole, tolerance) && codeHolds ? "step" : "fail";
  const o = program.train.optimizer;
  const notes = o.kind === "sgd" && o.nesterov === true ? ["the interpreter's optimiserStep has no Nesterov momentum (the GPU's has): the updated parameters and the optimiser row differ by design"] : [];
  return { model: program.model, optimizer: `${o.kind} (lr ${o.lr})`, summary: plan.summary, ms, endToEnd, whole, vanishing, code, verdict, tolerance, notes };
}
