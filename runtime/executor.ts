/// <reference types="@webgpu/types" />
// Runs a list of compute kernels over a set of f32 storage buffers as ONE command encoder and
// ONE submit: the "graph capture" shape the generated host code will have (pipelines, buffers
// and bind groups created once; each run only uploads feeds, submits, and reads back what was
// asked). It knows nothing about the IR: the compiler turns a graph into an ExecPlan
// (compiler/codegen/plan.ts), so this file stays importable by a browser bundle.
//
// A buffer of a plan may be a view: a 256-byte aligned range of a larger root buffer, so that
// values laid out side by side (all parameters, all gradients) can be bound as one. The pieces
// that create a plan's device resources (createResources, upload, encodeReadback) are shared
// with the persistent executor of training steps (trainer-exec.ts).
import { type AutotuneOptions, candidatesOf, chooseVariants } from "./autotune.ts";
import { DeviceError, type Gpu, createComputePipeline, withErrorScopes } from "./device.ts";

/** Where a buffer's contents come from before the kernels run. */
export type BufferInit = { kind: "fill"; value: number } | { kind: "input"; name: string } | { kind: "param"; name: string } | { kind: "none" };

export interface BufferSpec {
  label: string;
  /** Number of f32 elements. */
  floats: number;
  init: BufferInit;
  /** Stored inside buffer `of` (a buffer that is not itself a view) from element `offset`, a
   * multiple of VIEW_ALIGN. Views let many values share one GPU buffer, so that one kernel or
   * one copy can cover all of them (every parameter, every gradient) at once. */
  view?: { of: number; offset: number };
}

/** Alignment of views, in f32 elements: 256 bytes, the largest minStorageBufferOffsetAlignment
 * WebGPU allows, so a plan binds its views on every adapter. */
export const VIEW_ALIGN = 64;

export interface KernelLaunch {
  label: string;
  wgsl: string;
  entryPoint: string;
  /** Buffer indices in @binding order (all @group(0)). */
  buffers: number[];
  /** Per binding: read-only storage or read-write storage. */
  access: ("read" | "write")[];
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
  /** Alternative schedules with the same bindings and results (shared-memory tiles, say); the
   * fields above are the default variant, "register". createResources picks one per adapter
   * (runtime/autotune.ts). */
  variants?: KernelVariantLaunch[];
  /** Kernels with the same `tuneAs` share one autotuning decision: a convolution with
   * different epilogues, or paired with its twin, is fastest in the same schedule as the
   * convolution alone, so one measurement (and one compilation of every variant) serves all. */
  tuneAs?: string;
}

export interface KernelVariantLaunch {
  name: string;
  wgsl: string;
  workgroupSize: [number, number, number];
  dispatch: [number, number, number];
}

export interface ExecPlan {
  buffers: BufferSpec[];
  kernels: KernelLaunch[];
  /** Buffers read back by run(), in order. */
  outputs: number[];
}

/** Feeds by name, the interpreter's shape: graph inputs and parameters. */
export interface ExecFeeds {
  inputs: ReadonlyMap<string, ArrayLike<number>>;
  params: ReadonlyMap<string, ArrayLike<number>>;
}

export interface ExecStats {
  kernels: number;
  /** Distinct WGSL texts, i.e. pipelines compiled. */
  pipelines: number;
  /** Wall time of shader module and pipeline creation (WGSL validation and translation; on
   * lavapipe the machine-code compile happens at the first dispatch, see lastRunMs). */
  compileMs: number;
  /** Wall time spent choosing kernel variants (measuring, or reading the cache). */
  autotuneMs: number;
}

function layoutKey(access: readonly ("read" | "write")[]): string {
  return access.map((a) => (a === "read" ? "r" : "w")).join("");
}

