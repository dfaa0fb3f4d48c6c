// The WGSL emitter table, typed over the primitive enum like the op registry: a primitive
// without an emitter is a type error here. kernelFor turns one graph node into a KernelSpec
// (WGSL specialised to the node's shapes and attributes, its bindings and its dispatch).
import type { Graph } from "../../ir/graph.ts";
import type { IRNode, Prim } from "../../ir/primitives.ts";
import { blockedVariant, kernelSize } from "./conv-blocked.ts";
import { pointwiseVariant } from "./conv-pointwise.ts";
import { convEmitters } from "./conv.ts";
import { elementwiseEmitters } from "./elementwise.ts";
import { type EmitterTable, type KernelContext, type KernelEmitter, type KernelSpec, type LeafPrim, assemble, tuneIdentity } from "./kernel.ts";
import { layoutEmitters } from "./layout.ts";
import { routineEmitters } from "./routines.ts";
import { tiledVariant } from "./tiled.ts";

export type { KernelBinding, KernelSpec, KernelVariant } from "./kernel.ts";
export { DEFAULT_VARIANT } from "./kernel.ts";

export const emitters: EmitterTable = {
  input: null,
  param: null,
  const: null,
  ...elementwiseEmitters,
  ...layoutEmitters,
  ...convEmitters,
  ...routineEmitters,
};

/** The WebGPU default; kernels stay within it so they run on any adapter. */
export const MAX_STORAGE_BINDINGS = 8;

export class CodegenError extends Error {}

/** Leaves (inputs, parameters, constants) are buffers the host fills: they have no kernel. */
export function needsKernel(node: IRNode): boolean {
  return emitters[node.prim] !== null;
}

export function isLeaf(prim: Prim): prim is LeafPrim {
  return emitters[prim] === null;
}

/** The compute kernel that computes value `nodeId` of `graph`. */
export function kernelFor(graph: Graph, nodeId: number): KernelSpec {
  const node = graph.node(nodeId);
  const emit = emitters[node.prim] as KernelEmitter<Prim> | null;
  if (emit === null) throw new CodegenError(`%${nodeId} is a ${node.prim}: leaves are filled by the host and have no kernel`);
  if (node.inputs.length + 1 > MAX_STORAGE_BINDINGS) {
    throw new CodegenError(`%${nodeId} ${node.prim} reads ${node.inputs.length} values: a kernel binds at most ${MAX_STORAGE_BINDINGS} storage buffers (split the ${node.prim})`);
  }
  const ctx: KernelContext<Prim> = { node, attrs: node.attrs, inShapes: node.inputs.map((i) => graph.shapeOf(i)), outShape: node.shape };
  const spec = assemble(ctx, emit(ctx));
  // matmul and convolutions also come shared-memory tiled, large convolutions register-blocked
  // (conv-blocked.ts), 1x1 ones as per-pixel products (conv-pointwise.ts): the runtime measures
  // which is fastest.
  const variants = [blockedVariant(ctx), pointwiseVariant(ctx), tiledVariant(ctx)].filter((v) => v !== undefined);
  if (variants.length === 0) return spec;
  const tuned = { ...spec, variants };
  const quick = node.prim.startsWith("conv2d") && kernelSize(ctx) === 1;
  return { ...tuned, tuneAs: tuneIdentity(tuned), ...(quick ? { quickToCompile: true } : {}) };
}
