// The shape of a WGSL kernel and the pieces every emitter shares: the module around an
// emitter's body (bindings, the invocation index, the bounds guard), the dispatch grid, f32
// literals that round-trip, and index arithmetic over baked shapes.
//
// Shapes are compile-time constants: each kernel is specialised to its node's shapes and
// attributes, so the WGSL compiler sees constant loop bounds and strides. Two nodes with the
// same primitive, attributes and shapes get the same WGSL text (node ids appear only in the
// label), so a runtime compiles one pipeline for both.
import type { IRNode, Prim, PrimAttrs } from "../../ir/primitives.ts";
import { fmtShape, numel } from "../../ir/primitives.ts";
import { hash53 } from "../../../runtime/autotune.ts";

export type LeafPrim = "input" | "param" | "const";
export type KernelPrim = Exclude<Prim, LeafPrim>;

export interface KernelBinding {
  /** Graph value bound here. */
  value: number;
  access: "read" | "write";
  /** Bind this range (in floats) of the buffer the value is a view of, instead of the value
   * alone: several tensors of a parameter arena through one binding. */
  range?: { offset: number; floats: number };
}

/** An alternative schedule of a kernel: same bindings, same output, different WGSL and grid
 * (tiled.ts). The runtime picks one per adapter by measuring (runtime/autotune.ts). */
export interface KernelVariant {
  name: string;
  wgsl: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
}

/** The name of the kernel in a spec's own fields, the default when nothing is measured. */
export const DEFAULT_VARIANT = "register";

export interface KernelSpec {
  node: number;
  /** For debuggers and error messages: `%12 conv2d`. */
  label: string;
  wgsl: string;
  entryPoint: string;
  /** Storage bindings of @group(0) in @binding order: the inputs read, then the value written. */
  bindings: KernelBinding[];
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  /** Alternatives to the kernel above (the default variant, DEFAULT_VARIANT). */
  variants?: KernelVariant[];
  /** The kernel whose autotuning decision this one shares (runtime KernelLaunch.tuneAs). */
  tuneAs?: string;
  /** Set on kernels with variants whose modules all compile quickly (1x1 convolutions): the
   * pairing pass may double them (pairing.ts), which it does not do to other tuned kernels. */
  quickToCompile?: boolean;
}

/** What an emitter sees: the node with its attributes and the shapes around it. */
export interface KernelContext<P extends Prim> {
  node: IRNode<P>;
  attrs: PrimAttrs[P];
  inShapes: number[][];
  outShape: number[];
}

/**
 * What an emitter returns. In "invocation" mode `body` runs once per index `i` (u32) in
 * [0, invocations); in "workgroup" mode once per workgroup, with `i` the workgroup's index and
 * `lane` the local invocation index (for tree reductions in workgroup memory).
 */
export interface KernelBody {
  invocations: number;
  body: string;
  /** Module-scope declarations: helper functions, workgroup arrays. */
  decls?: string;
  /** Element type of each binding (inputs, then output); default f32. */
  types?: ("f32" | "vec4<f32>")[];
  mode?: "invocation" | "workgroup";
  workgroupSize?: number;
}

/** What a kernel's autotuning decision depends on: its schedules (every variant's WGSL, grid and
 * workgroup), hashed. Derived kernels (epilogues, pairs) carry the identity of the kernel they
 * derive from. */
export function tuneIdentity(spec: Pick<KernelSpec, "wgsl" | "dispatch" | "workgroupSize" | "variants" | "tuneAs">): string {
  if (spec.tuneAs) return spec.tuneAs;
  return hash53([spec, ...(spec.variants ?? [])].map((v) => `${v.workgroupSize}\n${v.dispatch}\n${v.wgsl}`).join("\n\u0000\n"));
}

export type KernelEmitter<P extends Prim> = (ctx: KernelContext<P>) => KernelBody;

/** The emitter table: every primitive has an entry, leaves explicitly none (they are buffers
 * filled by the host), so a new primitive without an emitter is a type error. */
export type EmitterTable = { [P in Prim]: P extends LeafPrim ? null : KernelEmitter<P> };

export const WORKGROUP = 64;
const MAX_GROUPS = 65535;

/** Workgroups to cover `groups`, split over y when x would exceed the per-dimension limit.
 * `strideY` is how many linear indices one step of y advances. */
export function grid(groups: number, perGroup: number): { dispatch: [number, number, number]; strideY: number } {
  const x = Math.max(1, Math.min(groups, MAX_GROUPS));
  const y = Math.max(1, Math.ceil(groups / MAX_GROUPS));
  if (y > MAX_GROUPS) throw new Error(`kernel needs ${groups} workgroups, more than a 2-D dispatch holds`);
  return { dispatch: [x, y, 1], strideY: x * perGroup };
}

/** A WGSL f32 expression for `v`: the f32 nearest to v, printed so it parses back exactly.
 * Infinities and NaN have no literal, and a constant expression that evaluates to one is a
 * compile error, so they are read from private variables (see SPECIALS) at run time. */
export function f32(v: number): string {
  if (Number.isNaN(v)) return "bitcast<f32>(nan_bits)";
  const f = Math.fround(v);
  if (f === Infinity) return "bitcast<f32>(inf_bits)";
  if (f === -Infinity) return "(-bitcast<f32>(inf_bits))";
  // The shortest decimal that reads back as this double, which is an exact f32.
  let s = String(Math.abs(f));
  if (!/[.e]/.test(s)) s += ".0";
  return f < 0 || Object.is(f, -0) ? `(-${s}f)` : `${s}f`;
}

