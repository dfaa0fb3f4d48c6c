// `drifac params`: where a model's parameters are, per block instance and per block type.
import type { Program } from "../check/program.ts";
import { paramCount } from "../check/program.ts";
import { formatCount, table } from "./report.ts";

export interface ParamRow {
  name: string;
  block: string;
  params: number;
}

/** Groups trainable parameters by their outermost named block instance; parameters of layers
 * written directly in the model form rows of their own (the layer's name). */
export function parameterRows(program: Program): ParamRow[] {
  const instances = program.blocks.filter((b) => b.path !== "");
  const outermost = instances.filter((b) => !instances.some((o) => o !== b && o.path !== b.path && b.path.startsWith(`${o.path}.`)));
  const rows = new Map<string, ParamRow>();
  for (const p of program.params) {
    if (p.role !== "param") continue;
    const owner = outermost.find((b) => p.name.startsWith(`${b.path}.`));
    const key = owner ? owner.path : p.name.slice(0, p.name.lastIndexOf(".")) || p.name;
    const row = rows.get(key) ?? { name: key, block: owner ? owner.block : p.owner, params: 0 };
    row.params += paramCount(p);
    rows.set(key, row);
  }
  return [...rows.values()];
}

export function totalParameters(program: Program): number {
  return program.params.filter((p) => p.role === "param").reduce((n, p) => n + paramCount(p), 0);
}

export function renderParams(program: Program): string {
  const rows = parameterRows(program);
  const total = totalParameters(program);
  const buffers = program.params.filter((p) => p.role === "buffer").reduce((n, p) => n + paramCount(p), 0);
  const byBlock = new Map<string, { count: number; params: number }>();
  for (const r of rows) {
    const e = byBlock.get(r.block) ?? { count: 0, params: 0 };
    e.count++;
    e.params += r.params;
    byBlock.set(r.block, e);
  }
  const pct = (n: number) => `${((100 * n) / Math.max(1, total)).toFixed(1)}%`;
  const settings = Object.entries(program.settings).map(([k, v]) => `${k}=${v}`).join(", ");
  const out = [
    `model ${program.model} (${program.file})${settings ? `, ${settings}` : ""}`,
    "",
    table([["instance", "block", "parameters", "share"], ...rows.map((r) => [r.name, r.block, formatCount(r.params), pct(r.params)])], [2, 3]),
    "",
    table([["block", "instances", "parameters", "share"], ...[...byBlock].map(([b, e]) => [b, String(e.count), formatCount(e.params), pct(e.params)])], [1, 2, 3]),
    "",
    `parameter tensors: ${program.params.filter((p) => p.role === "param").length}`,
    `buffers (batchnorm running statistics, not trained): ${formatCount(buffers)}`,
    `total parameters: ${formatCount(total)}`,
  ];
  return out.join("\n");
}
