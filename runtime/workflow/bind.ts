// `--data NAME=PATH` to the model: NAME is a model input, and a task's labels come from the data
// set of its `data` input (the `data:` argument of `classify` in the .drifa file). A data set with
// several views (BraTS: t1, t1ce, t2, flair) feeds the inputs NAME_<view>, or inputs named after
// the views. Labels are remapped by class name, so a folder's sorted class order never has to
// match the order the model lists its classes in.
import { DataError, type DataSet } from "../data/index.ts";

/** What binding needs of a model: the manifest's (or a ModelRunner's) inputs and tasks. */
export interface ModelIo {
  inputs: readonly { name: string; shape: readonly number[] }[];
  tasks: readonly { name: string; classes: readonly string[]; data: string }[];
}

export interface BoundSource {
  /** The --data NAME. */
  name: string;
  /** The data set with labels already remapped to the classes of the tasks it labels. */
  dataset: DataSet;
  /** The model input fed by each view of the data set, in view order. */
  inputs: string[];
  /** Tasks whose labels this data set supplies. */
  tasks: string[];
}

export interface Binding {
  sources: BoundSource[];
  /** Side of the square model inputs. */
  size: number;
}

function viewInputs(name: string, ds: DataSet, model: ModelIo): string[] {
  const names = new Set(model.inputs.map((i) => i.name));
  if (ds.views.length === 1) return [name];
  for (const candidate of [ds.views.map((v) => `${name}_${v}`), ds.views]) if (candidate.every((c) => names.has(c))) return candidate;
  throw new DataError(ds.root, `has views ${ds.views.join(", ")}; the model needs inputs ${ds.views.map((v) => `${name}_${v}`).join(", ")} (or ${ds.views.join(", ")})`);
}

/** The data set with labels in the task's class order; a class the task lacks is an error. */
function remapClasses(ds: DataSet, task: ModelIo["tasks"][number]): DataSet {
  const same = ds.classes.length === task.classes.length && ds.classes.every((c, i) => c === task.classes[i]);
  if (same) return ds;
  const key = (c: string) => c.toLowerCase();
  const order = ds.classes.map((c) => task.classes.findIndex((t) => key(t) === key(c)));
  const unknown = ds.classes.filter((_, i) => order[i]! < 0);
  if (unknown.length) {
    throw new DataError(ds.root, `class(es) ${unknown.join(", ")} are not classes of task ${task.name} (${task.classes.join(", ")})`);
  }
  const remap = (s: DataSet["samples"][number]) => ({ ...s, label: order[s.label]! });
  return { ...ds, classes: [...task.classes], samples: ds.samples.map(remap), ...(ds.test ? { test: ds.test.map(remap) } : {}) };
}

/** Matches data sets (by --data NAME) to the model's inputs and tasks. */
export function bindData(model: ModelIo, data: ReadonlyMap<string, DataSet>): Binding {
  const sizes = new Set(model.inputs.map((i) => `${i.shape.join("x")}`));
  const shape = model.inputs[0]?.shape ?? [];
  if (sizes.size !== 1 || shape.length !== 3 || shape[0] !== 3 || shape[1] !== shape[2]) {
    throw new Error(`the model's inputs must all be [3, S, S] images; they are ${[...sizes].join(", ")}`);
  }
  const known = model.inputs.map((i) => i.name);
  const used = new Map<string, string>();
  const sources: BoundSource[] = [];
  for (const [name, ds0] of data) {
    const inputs = viewInputs(name, ds0, model);
    if (ds0.views.length === 1 && !known.includes(name)) throw new Error(`--data ${name}: the model has no input ${name} (inputs: ${known.join(", ")})`);
    for (const i of inputs) {
      if (used.has(i)) throw new Error(`--data ${name}: input ${i} is already fed by --data ${used.get(i)}`);
      used.set(i, name);
    }
    const tasks = model.tasks.filter((t) => inputs.includes(t.data));
    let dataset = ds0;
    for (const t of tasks) dataset = remapClasses(dataset, t);
    sources.push({ name, dataset, inputs, tasks: tasks.map((t) => t.name) });
  }
  const missing = known.filter((i) => !used.has(i));
  if (missing.length) throw new Error(`no data for model input(s) ${missing.join(", ")}: add --data ${missing[0]}=PATH`);
  return { sources, size: shape[1]! };
}
