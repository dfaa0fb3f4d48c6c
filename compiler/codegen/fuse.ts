// The fusion pass: which graph values get a buffer, and which kernels compute them.
//
// Rules (docs/architecture.md lists them too):
//  1. Inlining. A value of an index-wise primitive (elementwise arithmetic, broadcast, reshape,
//     slice, constants, dropout, one_hot, the windows gather) is not stored but computed where it
//     is read, as an expression of its own inputs at the index the reader needs, when every
//     reader can take an expression: another index-wise value, or a reduction (its prologue).
//     Convolutions, matmul, concat, argmask and windows_transpose read buffers, so what they read
//     is stored.
//  2. Recomputation. A value read by several kernels is recomputed in each when it is cheap (its
//     inlined expression costs at most `recomputeLimit`, exp/log/sigmoid/sqrt/div/dropout
//     counting more than a multiply); else it is stored once. This is how backward recomputes
//     the forward's cheap values (σ of the modulation, masks, normalised activations) instead
//     of keeping them alive from forward to backward.
//  3. Grouping. Stored index-wise values of the same element count, and reductions of the same
//     pattern (input shape, kept axes), that sit at the same depth of the kernel graph (their
//     longest path from the leaves), become ONE kernel writing all of them: the modulation's
//     backward is one elementwise kernel (dx, dd, dl) and one reduction kernel (dωd, dωl, dωc),
//     batch statistics take Σx and Σx² of a tensor in one pass. Equal depth makes the kernel
//     graph acyclic by construction.
//  4. Bindings. A kernel binds at most `maxBindings` storage buffers (reads and writes): groups
//     are split to fit, and a single value that would read too many is given a stored
//     intermediate.
//  5. Epilogues of convolutions and matmul. Stored elementwise values that read one
//     convolution's (input gradient's, matmul's) result at their own index, one level after it,
//     are computed by its kernel as it stores each result element (bias, sigmoid, activation
//     masks, residual adds); the result itself is not stored when nothing else reads it.
// With fusion off, every non-leaf value is stored and computed by its own kernel (kernelFor).
import type { Graph } from "../ir/graph.ts";
import { type IRNode, type Prim, fmtShape, numel } from "../ir/primitives.ts";
import { liveIds } from "./live.ts";
import { schedule } from "./schedule.ts";
import { TREE_MAX_OUTPUTS } from "./wgsl/layout.ts";

/** Primitives computed at any index from their inputs (rule 1). */
export const INDEXWISE = new Set<Prim>([
  "neg", "exp", "log", "sqrt", "relu", "sigmoid",
  "add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge",
  "broadcast", "reshape", "slice", "const", "dropout", "one_hot", "windows",
]);

/** Kernels that read their inputs through an expression (a prologue). */
const PROLOGUE = new Set<Prim>(["reduce"]);

/** Kernels that can compute elementwise epilogues as they store each element (rule 5): their
 * emitters (register, blocked and tiled) write their result only as `y[index] = value;`. */
export const EPILOGUE_HOSTS = new Set<Prim>(["conv2d", "conv2d_input_grad", "matmul"]);

/** What recomputing one element of a primitive costs, in multiplies. */
const COST: Partial<Record<Prim, number>> = { broadcast: 0, reshape: 0, slice: 0, const: 0, exp: 4, log: 4, sqrt: 4, sigmoid: 6, div: 3, dropout: 8, windows: 2 };

export interface FusionOptions {
  enabled: boolean;
  /** Storage buffers one kernel may bind (the adapter's maxStorageBuffersPerShaderStage). */
  maxBindings: number;
  /** Largest cost of an expression recomputed in several kernels (rule 2). */
  recomputeLimit: number;
  /** The buffer a leaf shares with others (the parameter arena, say), which a kernel binds once
   * however many of its tensors it reads; undefined for a buffer of its own. */
  sharedBuffer?: (id: number) => string | undefined;
  /** Rule 5 (epilogues of convolutions and matmul); on by default. */
  hostEpilogues?: boolean;
  /** Values grouped (rule 3) only with values of the same segment: a value recomputed in
   * backward (compiler/ir/remat.ts) has the depth of its forward original, and grouping the two
   * would compute the copy in the forward pass again. Default: one segment. */
  segmentOf?: (id: number) => number;
}

