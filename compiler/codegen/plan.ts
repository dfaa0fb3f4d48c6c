// Graph -> ExecPlan for the runtime's Executor: the values that the requested outputs depend
// on, one f32 buffer per value (no reuse yet: the memory planner will come), leaves filled by
// the host (feeds, or a constant fill), and every other value computed by its kernel, in the
// graph's topological (id) order.
import type { BufferSpec, ExecPlan, KernelLaunch } from "../../runtime/executor.ts";
import type { Graph } from "../ir/graph.ts";
import { fmtShape, numel } from "../ir/primitives.ts";
import { type KernelSpec, kernelFor } from "./wgsl/index.ts";

export interface GraphPlan extends ExecPlan {
  /** Value id -> buffer index. */
  bufferOf: Map<number, number>;
  /** The kernels, as emitted (with graph value ids in their bindings). */
  specs: KernelSpec[];
}

/** Plans the evaluation of `outputs` (value ids); run() of the Executor returns them in order. */
export function planGraph(graph: Graph, outputs: number[]): GraphPlan {
  const last = Math.max(-1, ...outputs);
  const live = new Uint8Array(last + 1);
  for (const o of outputs) live[o] = 1;
  for (let id = last; id >= 0; id--) if (live[id]) for (const i of graph.node(id).inputs) live[i] = 1;
  const buffers: BufferSpec[] = [];
  const bufferOf = new Map<number, number>();
  const specs: KernelSpec[] = [];
  for (let id = 0; id <= last; id++) {
    if (!live[id]) continue;
    const node = graph.node(id);
    const label = `%${id} ${node.prim} ${fmtShape(node.shape)}`;
    let init: BufferSpec["init"];
    if (node.prim === "input" || node.prim === "param") init = { kind: node.prim, name: (node.attrs as { name: string }).name };
    else if (node.prim === "const") init = { kind: "fill", value: (node.attrs as { value: number }).value };
    else {
      init = { kind: "none" };
      specs.push(kernelFor(graph, id));
    }
    bufferOf.set(id, buffers.length);
    buffers.push({ label, floats: numel(node.shape), init });
  }
  const kernels = specs.map((k) => launchOf(k, bufferOf));
  return { buffers, kernels, outputs: outputs.map((o) => bufferOf.get(o)!), bufferOf, specs };
}

/** A kernel as the runtime launches it: the spec's graph values replaced by buffer indices. The
 * one place a KernelSpec becomes a KernelLaunch, so every plan carries the same fields. */
export function launchOf(k: KernelSpec, bufferOf: ReadonlyMap<number, number>): KernelLaunch {
  return {
    label: k.label,
    wgsl: k.wgsl,
    entryPoint: k.entryPoint,
    buffers: k.bindings.map((b) => bufferOf.get(b.value)!),
    access: k.bindings.map((b) => b.access),
    workgroupSize: k.workgroupSize,
    dispatch: k.dispatch,
    ...(k.variants ? { variants: k.variants } : {}),
  };
}
