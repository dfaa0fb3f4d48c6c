// Fused kernels (compiler/codegen/fuse.ts decides what goes in them): one elementwise kernel
// that writes several values of one element count, and one reduction kernel that reduces
// several values of one pattern in a single pass. Inlined values are expressions, built by
// ExprBuilder at whatever index the reader needs, with each (value, index) computed once per
// kernel invocation (common subexpressions become `let`s).
//
// Elementwise kernels move vec4s when the element count allows: an operand read at the same
// index, or broadcast along an axis other than the innermost, is a vec4 load; one broadcast over
// a run of 4 elements is one scalar load, splat; anything else (dropout's hash, one_hot, the
// windows gather, a misaligned slice) is four scalar evaluations. A vec4 binding is read for a
// single element as `x[j >> 2u][j & 3u]` (one load), so a buffer has one type per kernel.
import type { Graph } from "../../ir/graph.ts";
import { type IRNode, type PrimAttrs, fmtShape, numel } from "../../ir/primitives.ts";
import { type Binary, PCG, type Unary, binaryExpr, dropoutThreshold, unaryExpr } from "./elementwise.ts";
import { type KernelBinding, type KernelSpec, type ModuleBinding, computeModule, coord, f32, i32, linear, u32 } from "./kernel.ts";
import { INIT, TREE_LANES, TREE_MAX_OUTPUTS, TREE_MIN_GROUP, combine, groups, loops, smallStep } from "./layout.ts";

export type Ty = "s" | "v";

interface Val {
  code: string;
  ty: Ty;
  /** Computed before a reduction's loop (the same for every element of the group). */
  hoisted?: boolean;
}

/** Inside a reduction's loop: the element index `index` (of `shape`) runs over one group, which
 * starts at `base`; values that depend on no `reduced` axis are computed once, before the loop,
 * by `outer`. */
interface Hoist {
  outer: ExprBuilder;
  index: string;
  base: string;
  shape: readonly number[];
  reduced: ReadonlySet<number>;
}

const UNARY = new Set(["neg", "exp", "log", "sqrt", "relu", "sigmoid"]);
const BINARY = new Set(["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge"]);

const DROPOUT_HASH = `fn dropout_hash(seed: f32, step: f32, stream: u32, i: u32) -> u32 {
  var h = pcg(counter(seed));
  h = pcg(h + counter(step));
  h = pcg(h + stream);
  return pcg(h + i);
}`;

/** Where a stored value lives when it shares a buffer with others (a parameter arena): the
 * buffer's key and the value's first element in it. */
export type SharedPlacement = (v: number) => { key: string; offset: number } | undefined;

/** The bindings of a fused kernel: reads (stored values; one binding per shared buffer, read
 * at the value's offset) then writes (its roots). */
export class Bindings {
  private readonly slots: { name: string; value: number; range?: { offset: number; floats: number }; write: boolean; vec: boolean }[] = [];
  private readonly slotOf = new Map<number, number>();
  private readonly offsets = new Map<number, number>();