export const DEFAULT_FUSION: FusionOptions = { enabled: true, maxBindings: 8, recomputeLimit: 24 };

export type GroupKind = "elementwise" | "reduce" | "node";

export interface KernelGroup {
  kind: GroupKind;
  /** The values this kernel writes (id order). */
  roots: number[];
  /** The stored values it reads (id order). */
  reads: number[];
  /** The inlined values it computes on the way (id order). */
  inlined: number[];
  /** In a reduction kernel: elementwise roots over the input space, written in its loop. */
  siblings?: number[];
  /** In a reduction kernel: elementwise roots computed from the finished sums. In a
   * convolution's or matmul's kernel ("node"): elementwise roots computed from each element of
   * its result as it is stored (rule 5). */
  epilogues?: number[];
  /** A "node" kernel with epilogues: the convolution or matmul whose result they read (a root
   * too when it is stored). */
  host?: number;
}

export interface Missed {
  value: number;
  reason: string;
}

export interface FusionPlan {
  options: FusionOptions;
  /** Values with a buffer: leaves (inputs, parameters, constants read from memory) and every
   * value a kernel writes. */
  stored: Set<number>;
  /** Kernels in execution order. */
  groups: KernelGroup[];
  /** Index-wise values that were stored after all, and why (for --report). */
  missed: Missed[];
  /** Set by the placement (state-plan.ts): the groups each dispatch runs, in order; two for a
   * pair of twin kernels (pairing.ts). */
  dispatches?: number[][];
  /** Set by the placement for planTrainStep: values recomputed in backward (compiler/ir/remat.ts), with their
   * segments. */
  recomputed?: ReadonlyMap<number, number>;
  /** Set by planTrainStep: recomputable values kept because of their size (remat.ts). */
  keptSmall?: { values: number; minFloats: number };
}

export class FusionError extends Error {}

export function planFusion(graph: Graph, outputs: readonly number[], options: Partial<FusionOptions> = {}): FusionPlan {
  const opts = { ...DEFAULT_FUSION, ...options };
  const forced = new Set<number>();
  // Rule 4 may store an intermediate and start over; each round stores one more value, so this
  // ends (in the worst case with every value stored, which is the unfused plan).
  for (;;) {
    const attempt = tryPlan(graph, outputs, opts, forced);
    if (attempt.overflow === null) return attempt.plan;
    forced.add(attempt.overflow);
  }
}

interface Attempt {
  plan: FusionPlan;
  /** A value to store so that a kernel fits the binding limit, or null when all fit. */
  overflow: number | null;
}

