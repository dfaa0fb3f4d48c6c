// Generated kernels against the float64 interpreter: runs a graph's kernels on a WebGPU device
// (one command encoder, one submit, through the runtime's Executor) and compares with
// `evaluate`. Used by the GPU tests; the same checks serve whoever debugs a kernel on a new
// adapter. Two oracles:
//  - end to end: chosen outputs against the interpreter on the same (f32-rounded) feeds;
//  - per kernel: every kernel's output against its reference rule evaluated, in float64, on
//    the GPU's own inputs, which checks each kernel where it sits in a model independently of
//    how rounding errors propagate through the graph (whole training graphs are
//    ill-conditioned enough that f32 cannot match float64 to 1e-4 end to end).
import type { Gpu } from "../../runtime/device.ts";
import { type ExecFeeds, type ExecStats, Executor } from "../../runtime/executor.ts";
import type { Graph } from "../ir/graph.ts";
import { ruleOf } from "../ir/graph.ts";
import { type Feeds, evaluate } from "../ir/interpret.ts";
import type { IRNode, Prim, PrimAttrs } from "../ir/primitives.ts";
import { planGraph } from "./plan.ts";
import { needsKernel } from "./wgsl/index.ts";

/** The largest |a - b| / max(|a|, |b|, 1e-3 max|ref|) over a tensor: relative where values
 * are large, absolute (against the tensor's scale) where they are near zero. */
export function relError(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  let max = 1e-30;
  for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i]!));
  const floor = 1e-3 * max;
  let e = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = ref[i]!;
    const b = got[i]!;
    if (a === b) continue;
    const err = Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), floor);
    e = Math.max(e, Number.isNaN(err) ? Infinity : err);
  }
  return e;
}

/** Feeds rounded to f32, so the GPU and the interpreter see the same inputs. */
export function roundFeeds(feeds: Feeds): Feeds {
  const round = (m: ReadonlyMap<string, Float64Array>) => new Map([...m].map(([k, v]) => [k, v.map(Math.fround)]));
  return { inputs: round(feeds.inputs), params: round(feeds.params) };
}

export interface GpuRun {
  /** The requested values, in order. */
  values: Float32Array[];
  stats: ExecStats;
  /** Submit-to-readback time of each run (the first includes lavapipe's shader JIT). */
  runMs: number[];
  kernels: number;
}

/** Plans `outputs`, creates the pipelines and buffers, and runs `runs` times. */
export async function runOnGpu(gpu: Gpu, graph: Graph, outputs: number[], feeds: ExecFeeds, runs = 1): Promise<GpuRun> {
  const plan = planGraph(graph, outputs);
  const exec = await Executor.create(gpu, plan);
  try {
    let values: Float32Array[] = [];
    const runMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      values = await exec.run(feeds);
      runMs.push(exec.lastRunMs);
    }
    return { values, stats: exec.stats, runMs, kernels: plan.kernels.length };
  } finally {
    exec.destroy();
  }
}

/** Every value `outputs` depend on, leaves included, in id order. */
export function liveValues(graph: Graph, outputs: number[]): number[] {
  return [...planGraph(graph, outputs).bufferOf.keys()];
}

export interface Mismatch {
  value: number;
  prim: Prim;
  error: number;
  /** First element over the tolerance: index, reference, GPU. */
  at: [number, number, number];
}

/** Runs `outputs` on the GPU and in the interpreter (feeds rounded to f32 first) and returns
 * each output's relError, and the outputs over `tol`. */
export async function compareWithInterpreter(gpu: Gpu, graph: Graph, outputs: number[], feeds: Feeds, tol = 1e-4) {
  const f = roundFeeds(feeds);
  const run = await runOnGpu(gpu, graph, outputs, f);
  const ref = evaluate(graph, f, outputs);
  const errors = outputs.map((_, k) => relError(ref[k]!, run.values[k]!));
  const mismatches: Mismatch[] = [];
  outputs.forEach((o, k) => {
    if (errors[k]! <= tol) return;
    const i = ref[k]!.findIndex((a, j) => !(relError([a], [run.values[k]![j]!]) <= tol));
    mismatches.push({ value: o, prim: graph.node(o).prim, error: errors[k]!, at: [i, ref[k]![i]!, run.values[k]![i]!] });
  });
  return { errors, mismatches, run, ref };
}

/** Primitives linear in each input: in f32 they are accurate relative to the sum of the terms'
 * magnitudes (the rule applied to |inputs|), not to the result, which may cancel to ~0 (the
 * gradient of a bias right before a batchnorm is mathematically zero). */
const SUMS = new Set<Prim>(["reduce", "matmul", "conv2d", "conv2d_input_grad", "conv2d_weight_grad", "windows_transpose"]);

/**
 * A bound on the magnitudes an f32 evaluation of `node` rounds at, given its inputs' values and
 * theirs: a fused kernel's error is relative to that, not to the result (x - mean of a batch of
 * 2 cancels to ~0 and f32 keeps the rounding of x). Sums of terms add their magnitudes, as the
 * per-kernel check does for a single sum.
 */
