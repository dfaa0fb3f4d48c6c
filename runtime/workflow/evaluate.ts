// Evaluation of a trained run on its test split, in the forms a run folder keeps: eval.json
// (every metric of runtime/metrics per task, arrays instead of typed arrays) and the training
// curves for the report, read back from metrics.jsonl so a resumed run draws its whole history.
import fs from "node:fs";
import { evaluateTasks, type TaskMetrics } from "../metrics/index.ts";
import type { EpochLog } from "../report/index.ts";
import type { TaskPredictions } from "./batches.ts";

/** All metrics per task from collected predictions (class names from the model). */
export function evaluatePredictions(preds: Record<string, TaskPredictions>, classNames: Record<string, readonly string[]>): TaskMetrics[] {
  const input = Object.fromEntries(
    Object.entries(preds)
      .filter(([, p]) => p.labels.length > 0)
      .map(([t, p]) => [t, { probs: { data: p.probs, numClasses: p.k }, labels: p.labels, classNames: classNames[t]! }]),
  );
  return evaluateTasks(input);
}

/** A TaskMetrics as plain JSON (predictions as a number array). */
export function metricsJson(m: TaskMetrics): Record<string, unknown> {
  return { ...m, predictions: Array.from(m.predictions) };
}

/**
 * Per-task curves from metrics.jsonl lines. Validation has loss and accuracy per task; the
 * training loss is logged only as the weighted total, so it is drawn only for a one-task model,
 * where the total is that task's loss.
 */
export function historyFromMetrics(file: string, tasks: readonly string[]): EpochLog[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim());
  const out: EpochLog[] = [];
  for (const l of lines) {
    const r = JSON.parse(l) as Record<string, number | null>;
    const epoch = r.epoch as number;
    for (const t of tasks) {
      if (tasks.length === 1 && typeof r.train_loss === "number") out.push({ epoch, task: t, split: "train", loss: r.train_loss });
      const loss = r[`loss_${t}`];
      const acc = r[`acc_${t}`];
      if (typeof loss === "number" || typeof acc === "number") {
        out.push({ epoch, task: t, split: "val", ...(typeof loss === "number" ? { loss } : {}), ...(typeof acc === "number" ? { accuracy: acc } : {}) });
      }
    }
  }
  return out;
}

/** One line per task for a terminal: the headline metrics. */
export function metricsLine(m: TaskMetrics): string {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const auc = m.auc.macro === null ? "n/a" : m.auc.macro.toFixed(3);
  return `${m.task}: n ${m.n}, accuracy ${pct(m.accuracy)}, balanced ${pct(m.balancedAccuracy)}, macro P/R/F1 ${pct(m.macroPrecision)}/${pct(m.macroRecall)}/${pct(m.macroF1)}, ROC-AUC ${auc}`;
}
