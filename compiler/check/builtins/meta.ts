// Compile-time helpers (range, len, zip, enumerate, int, float), parameter initialisers, and
// the training settings (optimisers and learning-rate schedules) a model's train section uses.

import { type Located, type Value, expectInt, expectList, expectNumber, fail, int } from "../values.ts";
import type { Args, Builtin, ParamSpec } from "./context.ts";

const MAX_LIST = 100_000;

function arg(args: Args, name: string): Located {
  return args.get(name)!;
}

const range: Builtin = {
  name: "range",
  kind: "meta",
  summary: "range(n) is [0, ..., n-1]; range(a, b) is [a, ..., b-1]; range(a, b, step)",
  params: [
    { name: "a", type: "int" },
    // The tuple sentinel marks "not given" (no user value is a tuple).
    { name: "b", type: "int", default: { k: "tuple", items: [] } },
    { name: "step", type: "int", default: int(1) },
  ],
  call(ctx, args, span) {
    let start = expectInt(arg(args, "a"), ctx.file, "range's bound");
    let stop: number;
    if (arg(args, "b").value.k === "tuple") {
      stop = start;
      start = 0;
    } else stop = expectInt(arg(args, "b"), ctx.file, "range's end");
    const step = expectInt(arg(args, "step"), ctx.file, "range's step");
    if (step === 0) fail("E402", "range's step must not be 0", ctx.file, arg(args, "step").span);
    const count = Math.max(0, Math.ceil((stop - start) / step));
    if (count > MAX_LIST) fail("E401", `range of ${count} values is longer than ${MAX_LIST}`, ctx.file, span);
    const items: Value[] = [];
    for (let i = 0; i < count; i++) items.push(int(start + i * step));
    return { k: "list", items };
  },
};

const len: Builtin = {
  name: "len",
  kind: "meta",
  summary: "the length of a list",
  params: [{ name: "xs", type: "list" }],
  call(ctx, args) {
    return int(expectList(arg(args, "xs"), ctx.file, "len's argument").length);
  },
};

const zip: Builtin = {
  name: "zip",
  kind: "meta",
  summary: "zip(a, b, ...) pairs up lists of equal length: [[a0, b0], [a1, b1], ...]",
  params: [{ name: "lists", type: "lists" }],
  variadic: true,
  call(ctx, args, span) {
    const lists = expectList(arg(args, "lists"), ctx.file, "zip's arguments").map((v) => expectList({ value: v, span }, ctx.file, "each of zip's arguments"));
    const n = lists[0]?.length ?? 0;
    if (lists.some((l) => l.length !== n)) fail("E402", `zip of lists of different lengths (${lists.map((l) => l.length).join(", ")})`, ctx.file, span);
    return { k: "list", items: Array.from({ length: n }, (_, i) => ({ k: "list", items: lists.map((l) => l[i]!) }) as Value) };
  },
};

const enumerate: Builtin = {
  name: "enumerate",
  kind: "meta",
  summary: "enumerate(xs) is [[0, x0], [1, x1], ...]",
  params: [{ name: "xs", type: "list" }],
  call(ctx, args) {
    const items = expectList(arg(args, "xs"), ctx.file, "enumerate's argument");
    return { k: "list", items: items.map((v, i) => ({ k: "list", items: [int(i), v] }) as Value) };
  },
};

const toInt: Builtin = {
  name: "int",
  kind: "meta",
  summary: "a number rounded toward zero",
  params: [{ name: "x", type: "number" }],
  call(ctx, args) {
    const a = arg(args, "x");
    if (a.value.k === "int") return a.value;
    return int(Math.trunc(expectNumber(a, ctx.file, "int's argument")));
  },
};

const toFloat: Builtin = {
  name: "float",
  kind: "meta",
  summary: "a number as a float",
  params: [{ name: "x", type: "number" }],
  call(ctx, args) {
    return { k: "float", v: expectNumber(arg(args, "x"), ctx.file, "float's argument") };
  },
};

/** Records whose fields are numbers (or strings, booleans), validated by range. */
function record(name: string, kind: Builtin["kind"], summary: string, params: (ParamSpec & { check?: (v: number) => boolean; rule?: string })[]): Builtin {
  return {
    name,
    kind,
    summary,
    params,
    call(ctx, args) {
      const fields = new Map<string, Value>();
      for (const p of params) {
        const a = arg(args, p.name);
        if (p.check) {
          const v = expectNumber(a, ctx.file, p.name);
          if (!p.check(v)) fail("E402", `${name}: ${p.name} must be ${p.rule}, found ${v}`, ctx.file, a.span);
        }
        fields.set(p.name, a.value);
      }
      return { k: "record", kind: name, fields };
    },
  };
}

const f = (v: number): Value => ({ k: "float", v });
const positive = { check: (v: number) => v > 0, rule: "positive" };
const unit = { check: (v: number) => v >= 0 && v < 1, rule: "in [0, 1)" };
const nonNegative = { check: (v: number) => v >= 0, rule: "at least 0" };
const count = { check: (v: number) => Number.isInteger(v) && v >= 1, rule: "a positive integer" };

export const settings: Builtin[] = [
  record("adam", "config", "Adam optimiser", [
    { name: "lr", type: "float", ...positive },
    { name: "beta1", type: "float", default: f(0.9), ...unit },
    { name: "beta2", type: "float", default: f(0.999), ...unit },
    { name: "eps", type: "float", default: f(1e-7), ...positive },
    { name: "weight_decay", type: "float", default: f(0), ...nonNegative },
  ]),
  record("adamw", "config", "Adam with decoupled weight decay", [
    { name: "lr", type: "float", ...positive },
    { name: "beta1", type: "float", default: f(0.9), ...unit },
    { name: "beta2", type: "float", default: f(0.999), ...unit },
    { name: "eps", type: "float", default: f(1e-7), ...positive },
    { name: "weight_decay", type: "float", default: f(0.01), ...nonNegative },
  ]),
  record("sgd", "config", "stochastic gradient descent with optional (Nesterov) momentum", [
    { name: "lr", type: "float", ...positive },
    { name: "momentum", type: "float", default: f(0), ...unit },
    { name: "nesterov", type: "bool", default: { k: "bool", v: false } },
    { name: "weight_decay", type: "float", default: f(0), ...nonNegative },
  ]),
  record("constant", "config", "a constant learning rate", []),
  record("plateau", "config", "reduce the learning rate by factor after patience epochs without a better validation loss", [
    { name: "factor", type: "float", ...unit },
    { name: "patience", type: "int", default: int(5), ...nonNegative },
    { name: "min_lr", type: "float", default: f(0), ...nonNegative },
  ]),
  record("step", "config", "multiply the learning rate by gamma every `every` epochs", [
    { name: "every", type: "int", ...count },
    { name: "gamma", type: "float", default: f(0.1), ...positive },
  ]),
  record("cosine", "config", "cosine decay to min_lr over the run's epochs", [{ name: "min_lr", type: "float", default: f(0), ...nonNegative }]),
  record("he", "init", "He (Kaiming) normal initialisation, std = sqrt(2 / fan_in)", []),
  record("glorot", "init", "Glorot (Xavier) uniform initialisation", []),
  record("normal", "init", "normal initialisation with the given standard deviation", [{ name: "std", type: "float", ...positive }]),
  record("uniform", "init", "uniform initialisation on [low, high)", [
    { name: "low", type: "float" },
    { name: "high", type: "float" },
  ]),
];

export const meta: Builtin[] = [range, len, zip, enumerate, toInt, toFloat];
