// What `drifac compile --report` prints: each kernel of a plan with what fused into it, and
// each index-wise value that was stored instead of fused, with the reason (fuse.ts's rules).
import type { Graph } from "../ir/graph.ts";
import { fmtShape } from "../ir/primitives.ts";
import type { FusionPlan, KernelGroup } from "./fuse.ts";

const valueText = (graph: Graph, id: number) => `%${id} ${graph.node(id).prim}${fmtShape(graph.shapeOf(id))}`;

function primCounts(graph: Graph, ids: readonly number[]): string {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(graph.node(id).prim, (counts.get(graph.node(id).prim) ?? 0) + 1);
  return [...counts].map(([p, n]) => (n > 1 ? `${p} x${n}` : p)).join(", ");
}

function kernelLine(graph: Graph, g: KernelGroup, k: number): string {
  const kind = g.kind === "node" ? graph.node(g.roots[0]!).prim : g.roots.length > 1 || g.inlined.length > 0 ? `fused ${g.kind}` : g.kind;
  const writes = g.roots.map((r) => valueText(graph, r)).join(", ");
  const inlined = g.inlined.length ? `; computes inline: ${primCounts(graph, g.inlined)}` : "";
  return `  #${k} ${kind}: writes ${writes}; reads ${g.reads.length}${inlined}`;
}

export function renderFusionReport(title: string, graph: Graph, fusion: FusionPlan, unfusedKernels: number): string {
  const g = fusion.groups;
  const fusedKinds = (kind: string) => g.filter((x) => x.kind === kind && (x.roots.length > 1 || x.inlined.length > 0)).length;
  const lines = [
    `${title}: ${g.length} kernels (${unfusedKernels} without fusion); ${fusedKinds("elementwise")} fused elementwise, ${fusedKinds("reduce")} fused reductions, ${g.filter((x) => x.kind === "node").length} others`,
    ...g.map((x, k) => kernelLine(graph, x, k)),
    `  missed: ${fusion.missed.length} index-wise values stored instead of fused`,
    ...fusion.missed.map((m) => `  - ${valueText(graph, m.value)}: ${m.reason}`),
  ];
  return `${lines.join("\n")}\n`;
}
