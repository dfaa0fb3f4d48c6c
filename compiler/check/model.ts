// Elaborating a model into the checked program: compile-time parameters (with --set
// overrides), the body, the tasks and the training settings. Also the generic check of a
// library's blocks, instantiated with symbolic dimensions when no model uses them.
import type * as A from "../../grammar/ast.ts";
import { type Diagnostic, DiagnosticError } from "../../grammar/diagnostic.ts";
import { closest } from "../diagnostics/suggest.ts";
import { bindArguments } from "./bind.ts";
import { Elaborator, Frame } from "./elaborate.ts";
import type { Module } from "./modules.ts";
import type { Program, Task, TrainConfig } from "./program.ts";
import { formatShape } from "./shape.ts";
import { Size } from "./size.ts";
import { type Located, type Value, describeValue, expectInt, expectList, expectNumber, expectTensor, fail, int } from "./values.ts";

/** A `--set name=value` override, as typed on the command line. */
export type Settings = Record<string, string>;

export function parseSettingValue(raw: string): Value {
  if (/^-?\d+$/.test(raw)) return int(Number(raw));
  if (/^-?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)$/.test(raw)) return { k: "float", v: Number(raw) };
  if (raw === "true" || raw === "false") return { k: "bool", v: raw === "true" };
  return { k: "string", v: raw };
}

const DEFAULT_TRAIN: TrainConfig = {
  optimizer: { kind: "adam", lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0 },
  schedule: { kind: "constant" },
  batch: 32,
  epochs: 10,
  earlyStop: null,
  seed: 0,
};

class ModelElaborator extends Elaborator {
  readonly tasks: Task[] = [];
  train: TrainConfig = structuredClone(DEFAULT_TRAIN);
  private trainSeen: A.TrainStmt | null = null;

  protected override modelStatement(s: A.TaskStmt | A.TrainStmt): void {
    if (s.kind === "Task") this.task(s);
    else this.trainSection(s);
  }

  private task(s: A.TaskStmt): void {
    const call = s.value;
    if (call.callee.kind !== "Ident" || call.callee.name !== "classify") {
      fail("E201", "unknown task kind: tasks are written classify(logits, classes: K, weight: w, data: input)", this.file, call.callee.span);
    }
    if (this.tasks.some((t) => t.name === s.name.text)) fail("E205", `task '${s.name.text}' is declared twice`, this.file, s.name.span);
    const args = this.namer.withBase(s.name.text, false, () => call.args.map((a) => ({ name: a.name, value: { value: this.eval(a.value), span: a.value.span } })));
    const params = [
      { name: "logits", required: true },
      { name: "classes", required: true },
      { name: "weight", required: false },
      { name: "data", required: false },
    ];
    const bound = bindArguments("classify", params, args, false, this.file, call.span);
    const logits = expectTensor(bound.get("logits")!, this.file, "the task's logits");
    if (logits.shape.length !== 2) fail("E301", `logits must be [N, classes], found ${formatShape(logits.shape)}`, this.file, bound.get("logits")!.span);
    const classesArg = bound.get("classes")!;
    let classes: string[];
    if (classesArg.value.k === "list") {
      classes = expectList(classesArg, this.file, "classes").map((v) => {
        if (v.k !== "string") fail("E302", `class names must be strings, found ${describeValue(v)}`, this.file, classesArg.span);
        return v.v;
      });
      const dup = classes.find((c, i) => classes.indexOf(c) !== i);
      if (dup !== undefined) fail("E402", `class '${dup}' is listed twice`, this.file, classesArg.span);
    } else {
      const n = expectInt(classesArg, this.file, "classes");
      classes = Array.from({ length: Math.max(0, n) }, (_, i) => String(i));
    }
    if (classes.length < 2) fail("E402", "a classification task needs at least 2 classes", this.file, classesArg.span);
    const width = logits.shape[1]!.size;
    if (!width.equals(Size.of(classes.length))) {
      fail("E300", `logits ${formatShape(logits.shape)} have ${width} columns but the task has ${classes.length} classes`, this.file, bound.get("logits")!.span);
    }
    const weightArg = bound.get("weight");
    const weight = weightArg ? expectNumber(weightArg, this.file, "weight") : 1;
    if (!(weight >= 0) || !Number.isFinite(weight)) fail("E402", `a task weight must be a finite number >= 0, found ${weight}`, this.file, weightArg!.span);
    const dataArg = bound.get("data");
    let data: string;
    if (dataArg) {
      const t = expectTensor(dataArg, this.file, "data");
      const input = this.inputs.find((i) => i.node === t.node);
      if (!input) fail("E302", "data must name one of the model's inputs", this.file, dataArg.span);
      data = input.name;
    } else {
      if (this.inputs.length !== 1) fail("E207", "with several inputs, say which one supplies the labels: data: <input>", this.file, call.span);
      data = this.inputs[0]!.name;
    }
    this.tasks.push({ name: s.name.text, kind: "classify", logits: logits.node, classes, weight, data, span: s.span });
  }

