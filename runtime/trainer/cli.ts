// The command line of a generated trainer (Node only). A compiled model's train.js is:
//
//   import { runTrainerCli } from "<runtime>/trainer/cli.ts";
//   const { exitCode } = await runTrainerCli(process.argv.slice(2), (opts) => createRunner(opts), DEFAULTS, { name: "drifa" });
//   process.exitCode = exitCode;
//
// Flags override the model's `train { ... }` defaults. Output in --out:
//   config.json        the resolved settings
//   metrics.jsonl      one JSON object per epoch (the same line --json prints)
//   best.safetensors   the state of the epoch with the best validation loss
//   last.safetensors   the state after the latest epoch, with the trainer state in its metadata
//                      (--resume continues from it; writes are atomic, so Ctrl-C is safe)
// With --json, stdout carries only the per-epoch JSON lines; everything else goes to stderr.

import fs from "node:fs";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import { loadSafetensors, saveSafetensors } from "../checkpoint/file.ts";
import type { Tensor } from "../checkpoint/safetensors.ts";
import { trainLoop, type TrainerState, type TrainResult } from "./loop.ts";
import { EpochProgress, formatRate } from "./progress.ts";
import { SyntheticData, type SyntheticOptions } from "./synthetic.ts";
import type { BatchSource, EpochRecord, ModelRunner, TrainSettings } from "./types.ts";

export interface TrainerCliOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  out: string;
  json: boolean;
  synthetic: boolean;
  /** --synthetic-size: training samples per epoch of the synthetic set (validation: a quarter). */
  syntheticSize?: number;
  logEvery: number;
  progress: boolean;
  resume: boolean;
  /** Patience; null = off. */
  earlyStop: number | null;
  /** The model's optimiser with lr replaced by --lr (what makeRunner should build). */
  optimizer: TrainSettings["optimizer"];
  schedule: TrainSettings["schedule"];
}