/** Declarations for what f32() may refer to; assemble() adds those a kernel uses. */
const SPECIALS: [string, string][] = [
  ["inf_bits", "var<private> inf_bits: u32 = 0x7f800000u;"],
  ["nan_bits", "var<private> nan_bits: u32 = 0x7fc00000u;"],
];

export function u32(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`${n} is not a u32`);
  return `${n}u`;
}

export function i32(n: number): string {
  if (!Number.isInteger(n) || Math.abs(n) > 0x7fffffff) throw new Error(`${n} is not an i32`);
  return n < 0 ? `(${n})` : `${n}`;
}

/** Row-major coordinate `axis` of flat index `idx` (a u32 expression) in `shape`. Division by
 * 1 and the modulo of the outermost axis (idx < numel already) are left out. */
export function coord(idx: string, shape: readonly number[], axis: number): string {
  const inner = numel(shape.slice(axis + 1));
  const q = inner === 1 ? idx : `(${idx} / ${u32(inner)})`;
  return axis === 0 ? q : `(${q} % ${u32(shape[axis]!)})`;
}

/** Sum of terms like `a * 12u`, skipping zero strides; "0u" when empty. */
export function linear(terms: [string, number][]): string {
  const parts = terms.filter(([, s]) => s !== 0).map(([e, s]) => (s === 1 ? e : `${e} * ${u32(s)}`));
  return parts.length === 0 ? "0u" : parts.join(" + ");
}

/** Is every element count a multiple of 4, so the kernel may move vec4s? */
export function vec4Fits(...counts: number[]): boolean {
  return counts.every((n) => n % 4 === 0);
}

function attrsText(attrs: unknown): string {
  const s = JSON.stringify(attrs, (_k, v) => (v === Infinity ? "inf" : v === -Infinity ? "-inf" : v));
  return s === "{}" ? "" : ` ${s}`;
}

/** A storage binding of a module: its variable name, element type and access. */
export interface ModuleBinding {
  name: string;
  type: "f32" | "vec4<f32>";
  write: boolean;
}

/** A complete compute shader around a body (bindings at @group(0) in the order given, the
 * invocation index, the bounds guard) and its dispatch grid. */
export function computeModule(comment: string, bindings: readonly ModuleBinding[], k: KernelBody): Pick<KernelSpec, "wgsl" | "workgroupSize" | "dispatch"> {
  const mode = k.mode ?? "invocation";
  const wg = k.workgroupSize ?? WORKGROUP;
  const groups = mode === "workgroup" ? k.invocations : Math.ceil(k.invocations / wg);
  const { dispatch, strideY } = grid(groups, mode === "workgroup" ? 1 : wg);
  const head = mode === "workgroup"
    ? [
        `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lane: u32) {`,
        `  let i = wid.x + wid.y * ${u32(strideY)};`,
        // Uniform across the workgroup (workgroup_id is), so barriers below stay in uniform flow.
        `  if (i >= ${u32(k.invocations)}) { return; }`,
      ]
    : [
        `fn main(@builtin(global_invocation_id) gid: vec3<u32>) {`,
        `  let i = gid.x + gid.y * ${u32(strideY)};`,
        `  if (i >= ${u32(k.invocations)}) { return; }`,
      ];
  const text = `${k.decls ?? ""}\n${k.body}`;
  const specials = SPECIALS.filter(([name]) => text.includes(name)).map(([, decl]) => decl);
  const wgsl = [
    comment,
    ...bindings.map((b, j) => `@group(0) @binding(${j}) var<storage, ${b.write ? "read_write" : "read"}> ${b.name}: array<${b.type}>;`),
    ...specials,
    ...(k.decls ? ["", k.decls.trim()] : []),
    "",
    `@compute @workgroup_size(${wg})`,
    ...head,
    ...k.body
      .trim()
      .split("\n")
      .map((l) => `  ${l}`),
    "}",
    "",
  ].join("\n");
  return { wgsl, workgroupSize: [wg, 1, 1], dispatch };
}

/** Wraps an emitter's body into a complete compute shader and its dispatch. */
export function assemble<P extends Prim>(ctx: KernelContext<P>, k: KernelBody): KernelSpec {
  const node = ctx.node;
  const types = k.types ?? [];
  const ins = node.inputs.map((_, j) => ctx.inShapes[j]!);
  const bindings: ModuleBinding[] = [...node.inputs.map((_, j) => ({ name: `x${j}`, type: types[j] ?? "f32", write: false })), { name: "y", type: types[node.inputs.length] ?? "f32", write: true }];
  const module = computeModule(`// drifa kernel: ${node.prim}(${ins.map(fmtShape).join(", ")})${attrsText(ctx.attrs)} -> ${fmtShape(ctx.outShape)}`, bindings, k);
  return {
    node: node.id,
    label: `%${node.id} ${node.prim}`,
    entryPoint: "main",
    bindings: [...node.inputs.map((value) => ({ value, access: "read" as const })), { value: node.id, access: "write" as const }],
    ...module,
  };
}
