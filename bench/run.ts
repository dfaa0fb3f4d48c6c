// `npm run bench [-- --steps N --warmup N --only ours,tfjs,jax,kernels --json]`: the benchmark of
// issue 5 (see bench/README.md). DRIFA-Net at width 16, 64x64, batch 8, two modalities: one
// training step (forward, backward, Adam) of our fused and unfused compiles, TensorFlow.js
// WebGPU and jax-js WebGPU, on the same adapter (ours fused and unfused in alternation, the
// peers after them, each in its own process); plus the kernel
// benchmarks of bench/kernels.ts (convolutions against a GEMM roofline, the modulation).
// Progress goes to stderr; stdout gets a table and the PASS/FAIL checks, or one JSON object.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { acquireDevice, type Gpu } from "../runtime/device.ts";
import { BENCH_CONFIG, EXPECTED_PARAMS, describeNet } from "./net-spec.ts";
import { type OursResult, benchOurs } from "./ours.ts";
import type { PeerResult } from "./peer-env.ts";

const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, "..");
const PARTS = ["ours", "tfjs", "jax", "kernels"] as const;
type Part = (typeof PARTS)[number];

interface Args {
  steps: number;
  warmup: number;
  /** Trainers created afresh for ours, the steps split among them: --trials, default 5. */
  trials: number;
  /** Steps of the peers (slow; their margins are wide): --peer-steps, default 10. */
  peerSteps: number;
  only: Set<Part>;
  json: boolean;
  quick: boolean;
  peerTimeoutS: number;
  /** The jax-js child's JS heap, MiB (--jax-heap). */
  jaxHeapMb: number;
  /** How jax-js differentiates: per segment (default), the whole network in one jit
   * (--jax-whole), or without jit (--jax-eager). */
  jaxMode: "segments" | "whole" | "eager";
}

function parseArgs(argv: string[]): Args {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (flag: string, d: number): number => {
    const v = value(flag);
    if (v === undefined) return d;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`${flag} wants a whole number, got ${v}`);
    return n;
  };
  const only = value("--only");
  const parts = only ? only.split(",").map((s) => s.trim()) : [...PARTS];
  for (const p of parts) if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--only: unknown part ${p} (parts: ${PARTS.join(", ")})`);
  // 30 rounds of ours: lavapipe on a shared machine varies +-30 % from step to step, and the
  // fused/unfused ratio needs the medians to hold still.
  const steps = num("--steps", 30);
  return {
    steps,
    warmup: num("--warmup", 2),
    trials: num("--trials", 5),
    peerSteps: num("--peer-steps", 10),
    only: new Set(parts as Part[]),
    json: argv.includes("--json"),
    quick: argv.includes("--quick"),
    peerTimeoutS: num("--peer-timeout", 2400),
    jaxHeapMb: num("--jax-heap", 4096),
    jaxMode: argv.includes("--jax-eager") ? "eager" : argv.includes("--jax-whole") ? "whole" : "segments",
  };
}

const log = (s: string): void => {
  process.stderr.write(`[bench] ${s}\n`);
};

/** A peer in its own process (it owns its WebGPU device): its stderr passes through, its
 * stdout's last line is the result. */
function runPeer(file: string, args: Args): Promise<PeerResult> {
  return new Promise((resolve, reject) => {
    const heap = file === "jax.ts" ? args.jaxHeapMb : 8192;
    const extra = file !== "jax.ts" ? [] : args.jaxMode === "eager" ? ["--eager"] : args.jaxMode === "segments" ? ["--segments"] : [];
    const child = spawn(process.execPath, [`--max-old-space-size=${heap}`, "--import", "tsx", path.join(here, file), "--steps", String(args.peerSteps), "--warmup", String(args.warmup), ...extra], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      const s = d.toString();
      err += s;
      // Dawn's limit warnings are noise.
      // Dawn's limit warnings and V8's native stack on running out of heap are noise.
      for (const line of s.split("\n")) if (line.trim() && !line.startsWith("Warning: max") && !/^\s*\d+: 0x|^\s*\[\d+:0x/.test(line)) process.stderr.write(`  ${line}\n`);
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${file}: no result after ${args.peerTimeoutS} s (--peer-timeout)`));
    }, args.peerTimeoutS * 1000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = out.trim().split("\n").at(-1) ?? "";
      if (code === 0 && line.startsWith("{")) resolve(JSON.parse(line) as PeerResult);
      else if (/heap out of memory/.test(err)) reject(new Error(`${file}: the JavaScript heap ran out (${heap} MiB) before the first step finished: the library's tracing/autodiff of this network does not fit`));
      else reject(new Error(`${file} exited with ${code}: ${err.trim().split("\n").slice(-3).join(" | ")}`));
    });
  });
}

