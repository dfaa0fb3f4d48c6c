// Lowering: a checked Program (symbolic batch N) plus a batch size -> an IR graph over the
// primitive set. Layers become routines plus explicit broadcasts (bias, batchnorm statistics),
// pools become reductions (windowed ones over a `windows` gather), and the tasks become one
// scalar loss  sum_t w_t * CE_t. Parameters are `param` leaves under their Program names; a
// layer applied twice refers to the same names, so it gets the same leaf (Graph.param).
import type { Node, ParamInfo, Program } from "../check/program.ts";
import type { Shape } from "../check/shape.ts";
import { Size } from "../check/size.ts";
import { add, broadcastTo, constant, div, mul, scale, sub, sumTo } from "./emit.ts";
import { Graph } from "./graph.ts";
import { IRError, numel, sameShape } from "./primitives.ts";

export interface LowerOptions {
  batch: number;
  /** "train": batchnorm uses batch statistics and emits running-statistics updates, dropout is
   * on. "infer": running statistics; dropout only where `mc` is set and `mcDropout` is true. */
  mode?: "train" | "infer";
  mcDropout?: boolean;
}

export interface TaskValues {
  name: string;
  logits: number;
  /** Name of the graph input holding the task's integer labels, shape [batch]. */
  labels: string;
  /** The task's mean cross-entropy (a scalar value). */
  loss: number;
  weight: number;
}

export interface Lowered {
  program: Program;
  graph: Graph;
  batch: number;
  mode: "train" | "infer";
  /** Program node id -> IR value id. */
  values: Map<number, number>;
  tasks: TaskValues[];
  /** The weighted multitask loss, a scalar; -1 when the program has no tasks. */
  loss: number;
  /** Buffer name -> value of its new contents after this step (training mode only). These are
   * side outputs: nothing differentiates through them. */
  updates: Map<string, number>;
  params: Map<string, ParamInfo>;
}

/** Name of the [2] = [seed, step] input that dropout masks are drawn from. */
export const RNG_INPUT = "$rng";
export const labelInput = (task: string): string => `$label.${task}`;

function dims(shape: Shape, env: Map<string, Size>): number[] {
  return shape.map((a) => {
    const v = a.size.substitute(env).value;
    if (v === undefined || !Number.isInteger(v) || v < 1) throw new IRError(`size ${a.size} is not a positive constant once N is fixed`);
    return v;
  });
}

