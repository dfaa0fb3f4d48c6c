// What a built-in sees of the elaborator: a way to add graph nodes and parameters, to create
// named layers, and to combine tensors elementwise. Keeps the built-ins free of the evaluator.
import type { Span } from "../../../grammar/ast.ts";
import type { Init, OpName } from "../program.ts";
import type { Shape } from "../shape.ts";
import type { Size } from "../size.ts";
import type { LayerInstance, Located, TensorValue, Value } from "../values.ts";

export interface BuiltinContext {
  file: string;
  addNode(op: OpName, inputs: number[], attrs: Record<string, number | string | boolean | number[]>, shape: Shape, span: Span): TensorValue;
  /** A parameter (or buffer) named `<layer>.<suffix>`. */
  addParam(owner: LayerInstance, suffix: string, shape: Size[], labels: (string | null)[], init: Init, role: "param" | "buffer", span: Span): TensorValue;
  /** Claims a name for a new layer instance from the current naming base. */
  newLayer(layer: string, options: Map<string, Located>, span: Span): LayerInstance;
  /** Elementwise arithmetic with broadcasting by dimension name. */
  elementwise(op: "add" | "sub" | "mul" | "div" | "maximum" | "minimum", a: Located, b: Located, span: Span): Value;
  /** Calls any callable value (block, built-in or layer) with positional arguments. */
  callValue(callee: Located, args: Located[], span: Span): Value;
}

export interface ParamSpec {
  name: string;
  /** Absent: required. */
  default?: Value;
  /** Shown in docs and errors. */
  type: string;
}

export type Args = Map<string, Located>;

export interface Builtin {
  name: string;
  kind: "layer" | "op" | "list" | "meta" | "config" | "init";
  summary: string;
  params: ParamSpec[];
  /** Positional arguments are gathered into a list bound to params[0] (concat(a, b), zip(a, b)). */
  variadic?: boolean;
  call(ctx: BuiltinContext, args: Args, span: Span): Value;
  /** Layers only: applies a layer instance to an input. */
  apply?(ctx: BuiltinContext, layer: LayerInstance, x: Located, span: Span): Value;
}