  private trainSection(s: A.TrainStmt): void {
    if (this.trainSeen) fail("E205", "a model has one train section", this.file, s.span);
    this.trainSeen = s;
    const seen = new Set<string>();
    const keys = ["optimizer", "schedule", "batch", "epochs", "early_stop", "seed"];
    for (const entry of s.entries) {
      const key = entry.key.text;
      if (!keys.includes(key)) {
        const suggestion = closest(key, keys);
        fail("E206", `unknown training setting '${key}'`, this.file, entry.key.span, suggestion ? `did you mean '${suggestion}'?` : `settings are: ${keys.join(", ")}`);
      }
      if (seen.has(key)) fail("E205", `training setting '${key}' is given twice`, this.file, entry.key.span);
      seen.add(key);
      const value: Located = { value: this.eval(entry.value), span: entry.value.span };
      const positiveInt = (what: string, min: number) => {
        const n = expectInt(value, this.file, what);
        if (n < min) fail("E402", `${what} must be at least ${min}, found ${n}`, this.file, value.span);
        return n;
      };
      switch (key) {
        case "optimizer":
        case "schedule": {
          const kinds = key === "optimizer" ? ["adam", "adamw", "sgd"] : ["constant", "plateau", "step", "cosine"];
          const v = value.value;
          if (v.k !== "record" || !kinds.includes(v.kind)) {
            fail("E302", `${key} must be one of ${kinds.map((k) => `${k}(...)`).join(", ")}, found ${describeValue(v)}`, this.file, value.span);
          }
          const rec: Record<string, number | string | boolean> = { kind: v.kind };
          for (const [f, fv] of v.fields) rec[f] = fv.k === "bool" ? fv.v : fv.k === "string" ? fv.v : expectNumber({ value: fv, span: value.span }, this.file, f);
          if (key === "optimizer") this.train.optimizer = rec as TrainConfig["optimizer"];
          else this.train.schedule = rec as TrainConfig["schedule"];
          break;
        }
        case "batch":
          this.train.batch = positiveInt("batch", 1);
          break;
        case "epochs":
          this.train.epochs = positiveInt("epochs", 1);
          break;
        case "early_stop":
          this.train.earlyStop = positiveInt("early_stop", 0) || null;
          break;
        case "seed":
          this.train.seed = positiveInt("seed", 0);
          break;
      }
    }
  }
}

/** Elaborates the model `name` (or the file's only model) into a checked program. */
export function elaborateModel(mod: Module, settings: Settings = {}, name?: string): Program {
  const model = pickModel(mod, name);
  const el = new ModelElaborator();
  const frame = new Frame(mod.display, mod.scope, "", "model");
  el.frame = frame;
  const known = model.params.map((p) => p.name.text);
  for (const key of Object.keys(settings)) {
    if (!known.includes(key)) {
      const suggestion = closest(key, known);
      fail("E206", `model ${model.name.text} has no parameter '${key}' (from --set)`, mod.display, model.name.span, suggestion ? `did you mean '${suggestion}'?` : `its parameters are: ${known.join(", ") || "none"}`);
    }
  }
  const resolved: Record<string, number | string | boolean> = {};
  for (const p of model.params) {
    let value: Located;
    if (settings[p.name.text] !== undefined) value = { value: parseSettingValue(settings[p.name.text]!), span: p.span };
    else if (p.default) value = { value: el.eval(p.default), span: p.default.span };
    else fail("E207", `model parameter '${p.name.text}' needs a default value`, mod.display, p.span);
    const v = p.type ? matchModelParam(el, value, p) : value.value;
    frame.vars.set(p.name.text, v);
    if (v.k === "int" && v.v.isConstant) resolved[p.name.text] = v.v.constant;
    else if (v.k === "float" || v.k === "bool" || v.k === "string") resolved[p.name.text] = v.v;
  }
  el.exec(model.body);
  for (const p of el.params) {
    if (p.shape.some((s) => !s.isConstant)) {
      fail("E402", `parameter '${p.name}' has a shape [${p.shape.join(", ")}] that depends on the batch size`, p.file, p.span);
    }
  }
  return {
    model: model.name.text,
    file: mod.display,
    settings: resolved,
    inputs: el.inputs,
    nodes: el.nodes,
    params: el.params,
    tasks: el.tasks,
    train: el.train,
    blocks: el.instances,
  };
}