function tryPlan(graph: Graph, outputs: readonly number[], opts: FusionOptions, forced: ReadonlySet<number>): Attempt {
  const ids = liveIds(graph, outputs);
  const consumers = new Map<number, IRNode[]>();
  for (const id of ids) for (const i of new Set(graph.node(id).inputs)) (consumers.get(i) ?? consumers.set(i, []).get(i)!).push(graph.node(id));
  const outSet = new Set(outputs);
  const stored = new Set<number>();
  const missed: Missed[] = [];
  const cost = new Map<number, number>();

  // The stored values an expression of each value reads (at most maxBindings - 1 of them, so
  // that a kernel computing it fits: rule 4).
  const exprReads = new Map<number, Set<number>>();
  const readsThrough = (id: number) => {
    const r = new Set<number>();
    for (const i of graph.node(id).inputs) {
      if (stored.has(i)) r.add(i);
      else for (const x of exprReads.get(i)!) r.add(x);
    }
    return r;
  };
  // Bindings a kernel needs to read `reads`: one per shared buffer, one per other value.
  const bindings = (reads: Iterable<number>) => {
    const keys = new Set<string | number>();
    for (const r of reads) keys.add(opts.sharedBuffer?.(r) ?? r);
    return keys.size;
  };
  const store = (id: number, reason: string) => {
    stored.add(id);
    if (graph.node(id).prim !== "const") missed.push({ value: id, reason });
  };
  /** Stores the widest inlined inputs of `id` until its expression reads few enough buffers. */
  const narrow = (id: number) => {
    let r = readsThrough(id);
    while (bindings(r) + 1 > opts.maxBindings) {
      let widest = -1;
      for (const i of graph.node(id).inputs) if (!stored.has(i) && (widest < 0 || bindings(exprReads.get(i)!) > bindings(exprReads.get(widest)!))) widest = i;
      if (widest < 0) break; // reads only stored values: kernelFor reports it
      store(widest, `stored so that %${id} ${graph.node(id).prim} fits ${opts.maxBindings} bindings`);
      r = readsThrough(id);
    }
    return r;
  };

  for (const id of ids) {
    const node = graph.node(id);
    if (node.prim === "input" || node.prim === "param") {
      stored.add(id);
      continue;
    }
    if (!INDEXWISE.has(node.prim) || !opts.enabled) {
      stored.add(id);
      if (opts.enabled && PROLOGUE.has(node.prim)) narrow(id);
      continue;
    }
    exprReads.set(id, narrow(id));
    const readers = consumers.get(id) ?? [];
    const c = (COST[node.prim] ?? 1) + node.inputs.reduce((s, i) => s + (stored.has(i) ? 0 : cost.get(i)!), 0);
    const bufferReader = readers.find((r) => !INDEXWISE.has(r.prim) && !PROLOGUE.has(r.prim));
    let reason: string | null = null;
    if (outSet.has(id)) reason = "an output of the plan";
    else if (bufferReader) reason = `read by ${bufferReader.prim} %${bufferReader.id}, which reads its inputs from memory`;
    else if (forced.has(id)) reason = `stored so that a kernel reading it fits ${opts.maxBindings} bindings`;
    else if (readers.length > 1 && c > opts.recomputeLimit) reason = `read by ${readers.length} values, and recomputing it costs ${c} > ${opts.recomputeLimit}`;
    if (reason === null) cost.set(id, c);
    else store(id, reason);
  }

  // The stored values each stored non-leaf reads through its inlined inputs, and those inlined.
  const isLeaf = (id: number) => ["input", "param", "const"].includes(graph.node(id).prim);
  const readsOf = new Map<number, { reads: Set<number>; inlined: Set<number> }>();
  const collect = (from: number[], reads: Set<number>, inlined: Set<number>) => {
    const stack = [...from];
    while (stack.length) {
      const v = stack.pop()!;
      if (stored.has(v)) {
        reads.add(v);
        continue;
      }
      if (inlined.has(v)) continue;
      inlined.add(v);
      stack.push(...graph.node(v).inputs);
    }
  };
  const kindOf = (id: number): GroupKind => {
    const p = graph.node(id).prim;
    if (!opts.enabled) return "node";
    if (p === "reduce") return "reduce";
    return INDEXWISE.has(p) ? "elementwise" : "node";
  };
  const level = new Map<number, number>();
  // The grouping key's depth part: the depth, and the segment when there are several.
  const depthKey = (id: number) => {
    const s = opts.segmentOf?.(id) ?? 0;
    return s === 0 ? `${level.get(id)}` : `${level.get(id)}/${s}`;
  };
  // A recomputed value is computed with its host only when they are recomputed together.
  const sameSegment = (value: number, host: number) => {
    const s = opts.segmentOf?.(value) ?? 0;
    return s === 0 || s === (opts.segmentOf?.(host) ?? 0);
  };
  const buckets = new Map<string, number[]>();
  const order: string[] = [];
  const keyOf = new Map<number, string>();
  const put = (id: number, key: string) => {
    if (!buckets.has(key)) {
      buckets.set(key, []);
      order.push(key);
    }
    buckets.get(key)!.push(id);
    keyOf.set(id, key);
  };
  for (const id of ids) {
    if (!stored.has(id) || isLeaf(id)) {
      if (stored.has(id)) level.set(id, 0);
      continue;
    }
    const reads = new Set<number>();
    const inlined = new Set<number>();
    const kind = kindOf(id);
    // An elementwise root computes its own expression; others read their inputs.
    if (kind === "elementwise") {
      for (const i of graph.node(id).inputs) collect([i], reads, inlined);
    } else collect(graph.node(id).inputs, reads, inlined);
    readsOf.set(id, { reads, inlined });
    level.set(id, 1 + Math.max(0, ...[...reads].map((r) => level.get(r)!)));
    const node = graph.node(id);
    put(id, kind === "elementwise" ? `e ${depthKey(id)} ${numel(node.shape)}` : kind === "reduce" ? `r ${depthKey(id)} ${reduceClass(graph, node as IRNode<"reduce">)}` : `n ${id}`);
  }

  // Rule 3b, siblings: elementwise values over a reduction's input space at its depth are
  // written by the reducing kernel as it visits each element (once).
  const reduceAt = new Map<string, string>(); // "level numel" -> the first reduction bucket
  for (const key of order) {
    if (!key.startsWith("r ")) continue;
    const first = graph.node(buckets.get(key)![0]!);
    const at = `${depthKey(first.id)} ${numel(graph.shapeOf(first.inputs[0]!))}`;
    if (!reduceAt.has(at)) reduceAt.set(at, key);
  }
  // Rule 3c, epilogues: an elementwise value that reads reductions only at its own index (their
  // outputs, one per reducing invocation) is computed right after them, in their kernel.
  const epilogueOf = (id: number): string | undefined => {
    const r = readsOf.get(id)!;
    const lv = level.get(id)! - 1;
    const reducers = [...r.reads].filter((v) => kindOf(v) === "reduce" && level.get(v) === lv);
    if (reducers.length === 0 || !sameSegment(id, reducers[0]!)) return undefined;
    const key = keyOf.get(reducers[0]!)!;
    if (reducers.some((v) => keyOf.get(v) !== key || numel(graph.shapeOf(v)) !== numel(graph.shapeOf(id)))) return undefined;
    if ([...r.reads].some((v) => !reducers.includes(v) && level.get(v)! >= lv)) return undefined;
    return readsAtOwnIndex(graph, id, new Set(reducers), stored) ? key : undefined;
  };
  const roleOf = new Map<number, "sibling" | "epilogue">();
  if (opts.enabled) {
    for (const key of [...order]) {
      if (!key.startsWith("e ")) continue;
      const members = buckets.get(key)!;
      const [, lv, n] = key.split(" ");
      const sib = reduceAt.get(`${lv} ${n}`);
      const stay: number[] = [];
      for (const id of members) {
        const target = sib ?? epilogueOf(id);
        if (target === undefined) stay.push(id);
        else {
          buckets.get(target)!.push(id);
          keyOf.set(id, target);
          roleOf.set(id, sib ? "sibling" : "epilogue");
        }
      }
      buckets.set(key, stay);
    }
    // Rule 5: what stays may be an epilogue of the convolution or matmul it reads.
    const epilogueReads = new Map<number, Set<number>>(); // host -> what its epilogues read
    for (const key of [...order]) {
      if (!key.startsWith("e ")) continue;
      const stay: number[] = [];
      for (const id of buckets.get(key)!) {
        const host = opts.hostEpilogues === false ? undefined : epilogueHost(id);
        if (host === undefined) {
          stay.push(id);
          continue;
        }
        buckets.get(keyOf.get(host)!)!.push(id);
        keyOf.set(id, keyOf.get(host)!);
        roleOf.set(id, "epilogue");
        const reads = epilogueReads.get(host) ?? epilogueReads.set(host, new Set()).get(host)!;
        for (const r of readsOf.get(id)!.reads) if (r !== host) reads.add(r);
      }
      buckets.set(key, stay);
    }
    function epilogueHost(id: number): number | undefined {
      const r = readsOf.get(id)!;
      const lv = level.get(id)! - 1;
      const n = numel(graph.shapeOf(id));
      const hosts = [...r.reads].filter((v) => EPILOGUE_HOSTS.has(graph.node(v).prim) && level.get(v) === lv && numel(graph.shapeOf(v)) === n && sameSegment(id, v));
      for (const host of hosts) {
        if (!readsAtOwnIndex(graph, id, new Set([host]), stored)) continue;
        // The host's own bindings (its inputs and result), the epilogues' reads (shared buffers
        // once) and every epilogue's output: within the limit even with the host kept.
        const reads = new Set([...(epilogueReads.get(host) ?? []), ...[...r.reads].filter((v) => v !== host)]);
        const already = buckets.get(keyOf.get(host)!)!.length - 1;
        if (graph.node(host).inputs.length + 1 + bindings(reads) + already + 1 <= opts.maxBindings) return host;
      }
      return undefined;
    }
  }

  // Rule 4: pack each bucket into kernels within the binding limit. In a reduction bucket the
  // reductions go first; a sibling or epilogue that does not fit (or whose reductions went to
  // another kernel) becomes an elementwise kernel of its own.
  const groups: KernelGroup[] = [];
  let overflow: number | null = null;
  const leftovers: number[] = [];
  const pack = (members: number[], isReduceBucket: boolean) => {
    let current: { roots: number[]; reads: Set<number>; inlined: Set<number> } | null = null;
    const flush = () => {
      if (current) {
        const roots = current.roots;
        const reads = [...current.reads].filter((v) => !roots.includes(v));
        const kind = kindOf(roots[0]!);
        const role = (r: "sibling" | "epilogue") => roots.filter((v) => roleOf.get(v) === r);
        const epilogues = role("epilogue");
        const extra = kind === "reduce" ? { siblings: role("sibling"), epilogues } : kind === "node" && epilogues.length > 0 ? { epilogues, host: roots[0]! } : {};
        groups.push({ kind, roots, reads: sorted(reads), inlined: sorted(current.inlined), ...extra });
      }
      current = null;
    };
    const ordered = isReduceBucket ? [...members.filter((m) => kindOf(m) === "reduce"), ...members.filter((m) => kindOf(m) !== "reduce")] : members;
    for (const id of ordered) {
      const r = readsOf.get(id)!;
      const follower = isReduceBucket && kindOf(id) !== "reduce";
      // (A primitive's own kernel that reads too many is kernelFor's error to report.)
      if (bindings(r.reads) + 1 > opts.maxBindings && kindOf(id) !== "node") overflow ??= widestInlined(graph, id, r.inlined, stored);
      if (current) {
        const cur: { roots: number[]; reads: Set<number>; inlined: Set<number> } = current;
        const reads = new Set([...cur.reads, ...r.reads]);
        const needs = [...r.reads].filter((v) => kindOf(v) === "reduce" && keyOf.get(v) === keyOf.get(id));
        const inKernel = needs.every((v) => cur.roots.includes(v));
        const count = bindings([...reads].filter((v) => !cur.roots.includes(v))) + cur.roots.length + 1;
        const hostKernel = kindOf(cur.roots[0]!) === "node"; // rule 5 sized it
        if (hostKernel || (count <= opts.maxBindings && (!follower || inKernel))) {
          cur.roots.push(id);
          cur.reads = reads;
          for (const v of r.inlined) cur.inlined.add(v);
          continue;
        }
        if (follower) {
          leftovers.push(id);
          continue;
        }
        flush();
      } else if (follower) {
        leftovers.push(id);
        continue;
      }
      current = { roots: [id], reads: new Set(r.reads), inlined: new Set(r.inlined) };
    }
    flush();
  };
  for (const key of order) pack(buckets.get(key)!, key.startsWith("r "));
  // Leftovers of one element count and depth still share kernels.
  const spare = new Map<string, number[]>();
  for (const id of leftovers) {
    const key = `${level.get(id)} ${numel(graph.shapeOf(id))}`;
    (spare.get(key) ?? spare.set(key, []).get(key)!).push(id);
  }
  for (const members of spare.values()) pack(members, false);
  if (overflow !== null) return { plan: { options: opts, stored, groups: [], missed }, overflow };
  // Rule 5: a host whose result only its epilogues read is not stored.
  const readElsewhere = new Set<number>();
  for (const g of groups) for (const r of g.reads) readElsewhere.add(r);
  for (const g of groups) {
    if (g.host === undefined || outSet.has(g.host) || readElsewhere.has(g.host)) continue;
    g.roots = g.roots.filter((r) => r !== g.host);
    stored.delete(g.host);
  }
  return { plan: { options: opts, stored, groups: schedule(groups), missed }, overflow: null };
}