  constructor(
    graph: Graph,
    reads: readonly number[],
    writes: readonly number[],
    vecKernel: boolean,
    shared: SharedPlacement = () => undefined,
    /** Writes that may be vec4 (default: all, when the kernel is). */
    vecWrite: (v: number) => boolean = () => true,
    /** Prefix of the variables (another kernel's bindings may be called x0 and y). */
    prefix = "",
  ) {
    const byKey = new Map<string, number>();
    const vecOk = (v: number) => vecKernel && numel(graph.shapeOf(v)) % 4 === 0;
    // A shared buffer is bound over the range its values span, and read at offsets relative to
    // that range: two kernels reading like-shaped layers then have the same text.
    const span = new Map<string, { base: number; end: number }>();
    for (const v of reads) {
      const s = shared(v);
      if (!s) continue;
      const have = span.get(s.key);
      const end = s.offset + numel(graph.shapeOf(v));
      span.set(s.key, have ? { base: Math.min(have.base, s.offset), end: Math.max(have.end, end) } : { base: s.offset, end });
    }
    for (const v of reads) {
      const s = shared(v);
      if (s) {
        const { base, end } = span.get(s.key)!;
        this.offsets.set(v, s.offset - base);
        let slot = byKey.get(s.key);
        if (slot === undefined) {
          slot = this.slots.length;
          byKey.set(s.key, slot);
          this.slots.push({ name: `${prefix}x${slot}`, value: v, range: { offset: base, floats: end - base }, write: false, vec: vecKernel && (end - base) % 4 === 0 });
        }
        // A vec4 view of the range needs every offset on a vec4 boundary.
        if ((s.offset - base) % 4 !== 0 || !vecOk(v)) this.slots[slot]!.vec = false;
        this.slotOf.set(v, slot);
      } else {
        this.slotOf.set(v, this.slots.length);
        this.slots.push({ name: `${prefix}x${this.slots.length}`, value: v, write: false, vec: vecOk(v) });
      }
    }
    writes.forEach((v, j) => {
      this.slotOf.set(v, this.slots.length);
      this.slots.push({ name: `${prefix}y${j}`, value: v, write: true, vec: vecOk(v) && vecWrite(v) });
    });
  }

  private slot(v: number) {
    const k = this.slotOf.get(v);
    if (k === undefined) throw new Error(`internal error: %${v} is not bound by this kernel`);
    return this.slots[k]!;
  }

  /** Whether `v` may be read four elements at a time (a vec4 binding). */
  canReadVec(v: number): boolean {
    return this.slot(v).vec;
  }

  /** Element `idx` (scalar) or vec4 `idx` of value `v`. */
  read(v: number, idx: string, mode: Ty): string {
    const s = this.slot(v);
    const off = this.offsets.get(v) ?? 0;
    if (mode === "v") return `${s.name}[${off ? `${u32(off / 4)} + ${idx}` : idx}]`;
    const at = off ? `(${u32(off)} + ${idx})` : idx;
    return s.vec ? `${s.name}[${at} >> 2u][${at} & 3u]` : `${s.name}[${at}]`;
  }

  /** The variable a root is written to, and whether it holds vec4s. */
  output(v: number): { name: string; vec: boolean } {
    const s = this.slot(v);
    return { name: s.name, vec: s.vec };
  }

  module(): ModuleBinding[] {
    return this.slots.map((s) => ({ name: s.name, type: s.vec ? "vec4<f32>" : "f32", write: s.write }));
  }

  kernelBindings(): KernelBinding[] {
    return this.slots.map((s) => ({ value: s.value, access: s.write ? ("write" as const) : ("read" as const), ...(s.range ? { range: s.range } : {}) }));
  }
}

/** Builds the statements that compute values at indices; `lines` collects them in order. */
export class ExprBuilder {
  readonly lines: string[] = [];
  private readonly memo = new Map<string, Val>();

  constructor(
    private readonly graph: Graph,
    private readonly b: Bindings,
    /** Stored values read from memory (all others are computed here). */
    private readonly fromMemory: (v: number) => boolean,
    private readonly decls: Set<string>,
    private readonly counter: { n: number },
    private readonly hoist?: Hoist,
  ) {}

  /** Makes `id` at `idx` read `code` (a reduction's finished sum, a convolution's result
   * element, for their epilogues). */
  seed(id: number, idx: string, code: string, mode: Ty = "s"): void {
    this.memo.set(`${id} ${mode} ${idx}`, { code, ty: mode });
  }

  /** An operation on `args`: before the loop when they all are (constants count as such). */
  private op(code: string, ty: Ty, args: Val[]): Val {
    if (this.hoist && args.every((a) => a.hoisted || /^\(?-?[\d.]+f?\)?$/.test(a.code))) return { ...this.hoist.outer.temp(code, ty), hoisted: true };
    return this.temp(code, ty);
  }