export interface TrainerCliHooks {
  /** Program name in --help (default "train"); also the default --out folder, runs/<name>. */
  name?: string;
  description?: string;
  /** The real data when --synthetic is not given. Without it, --synthetic is required. */
  data?(opts: TrainerCliOptions, runner: ModelRunner): Promise<BatchSource>;
  /** Sizes and noise of the --synthetic set. */
  synthetic?: Omit<SyntheticOptions, "batch" | "seed">;
  /** String metadata for every checkpoint (model name, source hash, ...). */
  metadata?: Record<string, string>;
  /** Output streams (tests); default process.stdout / process.stderr. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface TrainerCliResult {
  exitCode: number;
  options?: TrainerCliOptions;
  result?: TrainResult;
}

function intArg(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

/** Parses the flags; an exit code instead when commander already answered (--help) or rejected them. */
function parse(
  argv: string[],
  defaults: TrainSettings,
  hooks: TrainerCliHooks,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): { options: TrainerCliOptions } | { exitCode: number } {
  const name = hooks.name ?? "train";
  const program = new Command(name)
    .description(hooks.description ?? "Train the model (flags override the model's train section)")
    .option("--epochs <n>", "epochs", intArg(1), defaults.epochs)
    .option("--batch <n>", "batch size", intArg(1), defaults.batch)
    .option("--lr <x>", "base learning rate", positiveNumber, defaults.optimizer.lr)
    .option("--seed <n>", "seed of data order, initialisation and synthetic data", intArg(0), defaults.seed)
    .option("--out <dir>", "run folder: metrics.jsonl, best/last checkpoints", path.join("runs", name))
    .option("--json", "print one JSON object per epoch on stdout, nothing else", false)
    .option("--synthetic", "train on the built-in synthetic data set", false)
    .option("--synthetic-size <n>", "synthetic training samples per epoch (validation: a quarter)", intArg(1))
    .option("--log-every <k>", "read the training loss back every k steps (each read is a GPU sync)", intArg(1), 10)
    .option("--early-stop <n>", "early-stopping patience in epochs, 0 = off", intArg(0), defaults.earlyStop ?? 0)
    .option("--resume", "continue the run in --out from last.safetensors", false)
    .option("--no-progress", "no progress bar")
    .exitOverride()
    .configureOutput({ writeOut: (s) => void out.write(s), writeErr: (s) => void err.write(s) });
  try {
    program.parse(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return { exitCode: e.exitCode };
    throw e;
  }
  // The flags as commander parses them: the options minus what is derived from the defaults.
  const o = program.opts<Omit<TrainerCliOptions, "earlyStop" | "optimizer" | "schedule"> & { earlyStop: number }>();
  return {
    options: {
      epochs: o.epochs,
      batch: o.batch,
      lr: o.lr,
      seed: o.seed,
      out: o.out,
      json: o.json,
      synthetic: o.synthetic,
      syntheticSize: o.syntheticSize,
      logEvery: o.logEvery,
      progress: o.progress,
      resume: o.resume,
      earlyStop: o.earlyStop || null,
      optimizer: { ...defaults.optimizer, lr: o.lr },
      schedule: defaults.schedule,
    },
  };
}

function syntheticSizes(size: number | undefined): { trainSize?: number; valSize?: number } {
  return size === undefined ? {} : { trainSize: size, valSize: Math.max(1, Math.round(size / 4)) };
}

/** The flat JSON form of an epoch: acc_<task>, loss_<task> next to the totals. */
export function epochJson(r: EpochRecord): Record<string, number | boolean | null> {
  const line: Record<string, number | boolean | null> = {
    epoch: r.epoch,
    train_loss: r.train_loss,
    val_loss: r.val_loss,
    lr: r.lr,
    seconds: round(r.seconds, 3),
    samples_per_s: round(r.samples_per_s, 1),
  };
  for (const [t, a] of Object.entries(r.acc)) line[`acc_${t}`] = a;
  for (const [t, l] of Object.entries(r.task_loss)) line[`loss_${t}`] = l;
  line.best = r.best;
  return line;
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function humanLine(r: EpochRecord, epochs: number): string {
  const acc = Object.entries(r.acc)
    .map(([t, a]) => `${t} ${(100 * a).toFixed(1)}%`)
    .join(", ");
  const val = r.val_loss === null ? "" : `  val ${r.val_loss.toFixed(4)}`;
  return `epoch ${r.epoch}/${epochs}  train ${r.train_loss.toFixed(4)}${val}${acc ? `  acc ${acc}` : ""}  lr ${r.lr.toPrecision(3)}  ${r.seconds.toFixed(1)} s  ${formatRate(r.samples_per_s)} samples/s${r.best ? "  *" : ""}\n`;
}

function toTensors(state: Map<string, Float32Array>, shapes: ModelRunner["stateShapes"]): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [name, data] of state) {
    const shape = shapes?.[name];
    // A declared shape that does not match the data is a runner bug; keep the data, flat.
    const ok = shape && shape.reduce((a, b) => a * b, 1) === data.length;
    out.set(name, { dtype: "F32", shape: ok ? shape : [data.length], data });
  }
  return out;
}

function fromTensors(file: string): { state: Map<string, Float32Array>; metadata: Record<string, string> } {
  const { tensors, metadata } = loadSafetensors(file);
  const state = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    if (t.dtype !== "F32" || !(t.data instanceof Float32Array)) throw new Error(`${file}: tensor ${name} is ${t.dtype}, expected F32`);
    state.set(name, t.data);
  }
  return { state, metadata };
}

