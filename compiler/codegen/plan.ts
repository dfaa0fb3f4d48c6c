// Graph -> ExecPlan for the runtime's Executor: the values that the requested outputs depend
// on, one f32 buffer per stored value (no reuse: every value stays readable, for checks),
// leaves filled by the host (feeds, or a constant fill), and the kernels of the fusion plan.
import type { BufferSpec, ExecPlan, KernelLaunch } from "../../runtime/executor.ts";
import type { Graph } from "../ir/graph.ts";
import { fmtShape, numel } from "../ir/primitives.ts";
import { type FusionPlan, type KernelGroup, planFusion } from "./fuse.ts";
import { Buffers, flatLayout, placeValues } from "./state-plan.ts";
import { epilogueKernel } from "./wgsl/epilogue.ts";
import { type SharedPlacement, fusedElementwiseKernel, fusedReduceKernel } from "./wgsl/fused.ts";
import { type KernelSpec, kernelFor } from "./wgsl/index.ts";

export interface GraphPlan extends ExecPlan {
  /** Value id -> buffer index. */
  bufferOf: Map<number, number>;
  /** The kernels, as emitted (with graph value ids in their bindings). */
  specs: KernelSpec[];
  fusion: FusionPlan;
}

/** Plans the evaluation of `outputs` (value ids); run() of the Executor returns them in order.
 * Unfused by default (one kernel per value, every value readable: what kernel tests want);
 * with `fuse`, the fusion pass decides (fuse.ts) and only stored values have buffers, and twin
 * kernels are paired into one dispatch (pairing.ts) unless `pair` is false. */
export function planGraph(graph: Graph, outputs: number[], options: { fuse?: boolean; pair?: boolean } = {}): GraphPlan {
  if (options.fuse) {
    // Parameters in one arena, as a model's state is (kernels bind it once).
    const b = new Buffers();
    const params = [...graph.params].map(([name, id]) => ({ name, floats: numel(graph.shapeOf(id)) }));
    const arena = b.arena("parameters", flatLayout(params), (name) => ({ kind: "param", name }));
    const placed = placeValues(graph, outputs, b, arena.views, new Map(), { pair: options.pair });
    return { buffers: b.specs, kernels: placed.kernels, outputs: outputs.map((o) => placed.bufferOf.get(o)!), bufferOf: placed.bufferOf, specs: placed.specs, fusion: placed.fusion };
  }
  const fusion = planFusion(graph, outputs, { enabled: false });
  const buffers: BufferSpec[] = [];
  const bufferOf = new Map<number, number>();
  for (const id of [...fusion.stored].sort((a, b) => a - b)) {
    const node = graph.node(id);
    let init: BufferSpec["init"] = { kind: "none" };
    if (node.prim === "input" || node.prim === "param") init = { kind: node.prim, name: (node.attrs as { name: string }).name };
    else if (node.prim === "const") init = { kind: "fill", value: (node.attrs as { value: number }).value };
    bufferOf.set(id, buffers.length);
    buffers.push({ label: `%${id} ${node.prim} ${fmtShape(node.shape)}`, floats: numel(node.shape), init });
  }
  const specs = fusion.groups.map((g) => kernelOfGroup(graph, g));
  const kernels = specs.map((k) => launchOf(k, bufferOf));
  return { buffers, kernels, outputs: outputs.map((o) => bufferOf.get(o)!), bufferOf, specs, fusion };
}

/** The kernel of a group of the fusion plan: an emitter's own kernel for a value computed
 * alone from memory, else a fused kernel. */
export function kernelOfGroup(graph: Graph, g: KernelGroup, shared?: SharedPlacement): KernelSpec {
  if (g.kind === "node" && g.epilogues?.length) return epilogueKernel(graph, g, shared);
  if (g.kind === "node" || (g.roots.length === 1 && g.inlined.length === 0)) return kernelFor(graph, g.roots[0]!);
  return g.kind === "reduce" ? fusedReduceKernel(graph, g, shared) : fusedElementwiseKernel(graph, g, shared);
}

/** A kernel as the runtime launches it: the spec's graph values replaced by buffer indices. The
 * one place a KernelSpec becomes a KernelLaunch, so every plan carries the same fields. */
export function launchOf(k: KernelSpec, bufferOf: ReadonlyMap<number, number>, rangeOf?: (buffer: number, range: { offset: number; floats: number }) => number): KernelLaunch {
  const buffer = (b: KernelSpec["bindings"][number]) => {
    const own = bufferOf.get(b.value)!;
    if (!b.range) return own;
    if (!rangeOf) throw new Error(`${k.label}: a ranged binding needs the plan's buffers`);
    return rangeOf(own, b.range);
  };
  return {
    label: k.label,
    wgsl: k.wgsl,
    entryPoint: k.entryPoint,
    buffers: k.bindings.map(buffer),
    access: k.bindings.map((b) => b.access),
    workgroupSize: k.workgroupSize,
    dispatch: k.dispatch,
    ...(k.variants ? { variants: k.variants } : {}),
    ...(k.tuneAs ? { tuneAs: k.tuneAs } : {}),
  };
}