interface KernelsResult {
  roofline: { gflops: number };
  kernels: { name: string; shape: string; gflops: number; ratio: number; variant: string }[];
  modulation: { ours: { ms: number; dispatches: number }; handFused: { ms: number }; ratio: number } | null;
}

async function runKernels(gpu: Gpu, quick: boolean): Promise<KernelsResult | string> {
  const file = path.join(here, "kernels.ts");
  if (!existsSync(file)) return "not available (bench/kernels.ts is missing)";
  const mod = (await import(file)) as { benchKernels?: (gpu: Gpu, opts: { quick?: boolean }) => Promise<KernelsResult> };
  if (typeof mod.benchKernels !== "function") return "not available (bench/kernels.ts has no benchKernels)";
  return mod.benchKernels(gpu, { quick });
}

const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;
const ratio = (a?: number, b?: number): number | null => (a !== undefined && b !== undefined && b > 0 ? round(a / b, 2) : null);

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const cfg = BENCH_CONFIG;
  const net = describeNet(cfg);
  log(`DRIFA-Net width ${cfg.width}, ${cfg.size}x${cfg.size}, batch ${cfg.batch}, ${cfg.modalities.length} modalities: ${net.paramCount.toLocaleString("en-US")} parameters in ${net.tensors} tensors, ${round(net.trainFlops / 1e9, 2)} GFLOP of conv and dense work per training step`);
  log(`parts: ${[...args.only].join(", ")}; ${args.steps} timed steps after ${args.warmup} warm-up (peers: ${args.peerSteps})`);
  if (net.paramCount !== EXPECTED_PARAMS) throw new Error(`bench/net-spec.ts has ${net.paramCount} parameters, expected ${EXPECTED_PARAMS}`);

  const needGpu = args.only.has("ours") || args.only.has("kernels");
  const gpu = needGpu ? await acquireDevice() : null;
  let adapter = gpu?.adapterName ?? "";
  if (gpu) log(`adapter: ${adapter}${gpu.quietWait ? " (waits without Dawn's busy poll: runtime/quiet-wait.ts)" : ""}`);
  const errors: string[] = [];

  let fused: OursResult | undefined;
  let unfused: OursResult | undefined;
  if (args.only.has("ours")) {
    const run = await benchOurs(gpu!, { fuses: [true, false], steps: args.steps, warmup: args.warmup, trials: args.trials, log });
    errors.push(...run.errors);
    for (const r of run.results) {
      log(`ours ${r.fuse ? "fused" : "unfused"}: losses ${r.losses.map((l) => l.toFixed(4)).join(" ")}`);
      log(`ours ${r.fuse ? "fused" : "unfused"}: ${round(r.stepMs)} ms per step (median of ${r.stepsMs.length} over ${Math.min(args.trials, args.steps)} trials, in alternation with the other), first step ${round(r.firstStepMs / 1000, 1)} s`);
      if (r.fuse) fused = r;
      else unfused = r;
    }
  }

  let kernels: KernelsResult | string | undefined;
  if (args.only.has("kernels")) {
    try {
      log("kernels: convolutions against the GEMM roofline, the modulation");
      kernels = await runKernels(gpu!, args.quick);
    } catch (e) {
      kernels = `failed: ${(e as Error).message}`;
      errors.push(`kernels: ${(e as Error).message}`);
    }
    if (typeof kernels === "string") log(`kernels: ${kernels}`);
  }
  // The peers get the adapter to themselves (they request their own device from the same
  // lavapipe adapter); ours is idle from here on.
  gpu?.destroy();

  const peers: Partial<Record<"tfjs" | "jax", PeerResult>> = {};
  const peerFailed = new Set<string>();
  for (const [part, file] of [
    ["tfjs", "tfjs.ts"],
    ["jax", "jax.ts"],
  ] as const) {
    if (!args.only.has(part)) continue;
    log(`${part}: running ${file} in its own process`);
    try {
      const r = await runPeer(file, args);
      if (r.params !== EXPECTED_PARAMS) errors.push(`${part}: ${r.params} parameters, ours ${EXPECTED_PARAMS}`);
      peers[part] = r;
      adapter ||= r.adapter;
      log(`${part}: ${round(r.stepMs)} ms per step, first step ${round(r.firstStepMs / 1000, 1)} s, ${r.params.toLocaleString("en-US")} parameters (ours ${EXPECTED_PARAMS.toLocaleString("en-US")})`);
    } catch (e) {
      errors.push(`${part}: ${(e as Error).message}`);
      peerFailed.add(part);
      log(errors.at(-1)!);
    }
  }

  const k = typeof kernels === "object" ? kernels : undefined;
  const report = {
    model: { file: "models/drifa.drifa", width: cfg.width, size: cfg.size, batch: cfg.batch, modalities: cfg.modalities, params: net.paramCount, tensors: net.tensors, trainGflop: round(net.trainFlops / 1e9, 2) },
    fused: fused && {
      stepMs: round(fused.stepMs, 2),
      dispatchesPerStep: fused.dispatchesPerStep,
      submitsPerStep: fused.submitsPerStep,
      peakBytes: fused.peakBytes,
      compileMs: round(fused.compileMs),
      pipelineMs: round(fused.pipelineMs),
      autotuneMs: round(fused.autotuneMs),
      firstStepMs: round(fused.firstStepMs),
      pipelines: fused.pipelines,
      params: fused.params,
      autotune: fused.autotune,
      variants: fused.variants,
      stepsMs: fused.stepsMs.map((x) => round(x, 2)),
      losses: fused.losses,
    },
    unfused: unfused && {
      stepMs: round(unfused.stepMs, 2),
      dispatchesPerStep: unfused.dispatchesPerStep,
      submitsPerStep: unfused.submitsPerStep,
      peakBytes: unfused.peakBytes,
      compileMs: round(unfused.compileMs),
      firstStepMs: round(unfused.firstStepMs),
      pipelines: unfused.pipelines,
      variants: unfused.variants,
      stepsMs: unfused.stepsMs.map((x) => round(x, 2)),
    },
    unplanned: fused && { peakBytes: fused.unplannedBytes },
    tfjs: peerFailed.has("tfjs") ? { stepMs: null, error: errors.find((e) => e.startsWith("tfjs:")) } : peers.tfjs && { stepMs: round(peers.tfjs.stepMs), firstStepMs: round(peers.tfjs.firstStepMs), params: peers.tfjs.params, dispatchesPerStep: peers.tfjs.dispatchesPerStep, version: peers.tfjs.version, losses: peers.tfjs.losses, notes: peers.tfjs.notes },
    jax: peerFailed.has("jax") ? { stepMs: null, error: errors.find((e) => e.startsWith("jax:")) } : peers.jax && { stepMs: round(peers.jax.stepMs), firstStepMs: round(peers.jax.firstStepMs), params: peers.jax.params, dispatchesPerStep: peers.jax.dispatchesPerStep, version: peers.jax.version, losses: peers.jax.losses, notes: peers.jax.notes },
    roofline: k ? k.roofline : null,
    kernels: k ? k.kernels : typeof kernels === "string" ? kernels : null,
    modulation: k ? k.modulation : null,
    ratios: {
      tfjsOverFused: ratio(peers.tfjs?.stepMs, fused?.stepMs),
      jaxOverFused: ratio(peers.jax?.stepMs, fused?.stepMs),
      unfusedOverFused: ratio(unfused?.stepMs, fused?.stepMs),
      peakPlannedOverUnplanned: ratio(fused?.peakBytes, fused?.unplannedBytes),
    },
    adapter,
    /** Whether ours (and the peers, on the same rule) waited without Dawn's busy poll. */
    quietWait: gpu ? gpu.quietWait : null,
    date: new Date().toISOString(),
    steps: { timed: args.steps, warmup: args.warmup, trials: args.trials, peers: args.peerSteps },
    errors,
  };

  if (args.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }

  const MB = (b: number) => `${round(b / 2 ** 20)} MiB`;
  const rows: string[][] = [["", "step (median)", "first step", "dispatches/step", "submits/step", "params"]];
  const s = (ms?: number) => (ms === undefined ? "-" : ms >= 1000 ? `${round(ms / 1000, 2)} s` : `${round(ms, 1)} ms`);
  if (fused) rows.push(["ours, fused", s(fused.stepMs), s(fused.firstStepMs), String(fused.dispatchesPerStep), String(fused.submitsPerStep), fused.params.toLocaleString("en-US")]);
  if (unfused) rows.push(["ours, unfused", s(unfused.stepMs), s(unfused.firstStepMs), String(unfused.dispatchesPerStep), String(unfused.submitsPerStep), unfused.params.toLocaleString("en-US")]);
  for (const [name, r] of [
    ["TensorFlow.js WebGPU", peers.tfjs],
    [`jax-js WebGPU (${args.jaxMode === "segments" ? "jit per segment" : args.jaxMode === "whole" ? "jit" : "eager"})`, peers.jax],
  ] as const) {
    if (r) rows.push([name, s(r.stepMs), s(r.firstStepMs), r.dispatchesPerStep ? String(r.dispatchesPerStep) : "-", "-", r.params.toLocaleString("en-US")]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) => r.map((x, c) => (c === 0 ? x.padEnd(widths[c]!) : x.padStart(widths[c]!))).join("  "));
  const out: string[] = [];
  out.push(`DRIFA-Net width ${cfg.width}, ${cfg.size}x${cfg.size}, batch ${cfg.batch}, two modalities: one training step (forward, backward, Adam)`);
  out.push(`adapter: ${adapter}${report.quietWait ? ", waits without Dawn's busy poll" : ""}    ${report.date}`);
  out.push("");
  out.push(...lines);
  if (fused) {
    out.push("");
    out.push(`ours, fused: compile (IR + WGSL) ${s(fused.compileMs)}, pipelines ${s(fused.pipelineMs)} (autotune ${s(fused.autotuneMs)}, DRIFA_AUTOTUNE=${fused.autotune}), first run ${s(fused.firstRunMs)}; ${fused.pipelines} distinct kernels; variants: ${Object.entries(fused.variants).map(([v, n]) => `${v} x${n}`).join(", ")}`);
    out.push(`memory: planned ${MB(fused.peakBytes)}, unplanned ${MB(fused.unplannedBytes)}${unfused ? `; unfused plan ${MB(unfused.peakBytes)}` : ""}`);
  }
  const lossLine = (name: string, ls?: number[]) => (ls && ls.length ? `${name} ${ls[0]!.toFixed(3)} -> ${ls.at(-1)!.toFixed(3)}${ls.every(Number.isFinite) ? "" : " (NOT FINITE)"}` : null);
  const lossParts = [lossLine("ours fused", fused?.losses), lossLine("unfused", unfused?.losses), lossLine("tfjs", peers.tfjs?.losses), lossLine("jax", peers.jax?.losses)].filter(Boolean);
  if (lossParts.length) out.push(`losses (same batch every step; first -> last): ${lossParts.join(", ")}`);
  if (k) {
    out.push("");
    out.push(`GEMM roofline (1024^3, same run): ${round(k.roofline.gflops, 2)} GFLOP/s`);
    for (const kr of k.kernels) out.push(`  ${kr.name.padEnd(24)} ${kr.shape.padEnd(18)} ${String(round(kr.gflops, 2)).padStart(7)} GFLOP/s  ${String(round(kr.ratio, 2)).padStart(5)}x roofline  (${kr.variant})`);
    if (k.modulation) out.push(`modulation forward+backward: ours ${round(k.modulation.ours.ms, 2)} ms in ${k.modulation.ours.dispatches} dispatches, hand-fused ${round(k.modulation.handFused.ms, 2)} ms: ${round(k.modulation.ratio, 2)}x`);
    else out.push("modulation: not measured (bench/kernels.ts returned none)");
  } else if (typeof kernels === "string") {
    out.push("");
    out.push(`kernels: ${kernels}`);
  }
  out.push("");
  const check = (name: string, ok: boolean | null, detail: string) => out.push(`${ok === null ? "SKIP" : ok ? "PASS" : "FAIL"}  ${name}: ${detail}`);
  const r = report.ratios;
  // A peer that ran and failed is a FAIL (no time to compare), not a SKIP.
  const peerCheck = (name: string, part: string, x: number | null, bar: number) =>
    check(name, x !== null ? x >= bar : peerFailed.has(part) ? false : null, x !== null ? `${x}x` : peerFailed.has(part) ? `${part} did not complete a step (see the error below)` : "not measured");
  peerCheck("fused >= 5x faster than TensorFlow.js", "tfjs", r.tfjsOverFused, 5);
  peerCheck("fused >= 3x faster than jax-js", "jax", r.jaxOverFused, 3);
  check("fused >= 1.5x faster than unfused", r.unfusedOverFused === null ? null : r.unfusedOverFused >= 1.5, r.unfusedOverFused === null ? "not measured" : `${r.unfusedOverFused}x`);
  check("one submit per step", fused ? fused.submitsPerStep === 1 : null, fused ? `${fused.submitsPerStep}` : "not measured");
  check("planned peak <= half of unplanned", r.peakPlannedOverUnplanned === null ? null : r.peakPlannedOverUnplanned <= 0.5, r.peakPlannedOverUnplanned === null ? "not measured" : `${r.peakPlannedOverUnplanned} of unplanned`);
  if (k) {
    const conv = k.kernels;
    const worst = conv.length ? conv.reduce((a, b) => (a.ratio <= b.ratio ? a : b)) : null;
    check("3x3 conv kernels >= 1.2x roofline", conv.length ? conv.every((c) => c.ratio >= 1.2) : null, worst ? `worst ${worst.name} ${worst.shape} ${round(worst.ratio, 2)}x (${conv.filter((c) => c.ratio >= 1.2).length}/${conv.length} pass)` : "no kernels");
    const m = k.modulation;
    check("modulation <= 2 dispatches", m ? m.ours.dispatches <= 2 : null, m ? `${m.ours.dispatches}` : "not measured");
    check("modulation within 1.2x of hand-fused", m ? m.ratio <= 1.2 : null, m ? `${round(m.ratio, 2)}x` : "not measured");
  } else {
    check("3x3 conv kernels >= 1.2x roofline", null, "kernels not measured");
    check("modulation <= 2 dispatches, within 1.2x of hand-fused", null, "kernels not measured");
  }
  const params = [["net-spec", net.paramCount], ["tfjs", peers.tfjs?.params], ["jax", peers.jax?.params], ["ours", fused?.params]].filter(([, n]) => n !== undefined);
  check("same network (parameters)", params.every(([, n]) => n === EXPECTED_PARAMS), params.map(([w, n]) => `${w} ${(n as number).toLocaleString("en-US")}`).join(", "));
  if (errors.length) {
    out.push("");
    for (const e of errors) out.push(`error: ${e}`);
  }
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

try {
  const code = await main();
  process.exit(code);
} catch (e) {
  process.stderr.write(`bench: ${(e as Error).message}\n`);
  process.exit(1);
}
