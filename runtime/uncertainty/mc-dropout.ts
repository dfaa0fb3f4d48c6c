// Monte Carlo dropout over an ensemble (DRIFA-Net Eq. 10): M members, each run T times with
// dropout active. Every one of the M*T softmax samples counts once in the mean; the public code
// averaged only one member's samples, which this module must not repeat.
//
// Scores, all in nats (natural log), per sample i:
// - predictive entropy  H[E p]          = -Σ_c p̄_c ln p̄_c         total uncertainty, in [0, ln K]
// - expected entropy    E[H[p]]         mean over samples of each sample's entropy (aleatoric)
// - mutual information  H[E p] - E[H p] (BALD): epistemic part, in [0, H[E p]]; ~0 when every
//   member and pass agrees, large when confident samples disagree with each other
// - variance            Var[p_c] over the M*T samples (population variance), per class

/**
 * Softmax samples: nested [member][pass] with each entry a flat [n, K] array, or one flat
 * array with shape [M, T, n, K].
 */
export type McSamples =
  | { kind: "nested"; samples: ReadonlyArray<ReadonlyArray<ArrayLike<number>>>; numClasses: number }
  | { kind: "flat"; data: ArrayLike<number>; shape: readonly [number, number, number, number] };

export interface McUncertainty {
  members: number;
  passes: number;
  n: number;
  k: number;
  /** Mean probabilities over all members and passes, flat [n, K]. */
  meanProbs: Float64Array;
  /** Argmax of the mean probabilities. */
  predicted: Int32Array;
  predictiveEntropy: Float64Array;
  expectedEntropy: Float64Array;
  mutualInformation: Float64Array;
  /** Per-class variance of the probabilities across the M*T samples, flat [n, K]. */
  variance: Float64Array;
  /** Mean over classes of `variance`, one score per sample. */
  meanVariance: Float64Array;
  /** ln K: the largest possible predictive entropy, for normalising. */
  maxEntropy: number;
}

/** Rows may drift from summing to 1 by float error; beyond this they are not probabilities. */
const SUM_TOLERANCE = 1e-3;

function entropyOf(p: ArrayLike<number>, offset: number, k: number): number {
  let h = 0;
  for (let c = 0; c < k; c++) {
    const v = p[offset + c]!;
    if (v > 0) h -= v * Math.log(v); // 0 ln 0 = 0 by continuity
  }
  return h;
}

/** Entropy in nats of each row of a flat [n, K] probability array. */
export function rowEntropy(data: ArrayLike<number>, k: number): Float64Array {
  const n = data.length / k;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = entropyOf(data, i * k, k);
  return out;
}

/** One softmax sample: a flat [n, K] block starting at `offset` in `data`. */
interface Sample {
  data: ArrayLike<number>;
  offset: number;
}

/** Every softmax sample, in member-major order; offsets avoid copying a flat [M, T, n, K] input. */
function sampleList(s: McSamples): { list: Sample[]; members: number; passes: number; n: number; k: number } {
  if (s.kind === "flat") {
    const [m, t, n, k] = s.shape;
    if (m < 1 || t < 1 || k < 1) throw new Error(`mcUncertainty: shape [${s.shape}] needs at least one member, pass and class`);
    if (s.data.length !== m * t * n * k) throw new Error(`mcUncertainty: data length ${s.data.length} does not match shape [${s.shape}]`);
    const size = n * k;
    const list = Array.from({ length: m * t }, (_, j): Sample => ({ data: s.data, offset: j * size }));
    return { list, members: m, passes: t, n, k };
  }
  const k = s.numClasses;
  const members = s.samples.length;
  if (members === 0) throw new Error("mcUncertainty: no ensemble members");
  const passes = s.samples[0]!.length;
  if (passes === 0) throw new Error("mcUncertainty: member 0 has no passes");
  const size = s.samples[0]![0]!.length;
  s.samples.forEach((mem, mi) => {
    // Unequal pass counts would weight members unequally in the mean: refuse rather than guess.
    if (mem.length !== passes) throw new Error(`mcUncertainty: member ${mi} has ${mem.length} passes, member 0 has ${passes}`);
    mem.forEach((p, ti) => {
      if (p.length !== size) throw new Error(`mcUncertainty: member ${mi} pass ${ti} has ${p.length} values, expected ${size}`);
    });
  });
  if (!Number.isInteger(k) || k < 1 || size % k !== 0) throw new Error(`mcUncertainty: ${size} values per pass is not a multiple of K = ${k}`);
  return { list: s.samples.flat().map((data): Sample => ({ data, offset: 0 })), members, passes, n: size / k, k };
}

