/// <reference types="@webgpu/types" />
// Kernel bench: our 3x3 convolution kernels (forward, input gradient, weight gradient) on the
// shapes of shared/design/performance.md (batch 8, stride 1, padding 1; 64 ch 32x32, 128 ch
// 16x16, 256 ch 8x8) against a hand-written 1024^3 GEMM measured in the same run (the roofline),
// and the MFA modulation x * sigmoid(wd d + wl l) * wc forward + backward as our compiler plans
// it against a hand-fused pair of WGSL kernels.
//
// Lavapipe's speed varies +-10-20 % between runs and with other load on the machine, so the
// GEMM runs in every round, interleaved with the kernels, and each ratio is the median over
// rounds of (kernel GFLOP/s / GEMM GFLOP/s of the same round).
//
//   tsx bench/kernels.ts [--quick] [--baseline]   prints the table (--baseline: the default
//                                                 "register" kernels beside ours)
import { relError } from "../compiler/codegen/gpucheck.ts";
import { planGraph } from "../compiler/codegen/plan.ts";
import { BLOCKED_VARIANT } from "../compiler/codegen/wgsl/conv-blocked.ts";
import { type KernelSpec, kernelFor } from "../compiler/codegen/wgsl/index.ts";
import { differentiate } from "../compiler/ir/autodiff.ts";
import { sumTo } from "../compiler/ir/emit.ts";
import { Graph } from "../compiler/ir/graph.ts";
import { numel } from "../compiler/ir/primitives.ts";
import { type Gpu, acquireDevice } from "../runtime/device.ts";
import { createResources, encodeReadback } from "../runtime/executor.ts";
import { gemmDispatch, gemmWgsl } from "./gemm.ts";
import { modulationGraph } from "./modulation-graph.ts";
import { median, prepare, randomData } from "./timing.ts";

export interface KernelRow {
  name: string;
  shape: string;
  gflops: number;
  /** GFLOP/s over the same round's GEMM GFLOP/s (median over rounds). */
  ratio: number;
  variant: string;
}

export interface KernelBench {
  roofline: { gflops: number };
  kernels: KernelRow[];
  /** With opts.baseline: the default ("register") kernels on the same shapes, same rounds. */
  baseline?: KernelRow[];
  modulation: { ours: { ms: number; dispatches: number }; handFused: { ms: number }; ratio: number } | null;
}

const GEMM_N = 1024;
export const CONV_SHAPES: [channels: number, size: number][] = [
  [64, 32],
  [128, 16],
  [256, 8],
];
const CONV_PRIMS = ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"] as const;

/** The kernel our compiler emits for one convolution form on one shape, and the variant timed:
 * the blocked one when the emitter offers it (what the autotuner picks on lavapipe), else the
 * default. */
export function convKernel(prim: (typeof CONV_PRIMS)[number], channels: number, size: number, batch = 8, only?: "register") {
  const g = new Graph();
  const a = { stride: 1, padding: 1, dilation: 1, groups: 1 };
  const x = g.input("x", [batch, channels, size, size]);
  const w = g.input("w", [channels, channels, 3, 3]);
  const dy = g.input("dy", [batch, channels, size, size]);
  const id =
    prim === "conv2d"
      ? g.emit("conv2d", [x, w], a)
      : prim === "conv2d_input_grad"
        ? g.emit("conv2d_input_grad", [dy, w], { ...a, h: size, w: size })
        : g.emit("conv2d_weight_grad", [x, dy], { ...a, k: 3 });
  const spec: KernelSpec = kernelFor(g, id);
  const node = g.node(id);
  const v = only ? undefined : spec.variants?.find((c) => c.name === BLOCKED_VARIANT);
  return {
    variant: v ? v.name : "register",
    wgsl: v ? v.wgsl : spec.wgsl,
    dispatch: v ? v.dispatch : spec.dispatch,
    floats: [...node.inputs.map((i) => numel(g.shapeOf(i))), numel(node.shape)],
    access: spec.bindings.map((b) => b.access),
    flops: 2 * batch * channels * channels * 9 * size * size,
  };
}

// ---- The modulation: x * sigmoid(wd * d + wl * l) * wc (models/lib/mfa.drifa) ----

/** Hand-fused WGSL: the forward (one kernel) and the backward (two kernels: per (n, c) the
 * elementwise dx and the reductions over H, W; then per channel the reductions over n). Small
 * tensors travel packed: p = [d (NC), l (NC), wd, wl (C), wc (C)]; r = per (n, c) [dd, dl,
 * s*a, dz*d, dz*l] (s = sum over H, W of g*x, dz = s wc a (1 - a)); q = [dwd, dwl (C), dwc (C)]. */
