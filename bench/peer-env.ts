// Shared by the peers' child processes (bench/tfjs.ts, bench/jax.ts): WebGPU in Node for
// libraries written for browsers (performance.md: `navigator.gpu` and the webgpu package's
// globals set BEFORE the library is imported), argument parsing, the result line and the
// median. Each peer runs in its own process (it owns its device); results go to stdout as one
// JSON line, progress to stderr.
import { create, globals } from "webgpu";
import { quietWaitFromEnv } from "../runtime/device.ts";
import { installQuietWait } from "../runtime/quiet-wait.ts";

export function installNavigatorGpu(): GPU {
  Object.assign(globalThis, globals);
  const gpu = create([]) as GPU;
  Object.defineProperty(globalThis, "navigator", { value: { gpu, userAgent: "node", hardwareConcurrency: 2 }, configurable: true, writable: true });
  return gpu;
}

/** The adapter's name, and Dawn's busy poll quieted exactly when our runtime quiets it
 * (runtime/quiet-wait.ts: software adapters, or DRIFA_QUIET_WAIT=on|off), so that the peers
 * and ours wait for the GPU the same way and the comparison is of the libraries. */
export async function preparePeerAdapter(gpu: GPU): Promise<{ name: string; quietWait: boolean }> {
  const a = await gpu.requestAdapter();
  if (!a) return { name: "none", quietWait: false };
  const i = a.info;
  const quietWait = quietWaitFromEnv() ?? i.isFallbackAdapter === true;
  if (quietWait) installQuietWait();
  return { name: [i.vendor, i.architecture, i.description].filter(Boolean).join(" "), quietWait };
}

/** The note a peer's result carries about how it waited. */
export const waitNote = (quietWait: boolean): string => (quietWait ? "waits without Dawn's busy poll, as ours does on software adapters" : "waits with Dawn's busy poll");

export interface PeerArgs {
  steps: number;
  warmup: number;
}

export function peerArgs(argv = process.argv.slice(2)): PeerArgs {
  const get = (flag: string, d: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : d;
  };
  return { steps: get("--steps", 10), warmup: get("--warmup", 2) };
}

export interface PeerResult {
  peer: string;
  version: string;
  adapter: string;
  params: number;
  tensors: number;
  /** First step (kernel compilation and pipeline creation included), ms. */
  firstStepMs: number;
  /** Median of the timed steps, ms. */
  stepMs: number;
  stepsMs: number[];
  /** Loss of every step run, warm-up included. */
  losses: number[];
  /** Dispatches per step, when the library lets us count them. */
  dispatchesPerStep?: number;
  notes: string[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

/** The correctness guard: every loss finite (a WGSL validation error in a peer gives NaN). */
export function checkLosses(peer: string, losses: number[]): void {
  const bad = losses.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0) throw new Error(`${peer}: loss of step ${bad + 1} is ${losses[bad]} (a dropped kernel?): ${losses.join(", ")}`);
}

export function emit(result: PeerResult): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** Counts dispatchWorkgroups calls on every compute pass the library encodes. */
export function countDispatches(): { get: () => number } {
  let n = 0;
  const proto = (globalThis as unknown as { GPUComputePassEncoder?: { prototype: Record<string, unknown> } }).GPUComputePassEncoder?.prototype;
  if (proto && typeof proto.dispatchWorkgroups === "function") {
    const orig = proto.dispatchWorkgroups as (...a: unknown[]) => unknown;
    proto.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
      n++;
      return orig.apply(this, a);
    };
  }
  return { get: () => n };
}

/** Runs `warmup + steps` training steps (each resolving to its loss once the GPU is done),
 * checks the losses stay finite, and times them: the median over the steps after warm-up. */
export async function timeSteps(peer: string, args: PeerArgs, dispatches: { get: () => number }, step: (t: number) => Promise<number>): Promise<{ losses: number[]; times: number[]; firstStepMs: number; dispatchesPerStep?: number }> {
  const losses: number[] = [];
  const times: number[] = [];
  let firstStepMs = 0;
  let dispatchesPerStep: number | undefined;
  const total = args.warmup + args.steps;
  for (let t = 1; t <= total; t++) {
    const d0 = dispatches.get();
    const t0 = performance.now();
    const loss = await step(t);
    const ms = performance.now() - t0;
    losses.push(loss);
    if (t === 1) firstStepMs = ms;
    if (t > args.warmup) times.push(ms);
    if (t === total) dispatchesPerStep = dispatches.get() - d0;
    log(`${peer}: step ${t}/${total} ${ms.toFixed(0)} ms, loss ${loss.toFixed(4)}`);
    if (t <= 2) checkLosses(peer, losses);
  }
  checkLosses(peer, losses);
  return { losses, times, firstStepMs, ...(dispatchesPerStep ? { dispatchesPerStep } : {}) };
}
