// Rematerialisation: forward values that the backward pass reads, recomputed in backward
// instead of kept alive from the forward pass to the backward pass.
//
// Backward reads many forward values (activations for weight gradients, sigmoid outputs for
// their derivatives). Each one it reads is live from where the forward pass computes it to where
// the backward pass last reads it, which spans the peak of memory (the start of backward). Some
// are cheap to compute again from values backward keeps anyway: DRIFA-Net's HIFA and CLIA
// sigmoid maps (sigmoid of a 1x1 convolution of x, chained four deep), the modulation's product
// x * σ(·) * ωc. Recomputing them where backward first needs them means the forward copy dies
// inside the forward pass and the recomputed one lives only through its own block's backward.
//
// The rule: a forward value read by backward is recomputed when it is computed by index-wise
// arithmetic or a 1x1 convolution (stride 1, no padding) from values that backward reads anyway
// (anchors), parameters, inputs and constants, possibly through more such values that backward
// does not read. Anchors are not recomputed: they are kept as before, so recomputation never
// makes backward keep a value the original program did not. The recomputed values come right
// before their first backward reader (one copy shared by all its backward readers), so the
// fusion pass and the memory plan see them where they are used. Values are identical to the
// originals (the same primitives on the same inputs), so gradients do not change at all.
//
// Size: a value under REMAT_MIN_FLOATS elements (64 KiB) is kept. Its recomputation usually
// needs kernels of its own (a 1x1 convolution cannot be absorbed by its backward reader), and a
// dispatch costs about the same whatever its size (~0.1 ms on lavapipe), while small values
// free little memory: in the bench's DRIFA-Net (width 16, 64x64, batch 8) the 546 candidates
// under 16,384 elements free 3.1 MiB together and cost 184 dispatches a step.
import { type Differentiated } from "./autodiff.ts";
import { Graph } from "./graph.ts";
import { type ConvAttrs, type IRNode, type Prim, numel } from "./primitives.ts";

/** Primitives whose values are recomputed from their inputs at no more than a small cost per
 * element. Dropout is left out: its mask is reproducible, but it reads the random stream. */
