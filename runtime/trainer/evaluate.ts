// One pass over evaluation batches: losses through runner.evalLoss and per-task metrics through
// runner.predict + runtime/metrics. Only items marked valid count, so the padding of a
// fixed-size last batch and the wrap-around of shorter, index-paired modalities never skew
// the numbers. Browser-safe.

import { evaluateTask, type TaskMetrics } from "../metrics/index.ts";
import type { Batch, BatchStream, ModelRunner } from "./types.ts";

export interface Evaluation {
  /** Σ weight_t · taskLoss_t, or NaN when no item was valid. */
  loss: number;
  /** Per task: mean cross-entropy over its valid items. */
  taskLosses: Record<string, number>;
  /** Per task: accuracy, confusion matrix, precision/recall... (argmax, never a 0.5 threshold). */
  metrics: Record<string, TaskMetrics>;
  /** Per task: valid items seen. */
  counts: Record<string, number>;
  batches: number;
}

export interface EvaluateOptions {
  /** Skip predict (losses only); metrics stay empty. */
  lossOnly?: boolean;
}

/** Valid items of `task` in `batch`: a mask (1 = counts) and how many. */
function validMask(batch: Batch, task: string): { mask: Uint8Array | undefined; n: number } {
  const mask = batch.valid?.[task];
  if (!mask) return { mask: undefined, n: batch.size };
  let n = 0;
  for (let i = 0; i < batch.size; i++) n += mask[i] ? 1 : 0;
  return { mask, n };
}

/** Grows a Float64 buffer by doubling, so collecting a large validation set stays linear. */
class Grow {
  data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const d = new Float64Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = v;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

export async function evaluate(runner: ModelRunner, stream: BatchStream, options: EvaluateOptions = {}): Promise<Evaluation> {
  const lossSum: Record<string, number> = {};
  const counts: Record<string, number> = {};
  const probs: Record<string, Grow> = {};
  const labels: Record<string, Grow> = {};
  for (const t of runner.tasks) {
    lossSum[t.name] = 0;
    counts[t.name] = 0;
    probs[t.name] = new Grow();
    labels[t.name] = new Grow();
  }
  let batches = 0;
  for await (const batch of stream) {
    batches++;
    const [losses, predicted] = await Promise.all([runner.evalLoss(batch), options.lossOnly ? undefined : runner.predict(batch)]);
    for (const t of runner.tasks) {
      const { mask, n } = validMask(batch, t.name);
      if (n === 0) continue; // a task's loss over zero items is 0/0; skip rather than poison the mean
      const l = losses.taskLosses[t.name];
      if (l === undefined) throw new Error(`evalLoss returned no loss for task ${t.name}`);
      lossSum[t.name]! += l * n;
      counts[t.name]! += n;
      if (!predicted) continue;
      const p = predicted[t.name];
      const y = batch.labels[t.name];
      const k = t.classes.length;
      if (!p || p.length !== batch.size * k) throw new Error(`predict: task ${t.name} gave ${p?.length ?? "no"} values, expected ${batch.size} x ${k}`);
      if (!y) throw new Error(`batch has no labels for task ${t.name}`);
      for (let i = 0; i < batch.size; i++) {
        if (mask && !mask[i]) continue;
        for (let c = 0; c < k; c++) probs[t.name]!.push(p[i * k + c]!);
        labels[t.name]!.push(y[i]!);
      }
    }
  }
  const taskLosses: Record<string, number> = {};
  const metrics: Record<string, TaskMetrics> = {};
  let loss = 0;
  let any = false;
  for (const t of runner.tasks) {
    const n = counts[t.name]!;
    taskLosses[t.name] = n > 0 ? lossSum[t.name]! / n : NaN;
    if (n > 0) {
      any = true;
      loss += t.weight * taskLosses[t.name]!;
    }
    if (!options.lossOnly && n > 0) {
      metrics[t.name] = evaluateTask({ data: probs[t.name]!.view(), numClasses: t.classes.length }, labels[t.name]!.view(), {
        task: t.name,
        classNames: t.classes,
      });
    }
  }
  return { loss: any ? loss : NaN, taskLosses, metrics, counts, batches };
}
