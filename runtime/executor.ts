/// <reference types="@webgpu/types" />
// Runs a list of compute kernels over a set of f32 storage buffers as ONE command encoder and
// ONE submit: the "graph capture" shape the generated host code will have (pipelines, buffers
// and bind groups created once; each run only uploads feeds, submits, and reads back what was
// asked). It knows nothing about the IR: the compiler turns a graph into an ExecPlan
// (compiler/codegen/plan.ts), so this file stays importable by a browser bundle.
import { DeviceError, type Gpu, createComputePipeline, withErrorScopes } from "./device.ts";

/** Where a buffer's contents come from before the kernels run. */
export type BufferInit = { kind: "fill"; value: number } | { kind: "input"; name: string } | { kind: "param"; name: string } | { kind: "none" };

export interface BufferSpec {
  label: string;
  /** Number of f32 elements. */
  floats: number;
  init: BufferInit;
}

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
}

function layoutKey(access: readonly ("read" | "write")[]): string {
  return access.map((a) => (a === "read" ? "r" : "w")).join("");
}

export class Executor {
  /** Submit-to-readback time of the last run. On lavapipe the first run also JIT-compiles
   * every shader (pipeline creation returns before LLVM runs), so it is far slower. */
  lastRunMs = 0;

  private constructor(
    private readonly gpu: Gpu,
    private readonly plan: ExecPlan,
    private readonly buffers: GPUBuffer[],
    private readonly pipelines: GPUComputePipeline[],
    private readonly bindGroups: GPUBindGroup[],
    readonly stats: ExecStats,
  ) {}

  /** Checks the plan against the device's limits, compiles every distinct kernel (in
   * parallel), creates the buffers (filled constants included) and bind groups. */
  static async create(gpu: Gpu, plan: ExecPlan): Promise<Executor> {
    gpu.assertAlive();
    const { device, limits } = gpu;
    const widest = Math.max(0, ...plan.kernels.map((k) => k.buffers.length));
    if (widest > limits.maxStorageBuffersPerShaderStage) {
      throw new DeviceError("limits", `this model needs ${widest} storage buffers in one kernel but the adapter allows ${limits.maxStorageBuffersPerShaderStage}`);
    }
    const largest = Math.max(0, ...plan.buffers.map((b) => b.floats * 4));
    if (largest > limits.maxStorageBufferBindingSize) {
      throw new DeviceError("limits", `this model binds ${largest} bytes in one storage binding but the adapter allows ${limits.maxStorageBufferBindingSize}`);
    }
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
    const t0 = performance.now();
    // Identical WGSL (same primitive, attributes and shapes) compiles once.
    const byText = new Map<string, Promise<GPUComputePipeline>>();
    const pipelinePromises = plan.kernels.map((k) => {
      const key = `${layoutKey(k.access)}\n${k.entryPoint}\n${k.wgsl}`;
      let p = byText.get(key);
      if (!p) {
        p = createComputePipeline(device, { code: k.wgsl, entryPoint: k.entryPoint, layout: layoutFor(k.access).pipe, label: k.label });
        byText.set(key, p);
      }
      return p;
    });
    const pipelines = await Promise.all(pipelinePromises);
    const compileMs = performance.now() - t0;
    const buffers = await withErrorScopes(device, "creating buffers", () =>
      plan.buffers.map((b) => {
        // Storage bindings must be a multiple of 4 bytes and at least one element long.
        const size = Math.max(4, b.floats * 4);
        const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
        const fill = b.init.kind === "fill";
        const buf = device.createBuffer({ label: b.label, size, usage, mappedAtCreation: fill });
        if (fill) {
          new Float32Array(buf.getMappedRange()).fill((b.init as { value: number }).value);
          buf.unmap();
        }
        return buf;
      }),
    );
    const bindGroups = await withErrorScopes(device, "creating bind groups", () =>
      plan.kernels.map((k) =>
        device.createBindGroup({ label: k.label, layout: layoutFor(k.access).bind, entries: k.buffers.map((b, binding) => ({ binding, resource: { buffer: buffers[b]! } })) }),
      ),
    );
    return new Executor(gpu, plan, buffers, pipelines, bindGroups, { kernels: plan.kernels.length, pipelines: byText.size, compileMs });
  }

  /** Uploads the feeds (as f32), runs every kernel in order in one submit, and reads back the
   * plan's outputs. */
  async run(feeds: ExecFeeds): Promise<Float32Array[]> {
    this.gpu.assertAlive();
    const { device } = this.gpu;
    const { plan, buffers } = this;
    return withErrorScopes(device, "running the kernels", async () => {
      plan.buffers.forEach((b, i) => {
        if (b.init.kind !== "input" && b.init.kind !== "param") return;
        const src = (b.init.kind === "input" ? feeds.inputs : feeds.params).get(b.init.name);
        if (!src) throw new DeviceError("validation", `no value fed for ${b.init.kind} ${b.init.name}`);
        if (src.length !== b.floats) throw new DeviceError("validation", `${b.init.kind} ${b.init.name}: fed ${src.length} values for ${b.floats}`);
        device.queue.writeBuffer(buffers[i]!, 0, Float32Array.from(src));
      });
      const encoder = device.createCommandEncoder({ label: "step" });
      // One pass: WebGPU orders dispatches of a pass and makes each one's writes visible to
      // the next (every dispatch is its own usage scope).
      const pass = encoder.beginComputePass({ label: "kernels" });
      plan.kernels.forEach((k, i) => {
        pass.setPipeline(this.pipelines[i]!);
        pass.setBindGroup(0, this.bindGroups[i]!);
        pass.dispatchWorkgroups(...k.dispatch);
      });
      pass.end();
      // Every output goes into one staging buffer, so reading back is one map however many
      // values are asked for.
      const offsets: number[] = [];
      let total = 0;
      for (const o of plan.outputs) {
        offsets.push(total);
        total += Math.max(4, plan.buffers[o]!.floats * 4);
      }
      const staging = device.createBuffer({ label: "readback", size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      plan.outputs.forEach((o, i) => encoder.copyBufferToBuffer(buffers[o]!, 0, staging, offsets[i]!, Math.max(4, plan.buffers[o]!.floats * 4)));
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      this.lastRunMs = performance.now() - t0;
      const all = staging.getMappedRange();
      const out = plan.outputs.map((o, i) => new Float32Array(all.slice(offsets[i]!, offsets[i]! + plan.buffers[o]!.floats * 4)));
      staging.unmap();
      staging.destroy();
      const late = this.gpu.takeUncapturedErrors();
      if (late.length > 0) throw new DeviceError("validation", `GPU errors while running: ${late.map((e) => e.message).join("; ")}`);
      return out;
    });
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
