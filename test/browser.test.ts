// The browser claim, tested: a compiled tiny model and its bundled runtime, served from
// localhost, train in headless Chromium (WebGPU through SwiftShader) and match the same steps
// run in Node (Dawn on lavapipe). Skipped, with the reason, where Chromium or an adapter is missing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { drifac, root } from "./helpers.ts";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const BATCH = 2;
const SEED = 3;

/** Deterministic inputs and labels, the same for both sides. */
function makeBatch(manifest: { inputs: { name: string; shape: number[] }[]; tasks: { name: string; classes: string[] }[] }) {
  const inputs: Record<string, number[]> = {};
  manifest.inputs.forEach((input, m) => {
    const n = BATCH * input.shape.reduce((a, b) => a * b, 1);
    inputs[input.name] = Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + m) * 0.8);
  });
  const labels: Record<string, number[]> = {};
  manifest.tasks.forEach((t, k) => (labels[t.name] = Array.from({ length: BATCH }, (_, i) => (i + k) % t.classes.length)));
  return { size: BATCH, inputs, labels };
}

const page = `<!DOCTYPE html><meta charset="utf-8"><title>drifa browser step</title>
<script type="module">
import { CompiledRunner, readCompiled } from "./runtime.browser.js";
try {
  const read = async (rel) => { const r = await fetch(rel); if (!r.ok) throw new Error(rel + ": HTTP " + r.status); return r.text(); };
  const { manifest, shaders } = await readCompiled(read);
  const raw = JSON.parse(await read("batch.json"));
  const batch = { size: raw.size, inputs: {}, labels: {} };
  for (const [k, v] of Object.entries(raw.inputs)) batch.inputs[k] = Float32Array.from(v);
  for (const [k, v] of Object.entries(raw.labels)) batch.labels[k] = Int32Array.from(v);
  const runner = await CompiledRunner.create(manifest, shaders, { batch: ${BATCH}, seed: ${SEED} });
  const first = await runner.trainStep(batch, 1e-3, true);
  const second = await runner.trainStep(batch, 1e-3, true);
  window.result = { losses: [first.loss, second.loss], adapter: runner.gpu.adapterName };
} catch (e) {
  window.result = { error: String(e && e.stack || e) };
}
</script>`;

test("a compiled model trains in headless Chromium and matches Node", async () => {
  if (!fs.existsSync(CHROMIUM)) {
    console.log(`  skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
    return;
  }
  const { tryAcquireDevice } = await import("../runtime/device.ts");
  const probe = await tryAcquireDevice();
  if (!probe.gpu) {
    console.log(`  skipped: no WebGPU adapter in Node (${probe.reason.split("\n")[0]})`);
    return;
  }
  probe.gpu.destroy();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-browser-"));
  const out = path.join(dir, "model");
  const compiled = await drifac("compile", path.join(root, "models/resnet18.drifa"), "--set", "width=2,size=16", "--batch", String(BATCH), "-o", out);
  assert.is(compiled.code, 0, compiled.err);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, "manifest.json"), "utf8"));
  const raw = makeBatch(manifest);
  fs.writeFileSync(path.join(out, "batch.json"), JSON.stringify(raw));
  fs.writeFileSync(path.join(out, "index.html"), page);

  // Node: the same two steps through the same runtime.
  const { nodeDevice, readFrom } = await import("../runtime/compiled/node.ts");
  const { CompiledRunner, readCompiled } = await import("../runtime/compiled/runner.ts");
  const loaded = await readCompiled(readFrom(out));
  const gpu = await nodeDevice(loaded.manifest);
  const runner = await CompiledRunner.create(loaded.manifest, loaded.shaders, { batch: BATCH, seed: SEED, gpu });
  const batch = {
    size: BATCH,
    inputs: Object.fromEntries(Object.entries(raw.inputs).map(([k, v]) => [k, Float32Array.from(v)])),
    labels: Object.fromEntries(Object.entries(raw.labels).map(([k, v]) => [k, Int32Array.from(v)])),
  };
  const nodeLosses = [(await runner.trainStep(batch, 1e-3, true)).loss!, (await runner.trainStep(batch, 1e-3, true)).loss!];
  runner.destroy();
  gpu.destroy();

  const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".json": "application/json", ".wgsl": "text/plain" };
  const server = http.createServer((req, res) => {
    const file = path.join(out, decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname).replace(/^\/+/, "") || "index.html");
    if (!file.startsWith(out) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader("content-type", types[path.extname(file)] ?? "application/octet-stream");
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--no-sandbox"] });
  try {
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${port}/index.html`);
    await tab.waitForFunction(() => (window as unknown as { result?: unknown }).result, null, { timeout: 240_000 });
    const result = (await tab.evaluate(() => (window as unknown as { result: unknown }).result)) as { losses?: number[]; adapter?: string; error?: string };
    assert.not.ok(result.error, result.error);
    const browserLosses = result.losses!;
    for (let i = 0; i < 2; i++) {
      const rel = Math.abs(browserLosses[i]! - nodeLosses[i]!) / Math.abs(nodeLosses[i]!);
      assert.ok(rel < 1e-4, `step ${i + 1}: browser ${browserLosses[i]} vs node ${nodeLosses[i]} (rel ${rel})`);
    }
    console.log(`  browser (${result.adapter}) losses ${browserLosses.map((l) => l.toFixed(6)).join(", ")}; node ${nodeLosses.map((l) => l.toFixed(6)).join(", ")}`);
    assert.is.not(browserLosses[1], browserLosses[0], "the first step changed the weights");
  } finally {
    await browser.close();
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
