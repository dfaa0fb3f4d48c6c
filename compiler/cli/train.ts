// `drifac train FILE --data NAME=PATH ... --out RUN`: compile and train in one go. The data is
// loaded first (a bad folder fails in seconds, not after compiling), the model is compiled into
// RUN/model for the batch size, the generated trainer's loop (runtime/trainer/cli.ts) does the
// training with its progress bar, metrics.jsonl, atomic best/last checkpoints, plateau schedule
// and early stopping, and then the best checkpoint is evaluated on the test split: RUN/eval.json
// and the report RUN/report/index.html. RUN/workflow.json records what --resume must repeat
// (data folders, settings, seed, batch), so a resumed run sees the same split.
import fs from "node:fs";
import path from "node:path";
import type { Gpu } from "../../runtime/device.ts";
import { loadSafetensors } from "../../runtime/checkpoint/index.ts";
import { nodeDevice, readFrom } from "../../runtime/compiled/node.ts";
import { CompiledRunner, readCompiled } from "../../runtime/compiled/runner.ts";
import { writeReport } from "../../runtime/report/index.ts";
import { runTrainerCli } from "../../runtime/trainer/cli.ts";
import {
  bindData,
  collectPredictions,
  evaluatePredictions,
  historyFromMetrics,
  loadDataArgs,
  metricsJson,
  metricsLine,
  trainingData,
} from "../../runtime/workflow/index.ts";
import type { Program } from "../check/program.ts";
import { compileCommand } from "./compile.ts";
import type { Io } from "./main.ts";

export interface TrainCommandOptions {
  set: Record<string, string>;
  model?: string;
  data: string[];
  out?: string;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  json?: boolean;
  skipBad?: boolean;
  /** true: continue the run in --out; a string: the run folder itself. */
  resume?: boolean | string;
  progress?: boolean;
}

/** What a resumed run must repeat exactly. */
interface WorkflowRecord {
  file: string;
  data: string[];
  set: Record<string, string>;
  batch: number;
  seed: number;
  skipBad: boolean;
}

