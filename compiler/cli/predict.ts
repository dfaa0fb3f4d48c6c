// `drifac predict RUN[,RUN...] --data NAME=PATH ... --mc T`: Monte Carlo dropout over an ensemble
// of trained runs (DRIFA-Net Eq. 10). Each run's best checkpoint is loaded into its compiled
// model and run T times with dropout on (pass t uses dropout seed --seed + t), and every one of
// the members x T softmax samples counts once in the mean (runtime/uncertainty). Every sample of
// the given folders is scored (no split: these are the cases to predict); labels from the
// folders are used for accuracy and to flag wrong predictions in the report.
import fs from "node:fs";
import path from "node:path";
import { loadSafetensors } from "../../runtime/checkpoint/index.ts";
import type { Gpu } from "../../runtime/device.ts";
import { nodeDevice, readFrom } from "../../runtime/compiled/node.ts";
import { CompiledRunner, readCompiled } from "../../runtime/compiled/runner.ts";
import { renderReportHtml, type UncertainSection } from "../../runtime/report/index.ts";
import { mcUncertainty, rankUncertain, type McUncertainty } from "../../runtime/uncertainty/index.ts";
import { bindData, collectPredictions, evalLoader, evaluatePredictions, loadDataArgs, type Binding } from "../../runtime/workflow/index.ts";
import type { Io } from "./main.ts";
import { errorMessage, skippedNote } from "./train.ts";

export interface PredictCommandOptions {
  data: string[];
  mc: number;
  seed: number;
  top: number;
  json?: boolean;
  skipBad?: boolean;
}

type Manifest = CompiledRunner["manifest"];

async function member(run: string): Promise<{ manifest: Manifest; shaders: string[]; batch: number; seed: number; best: string }> {
  const dir = path.join(run, "model");
  if (!fs.existsSync(path.join(dir, "manifest.json"))) throw new Error(`${run}: not a run folder of drifac train (no model/manifest.json)`);
  const best = path.join(run, "best.safetensors");
  if (!fs.existsSync(best)) throw new Error(`${best}: missing (the run has no best checkpoint yet)`);
  const { manifest, shaders } = await readCompiled(readFrom(dir));
  const recordFile = path.join(run, "workflow.json");
  const record = fs.existsSync(recordFile) ? (JSON.parse(fs.readFileSync(recordFile, "utf8")) as { batch: number; seed: number }) : undefined;
  const batch = record?.batch ?? Number(Object.keys(manifest.plans)[0]);
  return { manifest, shaders, batch, seed: record?.seed ?? manifest.train.seed, best };
}

/** Tasks as "name:class,class" so members of an ensemble can be checked for agreement. */
const signature = (m: Manifest) => m.tasks.map((t) => `${t.name}:${t.classes.join(",")}`).join(";");

