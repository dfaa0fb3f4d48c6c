// The generated trainer's browser-safe core: the ModelRunner contract, schedules, early stopping,
// the loop, evaluation, the synthetic data set and a CPU reference runner. The Node command line
// (flags, progress bar, checkpoint files) lives in cli.ts and is not exported here, so a browser
// bundle of a compiled model can import this file without pulling in node:fs.
export type { Batch, BatchSource, BatchStream, EpochRecord, ModelRunner, RunnerInput, RunnerTask, ScheduleConfig, TrainSettings } from "./types.ts";
export { LrSchedule, type ScheduleState } from "./schedule.ts";
export { EarlyStopping, type EarlyStopState } from "./early-stop.ts";
export { evaluate, type Evaluation, type EvaluateOptions } from "./evaluate.ts";
export { trainLoop, type EpochInfo, type StepInfo, type TrainerState, type TrainLoopOptions, type TrainResult } from "./loop.ts";
export { SyntheticData, syntheticData, drawSynthetic, type SyntheticModel, type SyntheticOptions } from "./synthetic.ts";
export { LinearRunner, type LinearRunnerOptions } from "./linear-runner.ts";
export { fromLoaderBatch, loaderSource, type LoaderLike, type LoaderMapping } from "./from-loader.ts";