/** Mean prediction and uncertainty scores over all members and MC-dropout passes. */
export function mcUncertainty(samples: McSamples): McUncertainty {
  const { list, members, passes, n, k } = sampleList(samples);
  const s = list.length;
  if (n === 0) throw new Error("mcUncertainty: no samples");
  const meanProbs = new Float64Array(n * k);
  const sumSq = new Float64Array(n * k);
  const expectedEntropy = new Float64Array(n);
  for (let j = 0; j < s; j++) {
    const { data: p, offset } = list[j]!;
    for (let i = 0; i < n; i++) {
      let rowSum = 0;
      for (let c = 0; c < k; c++) {
        const v = p[offset + i * k + c]!;
        if (!(v >= 0 && v <= 1 + SUM_TOLERANCE)) throw new Error(`mcUncertainty: sample ${j} row ${i} has ${v}: expected softmax probabilities`);
        rowSum += v;
        meanProbs[i * k + c]! += v;
        sumSq[i * k + c]! += v * v;
      }
      if (Math.abs(rowSum - 1) > SUM_TOLERANCE) throw new Error(`mcUncertainty: sample ${j} row ${i} sums to ${rowSum}: expected softmax probabilities, not logits`);
      expectedEntropy[i]! += entropyOf(p, offset + i * k, k);
    }
  }
  const variance = new Float64Array(n * k);
  for (let x = 0; x < n * k; x++) {
    const mean = meanProbs[x]! / s;
    meanProbs[x] = mean;
    variance[x] = Math.max(0, sumSq[x]! / s - mean * mean); // clamp float cancellation below 0
  }
  const predictiveEntropy = rowEntropy(meanProbs, k);
  const mutualInformation = new Float64Array(n);
  const meanVariance = new Float64Array(n);
  const predicted = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    expectedEntropy[i]! /= s;
    // Jensen: H[E p] >= E[H p]; a tiny negative is float error.
    mutualInformation[i] = Math.max(0, predictiveEntropy[i]! - expectedEntropy[i]!);
    let best = 0;
    let v = 0;
    for (let c = 0; c < k; c++) {
      v += variance[i * k + c]!;
      if (meanProbs[i * k + c]! > meanProbs[i * k + best]!) best = c;
    }
    meanVariance[i] = v / k;
    predicted[i] = best;
  }
  return { members, passes, n, k, meanProbs, predicted, predictiveEntropy, expectedEntropy, mutualInformation, variance, meanVariance, maxEntropy: Math.log(k) };
}

export type UncertaintyScore = "entropy" | "mutualInformation" | "variance";

export interface UncertainCase {
  index: number;
  score: number;
  predicted: number;
  /** Mean probability of the predicted class. */
  confidence: number;
  predictiveEntropy: number;
  mutualInformation: number;
  meanVariance: number;
  /** True label, when labels were given. */
  label?: number;
}

/**
 * The `top` samples with the highest score, most uncertain first; equal scores keep index order
 * so the ranking is deterministic. Default score: mutual information (what the model does not
 * know, the cases worth a clinician's second look).
 */
export function rankUncertain(
  u: McUncertainty,
  options: { by?: UncertaintyScore; top?: number; labels?: ArrayLike<number> } = {},
): UncertainCase[] {
  const by = options.by ?? "mutualInformation";
  const scoreOf = by === "entropy" ? u.predictiveEntropy : by === "variance" ? u.meanVariance : u.mutualInformation;
  const order = Array.from({ length: u.n }, (_, i) => i).sort((a, b) => scoreOf[b]! - scoreOf[a]! || a - b);
  return order.slice(0, options.top ?? u.n).map((i) => ({
    index: i,
    score: scoreOf[i]!,
    predicted: u.predicted[i]!,
    confidence: u.meanProbs[i * u.k + u.predicted[i]!]!,
    predictiveEntropy: u.predictiveEntropy[i]!,
    mutualInformation: u.mutualInformation[i]!,
    meanVariance: u.meanVariance[i]!,
    ...(options.labels ? { label: options.labels[i]! } : {}),
  }));
}
