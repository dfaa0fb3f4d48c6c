// `drifac gradcam RUN --data NAME=PATH ... --out DIR`: Grad-CAM heat maps of a trained run, from
// the last convolution stage of each modality, computed by the compiled model's Grad-CAM plan
// (forward and backward pass on the GPU; runtime/compiled/gradcam.ts) with the run's best
// checkpoint. Any subset of the modalities may be given: a model input without data is fed
// zeros, which after normalisation is the mean image, so the prediction rests on the given
// modalities. Each given modality is explained for the task its data set labels (--task: one
// task for all), the class explained being the predicted one (--class: a fixed class).
// Writes DIR/<input>/<sample>.png (the map, normalised per image, over the input as the model
// sees it), DIR/gradcam.json and the page DIR/index.html.
import fs from "node:fs";
import path from "node:path";
import { loadSafetensors } from "../../runtime/checkpoint/index.ts";
import { nodeDevice, readFrom, recompileWithBatch } from "../../runtime/compiled/node.ts";
import { GradcamRunner } from "../../runtime/compiled/gradcam.ts";
import { hydrate } from "../../runtime/compiled/manifest.ts";
import { type CompiledRunner, readCompiled } from "../../runtime/compiled/runner.ts";
import { IMAGENET, type DataSet, type Sample } from "../../runtime/data/index.ts";
import type { Gpu } from "../../runtime/device.ts";
import { encodePngRgb, overlayHeatmap, writeGradcamPage, type GradcamSection, type RgbImage } from "../../runtime/report/index.ts";
import { bindData, evalLoader, loadDataArgs, toModelBatch, type Binding } from "../../runtime/workflow/index.ts";
import type { Io } from "./main.ts";
import { errorMessage, skippedNote } from "./train.ts";

export interface GradcamCommandOptions {
  data: string[];
  out: string;
  batch?: number;
  /** At most this many samples per data folder, spread evenly over it. */
  limit?: number;
  skipBad?: boolean;
  task?: string;
  /** A class name (or index) of the explained task, instead of each sample's prediction. */
  class?: string;
  /** Opacity of the heat map over the image. */
  alpha?: number;
}

type Manifest = CompiledRunner["manifest"];

/** The run's compiled model (re-planned when it lacks a Grad-CAM plan for `batch`), checkpoint,
 * batch and seed. */
function openRun(run: string, batchOpt: number | undefined, io: Io) {
  const dir = path.join(run, "model");
  if (!fs.existsSync(path.join(dir, "manifest.json"))) throw new Error(`${run}: not a run folder of drifac train (no model/manifest.json)`);
  const best = path.join(run, "best.safetensors");
  if (!fs.existsSync(best)) throw new Error(`${best}: missing (the run has no best checkpoint yet)`);
  const recordFile = path.join(run, "workflow.json");
  const record = fs.existsSync(recordFile) ? (JSON.parse(fs.readFileSync(recordFile, "utf8")) as { batch: number; seed: number }) : undefined;
  return async () => {
    let { manifest, shaders } = await readCompiled(readFrom(dir));
    const batch = batchOpt ?? record?.batch ?? Number(Object.keys(manifest.plans)[0]);
    // A folder compiled before Grad-CAM plans existed, or for other batch sizes: plan it again.
    if (!manifest.plans[String(batch)]?.gradcam) {
      recompileWithBatch(dir, manifest, batch, io.err);
      ({ manifest, shaders } = await readCompiled(readFrom(dir)));
      if (!manifest.plans[String(batch)]?.gradcam) throw new Error(`${manifest.model} has nothing Grad-CAM can explain (no task, or no 4-D activation in a modality branch)`);
    }
    return { manifest, shaders, batch, seed: record?.seed ?? manifest.train.seed, best };
  };
}

/** bindData for the inputs the folders feed: the others will be fed zeros. */
function bindGiven(manifest: Manifest, data: ReadonlyMap<string, DataSet>): Binding {
  const feeds = (name: string, ds: DataSet, input: string) =>
    ds.views.length === 1 ? input === name : ds.views.some((v) => input === `${name}_${v}` || input === v);
  for (const [name, ds] of data) {
    if (!manifest.inputs.some((i) => feeds(name, ds, i.name))) throw new Error(`--data ${name}: the model has no input ${name} (inputs: ${manifest.inputs.map((i) => i.name).join(", ")})`);
  }
  const inputs = manifest.inputs.filter((i) => [...data].some(([name, ds]) => feeds(name, ds, i.name)));
  return bindData({ inputs, tasks: manifest.tasks }, data);
}

/** At most `limit` samples, evenly spread (a folder sorted by class shows every class). */
function spread(samples: Sample[], limit: number | undefined): Sample[] {
  if (limit === undefined || samples.length <= limit) return samples;
  return Array.from({ length: limit }, (_, i) => samples[Math.floor((i * samples.length) / limit)]!);
}

