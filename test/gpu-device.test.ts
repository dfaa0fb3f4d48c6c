// runtime/device.ts and the executor's guards: limits checked up front with clear messages,
// the no-adapter hint, WGSL compilation errors and validation errors surfaced as exceptions
// (WebGPU itself only reports them asynchronously), device loss, and the codegen's binding cap.
// The tests that need an adapter are skipped without one.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { CodegenError, kernelFor } from "../compiler/codegen/wgsl/index.ts";
import { Graph } from "../compiler/ir/graph.ts";
import { DeviceError, checkLimits, compileShader, tryAcquireDevice, withErrorScopes } from "../runtime/device.ts";
import { Executor } from "../runtime/executor.ts";
import { setupHint } from "../runtime/setup-hint.ts";
import { gpuForTests } from "./helpers.ts";

const { gpu, gpuTest } = await gpuForTests("gpu-device");

test("limits are checked up front with messages that say what and how much", () => {
  const limits = { maxStorageBuffersPerShaderStage: 8, maxBufferSize: 256 * 1024 * 1024, maxStorageBufferBindingSize: 128 * 1024 * 1024 } as GPUSupportedLimits;
  assert.throws(() => checkLimits(limits, { storageBuffersPerStage: 12 }), (e: Error) => e instanceof DeviceError && e.message === "this model needs 12 storage buffers in one kernel but the adapter allows 8");
  assert.throws(() => checkLimits(limits, { storageBindingSize: 200 * 1024 * 1024 }), /binds 200 MiB in one storage binding but the adapter allows 128 MiB/);
  checkLimits(limits, { storageBuffersPerStage: 8, bufferSize: 1024 });
});

test("no adapter: the error says exactly what to install", async () => {
  const debian = setupHint({ host: "node", platform: "linux", osRelease: 'ID=debian\nVERSION_CODENAME=bookworm\n' });
  assert.match(debian, "apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1");
  assert.match(debian, "Suites: bookworm-backports");
  assert.match(debian, "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg");
  assert.ok(debian.indexOf("bookworm") < debian.indexOf("Fedora"), "the Debian instructions come first on Debian");
  assert.match(setupHint({ host: "browser" }), "navigator.gpu");
  const none = await tryAcquireDevice({ gpu: { requestAdapter: async () => null } as unknown as GPU });
  assert.is(none.gpu, null);
  assert.match(none.reason ?? "", "No WebGPU adapter was found");
});

test("a kernel binds at most 8 storage buffers", () => {
  const g = new Graph();
  const parts = Array.from({ length: 8 }, (_, i) => g.input(`x${i}`, [2, 1]));
  const cat = g.emit("concat", parts, { axis: 1 });
  assert.throws(() => kernelFor(g, cat), (e: Error) => e instanceof CodegenError && /at most 8 storage buffers/.test(e.message));
  const ok = g.emit("concat", parts.slice(0, 7), { axis: 1 });
  assert.is(kernelFor(g, ok).bindings.length, 8);
});

gpuTest("a WGSL error throws with the compiler's message, line and column", async () => {
  const code = "@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_name;\n}\n";
  try {
    await compileShader(gpu!.device, code, "broken");
    assert.unreachable("compiled");
  } catch (e) {
    assert.instance(e, DeviceError);
    assert.is((e as DeviceError).kind, "shader");
    assert.match((e as Error).message, /broken:3:\d+: error: .*undefined_name/);
  }
});

gpuTest("validation errors inside withErrorScopes throw instead of being dropped", async () => {
  const device = gpu!.device;
  try {
    // MAP_READ may only be combined with COPY_DST.
    await withErrorScopes(device, "bad buffer", () => device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE }));
    assert.unreachable("no error");
  } catch (e) {
    assert.instance(e, DeviceError);
    assert.is((e as DeviceError).kind, "validation");
    assert.match((e as Error).message, /^bad buffer: validation error: /);
  }
  assert.equal(await withErrorScopes(device, "fine", () => 42), 42);
});

gpuTest("the executor refuses a kernel wider than the device's storage-buffer limit", async () => {
  const n = gpu!.limits.maxStorageBuffersPerShaderStage + 1;
  const plan = {
    buffers: Array.from({ length: n }, (_, i) => ({ label: `b${i}`, floats: 1, init: { kind: "none" as const } })),
    kernels: [{ label: "wide", wgsl: "", entryPoint: "main", buffers: Array.from({ length: n }, (_, i) => i), access: Array.from({ length: n }, () => "read" as const), workgroupSize: [1, 1, 1] as [number, number, number], dispatch: [1, 1, 1] as [number, number, number] }],
    outputs: [],
  };
  await Executor.create(gpu!, plan).then(
    () => assert.unreachable("created"),
    (e: Error) => assert.is(e.message, `this model needs ${n} storage buffers in one kernel but the adapter allows ${n - 1}`),
  );
});

gpuTest("device loss is reported: assertAlive throws, onLost is not called for our own destroy", async () => {
  let called = false;
  const second = await tryAcquireDevice({ onLost: () => (called = true) });
  const g = second.gpu!;
  g.assertAlive();
  g.destroy();
  const info = await g.lost;
  assert.is(info.reason, "destroyed");
  assert.throws(() => g.assertAlive(), /was lost: it was destroyed/);
  assert.is(called, false);
});

test.after(() => gpu?.destroy());

test.run();
