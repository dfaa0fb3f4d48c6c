// The training loop: epochs of optimiser steps, validation, the learning-rate schedule, early
// stopping and the best checkpoint, all around a ModelRunner. Browser-safe (no Node imports):
// the Node CLI (cli.ts) and a browser page drive the same loop through callbacks.
//
// Why the loss is read only every `logEvery` steps: reading it back means waiting for the GPU to
// finish (a sync), which stalls the queue of submitted steps. The loss of the epoch's last step is
// always read, so every epoch has a train_loss; train_loss is the size-weighted mean of the losses
// that were read (every step with logEvery = 1).
//
// Resume: TrainerState (JSON) holds everything outside the model: epochs and steps done, the
// schedule's and early stopping's state, the seed and the history. The model's own state
// (weights, optimiser slots, RNG counters) comes from runner.state()/load(). A run resumed from
// the state written after epoch e continues exactly like the uninterrupted run would, given
// batch sources that depend only on (seed, epoch).

import type { TaskMetrics } from "../metrics/index.ts";
import { EarlyStopping, type EarlyStopState } from "./early-stop.ts";
import { evaluate } from "./evaluate.ts";
import { LrSchedule, type ScheduleState } from "./schedule.ts";
import type { Batch, BatchSource, BatchStream, EpochRecord, ModelRunner, ScheduleConfig } from "./types.ts";

export interface TrainerState {
  version: 1;
  /** Epochs finished. */
  epoch: number;
  /** Optimiser steps taken. */
  step: number;
  seed: number;
  schedule: ScheduleState;
  earlyStop: EarlyStopState;
  history: EpochRecord[];
}

export interface StepInfo {
  /** 1-based epoch. */
  epoch: number;
  /** Steps done in this epoch. */
  step: number;
  /** Steps per epoch when known (from the source, or counted in the previous epoch). */
  steps: number | undefined;
  /** Latest loss read back this epoch (undefined before the first reading). */
  loss: number | undefined;
  samples: number;
  /** Seconds since the epoch started. */
  seconds: number;
}

export interface EpochInfo {
  state: TrainerState;
  /** Validation metrics per task (empty without validation). */
  metrics: Record<string, TaskMetrics>;
  /** The schedule reduced the rate after this epoch. */
  reduced: boolean;
  /** Early stopping ends the run after this epoch. */
  stop: boolean;
}

export interface TrainLoopOptions {
  epochs: number;
  /** The optimiser's base learning rate. */
  lr: number;
  /** Default constant. */
  schedule?: ScheduleConfig;
  /** Early-stopping patience in epochs; null/0 = off. */
  earlyStop?: number | null;
  /** Stored in the state so a resumed run rebuilds the same data streams. */
  seed?: number;
  /** Read the training loss every k steps (default 10) and on each epoch's last step. */
  logEvery?: number;
  /**
   * At the end, load the best epoch's state into the runner when the last epoch was not the best
   * (default true). The best state is kept in memory from the epoch that produced it.
   */
  restoreBest?: boolean;
  /** The best state when it is not in memory (a resumed run): e.g. read the best checkpoint. */
  loadBest?: () => Promise<Map<string, Float32Array> | undefined>;
  /** Continue from a saved state (the runner must already hold the matching model state). */
  resume?: TrainerState;
  onEpochStart?(epoch: number, lr: number): void | Promise<void>;
  onStep?(info: StepInfo): void;
  /** A new best epoch: `state` is runner.state() right after it (write the best checkpoint). */
  onBest?(state: Map<string, Float32Array>, record: EpochRecord): void | Promise<void>;
  /** After every epoch, once its state is final (append metrics, write the resume checkpoint). */
  onEpoch?(record: EpochRecord, info: EpochInfo): void | Promise<void>;
}

export interface TrainResult {
  history: EpochRecord[];
  /** 1-based epoch with the best monitored loss (0 if none was finite). */
  bestEpoch: number;
  bestLoss: number | null;
  stoppedEarly: boolean;
  /** The best state was loaded back into the runner. */
  restored: boolean;
  state: TrainerState;
}

function iterate(stream: BatchStream): AsyncIterator<Batch> | Iterator<Batch> {
  return Symbol.asyncIterator in stream ? stream[Symbol.asyncIterator]() : stream[Symbol.iterator]();
}