export function handFusedWgsl(N: number, C: number, H: number, W: number) {
  const NC = N * C;
  const HW4 = (H * W) / 4;
  if ((H * W) % 4 !== 0) throw new Error("modulation bench: H*W must be a multiple of 4");
  const SPLIT = 16; // vec4 chunks per forward invocation
  const per = HW4 / SPLIT;
  const att = `let z = p[0u * ${NC}u + nc] * p[${2 * NC}u] + p[${NC}u + nc] * p[${2 * NC + 1}u + c]; let a = 1.0 / (1.0 + exp(-z));`;
  const fwd = `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> p: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${NC * per}u) { return; }
  let nc = i / ${per}u;
  let c = nc % ${C}u;
  ${att}
  let s = a * p[${2 * NC + 1 + C}u + c];
  let base = nc * ${HW4}u + (i % ${per}u) * ${SPLIT}u;
  for (var k = 0u; k < ${SPLIT}u; k++) { y[base + k] = x[base + k] * s; }
}`;
  const back1 = `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> p: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> r: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let nc = gid.x;
  if (nc >= ${NC}u) { return; }
  let c = nc % ${C}u;
  ${att}
  let wc = p[${2 * NC + 1 + C}u + c];
  let s = a * wc;
  var acc = vec4<f32>(0.0);
  let base = nc * ${HW4}u;
  for (var k = 0u; k < ${HW4}u; k++) {
    let gv = g[base + k];
    acc += gv * x[base + k];
    dx[base + k] = gv * s;
  }
  let sum = (acc.x + acc.y) + (acc.z + acc.w);
  let dz = sum * wc * a * (1.0 - a);
  r[nc * 5u] = dz * p[${2 * NC}u];
  r[nc * 5u + 1u] = dz * p[${2 * NC + 1}u + c];
  r[nc * 5u + 2u] = sum * a;
  r[nc * 5u + 3u] = dz * p[nc];
  r[nc * 5u + 4u] = dz * p[${NC}u + nc];
}`;
  const back2 = `
@group(0) @binding(0) var<storage, read> r: array<f32>;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c > ${C}u) { return; }
  if (c == ${C}u) {
    var t = 0.0;
    for (var k = 0u; k < ${NC}u; k++) { t += r[k * 5u + 3u]; }
    q[0] = t;
    return;
  }
  var sl = 0.0;
  var sc = 0.0;
  for (var n = 0u; n < ${N}u; n++) {
    sl += r[(n * ${C}u + c) * 5u + 4u];
    sc += r[(n * ${C}u + c) * 5u + 2u];
  }
  q[1u + c] = sl;
  q[${1 + C}u + c] = sc;
}`;
  return {
    fwd: { wgsl: fwd, dispatch: [Math.ceil((NC * per) / 64), 1, 1] as [number, number, number] },
    back1: { wgsl: back1, dispatch: [Math.ceil(NC / 64), 1, 1] as [number, number, number] },
    back2: { wgsl: back2, dispatch: [Math.ceil((C + 1) / 64), 1, 1] as [number, number, number] },
  };
}

