// Layers with weights: conv, dense, batchnorm. Each is a constructor (its options) and an
// application to an input; the weights are created at the first application, when the input's
// channel count is known, and checked at every later one (shared layers).
import type { Span } from "../../../grammar/ast.ts";
import type { Shape } from "../shape.ts";
import { formatShape } from "../shape.ts";
import { Size } from "../size.ts";
import { type LayerInstance, type Located, type Value, expectBool, expectInt, expectNumber, expectSize, expectTensor, fail, int } from "../values.ts";
import type { Args, Builtin, BuiltinContext } from "./context.ts";

const T: Value = { k: "bool", v: true };

function constructAndApply(this: Builtin, ctx: BuiltinContext, args: Args, span: Span): Value {
  const options = new Map(args);
  const x = options.get("x")!;
  options.delete("x");
  const layer = ctx.newLayer(this.name, options, span);
  return this.apply!(ctx, layer, x, span);
}

function opt(layer: LayerInstance, name: string): Located {
  return layer.options.get(name)!;
}

/** Checks the input channels of a shared layer against its first application. */
function bindChannels(ctx: BuiltinContext, layer: LayerInstance, cin: Size, x: Located): boolean {
  if (layer.bound) {
    if (!layer.bound.inChannels.equals(cin)) {
      fail("E300", `layer '${layer.name}' was first applied to ${layer.bound.inChannels} input channels, here to ${cin}`, ctx.file, x.span, "a shared layer keeps one set of weights: its inputs must have the same channel count");
    }
    return false;
  }
  layer.bound = { inChannels: cin, params: [] };
  return true;
}

function requireRank(ctx: BuiltinContext, x: Located, shape: Shape, ranks: number[], what: string): void {
  if (!ranks.includes(shape.length)) {
    fail("E301", `${what} expects a ${ranks.join("-D or ")}-D tensor, found ${formatShape(shape)}`, ctx.file, x.span);
  }
}

/** Output size of a convolution or pooling window along one axis. */
export function windowOutput(size: Size, k: number, stride: number, padding: number, dilation: number): Size {
  return size.add(Size.of(2 * padding - dilation * (k - 1) - 1)).floorDiv(stride).add(Size.of(1));
}

export function resolvePadding(ctx: BuiltinContext, p: Located, k: number, dilation: number): number {
  if (p.value.k === "string") {
    if (p.value.v === "same") return Math.floor(k / 2) * dilation;
    if (p.value.v === "valid") return 0;
    fail("E402", `padding must be an integer, "same" or "valid", found "${p.value.v}"`, ctx.file, p.span);
  }
  const n = expectInt(p, ctx.file, "padding");
  if (n < 0) fail("E402", `padding must not be negative, found ${n}`, ctx.file, p.span);
  return n;
}

function positive(ctx: BuiltinContext, a: Located, what: string): number {
  const n = expectInt(a, ctx.file, what);
  if (n < 1) fail("E402", `${what} must be at least 1, found ${n}`, ctx.file, a.span);
  return n;
}

function positiveSize(ctx: BuiltinContext, a: Located, what: string): Size {
  const s = expectSize(a, ctx.file, what);
  if (s.isConstant && s.constant < 1) fail("E402", `${what} must be at least 1, found ${s}`, ctx.file, a.span);
  return s;
}

