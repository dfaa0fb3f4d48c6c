// Batches for the trainer. Each source is one data set's split; sources are paired by index
// (oversampled to equal length for training), and every view of every source becomes one model
// input [B, 3, S, S], every source one task with Int32 labels. While the trainer works on one
// batch (mostly awaiting the GPU), the next is being read and decoded: file reads and gunzip run
// on libuv's thread pool, and JS decoding fills the event loop's idle time between GPU awaits.
import type { DataSet, Sample } from "./datasets.ts";
import { asDataError, type Skipped } from "./errors.ts";
import { Rng } from "./rng.ts";
import { SampleReader } from "./pipeline.ts";
import { pairByIndex, type Pairing } from "./split.ts";
import { IMAGENET, augment, drawAugment, writeCHW, type AugmentOptions, type Normalize } from "./transform.ts";

export interface SourceSpec {
  dataset: DataSet;
  /** The split to iterate (e.g. splitDataSet(ds).train). */
  samples: Sample[];
  /** Augmentation for training batches (ignored in eval mode). */
  augment?: AugmentOptions;
  /** Default IMAGENET. */
  normalize?: Normalize;
  /** Share one reader (and its cache) between the train/val/test loaders of a set. */
  reader?: SampleReader;
}

export interface LoaderOptions {
  /** Side of the square input (the paper: 128). */
  size: number;
  batchSize: number;
  seed?: number;
  /** "train": oversample, shuffle, augment. "eval": cycle shorter sources, no shuffle, no augmentation. */
  mode?: "train" | "eval";
  /**
   * The last, incomplete batch: "drop" it (train default), keep it "short", or "pad" it to
   * batchSize by repeating items with valid = 0 (eval default; fixed-shape GPU programs need it).
   */
  last?: "drop" | "short" | "pad";
  /** Batches decoded ahead of the one being used (default 1). */
  prefetch?: number;
  /** On a file that fails to decode, record it and use the source's next good sample. */
  skipBad?: boolean;
  /** Cache budget per source reader, bytes (see ReaderOptions). */
  cacheBytes?: number;
}

export interface Batch {
  /** Position in the epoch. */
  index: number;
  /** Items in this batch (batchSize, or fewer for a "short" last batch). */
  size: number;
  /** One tensor [size, 3, S, S] per model input, in `BatchLoader.inputs` order. */
  inputs: Float32Array[];
  /** One label vector per source (task). */
  labels: Int32Array[];
  /** Per source: 1 for items that count in metrics (first occurrences, no padding). */
  valid: Uint8Array[];
}

export class BatchLoader {
  readonly sources: SourceSpec[];
  readonly readers: SampleReader[];
  /** What each model input is: source index and view name. */
  readonly inputs: { source: number; view: string }[];
  /** Files that failed to decode under skipBad. */
  readonly skipped: Skipped[] = [];
  private readonly opts: Required<Omit<LoaderOptions, "cacheBytes">>;
  private readonly bad: Set<string>[] = [];

  constructor(sources: SourceSpec[], opts: LoaderOptions) {
    if (!sources.length) throw new Error("BatchLoader: no sources");
    if (!(opts.batchSize > 0)) throw new Error("BatchLoader: batchSize must be positive");
    this.sources = sources;
    const mode = opts.mode ?? "train";
    this.opts = {
      size: opts.size,
      batchSize: opts.batchSize,
      seed: opts.seed ?? 0,
      mode,
      last: opts.last ?? (mode === "train" ? "drop" : "pad"),
      prefetch: opts.prefetch ?? 1,
      skipBad: opts.skipBad ?? false,
    };
    this.readers = sources.map((s) => {
      if (!s.samples.length) throw new Error(`BatchLoader: source ${s.dataset.name} has no samples`);
      if (s.reader && s.reader.size !== opts.size) throw new Error("BatchLoader: shared reader has another size");
      return s.reader ?? new SampleReader(s.dataset, { size: opts.size, ...(opts.cacheBytes !== undefined ? { cacheBytes: opts.cacheBytes } : {}) });
    });
    this.inputs = sources.flatMap((s, i) => s.dataset.views.map((view) => ({ source: i, view })));
    this.bad = sources.map(() => new Set<string>());
  }