  temp(code: string, ty: Ty): Val {
    const name = `t${this.counter.n++}`;
    this.lines.push(`let ${name} = ${code};`);
    return { code: name, ty };
  }

  /** Value `id` at flat index `idx` (a u32 expression): element idx in mode "s", elements
   * 4 idx .. 4 idx + 3 in mode "v" (the result may still be a scalar: the same for all four). */
  at(id: number, index: string, mode: Ty): Val {
    // Index expressions are pasted into others (coord() divides them): keep them atomic.
    const idx = /^[\w]+$/.test(index) ? index : `(${index})`;
    const key = `${id} ${mode} ${idx}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    const v = this.compute(id, idx, mode);
    this.memo.set(key, v);
    return v;
  }

  private compute(id: number, idx: string, mode: Ty): Val {
    const node = this.graph.node(id);
    // A stored value without a vec4 view (an odd offset in a shared buffer) is read 4 times.
    if (mode === "v" && this.fromMemory(id) && !this.b.canReadVec(id)) return this.fourScalars(id, idx);
    if (this.fromMemory(id)) {
      // An element whose index involves only the group (base, q) is read once, before the loop.
      if (this.hoist && (idx.match(/\b[A-Za-z_]\w*\b/g) ?? []).every((name) => name === "base" || name === "q")) return { ...this.hoist.outer.temp(this.b.read(id, idx, mode), mode), hoisted: true };
      return this.temp(this.b.read(id, idx, mode), mode);
    }
    const p = node.prim;
    if (p === "const") return { code: f32((node.attrs as PrimAttrs["const"]).value), ty: "s" };
    if (UNARY.has(p)) {
      const a = this.at(node.inputs[0]!, idx, mode);
      return this.op(unaryExpr[p as Unary](a.code, tyName(a.ty)), a.ty, [a]);
    }
    if (BINARY.has(p)) {
      let a = this.at(node.inputs[0]!, idx, mode);
      let b = this.at(node.inputs[1]!, idx, mode);
      if (a.ty !== b.ty) [a, b] = [{ ...splat(a), hoisted: a.hoisted }, { ...splat(b), hoisted: b.hoisted }];
      return this.op(binaryExpr[p as Binary](a.code, b.code, tyName(a.ty)), a.ty, [a, b]);
    }
    if (p === "reshape") return this.at(node.inputs[0]!, idx, mode);
    if (p === "broadcast") return this.broadcast(node as IRNode<"broadcast">, idx, mode);
    if (p === "slice") return this.slice(node as IRNode<"slice">, idx, mode);
    if (mode === "v") return this.fourScalars(id, idx);
    if (p === "dropout") return this.dropout(node as IRNode<"dropout">, idx);
    if (p === "one_hot") {
      const c = (node.attrs as PrimAttrs["one_hot"]).classes;
      const label = this.at(node.inputs[0]!, `(${idx}) / ${u32(c)}`, "s");
      // Labels are exact integers in f32; round() guards against 2.9999998.
      return this.temp(`select(0.0, 1.0, i32(round(${label.code})) == i32((${idx}) % ${u32(c)}))`, "s");
    }
    if (p === "windows") return this.windows(node as IRNode<"windows">, idx);
    throw new Error(`internal error: %${id} ${p} cannot be inlined`);
  }

  /** Four scalar evaluations packed into a vec4 (the fallback of vec4 kernels). */
  private fourScalars(id: number, idx: string): Val {
    const parts = [0, 1, 2, 3].map((k) => this.at(id, `(${idx}) * 4u + ${u32(k)}`, "s").code);
    return this.temp(`vec4<f32>(${parts.join(", ")})`, "v");
  }

  private broadcast(node: IRNode<"broadcast">, idx: string, mode: Ty): Val {
    const big = node.shape;
    const small = this.graph.shapeOf(node.inputs[0]!);
    const step = smallStep(small, big, node.attrs.axes);
    const src = (i: string) => linear(big.map((_, a) => [coord(i, big, a), step[a]!]));
    const h = this.hoist;
    // Broadcast along every reduced axis: the same element for the whole group.
    if (h && idx === h.index && big.length === h.shape.length && big.every((n, a) => n === h.shape[a]) && [...h.reduced].every((a) => step[a] === 0)) {
      return { ...h.outer.at(node.inputs[0]!, src(h.base), "s"), hoisted: true };
    }
    if (mode === "s") return this.at(node.inputs[0]!, src(idx), "s");
    const last = big.length - 1;
    const first = `(${idx}) * 4u`;
    // The innermost axis comes along (stride 1, a multiple of 4 long): four consecutive, aligned.
    if (step[last] !== 0 && big[last]! % 4 === 0) return this.at(node.inputs[0]!, `(${src(first)}) / 4u`, "v");
    // Broadcast over a trailing run of a multiple of 4 elements: all four read one element.
    let run = 1;
    for (let a = last; a >= 0 && step[a] === 0; a--) run *= big[a]!;
    if (run % 4 === 0) return this.at(node.inputs[0]!, src(first), "s");
    return this.fourScalars(node.id, idx);
  }

  private slice(node: IRNode<"slice">, idx: string, mode: Ty): Val {
    const { axis, start, end } = node.attrs;
    const xs = this.graph.shapeOf(node.inputs[0]!);
    const inner = numel(xs.slice(axis + 1));
    const n = (end - start) * inner;
    const map = (i: string, unit: number) => `(${i}) / ${u32(n / unit)} * ${u32((xs[axis]! * inner) / unit)} + ${u32((start * inner) / unit)} + (${i}) % ${u32(n / unit)}`;
    if (mode === "s") return this.at(node.inputs[0]!, map(idx, 1), "s");
    if (n % 4 === 0 && (xs[axis]! * inner) % 4 === 0 && (start * inner) % 4 === 0) return this.at(node.inputs[0]!, map(idx, 4), "v");
    return this.fourScalars(node.id, idx);
  }

  private dropout(node: IRNode<"dropout">, idx: string): Val {
    this.decls.add(PCG);
    this.decls.add(DROPOUT_HASH);
    const x = this.at(node.inputs[0]!, idx, "s");
    const seed = this.at(node.inputs[1]!, "0u", "s");
    const step = this.at(node.inputs[1]!, "1u", "s");
    const threshold = dropoutThreshold(node.attrs.p);
    const h = this.temp(`dropout_hash(${seed.code}, ${step.code}, ${u32(node.attrs.stream >>> 0)}, ${idx})`, "s");
    // As the reference: keep when h / 2^32 >= p, compared as integers.
    const keep = threshold === null ? "false" : `${h.code} >= ${u32(threshold)}`;
    return this.temp(`select(0.0, ${x.code} * ${f32(1 / (1 - node.attrs.p))}, ${keep})`, "s");
  }

  private windows(node: IRNode<"windows">, idx: string): Val {
    const [, , H, W] = this.graph.shapeOf(node.inputs[0]!) as [number, number, number, number];
    const [, , Ho, Wo, KK] = node.shape as [number, number, number, number, number];
    const { k, stride, padding, pad } = node.attrs;
    const t = `w${this.counter.n++}`;
    this.lines.push(
      `let ${t}_nc = (${idx}) / ${u32(Ho * Wo * KK)};`,
      `let ${t}_r = (${idx}) % ${u32(Ho * Wo * KK)};`,
      `let ${t}_kk = ${t}_r % ${u32(KK)};`,
      `let ${t}_h = i32((${t}_r / ${u32(Wo * KK)}) * ${u32(stride)} + ${t}_kk / ${u32(k)}) - ${i32(padding)};`,
      `let ${t}_w = i32(((${t}_r / ${u32(KK)}) % ${u32(Wo)}) * ${u32(stride)} + ${t}_kk % ${u32(k)}) - ${i32(padding)};`,
      `let ${t}_in = ${t}_h >= 0 && ${t}_h < ${i32(H)} && ${t}_w >= 0 && ${t}_w < ${i32(W)};`,
      // Outside the image the index is clamped to 0 and the value replaced by the padding.
      `let ${t}_src = select(0u, (${t}_nc * ${u32(H)} + u32(${t}_h)) * ${u32(W)} + u32(${t}_w), ${t}_in);`,
    );
    const x = this.at(node.inputs[0]!, `${t}_src`, "s");
    return this.temp(`select(${f32(pad)}, ${x.code}, ${t}_in)`, "s");
  }
}

const tyName = (t: Ty) => (t === "v" ? "vec4<f32>" : "f32");
export const splat = (v: Val): Val => (v.ty === "v" ? v : { code: `vec4<f32>(${v.code})`, ty: "v" });

export function describe(graph: Graph, kind: string, roots: readonly number[], inlined: readonly number[]): string {
  const prims = new Map<string, number>();
  for (const v of [...inlined, ...roots]) {
    const p = graph.node(v).prim;
    prims.set(p, (prims.get(p) ?? 0) + 1);
  }
  const what = [...prims].map(([p, n]) => (n > 1 ? `${p} x${n}` : p)).join(", ");
  return `// drifa fused ${kind} kernel: ${what} -> ${roots.map((r) => fmtShape(graph.shapeOf(r))).join(", ")}`;
}

export interface FusedGroup {
  roots: readonly number[];
  reads: readonly number[];
  inlined: readonly number[];
  siblings?: readonly number[];
  epilogues?: readonly number[];
}

/** One kernel writing `roots` (index-wise values of one element count). */
export function fusedElementwiseKernel(graph: Graph, group: FusedGroup, shared?: SharedPlacement): KernelSpec {
  const n = numel(graph.shapeOf(group.roots[0]!));
  const vec = n % 4 === 0;
  const b = new Bindings(graph, group.reads, group.roots, vec, shared);
  const decls = new Set<string>();
  const reads = new Set(group.reads);
  const builder = new ExprBuilder(graph, b, (v) => reads.has(v), decls, { n: 0 });
  const mode: Ty = vec ? "v" : "s";
  for (const r of group.roots) {
    const v = builder.at(r, "i", mode);
    const out = b.output(r);
    builder.lines.push(`${out.name}[i] = ${out.vec ? splat(v).code : v.code};`);
  }
  const module = computeModule(describe(graph, "elementwise", group.roots, group.inlined), b.module(), {
    invocations: vec ? n / 4 : n,
    body: builder.lines.join("\n"),
    decls: [...decls].join("\n\n"),
  });
  return { node: group.roots[0]!, label: labelOf(graph, group.roots), entryPoint: "main", bindings: b.kernelBindings(), ...module };
}

/**
 * One kernel for a bucket of reductions over one input shape (fuse.ts, rule 3): several
 * patterns (kept axes), each reduced value an expression of what the kernel reads (its
 * prologue); elementwise siblings over the input space written as the loop visits each element
 * (in the first pattern's loop only: once); epilogues over a pattern's output space computed
 * from the finished sums by the invocation (or lane 0 of the workgroup) that owns the output.
 * Invocations (or workgroups) are laid out pattern after pattern.
 */
export function fusedReduceKernel(graph: Graph, group: FusedGroup, shared?: SharedPlacement): KernelSpec {
  const reduces = group.roots.filter((r) => graph.node(r).prim === "reduce");
  const first = graph.node(reduces[0]!) as IRNode<"reduce">;
  const xs = graph.shapeOf(first.inputs[0]!);
  const n = numel(xs);
  const patterns: { attrs: PrimAttrs["reduce"]; roots: number[]; epilogue: number[]; outputs: number; start: number }[] = [];
  for (const r of reduces) {
    const a = (graph.node(r) as IRNode<"reduce">).attrs;
    const key = JSON.stringify([a.shape, a.axes]);
    let p = patterns.find((q) => JSON.stringify([q.attrs.shape, q.attrs.axes]) === key);
    if (!p) patterns.push((p = { attrs: a, roots: [], epilogue: [], outputs: numel(a.shape), start: 0 }));
    p.roots.push(r);
  }
  let start = 0;
  for (const p of patterns) {
    p.start = start;
    start += p.outputs;
  }
  const siblings = group.siblings ?? [];
  for (const e of group.epilogues ?? []) {
    // An epilogue belongs to the pattern of the reductions it reads.
    const p = patterns.find((q) => q.roots.some((r) => dependsOn(graph, e, r, new Set(group.reads))));
    if (!p) throw new Error(`internal error: %${e} reads none of this kernel's reductions`);
    p.epilogue.push(e);
  }
  // Workgroups (a tree each) when some pattern has large groups and every pattern few outputs.
  const tree = patterns.every((p) => p.outputs <= TREE_MAX_OUTPUTS) && patterns.some((p) => n / p.outputs >= TREE_MIN_GROUP);
  // A tree pattern whose group ends in a contiguous run of a multiple of 4 elements (the
  // innermost axis is reduced) visits its group four elements at a time: vec4 loads, vec4
  // accumulators, vec4 sibling stores. Every axis' stride is then a multiple of 4, so the group's
  // base and each quad are vec4-aligned.
  const quads = patterns.map((p) => {
    const last = groups(p.attrs, xs, "q").reduced.at(-1);
    return tree && last !== undefined && last[1] === 1 && last[0] % 4 === 0;
  });
  const siblingSet = new Set(siblings);
  const b = new Bindings(graph, group.reads, group.roots, quads.some(Boolean), shared, (v) => quads[0]! && siblingSet.has(v));
  const decls = new Set<string>();
  const reads = new Set(group.reads);
  const counter = { n: 0 };
  const builder = () => new ExprBuilder(graph, b, (v) => reads.has(v), decls, counter);
  const out = (v: number) => b.output(v).name;

  const blocks = patterns.map((p, j) => {
    const g0 = groups(p.attrs, xs, "q");
    const g = { ...g0, base: "base" };
    const ops = p.roots.map((r) => (graph.node(r) as IRNode<"reduce">).attrs.op);
    const kept = new Set(p.attrs.axes.filter((a, k) => p.attrs.shape[k] !== 1));
    const outer = builder();
    const quad = quads[j]!;
    const mode: Ty = quad ? "v" : "s";
    const index = quad ? "off4" : "off";
    const hoist: Hoist = { outer, index, base: "base", shape: xs, reduced: new Set(xs.map((_, a) => a).filter((a) => !kept.has(a) && xs[a]! > 1)) };
    // The loop body at element `off` (quad `off4`): the reduced values' elements, and the siblings.
    const visit = () => {
      const e = new ExprBuilder(graph, b, (v) => reads.has(v), decls, counter, hoist);
      const vals = p.roots.map((r) => {
        const v = e.at(graph.node(r).inputs[0]!, index, mode);
        return quad ? splat(v).code : v.code;
      });
      const writes =
        j === 0
          ? siblings.map((sib) => {
              const v = e.at(sib, index, mode);
              return `${out(sib)}[${index}] = ${quad ? splat(v).code : v.code};`;
            })
          : [];
      return [...e.lines, ...vals.map((v, k) => `acc${k} = ${combine(ops[k]!, `acc${k}`, v)};`), ...writes];
    };
    // After the sums: the outputs, then the epilogues from them.
    const finish = (sum: (k: number) => string) => {
      const e = builder();
      p.roots.forEach((r, k) => e.seed(r, "q", sum(k)));
      const vals = p.epilogue.map((v) => e.at(v, "q", "s").code);
      return [...p.roots.map((r, k) => `${out(r)}[q] = ${sum(k)};`), ...e.lines, ...p.epilogue.map((v, k) => `${out(v)}[q] = ${vals[k]};`)];
    };
    const body = visit();
    const init = (k: number) => (quad ? `vec4<f32>(${INIT[ops[k]!]})` : INIT[ops[k]!]);
    const lines = [`let q = i - ${u32(p.start)};`, `let base = ${g0.base};`, ...outer.lines, ...p.roots.map((_, k) => `var acc${k} = ${init(k)};`)];
    if (tree) {
      // In quads: the last reduced axis counts quads, the strides count vec4s.
      const dims = quad ? g.reduced.map(([size, stride], k) => (k === g.reduced.length - 1 ? [size / 4, 1] : [size, stride / 4])) : g.reduced;
      const sizes = dims.map(([size]) => size);
      const offset = linear(dims.map(([, stride], k) => [coord("r", sizes, k), stride]));
      const lanes = (k: number) => {
        if (!quad) return `acc${k}`;
        const [x, y, z, w] = ["x", "y", "z", "w"].map((c) => `acc${k}.${c}`);
        return combine(ops[k]!, `(${combine(ops[k]!, x!, y!)})`, `(${combine(ops[k]!, z!, w!)})`);
      };
      lines.push(
        `for (var r = lane; r < ${u32(quad ? g.count / 4 : g.count)}; r += ${u32(TREE_LANES)}) {`,
        quad ? `  let off4 = base / 4u + ${offset};` : `  let off = base + ${offset};`,
        ...body.map((l) => `  ${l}`),
        `}`,
        ...p.roots.map((_, k) => `partial${k}[lane] = ${lanes(k)};`),
        `workgroupBarrier();`,
        `if (lane == 0u) {`,
        ...p.roots.map((_, k) => `  var sum${k} = partial${k}[0];`),
        `  for (var s = 1u; s < ${u32(TREE_LANES)}; s++) {`,
        ...p.roots.map((_, k) => `    sum${k} = ${combine(ops[k]!, `sum${k}`, `partial${k}[s]`)};`),
        `  }`,
        ...finish((k) => `sum${k}`).map((l) => `  ${l}`),
        `}`,
      );
    } else lines.push(loops(g, body.join("\n")), ...finish((k) => `acc${k}`));
    const cond = patterns.length === 1 ? null : j === 0 ? `i < ${u32(p.start + p.outputs)}` : `i >= ${u32(p.start)} && i < ${u32(p.start + p.outputs)}`;
    return cond === null ? lines : [`if (${cond}) {`, ...lines.map((l) => `  ${l}`), `}`];
  });
  const body = blocks.flat().join("\n");
  const comment = describe(graph, "reduction", group.roots, group.inlined);
  const lanes = Math.max(...patterns.map((p) => p.roots.length));
  const module = tree
    ? computeModule(comment, b.module(), {
        invocations: start,
        mode: "workgroup",
        workgroupSize: TREE_LANES,
        body,
        decls: [Array.from({ length: lanes }, (_, k) => `var<workgroup> partial${k}: array<f32, ${TREE_LANES}>;`).join("\n"), ...decls].join("\n\n"),
      })
    : computeModule(comment, b.module(), { invocations: start, body, decls: [...decls].join("\n\n") });
  return { node: group.roots[0]!, label: labelOf(graph, group.roots), entryPoint: "main", bindings: b.kernelBindings(), ...module };
}

/** Does `v` depend on `target` through values computed inline (not through `stored` ones)? */
function dependsOn(graph: Graph, v: number, target: number, stored: ReadonlySet<number>): boolean {
  const stack = [...graph.node(v).inputs];
  const seen = new Set<number>();
  while (stack.length) {
    const x = stack.pop()!;
    if (x === target) return true;
    if (stored.has(x) || seen.has(x)) continue;
    seen.add(x);
    stack.push(...graph.node(x).inputs);
  }
  return false;
}

function labelOf(graph: Graph, roots: readonly number[]): string {
  return roots.map((r) => `%${r} ${graph.node(r).prim}`).join(" + ");
}
