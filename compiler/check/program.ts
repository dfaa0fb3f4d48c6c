// The checked program: what elaboration of a model produces and what lowering to the IR
// consumes. A flat dataflow graph of tensor operations with inferred shapes, the learnable
// parameters and buffers under their stable hierarchical names, the inputs, the tasks and the
// training defaults. Every node remembers the source span that created it.
import type { Span } from "../../grammar/ast.ts";
import type { Shape } from "./shape.ts";
import type { Size } from "./size.ts";
import type { InitSpec } from "../../runtime/init.ts";

/** How a parameter starts; the runtime's type, so compiled models initialise the same way. */
export type Init = InitSpec;

export interface ParamInfo {
  /** Stable hierarchical name, e.g. skin.stage2.block1.mfa2.hifa.l3.weight */
  name: string;
  shape: Size[];
  init: Init;
  /** Parameters are trained; buffers (batchnorm running statistics) are updated but not trained. */
  role: "param" | "buffer";
  /** The layer or declaration that owns it: conv, dense, batchnorm or param. */
  owner: string;
  span: Span;
  file: string;
}

export type OpName =
  | "input" | "param" | "const"
  | "conv2d" | "dense" | "batchnorm"
  | "relu" | "sigmoid" | "neg"
  | "add" | "sub" | "mul" | "div" | "maximum" | "minimum"
  | "gap" | "gmp" | "gminp"
  | "maxpool" | "avgpool" | "minpool"
  | "concat" | "flatten" | "select" | "dropout";

export interface Node {
  id: number;
  op: OpName;
  inputs: number[];
  attrs: Record<string, number | string | boolean | number[]>;
  shape: Shape;
  /** Name path of the block instance (or layer) that created the node. */
  scope: string;
  file: string;
  span: Span;
}

export interface Task {
  name: string;
  kind: "classify";
  logits: number;
  classes: string[];
  weight: number;
  /** The input whose data set supplies the labels. */
  data: string;
  span: Span;
}

export interface TrainConfig {
  optimizer: { kind: "adam" | "adamw" | "sgd"; lr: number; [option: string]: number | string | boolean };
  schedule: { kind: "constant" | "plateau" | "step" | "cosine"; [option: string]: number | string | boolean };
  batch: number;
  epochs: number;
  earlyStop: number | null;
  seed: number;
}

export interface BlockInstance {
  path: string;
  block: string;
  file: string;
  depth: number;
}

export interface Program {
  model: string;
  file: string;
  /** Compile-time parameters of the model after --set overrides. */
  settings: Record<string, number | string | boolean>;
  inputs: { name: string; node: number; shape: Shape }[];
  nodes: Node[];
  params: ParamInfo[];
  tasks: Task[];
  train: TrainConfig;
  blocks: BlockInstance[];
}

export function paramCount(p: ParamInfo): number {
  return p.shape.reduce((acc, s) => acc * (s.value ?? NaN), 1);
}
