// Epilogues of convolutions and matmul (fuse.ts, rule 5): elementwise values computed from each
// element of the host's result as the host's kernel stores it. Every variant of the host
// (register, blocked, tiled) writes its result only as `y[index] = value;` statements; each
// becomes a call `store_y(index, value)` of a function that computes the epilogues at that
// index from `value` (and whatever else they read, through bindings of their own after the
// host's) and writes them, and the host's result too when it is stored. A vec4 variant (y as
// array<vec4<f32>>) gets a vec4 store function: the epilogues are computed four at a time.
import type { Graph } from "../../ir/graph.ts";
import type { KernelGroup } from "../fuse.ts";
import { Bindings, ExprBuilder, type SharedPlacement, type Ty, describe, splat } from "./fused.ts";
import { type KernelSpec, kernelFor } from "./index.ts";
import { tuneIdentity } from "./kernel.ts";

const BINDING = /^@group\(0\) @binding\((\d+)\) var<storage, [^>]+> (\w+): array<(.+)>;$/;

/** The host's kernel with the group's epilogues fused into its stores. */
export function epilogueKernel(graph: Graph, g: KernelGroup, shared?: SharedPlacement): KernelSpec {
  const host = g.host!;
  const epilogues = g.epilogues!;
  const keep = g.roots.includes(host);
  const spec = kernelFor(graph, host);
  // What the epilogues read besides the host's result, and what they compute on the way.
  const reads = new Set<number>();
  const stored = new Set(g.reads);
  const seen = new Set<number>();
  const stack = epilogues.flatMap((e) => graph.node(e).inputs);
  while (stack.length) {
    const v = stack.pop()!;
    if (v === host || seen.has(v)) continue;
    seen.add(v);
    if (stored.has(v)) reads.add(v);
    else stack.push(...graph.node(v).inputs);
  }
  const readList = [...reads].sort((a, b) => a - b);
  // y holds the host's result when it is stored, else the first epilogue; the rest are extra.
  const extra = keep ? epilogues : epilogues.slice(1);
  const bindings = spec.bindings.map((b) => (b.access === "write" && !keep ? { ...b, value: epilogues[0]! } : b));
  let extraBindings: Bindings | undefined;
  const rewrite = (wgsl: string): string => {
    const lines = wgsl.split("\n");
    const decl = lines.map((l) => BINDING.exec(l)).filter((m) => m !== null);
    const y = decl.find((m) => m[2] === "y");
    if (!y) throw new Error(`internal error: ${spec.label} has no binding y`);
    const mode: Ty = y[3] === "vec4<f32>" ? "v" : "s";
    const b = new Bindings(graph, readList, extra, mode === "v", shared, () => true, "e_");
    extraBindings ??= b;
    const decls = new Set<string>();
    const builder = new ExprBuilder(graph, b, (v) => reads.has(v), decls, { n: 0 });
    builder.seed(host, "i", "v", mode);
    const value = (e: number) => {
      const v = builder.at(e, "i", mode);
      return mode === "v" ? splat(v).code : v.code;
    };
    const writes = [
      keep ? `y[i] = v;` : `y[i] = ${value(epilogues[0]!)};`,
      ...extra.map((e) => `${b.output(e).name}[i] = ${value(e)};`),
    ];
    const type = mode === "v" ? "vec4<f32>" : "f32";
    const store = [`fn store_y(i: u32, v: ${type}) {`, ...[...builder.lines, ...writes].map((l) => `  ${l}`), `}`].join("\n");
    const first = Math.max(...decl.map((m) => Number(m[1]))) + 1;
    const added = b.module().map((m, j) => `@group(0) @binding(${first + j}) var<storage, ${m.write ? "read_write" : "read"}> ${m.name}: array<${m.type}>;`);
    let last = lines.length - 1;
    while (last >= 0 && !BINDING.test(lines[last]!)) last--;
    const head = [...lines.slice(0, last + 1), ...added, ...(decls.size ? ["", ...decls] : []), "", store];
    return [describe(graph, `${graph.node(host).prim} + epilogue`, g.roots, g.inlined), ...head, ...rewriteStores(lines.slice(last + 1).join("\n"), spec.label).split("\n")].join("\n");
  };
  const wgsl = rewrite(spec.wgsl);
  const variants = spec.variants?.map((v) => ({ ...v, wgsl: rewrite(v.wgsl) }));
  const label = `${spec.label} + ${epilogues.map((e) => `%${e} ${graph.node(e).prim}`).join(" + ")}`;
  return {
    ...spec,
    label,
    wgsl,
    ...(spec.variants ? { tuneAs: tuneIdentity(spec) } : {}),
    bindings: [...bindings, ...extraBindings!.kernelBindings()],
    ...(variants ? { variants } : {}),
  };
}

/** `y[index] = value;` -> `store_y(u32(index), value);` (brackets and parentheses balanced);
 * any other use of y is an emitter this rule does not know. */
export function rewriteStores(text: string, label: string): string {
  let out = "";
  let at = 0;
  const use = /(?<![\w.])y\[/g;
  for (let m = use.exec(text); m !== null; m = use.exec(text)) {
    const open = m.index + 1;
    const close = matching(text, open, label);
    const rest = /^\s*=(?!=)\s*/.exec(text.slice(close + 1));
    if (!rest) throw new Error(`internal error: ${label}: y is used other than as y[index] = value;`);
    const start = close + 1 + rest[0].length;
    const end = statementEnd(text, start, label);
    out += `${text.slice(at, m.index)}store_y(u32(${text.slice(open + 1, close)}), ${text.slice(start, end).trim()});`;
    at = end + 1;
    use.lastIndex = at;
  }
  return out + text.slice(at);
}

/** Index of the bracket closing the one at `open`. */
function matching(text: string, open: number, label: string): number {
  let depth = 0;
  for (let k = open; k < text.length; k++) {
    const c = text[k];
    if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") {
      depth--;
      if (depth === 0) return k;
    }
  }
  throw new Error(`internal error: ${label}: unbalanced brackets in its WGSL`);
}

/** Index of the `;` that ends the statement starting at `from` (outside brackets). */
function statementEnd(text: string, from: number, label: string): number {
  let depth = 0;
  for (let k = from; k < text.length; k++) {
    const c = text[k];
    if (c === "[" || c === "(") depth++;
    else if (c === "]" || c === ")") depth--;
    else if (c === ";" && depth === 0) return k;
  }
  throw new Error(`internal error: ${label}: a store without its ;`);
}
