// The contract between the generated trainer and a compiled model. The compiled model (WebGPU)
// implements ModelRunner; everything in runtime/trainer is written against this interface only,
// so the loop, schedules, early stopping and the synthetic data can be tested on the CPU with a
// plain-TypeScript runner (linear-runner.ts). Browser-safe: types only.

/** One batch. Tensors are flat, row-major; every input is [size, ...shape]. */
export interface Batch {
  size: number;
  /** Per model input name: [size, 3, S, S]. */
  inputs: Record<string, Float32Array>;
  /** Per task name: class index per item. */
  labels: Record<string, Int32Array>;
  /**
   * Per task name: 1 where the item counts (first occurrence, not padding). Absent = all count.
   * Eval batches are padded to a fixed size for fixed-shape GPU programs; the padding is 0 here.
   */
  valid?: Record<string, Uint8Array>;
}

export interface RunnerInput {
  name: string;
  /** Per sample, e.g. [3, S, S]. */
  shape: number[];
}

export interface RunnerTask {
  name: string;
  classes: string[];
  /** Weight of this task's cross-entropy in the total loss (Σ weight · CE). */
  weight: number;
  /** The input whose data set supplies this task's labels. */
  data: string;
}

export interface ModelRunner {
  inputs: RunnerInput[];
  tasks: RunnerTask[];
  /**
   * One optimiser step on a batch. The loss is read back only when wantLoss (reading it costs a
   * GPU sync). Items with valid = 0 must not contribute to the gradient.
   */
  trainStep(batch: Batch, lr: number, wantLoss: boolean): Promise<{ loss?: number; taskLosses?: Record<string, number> }>;
  /** Inference (dropout off unless mc): per task, probabilities [B, K] (softmax applied). */
  predict(batch: Batch, options?: { mc?: boolean; seed?: number }): Promise<Record<string, Float32Array>>;
  /**
   * Losses without updating (validation). taskLosses[t] is the mean cross-entropy over the items
   * valid for task t; loss = Σ weight_t · taskLosses[t].
   */
  evalLoss(batch: Batch): Promise<{ loss: number; taskLosses: Record<string, number> }>;
  /** Parameters + buffers + optimiser slots (and any RNG counters), for checkpoints and resume. */
  state(): Promise<Map<string, Float32Array>>;
  load(state: Map<string, Float32Array>): Promise<void>;
  /**
   * Optional: the shape of each state tensor, so checkpoints keep shapes (PyTorch/JAX readers).
   * Tensors without an entry are saved flat, [length].
   */
  stateShapes?: Record<string, readonly number[]>;
}

/** Anything a `for await` can walk: an async generator, an array, a sync generator. */
export type BatchStream = AsyncIterable<Batch> | Iterable<Batch>;

/** Where the loop gets its batches. Streams are made per epoch so shuffles can depend on it. */
export interface BatchSource {
  train(epoch: number): BatchStream;
  /** Validation batches; without it, plateau and early stopping watch the training loss. */
  val?(epoch: number): BatchStream;
  /** Training steps per epoch, when known (progress bars, ETA). */
  trainSteps?: number;
}

/** The training settings, shaped like the compiler's TrainConfig (compiler/check/program.ts). */
export interface ScheduleConfig {
  kind: "constant" | "plateau" | "step" | "cosine";
  [option: string]: number | string | boolean;
}

export interface TrainSettings {
  optimizer: { kind: string; lr: number; [option: string]: number | string | boolean };
  schedule: ScheduleConfig;
  batch: number;
  epochs: number;
  /** Patience in epochs; null or 0 = off. */
  earlyStop: number | null;
  seed: number;
}

/** One epoch's summary. Serialisable: this is a line of metrics.jsonl. */
export interface EpochRecord {
  /** 1-based, like Keras' "Epoch 1/200". */
  epoch: number;
  /** Mean of the losses read back this epoch (every logEvery steps and the last step). */
  train_loss: number;
  /** Null without a validation source. */
  val_loss: number | null;
  /** The learning rate used during this epoch. */
  lr: number;
  seconds: number;
  samples_per_s: number;
  /** Validation accuracy per task name. */
  acc: Record<string, number>;
  /** Validation loss per task name (unweighted mean cross-entropy). */
  task_loss: Record<string, number>;
  /** The monitored loss reached a new best this epoch (the best checkpoint was written). */
  best: boolean;
}
