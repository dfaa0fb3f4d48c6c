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
import { kernelFor } from "./wgsl/index.ts";

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

/** Every value `outputs` depend on, in id order (the graph is topologically ordered). */
export function liveIds(graph: Graph, outputs: readonly number[]): number[] {
  const last = Math.max(-1, ...outputs);
  const live = new Uint8Array(last + 1);
  for (const o of outputs) live[o] = 1;
  for (let id = last; id >= 0; id--) if (live[id]) for (const i of graph.node(id).inputs) live[i] = 1;
  const ids: number[] = [];
  for (let id = 0; id <= last; id++) if (live[id]) ids.push(id);
  return ids;
}

/**
 * Buffers and kernels for the values `outputs` depend on. Parameters are the state views in
 * `state` (by name); inputs get a buffer each (per-run feeds); constants a filled buffer; every
 * other value a buffer, or the view `wanted` asks for. A wanted placement is dropped (the value
 * gets its own buffer, and the caller copies it) when the value is a leaf, or when its kernel
 * reads a value placed in the same arena: a dispatch may not bind one GPU buffer both
 * read-only and writable, even over disjoint ranges (WebGPU's usage scopes are per buffer).
 */
export function placeValues(
  graph: Graph,
  outputs: readonly number[],
  b: Buffers,
  state: ReadonlyMap<string, number>,
  wanted: ReadonlyMap<number, Placement> = new Map(),
): { bufferOf: Map<number, number>; kernels: KernelLaunch[]; placed: Set<number> } {
  const bufferOf = new Map<number, number>();
  const arenaOf = new Map<number, number>();
  const placed = new Set<number>();
  const kernels: KernelLaunch[] = [];
  for (const id of liveIds(graph, outputs)) {
    const node = graph.node(id);
    const label = `%${id} ${node.prim} ${fmtShape(node.shape)}`;
    const name = (node.attrs as { name?: string }).name;
    if (node.prim === "param") {
      const s = state.get(name!);
      if (s === undefined) throw new IRError(`parameter ${name} is not in the model's state layout`);
      if (b.specs[s]!.floats !== numel(node.shape)) throw new IRError(`parameter ${name}: ${numel(node.shape)} values in the graph, ${b.specs[s]!.floats} in the state`);
      bufferOf.set(id, s);
      continue;
    }
    if (node.prim === "input") {
      bufferOf.set(id, b.root(label, numel(node.shape), { kind: "input", name: name! }));
      continue;
    }
    const init: BufferInit = node.prim === "const" ? { kind: "fill", value: (node.attrs as { value: number }).value } : { kind: "none" };
    const w = wanted.get(id);
    const clash = w !== undefined && node.inputs.some((i) => arenaOf.get(i) === w.arena);
    if (w && !clash) {
      bufferOf.set(id, b.view(w.arena, w.offset, numel(node.shape), label, init));
      arenaOf.set(id, w.arena);
      placed.add(id);
    } else bufferOf.set(id, b.root(label, numel(node.shape), init));
    if (node.prim === "const") continue;
    const k = kernelFor(graph, id);
    kernels.push(launchOf(k, bufferOf));
  }
  return { bufferOf, kernels, placed };
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
