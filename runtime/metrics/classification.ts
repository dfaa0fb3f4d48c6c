// Per-task classification metrics from predicted probabilities and integer labels.
//
// Conventions (the public DRIFA-Net code got two of them wrong, see docs in shared/paper):
// - the predicted class is the argmax of the probabilities, never a 0.5 threshold;
// - precision of class c = TP / (TP + FP) = TP / (column c of the confusion matrix), "of the
//   samples predicted c, how many are c"; recall = TP / (TP + FN) = TP / (row c), "of the samples
//   that are c, how many were found". The public code passed the arguments swapped.
// - undefined ratios are 0, never NaN, and flagged, so that tables and macro averages stay
//   numeric while the reader can still see which classes had no predictions or no samples.
// Macro precision/recall/F1 average over all K classes (sklearn's behaviour with labels=range(K));
// balanced accuracy averages recall over the classes present in the labels only (sklearn's
// balanced_accuracy_score), so the two differ when a class is absent from the labels.

import { oneVsRestAuc, type OneVsRestAuc } from "./auc.ts";
import { argmaxRows, checkLabels, flattenProbs, type ProbMatrix } from "./probs.ts";

export interface ClassMetrics {
  classIndex: number;
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Samples whose true label is this class (row sum). */
  support: number;
  /** Samples predicted as this class (column sum). */
  predicted: number;
  /** One-vs-rest ROC-AUC; null when the class could not be scored (see auc.skipped). */
  auc: number | null;
  /** No sample was predicted as this class: precision is set to 0 rather than 0/0. */
  noPredictions: boolean;
  /** No sample has this class as its label: recall is set to 0 rather than 0/0. */
  noSupport: boolean;
}

export interface TaskMetrics {
  task: string;
  n: number;
  numClasses: number;
  classNames: string[];
  accuracy: number;
  balancedAccuracy: number;
  macroPrecision: number;
  macroRecall: number;
  macroF1: number;
  perClass: ClassMetrics[];
  auc: OneVsRestAuc;
  /** confusion[t][p]: samples with true class t predicted as p (rows = true, columns = predicted). */
  confusion: number[][];
  /** Argmax prediction per sample, kept so reports can list misclassified cases. */
  predictions: Int32Array;
}

/** Confusion matrix, rows = true class, columns = predicted class. */
export function confusionMatrix(predicted: ArrayLike<number>, labels: ArrayLike<number>, k: number): number[][] {
  if (predicted.length !== labels.length) throw new Error(`confusionMatrix: ${predicted.length} predictions, ${labels.length} labels`);
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < labels.length; i++) m[labels[i]!]![predicted[i]!]!++;
  return m;
}

export interface EvaluateOptions {
  /** Task name for reports; default "task". */
  task?: string;
  /** One name per class; default "0".."K-1". */
  classNames?: readonly string[];
}

/** All metrics of one classification task. */
export function evaluateTask(probs: ProbMatrix, labels: ArrayLike<number>, options: EvaluateOptions = {}): TaskMetrics {
  const { data, n, k } = flattenProbs(probs);
  if (n === 0) throw new Error("evaluateTask: no samples");
  checkLabels(labels, n, k);
  const classNames = options.classNames ? [...options.classNames] : Array.from({ length: k }, (_, c) => String(c));
  if (classNames.length !== k) throw new Error(`evaluateTask: ${classNames.length} class names for K = ${k}`);

  const predictions = argmaxRows(data, n, k);
  const confusion = confusionMatrix(predictions, labels, k);
  const auc = oneVsRestAuc(data, n, k, labels);

  let correct = 0;
  const perClass: ClassMetrics[] = [];
  for (let c = 0; c < k; c++) {
    const tp = confusion[c]![c]!;
    correct += tp;
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < k; j++) {
      support += confusion[c]![j]!;
      predicted += confusion[j]![c]!;
    }
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass.push({
      classIndex: c,
      name: classNames[c]!,
      precision,
      recall,
      f1,
      support,
      predicted,
      auc: auc.perClass[c]!,
      noPredictions: predicted === 0,
      noSupport: support === 0,
    });
  }
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
  return {
    task: options.task ?? "task",
    n,
    numClasses: k,
    classNames,
    accuracy: correct / n,
    balancedAccuracy: mean(perClass.filter((m) => !m.noSupport).map((m) => m.recall)),
    macroPrecision: mean(perClass.map((m) => m.precision)),
    macroRecall: mean(perClass.map((m) => m.recall)),
    macroF1: mean(perClass.map((m) => m.f1)),
    perClass,
    auc,
    confusion,
    predictions,
  };
}

export interface TaskInput {
  probs: ProbMatrix;
  labels: ArrayLike<number>;
  classNames?: readonly string[];
}

/** Metrics for several tasks at once (one per modality in DRIFA-Net), keyed by task name. */
export function evaluateTasks(tasks: Record<string, TaskInput>): TaskMetrics[] {
  return Object.entries(tasks).map(([task, t]) =>
    evaluateTask(t.probs, t.labels, { task, ...(t.classNames ? { classNames: t.classNames } : {}) }),
  );
}
