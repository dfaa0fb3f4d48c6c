// Evaluation metrics for classification tasks. Pure computation: no Node or GPU imports, so the
// same code runs in a browser next to the WebGPU runtime.
export { argmaxRows, flattenProbs, type FlatProbs, type ProbMatrix } from "./probs.ts";
export { oneVsRestAuc, rocAuc, type OneVsRestAuc } from "./auc.ts";
export {
  confusionMatrix,
  evaluateTask,
  evaluateTasks,
  type ClassMetrics,
  type EvaluateOptions,
  type TaskInput,
  type TaskMetrics,
} from "./classification.ts";
