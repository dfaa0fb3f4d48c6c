// Optimiser kernels: one WGSL kernel updates EVERY parameter in one dispatch, over flat
// concatenations (parameters, gradients, optimiser slots) that share one layout, instead of one
// dispatch per tensor (DRIFA-Net has over a thousand parameter tensors). The arithmetic is the
// interpreter's `optimiserStep` (compiler/ir/interpret.ts) in f32, operation for operation:
// Adam (bias-corrected; weight decay added to the gradient), AdamW (decoupled decay applied
// first) and SGD in PyTorch's form (buf = momentum buf + g; Nesterov: g + momentum buf).
//
// Constant hyperparameters (betas, eps, momentum, decay) are baked into the WGSL; what changes
// per step comes from a small buffer the host writes before each submit: [lr, step, 1 - beta1^step,
// 1 - beta2^step]. The bias corrections are computed on the host in float64 (as the interpreter
// does), so a schedule may change lr and the step advances without recompiling anything.
import type { TrainConfig } from "../check/program.ts";
import type { KernelLaunch } from "../../runtime/executor.ts";
import { VIEW_ALIGN } from "../../runtime/executor.ts";
import type { OptimiserInfo } from "../../runtime/trainer-exec.ts";
import { f32 } from "./wgsl/kernel.ts";

export type OptimKind = TrainConfig["optimizer"]["kind"];

/** An optimiser with every option resolved. */
export interface OptimSpec extends OptimiserInfo {
  kind: OptimKind;
  eps: number;
  weightDecay: number;
  momentum: number;
  nesterov: boolean;
}

/** The interpreter's fallbacks (`opt` in interpret.ts) for options a config leaves out; the
 * checker normally fills every option from the built-in's defaults. */
export function optimSpec(o: TrainConfig["optimizer"]): OptimSpec {
  const num = (key: string, fallback: number) => (typeof o[key] === "number" ? (o[key] as number) : fallback);
  return {
    kind: o.kind,
    lr: o.lr,
    beta1: num("beta1", 0.9),
    beta2: num("beta2", 0.999),
    eps: num("eps", 1e-8),
    weightDecay: num("weight_decay", 0),
    momentum: num("momentum", 0),
    nesterov: o.nesterov === true,
  };
}

/** The optimiser slots a parameter needs, with their state-name suffixes (PyTorch's names, so
 * checkpoints read naturally): Adam's two moments, SGD's momentum buffer (none without
 * momentum: plain SGD keeps no state). */
export function slotsOf(spec: OptimSpec): { slot: "m" | "v"; suffix: string }[] {
  if (spec.kind !== "sgd") return [{ slot: "m", suffix: "exp_avg" }, { slot: "v", suffix: "exp_avg_sq" }];
  return spec.momentum > 0 ? [{ slot: "m", suffix: "momentum_buffer" }] : [];
}

/** Floats of the per-step scalar buffer. */
export const OPTIM_SCALARS = 4;

/** One dispatch covers at most this many floats: 2^25 f32 = 128 MiB, WebGPU's default
 * maxStorageBufferBindingSize; larger models get one dispatch per chunk of this size. */
export const OPTIM_CHUNK = 1 << 25;

const WG = 64;
const MAX_GROUPS = 65535;

/** The update of one vec4 of parameters, `q` (read from p[i]) and gradient `g` (g[i]). */
function updateBody(s: OptimSpec): string[] {
  const wd = s.weightDecay;
  if (s.kind === "sgd") {
    const lines = [wd !== 0 ? `let gi = g[i] + ${f32(wd)} * q;` : "let gi = g[i];"];
    if (s.momentum === 0) return [...lines, "p[i] = q - lr * gi;"];
    lines.push(`let buf = ${f32(s.momentum)} * m[i] + gi;`, "m[i] = buf;");
    return [...lines, s.nesterov ? `p[i] = q - lr * (gi + ${f32(s.momentum)} * buf);` : "p[i] = q - lr * buf;"];
  }
  const lines: string[] = [];
  if (s.kind === "adam" && wd !== 0) lines.push(`let gi = g[i] + ${f32(wd)} * q;`);
  else lines.push("let gi = g[i];");
  // AdamW decays the weight before the Adam update, as optimiserStep does (p -= lr wd p).
  if (s.kind === "adamw" && wd !== 0) lines.push(`q = q - lr * ${f32(wd)} * q;`);
  lines.push(
    `let mi = ${f32(s.beta1)} * m[i] + ${f32(1 - s.beta1)} * gi;`,
    `let vi = ${f32(s.beta2)} * v[i] + ${f32(1 - s.beta2)} * gi * gi;`,
    "m[i] = mi;",
    "v[i] = vi;",
    `p[i] = q - (lr * (mi / c1)) / (sqrt(vi / c2) + ${f32(s.eps)});`,
  );
  return lines;
}

