// Grad-CAM as a compiled plan. The model is lowered in inference mode (running statistics, no
// dropout), a mask input per task selects the explained class of each sample, and the score
//   s = sum_t sum(logits_t * mask_t)
// is differentiated by the IR's own reverse mode with respect to the last activation of each
// modality's convolution branch. The map of a modality,
//   cam = relu(sum_c mean_hw(ds/dA)_c * A_c)        [N, H, W]
// is computed in the same graph, so the whole explanation (forward, backward, weighting) runs
// as one submit of GPU kernels; the host only normalises and draws it. Since sample i's score
// depends only on sample i (inference mode: no batch statistics), one backward pass explains a
// whole batch, each sample for its own class.
import type { Command } from "../../runtime/trainer-exec.ts";
import type { GradcamMap, GradcamPlanInfo } from "../../runtime/compiled/gradcam.ts";
import type { Node, Program } from "../check/program.ts";
import { differentiate } from "../ir/autodiff.ts";
import { add, broadcastTo, mul, scale, sumTo } from "../ir/emit.ts";
import type { Graph } from "../ir/graph.ts";
import { type Lowered, lower } from "../ir/lower.ts";
import { IRError, numel } from "../ir/primitives.ts";
import { Buffers, placeValues, stateLayout } from "./state-plan.ts";
import type { PlanSummary } from "./train-plan.ts";

/** Name of the input holding a task's one-hot [batch, classes] class selection. */
export const gradcamMask = (task: string): string => `$gradcam.mask.${task}`;

/** The program node a modality's Grad-CAM explains. */
export interface GradcamTarget {
  input: string;
  node: Node;
  /** Where it is in the program: a block scope or a layer's parameter path. */
  scope: string;
}

/** Bit set of the model inputs each program node depends on (inputs in program order). */
function inputDependence(program: Program): Map<number, bigint> {
  const bit = new Map(program.inputs.map((i, k) => [i.node, 1n << BigInt(k)]));
  const deps = new Map<number, bigint>();
  for (const n of program.nodes) deps.set(n.id, n.inputs.reduce((acc, i) => acc | (deps.get(i) ?? 0n), bit.get(n.id) ?? 0n));
  return deps;
}

const computed = (n: Node) => n.op !== "input" && n.op !== "param" && n.op !== "const";
const within = (key: string, prefix: string) => key === prefix || key.startsWith(`${prefix}.`);

/** Where a node belongs: its block instance's scope, or for a layer applied at the model's top
 * level (scope "") the path of its parameters (`skin.conv2` of `skin.conv2.weight`). */
function keyOf(n: Node, byId: ReadonlyMap<number, Node>): string {
  if (n.scope !== "") return n.scope;
  for (const i of n.inputs) {
    const p = byId.get(i);
    if (p?.op === "param") return String(p.attrs.name).split(".").slice(0, -1).join(".");
  }
  return "";
}

/**
 * The activation explained for each model input: the last 4-D value of the modality's own
 * branch. The branch is named by the first segment of the scopes (or parameter paths) of the
 * operations that depend on this input alone, leaving out names shared with another input (a
 * fusion block's per-modality convolutions): `skin` of `skin.stem`, `t1` of `t1.stem`. Its last
 * 4-D value (then a relu applied to it alone, if any) is the output of the last convolution
 * stage (`skin.stage4.block2`), even when earlier fusion (MIFA) has mixed other modalities into
 * it. Without such a name, the last 4-D value that depends on this input alone. Inputs with
 * neither have no map.
 */
export function gradcamTargets(program: Program): GradcamTarget[] {
  const deps = inputDependence(program);
  const byId = new Map(program.nodes.map((n) => [n.id, n]));
  const users = new Map<number, Node[]>();
  for (const n of program.nodes) for (const i of new Set(n.inputs)) users.set(i, [...(users.get(i) ?? []), n]);
  const alone = program.inputs.map((_, k) => program.nodes.filter((n) => computed(n) && deps.get(n.id) === 1n << BigInt(k)));
  const segments = alone.map((ns) => ns.map((n) => keyOf(n, byId).split(".")[0]!).filter((s) => s !== ""));
  const out: GradcamTarget[] = [];
  program.inputs.forEach((input, k) => {
    const own = 1n << BigInt(k);
    const mine = program.nodes.filter((n) => computed(n) && n.shape.length === 4 && ((deps.get(n.id) ?? 0n) & own) !== 0n);
    const prefix = segments[k]!.find((s) => segments.every((other, j) => j === k || !other.includes(s)));
    const named = prefix === undefined ? [] : mine.filter((n) => within(keyOf(n, byId), prefix));
    let node = named.at(-1) ?? alone[k]!.filter((n) => n.shape.length === 4).at(-1);
    const scope = node ? keyOf(node, byId) : "";
    // A relu applied to the stage's output alone belongs to it: Grad-CAM explains rectified features.
    for (let next = node && users.get(node.id); next?.length === 1 && next[0]!.op === "relu"; next = users.get(node!.id)) node = next[0]!;
    if (node) out.push({ input: input.name, node, scope });
  });
  return out;
}