/** Milliseconds of one submit of `encode`, waited for. */
async function timeOnce(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void): Promise<number> {
  const enc = gpu.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  encode(pass);
  pass.end();
  const t0 = performance.now();
  gpu.device.queue.submit([enc.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}

/** Times `encode` (one submit, waited for) `runs` times after two warm-ups; median ms. */
async function timeSubmit(gpu: Gpu, encode: (pass: GPUComputePassEncoder) => void, runs: number): Promise<number> {
  await timeOnce(gpu, encode);
  await timeOnce(gpu, encode);
  const ts: number[] = [];
  for (let r = 0; r < runs; r++) ts.push(await timeOnce(gpu, encode));
  return median(ts);
}

/** Median milliseconds of each encoding, measured alternately (after two warm-up runs each). */
async function timeInterleaved(gpu: Gpu, encoders: ((pass: GPUComputePassEncoder) => void)[], runs: number): Promise<number[]> {
  const ts: number[][] = encoders.map(() => []);
  for (const e of encoders) for (let w = 0; w < 2; w++) await timeOnce(gpu, e);
  for (let r = 0; r < runs; r++) for (let k = 0; k < encoders.length; k++) ts[k]!.push(await timeOnce(gpu, encoders[k]!));
  return ts.map(median);
}

async function readBuffer(gpu: Gpu, buffer: GPUBuffer, offset: number, floats: number): Promise<Float32Array> {
  const enc = gpu.device.createCommandEncoder();
  const read = encodeReadback(gpu.device, enc, [{ buffer, offset, size: floats * 4 }], [floats]);
  gpu.device.queue.submit([enc.finish()]);
  return (await read())[0]!;
}

/** The hand-fused kernels' relative error against ours per output, from the last run. */
export let lastModulationErrors: Record<string, number> = {};

export async function benchModulation(gpu: Gpu, runs: number, shape: [number, number, number, number] = [16, 64, 32, 32]) {
  const [N, C, H, W] = shape;
  const NC = N * C;
  const m = modulationGraph("model", [N, C, H, W], { packed: true });
  const outputs = [m.y, ...m.grads];
  const plan = planGraph(m.g, outputs, { fuse: true });
  const res = await createResources(gpu, plan.buffers, plan.kernels);
  // Feeds: the leaves by name.
  const data: Record<string, Float32Array> = {
    x: randomData(NC * H * W, 3),
    dy: randomData(NC * H * W, 4),
    d: randomData(NC, 5),
    l: randomData(NC, 6),
    wd: Float32Array.of(0.7),
    wl: randomData(C, 8),
    wc: randomData(C, 9),
  };
  plan.buffers.forEach((b, i) => {
    if (b.init.kind === "input" || b.init.kind === "param") gpu.device.queue.writeBuffer(res.placed[i]!.buffer, res.placed[i]!.offset, data[b.init.name]!);
  });
  const encodeOurs = (pass: GPUComputePassEncoder) => {
    plan.kernels.forEach((_, k) => {
      pass.setPipeline(res.pipelines[k]!);
      pass.setBindGroup(0, res.bindGroups[k]!);
      pass.dispatchWorkgroups(...res.dispatch[k]!);
    });
  };
  await timeOnce(gpu, encodeOurs); // ours's outputs, read below
  const ours = await Promise.all(plan.outputs.map((o) => readBuffer(gpu, res.placed[o]!.buffer, res.placed[o]!.offset, plan.buffers[o]!.floats)));

  // The hand-fused kernels on the same data.
  const hf = handFusedWgsl(N, C, H, W);
  const p = new Float32Array(2 * NC + 1 + 2 * C);
  p.set(data.d!, 0);
  p.set(data.l!, NC);
  p[2 * NC] = data.wd![0]!;
  p.set(data.wl!, 2 * NC + 1);
  p.set(data.wc!, 2 * NC + 1 + C);
  const big = NC * H * W;
  const f = await prepare(gpu, { wgsl: hf.fwd.wgsl, floats: [big, p.length, big], access: ["read", "read", "write"], dispatch: hf.fwd.dispatch, label: "hand-fused forward" }, [data.x, p]);
  const b1 = await prepare(gpu, { wgsl: hf.back1.wgsl, floats: [big, big, p.length, big, 5 * NC], access: ["read", "read", "read", "write", "write"], dispatch: hf.back1.dispatch, label: "hand-fused backward 1" }, [
    data.x,
    data.dy,
    p,
  ]);
  const b2 = await prepare(gpu, { wgsl: hf.back2.wgsl, floats: [5 * NC, 1 + 2 * C], access: ["read", "write"], dispatch: hf.back2.dispatch, label: "hand-fused backward 2" });
  // back2 reads back1's r: bound through a second bind group.
  const r2 = gpu.device.createBindGroup({ layout: b2.layout, entries: [{ binding: 0, resource: { buffer: b1.buffers[4]! } }, { binding: 1, resource: { buffer: b2.buffers[1]! } }] });
  // Timed in alternation, run by run: a slow stretch of the machine (lavapipe shares two cores
  // with everything else) then falls on both sides instead of on whichever ran during it.
  const [oursMs, handMs] = await timeInterleaved(
    gpu,
    [
      encodeOurs,
      (pass) => {
        f.encode(pass);
        b1.encode(pass);
        b2.encode(pass, r2);
      },
    ],
    runs,
  );
  const yH = await f.read(2);
  const dxH = await b1.read(3);
  const rH = await b1.read(4);
  const qH = await b2.read(1);
  const mine: Float32Array[] = [
    yH,
    dxH,
    Float32Array.from({ length: NC }, (_, i) => rH[i * 5]!),
    Float32Array.from({ length: NC }, (_, i) => rH[i * 5 + 1]!),
    qH.slice(0, 1),
    qH.slice(1, 1 + C),
    qH.slice(1 + C, 1 + 2 * C),
  ];
  const names = ["y", "dx", "dd", "dl", "dwd", "dwl", "dwc"];
  // Two f32 computations summing 1024 products of random signs in different orders: dd and dl
  // (through s = sum of g*x, with cancellation) differ by about 1e-4 relative; the rest by less
  // than 2e-5.
  const errors = names.map((n, i) => [n, relError(ours[i]!, mine[i]!)] as const);
  lastModulationErrors = Object.fromEntries(errors);
  const bad = errors.flatMap(([n, e]) => (e > 1e-3 ? [`${n}: ${e.toExponential(2)}`] : []));
  if (bad.length > 0) throw new Error(`hand-fused modulation kernels disagree with ours: ${bad.join(", ")}`);
  for (const k of [f, b1, b2]) k.destroy();
  for (const b of res.owned) b.destroy();
  return { ours: { ms: oursMs, dispatches: plan.kernels.length }, handFused: { ms: handMs }, ratio: oursMs / handMs };
}

export async function benchKernels(gpu: Gpu, opts: { quick?: boolean; baseline?: boolean } = {}): Promise<KernelBench> {
  const rounds = opts.quick ? 3 : 7;
  const n = GEMM_N;
  const gemm = await prepare(gpu, { wgsl: gemmWgsl(n), floats: [n * n, n * n, n * n], access: ["read", "read", "write"], dispatch: gemmDispatch(n), label: "gemm 1024" });
  const gemmFlops = 2 * n ** 3;
  const convs: {
    prim: (typeof CONV_PRIMS)[number];
    base: boolean;
    shape: string;
    k: ReturnType<typeof convKernel>;
    launch: Awaited<ReturnType<typeof prepare>>;
    ms: number[];
    ratio: number[];
  }[] = [];
  for (const [channels, size] of CONV_SHAPES) {
    for (const prim of CONV_PRIMS) {
      for (const base of opts.baseline ? [false, true] : [false]) {
        const k = convKernel(prim, channels, size, 8, base ? "register" : undefined);
        const launch = await prepare(gpu, { wgsl: k.wgsl, floats: k.floats, access: k.access, dispatch: k.dispatch, label: `${prim} ${channels}x${size}` });
        await launch.run(); // lavapipe compiles the shader at its first dispatch
        convs.push({ prim, base, shape: `${channels} ch ${size}x${size}`, k, launch, ms: [] as number[], ratio: [] as number[] });
      }
    }
  }
  await gemm.run();
  const gemmMs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const gm = await gemm.run();
    gemmMs.push(gm);
    for (const c of convs) {
      const t = await c.launch.run();
      c.ms.push(t);
      c.ratio.push(c.k.flops / t / (gemmFlops / gm));
    }
  }
  const row = (c: (typeof convs)[number]): KernelRow => ({ name: c.prim, shape: c.shape, gflops: c.k.flops / median(c.ms) / 1e6, ratio: median(c.ratio), variant: c.k.variant });
  const kernels = convs.filter((c) => !c.base).map(row);
  const baseline = opts.baseline ? convs.filter((c) => c.base).map(row) : undefined;
  for (const c of convs) c.launch.destroy();
  gemm.destroy();
  let modulation: KernelBench["modulation"] = null;
  try {
    modulation = await benchModulation(gpu, opts.quick ? 5 : 15);
  } catch (e) {
    console.error(`[bench/kernels] modulation: ${(e as Error).message}`);
  }
  return { roofline: { gflops: gemmFlops / median(gemmMs) / 1e6 }, kernels, ...(baseline ? { baseline } : {}), modulation };
}

export function formatKernelBench(b: KernelBench): string {
  const lines = [
    `GEMM 1024^3 (hand-written, 8x8 register block): ${b.roofline.gflops.toFixed(2)} GFLOP/s`,
    "",
    "| kernel | shape | variant | GFLOP/s | / GEMM |",
    "|---|---|---|---|---|",
    ...b.kernels.map((k, i) => {
      const base = b.baseline?.[i];
      return `| ${k.name} | ${k.shape} | ${k.variant} | ${k.gflops.toFixed(2)} | ${k.ratio.toFixed(2)} |${base ? ` ${base.gflops.toFixed(2)} | ${base.ratio.toFixed(2)} |` : ""}`;
    }),
  ];
  if (b.baseline) {
    lines[2] += " register GFLOP/s | / GEMM |";
    lines[3] += "---|---|";
  }
  if (b.modulation) {
    const m = b.modulation;
    lines.push("", `modulation [16,64,32,32] forward + backward: ours ${m.ours.ms.toFixed(2)} ms in ${m.ours.dispatches} dispatches, hand-fused ${m.handFused.ms.toFixed(2)} ms (3 dispatches): ratio ${m.ratio.toFixed(2)}`);
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const gpu = await acquireDevice();
  try {
    console.log(`adapter: ${gpu.adapterName}`);
    console.log(formatKernelBench(await benchKernels(gpu, { quick: process.argv.includes("--quick"), baseline: process.argv.includes("--baseline") })));
    const errs = Object.entries(lastModulationErrors).map(([n, e]) => `${n} ${e.toExponential(1)}`);
    if (errs.length) console.log(`hand-fused vs ours, relative error: ${errs.join(", ")}`);
  } finally {
    gpu.destroy();
  }
}
