// What `drifac compile --report` prints: each kernel of a plan with what fused into it (and the
// twin it shares a dispatch with: pairing.ts), and each index-wise value that was stored instead
// of fused, with the reason (fuse.ts's rules).
import type { Graph } from "../ir/graph.ts";
import { fmtShape } from "../ir/primitives.ts";
import type { FusionPlan, KernelGroup } from "./fuse.ts";

const valueText = (graph: Graph, id: number) => `%${id} ${graph.node(id).prim}${fmtShape(graph.shapeOf(id))}`;

function primCounts(graph: Graph, ids: readonly number[]): string {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(graph.node(id).prim, (counts.get(graph.node(id).prim) ?? 0) + 1);
  return [...counts].map(([p, n]) => (n > 1 ? `${p} x${n}` : p)).join(", ");
}

function kernelLine(graph: Graph, g: KernelGroup, k: number, twin: number | undefined): string {
  const kind =
    g.host !== undefined
      ? `${graph.node(g.host).prim} + epilogue${g.roots.includes(g.host) ? "" : ` (its result ${valueText(graph, g.host)} not stored)`}`
      : g.kind === "node"
        ? graph.node(g.roots[0]!).prim
        : g.roots.length > 1 || g.inlined.length > 0
          ? `fused ${g.kind}`
          : g.kind;
  const writes = g.roots.map((r) => valueText(graph, r)).join(", ");
  const inlined = g.inlined.length ? `; computes inline: ${primCounts(graph, g.inlined)}` : "";
  const paired = twin === undefined ? "" : `; one dispatch with #${twin}`;
  return `  #${k} ${kind}: writes ${writes}; reads ${g.reads.length}${inlined}${paired}`;
}

/** How many forward values backward recomputes (remat.ts), by primitive, and how many it
 * could have recomputed but keeps because they are small. */
function recomputedLine(graph: Graph, fusion: FusionPlan): string[] {
  const lines: string[] = [];
  const r = fusion.recomputed;
  if (r && r.size > 0) {
    const by = new Map<string, number>();
    for (const id of r.keys()) by.set(graph.node(id).prim, (by.get(graph.node(id).prim) ?? 0) + 1);
    const parts = [...by].sort((a, b) => b[1] - a[1]).map(([p, n]) => `${p} x${n}`);
    lines.push(`  recomputed in backward instead of kept from forward: ${r.size} values (${parts.join(", ")}) in ${new Set(r.values()).size} places`);
  }
  const k = fusion.keptSmall;
  if (k && k.values > 0) lines.push(`  kept from forward though recomputable: ${k.values} values under ${k.minFloats.toLocaleString("en-US")} elements (recomputing one costs about a dispatch and frees little)`);
  return lines;
}

export function renderFusionReport(title: string, graph: Graph, fusion: FusionPlan, unfusedKernels: number): string {
  const g = fusion.groups;
  const fusedKinds = (kind: string) => g.filter((x) => x.kind === kind && (x.roots.length > 1 || x.inlined.length > 0)).length;
  const twin = new Map<number, number>();
  for (const d of fusion.dispatches ?? []) if (d.length === 2) [twin.set(d[0]!, d[1]!), twin.set(d[1]!, d[0]!)];
  const dispatches = fusion.dispatches?.length ?? g.length;
  const hosts = g.filter((x) => x.host !== undefined).length;
  const lines = [
    `${title}: ${g.length} kernels (${unfusedKernels} without fusion); ${fusedKinds("elementwise")} fused elementwise, ${fusedKinds("reduce")} fused reductions, ${hosts} convolutions or matmuls with epilogues, ${g.filter((x) => x.kind === "node" && x.host === undefined).length} others; ${dispatches} dispatches (${twin.size / 2} pairs of twin kernels)`,
    ...recomputedLine(graph, fusion),
    ...g.map((x, k) => kernelLine(graph, x, k, twin.get(k))),
    `  missed: ${fusion.missed.length} index-wise values stored instead of fused`,
    ...fusion.missed.map((m) => `  - ${valueText(graph, m.value)}: ${m.reason}`),
  ];
  return `${lines.join("\n")}\n`;
}
