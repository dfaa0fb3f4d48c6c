// The IR graph: values in SSA form, appended in topological order (an input always has a
// smaller id than its user). Emitting a value runs its shape rule, so an ill-formed graph fails
// where it is built, not where it is run.
import { type Emitter, type IRNode, type OpRule, type Prim, type PrimAttrs, fmtShape, irAssert } from "./primitives.ts";
import { registry } from "./registry.ts";

export function ruleOf<P extends Prim>(prim: P): OpRule<P> {
  return registry[prim] as unknown as OpRule<P>;
}

export class Graph implements Emitter {
  readonly nodes: IRNode[] = [];
  /** Leaves by name, so a parameter shared by several layers is one value. */
  readonly params = new Map<string, number>();
  readonly inputs = new Map<string, number>();
  /** Node id of the checked Program node being lowered (recorded as `origin`). */
  origin: number | undefined;

  emit<P extends Prim>(prim: P, inputs: number[], attrs: PrimAttrs[P]): number {
    const rule = ruleOf(prim);
    if (rule.arity !== "variadic") {
      irAssert(inputs.length === rule.arity, () => `${prim} takes ${rule.arity} inputs, got ${inputs.length}`);
    }
    for (const i of inputs) irAssert(Number.isInteger(i) && i >= 0 && i < this.nodes.length, () => `${prim}: no value %${i}`);
    let shape: number[];
    try {
      shape = rule.shape(inputs.map((i) => this.nodes[i]!.shape), attrs);
    } catch (e) {
      const ins = inputs.map((i) => `%${i}${fmtShape(this.nodes[i]!.shape)}`).join(", ");
      throw new Error(`${prim}(${ins}): ${(e as Error).message}`);
    }
    const node: IRNode<P> = { id: this.nodes.length, prim, inputs, attrs, shape };
    if (this.origin !== undefined) node.origin = this.origin;
    this.nodes.push(node as unknown as IRNode);
    return node.id;
  }

  shapeOf(id: number): number[] {
    return this.nodes[id]!.shape;
  }

  node(id: number): IRNode {
    return this.nodes[id]!;
  }

  param(name: string, shape: number[]): number {
    const have = this.params.get(name);
    if (have !== undefined) {
      irAssert(fmtShape(this.shapeOf(have)) === fmtShape(shape), () => `parameter ${name} used with two shapes`);
      return have;
    }
    const id = this.emit("param", [], { name, shape });
    this.params.set(name, id);
    return id;
  }

  input(name: string, shape: number[]): number {
    const have = this.inputs.get(name);
    if (have !== undefined) return have;
    const id = this.emit("input", [], { name, shape });
    this.inputs.set(name, id);
    return id;
  }
}
