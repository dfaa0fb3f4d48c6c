// Grad-CAM (compiler/codegen/gradcam-plan.ts, runtime/compiled/gradcam.ts, `drifac gradcam`):
// which activation each modality explains; the compiled plan's maps, activations and gradients on
// the GPU against the float64 interpreter (an autodiff graph built here, the map computed in
// plain JS) for a trained two-modality model, for the predicted class, a fixed class and with
// a modality left out; the command's PNG overlays, gradcam.json and page; clear errors for a
// missing run and bad data, and --skip-bad's count. The model is a small conv net with a MIFA
// between two stages, so its maps are 8x8 (DRIFA-Net's at 16x16 inputs are 1x1).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decode } from "fast-png";
import fs from "node:fs";
import path from "node:path";
import { checkFile } from "../compiler/check/index.ts";
import type { Program } from "../compiler/check/program.ts";
import { gradcamTargets } from "../compiler/codegen/gradcam-plan.ts";
import { differentiate } from "../compiler/ir/autodiff.ts";
import { mul, sumTo } from "../compiler/ir/emit.ts";
import { evaluate } from "../compiler/ir/interpret.ts";
import { lower } from "../compiler/ir/lower.ts";
import { loadSafetensors } from "../runtime/checkpoint/index.ts";
import { readFrom } from "../runtime/compiled/node.ts";
import { GradcamRunner } from "../runtime/compiled/gradcam.ts";
import { hydrate } from "../runtime/compiled/manifest.ts";
import { CompiledRunner, readCompiled } from "../runtime/compiled/runner.ts";
import { imageSources } from "../runtime/report/index.ts";
import type { Batch } from "../runtime/trainer/types.ts";
import { bindData, evalLoader, loadDataArgs, toModelBatch } from "../runtime/workflow/index.ts";
import { drifac, gpuForTests, root, scratch, TINY_MODEL } from "./helpers.ts";



const dir = scratch({ "tiny.drifa": TINY_MODEL });
const model = path.join(dir, "tiny.drifa");
const data = path.join(dir, "data");
const run = path.join(dir, "run");
const dataArgs = (skin = path.join(data, "skin")) => ["--data", `skin=${skin}`, "--data", `cervix=${path.join(data, "cervix")}`];
const { gpu, gpuTest } = await gpuForTests("gradcam");

function program(file: string, settings: Record<string, string> = {}): Program {
  const r = checkFile(file, { settings });
  assert.ok(r.programs[0], r.diagnostics.map((d) => d.message).join("\n"));
  return r.programs[0]!;
}

