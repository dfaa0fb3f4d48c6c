// Splitting and pairing. The paper splits each set 80/10/10; we stratify by class so rare classes
// (HAM10000's df and vasc are ~1%) appear in every split, split by group (patient, lesion) so no
// patient or lesion is on both sides, and derive every shuffle from the seed. Modalities come
// from different sets and are paired by index; the shorter ones are oversampled to the longest.
import type { DataSet, Sample } from "./datasets.ts";
import { Rng } from "./rng.ts";

export interface Split {
  train: Sample[];
  val: Sample[];
  test: Sample[];
}

export interface SplitOptions {
  seed?: number;
  /** train/val/test fractions; default [0.8, 0.1, 0.1]. */
  fractions?: [number, number, number];
}

/**
 * Stratified, seeded, group-aware split. Units are groups (samples sharing `group`) or single
 * samples; each class's units are shuffled and cut by the fractions. With 3 or more units a class
 * gets at least one in every split whose fraction is non-zero, so val/test never miss a class.
 */
export function stratifiedSplit(samples: Sample[], opts: SplitOptions = {}): Split {
  const seed = opts.seed ?? 0;
  const [ftr, fva, fte] = opts.fractions ?? [0.8, 0.1, 0.1];
  const sum = ftr + fva + fte;
  // Units keyed by group; ungrouped samples are their own unit. Insertion order keeps it stable.
  const units = new Map<string, number[]>();
  samples.forEach((s, i) => {
    const key = s.group !== undefined ? `g:${s.group}` : `s:${i}`;
    const u = units.get(key);
    if (u) u.push(i);
    else units.set(key, [i]);
  });
  const byClass = new Map<number, number[][]>();
  for (const idx of units.values()) {
    // A group takes the label of its first sample (BraTS patients and HAM10000 lesions have one).
    const label = samples[idx[0]!]!.label;
    (byClass.get(label) ?? byClass.set(label, []).get(label)!).push(idx);
  }
  const which = new Int8Array(samples.length);
  for (const [label, list] of [...byClass.entries()].sort((a, b) => a[0] - b[0])) {
    Rng.of(seed, "split", label).shuffle(list);
    const n = list.length;
    let nte = Math.round((n * fte) / sum);
    let nva = Math.round((n * fva) / sum);
    if (n >= 3) {
      if (fte > 0) nte = Math.max(1, nte);
      if (fva > 0) nva = Math.max(1, nva);
    }
    nte = Math.min(nte, n);
    nva = Math.min(nva, n - nte);
    list.forEach((idx, k) => {
      const part = k < nte ? 2 : k < nte + nva ? 1 : 0;
      for (const i of idx) which[i] = part;
    });
  }
  const out: Split = { train: [], val: [], test: [] };
  samples.forEach((s, i) => (which[i] === 2 ? out.test : which[i] === 1 ? out.val : out.train).push(s));
  return out;
}

/**
 * The split for a data set: its own test folder when it has one (train/val split from the rest,
 * in the proportion of the first two fractions), otherwise stratifiedSplit of all samples.
 */
export function splitDataSet(ds: DataSet, opts: SplitOptions = {}): Split {
  if (!ds.test) return stratifiedSplit(ds.samples, opts);
  const [ftr, fva] = opts.fractions ?? [0.8, 0.1, 0.1];
  const { train, val } = stratifiedSplit(ds.samples, { seed: opts.seed ?? 0, fractions: [ftr, fva, 0] });
  return { train, val, test: ds.test };
}

/**
 * Indices 0..n-1 stretched to `target`: every index appears floor(target/n) times and the
 * remainder is drawn without replacement, so oversampling spreads repeats evenly instead of
 * repeating some samples many times by chance. Not shuffled.
 */
export function oversampleIndices(n: number, target: number, rng: Rng): number[] {
  if (n <= 0) throw new Error("oversampleIndices: empty source");
  const out: number[] = [];
  const full = Math.floor(target / n);
  for (let r = 0; r < full; r++) for (let i = 0; i < n; i++) out.push(i);
  const rest = rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, target - out.length);
  return out.concat(rest.sort((a, b) => a - b));
}

export interface Pairing {
  /** Number of paired items (the longest source's length). */
  length: number;
  /** Per source, the sample index for each paired item. */
  index: Int32Array[];
  /** Per source, 1 where the item is an original (first) occurrence, 0 for a repeat. */
  valid: Uint8Array[];
}

export interface PairOptions {
  seed?: number;
  epoch?: number;
  /**
   * "oversample" (training): shorter sources are stretched with oversampleIndices, redrawn every
   * epoch; all items count. "cycle" (evaluation): shorter sources wrap around in order, and
   * `valid` marks the first pass so metrics can count every real sample exactly once.
   */
  mode?: "oversample" | "cycle";
  /** Shuffle each source independently (per epoch). Default: true for oversample, false for cycle. */
  shuffle?: boolean;
}

/** Pairs sources by index after equalising their lengths (the paper's multimodal pairing). */
export function pairByIndex(lengths: number[], opts: PairOptions = {}): Pairing {
  const mode = opts.mode ?? "oversample";
  const shuffle = opts.shuffle ?? mode === "oversample";
  const seed = opts.seed ?? 0;
  const epoch = opts.epoch ?? 0;
  const N = Math.max(0, ...lengths);
  const index: Int32Array[] = [];
  const valid: Uint8Array[] = [];
  lengths.forEach((n, s) => {
    if (n <= 0) throw new Error(`pairByIndex: source ${s} has no samples`);
    const rng = Rng.of(seed, "pair", epoch, s);
    let idx: number[];
    const ok = new Uint8Array(N);
    if (mode === "cycle") {
      idx = Array.from({ length: N }, (_, i) => i % n);
      for (let i = 0; i < Math.min(n, N); i++) ok[i] = 1;
    } else {
      idx = oversampleIndices(n, N, rng);
      ok.fill(1);
    }
    if (shuffle) {
      // Shuffle index and validity together.
      const order = rng.shuffle(Array.from({ length: N }, (_, i) => i));
      idx = order.map((o) => idx[o]!);
      const v = ok.slice();
      order.forEach((o, i) => (ok[i] = v[o]!));
    }
    index.push(Int32Array.from(idx));
    valid.push(ok);
  });
  return { length: N, index, valid };
}

/** Count of samples per class, for reports and tests. */
export function classCounts(samples: Sample[], nClasses: number): number[] {
  const c = new Array<number>(nClasses).fill(0);
  for (const s of samples) c[s.label]! += 1;
  return c;
}
