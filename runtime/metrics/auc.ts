// Exact ROC-AUC. The area under the ROC curve drawn with straight (trapezoid) segments between
// thresholds equals the Mann-Whitney U statistic divided by nPos * nNeg, where tied scores get
// their average rank: a tie between a positive and a negative counts one half, which is exactly
// what the diagonal trapezoid segment over a tied threshold contributes. So one sort gives the
// exact value, with no threshold grid and no approximation.

/**
 * ROC-AUC of `scores` for a binary problem. `positive[i]` says whether sample i is positive.
 * Returns null when either class is empty: the curve is undefined there, and 0.5 or NaN would
 * silently distort a macro average.
 */
export function rocAuc(scores: ArrayLike<number>, positive: ArrayLike<boolean>): number | null {
  const n = scores.length;
  if (positive.length !== n) throw new Error(`rocAuc: ${n} scores but ${positive.length} labels`);
  let nPos = 0;
  for (let i = 0; i < n; i++) if (positive[i]) nPos++;
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;

  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  let rankSumPos = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    const avgRank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let j = start; j < end; j++) if (positive[order[j]!]) rankSumPos += avgRank;
    start = end;
  }
  const u = rankSumPos - (nPos * (nPos + 1)) / 2;
  return u / (nPos * nNeg);
}

export interface OneVsRestAuc {
  /** AUC of class c against the rest, from column c of the probabilities; null where skipped. */
  perClass: (number | null)[];
  /** Unweighted mean over the classes that could be scored; null when none could. */
  macro: number | null;
  /** Classes left out of the macro average, and why. */
  skipped: { classIndex: number; reason: "absent-from-labels" | "no-negatives" }[];
}

/** One-vs-rest ROC-AUC per class from flat probabilities [n, K] and integer labels. */
export function oneVsRestAuc(data: ArrayLike<number>, n: number, k: number, labels: ArrayLike<number>): OneVsRestAuc {
  const perClass: (number | null)[] = [];
  const skipped: OneVsRestAuc["skipped"] = [];
  const scores = new Float64Array(n);
  const positive = new Array<boolean>(n);
  for (let c = 0; c < k; c++) {
    let nPos = 0;
    for (let i = 0; i < n; i++) {
      scores[i] = data[i * k + c]!;
      positive[i] = labels[i] === c;
      if (positive[i]) nPos++;
    }
    if (nPos === 0) skipped.push({ classIndex: c, reason: "absent-from-labels" });
    else if (nPos === n) skipped.push({ classIndex: c, reason: "no-negatives" });
    perClass.push(rocAuc(scores, positive));
  }
  const scored = perClass.filter((v): v is number => v !== null);
  const macro = scored.length ? scored.reduce((a, b) => a + b, 0) / scored.length : null;
  return { perClass, macro, skipped };
}
