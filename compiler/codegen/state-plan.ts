// The pieces train-plan.ts builds StatePlans from: flat layouts (tensors at 64-float aligned
// offsets in one GPU buffer, so one kernel or one copy covers all of them), the persistent
// state of a model (trained parameters in one arena, buffers in another, the same layout in
// every plan of the model so a predictor can share a trainer's buffers), and the placement of
// graph values, each in its own buffer or, when asked, as a view of an arena.
import type { BufferInit, BufferSpec, KernelLaunch } from "../../runtime/executor.ts";
import { VIEW_ALIGN } from "../../runtime/executor.ts";
import type { Program } from "../check/program.ts";
import { paramCount } from "../check/program.ts";
import type { Graph } from "../ir/graph.ts";
import { IRError, fmtShape, numel } from "../ir/primitives.ts";
import { launchOf } from "./plan.ts";
import { type FusionOptions, type FusionPlan, planFusion } from "./fuse.ts";
import { type Lifetime, planMemory } from "./memory-plan.ts";
import { pairKernels, pairSpecs } from "./pairing.ts";
import { kernelOfGroup } from "./plan.ts";
import type { KernelSpec } from "./wgsl/index.ts";

export interface FlatLayout {
  /** Name -> first element. */
  offsets: Map<string, number>;
  sizes: Map<string, number>;
  /** Floats in all, a multiple of VIEW_ALIGN (at least one alignment unit). */
  total: number;
}

const align = (n: number) => Math.ceil(n / VIEW_ALIGN) * VIEW_ALIGN;

/** Tensors one after another, each at an aligned offset, in the order given. */
export function flatLayout(tensors: readonly { name: string; floats: number }[]): FlatLayout {
  const offsets = new Map<string, number>();
  const sizes = new Map<string, number>();
  let at = 0;
  for (const t of tensors) {
    offsets.set(t.name, at);
    sizes.set(t.name, t.floats);
    at += align(Math.max(1, t.floats));
  }
  return { offsets, sizes, total: Math.max(VIEW_ALIGN, at) };
}

/** The state layout of a model: trained parameters ("param" role) and buffers, each in program
 * order. Depends on the Program only, so every plan of a model agrees on it. */
export function stateLayout(program: Program): { params: FlatLayout; buffers: FlatLayout } {
  const of = (role: "param" | "buffer") => flatLayout(program.params.filter((p) => p.role === role).map((p) => ({ name: p.name, floats: paramCount(p) })));
  return { params: of("param"), buffers: of("buffer") };
}

/** Accumulates the buffers of a plan. */
export class Buffers {
  readonly specs: BufferSpec[] = [];

  root(label: string, floats: number, init: BufferInit = { kind: "none" }): number {
    this.specs.push({ label, floats, init });
    return this.specs.length - 1;
  }

  view(of: number, offset: number, floats: number, label: string, init: BufferInit = { kind: "none" }): number {
    this.specs.push({ label, floats, init, view: { of, offset } });
    return this.specs.length - 1;
  }

  /** A root holding `layout`, and a view per tensor (named `name + suffix`, `init` per name). */
  arena(label: string, layout: FlatLayout, init: (name: string) => BufferInit, suffix = ""): { root: number; views: Map<string, number> } {
    const root = this.root(label, layout.total);
    const views = new Map<string, number>();
    for (const [name, offset] of layout.offsets) views.set(name, this.view(root, offset, layout.sizes.get(name)!, `${name}${suffix}`, init(name)));
    return { root, views };
  }
}

/** Where a value is to live when it is not in a buffer of its own. */
export interface Placement {
  arena: number;
  offset: number;
}

/**
 * Buffers and kernels for the values `outputs` depend on, fused (fuse.ts) unless asked not to.
 * Parameters are the state views in `state` (by name); inputs get a buffer each (per-run
 * feeds); constants a filled buffer; every value a kernel writes a buffer, or the view `wanted`
 * asks for. A wanted placement is dropped (the value gets its own buffer, and the caller copies
 * it) when the value is a leaf, or when its kernel reads a value placed in the same arena: a
 * dispatch may not bind one GPU buffer both read-only and writable, even over disjoint ranges
 * (WebGPU's usage scopes are per buffer). With `reuse`, the values nobody reads after the step
 * share buffers by liveness (memory-plan.ts).
 */
