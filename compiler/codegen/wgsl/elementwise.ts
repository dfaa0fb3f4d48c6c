// Elementwise kernels: one invocation per element, or per 4 elements as vec4 when the element
// count allows (a vec4 copy moves about twice the bytes per second of a scalar one on
// lavapipe). Also dropout (the IR's PCG mask, bit for bit) and one_hot, which read integers
// stored as f32.
import { type KernelEmitter, f32, u32, vec4Fits } from "./kernel.ts";

export type Unary = "neg" | "exp" | "log" | "sqrt" | "relu" | "sigmoid";
export type Binary = "add" | "sub" | "mul" | "div" | "maximum" | "minimum" | "gt" | "ge";

/** An expression of `a` (and `b`) that works for f32 and vec4<f32> alike (T is the type). */
export const unaryExpr: { [P in Unary]: (a: string, T: string) => string } = {
  neg: (a) => `-${a}`,
  exp: (a) => `exp(${a})`,
  log: (a) => `log(${a})`,
  sqrt: (a) => `sqrt(${a})`,
  // select(f, t, cond): relu's value at exactly 0 is 0 either way.
  relu: (a, T) => `max(${a}, ${T}(0.0))`,
  // Stable logistic: exp of a non-positive number only, as in the IR's reference.
  sigmoid: (a, T) => `select(exp(${a}) / (${T}(1.0) + exp(${a})), ${T}(1.0) / (${T}(1.0) + exp(-${a})), ${a} >= ${T}(0.0))`,
};

export const binaryExpr: { [P in Binary]: (a: string, b: string, T: string) => string } = {
  add: (a, b) => `${a} + ${b}`,
  sub: (a, b) => `${a} - ${b}`,
  mul: (a, b) => `${a} * ${b}`,
  div: (a, b) => `${a} / ${b}`,
  // Ties pick a, the operand the VJP masks (ge/gt) give the gradient to.
  maximum: (a, b) => `select(${b}, ${a}, ${a} >= ${b})`,
  minimum: (a, b) => `select(${b}, ${a}, ${a} <= ${b})`,
  gt: (a, b, T) => `select(${T}(0.0), ${T}(1.0), ${a} > ${b})`,
  ge: (a, b, T) => `select(${T}(0.0), ${T}(1.0), ${a} >= ${b})`,
};

function unary<P extends Unary>(p: P): KernelEmitter<P> {
  return ({ outShape }) => {
    const n = outShape.reduce((a, b) => a * b, 1);
    const v4 = vec4Fits(n);
    const T = v4 ? "vec4<f32>" : "f32";
    return {
      invocations: v4 ? n / 4 : n,
      types: [T, T],
      body: `let a = x0[i];\ny[i] = ${unaryExpr[p]("a", T)};`,
    };
  };
}

function binary<P extends Binary>(p: P): KernelEmitter<P> {
  return ({ outShape }) => {
    const n = outShape.reduce((a, b) => a * b, 1);
    const v4 = vec4Fits(n);
    const T = v4 ? "vec4<f32>" : "f32";
    return {
      invocations: v4 ? n / 4 : n,
      types: [T, T, T],
      body: `let a = x0[i];\nlet b = x1[i];\ny[i] = ${binaryExpr[p]("a", "b", T)};`,
    };
  };
}

// The same hash as pcgHash in compiler/ir/rules/layout.ts; u32 arithmetic wraps in WGSL as
// Math.imul / >>> 0 do in the reference.
export const PCG = `fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

// The IR's seed and step are integers stored as f32 (exact below 2^24); the reference takes
// them modulo 2^32 (x >>> 0), which for negative integers is their two's complement.
fn counter(v: f32) -> u32 {
  return bitcast<u32>(i32(v));
}`;

const dropout: KernelEmitter<"dropout"> = ({ attrs, outShape }) => {
  const n = outShape.reduce((a, b) => a * b, 1);
  const threshold = dropoutThreshold(attrs.p);
  // The reference keeps an element when h / 2^32 >= p, i.e. (h an integer) h >= ceil(p 2^32):
  // comparing integers avoids rounding h to f32.
  const keep = threshold === null ? "false" : `h >= ${u32(threshold)}`;
  return {
    invocations: n,
    decls: PCG,
    body: [
      `var h = pcg(counter(x1[0]));`,
      `h = pcg(h + counter(x1[1]));`,
      `h = pcg(h + ${u32(attrs.stream >>> 0)});`,
      `h = pcg(h + i);`,
      `y[i] = select(0.0, x0[i] * ${f32(1 / (1 - attrs.p))}, ${keep});`,
    ].join("\n"),
  };
};

const oneHot: KernelEmitter<"one_hot"> = ({ attrs, outShape }) => {
  const c = u32(attrs.classes);
  // Labels are exact integers in f32; round() guards against a label computed as 2.9999998.
  return {
    invocations: outShape[0]! * attrs.classes,
    body: `let label = i32(round(x0[i / ${c}]));\ny[i] = select(0.0, 1.0, label == i32(i % ${c}));`,
  };
};

/** The smallest u32 h with h / 2^32 >= p, or null when no h qualifies (p within 2^-32 of 1). */
export function dropoutThreshold(p: number): number | null {
  const t = Math.ceil(p * 4294967296);
  return t > 0xffffffff ? null : Math.max(0, t);
}

export const elementwiseEmitters: { [P in Unary | Binary | "dropout" | "one_hot"]: KernelEmitter<P> } = {
  neg: unary("neg"),
  exp: unary("exp"),
  log: unary("log"),
  sqrt: unary("sqrt"),
  relu: unary("relu"),
  sigmoid: unary("sigmoid"),
  add: binary("add"),
  sub: binary("sub"),
  mul: binary("mul"),
  div: binary("div"),
  maximum: binary("maximum"),
  minimum: binary("minimum"),
  gt: binary("gt"),
  ge: binary("ge"),
  dropout,
  one_hot: oneHot,
};
