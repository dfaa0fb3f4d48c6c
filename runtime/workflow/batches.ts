// Batches for a bound model: the seeded stratified split of every data set (or its own test
// folder), a training loader (augmentation, oversampling of the shorter sets), validation and
// test loaders (no augmentation, padded to the planned batch size, with `valid` marking each real
// sample once), and the loop that collects per-task probabilities in sample order.
import {
  BatchLoader,
  PAPER_AUGMENT,
  PAPER_AUGMENT_MRI,
  SampleReader,
  splitDataSet,
  type Batch as LoaderBatch,
  type Sample,
  type Skipped,
  type SourceSpec,
  type Split,
} from "../data/index.ts";
import type { Batch, BatchSource } from "../trainer/types.ts";
import type { Binding } from "./bind.ts";

export interface WorkflowOptions {
  /** The batch size the model was planned for (every batch has exactly this size). */
  batch: number;
  seed: number;
  /** Files that fail to decode at batch time are recorded and replaced, not fatal. */
  skipBad?: boolean;
}

export interface TrainingData {
  splits: Split[];
  train: BatchLoader;
  /** Absent when a data set is too small to have a validation split. */
  val?: BatchLoader;
  /** Absent when a data set has no test samples. */
  test?: BatchLoader;
  source: BatchSource;
  /** Files skipped at batch time by any loader (with skipBad). */
  skipped(): Skipped[];
}

/** A loader batch keyed by the model's names: inputs per view, labels per task of each source. */
export function toModelBatch(b: LoaderBatch, binding: Binding): Batch {
  const inputs: Record<string, Float32Array> = {};
  const labels: Record<string, Int32Array> = {};
  const valid: Record<string, Uint8Array> = {};
  let k = 0;
  binding.sources.forEach((src, s) => {
    for (const name of src.inputs) inputs[name] = b.inputs[k++]!;
    for (const t of src.tasks) {
      labels[t] = b.labels[s]!;
      valid[t] = b.valid[s]!;
    }
  });
  return { size: b.size, inputs, labels, valid };
}

async function* mapped(it: AsyncIterable<LoaderBatch>, binding: Binding): AsyncGenerator<Batch> {
  for await (const b of it) yield toModelBatch(b, binding);
}

/** An evaluation loader over the given samples of each source (all of a source's samples by default). */
export function evalLoader(binding: Binding, opts: WorkflowOptions, samples?: Sample[][], readers?: SampleReader[]): BatchLoader {
  const specs: SourceSpec[] = binding.sources.map((s, i) => ({
    dataset: s.dataset,
    samples: samples?.[i] ?? s.dataset.samples,
    ...(readers ? { reader: readers[i]! } : {}),
  }));
  return new BatchLoader(specs, { size: binding.size, batchSize: opts.batch, seed: opts.seed, mode: "eval", skipBad: !!opts.skipBad });
}

/** Splits every data set and builds the loaders and the trainer's BatchSource. */
export function trainingData(binding: Binding, opts: WorkflowOptions): TrainingData {
  const splits = binding.sources.map((s) => splitDataSet(s.dataset, { seed: opts.seed }));
  // One reader per data set, so the validation and test loaders reuse the decoded-picture cache.
  const readers = binding.sources.map((s) => new SampleReader(s.dataset, { size: binding.size }));
  const small = binding.sources.find((_, i) => splits[i]!.train.length === 0);
  if (small) throw new Error(`${small.dataset.root}: too few samples for a training split (${small.dataset.samples.length})`);
  const train = new BatchLoader(
    binding.sources.map((s, i) => ({
      dataset: s.dataset,
      samples: splits[i]!.train,
      augment: s.dataset.kind === "volume" ? PAPER_AUGMENT_MRI : PAPER_AUGMENT,
      reader: readers[i]!,
    })),
    { size: binding.size, batchSize: opts.batch, seed: opts.seed, mode: "train", skipBad: !!opts.skipBad },
  );
  if (train.batchesPerEpoch === 0) throw new Error(`the training split has ${train.length} paired samples, fewer than one batch of ${opts.batch}: lower --batch`);
  const has = (part: "val" | "test") => splits.every((s) => s[part].length > 0);
  const val = has("val") ? evalLoader(binding, opts, splits.map((s) => s.val), readers) : undefined;
  const test = has("test") ? evalLoader(binding, opts, splits.map((s) => s.test), readers) : undefined;
  const source: BatchSource = {
    train: (e) => mapped(train.epoch(e), binding),
    ...(val ? { val: (e: number) => mapped(val.epoch(e), binding) } : {}),
    trainSteps: train.batchesPerEpoch,
  };
  const skipped = () => [train, val, test].flatMap((l) => l?.skipped ?? []);
  return { splits, train, ...(val ? { val } : {}), ...(test ? { test } : {}), source, skipped };
}

export interface TaskPredictions {
  /** Flat [n, K] probabilities, one row per real sample of the task's data set, in sample order. */
  probs: Float32Array;
  labels: Int32Array;
  k: number;
}

type Predict = (batch: Batch) => Promise<Record<string, Float32Array>>;

/**
 * Runs `predict` over every batch of an eval loader and keeps the rows that count (valid = 1):
 * each real sample once, padding and wrapped-around repeats dropped.
 */
export async function collectPredictions(loader: BatchLoader, binding: Binding, classes: Record<string, number>, predict: Predict): Promise<Record<string, TaskPredictions>> {
  const rows: Record<string, { probs: number[]; labels: number[] }> = {};
  for (const t of Object.keys(classes)) rows[t] = { probs: [], labels: [] };
  for await (const lb of loader.epoch(0)) {
    const batch = toModelBatch(lb, binding);
    const probs = await predict(batch);
    for (const [t, acc] of Object.entries(rows)) {
      const p = probs[t];
      const valid = batch.valid?.[t];
      const labels = batch.labels[t];
      if (!p || !labels) continue;
      const k = classes[t]!;
      for (let i = 0; i < batch.size; i++) {
        if (valid && !valid[i]) continue;
        for (let c = 0; c < k; c++) acc.probs.push(p[i * k + c]!);
        acc.labels.push(labels[i]!);
      }
    }
  }
  return Object.fromEntries(Object.entries(rows).map(([t, r]) => [t, { probs: Float32Array.from(r.probs), labels: Int32Array.from(r.labels), k: classes[t]! }]));
}