function magnitude(node: IRNode<Prim>, vals: Float64Array[], mags: Float64Array[], value: Float64Array, evalOn: (xs: Float64Array[]) => Float64Array): Float64Array {
  const [a, b] = vals;
  const [ma, mb] = mags;
  const each = (f: (i: number) => number) => Float64Array.from(value, (_, i) => f(i));
  switch (node.prim) {
    case "add":
    case "sub":
      return each((i) => ma![i]! + mb![i]!);
    case "mul":
      return each((i) => ma![i]! * mb![i]!);
    case "div":
      return each((i) => ma![i]! / Math.abs(b![i]!) + (Math.abs(a![i]!) * mb![i]!) / (b![i]! * b![i]!));
    case "neg":
    case "relu":
      return ma!;
    case "maximum":
    case "minimum":
      return each((i) => Math.max(ma![i]!, mb![i]!));
    case "exp":
      return each((i) => Math.abs(value[i]!) * (1 + ma![i]!));
    case "log":
      return each((i) => Math.abs(value[i]!) + ma![i]! / Math.abs(a![i]!));
    case "sqrt":
      return each((i) => Math.abs(value[i]!) + ma![i]! / (2 * Math.abs(value[i]!)));
    case "sigmoid":
      return each((i) => Math.abs(value[i]!) + value[i]! * (1 - value[i]!) * ma![i]!);
    case "broadcast":
    case "reshape":
    case "slice":
    case "windows":
      return evalOn([ma!]).map(Math.abs);
    case "dropout":
      return evalOn([ma!, b!]).map(Math.abs);
    case "reduce":
      return (node.attrs as PrimAttrs["reduce"]).op === "sum" ? evalOn([ma!]) : value.map(Math.abs);
    default:
      return value.map(Math.abs);
  }
}

/** Checks every kernel among `values` (value id -> GPU result, with the stored values it read
 * present) against its reference rule on the GPU's own inputs; returns each kernel's error. A
 * value computed inline by a fused kernel (absent from `values`) is evaluated in float64 from
 * the stored values, as the kernel did, with the magnitudes it rounds at (magnitude()). */
export function checkEveryKernel(graph: Graph, values: ReadonlyMap<number, Float32Array>): { value: number; prim: Prim; error: number }[] {
  const out: { value: number; prim: Prim; error: number }[] = [];
  const ctx = { feed: () => new Float64Array(0) };
  const evalNode = (node: IRNode<Prim>, xs: Float64Array[]) => ruleOf(node.prim).eval(xs, node.attrs as never, node.inputs.map((i) => graph.shapeOf(i)), node.shape, node as never, ctx);
  // [value, magnitude] of inputs: stored ones as read, inlined ones evaluated (memoised).
  const inlined = new Map<number, [Float64Array, Float64Array]>();
  const input = (id: number): [Float64Array, Float64Array] => {
    const got = values.get(id);
    if (got) {
      const x = Float64Array.from(got);
      return [x, x.map(Math.abs)];
    }
    const hit = inlined.get(id);
    if (hit) return hit;
    const node = graph.node(id) as IRNode<Prim>;
    if (node.inputs.length === 0 && node.prim !== "const") throw new Error(`%${id} ${node.prim}: a leaf the check needs is missing`);
    const ins = node.inputs.map(input);
    const v = evalNode(node, ins.map((x) => x[0]));
    const r: [Float64Array, Float64Array] = [v, magnitude(node, ins.map((x) => x[0]), ins.map((x) => x[1]), v, (xs) => evalNode(node, xs))];
    inlined.set(id, r);
    return r;
  };
  for (const [id, got] of values) {
    const node = graph.node(id) as IRNode<Prim>;
    if (!needsKernel(node)) continue;
    const ins = node.inputs.map(input);
    const ref = evalNode(node, ins.map((x) => x[0]));
    const linear = SUMS.has(node.prim) && (node.prim !== "reduce" || (node.attrs as PrimAttrs["reduce"]).op === "sum");
    const mag = linear ? evalNode(node, ins.map((x) => x[1])) : magnitude(node, ins.map((x) => x[0]), ins.map((x) => x[1]), ref, (xs) => evalNode(node, xs));
    // The scale of the tensor over its finite values (max pooling's padding is -inf).
    let max = 1e-30;
    for (const v of ref) if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
    let error = 0;
    for (let i = 0; i < ref.length; i++) {
      if (ref[i] === got[i]) continue; // infinities included (padding of max pooling)
      const d = Math.abs(ref[i]! - got[i]!);
      if (d > 0) error = Math.max(error, d / Math.max(Math.abs(ref[i]!), Math.abs(got[i]!), Math.abs(mag[i]!), 1e-3 * max));
      else if (Number.isNaN(d)) error = Infinity;
    }
    out.push({ value: id, prim: node.prim, error });
  }
  return out;
}
