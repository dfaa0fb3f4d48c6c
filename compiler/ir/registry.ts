// The op registry: one table, typed over the primitive enum, with every primitive's shape rule,
// float64 reference implementation and vector-Jacobian rule (written by emitting IR). The rules
// live in rules/ by family; the type `Registry` ({ [P in Prim]: OpRule<P> }) makes a primitive
// without a rule, or a rule for a primitive that does not exist, a compile error here.
import type { Prim, Registry } from "./primitives.ts";
import { routineRules } from "./rules/conv.ts";
import { binaryRules, leafRules, unaryRules } from "./rules/elementwise.ts";
import { layoutRules } from "./rules/layout.ts";

export const registry: Registry = {
  ...leafRules,
  ...unaryRules,
  ...binaryRules,
  ...layoutRules,
  ...routineRules,
};

export const prims = Object.keys(registry) as Prim[];
