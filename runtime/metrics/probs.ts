// Shared input handling for the evaluation code: predicted probabilities arrive either as one
// flat row-major [n, K] array (what a GPU readback gives) or as one row per sample (what tests
// and hand-written code give). Everything downstream works on the flat form.

/** Predicted probabilities [n, K]: flat row-major with its class count, or one row per sample. */
export type ProbMatrix = { data: ArrayLike<number>; numClasses: number } | ReadonlyArray<ArrayLike<number>>;

export interface FlatProbs {
  data: ArrayLike<number>;
  n: number;
  k: number;
}

/** Normalises either input form to flat [n, K], checking the shape and that no value is NaN. */
export function flattenProbs(probs: ProbMatrix): FlatProbs {
  if (isFlat(probs)) {
    const { data, numClasses: k } = probs;
    if (!Number.isInteger(k) || k < 1) throw new Error(`numClasses must be a positive integer, got ${k}`);
    if (data.length % k !== 0) throw new Error(`probabilities: length ${data.length} is not a multiple of K = ${k}`);
    checkFinite(data);
    return { data, n: data.length / k, k };
  }
  const n = probs.length;
  if (n === 0) throw new Error("probabilities: no samples");
  const k = probs[0]!.length;
  if (k < 1) throw new Error("probabilities: rows have no classes");
  const data = new Float64Array(n * k);
  for (let i = 0; i < n; i++) {
    const row = probs[i]!;
    if (row.length !== k) throw new Error(`probabilities: row ${i} has ${row.length} classes, row 0 has ${k}`);
    for (let c = 0; c < k; c++) data[i * k + c] = row[c]!;
  }
  checkFinite(data);
  return { data, n, k };
}

function isFlat(p: ProbMatrix): p is { data: ArrayLike<number>; numClasses: number } {
  return !Array.isArray(p) && typeof (p as { numClasses?: unknown }).numClasses === "number";
}

function checkFinite(data: ArrayLike<number>): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new Error(`probabilities: value ${data[i]} at flat index ${i} is not finite`);
  }
}

/** Labels must be integers in [0, K): a float label or an out-of-range one is a data bug upstream. */
export function checkLabels(labels: ArrayLike<number>, n: number, k: number): void {
  if (labels.length !== n) throw new Error(`labels: ${labels.length} labels for ${n} predictions`);
  for (let i = 0; i < n; i++) {
    const y = labels[i]!;
    if (!Number.isInteger(y) || y < 0 || y >= k) throw new Error(`labels: label ${y} at index ${i} is not an integer in [0, ${k})`);
  }
}

/**
 * Predicted class per row by argmax (first maximum wins on exact ties, like numpy). Never a 0.5
 * threshold: with K classes softmax outputs rarely exceed 0.5, so thresholding (the public
 * code's defect) predicts "nothing" for many samples.
 */
export function argmaxRows(data: ArrayLike<number>, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestV = data[i * k]!;
    for (let c = 1; c < k; c++) {
      const v = data[i * k + c]!;
      if (v > bestV) {
        bestV = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}