export async function runTrainerCli(
  argv: string[],
  makeRunner: (opts: TrainerCliOptions) => Promise<ModelRunner>,
  defaults: TrainSettings,
  hooks: TrainerCliHooks = {},
): Promise<TrainerCliResult> {
  const stdout = hooks.stdout ?? process.stdout;
  const stderr = hooks.stderr ?? process.stderr;
  const parsed = parse(argv, defaults, hooks, stdout, stderr);
  if (!("options" in parsed)) return { exitCode: parsed.exitCode };
  const opts = parsed.options;
  let progress: EpochProgress | undefined;
  try {
    if (!opts.synthetic && !hooks.data) throw new Error("no training data: this trainer has no data loader built in; pass --synthetic");
    const runner = await makeRunner(opts);
    const bestFile = path.join(opts.out, "best.safetensors");
    const lastFile = path.join(opts.out, "last.safetensors");
    const metricsFile = path.join(opts.out, "metrics.jsonl");
    fs.mkdirSync(opts.out, { recursive: true });

    let resume: TrainerState | undefined;
    if (opts.resume) {
      if (!fs.existsSync(lastFile)) throw new Error(`--resume: ${lastFile} does not exist`);
      const last = fromTensors(lastFile);
      if (!last.metadata.trainer_state) throw new Error(`--resume: ${lastFile} has no trainer state`);
      resume = JSON.parse(last.metadata.trainer_state) as TrainerState;
      if (resume.seed !== opts.seed) stderr.write(`note: resuming with the run's seed ${resume.seed}, not --seed ${opts.seed}\n`);
      opts.seed = resume.seed;
      await runner.load(last.state);
    }
    const source = opts.synthetic ? new SyntheticData(runner, { ...hooks.synthetic, ...syntheticSizes(opts.syntheticSize), batch: opts.batch, seed: opts.seed }) : await hooks.data!(opts, runner);
    fs.writeFileSync(path.join(opts.out, "config.json"), JSON.stringify({ ...opts, defaults }, null, 2) + "\n");
    // metrics.jsonl mirrors the history in the state, so a resumed run drops epochs logged after its checkpoint.
    fs.writeFileSync(metricsFile, (resume?.history ?? []).map((r) => JSON.stringify(epochJson(r)) + "\n").join(""));

    const tty = (stderr as { isTTY?: boolean }).isTTY === true;
    if (opts.progress && !opts.json && tty) progress = new EpochProgress(stderr, opts.epochs);
    const meta = (extra: Record<string, string>) => ({ format: "drifa-trainer", ...hooks.metadata, ...extra });
    let bestOfEpoch: { epoch: number; state: Map<string, Float32Array> } | undefined;

    const result = await trainLoop(runner, source, {
      epochs: opts.epochs,
      lr: opts.lr,
      schedule: opts.schedule,
      earlyStop: opts.earlyStop,
      seed: opts.seed,
      logEvery: opts.logEvery,
      ...(resume ? { resume } : {}),
      loadBest: async () => (fs.existsSync(bestFile) ? fromTensors(bestFile).state : undefined),
      onEpochStart: (epoch) => progress?.start(epoch, source.trainSteps),
      onStep: (info) => progress?.step(info),
      onBest: (state, record) => {
        bestOfEpoch = { epoch: record.epoch, state };
        saveSafetensors(bestFile, toTensors(state, runner.stateShapes), meta({ epoch: String(record.epoch), val_loss: String(record.val_loss) }));
      },
      onEpoch: async (record, info) => {
        progress?.stop();
        const line = JSON.stringify(epochJson(record));
        fs.appendFileSync(metricsFile, line + "\n");
        stdout.write(opts.json ? line + "\n" : humanLine(record, opts.epochs));
        if (info.reduced && !opts.json) stdout.write(`  learning rate reduced to ${info.state.schedule.lr.toPrecision(3)}\n`);
        const state = bestOfEpoch?.epoch === record.epoch ? bestOfEpoch.state : await runner.state();
        saveSafetensors(lastFile, toTensors(state, runner.stateShapes), meta({ epoch: String(record.epoch), trainer_state: JSON.stringify(info.state) }));
      },
    });
    progress?.stop();
    const best = result.bestEpoch > 0 ? `best epoch ${result.bestEpoch} (loss ${result.bestLoss?.toFixed(4)}), ${bestFile}` : "no finite validation loss";
    stderr.write(`${result.stoppedEarly ? "stopped early; " : ""}${best}\n`);
    return { exitCode: 0, options: opts, result };
  } catch (e) {
    progress?.stop();
    stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return { exitCode: 1, options: opts };
  }
}
