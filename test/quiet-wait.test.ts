// runtime/quiet-wait.ts: Dawn's busy poll is slowed to a sleep, everything else that uses
// setImmediate is untouched, and on a software adapter a real wait for the GPU goes through it
// (if a new `webgpu` package queued its poll differently, the GPU test says so).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DeviceError, acquireDevice } from "../runtime/device.ts";
import { installQuietWait, pollSleepMs, quietWaitStatus } from "../runtime/quiet-wait.ts";
import { gpuForTests } from "./helpers.ts";

const { gpu, gpuTest } = await gpuForTests("quiet-wait");

// A native function without a name or parameters, as Dawn's poll is (and harmless to run).
const nativeNoArgs = Function.prototype as () => void;

test("a run of polls sleeps a twentieth of how long it has run, at most 1 ms, after its first 2 ms", () => {
  assert.is(pollSleepMs(0), 0, "the first poll of a run");
  assert.is(pollSleepMs(1.9), 0, "a short wait keeps Dawn's pace");
  assert.is(pollSleepMs(2), 0.1);
  assert.is(pollSleepMs(10), 0.5);
  assert.is(pollSleepMs(40), 1);
  assert.is(pollSleepMs(60_000), 1);
});

test("a poll queued from outside a poll starts a new wait: back-to-back short waits do not sleep", () => {
  const release = installQuietWait();
  try {
    const before = quietWaitStatus();
    assert.ok(before.installed);
    // 40 ms of polls queued from here, none from inside a poll: each is the first of its wait.
    const start = performance.now();
    let n = 0;
    while (performance.now() - start < 40) {
      setImmediate(nativeNoArgs);
      n++;
    }
    const after = quietWaitStatus();
    assert.is(after.polls, before.polls + n, "each counted");
    assert.is(after.sleptMs, before.sleptMs, `slept ${(after.sleptMs - before.sleptMs).toFixed(2)} ms over ${n} new waits`);
  } finally {
    release();
  }
});

test("everything else that uses setImmediate is untouched", async () => {
  const original = globalThis.setImmediate;
  const release = installQuietWait();
  try {
    const polls = quietWaitStatus().polls;
    let ran = false;
    const cancelled = setImmediate(() => (ran = true));
    clearImmediate(cancelled);
    const args = await new Promise<unknown[]>((resolve) => setImmediate((...a: unknown[]) => resolve(a), 1, "two"));
    assert.equal(args, [1, "two"]);
    await new Promise((resolve) => setImmediate(resolve)); // a native resolver: one parameter
    assert.is(ran, false, "clearImmediate still cancels");
    assert.is(quietWaitStatus().polls, polls, "only Dawn's poll is slowed");
  } finally {
    release();
  }
  assert.is(globalThis.setImmediate, original, "the last release puts setImmediate back");
});

test("installs nest: one wrapper, and only the last release restores setImmediate", () => {
  // Test files share a process: a device acquired elsewhere may have installed it already.
  const wasInstalled = quietWaitStatus().installed;
  const before = globalThis.setImmediate;
  const a = installQuietWait();
  const wrapped = globalThis.setImmediate;
  if (!wasInstalled) assert.is.not(wrapped, before, "installing wraps setImmediate");
  const b = installQuietWait();
  assert.is(globalThis.setImmediate, wrapped, "a second install shares the wrapper");
  a();
  a(); // releasing twice counts once
  assert.ok(quietWaitStatus().installed);
  assert.is(globalThis.setImmediate, wrapped);
  b();
  assert.is(globalThis.setImmediate, before);
  assert.is(quietWaitStatus().installed, wasInstalled);
});

test("DRIFA_QUIET_WAIT accepts on and off only, checked before any adapter is asked for", async () => {
  const saved = process.env.DRIFA_QUIET_WAIT;
  process.env.DRIFA_QUIET_WAIT = "yes";
  let asked = false;
  try {
    await acquireDevice({ gpu: { requestAdapter: async () => ((asked = true), null) } as unknown as GPU });
    assert.unreachable("accepted DRIFA_QUIET_WAIT=yes");
  } catch (e) {
    assert.instance(e, DeviceError);
    assert.match((e as Error).message, 'DRIFA_QUIET_WAIT must be on or off, not "yes"');
    assert.is(asked, false);
  } finally {
    if (saved === undefined) delete process.env.DRIFA_QUIET_WAIT;
    else process.env.DRIFA_QUIET_WAIT = saved;
  }
});

gpuTest("on a software adapter the device waits quietly, and a real wait for the GPU goes through Dawn's poll", async () => {
  const info = gpu!.adapter.info;
  assert.is(gpu!.quietWait, process.env.DRIFA_QUIET_WAIT ? process.env.DRIFA_QUIET_WAIT === "on" : info.isFallbackAdapter === true);
  if (!gpu!.quietWait) return;
  const device = gpu!.device;
  // One invocation that loops long enough (tens of ms on lavapipe) for Dawn to poll many times.
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main() {
  var x = 1u;
  for (var i = 0u; i < 50000000u; i++) { x = x * 1664525u + 1013904223u; }
  out[0] = x;
}`,
  });
  const pipeline = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
  const out = device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const read = device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: out } }] }));
  pass.dispatchWorkgroups(1);
  pass.end();
  encoder.copyBufferToBuffer(out, 0, read, 0, 4);
  const before = quietWaitStatus();
  const start = performance.now();
  device.queue.submit([encoder.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const waited = performance.now() - start;
  const value = new Uint32Array(read.getMappedRange())[0]!;
  read.unmap();
  let x = 1;
  for (let i = 0; i < 50_000_000; i++) x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
  assert.is(value, x, "the kernel's result");
  const after = quietWaitStatus();
  assert.ok(after.polls > before.polls + 2, `Dawn polled ${after.polls - before.polls} times through the wrapper during the wait`);
  // After the wait's first 2 ms every poll sleeps 0.1-1 ms: a wait of 20 ms or more sleeps often.
  assert.ok(waited >= 20, `the kernel ran ${waited.toFixed(1)} ms: too short to test the sleeps`);
  assert.ok(after.sleeps >= before.sleeps + 10, `${after.sleeps - before.sleeps} polls slept in a wait of ${waited.toFixed(1)} ms`);
  assert.ok(after.sleptMs > before.sleptMs + 5);
  out.destroy();
  read.destroy();
});

test.after(() => gpu?.destroy());
test.run();