export async function predictCommand(runsArg: string, opts: PredictCommandOptions, io: Io): Promise<number> {
  const runs = runsArg.split(",").filter(Boolean);
  const info = opts.json ? io.err : io.out;
  let gpu: Gpu | null = null;
  try {
    // Every file is decoded up front: predict reads them all anyway, and a bad one then fails (or
    // is counted) before minutes of GPU work rather than in the middle of it.
    const loaded = await loadDataArgs(opts.data, { skipBad: !!opts.skipBad, verify: true });
    if (loaded.skipped.length) io.err(skippedNote(loaded.skipped));
    const members = [];
    for (const r of runs) members.push(await member(r));
    const first = members[0]!;
    const odd = members.find((m) => signature(m.manifest) !== signature(first.manifest));
    if (odd) throw new Error(`the runs do not have the same tasks and classes (${first.manifest.model} vs ${odd.manifest.model})`);
    const tasks = first.manifest.tasks;
    const classes = Object.fromEntries(tasks.map((t) => [t.name, t.classes.length]));
    // samples[task][member][pass]: flat [n, K] probabilities.
    const samples: Record<string, Float32Array[][]> = Object.fromEntries(tasks.map((t) => [t.name, []]));
    let labels: Record<string, Int32Array> = {};
    let binding: Binding | undefined;
    for (const [mi, m] of members.entries()) {
      binding = bindData(m.manifest, loaded.data);
      gpu ??= await nodeDevice(m.manifest);
      const runner = await CompiledRunner.create(m.manifest, m.shaders, { batch: m.batch, seed: m.seed, gpu });
      try {
        const state = new Map<string, Float32Array>();
        for (const [name, t] of loadSafetensors(m.best).tensors) state.set(name, t.data as Float32Array);
        await runner.load(state);
        const loader = evalLoader(binding, { batch: m.batch, seed: m.seed, skipBad: !!opts.skipBad });
        for (const t of tasks) samples[t.name]!.push([]);
        for (let pass = 0; pass < opts.mc; pass++) {
          const preds = await collectPredictions(loader, binding, classes, (b) => runner.predict(b, { mc: true, seed: opts.seed + pass }));
          for (const t of tasks) samples[t.name]![mi]!.push(preds[t.name]!.probs);
          labels = Object.fromEntries(Object.entries(preds).map(([t, p]) => [t, p.labels]));
        }
        info(`${runs[mi]}: ${opts.mc} MC-dropout passes\n`);
      } finally {
        runner.destroy();
      }
    }
    const scored = tasks.filter((t) => labels[t.name]!.length > 0);
    const u: Record<string, McUncertainty> = Object.fromEntries(scored.map((t) => [t.name, mcUncertainty({ kind: "nested", samples: samples[t.name]!, numClasses: t.classes.length })]));
    // The file of each row of a task: the task's data set's samples, in order.
    const fileOf = (task: string, i: number): string => {
      const src = binding!.sources.find((s) => s.tasks.includes(task))!;
      const s = src.dataset.samples[i]!;
      return s.slice === undefined ? s.files[0]! : `${path.dirname(s.files[0]!)}#slice${s.slice}`;
    };
    if (opts.json) {
      for (const src of binding!.sources) {
        const own = scored.filter((t) => src.tasks.includes(t.name));
        src.dataset.samples.forEach((_, i) => {
          const per: Record<string, unknown> = {};
          for (const t of own) {
            const r = u[t.name]!;
            const k = r.k;
            per[t.name] = {
              probs: Array.from(r.meanProbs.subarray(i * k, (i + 1) * k)),
              prediction: t.classes[r.predicted[i]!],
              label: t.classes[labels[t.name]![i]!],
              entropy: r.predictiveEntropy[i],
              mi: r.mutualInformation[i],
              variance: Array.from(r.variance.subarray(i * k, (i + 1) * k)),
            };
          }
          io.out(`${JSON.stringify({ input: src.name, file: own[0] ? fileOf(own[0].name, i) : src.dataset.samples[i]!.files[0], tasks: per })}\n`);
        });
      }
    }
    const metrics = evaluatePredictions(
      Object.fromEntries(scored.map((t) => [t.name, { probs: Float32Array.from(u[t.name]!.meanProbs), labels: labels[t.name]!, k: t.classes.length }])),
      Object.fromEntries(tasks.map((t) => [t.name, t.classes])),
    );
    const sections: UncertainSection[] = scored.map((t) => ({
      task: t.name,
      rankedBy: "mutual information",
      cases: rankUncertain(u[t.name]!, { top: opts.top, labels: labels[t.name]! }),
      // Relative to the data folder: class folders reuse file names (SIPaKMeD's 001_01.bmp).
      idFor: (c) => path.relative(binding!.sources.find((s) => s.tasks.includes(t.name))!.dataset.root, fileOf(t.name, c.index)),
    }));
    if (!opts.json) {
      for (const t of scored) {
        const r = u[t.name]!;
        const mean = (a: Float64Array) => a.reduce((x, y) => x + y, 0) / a.length;
        const m = metrics.find((x) => x.task === t.name)!;
        io.out(`${t.name}: ${r.n} samples, accuracy ${(100 * m.accuracy).toFixed(1)}%, mean entropy ${mean(r.predictiveEntropy).toFixed(3)} (max ${r.maxEntropy.toFixed(3)}), mean MI ${mean(r.mutualInformation).toFixed(4)}\n`);
        for (const c of sections.find((s) => s.task === t.name)!.cases) {
          const wrong = c.label !== undefined && c.label !== c.predicted ? "  (wrong)" : "";
          io.out(`  ${fileOf(t.name, c.index)}: ${t.classes[c.predicted]} ${(100 * c.confidence).toFixed(1)}%, entropy ${c.predictiveEntropy.toFixed(3)}, MI ${c.mutualInformation.toFixed(4)}${wrong}\n`);
        }
      }
    }
    const reportDir = path.join(runs[0]!, "report");
    fs.mkdirSync(reportDir, { recursive: true });
    const page = path.join(reportDir, "uncertain.html");
    const notes = [`ensemble of ${members.length} run(s): ${runs.join(", ")}; ${opts.mc} MC-dropout passes each (seeds ${opts.seed}..${opts.seed + opts.mc - 1})`, `data: ${opts.data.join(", ")}`];
    fs.writeFileSync(page, renderReportHtml({ title: `${first.manifest.model}: predictions and uncertainty`, tasks: metrics, uncertain: sections, notes }));
    info(`report: ${page}\n`);
    return 0;
  } catch (e) {
    io.err(`drifac predict: ${errorMessage(e)}\n`);
    return 1;
  } finally {
    (gpu as Gpu | null)?.destroy();
  }
}
