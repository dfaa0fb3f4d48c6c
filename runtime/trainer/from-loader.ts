// Glue between the data layer (runtime/data BatchLoader: inputs and labels as arrays in source
// order) and the trainer (Batch keyed by model input and task names). Type-only imports, so this
// stays browser-safe: the loader itself (Node file reads) is created by the Node side.

import type { Batch as LoaderBatch } from "../data/loader.ts";
import type { Batch, BatchSource } from "./types.ts";

/** What the trainer needs of a BatchLoader. */
export interface LoaderLike {
  epoch(e: number): AsyncIterable<LoaderBatch>;
  readonly batchesPerEpoch: number;
}

export interface LoaderMapping {
  /** Model input name of each loader input (BatchLoader.inputs order: sources, then views). */
  inputs: readonly string[];
  /** Task name of each loader source (null: a source that labels no task). */
  tasks: readonly (string | null)[];
}

/** One loader batch keyed by the model's names. The arrays are shared, not copied. */
export function fromLoaderBatch(b: LoaderBatch, map: LoaderMapping): Batch {
  if (b.inputs.length !== map.inputs.length) throw new Error(`loader batch has ${b.inputs.length} inputs, the mapping names ${map.inputs.length}`);
  if (b.labels.length !== map.tasks.length) throw new Error(`loader batch has ${b.labels.length} sources, the mapping names ${map.tasks.length}`);
  const inputs: Record<string, Float32Array> = {};
  map.inputs.forEach((name, k) => (inputs[name] = b.inputs[k]!));
  const labels: Record<string, Int32Array> = {};
  const valid: Record<string, Uint8Array> = {};
  map.tasks.forEach((task, s) => {
    if (task === null) return;
    labels[task] = b.labels[s]!;
    valid[task] = b.valid[s]!;
  });
  return { size: b.size, inputs, labels, valid };
}

async function* mapped(it: AsyncIterable<LoaderBatch>, map: LoaderMapping): AsyncGenerator<Batch> {
  for await (const b of it) yield fromLoaderBatch(b, map);
}

/** A BatchSource over a training loader (mode "train") and an optional validation loader (mode "eval"). */
export function loaderSource(train: LoaderLike, val: LoaderLike | undefined, map: LoaderMapping): BatchSource {
  return {
    train: (e) => mapped(train.epoch(e), map),
    // The validation set is the same every epoch; its loader ignores the epoch in eval mode.
    ...(val ? { val: (e: number) => mapped(val.epoch(e), map) } : {}),
    trainSteps: train.batchesPerEpoch,
  };
}
