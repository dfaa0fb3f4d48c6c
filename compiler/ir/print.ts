// Dumps of the IR for whoever debugs the compiler: readable text, one line per value, and a
// Graphviz dot graph. Parameters and inputs print by name (%skin.stem.conv.weight), the rest by
// id (%12); attributes that are shapes or axis maps print as lists.
import type { Graph } from "./graph.ts";
import type { IRNode } from "./primitives.ts";

export interface PrintOptions {
  /** Named values to mark at the end of the listing (loss, gradients, updates). */
  outputs?: ReadonlyMap<string, number>;
  /** Print the Program node each value was lowered from. */
  origins?: boolean;
}

/** The name a value is referred to by: %name for leaves with a name, else %id. */
export function valueName(g: Graph, id: number): string {
  const n = g.node(id);
  if (n.prim === "param" || n.prim === "input") return `%${(n.attrs as { name: string }).name}`;
  return `%${id}`;
}

function attrValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.join(",")}]`;
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : v > 0 ? "inf" : "-inf";
  return String(v);
}

/** Attributes as {k=v,...}; leaves' name and shape are already in the line, so they are left out. */
export function formatAttrs(n: IRNode): string {
  const entries = Object.entries(n.attrs as Record<string, unknown>).filter(([k]) => {
    if (n.prim === "param" || n.prim === "input") return false;
    return !(n.prim === "const" && k === "shape");
  });
  return entries.length === 0 ? "" : ` {${entries.map(([k, v]) => `${k}=${attrValue(v)}`).join(",")}}`;
}

export function formatNode(g: Graph, n: IRNode, options: PrintOptions = {}): string {
  const lhs = valueName(g, n.id);
  const args = n.inputs.map((i) => valueName(g, i)).join(", ");
  const origin = options.origins && n.origin !== undefined ? `  # node ${n.origin}` : "";
  const call = n.prim === "param" || n.prim === "input" ? n.prim : `${n.prim}(${args})${formatAttrs(n)}`;
  return `${lhs} = ${call} : [${n.shape.join(",")}]${origin}`;
}

/** The whole graph as text, one value per line, in topological (id) order. */
export function printGraph(g: Graph, options: PrintOptions = {}): string {
  const lines = g.nodes.map((n) => formatNode(g, n, options));
  if (options.outputs && options.outputs.size > 0) {
    lines.push("", ...[...options.outputs].map(([name, id]) => `output ${name} = ${valueName(g, id)}`));
  }
  return lines.join("\n") + "\n";
}

function dotEscape(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
}

/** A Graphviz digraph: leaves as boxes (parameters shaded), operations as ellipses labelled with
 * the primitive and shape, edges from inputs to users, outputs as double octagons. */
export function graphToDot(g: Graph, options: PrintOptions = {}): string {
  const out = ["digraph ir {", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];'];
  for (const n of g.nodes) {
    const shape = `[${n.shape.join(",")}]`;
    if (n.prim === "param" || n.prim === "input") {
      const fill = n.prim === "param" ? ', style=filled, fillcolor="#e8eef8"' : "";
      out.push(`  v${n.id} [shape=box${fill}, label="${dotEscape(valueName(g, n.id).slice(1))}\\n${shape}"];`);
    } else {
      out.push(`  v${n.id} [label="${dotEscape(`%${n.id} ${n.prim}${formatAttrs(n)}`)}\\n${shape}"];`);
    }
    for (const i of n.inputs) out.push(`  v${i} -> v${n.id};`);
  }
  for (const [name, id] of options.outputs ?? []) {
    out.push(`  "out_${dotEscape(name)}" [shape=doubleoctagon, label="${dotEscape(name)}"];`, `  v${id} -> "out_${dotEscape(name)}";`);
  }
  out.push("}");
  return out.join("\n") + "\n";
}