export interface GradcamGraph {
  lowered: Lowered;
  graph: Graph;
  /** Per task: its mask input's name and value, logits value and class count. */
  tasks: { name: string; mask: string; maskValue: number; logits: number; classes: number }[];
  /** Per explained input: the activation, its gradient and the map (value ids). */
  maps: { input: string; scope: string; shape: [number, number, number]; activation: number; gradient: number; cam: number }[];
  /** The differentiated score. */
  score: number;
}

/** The inference graph with the masked score, its gradients and the maps (for the plan and for
 * checks in the float64 interpreter). */
export function buildGradcamGraph(program: Program, batch: number): GradcamGraph {
  if (program.tasks.length === 0) throw new IRError(`${program.model} has no tasks, so no class score to explain`);
  const targets = gradcamTargets(program);
  if (targets.length === 0) throw new IRError(`${program.model} has no 4-D activation in any modality branch to explain`);
  const lowered = lower(program, { batch, mode: "infer" });
  const g = lowered.graph;
  let score = -1;
  const tasks = lowered.tasks.map((t) => {
    const shape = g.shapeOf(t.logits);
    const maskValue = g.input(gradcamMask(t.name), shape);
    const term = sumTo(g, mul(g, t.logits, maskValue), [], []);
    score = score < 0 ? term : add(g, score, term);
    return { name: t.name, mask: gradcamMask(t.name), maskValue, logits: t.logits, classes: shape[1]! };
  });
  const acts = targets.map((t) => lowered.values.get(t.node.id)!);
  const { byValue } = differentiate(g, score, acts);
  const maps = targets.map((t, k) => {
    const a = acts[k]!;
    const shape = g.shapeOf(a) as [number, number, number, number];
    const [n, c, h, w] = shape;
    const grad = byValue.get(a)!;
    // Channel weights: the gradient averaged over the map's positions, [N, C].
    const weights = scale(g, sumTo(g, grad, [n, c], [0, 1]), 1 / (h * w));
    const weighted = sumTo(g, mul(g, broadcastTo(g, weights, shape, [0, 1]), a), [n, h, w], [0, 2, 3]);
    const cam = g.emit("relu", [weighted], {});
    return { input: t.input, scope: t.scope, shape: [c, h, w] as [number, number, number], activation: a, gradient: grad, cam };
  });
  return { lowered, graph: g, tasks, maps, score };
}

export interface GradcamPlan extends GradcamPlanInfo {
  summary: PlanSummary;
}

/** The Grad-CAM plan for one batch size: state arenas laid out as in the training and inference
 * plans (same labels), so it binds a trainer's buffers or a loaded checkpoint's in place. Null
 * for a model with nothing to explain (no task, or no 4-D activation in any branch). */
export function planGradcam(program: Program, batch: number): GradcamPlan | null {
  if (program.tasks.length === 0 || gradcamTargets(program).length === 0) return null;
  const gg = buildGradcamGraph(program, batch);
  const g = gg.graph;
  const b = new Buffers();
  const layout = stateLayout(program);
  const params = b.arena("state:params", layout.params, (name) => ({ kind: "param", name }));
  const buffers = b.arena("state:buffers", layout.buffers, (name) => ({ kind: "param", name }));
  const state = new Map([...params.views, ...buffers.views]);
  const wanted = [...gg.tasks.map((t) => t.logits), ...gg.maps.flatMap((m) => [m.cam, m.activation, m.gradient])];
  const { bufferOf, kernels } = placeValues(g, wanted, b, state);
  const commands: Command[] = [{ pass: kernels.map((_, k) => k) }];
  const outputs: Record<string, number> = {};
  for (const t of gg.tasks) outputs[`logits.${t.name}`] = bufferOf.get(t.logits)!;
  const maps: GradcamMap[] = gg.maps.map((m) => {
    outputs[`cam.${m.input}`] = bufferOf.get(m.cam)!;
    outputs[`activation.${m.input}`] = bufferOf.get(m.activation)!;
    outputs[`gradient.${m.input}`] = bufferOf.get(m.gradient)!;
    return { input: m.input, scope: m.scope, shape: m.shape, cam: `cam.${m.input}`, activation: `activation.${m.input}`, gradient: `gradient.${m.input}` };
  });
  const fed = new Set(b.specs.flatMap((s) => (s.init.kind === "input" ? [s.init.name] : [])));
  const inputs = program.inputs.filter((i) => fed.has(i.name)).map((i) => ({ name: i.name, floats: numel(g.shapeOf(g.inputs.get(i.name)!)) }));
  const passes = commands.length;
  const bytes = b.specs.reduce((n, s) => n + (s.view ? 0 : Math.max(4, s.floats * 4)), 0);
  return {
    model: program.model,
    batch,
    buffers: b.specs,
    kernels,
    commands,
    outputs,
    shared: [params.root, buffers.root],
    inputs,
    tasks: gg.tasks.map((t) => ({ name: t.name, classes: t.classes, mask: t.mask, logits: `logits.${t.name}` })),
    maps,
    summary: {
      dispatches: kernels.length,
      passes,
      copies: 0,
      submits: 1,
      pipelines: new Set(kernels.map((k) => `${k.access.join()}\n${k.wgsl}`)).size,
      bytes,
      unplannedBytes: bytes,
    },
  };
}