export function placeValues(
  graph: Graph,
  outputs: readonly number[],
  b: Buffers,
  state: ReadonlyMap<string, number>,
  wanted: ReadonlyMap<number, Placement> = new Map(),
  options: { fusion?: Partial<FusionOptions>; reuse?: boolean; pair?: boolean; recomputed?: ReadonlyMap<number, number> } = {},
): { bufferOf: Map<number, number>; kernels: KernelLaunch[]; placed: Set<number>; fusion: FusionPlan; specs: KernelSpec[]; tempBytes: { planned: number; unplanned: number } } {
  // Parameters and running statistics are views of the two state arenas: a kernel binds each
  // arena once, however many of its tensors it reads.
  const arenaKey = (id: number) => {
    const node = graph.node(id);
    if (node.prim !== "param") return undefined;
    const view = state.get((node.attrs as { name: string }).name);
    return view === undefined ? undefined : `arena ${b.specs[view]!.view?.of ?? view}`;
  };
  const fusion = planFusion(graph, outputs, { ...options.fusion, sharedBuffer: arenaKey, segmentOf: (id) => options.recomputed?.get(id) ?? 0 });
  if (options.recomputed?.size) fusion.recomputed = options.recomputed;
  const bufferOf = new Map<number, number>();
  const arenaOf = new Map<number, number>();
  const placed = new Set<number>();
  const label = (id: number) => `%${id} ${graph.node(id).prim} ${fmtShape(graph.shapeOf(id))}`;
  for (const id of [...fusion.stored].sort((x, y) => x - y)) {
    const node = graph.node(id);
    const name = (node.attrs as { name?: string }).name;
    if (node.prim === "param") {
      const s = state.get(name!);
      if (s === undefined) throw new IRError(`parameter ${name} is not in the model's state layout`);
      if (b.specs[s]!.floats !== numel(node.shape)) throw new IRError(`parameter ${name}: ${numel(node.shape)} values in the graph, ${b.specs[s]!.floats} in the state`);
      bufferOf.set(id, s);
    } else if (node.prim === "input") bufferOf.set(id, b.root(label(id), numel(node.shape), { kind: "input", name: name! }));
    else if (node.prim === "const") bufferOf.set(id, b.root(label(id), numel(node.shape), { kind: "fill", value: (node.attrs as { value: number }).value }));
  }
  const shared = (id: number) => {
    const key = arenaKey(id);
    return key === undefined ? undefined : { key, offset: b.specs[bufferOf.get(id)!]!.view?.offset ?? 0 };
  };
  // The kernels (they depend on where parameters are, not on the other buffers), then the
  // dispatches: with fusion, twin kernels paired into one (pairing.ts), in their new order.
  const unordered = fusion.groups.map((g) => kernelOfGroup(graph, g, shared));
  const slots = fusion.options.enabled && options.pair !== false ? pairKernels(unordered, fusion.groups.map((g) => g.reads), fusion.groups.map((g) => g.roots), fusion.options.maxBindings).slots : unordered.map((_, k) => [k]);
  const order = slots.flat();
  fusion.groups = order.map((k) => fusion.groups[k]!);
  const specs = order.map((k) => unordered[k]!);
  const slotOf: number[] = [];
  slots.forEach((s, k) => s.forEach(() => slotOf.push(k)));
  // Where each kernel's values go: a wanted view, else a temporary (pooled below). Lifetimes
  // count dispatches: the two kernels of a pair run at once.
  const temps: Lifetime[] = [];
  const lastRead = new Map<number, number>();
  fusion.groups.forEach((g, k) => g.reads.forEach((r) => lastRead.set(r, slotOf[k]!)));
  const kept = new Set(outputs);
  fusion.groups.forEach((g, gk) => {
    const k = slotOf[gk]!;
    const arenasRead = new Set(g.reads.map((r) => arenaOf.get(r)).filter((a) => a !== undefined));
    for (const id of g.roots) {
      const w = wanted.get(id);
      if (w && !arenasRead.has(w.arena)) {
        bufferOf.set(id, b.view(w.arena, w.offset, numel(graph.shapeOf(id)), label(id)));
        arenaOf.set(id, w.arena);
        placed.add(id);
      } else temps.push({ id, floats: Math.max(1, numel(graph.shapeOf(id))), def: k, lastUse: kept.has(id) || !options.reuse ? Infinity : (lastRead.get(id) ?? k) });
    }
  });
  // Unplanned: every value of the program as written in a buffer of its own (values recomputed
  // in backward, remat.ts, exist only because of the plan and are not counted).
  const tempBytes = { planned: 0, unplanned: temps.reduce((n, t) => n + (options.recomputed?.has(t.id) ? 0 : t.floats * 4), 0) };
  tempBytes.planned = temps.reduce((n, t) => n + t.floats * 4, 0);
  if (options.reuse) {
    const memory = planMemory(temps);
    tempBytes.planned = memory.pools.reduce((n, f) => n + f * 4, 0);
    const pools = memory.pools.map((floats, p) => b.root(`pool ${p}`, floats));
    for (const t of temps) bufferOf.set(t.id, b.view(pools[memory.poolOf.get(t.id)!]!, 0, t.floats, label(t.id)));
  } else for (const t of temps) bufferOf.set(t.id, b.root(label(t.id), t.floats));
  // One view per distinct arena range that kernels bind.
  const ranges = new Map<string, number>();
  const rangeOf = (buffer: number, r: { offset: number; floats: number }) => {
    const root = b.specs[buffer]!.view?.of ?? buffer;
    const key = `${root} ${r.offset} ${r.floats}`;
    let v = ranges.get(key);
    if (v === undefined) ranges.set(key, (v = b.view(root, r.offset, r.floats, `${b.specs[root]!.label}[${r.offset}..${r.offset + r.floats})`)));
    return v;
  };
  // A pair whose bindings would put one buffer in both usages runs as two dispatches.
  const rootOf = (buffer: number) => b.specs[buffer]!.view?.of ?? buffer;
  const kernels: KernelLaunch[] = [];
  const dispatches: number[][] = [];
  let at = 0;
  for (const s of slots) {
    const here = s.map((_, j) => at + j);
    at += s.length;
    if (here.length === 2) {
      const launch = launchOf(pairSpecs(specs[here[0]!]!, specs[here[1]!]!), bufferOf, rangeOf);
      const written = new Set(launch.buffers.filter((_, j) => launch.access[j] === "write").map(rootOf));
      if (!launch.buffers.some((buf, j) => launch.access[j] === "read" && written.has(rootOf(buf)))) {
        kernels.push(launch);
        dispatches.push(here);
        continue;
      }
    }
    for (const k of here) {
      kernels.push(launchOf(specs[k]!, bufferOf, rangeOf));
      dispatches.push([k]);
    }
  }
  fusion.dispatches = dispatches;
  return { bufferOf, kernels, placed, fusion, specs, tempBytes };
}

