/// <reference types="@webgpu/types" />
// One way to get a WebGPU device, in Node (through the `webgpu` package, Dawn) and in browsers
// (navigator.gpu), with the checks a compiled model needs before it allocates anything: the
// limits it needs against what the adapter offers (clear errors instead of a validation error
// deep inside a step), device loss reported once and clearly, and GPU work run inside error
// scopes, because a WGSL or validation error in WebGPU does not throw: the work is dropped and
// garbage comes back (see docs on TensorFlow.js in shared/design/performance.md).
//
// The runtime never imports compiler/ or grammar/: a browser bundle carries this file alone.
import { canQuietWait, installQuietWait } from "./quiet-wait.ts";
import { type HostInfo, setupHint } from "./setup-hint.ts";

export type DeviceErrorKind = "no-webgpu" | "no-adapter" | "limits" | "device" | "lost" | "validation" | "out-of-memory" | "internal" | "shader";

export class DeviceError extends Error {
  constructor(
    readonly kind: DeviceErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "DeviceError";
  }
}

/** What a compiled model needs from the device; each is checked against the adapter up front. */
export interface DeviceRequirements {
  /** Storage buffers bound by the widest kernel. */
  storageBuffersPerStage?: number;
  /** Largest single buffer, in bytes. */
  bufferSize?: number;
  /** Largest storage binding, in bytes. */
  storageBindingSize?: number;
  /** Largest workgroup (x * y * z invocations). */
  workgroupInvocations?: number;
  /** Workgroup memory of the hungriest kernel, in bytes. */
  workgroupStorageSize?: number;
}

export interface AcquireOptions {
  requirements?: DeviceRequirements;
  powerPreference?: GPUPowerPreference;
  /** Gives up on requestAdapter after this long (a broken driver can hang); default 20 s. */
  timeoutMs?: number;
  /** Called once if the device is lost for any reason but our own destroy(). */
  onLost?: (error: DeviceError) => void;
  /** A GPU object to use instead of navigator.gpu / the `webgpu` package (tests, workers). */
  gpu?: GPU;
  /** In Node, wait for GPU work without Dawn's busy poll (runtime/quiet-wait.ts). Default: on
   * for software adapters (lavapipe, SwiftShader), whose kernels run on the cores the poll
   * would take, off for hardware; the environment variable DRIFA_QUIET_WAIT=on|off overrides
   * the default. */
  quietWait?: boolean;
}

export interface Gpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  /** "vendor architecture description" of the adapter, for reports. */
  adapterName: string;
  /** The device's limits (what was requested, which is what kernels may use). */
  limits: GPUSupportedLimits;
  /** Resolves when the device is lost, with the reason. */
  lost: Promise<GPUDeviceLostInfo>;
  /** Throws a DeviceError if the device has been lost. */
  assertAlive(): void;
  /** Errors reported outside any error scope since the last call (drained). */
  takeUncapturedErrors(): GPUError[];
  /** Whether waits on this device skip Dawn's busy poll (see AcquireOptions.quietWait). */
  quietWait: boolean;
  /** Destroys the device; in Node this also lets the process exit. */
  destroy(): void;
}

const MiB = 1024 * 1024;

interface NodeWebGPU {
  create(options: string[]): GPU;
  globals: Record<string, unknown>;
}

let nodeGpu: GPU | undefined;

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string";
}

/** One Dawn instance per process; its globals (GPUBufferUsage, ...) are installed where missing. */
async function nodeWebGPU(): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  // A variable specifier keeps bundlers from pulling the Node-only package into a browser build.
  const specifier = "webgpu";
  let mod: NodeWebGPU;
  try {
    mod = (await import(/* @vite-ignore */ specifier)) as NodeWebGPU;
  } catch (e) {
    throw new DeviceError("no-webgpu", `the npm package \`webgpu\` (Dawn for Node) could not be loaded: ${(e as Error).message}\nRun \`npm install\` (drifa depends on webgpu@0.6.2).`);
  }
  for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  nodeGpu = mod.create([]);
  return nodeGpu;
}

