// Liveness over the graph: which values the requested outputs depend on.
import type { Graph } from "../ir/graph.ts";

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