/** Copies [from, to] (buffer indices; every `to` a view listed in `order`, the destination
 * arena's tensors in layout order). Sources that are views of an arena laid out like the
 * destination are merged into one copy per run of consecutive tensors (the alignment gaps
 * between them are copied too: nothing reads them). */
export function coalescedCopies(b: Buffers, pairs: readonly [number, number][], order: readonly number[]): [number, number][] {
  const pos = new Map(order.map((v, k) => [v, k]));
  const sorted = [...pairs].sort((x, y) => pos.get(x[1])! - pos.get(y[1])!);
  const out: [number, number][] = [];
  let k = 0;
  while (k < sorted.length) {
    // Mirrored: the source sits at the destination's offset (in an arena laid out alike).
    const mirrored = (pair: [number, number]) => b.specs[pair[0]]!.view?.offset === b.specs[pair[1]]!.view!.offset;
    let j = k;
    while (j + 1 < sorted.length && mirrored(sorted[j]!) && mirrored(sorted[j + 1]!) && pos.get(sorted[j + 1]![1]) === pos.get(sorted[j]![1])! + 1) j++;
    if (j === k) out.push(sorted[k]!);
    else {
      const first = b.specs[sorted[k]![0]]!.view!;
      const dst = b.specs[sorted[k]![1]]!.view!;
      const lastFrom = b.specs[sorted[j]![0]]!;
      const floats = lastFrom.view!.offset + lastFrom.floats - first.offset;
      out.push([b.view(first.of, first.offset, floats, `copy ${j - k + 1} tensors`), b.view(dst.of, dst.offset, floats, `copy ${j - k + 1} tensors`)]);
    }
    k = j + 1;
  }
  return out;
}