export async function trainLoop(runner: ModelRunner, source: BatchSource, options: TrainLoopOptions): Promise<TrainResult> {
  const logEvery = options.logEvery ?? 10;
  if (!(Number.isInteger(logEvery) && logEvery >= 1)) throw new Error(`logEvery must be a positive integer, got ${logEvery}`);
  if (!(Number.isInteger(options.epochs) && options.epochs >= 1)) throw new Error(`epochs must be a positive integer, got ${options.epochs}`);
  const schedule = new LrSchedule(options.schedule ?? { kind: "constant" }, options.lr, options.epochs);
  const stopper = new EarlyStopping(options.earlyStop ?? null);
  const state: TrainerState = { version: 1, epoch: 0, step: 0, seed: options.seed ?? 0, schedule: schedule.state(), earlyStop: stopper.state(), history: [] };
  if (options.resume) {
    const r = options.resume;
    if (r.version !== 1) throw new Error(`resume: unknown trainer state version ${String(r.version)}`);
    schedule.load(r.schedule);
    stopper.load(r.earlyStop);
    Object.assign(state, { epoch: r.epoch, step: r.step, seed: r.seed, history: [...r.history] });
  }
  const restoreBest = options.restoreBest ?? true;
  let bestState: Map<string, Float32Array> | undefined;
  let knownSteps = source.trainSteps;

  while (state.epoch < options.epochs && !stopper.stopped) {
    const epoch = state.epoch + 1;
    const lr = schedule.lr;
    await options.onEpochStart?.(epoch, lr);
    const t0 = performance.now();
    const it = iterate(source.train(state.epoch));
    let cur = await it.next();
    let steps = 0;
    let samples = 0;
    let lossSum = 0;
    let lossWeight = 0;
    let lastLoss: number | undefined;
    try {
      while (!cur.done) {
        const batch = cur.value;
        // The loss of the epoch's last step is always read. When the step count is unknown that
        // needs the next batch first; otherwise fetch it while the step runs, so batch
        // preparation overlaps the GPU.
        let ahead: IteratorResult<Batch> | undefined;
        if (source.trainSteps === undefined) ahead = await it.next();
        const last = ahead ? !!ahead.done : steps + 1 >= source.trainSteps!;
        const wantLoss = last || (state.step + 1) % logEvery === 0;
        const stepP = runner.trainStep(batch, lr, wantLoss);
        const nextP = ahead ? Promise.resolve(ahead) : it.next();
        const [result, next] = await Promise.all([stepP, nextP]);
        steps++;
        state.step++;
        samples += batch.size;
        if (wantLoss) {
          const loss = result.loss;
          if (loss === undefined) throw new Error("trainStep returned no loss although wantLoss was set");
          if (!Number.isFinite(loss)) throw new Error(`training diverged: loss ${loss} at epoch ${epoch}, step ${steps}; try a lower learning rate`);
          lastLoss = loss;
          lossSum += loss * batch.size;
          lossWeight += batch.size;
        }
        options.onStep?.({ epoch, step: steps, steps: knownSteps, loss: lastLoss, samples, seconds: (performance.now() - t0) / 1000 });
        cur = next;
      }
    } finally {
      // A failed step must not leave a prefetching loader (open files, pending decodes) behind.
      if (!cur.done) await it.return?.();
    }
    if (steps === 0) throw new Error(`epoch ${epoch}: the training source gave no batches`);
    knownSteps ??= steps;
    const trainSeconds = (performance.now() - t0) / 1000;
    // NaN only if the source's trainSteps overstated the batches, so no step was marked last.
    const trainLoss = lossWeight > 0 ? lossSum / lossWeight : NaN;

    const val = source.val ? await evaluate(runner, source.val(state.epoch)) : undefined;
    const valLoss = val && Number.isFinite(val.loss) ? val.loss : null;
    // Without validation, plateau and early stopping watch the training loss instead.
    const monitored = source.val ? valLoss : trainLoss;
    const { reduced } = schedule.endEpoch(monitored);
    const { improved, stop } = stopper.update(epoch, monitored);

    const acc: Record<string, number> = {};
    for (const [task, m] of Object.entries(val?.metrics ?? {})) acc[task] = m.accuracy;
    const record: EpochRecord = {
      epoch,
      train_loss: trainLoss,
      val_loss: valLoss,
      lr,
      seconds: (performance.now() - t0) / 1000,
      samples_per_s: samples / Math.max(trainSeconds, 1e-9),
      acc,
      task_loss: val ? Object.fromEntries(Object.entries(val.taskLosses).filter(([, l]) => Number.isFinite(l))) : {},
      best: improved,
    };
    state.epoch = epoch;
    state.schedule = schedule.state();
    state.earlyStop = stopper.state();
    state.history.push(record);
    if (improved && (options.onBest || restoreBest)) {
      const snapshot = copyState(await runner.state());
      if (restoreBest) bestState = snapshot;
      await options.onBest?.(snapshot, record);
    }
    await options.onEpoch?.(record, { state: cloneState(state), metrics: val?.metrics ?? {}, reduced, stop });
  }

  let restored = false;
  const lastEpoch = state.history.at(-1)?.epoch ?? 0;
  if (restoreBest && stopper.bestEpoch > 0 && stopper.bestEpoch !== lastEpoch) {
    const best = bestState ?? (await options.loadBest?.());
    if (best) {
      await runner.load(best);
      restored = true;
    }
  }
  return { history: state.history, bestEpoch: stopper.bestEpoch, bestLoss: stopper.best, stoppedEarly: stopper.stopped, restored, state: cloneState(state) };
}

/** The runner may hand out views of live buffers; a snapshot must not change with training. */
function copyState(s: Map<string, Float32Array>): Map<string, Float32Array> {
  return new Map([...s].map(([k, v]) => [k, v.slice()]));
}

function cloneState(s: TrainerState): TrainerState {
  return JSON.parse(JSON.stringify(s)) as TrainerState;
}
