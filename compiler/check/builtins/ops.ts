// Tensor operations without weights: activations, pooling, concatenation, dropout, flatten,
// and the reductions over lists of tensors (sum, mean, max, min) that MIFA is written with.
import type { Shape } from "../shape.ts";
import { formatShape } from "../shape.ts";
import { Size } from "../size.ts";
import { type Located, expectBool, expectInt, expectList, expectNumber, expectTensor, fail, int } from "../values.ts";
import type { Args, Builtin, BuiltinContext } from "./context.ts";
import { resolvePadding, windowOutput } from "./layers.ts";

function arg(args: Args, name: string): Located {
  return args.get(name)!;
}

function unary(name: "relu" | "sigmoid", summary: string): Builtin {
  return {
    name,
    kind: "op",
    summary,
    params: [{ name: "x", type: "tensor" }],
    call(ctx, args, span) {
      const x = expectTensor(arg(args, "x"), ctx.file, `${name}'s input`);
      return ctx.addNode(name, [x.node], {}, x.shape, span);
    },
  };
}

function image(ctx: BuiltinContext, a: Located, what: string): { node: number; shape: Shape } {
  const x = expectTensor(a, ctx.file, `${what}'s input`);
  if (x.shape.length !== 4) fail("E301", `${what} expects a 4-D tensor [N, C, H, W], found ${formatShape(x.shape)}`, ctx.file, a.span);
  return x;
}

function globalPool(name: "gap" | "gmp" | "gminp", summary: string): Builtin {
  return {
    name,
    kind: "op",
    summary,
    params: [{ name: "x", type: "tensor" }],
    call(ctx, args, span) {
      const x = image(ctx, arg(args, "x"), name);
      return ctx.addNode(name, [x.node], {}, x.shape.slice(0, 2), span);
    },
  };
}

function windowPool(name: "maxpool" | "avgpool" | "minpool", summary: string): Builtin {
  return {
    name,
    kind: "op",
    summary,
    params: [
      { name: "x", type: "tensor" },
      { name: "k", type: "int" },
      { name: "stride", type: "int (default k)", default: int(0) },
      { name: "padding", type: 'int | "same" | "valid"', default: int(0) },
    ],
    call(ctx, args, span) {
      const x = image(ctx, arg(args, "x"), name);
      const k = expectInt(arg(args, "k"), ctx.file, "k");
      if (k < 1) fail("E402", `k must be at least 1, found ${k}`, ctx.file, arg(args, "k").span);
      let stride = expectInt(arg(args, "stride"), ctx.file, "stride");
      if (stride === 0) stride = k;
      if (stride < 1) fail("E402", `stride must be at least 1, found ${stride}`, ctx.file, arg(args, "stride").span);
      const padding = resolvePadding(ctx, arg(args, "padding"), k, 1);
      if (padding >= k) fail("E402", `padding (${padding}) must be smaller than the window (${k})`, ctx.file, arg(args, "padding").span);
      const [n, c, h, w] = x.shape as [Shape[0], Shape[0], Shape[0], Shape[0]];
      const ho = windowOutput(h.size, k, stride, padding, 1);
      const wo = windowOutput(w.size, k, stride, padding, 1);
      if ((ho.isConstant && ho.constant < 1) || (wo.isConstant && wo.constant < 1)) {
        fail("E300", `${name} with k=${k} leaves no output from ${formatShape(x.shape)}`, ctx.file, span);
      }
      return ctx.addNode(name, [x.node], { k, stride, padding }, [n, c, { label: h.label, size: ho }, { label: w.label, size: wo }], span);
    },
  };
}

function tensorsOf(ctx: BuiltinContext, a: Located, what: string): Located[] {
  return expectList(a, ctx.file, what).map((value) => ({ value, span: a.span }));
}

