// Whole-model gradient check: autodiff's gradients of the training loss against central finite
// differences in float64, for a sample of parameter elements of every kind of owner (conv,
// dense, batchnorm, param). One backward gives all analytic gradients; each sampled element
// costs four forward evaluations of the loss (two central differences, extrapolated), and a
// forward evaluates only the loss's ancestors. The relative error is
// |a - n| / max(|a|, |n|, 1e-3 * scale), scale = the largest |gradient| in the model, so that
// elements whose gradient is (nearly) zero are judged by an absolute error instead of noise.
import type { Program } from "../check/program.ts";
import { differentiateModel } from "./autodiff.ts";
import { type Batch, type TrainState, evaluate, feedsFor, initParams, seededUniform } from "./interpret.ts";
import { lower } from "./lower.ts";
import { numel } from "./primitives.ts";

export interface GradcheckOptions {
  batch: number;
  seed: number;
  /** Parameter elements sampled per kind of owner. */
  samplesPerKind: number;
  /** Finite-difference step (default 1e-5). Batchnorm over two samples is strongly curved: on
   * DRIFA-Net at width 4 the plain central difference's error fell as h^2, from 3e-3 at h = 1e-4
   * to 3e-7 at 1e-6, while rounding grows as 1/h; hence the extrapolation below by default. */
  step?: number;
  /** Richardson extrapolation of two central differences (h and h/2): error O(h^4) instead of
   * O(h^2), so a larger h (less rounding) can be used; 4 forward passes per element instead
   * of 2. Default true. */
  richardson?: boolean;
}

export interface GradcheckRow {
  param: string;
  kind: string;
  index: number;
  analytic: number;
  numeric: number;
  relError: number;
}

export interface GradcheckResult {
  maxRelError: number;
  /** The largest |gradient| over all parameters: 1e-3 of it is the error denominator's floor. */
  scale: number;
  loss: number;
  rows: GradcheckRow[];
}

export function gradcheck(program: Program, options: GradcheckOptions): GradcheckResult {
  const { batch, seed, samplesPerKind } = options;
  const h = options.step ?? 1e-5;
  const model = differentiateModel(lower(program, { batch, mode: "train" }));
  const u = seededUniform(seed ^ 0x5eed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());

  // Constant-initialised parameters (batchnorm scale and shift, attention weights, biases) are
  // moved off their constants: with batch 2 and 1x1 maps, batchnorm outputs are exactly +-1,
  // and two such branches added before a relu would sit on its kink, where finite differences
  // are meaningless. A generic point also tests more than the special one.
  const params = initParams(program.params, seed);
  for (const p of program.params) {
    if (p.role !== "param" || p.init.kind !== "constant") continue;
    const v = params.get(p.name)!;
    for (let i = 0; i < v.length; i++) v[i]! += 0.3 * (2 * u() - 1) * Math.max(1, Math.abs(v[i]!));
  }
  const state: TrainState = { params, slots: new Map(), step: 1, seed };
  const data: Batch = { inputs: {}, labels: {} };
  for (const input of program.inputs) {
    const id = model.graph.inputs.get(input.name);
    if (id === undefined) continue;
    data.inputs[input.name] = Float64Array.from({ length: numel(model.graph.shapeOf(id)) }, normal);
  }
  for (const t of program.tasks) data.labels[t.name] = Array.from({ length: batch }, () => Math.floor(u() * t.classes.length));
  const feeds = feedsFor(model, state, data);

  const names = [...model.grads.keys()];
  const outs = evaluate(model.graph, feeds, [model.loss, ...names.map((n) => model.grads.get(n)!)]);
  const loss = outs[0]![0]!;
  const grads = new Map(names.map((n, i) => [n, outs[i + 1]!]));
  let scale = 0;
  for (const g of grads.values()) for (const v of g) scale = Math.max(scale, Math.abs(v));

  const lossAt = (): number => evaluate(model.graph, feeds, [model.loss])[0]![0]!;
  const rows: GradcheckRow[] = [];
  const byKind = new Map<string, string[]>();
  for (const n of names) {
    const kind = model.params.get(n)!.owner;
    byKind.set(kind, [...(byKind.get(kind) ?? []), n]);
  }
  for (const [kind, tensors] of byKind) {
    for (let s = 0; s < samplesPerKind; s++) {
      const name = tensors[Math.floor(u() * tensors.length)]!;
      const x = params.get(name)!;
      const index = Math.floor(u() * x.length);
      const keep = x[index]!;
      const central = (step: number): number => {
        x[index] = keep + step;
        const up = lossAt();
        x[index] = keep - step;
        const down = lossAt();
        x[index] = keep;
        return (up - down) / (2 * step);
      };
      // Richardson: the h^2 terms of D(h) and D(h/2) cancel in (4 D(h/2) - D(h)) / 3.
      const numeric = options.richardson !== false ? (4 * central(h / 2) - central(h)) / 3 : central(h);
      const analytic = grads.get(name)![index]!;
      const relError = Math.abs(numeric - analytic) / Math.max(Math.abs(numeric), Math.abs(analytic), 1e-3 * scale);
      rows.push({ param: name, kind, index, analytic, numeric, relError });
    }
  }
  return { maxRelError: Math.max(0, ...rows.map((r) => r.relError)), scale, loss, rows };
}
