// `tsx bench/profile.ts [--unfused] [--no-remat] [--top N]`: where the bench's training step
// (DRIFA-Net, width 16, 64x64, batch 8) spends its time. Every kernel is timed on its own
// (StateExecutor.profileKernels: 8 dispatches in one pass, best of 2 submits) after three
// steps, and the times are summed by kind (the convolution or matmul a kernel computes, else
// reduction or elementwise), by the variant the autotuner chose, and by whether it runs a
// single workgroup (one core of lavapipe's). The sum is close to a step's time but not equal to
// it: a step's dispatches overlap nothing, but they also do not pay a submit each.
import type { TrainPlan } from "../compiler/codegen/train-plan.ts";
import { DEFAULT_VARIANT } from "../compiler/codegen/wgsl/kernel.ts";
import { initState } from "../compiler/ir/interpret.ts";
import { acquireDevice } from "../runtime/device.ts";
import { GpuTrainer } from "../runtime/trainer-exec.ts";
import { benchBatch, benchPlan, benchProgram } from "./ours.ts";

export interface KernelTime {
  label: string;
  /** conv2d, conv2d_input_grad, conv2d_weight_grad, matmul, reduce or elementwise, with the
   * variant run and "(1 wg)" for a single workgroup. */
  kind: string;
  ms: number;
}

/** What kind of work a kernel of `plan` is, from its label (the IR values it computes). */
export function kernelKind(plan: Pick<TrainPlan, "kernels">, k: number, variant: string): string {
  const launch = plan.kernels[k]!;
  const ops = [...launch.label.matchAll(/%\d+ ([a-z0-9_]+)/g)].map((m) => m[1]!);
  const main = ops.find((o) => /conv|matmul/.test(o)) ?? (ops.includes("reduce") ? "reduce" : launch.label.startsWith("optimiser") ? "optimiser" : "elementwise");
  const grid = variant === DEFAULT_VARIANT ? launch.dispatch : (launch.variants?.find((v) => v.name === variant)?.dispatch ?? launch.dispatch);
  return `${main}${variant === DEFAULT_VARIANT ? "" : ` [${variant}]`}${grid[0] * grid[1] * grid[2] === 1 ? " (1 wg)" : ""}`;
}

/** Kernel times summed by kind, largest first. */
export function byKind(rows: readonly KernelTime[]): { kind: string; kernels: number; ms: number }[] {
  const sums = new Map<string, { kind: string; kernels: number; ms: number }>();
  for (const r of rows) {
    const s = sums.get(r.kind) ?? { kind: r.kind, kernels: 0, ms: 0 };
    s.kernels++;
    s.ms += r.ms;
    sums.set(r.kind, s);
  }
  return [...sums.values()].sort((a, b) => b.ms - a.ms);
}

/** Times every kernel of `plan` on its trainer (run a step first: the first dispatch of each
 * kernel compiles it on lavapipe). */
export async function profilePlan(trainer: GpuTrainer, plan: TrainPlan): Promise<KernelTime[]> {
  const ms = await trainer.exec.profileKernels();
  const variants = trainer.exec.variants;
  return ms.map((t, k) => ({ label: plan.kernels[k]!.label, kind: kernelKind(plan, k, variants[k]!), ms: t }));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const fuse = !argv.includes("--unfused");
  const top = Number(argv[argv.indexOf("--top") + 1] ?? 0) || 20;
  const program = benchProgram();
  const plan = benchPlan(program, { fuse, ...(argv.includes("--no-remat") ? { remat: false } : {}) });
  const gpu = await acquireDevice();
  const trainer = await GpuTrainer.create(gpu, plan, { state: initState(program, 1).params, seed: 1 });
  const batch = benchBatch(program);
  for (let s = 0; s < 3; s++) await trainer.trainStep(batch, { readLoss: true });
  const rows = await profilePlan(trainer, plan);
  const total = rows.reduce((n, r) => n + r.ms, 0);
  const out = [`${fuse ? "fused" : "unfused"}${argv.includes("--no-remat") ? ", no recomputation" : ""}: ${rows.length} kernels timed one by one sum to ${total.toFixed(1)} ms (the last step took ${trainer.exec.lastRunMs.toFixed(1)} ms); ${(plan.summary.bytes / 2 ** 20).toFixed(1)} MiB planned`];
  for (const s of byKind(rows)) out.push(`${s.ms.toFixed(1).padStart(9)} ms ${String(s.kernels).padStart(6)}  ${s.kind}`);
  out.push(`the ${top} slowest kernels:`);
  for (const r of [...rows].sort((a, b) => b.ms - a.ms).slice(0, top)) out.push(`${r.ms.toFixed(2).padStart(9)} ms  ${r.label.slice(0, 110)}`);
  process.stdout.write(`${out.join("\n")}\n`);
  trainer.destroy();
  gpu.destroy();
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
