// `drifac verify`: one training step on the GPU against the float64 interpreter (the check
// itself is compiler/codegen/verify-step.ts, which documents the error measures). Exit 0 when
// the whole step is within the tolerance end to end (the loss; all gradients, all updated
// parameters and all running statistics, each kind as one vector) and the code check holds
// (every kernel on its own inputs, the optimiser on the GPU's gradients, the copies, within a
// tenth of the tolerance); with --strict, when every tensor on its own is within the tolerance
// too. Exit 1 otherwise, or when there is no WebGPU adapter.
import type { Program } from "../check/program.ts";
import { type Row, type VerifyResult, ZERO, verifyStep } from "../codegen/verify-step.ts";
import { tryAcquireDevice } from "../../runtime/device.ts";
import type { Io } from "./main.ts";

export interface VerifyOptions {
  batch: number;
  seed: number;
  tolerance: number;
  strict?: boolean;
  verbose?: boolean;
}

const e = (x: number) => (Number.isFinite(x) ? x.toExponential(1) : x === Infinity ? "inf" : "nan");
const s = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;

function table(rows: Row[], tol: number, withStorage: boolean): string {
  return rows
    .filter((r) => r.tensors > 0)
    .map((r) => {
      const mark = r.error <= tol ? "  " : " !";
      const storage = withStorage ? `  ${e(r.storage).padStart(8)}` : "";
      return `  ${r.what.padEnd(34)} ${String(r.tensors).padStart(5)}  ${e(r.error).padStart(8)}${mark}${storage}  ${r.worst}\n`;
    })
    .join("");
}

export function renderVerify(r: VerifyResult, file: string, options: VerifyOptions, adapter: string): string {
  const p = r.summary;
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  let out = `${r.model} (${file}): one training step, batch ${options.batch}, seed ${options.seed}, ${r.optimizer}, on ${adapter}\n`;
  out += `  plan: ${plural(p.dispatches, "dispatch", "dispatches")}, ${plural(p.passes, "pass", "passes")}, ${plural(p.copies, "copy", "copies")}, ${p.submits} submit per step; ${p.pipelines} pipelines; ${(p.bytes / 1e6).toFixed(1)} MB of buffers\n`;
  out += `  time: plan ${s(r.ms.plan)}, pipelines ${s(r.ms.pipelines)}, first step ${s(r.ms.firstStep)} (shader JIT included), next step ${s(r.ms.nextStep)}; float64 interpreter ${s(r.ms.interpreter)}\n`;
  out += `end to end, the whole step against the float64 interpreter: ‖gpu − ref‖ / ‖ref‖ over all tensors of a kind as one vector\n`;
  out += `  ${"".padEnd(34)} ${"count".padStart(5)}  ${"error".padStart(8)}    ${"f32 store".padStart(8)}\n`;
  out += table(r.whole, r.tolerance, true);
  out += `end to end, per tensor: ‖gpu − ref‖ / ‖ref‖ (/ largest ‖ref‖ of its kind where ‖ref‖ is 0 in exact arithmetic)\n`;
  out += `  ${"".padEnd(34)} ${"count".padStart(5)}  ${"error".padStart(8)}    ${"f32 store".padStart(8)}  worst\n`;
  out += table(r.endToEnd, r.tolerance, true);
  if (r.vanishing.length > 0) {
    out += `  (${r.vanishing.length} gradients are 0 in exact arithmetic (reference under ${ZERO} of the largest: rounding noise), e.g. ${r.vanishing[0]},\n`;
    out += `   a bias right before a batchnorm; Adam turns such noise into steps of ±lr in any precision, so their updated values are\n`;
    out += `   left out of the end-to-end parameters and checked by the optimiser row below)\n`;
  }
  out += `  ("f32 store": the same errors for float64 arithmetic on values rounded to f32 once each: what conditioning alone costs)\n`;
  out += `the GPU code on its own values (tolerance ${e(r.tolerance / 10)}):\n`;
  out += table(r.code, r.tolerance / 10, false);
  for (const n of r.notes) out += `note: ${n}\n`;
  const worstEnd = r.endToEnd.reduce((a, b) => (b.error > a.error ? b : a));
  const worstWhole = r.whole.reduce((a, b) => (b.error > a.error ? b : a));
  const failed = (rows: Row[], tol: number) => rows.filter((x) => !(x.error <= tol)).map((x) => `${x.what} ${e(x.error)}${x.worst ? ` (${x.worst})` : ""}`);
  if (r.verdict === "end-to-end") out += `verify: ok: the whole step and every tensor on its own are within ${e(r.tolerance)} of float64; the code check holds\n`;
  else if (r.verdict === "step" && !options.strict) {
    out += `verify: ok: the whole step is within ${e(r.tolerance)} of float64 (worst: ${worstWhole.what} ${e(worstWhole.error)}) and the code check holds;\n`;
    out += `  per tensor, ${worstEnd.what} reach ${e(worstEnd.error)} (${worstEnd.worst}), where f32 storage alone gives ${e(worstEnd.storage)}: those tensors' conditioning,\n`;
    out += `  not the generated code (--strict requires every tensor within the tolerance)\n`;
  } else out += `verify: FAILED: ${[...failed(r.whole, r.tolerance), ...failed(r.code, r.tolerance / 10), ...(options.strict ? failed(r.endToEnd, r.tolerance) : [])].join("; ")}\n`;
  return out;
}

/** `acquire` is for tests (a machine without an adapter). */
export async function verifyCommand(program: Program, file: string, options: VerifyOptions, io: Io, acquire = tryAcquireDevice): Promise<number> {
  const acquired = await acquire();
  if (!acquired.gpu) {
    io.err(`verify: no WebGPU adapter, so nothing to verify on.\n${acquired.reason}\n`);
    return 1;
  }
  const gpu = acquired.gpu;
  try {
    const r = await verifyStep(gpu, program, options);
    io.out(renderVerify(r, file, options, gpu.adapterName));
    return r.verdict === "end-to-end" || (r.verdict === "step" && !options.strict) ? 0 : 1;
  } finally {
    gpu.destroy();
  }
}