/** A buffer of a plan as the device sees it: a GPU buffer and the byte range it occupies. */
export interface Placed {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

/** Everything a plan needs on the device, created once. */
export interface Resources {
  /** Per plan buffer: where it lives (views share their root's GPU buffer). */
  placed: Placed[];
  pipelines: GPUComputePipeline[];
  bindGroups: GPUBindGroup[];
  /** Per kernel: the grid of the variant chosen, and its name. */
  dispatch: [number, number, number][];
  variants: string[];
  stats: ExecStats;
  /** The GPU buffers this plan created (roots it did not borrow), for destroy(). */
  owned: GPUBuffer[];
}

const bytesOf = (floats: number) => Math.max(4, floats * 4);

/** Checks a plan's views, and its kernels and buffers against the device's limits. */
function checkPlan(gpu: Gpu, buffers: readonly BufferSpec[], kernels: readonly KernelLaunch[]): void {
  const { limits } = gpu;
  buffers.forEach((b, i) => {
    if (!b.view) return;
    const root = buffers[b.view.of];
    if (!root || root.view) throw new DeviceError("validation", `buffer ${i} (${b.label}) is a view of ${b.view.of}, which is not a root buffer`);
    if (b.view.offset % VIEW_ALIGN !== 0 || b.view.offset < 0 || b.view.offset + b.floats > root.floats) {
      throw new DeviceError("validation", `view ${b.label} at element ${b.view.offset} (+${b.floats}) does not fit aligned in ${root.label} (${root.floats})`);
    }
  });
  const widest = Math.max(0, ...kernels.map((k) => k.buffers.length));
  if (widest > limits.maxStorageBuffersPerShaderStage) {
    throw new DeviceError("limits", `this model needs ${widest} storage buffers in one kernel but the adapter allows ${limits.maxStorageBuffersPerShaderStage}`);
  }
  const largest = Math.max(0, ...kernels.flatMap((k) => k.buffers.map((b) => buffers[b]!.floats * 4)));
  if (largest > limits.maxStorageBufferBindingSize) {
    throw new DeviceError("limits", `this model binds ${largest} bytes in one storage binding but the adapter allows ${limits.maxStorageBufferBindingSize}`);
  }
  const biggest = Math.max(0, ...buffers.filter((b) => !b.view).map((b) => b.floats * 4));
  if (biggest > limits.maxBufferSize) throw new DeviceError("limits", `this model needs a ${biggest}-byte buffer but the adapter allows ${limits.maxBufferSize}`);
}

/**
 * Checks the plan against the device's limits, compiles every distinct kernel (in parallel),
 * creates the root buffers (constants filled) and the bind groups. `borrow` supplies GPU
 * buffers for some roots (by buffer index), shared with another plan and not owned by this one.
 */
export async function createResources(
  gpu: Gpu,
  buffers: readonly BufferSpec[],
  kernels: readonly KernelLaunch[],
  borrow: ReadonlyMap<number, GPUBuffer> = new Map(),
  options: { autotune?: AutotuneOptions } = {},
): Promise<Resources> {
  gpu.assertAlive();
  const { device } = gpu;
  checkPlan(gpu, buffers, kernels);
  // Explicit layouts (shared by every kernel with the same access pattern) instead of "auto",
  // so a pipeline never depends on which bindings its shader happens to use.
  const layouts = new Map<string, { bind: GPUBindGroupLayout; pipe: GPUPipelineLayout }>();
  const layoutFor = (access: readonly ("read" | "write")[]) => {
    const key = layoutKey(access);
    let l = layouts.get(key);
    if (!l) {
      const bind = device.createBindGroupLayout({
        label: `storage ${key}`,
        entries: access.map((a, binding) => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: a === "read" ? "read-only-storage" : "storage" } })),
      });
      l = { bind, pipe: device.createPipelineLayout({ bindGroupLayouts: [bind] }) };
      layouts.set(key, l);
    }
    return l;
  };
  // Identical WGSL (same primitive, attributes and shapes) compiles once; the autotuner's
  // candidates go through the same table, so the variant it picks is not compiled twice.
  const byText = new Map<string, Promise<GPUComputePipeline>>();
  const compile = (wgsl: string, k: KernelLaunch, label: string) => {
    const key = `${layoutKey(k.access)}\n${k.entryPoint}\n${wgsl}`;
    let p = byText.get(key);
    if (!p) {
      p = createComputePipeline(device, { code: wgsl, entryPoint: k.entryPoint, layout: layoutFor(k.access).pipe, label });
      byText.set(key, p);
    }
    return p;
  };
  const tuned = await chooseVariants(gpu, kernels, (b) => buffers[b]!.floats, compile, (k) => layoutFor(k.access).bind, options.autotune);
  const chosen = kernels.map((k, i) => candidatesOf(k)[tuned.choice[i]!]!);
  const t0 = performance.now();
  const pipelines = await Promise.all(kernels.map((k, i) => compile(chosen[i]!.wgsl, k, k.label)));
  const compileMs = performance.now() - t0;
  const owned: GPUBuffer[] = [];
  const placed = await withErrorScopes(device, "creating buffers", () => {
    const roots = new Map<number, GPUBuffer>();
    buffers.forEach((b, i) => {
      if (b.view) return;
      let buf = borrow.get(i);
      if (!buf) {
        // Storage bindings must be a multiple of 4 bytes and at least one element long.
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
        buf = device.createBuffer({ label: b.label, size: bytesOf(b.floats), usage });
        owned.push(buf);
      }
      roots.set(i, buf);
    });
    const out = buffers.map((b, i): Placed => ({ buffer: roots.get(b.view ? b.view.of : i)!, offset: (b.view?.offset ?? 0) * 4, size: bytesOf(b.floats) }));
    // Constants (views included) are written once; the queue orders this before any submit.
    buffers.forEach((b, i) => {
      if (b.init.kind === "fill") device.queue.writeBuffer(out[i]!.buffer, out[i]!.offset, new Float32Array(Math.max(1, b.floats)).fill(b.init.value));
    });
    return out;
  });
  const bindGroups = await withErrorScopes(device, "creating bind groups", () =>
    kernels.map((k) =>
      device.createBindGroup({ label: k.label, layout: layoutFor(k.access).bind, entries: k.buffers.map((b, binding) => ({ binding, resource: placed[b]! })) }),
    ),
  );
  const dispatch = chosen.map((c) => c.dispatch);
  // Pipelines the plan runs (candidates measured and not chosen do not count).
  const pipelineCount = new Set(kernels.map((k, i) => `${layoutKey(k.access)}\n${k.entryPoint}\n${chosen[i]!.wgsl}`)).size;
  return { placed, pipelines, bindGroups, owned, dispatch, variants: tuned.names, stats: { kernels: kernels.length, pipelines: pipelineCount, compileMs, autotuneMs: tuned.ms } };
}