/** The optimiser's WGSL: one invocation per 4 parameters (views are 64-float aligned, so every
 * flat layout is a whole number of vec4s), bounded by the bound range's length, so every chunk
 * of every model with the same hyperparameters shares one pipeline. */
export function optimiserWgsl(s: OptimSpec): string {
  const slots = slotsOf(s).map((x) => x.slot);
  const v4 = "array<vec4<f32>>";
  const decls = [
    `@group(0) @binding(0) var<storage, read> hyper: array<f32>; // [lr, step, 1 - beta1^step, 1 - beta2^step]`,
    `@group(0) @binding(1) var<storage, read> g: ${v4};`,
    `@group(0) @binding(2) var<storage, read_write> p: ${v4};`,
    ...slots.map((n, k) => `@group(0) @binding(${3 + k}) var<storage, read_write> ${n}: ${v4};`),
  ];
  const opts = `beta1 ${s.beta1}, beta2 ${s.beta2}, eps ${s.eps}, weight decay ${s.weightDecay}, momentum ${s.momentum}${s.nesterov ? ", nesterov" : ""}`;
  return [
    `// drifa optimiser: ${s.kind} (${opts}) over flat parameters`,
    ...decls,
    "",
    `@compute @workgroup_size(${WG})`,
    "fn main(@builtin(global_invocation_id) gid: vec3<u32>) {",
    // A constant stride: dispatches wider than MAX_GROUPS always fill x to MAX_GROUPS.
    `  let i = gid.x + gid.y * ${MAX_GROUPS * WG}u;`,
    "  if (i >= arrayLength(&p)) { return; }",
    "  let lr = hyper[0];",
    ...(s.kind === "sgd" ? [] : ["  let c1 = hyper[2];", "  let c2 = hyper[3];"]),
    "  var q = p[i];",
    ...updateBody(s).map((l) => `  ${l}`),
    "}",
    "",
  ].join("\n");
}

/** Buffer indices a chunk of the optimiser binds (views of the flat arenas, or the arenas). */
export interface OptimBindings {
  hyper: number;
  g: number;
  p: number;
  m?: number;
  v?: number;
}

/** The launch of the optimiser over `floats` parameters (a multiple of VIEW_ALIGN). */
export function optimiserLaunch(s: OptimSpec, b: OptimBindings, floats: number, label = "optimiser"): KernelLaunch {
  if (floats % VIEW_ALIGN !== 0 || floats > OPTIM_CHUNK) throw new Error(`optimiser chunk of ${floats} floats: must be a multiple of ${VIEW_ALIGN} up to ${OPTIM_CHUNK}`);
  const slots = slotsOf(s).map((x) => x.slot);
  const slotBuffers = slots.map((n) => {
    const i = b[n];
    if (i === undefined) throw new Error(`${s.kind} needs its ${n} slot bound`);
    return i;
  });
  const groups = Math.max(1, Math.ceil(floats / 4 / WG));
  return {
    label,
    wgsl: optimiserWgsl(s),
    entryPoint: "main",
    buffers: [b.hyper, b.g, b.p, ...slotBuffers],
    access: ["read", "read", "write", ...slots.map(() => "write" as const)],
    workgroupSize: [WG, 1, 1],
    dispatch: [Math.min(groups, MAX_GROUPS), Math.ceil(groups / MAX_GROUPS), 1],
  };
}