const INDEX_WISE = new Set<Prim>(["neg", "exp", "log", "sqrt", "relu", "sigmoid", "add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "broadcast", "reshape"]);

const LEAVES = new Set<Prim>(["input", "param", "const"]);

export interface Rematerialised extends Differentiated {
  /** Ids (in the new graph) of the recomputed values, not part of the program as written, each
   * with the number (from 1) of the backward value whose first read recomputed it: values
   * recomputed together share it. */
  recomputed: Map<number, number>;
  /** Candidates kept from forward because they are under the size threshold (for --report;
   * zero when the chosen set was given). */
  keptSmall: { values: number; minFloats: number };
}

/** Forward values smaller than this (elements) are kept rather than recomputed. */
export const REMAT_MIN_FLOATS = 16384;

export interface RematOptions {
  /** Keep values with fewer elements than this (default REMAT_MIN_FLOATS; 0 recomputes every
   * candidate, as `drifac verify` does to check recomputation at its small sizes). */
  minFloats?: number;
}

function recomputable(node: IRNode, graph: Graph): boolean {
  if (INDEX_WISE.has(node.prim)) return true;
  if (node.prim !== "conv2d") return false;
  const a = node.attrs as ConvAttrs;
  const w = graph.shapeOf(node.inputs[1]!);
  return w[2] === 1 && w[3] === 1 && a.stride === 1 && a.padding === 0;
}

/** The forward values (leaves included) that backward reads; autodiff appends backward after
 * the loss. */
function backwardReads(model: Differentiated): Set<number> {
  const g = model.graph;
  const reads = new Set<number>();
  for (let id = model.loss + 1; id < g.nodes.length; id++) for (const i of g.node(id).inputs) if (i <= model.loss) reads.add(i);
  return reads;
}

/** The forward values that backward reads and that are recomputed there (original ids). */
export function rematCandidates(model: Differentiated, options: RematOptions = {}): Set<number> {
  return choose(model, options.minFloats ?? REMAT_MIN_FLOATS).chosen;
}

/** rematCandidates' choice, and how many recomputable values it left out for their size. */
function choose(model: Differentiated, minFloats: number): { chosen: Set<number>; small: number } {
  const g = model.graph;
  const isLeaf = (id: number) => LEAVES.has(g.node(id).prim);
  const readByBackward = backwardReads(model);
  const recomputableReads = [...readByBackward].filter((v) => !isLeaf(v) && recomputable(g.node(v), g));
  const chosen = new Set(recomputableReads.filter((v) => numel(g.shapeOf(v)) >= minFloats));
  const small = recomputableReads.length - chosen.size;
  // Drop values whose recomputation would need a forward value backward does not keep (until
  // nothing changes: dropping one makes it an anchor, which never makes another fail).
  for (let changed = true; changed; ) {
    changed = false;
    for (const v of [...chosen]) {
      if (expandable(v, true)) continue;
      chosen.delete(v);
      changed = true;
    }
  }
  return { chosen, small };

  function expandable(v: number, top: boolean): boolean {
    if (!top) {
      if (isLeaf(v) || chosen.has(v)) return true;
      if (readByBackward.has(v)) return true; // an anchor
      if (!recomputable(g.node(v), g)) return false;
    }
    return g.node(v).inputs.every((i) => expandable(i, false));
  }
}

/** The model with forward values recomputed in backward (a new graph; ids change): the given
 * ones, or rematCandidates' choice under the given options. */
export function rematerialise(model: Differentiated, choice: ReadonlySet<number> | RematOptions = {}): Rematerialised {
  const minFloats = choice instanceof Set ? 0 : ((choice as RematOptions).minFloats ?? REMAT_MIN_FLOATS);
  const picked = choice instanceof Set ? { chosen: choice as ReadonlySet<number>, small: 0 } : choose(model, minFloats);
  const chosen = picked.chosen;
  const keptSmall = { values: picked.small, minFloats };
  const old = model.graph;
  const g = new Graph();
  const map = new Map<number, number>();
  const clones = new Map<number, number>();
  const recomputed = new Map<number, number>();
  let trigger = 0;
  const forwardEnd = model.loss;
  const copy = (node: IRNode, inputs: number[]): number => {
    g.origin = node.origin;
    const a = node.attrs as { name: string; shape: number[] };
    if (node.prim === "param") return g.param(a.name, a.shape);
    if (node.prim === "input") return g.input(a.name, a.shape);
    return g.emit(node.prim, inputs, node.attrs as never);
  };
  // A value that is neither chosen nor read by backward is reached only while recomputing a
  // chosen one (rematCandidates checked that such values are recomputable).
  const readByBackward = backwardReads(model);
  // The value backward uses for forward value v: its recomputed copy when v (or something it is
  // computed from that backward does not read) is recomputed, else v itself.
  const forBackward = (v: number): number => {
    const node = old.node(v);
    if (LEAVES.has(node.prim) || (!chosen.has(v) && readByBackward.has(v))) return map.get(v)!;
    const have = clones.get(v);
    if (have !== undefined) return have;
    const id = copy(node, node.inputs.map(forBackward));
    clones.set(v, id);
    recomputed.set(id, trigger);
    return id;
  };
  for (const node of old.nodes) {
    const backward = node.id > forwardEnd;
    if (backward) trigger++;
    const inputs = node.inputs.map((i) => (backward && i <= forwardEnd ? forBackward(i) : map.get(i)!));
    map.set(node.id, copy(node, inputs));
  }
  g.origin = undefined;
  const at = (id: number) => map.get(id)!;
  const remap = <K>(m: Map<K, number>) => new Map([...m].map(([k, v]) => [k, at(v)] as [K, number]));
  return {
    ...model,
    graph: g,
    values: remap(model.values),
    tasks: model.tasks.map((t) => ({ ...t, logits: at(t.logits), loss: at(t.loss) })),
    loss: at(model.loss),
    updates: remap(model.updates),
    grads: remap(model.grads),
    recomputed,
    keptSmall,
  };
}
