/// <reference types="@webgpu/types" />
// Timing a WGSL kernel on its own: buffers filled with small random values, a warm-up
// dispatch (lavapipe JIT-compiles the shader there), then the median of several runs, each one
// submit of `reps` dispatches waited for with queue.onSubmittedWorkDone().
import { type Gpu, createComputePipeline, withErrorScopes } from "../runtime/device.ts";

export interface Timed {
  /** Median milliseconds per dispatch. */
  ms: number;
  /** Milliseconds of the warm-up (compile + first run). */
  firstMs: number;
}

export interface Launch {
  wgsl: string;
  /** Floats of each binding, in binding order; `access` says which are read-only. */
  floats: number[];
  access: ("read" | "write")[];
  dispatch: [number, number, number];
  label?: string;
}

export function randomData(n: number, seed = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    a[i] = (s / 4294967296) * 2 - 1;
  }
  return a;
}

/** Creates the pipeline and buffers of `launch`; `data[b]` (when given) fills binding b. */
export async function prepare(gpu: Gpu, launch: Launch, data: (Float32Array | undefined)[] = []) {
  const { device } = gpu;
  const label = launch.label ?? "bench";
  const bind = device.createBindGroupLayout({
    entries: launch.access.map((a, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: a === "read" ? ("read-only-storage" as const) : ("storage" as const) } })),
  });
  const pipe = await createComputePipeline(device, { code: launch.wgsl, entryPoint: "main", layout: device.createPipelineLayout({ bindGroupLayouts: [bind] }), label });
  const buffers = await withErrorScopes(device, `${label} buffers`, () =>
    launch.floats.map((n, b) => {
      const buf = device.createBuffer({ size: Math.max(16, Math.ceil((n * 4) / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      device.queue.writeBuffer(buf, 0, data[b] ?? randomData(n, b + 7));
      return buf;
    }),
  );
  const group = device.createBindGroup({ layout: bind, entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer, size: launch.floats[binding]! * 4 } })) });
  /** Records the dispatch into a pass (with another bind group of the same layout, if given). */
  const encode = (pass: GPUComputePassEncoder, bindGroup: GPUBindGroup = group) => {
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...launch.dispatch);
  };
  const run = async (reps = 1) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, group);
    for (let r = 0; r < reps; r++) pass.dispatchWorkgroups(...launch.dispatch);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  const read = async (b: number): Promise<Float32Array> => {
    const n = launch.floats[b]!;
    const staging = device.createBuffer({ size: Math.max(16, Math.ceil((n * 4) / 16) * 16), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(buffers[b]!, 0, staging, 0, staging.size);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(staging.getMappedRange().slice(0, n * 4));
    staging.destroy();
    return out;
  };
  const destroy = () => buffers.forEach((b) => b.destroy());
  return { run, read, destroy, buffers, encode, layout: bind };
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Times a launch: warm-up, then the median of `runs` submits of one dispatch each. */
export async function timeLaunch(gpu: Gpu, launch: Launch, runs = 5): Promise<Timed> {
  const k = await withErrorScopes(gpu.device, launch.label ?? "bench", () => prepare(gpu, launch));
  try {
    const firstMs = await k.run(1);
    await k.run(1);
    const ts: number[] = [];
    for (let r = 0; r < runs; r++) ts.push(await k.run(1));
    return { ms: median(ts), firstMs };
  } finally {
    k.destroy();
  }
}