  /** Paired items per epoch (the longest source). */
  get length(): number {
    return Math.max(...this.sources.map((s) => s.samples.length));
  }

  get batchesPerEpoch(): number {
    const n = this.length / this.opts.batchSize;
    return this.opts.last === "drop" ? Math.floor(n) : Math.ceil(n);
  }

  /** The batches of epoch `e`, each decoded while the previous one is in use. */
  async *epoch(e = 0): AsyncGenerator<Batch> {
    const train = this.opts.mode === "train";
    const pairing = pairByIndex(
      this.sources.map((s) => s.samples.length),
      { seed: this.opts.seed, epoch: e, mode: train ? "oversample" : "cycle" },
    );
    const nb = this.batchesPerEpoch;
    const queue: Promise<Batch>[] = [];
    let next = 0;
    const start = () => {
      const p = this.makeBatch(pairing, next++, e);
      // A consumer that stops early must not leave an unhandled rejection behind.
      p.catch(() => {});
      queue.push(p);
    };
    while (next < nb || queue.length) {
      if (!queue.length) start();
      const batch = await queue.shift()!;
      while (queue.length < this.opts.prefetch && next < nb) start();
      yield batch;
    }
  }

  private async makeBatch(p: Pairing, b: number, epoch: number): Promise<Batch> {
    const { batchSize: B, size: S, last } = this.opts;
    const from = b * B;
    const real = Math.min(B, p.length - from);
    const size = last === "short" ? real : B;
    const px = 3 * S * S;
    const inputs = this.inputs.map(() => new Float32Array(size * px));
    const labels = this.sources.map(() => new Int32Array(size));
    const valid = this.sources.map(() => new Uint8Array(size));
    let inputBase = 0;
    const jobs: Promise<void>[] = [];
    for (const [s, src] of this.sources.entries()) {
      const base = inputBase;
      inputBase += src.dataset.views.length;
      for (let i = 0; i < size; i++) {
        // Padding repeats items from the start of the epoch's order; they never count.
        const item = i < real ? from + i : i - real;
        const idx = p.index[s]![item % p.length]!;
        valid[s]![i] = i < real ? p.valid[s]![from + i]! : 0;
        jobs.push(this.fill(s, idx, epoch, from + i, inputs, base, i, labels[s]!));
      }
    }
    await Promise.all(jobs);
    return { index: b, size, inputs, labels, valid };
  }

  /** Reads sample `idx` of source `s` into slot i of the batch (augmented in train mode). */
  private async fill(s: number, idx: number, epoch: number, item: number, inputs: Float32Array[], base: number, i: number, labels: Int32Array): Promise<void> {
    const src = this.sources[s]!;
    const n = src.samples.length;
    let sample: Sample | undefined;
    let views;
    for (let tries = 0; tries < n; tries++) {
      const cand = src.samples[(idx + tries) % n]!;
      if (cand.files.some((f) => this.bad[s]!.has(f))) continue;
      try {
        views = await this.readers[s]!.read(cand);
        sample = cand;
        break;
      } catch (err) {
        if (!this.opts.skipBad) throw err;
        const file = (err as { file?: string }).file ?? cand.files[0]!;
        const de = asDataError(file, err);
        if (!this.bad[s]!.has(de.file)) this.skipped.push({ file: de.file, cause: de.cause });
        this.bad[s]!.add(de.file);
      }
    }
    if (!sample || !views) throw asDataError(src.dataset.root, new Error("no sample of this source could be decoded"));
    labels[i] = sample.label;
    const S = this.opts.size;
    const norm = src.normalize ?? IMAGENET;
    // One draw per (epoch, source, item): all views of a sample get the same transform, and the
    // draw does not depend on the order in which asynchronous reads finish.
    const aug = this.opts.mode === "train" && src.augment ? drawAugment(Rng.of(this.opts.seed, "aug", epoch, s, item), src.augment) : undefined;
    views.forEach((v, k) => writeCHW(aug ? augment(v, aug) : v, inputs[base + k]!, i * 3 * S * S, norm));
  }
}