async function hostInfo(): Promise<HostInfo> {
  if (!isNode()) return { host: "browser" };
  const platform = (globalThis as unknown as { process: { platform: string } }).process.platform;
  let osRelease: string | undefined;
  if (platform === "linux") {
    try {
      const fsModule = "node:fs"; // a variable, as for "webgpu": keeps bundlers out of Node's modules
      const fs = (await import(/* @vite-ignore */ fsModule)) as { readFileSync(p: string, enc: "utf8"): string };
      osRelease = fs.readFileSync("/etc/os-release", "utf8");
    } catch {
      osRelease = undefined;
    }
  }
  return osRelease === undefined ? { host: "node", platform } : { host: "node", platform, osRelease };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeviceError("no-adapter", `${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function bytes(n: number): string {
  return n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${n} bytes`;
}

/** Throws a DeviceError naming the first requirement the limits do not meet. */
export function checkLimits(limits: GPUSupportedLimits, need: DeviceRequirements): void {
  const rows: [number | undefined, number, (n: number, have: number) => string][] = [
    [need.storageBuffersPerStage, limits.maxStorageBuffersPerShaderStage, (n, h) => `this model needs ${n} storage buffers in one kernel but the adapter allows ${h}`],
    [need.bufferSize, limits.maxBufferSize, (n, h) => `this model needs a ${bytes(n)} buffer but the adapter allows ${bytes(h)}`],
    [need.storageBindingSize, limits.maxStorageBufferBindingSize, (n, h) => `this model binds ${bytes(n)} in one storage binding but the adapter allows ${bytes(h)}`],
    [need.workgroupInvocations, limits.maxComputeInvocationsPerWorkgroup, (n, h) => `this model uses workgroups of ${n} invocations but the adapter allows ${h}`],
    [need.workgroupStorageSize, limits.maxComputeWorkgroupStorageSize, (n, h) => `this model needs ${bytes(n)} of workgroup memory but the adapter allows ${bytes(h)}`],
  ];
  for (const [n, have, message] of rows) if (n !== undefined && n > have) throw new DeviceError("limits", message(n, have));
}

/** Finds an adapter and requests a device with the adapter's best storage limits (up to 16
 * storage buffers per stage: lavapipe offers 16, the WebGPU default is 8). */
export async function acquireDevice(options: AcquireOptions = {}): Promise<Gpu> {
  const gpu = options.gpu ?? (isNode() ? await nodeWebGPU() : (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu);
  if (!gpu) throw new DeviceError("no-webgpu", setupHint(await hostInfo()));
  const quietWaitSetting = options.quietWait ?? quietWaitFromEnv();
  const timeoutMs = options.timeoutMs ?? 20_000;
  const request: GPURequestAdapterOptions = options.powerPreference ? { powerPreference: options.powerPreference } : {};
  const adapter = await withTimeout(gpu.requestAdapter(request), timeoutMs, "requestAdapter()");
  if (!adapter) throw new DeviceError("no-adapter", setupHint(await hostInfo()));
  const need = options.requirements ?? {};
  checkLimits(adapter.limits, need);
  const al = adapter.limits;
  const requiredLimits: Record<string, number> = {
    maxStorageBuffersPerShaderStage: Math.min(16, al.maxStorageBuffersPerShaderStage),
    maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
    maxBufferSize: al.maxBufferSize,
  };
  let device: GPUDevice;
  try {
    device = await withTimeout(adapter.requestDevice({ requiredLimits }), timeoutMs, "requestDevice()");
  } catch (e) {
    throw e instanceof DeviceError ? e : new DeviceError("device", `requestDevice failed: ${(e as Error).message}`);
  }
  const info = adapter.info;
  const adapterName = [info?.vendor, info?.architecture, info?.description].filter((s) => s).join(" ") || "unknown adapter";
  const quietWait = isNode() && canQuietWait() && (quietWaitSetting ?? info?.isFallbackAdapter === true);
  const releaseQuietWait = quietWait ? installQuietWait() : () => {};
  let lostInfo: GPUDeviceLostInfo | undefined;
  let destroyed = false;
  const uncaptured: GPUError[] = [];
  device.addEventListener("uncapturederror", (ev) => uncaptured.push((ev as GPUUncapturedErrorEvent).error));
  const lost = device.lost.then((li) => {
    lostInfo = li;
    if (!destroyed && options.onLost) options.onLost(lostError(li, adapterName));
    return li;
  });
  return {
    device,
    adapter,
    adapterName,
    limits: device.limits,
    lost,
    assertAlive() {
      if (lostInfo) throw lostError(lostInfo, adapterName);
    },
    takeUncapturedErrors: () => uncaptured.splice(0),
    quietWait,
    destroy() {
      destroyed = true;
      device.destroy();
      releaseQuietWait();
    },
  };
}

/** DRIFA_QUIET_WAIT=on|off, or undefined when unset (anything else is an error: a typo should
 * not silently change how the runtime waits). */
export function quietWaitFromEnv(): boolean | undefined {
  const v = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DRIFA_QUIET_WAIT;
  if (v === undefined || v === "") return undefined;
  if (v === "on" || v === "off") return v === "on";
  throw new DeviceError("device", `DRIFA_QUIET_WAIT must be on or off, not ${JSON.stringify(v)}`);
}

function lostError(li: GPUDeviceLostInfo, adapterName: string): DeviceError {
  const why = li.reason === "destroyed" ? "it was destroyed" : li.message || "unknown reason";
  return new DeviceError("lost", `the GPU device (${adapterName}) was lost: ${why}`);
}

/** Like acquireDevice, but resolves to null (with the reason) when there is no adapter at all,
 * for callers that can do without a GPU (tests skip, tools fall back to the interpreter). */
export async function tryAcquireDevice(options: AcquireOptions = {}): Promise<{ gpu: Gpu; reason?: undefined } | { gpu: null; reason: string }> {
  try {
    return { gpu: await acquireDevice(options) };
  } catch (e) {
    if (e instanceof DeviceError && (e.kind === "no-webgpu" || e.kind === "no-adapter")) return { gpu: null, reason: e.message };
    throw e;
  }
}

const SCOPES: GPUErrorFilter[] = ["validation", "out-of-memory", "internal"];

/** Runs `fn` inside validation, out-of-memory and internal error scopes and throws a
 * DeviceError naming `what` if any of them caught an error (WebGPU reports these errors
 * asynchronously instead of throwing). The scopes are popped even when `fn` throws. */
export async function withErrorScopes<T>(device: GPUDevice, what: string, fn: () => T | Promise<T>): Promise<T> {
  for (const s of SCOPES) device.pushErrorScope(s);
  let result: T | undefined;
  let thrown: unknown;
  let failed = false;
  try {
    result = await fn();
  } catch (e) {
    failed = true;
    thrown = e;
  }
  // Scopes are a stack: pop in reverse order of pushing.
  const errors: [GPUErrorFilter, GPUError | null][] = [];
  for (const s of [...SCOPES].reverse()) errors.push([s, await device.popErrorScope()]);
  if (failed) throw thrown;
  const first = errors.reverse().find(([, e]) => e !== null);
  if (first) throw new DeviceError(first[0], `${what}: ${first[0]} error: ${first[1]!.message.trim()}`);
  return result as T;
}

/** Formats compilation messages with the offending source line, like a compiler would. */
export function formatCompilationMessages(label: string, code: string, messages: readonly GPUCompilationMessage[]): string {
  const lines = code.split("\n");
  return messages
    .map((m) => {
      const src = lines[m.lineNum - 1];
      const caret = src === undefined ? "" : `\n    ${src}\n    ${" ".repeat(Math.max(0, m.linePos - 1))}^`;
      return `${label}:${m.lineNum}:${m.linePos}: ${m.type}: ${m.message}${caret}`;
    })
    .join("\n");
}

/** Creates a shader module and throws a DeviceError ("shader") with the WGSL compiler's
 * messages if it does not compile. */
export async function compileShader(device: GPUDevice, code: string, label: string): Promise<GPUShaderModule> {
  let module!: GPUShaderModule;
  let info!: GPUCompilationInfo;
  try {
    await withErrorScopes(device, `shader ${label}`, async () => {
      module = device.createShaderModule({ code, label });
      info = await module.getCompilationInfo();
    });
  } catch (e) {
    // The scope error repeats the first message; getCompilationInfo has them all, with places.
    if (info?.messages.some((m) => m.type === "error")) throw new DeviceError("shader", `WGSL of ${label} does not compile:\n${formatCompilationMessages(label, code, info.messages)}`);
    throw e;
  }
  const errors = info.messages.filter((m) => m.type === "error");
  if (errors.length > 0) throw new DeviceError("shader", `WGSL of ${label} does not compile:\n${formatCompilationMessages(label, code, info.messages)}`);
  return module;
}

/** Compiles WGSL and creates a compute pipeline, asynchronously (shader compilation is slow on
 * lavapipe: create pipelines once, all at once). Errors carry the compiler's messages. */
export async function createComputePipeline(
  device: GPUDevice,
  desc: { code: string; entryPoint: string; layout: GPUPipelineLayout | "auto"; label: string },
): Promise<GPUComputePipeline> {
  const module = await compileShader(device, desc.code, desc.label);
  return withErrorScopes(device, `pipeline ${desc.label}`, async () => {
    try {
      return await device.createComputePipelineAsync({ label: desc.label, layout: desc.layout, compute: { module, entryPoint: desc.entryPoint } });
    } catch (e) {
      throw new DeviceError("shader", `pipeline ${desc.label} could not be created: ${(e as Error).message}`);
    }
  });
}
