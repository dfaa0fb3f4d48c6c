// Reverse-mode automatic differentiation as an IR-to-IR transform: walks the graph backwards
// from the loss and appends, for every value on a path from a parameter to the loss, the
// values of its cotangent, using each primitive's VJP rule from the registry. The forward and
// backward graphs end up as one graph, so later passes fuse and plan them together.
import type { Lowered } from "./lower.ts";
import { add, constant } from "./emit.ts";
import { type Graph, ruleOf } from "./graph.ts";
import { IRError, type Prim, fmtShape, sameShape } from "./primitives.ts";

export interface Gradients {
  /** wrt value id -> id of its gradient value (same shape). */
  byValue: Map<number, number>;
}

/** Appends to `graph` the gradient of the scalar `loss` with respect to each of `wrt` and
 * returns their ids. A value in `wrt` that the loss does not depend on gets a zero constant. */
export function differentiate(graph: Graph, loss: number, wrt: number[]): Gradients {
  if (!sameShape(graph.shapeOf(loss), [])) throw new IRError(`the loss must be a scalar, found ${fmtShape(graph.shapeOf(loss))}`);
  const end = loss + 1;
  // Forward sweep: which values depend on something we differentiate with respect to.
  const wanted = new Set(wrt);
  const requires = new Uint8Array(end);
  for (let id = 0; id < end; id++) {
    const node = graph.node(id);
    requires[id] = wanted.has(id) || node.inputs.some((i) => requires[i] === 1) ? 1 : 0;
  }
  // Backward sweep: contributions to each cotangent are summed when the value is reached, which
  // is after all its users (ids decrease), so every cotangent is final when it is used.
  const contributions = new Map<number, number[]>([[loss, [constant(graph, 1, [])]]]);
  const byValue = new Map<number, number>();
  const saved = graph.origin;
  for (let id = loss; id >= 0; id--) {
    const parts = contributions.get(id);
    if (!parts || requires[id] === 0) continue;
    contributions.delete(id);
    const node = graph.node(id);
    graph.origin = node.origin;
    const g = parts.reduce((acc, p) => add(graph, acc, p));
    if (wanted.has(id)) byValue.set(id, g);
    const rule = ruleOf(node.prim as Prim);
    if (rule.vjp === null) continue;
    const needs = node.inputs.map((i) => requires[i] === 1);
    if (!needs.some(Boolean)) continue;
    const grads = rule.vjp(graph, node as never, g, needs);
    node.inputs.forEach((input, k) => {
      const gi = grads[k];
      if (!needs[k] || gi === null || gi === undefined) return;
      if (!sameShape(graph.shapeOf(gi), graph.shapeOf(input))) {
        throw new IRError(`VJP of ${node.prim} gave a ${fmtShape(graph.shapeOf(gi))} gradient for a ${fmtShape(graph.shapeOf(input))} input`);
      }
      const list = contributions.get(input);
      if (list) list.push(gi);
      else contributions.set(input, [gi]);
    });
  }
  graph.origin = saved;
  for (const id of wrt) if (!byValue.has(id)) byValue.set(id, constant(graph, 0, graph.shapeOf(id)));
  return { byValue };
}

export interface Differentiated extends Lowered {
  /** Trainable parameter name -> its gradient value. Buffers (role "buffer") get none. */
  grads: Map<string, number>;
}

/** Differentiates a lowered training graph with respect to every trainable parameter. */
export function differentiateModel(lowered: Lowered): Differentiated {
  if (lowered.loss < 0) throw new IRError(`${lowered.program.model} has no tasks, so no loss to differentiate`);
  const trainable = [...lowered.graph.params].filter(([name]) => lowered.params.get(name)?.role === "param");
  const { byValue } = differentiate(
    lowered.graph,
    lowered.loss,
    trainable.map(([, id]) => id),
  );
  const grads = new Map(trainable.map(([name, id]) => [name, byValue.get(id)!]));
  return { ...lowered, grads };
}