test.before(async () => {
  const r = await drifac("synth", "--out", data, "--per-class", "4", "--size", "16");
  // uvu reports a failing hook as failed tests with no message: say why here.
  if (r.code !== 0) console.error(`[gradcam] drifac synth failed:\n${r.err}`);
  assert.is(r.code, 0, r.err);
  if (!gpu) return;
  const t = await drifac("train", model, ...dataArgs(), "--epochs", "1", "--out", run, "--no-progress");
  if (t.code !== 0) console.error(`[gradcam] drifac train failed:\n${t.err}`);
  assert.is(t.code, 0, t.err);
});
test.after(() => {
  gpu?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("each modality's last convolution stage is the activation explained", () => {
  const scopes = (file: string, settings?: Record<string, string>) => Object.fromEntries(gradcamTargets(program(file, settings)).map((t) => [t.input, `${t.scope} ${t.node.op}`]));
  const small = { width: "2", size: "16" };
  assert.equal(scopes(path.join(root, "models/drifa.drifa"), small), { skin: "skin.stage4.block2 relu", cervix: "cervix.stage4.block2 relu" });
  assert.equal(scopes(path.join(root, "models/drifa-alg1.drifa"), small), { skin: "skin.stage4.mfa mul", cervix: "cervix.stage4.mfa mul" });
  const brats = scopes(path.join(root, "models/drifa-brats.drifa"), small);
  assert.equal(Object.keys(brats), ["brats_t1", "brats_t1ce", "brats_t2", "brats_flair"]);
  assert.is(brats.brats_t1ce, "t1ce.stage4.block2 relu");
  // Top-level layers are placed by their parameter paths, and the relu after the conv is taken;
  // MIFA's per-modality convolutions (scope "mifa", shared by both inputs) do not name a branch.
  assert.equal(scopes(model), { skin: "skin.conv2 relu", cervix: "cervix.conv2 relu" });
});

/** A batch of the synthetic data, as `drifac gradcam` feeds it. */
async function dataBatch(manifest: CompiledRunner["manifest"], batch: number): Promise<Batch> {
  const loaded = await loadDataArgs([`skin=${path.join(data, "skin")}`, `cervix=${path.join(data, "cervix")}`]);
  const binding = bindData(manifest, loaded.data);
  for await (const lb of evalLoader(binding, { batch, seed: 0 }).epoch(0)) return toModelBatch(lb, binding);
  throw new Error("no batch");
}

/** Float64 reference: activation, gradient of sum(logits_task * one_hot(targets)) and the map. */
function reference(p: Program, state: Map<string, Float32Array>, inputs: Record<string, Float32Array>, task: string, targets: Int32Array) {
  const n = targets.length;
  const low = lower(p, { batch: n, mode: "infer" });
  const g = low.graph;
  const t = low.tasks.find((x) => x.name === task)!;
  const k = g.shapeOf(t.logits)[1]!;
  const score = sumTo(g, mul(g, t.logits, g.input("mask", [n, k])), [], []);
  const acts = gradcamTargets(p).map((x) => ({ input: x.input, id: low.values.get(x.node.id)! }));
  const grads = differentiate(g, score, acts.map((a) => a.id)).byValue;
  const mask = new Float64Array(n * k);
  targets.forEach((c, i) => (mask[i * k + c] = 1));
  const feeds = new Map<string, Float64Array>([["mask", mask]]);
  for (const i of p.inputs) feeds.set(i.name, Float64Array.from(inputs[i.name] ?? new Float32Array(numelOf(g.shapeOf(g.inputs.get(i.name)!)))));
  const params = new Map([...state].map(([name, v]) => [name, Float64Array.from(v)]));
  const vals = evaluate(g, { inputs: feeds, params }, [...acts.flatMap((a) => [a.id, grads.get(a.id)!]), t.logits]);
  return Object.fromEntries(
    acts.map((a, j) => {
      const [, c, h, w] = g.shapeOf(a.id) as [number, number, number, number];
      const act = vals[2 * j]!;
      const grad = vals[2 * j + 1]!;
      const cam = new Float64Array(n * h * w);
      for (let s = 0; s < n; s++) {
        for (let ch = 0; ch < c; ch++) {
          let weight = 0;
          for (let q = 0; q < h * w; q++) weight += grad[(s * c + ch) * h * w + q]!;
          weight /= h * w;
          for (let q = 0; q < h * w; q++) cam[s * h * w + q] += weight * act[(s * c + ch) * h * w + q]!;
        }
      }
      for (let q = 0; q < cam.length; q++) cam[q] = Math.max(0, cam[q]!);
      return [a.input, { act, grad, cam, logits: vals.at(-1)! }];
    }),
  );
}

const numelOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
function relErr(gpuValues: Float32Array, ref: Float64Array): number {
  let d = 0;
  let r = 0;
  for (let i = 0; i < ref.length; i++) {
    d += (gpuValues[i]! - ref[i]!) ** 2;
    r += ref[i]! ** 2;
  }
  return Math.sqrt(d) / Math.max(Math.sqrt(r), 1e-30);
}

gpuTest("the GPU's Grad-CAM equals the float64 interpreter's (predicted class, fixed class, a modality left out)", async () => {
  const { manifest, shaders } = await readCompiled(readFrom(path.join(run, "model")));
  const batch = Number(Object.keys(manifest.plans)[0]);
  const runner = await CompiledRunner.create(manifest, shaders, { batch, seed: 0, gpu: gpu! });
  try {
    const state = new Map<string, Float32Array>();
    for (const [name, t] of loadSafetensors(path.join(run, "best.safetensors")).tensors) state.set(name, t.data as Float32Array);
    await runner.load(state);
    const p = program(model);
    const b = await dataBatch(manifest, batch);
    const cases: { task: string; batch: Batch; classes?: Int32Array }[] = [
      { task: "skin_dx", batch: b },
      { task: "cervix_dx", batch: b, classes: Int32Array.from({ length: batch }, (_, i) => (i + 1) % 5) },
      { task: "cervix_dx", batch: { ...b, inputs: { cervix: b.inputs.cervix! } } },
    ];
    for (const c of cases) {
      const r = await runner.gradcam(c.batch, { task: c.task, details: true, ...(c.classes ? { classes: c.classes } : {}) });
      const probs = (await runner.predict({ ...c.batch, inputs: { skin: new Float32Array(b.inputs.skin!.length), ...c.batch.inputs } }))[c.task]!;
      const k = probs.length / batch;
      for (let i = 0; i < batch; i++) {
        const row = Array.from(probs.subarray(i * k, (i + 1) * k));
        assert.is(r.targets[i], c.classes ? c.classes[i] : row.indexOf(Math.max(...row)), `target of sample ${i}`);
      }
      const ref = reference(p, state, c.batch.inputs as Record<string, Float32Array>, c.task, r.targets);
      for (const input of ["skin", "cervix"]) {
        const what = `${c.task}, ${input}${c.classes ? ", fixed classes" : ""}${c.batch.inputs.skin ? "" : ", no skin data"}`;
        const cam = r.cams[input]!;
        assert.is(cam.height, 8);
        assert.is(cam.width, 8);
        assert.ok(Math.max(...ref[input]!.cam) > 0, `${what}: a map that is not all zero`);
        const errs = { activation: relErr(r.activations![input]!, ref[input]!.act), gradient: relErr(r.gradients![input]!, ref[input]!.grad), map: relErr(cam.data, ref[input]!.cam) };
        for (const [name, e] of Object.entries(errs)) assert.ok(e < 1e-3, `${what}: ${name} relative error ${e.toExponential(2)}`);
      }
      assert.ok(relErr(r.logits[c.task]!, ref.skin!.logits) < 1e-3, `${c.task}: logits`);
    }
    // What `drifac gradcam` runs: the same plans without a trainer, the checkpoint loaded into them.
    const plans = manifest.plans[String(batch)]!;
    const alone = await GradcamRunner.create(gpu!, { gradcam: hydrate(plans.gradcam!, shaders), infer: hydrate(plans.infer, shaders) });
    try {
      assert.throws(() => alone.load(new Map([...state].filter(([name]) => name !== "skin.conv1.weight"))), /the state has no skin.conv1.weight/);
      alone.load(state);
      const [x, y] = [await alone.gradcam(b, { task: "skin_dx" }), await runner.gradcam(b, { task: "skin_dx" })];
      assert.equal(x.targets, y.targets);
      for (const input of ["skin", "cervix"]) assert.equal(x.cams[input]!.data, y.cams[input]!.data, input);
    } finally {
      alone.destroy();
    }
  } finally {
    runner.destroy();
  }
});

gpuTest("drifac gradcam: PNG overlays of the input size, gradcam.json and the page", async () => {
  const out = path.join(dir, "cam");
  const r = await drifac("gradcam", run, "--data", `skin=${path.join(data, "skin")}`, "--limit", "5", "--out", out);
  assert.is(r.code, 0, r.err);
  assert.match(r.out, "skin: 5 Grad-CAM overlays of skin_dx from skin.conv2 (8x8)");
  const summary = JSON.parse(fs.readFileSync(path.join(out, "gradcam.json"), "utf8")) as { maps: { input: string }[]; samples: Record<string, string>[] };
  assert.equal(summary.maps.map((m) => m.input), ["skin"], "only the modality given");
  assert.is(summary.samples.length, 5);
  const classes = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"];
  for (const s of summary.samples) {
    assert.ok(fs.existsSync(s.file!), s.file);
    assert.ok(classes.includes(s.predicted!) && classes.includes(s.label!), JSON.stringify(s));
    const png = decode(fs.readFileSync(path.join(out, s.image!)));
    assert.equal([png.width, png.height, png.channels, png.depth], [16, 16, 3, 8], s.image);
  }
  const page = fs.readFileSync(path.join(out, "index.html"), "utf8");
  assert.is(imageSources(page).length, 5);
  assert.match(page, "fed zeros");
  // Both modalities, several batches (with a padded last one): every sample once.
  const both = path.join(dir, "cam-both");
  const r2 = await drifac("gradcam", run, ...dataArgs(), "--out", both, "--class", "bcc", "--task", "skin_dx");
  assert.is(r2.code, 0, r2.err);
  const s2 = JSON.parse(fs.readFileSync(path.join(both, "gradcam.json"), "utf8")) as { samples: { input: string; explained: string; image: string }[] };
  assert.is(s2.samples.filter((s) => s.input === "skin").length, 7 * 4);
  assert.is(s2.samples.filter((s) => s.input === "cervix").length, 5 * 4);
  assert.is(new Set(s2.samples.map((s) => s.image)).size, s2.samples.length, "one file per sample");
  assert.ok(s2.samples.every((s) => s.explained === "bcc"));
});

test("drifac gradcam: a missing run, a missing checkpoint, an unknown input or class exit 1 with the cause", async () => {
  const out = path.join(dir, "cam-bad");
  let r = await drifac("gradcam", path.join(dir, "nowhere"), ...dataArgs(), "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, `${path.join(dir, "nowhere")}: not a run folder of drifac train`);
  const half = path.join(dir, "half-run");
  fs.mkdirSync(path.join(half, "model"), { recursive: true });
  fs.writeFileSync(path.join(half, "model", "manifest.json"), "{}");
  r = await drifac("gradcam", half, ...dataArgs(), "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, `${path.join(half, "best.safetensors")}: missing`);
  assert.is((await drifac("gradcam", run, ...dataArgs())).code, 2, "--out is required");
  if (!gpu) return;
  r = await drifac("gradcam", run, "--out", out);
  assert.is(r.code, 1, r.err);
  assert.match(r.err, "no data: give --data");
  r = await drifac("gradcam", run, "--data", `brain=${path.join(data, "cervix")}`, "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, "--data brain: the model has no input brain");
  r = await drifac("gradcam", run, ...dataArgs(), "--class", "bcc", "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, "pick one with --task");
  r = await drifac("gradcam", run, "--data", `skin=${path.join(data, "skin")}`, "--class", "melanoma", "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, "--class melanoma: not a class of skin_dx");
});

gpuTest("drifac gradcam: a corrupt image is named, or skipped and counted with --skip-bad", async () => {
  const corrupt = path.join(dir, "corrupt");
  fs.cpSync(path.join(data, "skin"), corrupt, { recursive: true });
  const folder = path.join(corrupt, "HAM10000_images_part_1");
  const file = path.join(folder, fs.readdirSync(folder).sort()[0]!);
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 100));
  const out = path.join(dir, "cam-corrupt");
  let r = await drifac("gradcam", run, "--data", `skin=${corrupt}`, "--out", out);
  assert.is(r.code, 1);
  assert.match(r.err, `${file}: `);
  r = await drifac("gradcam", run, "--data", `skin=${corrupt}`, "--out", out, "--skip-bad");
  assert.is(r.code, 0, r.err);
  assert.match(r.err, "skipped 1 bad file");
  const summary = JSON.parse(fs.readFileSync(path.join(out, "gradcam.json"), "utf8")) as { samples: unknown[]; skipped: { file: string }[] };
  assert.is(summary.samples.length, 7 * 4 - 1);
  assert.equal(summary.skipped.map((s) => s.file), [file]);
});

test.run();