const sorted = (s: Iterable<number>) => [...s].sort((a, b) => a - b);

/** Reductions that one kernel can compute together: the same input shape, and outputs few
 * enough for a workgroup each or not (see wgsl/layout.ts). */
export function reduceClass(graph: Graph, node: IRNode<"reduce">): string {
  const xs = graph.shapeOf(node.inputs[0]!);
  // Few outputs: a workgroup each can serve (fused.ts picks workgroups when some pattern has
  // large groups); many outputs: a loop per invocation.
  return `${fmtShape(xs)} ${numel(node.attrs.shape) <= TREE_MAX_OUTPUTS ? "few" : "many"}`;
}

/** Index-preserving primitives: element i of the result reads element i of each input. */
const SAME_INDEX = new Set<Prim>(["neg", "exp", "log", "sqrt", "relu", "sigmoid", "add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "reshape"]);

/** Does `id` read each of `targets` only at its own index (through index-preserving inlined
 * values)? */
function readsAtOwnIndex(graph: Graph, id: number, targets: ReadonlySet<number>, stored: ReadonlySet<number>): boolean {
  const memo = new Map<string, boolean>();
  const ok = (v: number, same: boolean): boolean => {
    if (targets.has(v)) return same;
    if (stored.has(v)) return true;
    const key = `${v} ${same}`;
    const hit = memo.get(key);
    if (hit !== undefined) return hit;
    const node = graph.node(v);
    const r = node.inputs.every((i) => ok(i, same && SAME_INDEX.has(node.prim)));
    memo.set(key, r);
    return r;
  };
  const node = graph.node(id);
  return node.inputs.every((i) => ok(i, SAME_INDEX.has(node.prim)));
}

/** The inlined input of a too-wide value that reads the most stored values: storing it narrows
 * the kernel the most. */
function widestInlined(graph: Graph, root: number, inlined: ReadonlySet<number>, stored: ReadonlySet<number>): number {
  let best = -1;
  let bestReads = -1;
  for (const v of inlined) {
    const reads = new Set<number>();
    const seen = new Set<number>();
    const stack = [...graph.node(v).inputs];
    while (stack.length) {
      const x = stack.pop()!;
      if (stored.has(x)) reads.add(x);
      else if (!seen.has(x)) {
        seen.add(x);
        stack.push(...graph.node(x).inputs);
      }
    }
    if (reads.size > bestReads) {
      best = v;
      bestReads = reads.size;
    }
  }
  if (best < 0) throw new FusionError(`%${root} ${graph.node(root).prim} reads more buffers than a kernel may bind, and has nothing inlined to store instead`);
  return best;
}