/** The image the model sees (normalised CHW floats of one batch row), back to 8-bit RGB. */
function inputImage(x: Float32Array, row: number, size: number): RgbImage {
  const px = size * size;
  const data = new Uint8Array(px * 3);
  for (let c = 0; c < 3; c++) {
    const base = row * 3 * px + c * px;
    for (let p = 0; p < px; p++) {
      const v = (x[base + p]! * IMAGENET.std[c]! + IMAGENET.mean[c]!) * 255;
      data[p * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return { width: size, height: size, data };
}

/** A map scaled to [0, 1] by its maximum (all zero stays zero: nothing supports the class). */
function normalised(cam: Float32Array, row: number, h: number, w: number): Float32Array {
  const m = cam.slice(row * h * w, (row + 1) * h * w);
  const max = m.reduce((a, b) => Math.max(a, b), 0);
  if (max > 0) for (let i = 0; i < m.length; i++) m[i]! /= max;
  return m;
}

/** A file name for a sample, unique within its folder: the file's name when no other sample of
 * the set has it (HAM10000's image ids), else its path below the data set's root (SIPaKMeD's
 * class folders reuse 001_01.bmp). */
function sampleId(ds: DataSet, s: Sample, taken: Set<string>, shared: ReadonlySet<string>): string {
  const file = s.slice === undefined ? s.files[0]! : path.dirname(s.files[0]!);
  const rel = shared.has(path.basename(file)) ? path.relative(ds.root, file) : path.basename(file);
  let id = rel.replace(/\.[^./\\]+$/, "").replace(/[\\/]+/g, "_").replace(/[^\w.-]/g, "_") + (s.slice === undefined ? "" : `_slice${s.slice}`);
  for (let k = 2; taken.has(id); k++) id = `${id}_${k}`;
  taken.add(id);
  return id;
}

/** Softmax of each row of a flat [n, k] array of logits. */
function softmaxRows(logits: Float32Array, k: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length / k; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    const max = Math.max(...row);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[i * k + c] = Math.exp(row[c]! - max);
    for (let c = 0; c < k; c++) out[i * k + c]! /= sum;
  }
  return out;
}

export async function gradcamCommand(run: string, opts: GradcamCommandOptions, io: Io): Promise<number> {
  let gpu: Gpu | null = null;
  let runner: GradcamRunner | null = null;
  try {
    const open = openRun(run, opts.batch, io);
    const loaded = await loadDataArgs(opts.data, { skipBad: !!opts.skipBad, verify: true });
    if (loaded.skipped.length) io.err(skippedNote(loaded.skipped));
    const { manifest, shaders, batch, seed, best } = await open();
    const binding = bindGiven(manifest, loaded.data);
    const tasks = manifest.tasks;
    if (opts.task !== undefined && !tasks.some((t) => t.name === opts.task)) throw new Error(`--task ${opts.task}: no such task (tasks: ${tasks.map((t) => t.name).join(", ")})`);
    // Which task explains each data set: --task, else the (first) task its labels belong to.
    const taskOf = binding.sources.map((s) => opts.task ?? s.tasks[0] ?? tasks[0]!.name);
    const groups = [...new Set(taskOf)];
    let fixedClass: number | undefined;
    if (opts.class !== undefined) {
      if (groups.length > 1) throw new Error(`--class ${opts.class}: the data sets are explained for ${groups.join(" and ")}; pick one with --task`);
      const classes = tasks.find((t) => t.name === groups[0])!.classes;
      fixedClass = /^\d+$/.test(opts.class) ? Number(opts.class) : classes.indexOf(opts.class);
      if (!(fixedClass >= 0 && fixedClass < classes.length)) throw new Error(`--class ${opts.class}: not a class of ${groups[0]} (${classes.join(", ")})`);
    }

    gpu = await nodeDevice(manifest);
    // The Grad-CAM and inference plans only: no trainer, whose pipelines would be compiled for nothing.
    const plans = manifest.plans[String(batch)]!;
    runner = await GradcamRunner.create(gpu, { gradcam: hydrate(plans.gradcam!, shaders), infer: hydrate(plans.infer, shaders) });
    const state = new Map<string, Float32Array>();
    for (const [name, t] of loadSafetensors(best).tensors) state.set(name, t.data as Float32Array);
    try {
      runner.load(state);
    } catch (e) {
      throw new Error(`${best}: ${errorMessage(e)}`);
    }
    const maps = new Map(runner.maps.map((m) => [m.input, m]));

    const subsets = binding.sources.map((s) => spread(s.dataset.samples, opts.limit));
    const loader = evalLoader(binding, { batch, seed, skipBad: !!opts.skipBad }, subsets);
    const out = path.resolve(opts.out);
    const sections: GradcamSection[] = [];
    const sectionOf = new Map<string, GradcamSection>();
    binding.sources.forEach((s, k) => {
      for (const input of s.inputs) {
        const m = maps.get(input);
        if (!m) {
          io.err(`${input}: the model has no convolution stage to explain for this input; no maps\n`);
          continue;
        }
        fs.mkdirSync(path.join(out, input), { recursive: true });
        const sec: GradcamSection = { input, scope: m.scope, size: [m.shape[1], m.shape[2]], task: taskOf[k]!, figures: [] };
        sections.push(sec);
        sectionOf.set(input, sec);
      }
    });
    const rows: Record<string, unknown>[] = [];
    const seen = binding.sources.map(() => 0);
    const taken = new Map(sections.map((sec) => [sec.input, new Set<string>()]));
    // Per data set, the file names two of its samples share.
    const shared = binding.sources.map((src) => {
      const seenNames = new Set<string>();
      const twice = new Set<string>();
      for (const s of src.dataset.samples) {
        const name = path.basename(s.slice === undefined ? s.files[0]! : path.dirname(s.files[0]!));
        if (seenNames.has(name)) twice.add(name);
        seenNames.add(name);
      }
      return twice;
    });
    const alpha = opts.alpha ?? 0.45;
    for await (const lb of loader.epoch(0)) {
      const b = toModelBatch(lb, binding);
      const results = new Map<string, Awaited<ReturnType<GradcamRunner["gradcam"]>>>();
      for (const task of groups) results.set(task, await runner.gradcam(b, { task, ...(fixedClass === undefined ? {} : { classes: new Int32Array(batch).fill(fixedClass) }) }));
      binding.sources.forEach((src, k) => {
        const task = taskOf[k]!;
        const classes = tasks.find((x) => x.name === task)!.classes;
        const r = results.get(task)!;
        const probs = softmaxRows(r.logits[task]!, classes.length);
        for (let i = 0; i < b.size; i++) {
          // Each real sample once, in order: padding and the cycled repeats of a shorter set are not.
          if (!lb.valid[k]![i]) continue;
          const sample = subsets[k]![seen[k]!++]!;
          const row = probs.subarray(i * classes.length, (i + 1) * classes.length);
          const predicted = row.indexOf(Math.max(...row));
          const label = src.tasks.includes(task) ? classes[lb.labels[k]![i]!] : undefined;
          src.inputs.forEach((input, v) => {
            const sec = sectionOf.get(input);
            if (!sec) return;
            const [h, w] = sec.size;
            const image = `${input}/${sampleId(src.dataset, sample, taken.get(input)!, shared[k]!)}.png`;
            const heat = normalised(r.cams[input]!.data, i, h, w);
            const overlay = overlayHeatmap(inputImage(b.inputs[input]!, i, binding.size), heat, w, h, { colormap: "jet", alpha });
            fs.writeFileSync(path.join(out, image), encodePngRgb(overlay));
            const file = sample.files[v] ?? sample.files[0]!;
            const shown = path.relative(src.dataset.root, file) + (sample.slice === undefined ? "" : `#slice${sample.slice}`);
            const fig = { image, file: shown, explained: classes[r.targets[i]!]!, predicted: classes[predicted]!, confidence: row[predicted]!, ...(label === undefined ? {} : { label }) };
            sec.figures.push(fig);
            rows.push({ input, ...fig, file, task });
          });
        }
      });
    }
    fs.mkdirSync(out, { recursive: true });
    const skipped = [...loaded.skipped, ...loader.skipped];
    if (loader.skipped.length) io.err(skippedNote(loader.skipped));
    const summary = {
      model: manifest.model,
      run: path.resolve(run),
      checkpoint: best,
      batch,
      maps: sections.map((s) => ({ input: s.input, activation: s.scope, size: s.size, task: s.task })),
      samples: rows,
      skipped,
    };
    fs.writeFileSync(path.join(out, "gradcam.json"), `${JSON.stringify(summary, null, 2)}\n`);
    const page = writeGradcamPage(out, {
      title: `${manifest.model}: Grad-CAM`,
      notes: [
        `run ${path.resolve(run)}, checkpoint best.safetensors; data: ${opts.data.join(", ")}`,
        ...(manifest.inputs.length > binding.sources.flatMap((s) => s.inputs).length
          ? [`inputs without data (fed zeros, the mean image): ${manifest.inputs.filter((i) => !binding.sources.some((s) => s.inputs.includes(i.name))).map((i) => i.name).join(", ")}`]
          : []),
        ...(skipped.length ? [`${skipped.length} bad file(s) skipped`] : []),
      ],
      sections,
    });
    for (const s of sections) io.out(`${s.input}: ${s.figures.length} Grad-CAM overlays of ${s.task} from ${s.scope || "(unnamed)"} (${s.size[0]}x${s.size[1]}) in ${path.join(out, s.input)}\n`);
    io.out(`Grad-CAM: ${path.join(out, "gradcam.json")}, page: ${page}\n`);
    return 0;
  } catch (e) {
    io.err(`drifac gradcam: ${errorMessage(e)}\n`);
    return 1;
  } finally {
    (runner as GradcamRunner | null)?.destroy();
    (gpu as Gpu | null)?.destroy();
  }
}
