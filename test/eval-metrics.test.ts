// Classification metrics against values computed by hand (the arithmetic is in the comments).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { evaluateTask, evaluateTasks, rocAuc, confusionMatrix } from "../runtime/metrics/index.ts";

const close = (a: number | null, b: number, msg?: string) => {
  assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${msg ?? ""} expected ${b}, got ${a}`);
};

// labels 0 0 0 1 1 2; argmax predictions 0 1 0 1 2 2. Row 4 has no probability above 0.5: a
// 0.5 threshold would predict nothing there, argmax predicts class 2.
const probs = [
  [0.7, 0.2, 0.1],
  [0.2, 0.5, 0.3],
  [0.6, 0.3, 0.1],
  [0.1, 0.8, 0.1],
  [0.3, 0.3, 0.4],
  [0.2, 0.2, 0.6],
];
const labels = [0, 0, 0, 1, 1, 2];

test("three-class example: confusion, accuracy, precision/recall the right way round", () => {
  const m = evaluateTask(probs, labels, { task: "skin", classNames: ["a", "b", "c"] });
  assert.equal(m.confusion, [
    [2, 1, 0],
    [0, 1, 1],
    [0, 0, 1],
  ]);
  assert.equal([...m.predictions], [0, 1, 0, 1, 2, 2]);
  close(m.accuracy, 4 / 6);
  // precision = TP / predicted-as-c (column), recall = TP / truly-c (row)
  close(m.perClass[0]!.precision, 1); // 2 / 2
  close(m.perClass[0]!.recall, 2 / 3); // 2 / 3
  close(m.perClass[1]!.precision, 0.5);
  close(m.perClass[1]!.recall, 0.5);
  close(m.perClass[2]!.precision, 0.5); // 1 / 2
  close(m.perClass[2]!.recall, 1); // 1 / 1
  close(m.perClass[0]!.f1, 0.8); // 2 * 1 * 2/3 / (5/3)
  close(m.perClass[2]!.f1, 2 / 3);
  close(m.macroPrecision, 2 / 3);
  close(m.macroRecall, 13 / 18);
  close(m.balancedAccuracy, 13 / 18);
  close(m.macroF1, 59 / 90); // (24 + 15 + 20) / 30 / 3
  assert.equal(m.perClass.map((c) => [c.support, c.predicted]), [[3, 2], [2, 2], [1, 2]]);
  assert.is(m.task, "skin");
  assert.equal(m.classNames, ["a", "b", "c"]);
});

test("ROC-AUC one-vs-rest with ties counted one half", () => {
  const m = evaluateTask(probs, labels);
  // class 0: positives .7 .2 .6 vs negatives .1 .3 .2 -> 3 + (1 + 0 + 0.5) + 3 = 7.5 of 9
  close(m.auc.perClass[0]!, 7.5 / 9);
  // class 1: positives .8 .3 vs negatives .2 .5 .3 .2 -> 4 + (1 + 0 + 0.5 + 1) = 6.5 of 8
  close(m.auc.perClass[1]!, 6.5 / 8);
  close(m.auc.perClass[2]!, 1);
  close(m.auc.macro, (7.5 / 9 + 6.5 / 8 + 1) / 3);
  assert.equal(m.auc.skipped, []);
  // all scores tied: the ROC curve is the diagonal
  close(rocAuc([0.5, 0.5, 0.5, 0.5], [true, false, true, false]), 0.5);
  close(rocAuc([0.1, 0.9], [false, true]), 1);
  close(rocAuc([0.1, 0.9], [true, false]), 0);
  assert.is(rocAuc([0.1, 0.9], [true, true]), null);
});

/** Independent reference: sweep thresholds, trapezoid rule over (FPR, TPR) points. */
function trapezoidAuc(scores: number[], pos: boolean[]): number {
  const thresholds = [...new Set(scores)].sort((a, b) => b - a);
  const P = pos.filter(Boolean).length;
  const N = pos.length - P;
  let area = 0;
  let [fpr0, tpr0] = [0, 0];
  for (const t of thresholds) {
    let tp = 0;
    let fp = 0;
    scores.forEach((s, i) => {
      if (s >= t) pos[i] ? tp++ : fp++;
    });
    const [fpr, tpr] = [fp / N, tp / P];
    area += ((fpr - fpr0) * (tpr + tpr0)) / 2;
    [fpr0, tpr0] = [fpr, tpr];
  }
  return area;
}

test("rank AUC equals the trapezoid ROC area on data with many ties", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let trial = 0; trial < 20; trial++) {
    const n = 40;
    const scores = Array.from({ length: n }, () => Math.round(rand() * 5) / 5); // 6 distinct values
    const pos = Array.from({ length: n }, (_, i) => (i < 2 ? i === 0 : rand() < 0.3));
    close(rocAuc(scores, pos), trapezoidAuc(scores, pos), `trial ${trial}`);
  }
});

test("imbalanced data: balanced accuracy differs from accuracy; no predictions gives 0, not NaN", () => {
  // 8 of class 0, 2 of class 1, the model always says class 0
  const p = Array.from({ length: 10 }, (_, i) => [0.9 - i * 0.01, 0.1 + i * 0.01]);
  const y = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
  const m = evaluateTask(p, y);
  close(m.accuracy, 0.8);
  close(m.balancedAccuracy, 0.5); // (8/8 + 0/2) / 2
  assert.ok(m.perClass[1]!.noPredictions);
  assert.is(m.perClass[1]!.precision, 0);
  assert.is(m.perClass[1]!.f1, 0);
  close(m.macroPrecision, 0.4); // (0.8 + 0) / 2
  close(m.macroF1, 4 / 9); // (8/9 + 0) / 2
  // the class-1 probability rises with the index, and the two positives are last: perfect ranking
  close(m.auc.perClass[1]!, 1);
  for (const v of [m.macroPrecision, m.macroRecall, m.macroF1, m.balancedAccuracy]) assert.ok(Number.isFinite(v));
});

test("a class absent from the labels: AUC skipped and reported, balanced accuracy over present classes", () => {
  const p = [
    [0.6, 0.3, 0.1],
    [0.2, 0.3, 0.5],
    [0.1, 0.8, 0.1],
    [0.3, 0.6, 0.1],
  ];
  const m = evaluateTask(p, [0, 0, 1, 1], { classNames: ["glioma", "meningioma", "pituitary"] });
  assert.equal(m.confusion, [
    [1, 0, 1],
    [0, 2, 0],
    [0, 0, 0],
  ]);
  close(m.accuracy, 0.75);
  close(m.balancedAccuracy, 0.75); // (1/2 + 2/2) / 2
  close(m.macroRecall, 0.5); // (1/2 + 1 + 0) / 3
  assert.ok(m.perClass[2]!.noSupport);
  assert.not.ok(m.perClass[2]!.noPredictions);
  assert.is(m.perClass[2]!.precision, 0); // predicted once, wrongly
  assert.equal(m.auc.skipped, [{ classIndex: 2, reason: "absent-from-labels" }]);
  assert.is(m.auc.perClass[2], null);
  close(m.auc.perClass[0]!, 0.75); // .6 .2 vs .1 .3 -> 2 + 1 of 4
  close(m.auc.perClass[1]!, 1);
  close(m.auc.macro, 0.875);
});

test("flat Float32Array input gives the same result as rows; several tasks at once", () => {
  const flat = new Float32Array(probs.flat());
  const a = evaluateTask({ data: flat, numClasses: 3 }, labels);
  const b = evaluateTask(probs, labels);
  assert.equal(a.confusion, b.confusion);
  assert.ok(Math.abs(a.auc.macro! - b.auc.macro!) < 1e-12);
  const both = evaluateTasks({ skin: { probs, labels }, mri: { probs: { data: flat, numClasses: 3 }, labels, classNames: ["x", "y", "z"] } });
  assert.equal(both.map((t) => t.task), ["skin", "mri"]);
  assert.equal(both[1]!.classNames, ["x", "y", "z"]);
  assert.equal(confusionMatrix([1, 1], [0, 1], 2), [[0, 1], [0, 1]]);
});

test("bad input is refused with a clear message", () => {
  assert.throws(() => evaluateTask(probs, [0, 0, 0, 1, 1, 3]), /label 3 at index 5/);
  assert.throws(() => evaluateTask(probs, [0, 0, 0, 1, 1, 1.5]), /not an integer/);
  assert.throws(() => evaluateTask(probs, [0, 1]), /2 labels for 6 predictions/);
  assert.throws(() => evaluateTask([[0.5, Number.NaN]], [0]), /not finite/);
  assert.throws(() => evaluateTask({ data: new Float32Array(5), numClasses: 3 }, [0]), /not a multiple/);
  assert.throws(() => evaluateTask(probs, labels, { classNames: ["a"] }), /1 class names/);
});

test.run();