/** A writable stream over an Io function, for the trainer's stdout/stderr hooks. */
export function ioStream(write: (s: string) => void): NodeJS.WritableStream {
  return { write: (s: string | Uint8Array) => (write(typeof s === "string" ? s : Buffer.from(s).toString()), true) } as unknown as NodeJS.WritableStream;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export function skippedNote(skipped: readonly { file: string; cause: string }[]): string {
  const shown = skipped.slice(0, 5).map((s) => `  ${s.file}: ${s.cause}\n`).join("");
  return `skipped ${skipped.length} bad file${skipped.length === 1 ? "" : "s"} (--skip-bad)\n${shown}${skipped.length > 5 ? `  ... and ${skipped.length - 5} more\n` : ""}`;
}

export async function trainCommand(program: Program, file: string, opts: TrainCommandOptions, io: Io): Promise<number> {
  const run = typeof opts.resume === "string" ? opts.resume : opts.out;
  if (!run) {
    io.err("drifac train: give --out RUN (or --resume RUN)\n");
    return 2;
  }
  const recordFile = path.join(run, "workflow.json");
  let record: WorkflowRecord = {
    file: path.resolve(file),
    data: opts.data,
    set: opts.set,
    batch: opts.batch ?? program.train.batch,
    seed: opts.seed ?? program.train.seed,
    skipBad: !!opts.skipBad,
  };
  if (opts.resume) {
    if (!fs.existsSync(recordFile)) {
      io.err(`drifac train: --resume: ${recordFile} does not exist (not a run folder of drifac train)\n`);
      return 1;
    }
    // The split and the compiled plans depend on these; a resumed run keeps the run's own.
    const saved = JSON.parse(fs.readFileSync(recordFile, "utf8")) as WorkflowRecord;
    record = { ...saved, data: opts.data.length ? opts.data : saved.data };
  }
  // With --json, stdout carries only the per-epoch lines; everything else goes to stderr.
  const info = opts.json ? io.err : io.out;

  let loaded;
  try {
    // Decoding every file up front under --skip-bad finds the bad ones before the split, so the
    // split holds only good files and the count is known at once.
    loaded = await loadDataArgs(record.data, { skipBad: record.skipBad, verify: record.skipBad });
  } catch (e) {
    io.err(`drifac train: ${errorMessage(e)}\n`);
    return 1;
  }
  if (loaded.skipped.length) io.err(skippedNote(loaded.skipped));

  const modelDir = path.join(run, "model");
  fs.mkdirSync(run, { recursive: true });
  const manifestFile = path.join(modelDir, "manifest.json");
  const planned = fs.existsSync(manifestFile) && (JSON.parse(fs.readFileSync(manifestFile, "utf8")) as { plans: Record<string, unknown> }).plans[String(record.batch)];
  if (!(opts.resume && planned)) {
    const code = await compileCommand(program, file, modelDir, [record.batch], { out: info, err: io.err });
    if (code !== 0) return code;
  }
  fs.writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
  const { manifest, shaders } = await readCompiled(readFrom(modelDir));

  let binding, data;
  try {
    binding = bindData(manifest, loaded.data);
    data = trainingData(binding, { batch: record.batch, seed: record.seed, skipBad: record.skipBad });
  } catch (e) {
    io.err(`drifac train: ${errorMessage(e)}\n`);
    return 1;
  }

  const argv = ["--out", run, "--batch", String(record.batch), "--seed", String(record.seed)];
  if (opts.epochs !== undefined) argv.push("--epochs", String(opts.epochs));
  if (opts.lr !== undefined) argv.push("--lr", String(opts.lr));
  if (opts.json) argv.push("--json");
  if (opts.resume) argv.push("--resume");
  if (opts.progress === false) argv.push("--no-progress");
  let gpu: Gpu | null = null;
  let runner: CompiledRunner | null = null;
  const tty = process.stderr.isTTY && !opts.json;
  try {
    const result = await runTrainerCli(
      argv,
      async (o) => {
        gpu ??= await nodeDevice(manifest);
        runner = await CompiledRunner.create(manifest, shaders, { batch: o.batch, seed: o.seed, gpu });
        return runner;
      },
      manifest.train,
      {
        name: manifest.model,
        data: async () => data.source,
        metadata: { model: manifest.model, source: manifest.source.file },
        stdout: ioStream(io.out),
        // The progress bar needs a real terminal; on one, the trainer writes to it directly.
        stderr: tty ? process.stderr : ioStream(io.err),
      },
    );
    const skippedLate = data.skipped();
    if (skippedLate.length) io.err(skippedNote(skippedLate));
    if (result.exitCode !== 0 || !runner) return result.exitCode || 1;
    return await evaluate(run, runner, manifest, binding, data, [...loaded.skipped, ...skippedLate], info);
  } catch (e) {
    io.err(`drifac train: ${errorMessage(e)}\n`);
    return 1;
  } finally {
    (runner as CompiledRunner | null)?.destroy();
    (gpu as Gpu | null)?.destroy();
  }
}

/** Loads the best checkpoint, scores the test split, writes eval.json and the report. */
async function evaluate(
  run: string,
  runner: CompiledRunner,
  manifest: CompiledRunner["manifest"],
  binding: ReturnType<typeof bindData>,
  data: ReturnType<typeof trainingData>,
  skipped: { file: string; cause: string }[],
  info: (s: string) => void,
): Promise<number> {
  const best = path.join(run, "best.safetensors");
  if (fs.existsSync(best)) {
    const state = new Map<string, Float32Array>();
    for (const [name, t] of loadSafetensors(best).tensors) state.set(name, t.data as Float32Array);
    await runner.load(state);
  }
  if (!data.test) {
    info("no test split (a data set is too small); skipping evaluation\n");
    return 0;
  }
  const classes = Object.fromEntries(manifest.tasks.map((t) => [t.name, t.classes.length]));
  const preds = await collectPredictions(data.test, binding, classes, (b) => runner.predict(b));
  const classNames = Object.fromEntries(manifest.tasks.map((t) => [t.name, t.classes]));
  const tasks = evaluatePredictions(preds, classNames);
  const checkpoint = fs.existsSync(best) ? "best.safetensors" : "the last state";
  fs.writeFileSync(
    path.join(run, "eval.json"),
    `${JSON.stringify({ model: manifest.model, split: "test", checkpoint, skipped, tasks: tasks.map(metricsJson) }, null, 2)}\n`,
  );
  const history = historyFromMetrics(path.join(run, "metrics.jsonl"), manifest.tasks.map((t) => t.name));
  const sizes = binding.sources.map((s, i) => `${s.name}: ${data.splits[i]!.train.length}/${data.splits[i]!.val.length}/${data.splits[i]!.test.length}`);
  const { html } = await writeReport(path.join(run, "report"), {
    title: `${manifest.model}: evaluation on the test split`,
    tasks,
    history,
    notes: [
      `model ${manifest.source.file}, checkpoint ${checkpoint}`,
      `train/validation/test samples: ${sizes.join("; ")}`,
      ...(skipped.length ? [`${skipped.length} bad files skipped`] : []),
    ],
  });
  for (const t of tasks) info(`${metricsLine(t)}\n`);
  info(`evaluation: ${path.join(run, "eval.json")}, report: ${html}\n`);
  return 0;
}
