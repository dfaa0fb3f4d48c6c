// `drifac ir`, `drifac graph --dot` and `drifac gradcheck`: the differentiable IR of a model,
// as text or Graphviz, and the whole-model check of autodiff against finite differences.
import fs from "node:fs";
import type { Program } from "../check/program.ts";
import { differentiateModel } from "../ir/autodiff.ts";
import { gradcheck } from "../ir/gradcheck.ts";
import { type Lowered, lower } from "../ir/lower.ts";
import { graphToDot, printGraph } from "../ir/print.ts";
import type { Io } from "./main.ts";

export interface IrOptions {
  batch: number;
  grad?: boolean;
  infer?: boolean;
}

/** The named outputs of a lowered (and possibly differentiated) graph, for the dumps. */
function outputsOf(lowered: Lowered, grads?: Map<string, number>): Map<string, number> {
  const outputs = new Map<string, number>();
  if (lowered.loss >= 0) outputs.set("loss", lowered.loss);
  for (const t of lowered.tasks) outputs.set(`logits.${t.name}`, t.logits);
  for (const [name, id] of lowered.updates) outputs.set(`update.${name}`, id);
  for (const [name, id] of grads ?? []) outputs.set(`grad.${name}`, id);
  return outputs;
}

function build(program: Program, options: IrOptions): { lowered: Lowered; outputs: Map<string, number> } {
  const lowered = lower(program, { batch: options.batch, mode: options.infer ? "infer" : "train" });
  if (!options.grad) return { lowered, outputs: outputsOf(lowered) };
  const diff = differentiateModel(lowered);
  return { lowered: diff, outputs: outputsOf(diff, diff.grads) };
}

export function irCommand(program: Program, options: IrOptions, io: Io): number {
  const { lowered, outputs } = build(program, options);
  io.out(`# ${program.model} (${program.file}), batch ${options.batch}, ${lowered.mode} mode${options.grad ? ", with gradients" : ""}\n`);
  io.out(`${printGraph(lowered.graph, { outputs, origins: true })}\n`);
  return 0;
}

export function graphCommand(program: Program, options: IrOptions & { out?: string }, io: Io): number {
  const { lowered, outputs } = build(program, options);
  const dot = graphToDot(lowered.graph, { outputs });
  if (options.out) {
    fs.writeFileSync(options.out, dot);
    io.out(`wrote ${options.out} (${lowered.graph.nodes.length} values)\n`);
  } else io.out(dot);
  return 0;
}

export function gradcheckCommand(program: Program, options: { batch: number; seed: number; samples: number; tolerance: number; verbose?: boolean }, io: Io): number {
  const result = gradcheck(program, { batch: options.batch, seed: options.seed, samplesPerKind: options.samples });
  const kinds = new Map<string, number>();
  for (const r of result.rows) kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  io.out(`${program.model}: loss ${result.loss.toPrecision(6)}, ${result.rows.length} parameter elements checked (${[...kinds].map(([k, n]) => `${n} ${k}`).join(", ")})\n`);
  if (options.verbose) {
    for (const r of result.rows) {
      io.out(`  ${r.param}[${r.index}]  autodiff ${r.analytic.toExponential(6)}  finite differences ${r.numeric.toExponential(6)}  rel ${r.relError.toExponential(2)}\n`);
    }
  }
  io.out(`max relative error: ${result.maxRelError.toExponential(2)}\n`);
  if (!(result.maxRelError <= options.tolerance)) {
    io.err(`gradcheck failed: ${result.maxRelError.toExponential(2)} is above the tolerance ${options.tolerance}\n`);
    return 1;
  }
  return 0;
}
