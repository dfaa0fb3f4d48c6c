// Node-only glue between data folders and a compiled model, for `drifac train` and `drifac
// predict`: layout detection, --data binding, splits and batch streams. Never imports compiler/.
export { detectLayout, loadDataArgs, loadDataFolder, parseDataArgs, type Layout, type LoadFolderOptions } from "./layout.ts";
export { bindData, type Binding, type BoundSource, type ModelIo } from "./bind.ts";
export { collectPredictions, evalLoader, toModelBatch, trainingData, type TaskPredictions, type TrainingData, type WorkflowOptions } from "./batches.ts";
export { evaluatePredictions, historyFromMetrics, metricsJson, metricsLine } from "./evaluate.ts";
