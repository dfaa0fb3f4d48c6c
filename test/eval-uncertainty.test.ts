// Monte Carlo dropout ensemble uncertainty: means over all members and passes, entropy, BALD.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mcUncertainty, rankUncertain, rowEntropy } from "../runtime/uncertainty/index.ts";

const near = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `expected ${b}, got ${a}`);

/** M members x T passes, each pass the same [n, K] rows. */
function repeat(members: number[][][], passes: number): number[][][] {
  return members.map((rows) => Array.from({ length: passes }, () => rows.flat()));
}

test("a confident, agreeing ensemble has ~0 mutual information and low entropy", () => {
  const rows = [[0.99, 0.005, 0.005]];
  const u = mcUncertainty({ kind: "nested", samples: repeat([rows, rows, rows, rows, rows], 30), numClasses: 3 });
  assert.is(u.members, 5);
  assert.is(u.passes, 30);
  near(u.mutualInformation[0]!, 0, 1e-12);
  near(u.predictiveEntropy[0]!, -(0.99 * Math.log(0.99) + 2 * 0.005 * Math.log(0.005)));
  assert.ok(u.predictiveEntropy[0]! < 0.07);
  near(u.meanVariance[0]!, 0, 1e-15);
  assert.is(u.predicted[0], 0);
});

test("members that disagree confidently: mutual information near ln 2, mostly epistemic", () => {
  const u = mcUncertainty({ kind: "nested", samples: repeat([[[0.999, 0.001]], [[0.001, 0.999]]], 10), numClasses: 2 });
  near(u.meanProbs[0]!, 0.5);
  near(u.predictiveEntropy[0]!, Math.log(2));
  assert.ok(u.mutualInformation[0]! > 0.9 * Math.log(2));
  assert.ok(u.expectedEntropy[0]! < 0.01);
  // each class probability is 0.999 or 0.001 with equal weight: variance = 0.499^2
  near(u.variance[0]!, 0.499 ** 2);
});

test("the mean covers ALL members and passes, not one member's samples", () => {
  // members 0 and 1 say [0.8, 0.2]; member 2 says [0.2, 0.8]; passes differ within member 2
  const samples = [
    [[0.8, 0.2], [0.8, 0.2]],
    [[0.8, 0.2], [0.8, 0.2]],
    [[0.1, 0.9], [0.3, 0.7]],
  ];
  const u = mcUncertainty({ kind: "nested", samples, numClasses: 2 });
  near(u.meanProbs[0]!, (0.8 * 4 + 0.1 + 0.3) / 6); // 0.6, not member 0's 0.8
  near(u.meanProbs[1]!, 0.4);
  // hand-computed population variance of class 0: values .8 .8 .8 .8 .1 .3, mean .6
  near(u.variance[0]!, (4 * 0.04 + 0.25 + 0.09) / 6);
});

test("entropy bounds: 0 <= E[H] <= H[E] <= ln K and 0 <= MI <= H[E] on random softmax samples", () => {
  let seed = 11;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const [M, T, n, K] = [3, 7, 25, 5];
  const data = new Float32Array(M * T * n * K);
  for (let r = 0; r < M * T * n; r++) {
    const logits = Array.from({ length: K }, () => (rand() - 0.5) * 8);
    const z = logits.map(Math.exp);
    const s = z.reduce((a, b) => a + b, 0);
    z.forEach((v, c) => (data[r * K + c] = v / s));
  }
  const u = mcUncertainty({ kind: "flat", data, shape: [M, T, n, K] });
  near(u.maxEntropy, Math.log(K));
  for (let i = 0; i < n; i++) {
    assert.ok(u.expectedEntropy[i]! >= 0);
    assert.ok(u.expectedEntropy[i]! <= u.predictiveEntropy[i]! + 1e-9);
    assert.ok(u.predictiveEntropy[i]! <= Math.log(K) + 1e-9);
    assert.ok(u.mutualInformation[i]! >= 0 && u.mutualInformation[i]! <= u.predictiveEntropy[i]! + 1e-9);
  }
  // the flat layout [M, T, n, K] and the nested one agree
  const nested = Array.from({ length: M }, (_, m) => Array.from({ length: T }, (_, t) => data.subarray((m * T + t) * n * K, (m * T + t + 1) * n * K)));
  const v = mcUncertainty({ kind: "nested", samples: nested, numClasses: K });
  for (let i = 0; i < n; i++) near(v.mutualInformation[i]!, u.mutualInformation[i]!);
  // a uniform prediction reaches the upper bound
  near(rowEntropy([0.25, 0.25, 0.25, 0.25], 4)[0]!, Math.log(4));
  near(rowEntropy([1, 0, 0, 0], 4)[0]!, 0);
});

test("ranking puts the most uncertain first, deterministic on ties, with labels and top", () => {
  const rows = [
    [0.98, 0.02], // confident everywhere
    [0.5, 0.5], // same in every sample: high entropy, zero MI
    [0.9, 0.1], // disagrees across members (see member 1)
    [0.98, 0.02],
  ];
  const member1 = rows.map((r, i) => (i === 2 ? [0.1, 0.9] : r));
  const u = mcUncertainty({ kind: "nested", samples: [[rows.flat()], [member1.flat()]], numClasses: 2 });
  const byMi = rankUncertain(u, { top: 2, labels: [0, 1, 1, 0] });
  assert.equal(byMi.map((c) => c.index), [2, 0]); // 0 and 3 tie at MI 0 with row 1; index order
  assert.is(byMi[0]!.label, 1);
  assert.is(byMi.length, 2);
  const byEntropy = rankUncertain(u, { by: "entropy" });
  assert.equal(byEntropy.map((c) => c.index), [1, 2, 0, 3]);
  near(byEntropy[0]!.confidence, 0.5);
  assert.is(rankUncertain(u, { by: "variance" })[0]!.index, 2);
});

test("logits, ragged ensembles and shape mismatches are refused", () => {
  assert.throws(() => mcUncertainty({ kind: "nested", samples: [[[2.0, -1.0]]], numClasses: 2 }), /softmax/);
  assert.throws(() => mcUncertainty({ kind: "nested", samples: [[[0.3, 0.3]]], numClasses: 2 }), /sums to/);
  assert.throws(() => mcUncertainty({ kind: "nested", samples: [[[0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]], numClasses: 2 }), /member 1 has 2 passes/);
  assert.throws(() => mcUncertainty({ kind: "flat", data: new Float32Array(7), shape: [1, 1, 2, 4] }), /does not match/);
});

test.run();