export function lower(program: Program, options: LowerOptions): Lowered {
  const mode = options.mode ?? "train";
  const batch = options.batch;
  const env = new Map([["N", Size.of(batch)]]);
  const g = new Graph();
  const values = new Map<number, number>();
  const updates = new Map<string, number>();
  const params = new Map(program.params.map((p) => [p.name, p]));
  const paramShape = (name: string): number[] => {
    const info = params.get(name);
    if (!info) throw new IRError(`no parameter ${name}`);
    return info.shape.map((s) => s.substitute(env).value!);
  };
  const rng = () => g.input(RNG_INPUT, [2]);

  const lowerNode = (node: Node): number => {
    const v = (k: number) => values.get(node.inputs[k]!)!;
    const out = dims(node.shape, env);
    const a = node.attrs;
    switch (node.op) {
      case "input":
        return g.input(String(a.name), out);
      case "param":
        return g.param(String(a.name), paramShape(String(a.name)));
      case "const":
        return constant(g, Number(a.value), out);
      case "conv2d": {
        const y = g.emit("conv2d", [v(0), v(1)], { stride: Number(a.stride), padding: Number(a.padding), dilation: Number(a.dilation), groups: Number(a.groups) });
        return node.inputs.length > 2 ? add(g, y, broadcastTo(g, v(2), out, [1])) : y;
      }
      case "dense": {
        const y = g.emit("matmul", [v(0), v(1)], { transA: false, transB: true });
        return node.inputs.length > 2 ? add(g, y, broadcastTo(g, v(2), out, [out.length - 1])) : y;
      }
      case "batchnorm":
        return batchnorm(node, [v(0), v(1), v(2), v(3), v(4)], out);
      case "relu":
      case "sigmoid":
      case "neg":
        return g.emit(node.op, [v(0)], {});
      case "add":
      case "sub":
      case "mul":
      case "div":
      case "maximum":
      case "minimum": {
        const align = (k: number, axes: unknown) => broadcastTo(g, v(k), out, axes as number[]);
        return g.emit(node.op, [align(0, a.alignA), align(1, a.alignB)], {});
      }
      case "gap":
      case "gmp":
      case "gminp": {
        const op = node.op === "gap" ? "sum" : node.op === "gmp" ? "max" : "min";
        const xs = g.shapeOf(v(0));
        const r = g.emit("reduce", [v(0)], { op, shape: out, axes: [0, 1] });
        return node.op === "gap" ? scale(g, r, 1 / (xs[2]! * xs[3]!)) : r;
      }
      case "maxpool":
      case "avgpool":
      case "minpool": {
        // Pooling = reduction over the gathered window axis; padding reads the reduction's
        // identity, so it never wins a max/min (avgpool counts it as 0 and divides by k*k).
        const k = Number(a.k);
        const pad = node.op === "maxpool" ? -Infinity : node.op === "minpool" ? Infinity : 0;
        const w = g.emit("windows", [v(0)], { k, stride: Number(a.stride), padding: Number(a.padding), pad });
        const op = node.op === "maxpool" ? "max" : node.op === "minpool" ? "min" : "sum";
        const r = g.emit("reduce", [w], { op, shape: out, axes: [0, 1, 2, 3] });
        return node.op === "avgpool" ? scale(g, r, 1 / (k * k)) : r;
      }
      case "concat":
        return node.inputs.length === 1 ? v(0) : g.emit("concat", node.inputs.map((_, k) => v(k)), { axis: Number(a.axis) });
      case "flatten":
        return g.emit("reshape", [v(0)], { shape: out });
      case "select": {
        const index = Number(a.index);
        const s = g.emit("slice", [v(0)], { axis: Number(a.axis), start: index, end: index + 1 });
        return g.emit("reshape", [s], { shape: out });
      }
      case "dropout": {
        const p = Number(a.p);
        const on = mode === "train" || (a.mc === true && options.mcDropout === true);
        // The Program node id names the mask's random stream: stable across compilations.
        return on && p > 0 ? g.emit("dropout", [v(0), rng()], { p, stream: node.id }) : v(0);
      }
    }
  };

  const batchnorm = (node: Node, [x, weight, bias, rmean, rvar]: number[], out: number[]): number => {
    const eps = Number(node.attrs.eps);
    const momentum = Number(node.attrs.momentum);
    const c = out[1]!;
    const chan = [c];
    const perChannel = (t: number) => broadcastTo(g, t, out, [1]);
    if (mode === "infer") {
      const k = div(g, weight!, g.emit("sqrt", [add(g, rvar!, constant(g, eps, chan))], {}));
      return add(g, mul(g, sub(g, x!, perChannel(rmean!)), perChannel(k)), perChannel(bias!));
    }
    // Batch statistics over every axis but the channels (biased variance, as PyTorch).
    const m = numel(out) / c;
    const mean = scale(g, sumTo(g, x!, chan, [1]), 1 / m);
    const xc = sub(g, x!, perChannel(mean));
    const variance = scale(g, sumTo(g, mul(g, xc, xc), chan, [1]), 1 / m);
    const rstd = div(g, constant(g, 1, chan), g.emit("sqrt", [add(g, variance, constant(g, eps, chan))], {}));
    const y = add(g, mul(g, xc, perChannel(mul(g, rstd, weight!))), perChannel(bias!));
    // Running statistics: r' = (1 - momentum) r + momentum * stat, the variance unbiased.
    const keep = (r: number, stat: number) => add(g, scale(g, r, 1 - momentum), scale(g, stat, momentum));
    updates.set(bufferName(rmean!), keep(rmean!, mean));
    updates.set(bufferName(rvar!), keep(rvar!, m > 1 ? scale(g, variance, m / (m - 1)) : variance));
    return y;
  };
  const bufferName = (id: number): string => {
    const n = g.node(id);
    if (n.prim !== "param") throw new IRError("batchnorm statistics must be buffers");
    return (n.attrs as { name: string }).name;
  };

  for (const node of program.nodes) {
    g.origin = node.id;
    const id = lowerNode(node);
    const want = dims(node.shape, env);
    if (!sameShape(g.shapeOf(id), want)) throw new IRError(`lowering ${node.op} (node ${node.id}) gave ${g.shapeOf(id)}, the checker said ${want}`);
    values.set(node.id, id);
  }
  g.origin = undefined;

  const tasks: TaskValues[] = program.tasks.map((t) => {
    const logits = values.get(t.logits)!;
    const labels = labelInput(t.name);
    const loss = softmaxCrossEntropy(g, logits, g.input(labels, [batch]), t.classes.length);
    return { name: t.name, logits, labels, loss, weight: t.weight };
  });
  let loss = -1;
  for (const t of tasks) {
    const term = mul(g, t.loss, constant(g, t.weight, []));
    loss = loss < 0 ? term : add(g, loss, term);
  }
  return { program, graph: g, batch, mode, values, tasks, loss, updates, params };
}

/** Mean over the batch of -log softmax(logits)[label], stable: the row maximum is subtracted
 * before exp, so exp never overflows and log sees a sum >= 1. Gradients through the maximum
 * cancel between the two terms (the loss does not depend on the shift). */
export function softmaxCrossEntropy(g: Graph, logits: number, labels: number, classes: number): number {
  const [n, k] = g.shapeOf(logits) as [number, number];
  if (k !== classes) throw new IRError(`logits have ${k} classes, the task ${classes}`);
  const rows = [n];
  const max = g.emit("reduce", [logits], { op: "max", shape: rows, axes: [0] });
  const z = sub(g, logits, broadcastTo(g, max, [n, k], [0]));
  const lse = g.emit("log", [sumTo(g, g.emit("exp", [z], {}), rows, [0])], {});
  const picked = sumTo(g, mul(g, z, g.emit("one_hot", [labels], { classes })), rows, [0]);
  return scale(g, sumTo(g, sub(g, lse, picked), [], []), 1 / n);
}