/** Writes `src` (as f32) into a placed buffer, checking its length. */
export function upload(gpu: Gpu, dst: Placed, spec: BufferSpec, src: ArrayLike<number> | undefined, what: string): void {
  if (!src) throw new DeviceError("validation", `no value fed for ${what}`);
  if (src.length !== spec.floats) throw new DeviceError("validation", `${what}: fed ${src.length} values for ${spec.floats}`);
  gpu.device.queue.writeBuffer(dst.buffer, dst.offset, src instanceof Float32Array ? src : Float32Array.from(src));
}

/** Copies the given buffers into one staging buffer at the end of `encoder`, so reading back
 * is one map however many values are asked for; `read()` (after the submit) maps it. */
export function encodeReadback(device: GPUDevice, encoder: GPUCommandEncoder, sources: readonly Placed[], floats: readonly number[]): () => Promise<Float32Array[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const f of floats) {
    offsets.push(total);
    total += bytesOf(f);
  }
  const staging = device.createBuffer({ label: "readback", size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  sources.forEach((s, i) => encoder.copyBufferToBuffer(s.buffer, s.offset, staging, offsets[i]!, bytesOf(floats[i]!)));
  return async () => {
    await staging.mapAsync(GPUMapMode.READ);
    const all = staging.getMappedRange();
    const out = floats.map((f, i) => new Float32Array(all.slice(offsets[i]!, offsets[i]! + f * 4)));
    staging.unmap();
    staging.destroy();
    return out;
  };
}

/** Throws if the device reported errors outside any scope (they would otherwise be lost). */
export function checkUncaptured(gpu: Gpu, what: string): void {
  const late = gpu.takeUncapturedErrors();
  if (late.length > 0) throw new DeviceError("validation", `GPU errors while ${what}: ${late.map((e) => e.message).join("; ")}`);
}

export class Executor {
  /** Submit-to-readback time of the last run. On lavapipe the first run also JIT-compiles
   * every shader (pipeline creation returns before LLVM runs), so it is far slower. */
  lastRunMs = 0;

  private constructor(
    private readonly gpu: Gpu,
    private readonly plan: ExecPlan,
    private readonly res: Resources,
    readonly stats: ExecStats,
  ) {}

  /** Checks the plan against the device's limits, compiles every distinct kernel (in
   * parallel), creates the buffers (filled constants included) and bind groups. */
  static async create(gpu: Gpu, plan: ExecPlan, options: { autotune?: AutotuneOptions } = {}): Promise<Executor> {
    const res = await createResources(gpu, plan.buffers, plan.kernels, new Map(), options);
    return new Executor(gpu, plan, res, res.stats);
  }

  /** Per kernel: the name of the variant that runs ("register" unless a faster one was found). */
  get variants(): readonly string[] {
    return this.res.variants;
  }

  /** Uploads the feeds (as f32), runs every kernel in order in one submit, and reads back the
   * plan's outputs. */
  async run(feeds: ExecFeeds): Promise<Float32Array[]> {
    this.gpu.assertAlive();
    const { device } = this.gpu;
    const { plan, res } = this;
    return withErrorScopes(device, "running the kernels", async () => {
      plan.buffers.forEach((b, i) => {
        if (b.init.kind !== "input" && b.init.kind !== "param") return;
        const src = (b.init.kind === "input" ? feeds.inputs : feeds.params).get(b.init.name);
        upload(this.gpu, res.placed[i]!, b, src, `${b.init.kind} ${b.init.name}`);
      });
      const encoder = device.createCommandEncoder({ label: "step" });
      // One pass: WebGPU orders dispatches of a pass and makes each one's writes visible to
      // the next (every dispatch is its own usage scope).
      const pass = encoder.beginComputePass({ label: "kernels" });
      plan.kernels.forEach((_, i) => {
        pass.setPipeline(res.pipelines[i]!);
        pass.setBindGroup(0, res.bindGroups[i]!);
        // The grid of the variant chosen for this adapter.
        pass.dispatchWorkgroups(...res.dispatch[i]!);
      });
      pass.end();
      const read = encodeReadback(device, encoder, plan.outputs.map((o) => res.placed[o]!), plan.outputs.map((o) => plan.buffers[o]!.floats));
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      const out = await read();
      this.lastRunMs = performance.now() - t0;
      checkUncaptured(this.gpu, "running");
      return out;
    });
  }

  destroy(): void {
    for (const b of this.res.owned) b.destroy();
  }
}