function matchModelParam(el: Elaborator, value: Located, p: A.ParamDecl): Value {
  const t = p.type!;
  if (t.kind !== "ScalarType" && t.kind !== "ListType") fail("E302", "model parameters are compile-time values (int, float, bool, string, lists)", el.file, t.span);
  const v = value.value;
  const name = t.kind === "ScalarType" ? t.name.text : "list";
  const bad = () => fail("E302", `model parameter '${p.name.text}' must be ${name}, found ${describeValue(v)}`, el.file, value.span);
  if (name === "int") return v.k === "int" ? v : bad();
  if (name === "float") return v.k === "float" ? v : v.k === "int" && v.v.isConstant ? { k: "float", v: v.v.constant } : bad();
  if (name === "bool") return v.k === "bool" ? v : bad();
  if (name === "string") return v.k === "string" ? v : bad();
  if (name === "list") return v.k === "list" ? v : bad();
  return fail("E302", `unknown type '${name}'`, el.file, t.span);
}

export function pickModel(mod: Module, name?: string): A.ModelDecl {
  const models = mod.file.models;
  const span = { start: 0, end: 0, line: 1, col: 1 };
  if (name) {
    const m = models.find((x) => x.name.text === name);
    if (!m) {
      const s = closest(name, models.map((x) => x.name.text));
      fail("E209", `no model '${name}' in ${mod.display}`, mod.display, span, s ? `did you mean '${s}'?` : undefined);
    }
    return m;
  }
  if (models.length === 0) fail("E209", `${mod.display} has no model`, mod.display, span, "a file for training declares `model Name(...) { ... }`");
  if (models.length > 1) fail("E209", `${mod.display} has ${models.length} models; pick one with --model`, mod.display, models[1]!.name.span);
  return models[0]!;
}

/** Checks blocks that no model instantiates: each block whose parameters all have defaults or
 * tensor types is instantiated with fresh symbolic dimensions (lists of tensors get two). */
export function checkBlocksGeneric(mod: Module): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  for (const decl of mod.file.blocks) {
    const instantiable = decl.params.every((p) => p.default !== null || (p.type !== null && (p.type.kind === "TensorType" || (p.type.kind === "ListType" && p.type.element.kind === "TensorType"))));
    if (!instantiable) continue;
    const el = new Elaborator();
    el.frame = new Frame(mod.display, mod.scope, "", "model");
    try {
      const args = decl.params
        .filter((p) => p.default === null)
        .map((p) => {
          const t = p.type!;
          const dims = t.kind === "TensorType" ? t.dims : (t as A.ListType).element.kind === "TensorType" ? ((t as A.ListType).element as A.TensorType).dims : [];
          const shape = dims.map((d, i) => {
            const label = d.label?.text ?? (d.size?.kind === "Ident" ? d.size.name : null);
            return { label, size: Size.symbol(label ?? `d${i}`) };
          });
          const make = () => el.addNode("input", [], { name: p.name.text }, shape, p.span);
          const value: Value = t.kind === "TensorType" ? make() : { k: "list", items: [make(), make()] };
          return { name: { text: p.name.text, span: p.name.span }, value: { value, span: p.span } };
        });
      el.callBlock(mod.scope.get(decl.name.text)!, args, decl.name.span);
    } catch (e) {
      if (e instanceof DiagnosticError) {
        // Symbolic sizes cannot decide every condition; only real errors are reported.
        if (e.diagnostic.code !== "E400") diagnostics.push(e.diagnostic);
      } else throw e;
    }
  }
  return diagnostics;
}