export const conv: Builtin = {
  name: "conv",
  kind: "layer",
  summary: "2-D convolution over [N, C, H, W] with bias; He-initialised weights [out, C/groups, k, k]",
  params: [
    { name: "x", type: "tensor" },
    { name: "out", type: "int" },
    { name: "k", type: "int", default: int(1) },
    { name: "stride", type: "int", default: int(1) },
    { name: "padding", type: 'int | "same" | "valid"', default: { k: "string", v: "same" } },
    { name: "dilation", type: "int", default: int(1) },
    { name: "groups", type: "int", default: int(1) },
    { name: "bias", type: "bool", default: T },
  ],
  call: constructAndApply,
  apply(ctx, layer, xa, span) {
    const x = expectTensor(xa, ctx.file, "conv's input");
    requireRank(ctx, xa, x.shape, [4], "conv");
    const out = positiveSize(ctx, opt(layer, "out"), "out");
    const k = positive(ctx, opt(layer, "k"), "k");
    const stride = positive(ctx, opt(layer, "stride"), "stride");
    const dilation = positive(ctx, opt(layer, "dilation"), "dilation");
    const groups = positive(ctx, opt(layer, "groups"), "groups");
    const padding = resolvePadding(ctx, opt(layer, "padding"), k, dilation);
    const bias = expectBool(opt(layer, "bias"), ctx.file, "bias");
    const [n, c, h, w] = x.shape as [Shape[0], Shape[0], Shape[0], Shape[0]];
    for (const [size, what] of [[c.size, "input channels"], [out, "output channels"]] as const) {
      if (size.isConstant && size.constant % groups !== 0) {
        fail("E300", `${what} (${size}) must be divisible by groups (${groups})`, ctx.file, opt(layer, "groups").span);
      }
    }
    const cinPerGroup = c.size.floorDiv(groups);
    if (bindChannels(ctx, layer, c.size, xa)) {
      const fanIn = (cinPerGroup.value ?? 0) * k * k;
      const weight = ctx.addParam(layer, "weight", [out, cinPerGroup, Size.of(k), Size.of(k)], [c.label, null, null, null], { kind: "he", fanIn }, "param", layer.span);
      layer.bound!.params.push(weight.node);
      if (bias) layer.bound!.params.push(ctx.addParam(layer, "bias", [out], [c.label], { kind: "constant", value: 0 }, "param", layer.span).node);
    }
    const ho = windowOutput(h.size, k, stride, padding, dilation);
    const wo = windowOutput(w.size, k, stride, padding, dilation);
    for (const s of [ho, wo]) {
      if (s.isConstant && s.constant < 1) {
        fail("E300", `conv with k=${k}, stride=${stride}, padding=${padding} leaves no output from ${formatShape(x.shape)}`, ctx.file, span);
      }
    }
    const params = layer.bound!.params;
    const shape: Shape = [n, { label: c.label, size: out }, { label: h.label, size: ho }, { label: w.label, size: wo }];
    return ctx.addNode("conv2d", [x.node, ...params], { stride, padding, dilation, groups, k }, shape, span);
  },
};

export const dense: Builtin = {
  name: "dense",
  kind: "layer",
  summary: "fully connected layer on the last axis, with bias; weights [units, in]",
  params: [
    { name: "x", type: "tensor" },
    { name: "units", type: "int" },
    { name: "bias", type: "bool", default: T },
  ],
  call: constructAndApply,
  apply(ctx, layer, xa, span) {
    const x = expectTensor(xa, ctx.file, "dense's input");
    requireRank(ctx, xa, x.shape, [2], "dense");
    const units = positiveSize(ctx, opt(layer, "units"), "units");
    const bias = expectBool(opt(layer, "bias"), ctx.file, "bias");
    const last = x.shape[x.shape.length - 1]!;
    if (bindChannels(ctx, layer, last.size, xa)) {
      const glorot = { kind: "glorot", fanIn: last.size.value ?? 0, fanOut: units.value ?? 0 } as const;
      layer.bound!.params.push(ctx.addParam(layer, "weight", [units, last.size], [null, last.label], glorot, "param", layer.span).node);
      if (bias) layer.bound!.params.push(ctx.addParam(layer, "bias", [units], [last.label], { kind: "constant", value: 0 }, "param", layer.span).node);
    }
    const params = layer.bound!.params;
    const shape: Shape = [...x.shape.slice(0, -1), { label: last.label, size: units }];
    return ctx.addNode("dense", [x.node, ...params], {}, shape, span);
  },
};

export const batchnorm: Builtin = {
  name: "batchnorm",
  kind: "layer",
  summary: "batch normalisation over axis 1 (batch statistics in training, running statistics in inference)",
  params: [
    { name: "x", type: "tensor" },
    { name: "momentum", type: "float", default: { k: "float", v: 0.1 } },
    { name: "eps", type: "float", default: { k: "float", v: 1e-5 } },
  ],
  call: constructAndApply,
  apply(ctx, layer, xa, span) {
    const x = expectTensor(xa, ctx.file, "batchnorm's input");
    requireRank(ctx, xa, x.shape, [2, 4], "batchnorm");
    const momentum = expectNumber(opt(layer, "momentum"), ctx.file, "momentum");
    const eps = expectNumber(opt(layer, "eps"), ctx.file, "eps");
    if (!(momentum > 0 && momentum <= 1)) fail("E402", `momentum must be in (0, 1], found ${momentum}`, ctx.file, opt(layer, "momentum").span);
    if (!(eps > 0)) fail("E402", `eps must be positive, found ${eps}`, ctx.file, opt(layer, "eps").span);
    const c = x.shape[1]!;
    if (bindChannels(ctx, layer, c.size, xa)) {
      const entries = [
        ["weight", 1, "param"],
        ["bias", 0, "param"],
        ["running_mean", 0, "buffer"],
        ["running_var", 1, "buffer"],
      ] as const;
      for (const [suffix, value, role] of entries) {
        layer.bound!.params.push(ctx.addParam(layer, suffix, [c.size], [c.label], { kind: "constant", value }, role, layer.span).node);
      }
    }
    const params = layer.bound!.params;
    return ctx.addNode("batchnorm", [x.node, ...params], { momentum, eps }, x.shape, span);
  },
};

export const layers: Builtin[] = [conv, dense, batchnorm];