const concat: Builtin = {
  name: "concat",
  kind: "op",
  summary: "concatenation of tensors along an axis (default 1, the channels): concat(a, b) or concat(list)",
  params: [
    { name: "xs", type: "tensors" },
    { name: "axis", type: "int", default: int(1) },
  ],
  variadic: true,
  call(ctx, args, span) {
    let parts = tensorsOf(ctx, arg(args, "xs"), "concat's inputs");
    if (parts.length === 1 && parts[0]!.value.k === "list") parts = tensorsOf(ctx, parts[0]!, "concat's inputs");
    if (parts.length === 0) fail("E402", "concat needs at least one tensor", ctx.file, span);
    const tensors = parts.map((p) => expectTensor(p, ctx.file, "each of concat's inputs"));
    const first = tensors[0]!;
    const axis = expectInt(arg(args, "axis"), ctx.file, "axis");
    if (axis < 0 || axis >= first.shape.length) fail("E402", `axis ${axis} is outside ${formatShape(first.shape)}`, ctx.file, arg(args, "axis").span);
    let total = Size.of(0);
    for (const t of tensors) {
      const same = t.shape.length === first.shape.length && t.shape.every((a, i) => i === axis || (a.size.equals(first.shape[i]!.size) && a.label === first.shape[i]!.label));
      if (!same) fail("E300", `concat along axis ${axis}: ${formatShape(t.shape)} does not match ${formatShape(first.shape)}`, ctx.file, span);
      total = total.add(t.shape[axis]!.size);
    }
    const shape = first.shape.map((a, i) => (i === axis ? { label: a.label, size: total } : a));
    return ctx.addNode("concat", tensors.map((t) => t.node), { axis }, shape, span);
  },
};

const dropout: Builtin = {
  name: "dropout",
  kind: "op",
  summary: "inverted dropout with probability p; with mc (the default) it stays active for Monte Carlo inference",
  params: [
    { name: "x", type: "tensor" },
    { name: "p", type: "float" },
    { name: "mc", type: "bool", default: { k: "bool", v: true } },
  ],
  call(ctx, args, span) {
    const x = expectTensor(arg(args, "x"), ctx.file, "dropout's input");
    const p = expectNumber(arg(args, "p"), ctx.file, "p");
    if (!(p >= 0 && p < 1)) fail("E402", `dropout probability must be in [0, 1), found ${p}`, ctx.file, arg(args, "p").span);
    const mc = expectBool(arg(args, "mc"), ctx.file, "mc");
    return ctx.addNode("dropout", [x.node], { p, mc }, x.shape, span);
  },
};

const flatten: Builtin = {
  name: "flatten",
  kind: "op",
  summary: "[N, ...] to [N, product of the rest]",
  params: [{ name: "x", type: "tensor" }],
  call(ctx, args, span) {
    const x = expectTensor(arg(args, "x"), ctx.file, "flatten's input");
    if (x.shape.length < 2) fail("E301", `flatten expects at least 2 axes, found ${formatShape(x.shape)}`, ctx.file, arg(args, "x").span);
    const rest = x.shape.slice(1).reduce((acc, a) => acc.mul(a.size), Size.of(1));
    return ctx.addNode("flatten", [x.node], {}, [x.shape[0]!, { label: null, size: rest }], span);
  },
};

/** sum/mean/max/min over a list: elementwise over tensors, arithmetic over numbers. */
function listReduction(name: "sum" | "mean" | "max" | "min", summary: string): Builtin {
  return {
    name,
    kind: "list",
    summary,
    params: [{ name: "xs", type: "list" }],
    variadic: true,
    call(ctx, args, span) {
      let items = tensorsOf(ctx, arg(args, "xs"), `${name}'s input`);
      if (items.length === 1 && items[0]!.value.k === "list") items = tensorsOf(ctx, items[0]!, `${name}'s input`);
      if (items.length === 0) fail("E402", `${name} of an empty list`, ctx.file, span);
      const op = name === "max" ? "maximum" : name === "min" ? "minimum" : "add";
      let acc: Located = items[0]!;
      for (const item of items.slice(1)) acc = { value: ctx.elementwise(op, acc, item, span), span };
      if (name !== "mean") return acc.value;
      const scale: Located = { value: { k: "float", v: 1 / items.length }, span };
      return ctx.elementwise("mul", acc, scale, span);
    },
  };
}

export const ops: Builtin[] = [
  unary("relu", "max(x, 0), elementwise"),
  unary("sigmoid", "the logistic function 1 / (1 + exp(-x)), elementwise"),
  globalPool("gap", "global average pooling over H and W: [N, C, H, W] to [N, C]"),
  globalPool("gmp", "global max pooling over H and W"),
  globalPool("gminp", "global min pooling over H and W"),
  windowPool("maxpool", "windowed max pooling (k, stride, padding)"),
  windowPool("avgpool", "windowed average pooling; padding counts as zeros"),
  windowPool("minpool", "windowed min pooling"),
  concat,
  dropout,
  flatten,
  listReduction("sum", "elementwise sum of a list of tensors (or numbers)"),
  listReduction("mean", "elementwise mean of a list of tensors (or numbers)"),
  listReduction("max", "elementwise maximum of a list of tensors (or numbers)"),
  listReduction("min", "elementwise minimum of a list of tensors (or numbers)"),
];
