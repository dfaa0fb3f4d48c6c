// DRIFA-Net (layout A, models/drifa.drifa with models/lib/{layouts,resnet,mfa,mifa}.drifa) written
// once, generic over a small set of tensor operations, so that the peers of the benchmark
// (TensorFlow.js in bench/tfjs.ts, jax-js in bench/jax.ts) run the SAME network as our compile:
// the same layers, the same parameter names and shapes, the same initial values
// (runtime/init.ts, seeded by name), the same loss. A third implementation, `ShapeOps`, runs the
// network on shapes alone: it lists the parameters (test/bench.test.ts compares them with what
// the checker makes of models/drifa.drifa) and counts the multiply-adds.
//
// Conventions (as the checker and compiler/ir define them): every conv and dense has a bias;
// conv padding is floor(k/2) ("same"); conv weights [out, in, k, k] with He-normal init, dense
// weights [units, in] with Glorot-uniform init; batchnorm in training mode uses the batch's
// mean and biased variance over N, H, W, eps 1e-5; the stem's maxpool is 3x3, stride 2, padding 1
// (its input is a ReLU output, so zero padding equals -inf padding); dropout p = 0.25; the loss
// is 0.5 * mean CE(skin) + 0.5 * mean CE(cervix).
import { initTensor } from "../runtime/init.ts";

export type Init = { kind: "constant"; value: number } | { kind: "he"; fanIn: number } | { kind: "glorot"; fanIn: number; fanOut: number };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  /** "param": trained; "buffer": batchnorm running statistics (not trained). */
  role: "param" | "buffer";
}

/** The benchmark's configuration (issue 5): width 16, 64x64 inputs, batch 8, two modalities. */
export interface NetConfig {
  width: number;
  size: number;
  batch: number;
  p: number;
  modalities: string[];
  /** Classes per task head, in the model's order. */
  heads: { name: string; input: string; classes: number; weight: number }[];
}

export const BENCH_CONFIG: NetConfig = {
  width: 16,
  size: 64,
  batch: 8,
  p: 0.25,
  modalities: ["skin", "cervix"],
  heads: [
    { name: "skin_head", input: "skin", classes: 7, weight: 0.5 },
    { name: "cervix_head", input: "cervix", classes: 5, weight: 0.5 },
  ],
};

/** Parameters of DRIFA-Net at width 16 (`npx drifac params models/drifa.drifa --set width=16`). */
export const EXPECTED_PARAMS = 3_397_988;

/**
 * What the network needs from a framework. Tensors are opaque; feature maps are [N, C, H, W]
 * in the network's terms whatever the implementation's memory layout (TensorFlow.js uses NHWC).
 * Operations never consume their arguments (jax-js's ownership rules are the implementation's
 * business). `conv`, `dense` and `batchnorm` create or look up their parameters by name.
 */
export interface Ops<T> {
  conv(x: T, name: string, out: number, k: number, stride: number): T;
  dense(x: T, name: string, units: number): T;
  batchnorm(x: T, name: string): T;
  /** A free parameter (MFA/MIFA's wd, wl, wc). */
  param(name: string, shape: number[], value: number): T;
  /** Row i of a [M, C] parameter, as [C]. */
  row(m: T, i: number): T;
  relu(x: T): T;
  sigmoid(x: T): T;
  /** Same shapes, or [N, C] with a broadcast [C] or [] on either side. */
  add(a: T, b: T): T;
  mul(a: T, b: T): T;
  /** Feature map [N, C, H, W] times a per-channel factor, [N, C] or [C]. */
  scale(x: T, s: T): T;
  gap(x: T): T;
  gmp(x: T): T;
  gminp(x: T): T;
  /** [N, C1] and [N, C2] to [N, C1 + C2]. */
  concatVec(a: T, b: T): T;
  /** Feature maps concatenated along channels. */
  concatMaps(xs: T[]): T;
  /** 3x3 max pooling, stride 2, padding 1. */
  maxpool(x: T): T;
  dropout(x: T, p: number): T;
  channels(x: T): number;
}

const sum = <T>(o: Ops<T>, xs: T[]): T => xs.reduce((a, b) => o.add(a, b));

/** HIFA (mfa.drifa): four chained 1x1 branches fused pairwise, gap(a) + gmp(b). */
function hifa<T>(o: Ops<T>, x: T, n: string): T {
  const c = o.channels(x);
  const l1 = o.sigmoid(o.conv(x, `${n}.l1`, c, 1, 1));
  const l2 = o.sigmoid(o.conv(l1, `${n}.l2`, c, 1, 1));
  const l3 = o.sigmoid(o.conv(o.add(l1, l2), `${n}.l3`, c, 1, 1));
  const l4 = o.sigmoid(o.conv(l3, `${n}.l4`, c, 1, 1));
  return o.sigmoid(o.dense(o.concatVec(o.add(o.gap(l1), o.gmp(l2)), o.add(o.gap(l3), o.gmp(l4))), `${n}.d`, c));
}

/** CLIA: q = gap(sigmoid(conv1x1(x))), l = q + sigmoid(dense(q)). */
function clia<T>(o: Ops<T>, x: T, n: string): T {
  const c = o.channels(x);
  const q = o.gap(o.sigmoid(o.conv(x, `${n}.q`, c, 1, 1)));
  return o.add(q, o.sigmoid(o.dense(q, `${n}.l`, c)));
}

/** MFA: x * sigmoid(wd * d + wl * l) * wc. */
export function mfa<T>(o: Ops<T>, x: T, n: string): T {
  const c = o.channels(x);
  const d = hifa(o, x, `${n}.hifa`);
  const l = clia(o, x, `${n}.clia`);
  const wd = o.param(`${n}.wd`, [], 1);
  const wl = o.param(`${n}.wl`, [c], 1);
  const wc = o.param(`${n}.wc`, [c], 1);
  return o.scale(o.scale(x, o.sigmoid(o.add(o.mul(wd, d), o.mul(wl, l)))), wc);
}

const POOLS = ["gmp", "gap", "gminp"] as const;

/** MIFA across the modalities: one shared attention map from global and local pools. */
function mifa<T>(o: Ops<T>, xs: T[], n: string): T[] {
  const c = o.channels(xs[0]!);
  const g = sum(o, POOLS.map((pool) => o.sigmoid(o.dense(sum(o, xs.map((x) => o[pool](x))), `${n}.fc`, c))));
  const cs = xs.map((x, i) => o.sigmoid(o.conv(x, `${n}.conv${i}`, c, 1, 1)));
  const l = sum(o, POOLS.map((pool) => sum(o, cs.map((ci) => o[pool](ci)))));
  const wd = o.param(`${n}.wd`, [], 1);
  const wl = o.param(`${n}.wl`, [c], 1);
  const wc = o.param(`${n}.wc`, [xs.length, c], 1);
  const a = o.sigmoid(o.add(o.mul(wd, g), o.mul(wl, l)));
  return xs.map((x, i) => o.scale(o.scale(x, a), o.row(wc, i)));
}

/** RRA (resnet.drifa): conv3x3 -> MFA -> BN -> ReLU -> conv3x3 -> MFA -> BN, + shortcut, ReLU. */
function rra<T>(o: Ops<T>, x: T, n: string, out: number, stride: number): T {
  let h = o.conv(x, `${n}.conv1`, out, 3, stride);
  h = o.relu(o.batchnorm(mfa(o, h, `${n}.mfa1`), `${n}.bn1`));
  h = o.conv(h, `${n}.conv2`, out, 3, 1);
  h = o.batchnorm(mfa(o, h, `${n}.mfa2`), `${n}.bn2`);
  const shortcut = stride !== 1 || out !== o.channels(x) ? o.batchnorm(o.conv(x, `${n}.proj`, out, 1, stride), `${n}.proj_bn`) : x;
  return o.relu(o.add(h, shortcut));
}

function stem<T>(o: Ops<T>, x: T, n: string, width: number): T {
  const h = o.conv(x, `${n}.conv`, width, 7, 2);
  return o.maxpool(o.relu(o.batchnorm(mfa(o, h, `${n}.mfa`), `${n}.bn`)));
}

/** A piece of the network: the modalities' tensors in, the next ones out (the last piece gives
 * the logits per head). Generic over the tensor type so that each peer runs the same pieces. */
export interface Segment {
  name: string;
  run<T>(o: Ops<T>, xs: T[]): T[];
}

/** The network as a chain of segments: the stems, each of the eight residual units (RRA, dropout,
 * MFA, then MIFA across the modalities), the features and heads. `forward` runs them in order; a
 * peer that cannot differentiate the whole network at once (jax-js) differentiates them one by
 * one and chains the cotangents by hand. */
export function segments(cfg: NetConfig = BENCH_CONFIG): Segment[] {
  const names = cfg.modalities;
  const widths = [cfg.width, 2 * cfg.width, 4 * cfg.width, 8 * cfg.width];
  const out: Segment[] = [{ name: "stem", run: (o, xs) => xs.map((x, i) => stem(o, x, `${names[i]}.stem`, cfg.width)) }];
  for (let s = 0; s < 4; s++) {
    for (let b = 0; b < 2; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      out.push({
        name: `stage${s + 1}.block${b + 1}`,
        run<T>(o: Ops<T>, inputs: T[]): T[] {
          let xs = inputs.map((x, i) => rra(o, x, `${names[i]}.stage${s + 1}.block${b + 1}`, widths[s]!, stride));
          if (s < 3) xs = xs.map((x) => o.dropout(x, cfg.p));
          if (!(s === 3 && b === 1)) xs = xs.map((x, i) => mfa(o, x, `${names[i]}.stage${s + 1}.mfa${b + 1}`));
          return mifa(o, xs, `mifa${2 * s + b + 1}`);
        },
      });
    }
  }
  out.push({
    name: "heads",
    run<T>(o: Ops<T>, xs: T[]): T[] {
      const features = o.gap(o.dropout(o.concatMaps(xs), cfg.p));
      return cfg.heads.map((h) => o.dense(features, h.name, h.classes));
    },
  });
  return out;
}

/** The trained parameters each segment uses, found by running it on shapes (every parameter
 * belongs to exactly one segment: test/bench.test.ts). */
export function segmentParamNames(cfg: NetConfig = BENCH_CONFIG, segs: Segment[] = segments(cfg)): string[][] {
  let shapes: Shape[] = cfg.modalities.map(() => [cfg.batch, 3, cfg.size, cfg.size]);
  return segs.map((seg) => {
    const o = new ShapeOps();
    shapes = seg.run(o, shapes);
    return o.params.filter((p) => p.role === "param").map((p) => p.name);
  });
}

/** The whole network: inputs per modality to logits per head (layout A, then Features). */
export function forward<T>(o: Ops<T>, inputs: T[], cfg: NetConfig = BENCH_CONFIG): T[] {
  return segments(cfg).reduce((xs, seg) => seg.run(o, xs), inputs);
}

// ---- Shapes alone: the parameter table and the multiply-add count ----

/** A tensor's shape, [N, C, H, W] or [N, C] or a parameter's own. */
export type Shape = number[];

export class ShapeOps implements Ops<Shape> {
  readonly params: ParamSpec[] = [];
  private readonly seen = new Map<string, Shape>();
  /** Multiply-adds of conv and dense layers in the forward pass. */
  macs = 0;

  private add_(name: string, shape: number[], init: Init, role: "param" | "buffer" = "param"): Shape {
    const had = this.seen.get(name);
    if (had) return had;
    this.seen.set(name, shape);
    this.params.push({ name, shape, init, role });
    return shape;
  }
  conv(x: Shape, name: string, out: number, k: number, stride: number): Shape {
    const [n, c, h, w] = x as [number, number, number, number];
    this.add_(`${name}.weight`, [out, c, k, k], { kind: "he", fanIn: c * k * k });
    this.add_(`${name}.bias`, [out], { kind: "constant", value: 0 });
    const p = Math.floor(k / 2);
    const ho = Math.floor((h + 2 * p - k) / stride) + 1;
    const wo = Math.floor((w + 2 * p - k) / stride) + 1;
    this.macs += n * out * ho * wo * c * k * k;
    return [n, out, ho, wo];
  }
  dense(x: Shape, name: string, units: number): Shape {
    const [n, c] = x as [number, number];
    this.add_(`${name}.weight`, [units, c], { kind: "glorot", fanIn: c, fanOut: units });
    this.add_(`${name}.bias`, [units], { kind: "constant", value: 0 });
    this.macs += n * units * c;
    return [n, units];
  }
  batchnorm(x: Shape, name: string): Shape {
    const c = x[1]!;
    this.add_(`${name}.weight`, [c], { kind: "constant", value: 1 });
    this.add_(`${name}.bias`, [c], { kind: "constant", value: 0 });
    this.add_(`${name}.running_mean`, [c], { kind: "constant", value: 0 }, "buffer");
    this.add_(`${name}.running_var`, [c], { kind: "constant", value: 1 }, "buffer");
    return x;
  }
  param(name: string, shape: number[], value: number): Shape {
    return this.add_(name, shape, { kind: "constant", value });
  }
  row(m: Shape): Shape {
    return m.slice(1);
  }
  relu = (x: Shape) => x;
  sigmoid = (x: Shape) => x;
  add(a: Shape, b: Shape): Shape {
    return a.length >= b.length ? a : b;
  }
  mul(a: Shape, b: Shape): Shape {
    return this.add(a, b);
  }
  scale = (x: Shape) => x;
  gap = (x: Shape) => x.slice(0, 2);
  gmp = (x: Shape) => x.slice(0, 2);
  gminp = (x: Shape) => x.slice(0, 2);
  concatVec = (a: Shape, b: Shape) => [a[0]!, a[1]! + b[1]!];
  concatMaps = (xs: Shape[]) => [xs[0]![0]!, xs.reduce((n, x) => n + x[1]!, 0), xs[0]![2]!, xs[0]![3]!];
  maxpool = (x: Shape) => [x[0]!, x[1]!, Math.floor((x[2]! - 1) / 2) + 1, Math.floor((x[3]! - 1) / 2) + 1];
  dropout = (x: Shape) => x;
  channels = (x: Shape) => x[1]!;
}

export interface NetSummary {
  params: ParamSpec[];
  /** Trained parameters (role "param"), elements. */
  paramCount: number;
  tensors: number;
  /** Multiply-adds of the convolutions and dense layers, forward, one batch. */
  forwardMacs: number;
  /** About 3x the forward FLOPs (forward, input and weight gradients), conv and dense only. */
  trainFlops: number;
}

export function describeNet(cfg: NetConfig = BENCH_CONFIG): NetSummary {
  const o = new ShapeOps();
  forward(o, cfg.modalities.map(() => [cfg.batch, 3, cfg.size, cfg.size]), cfg);
  const trained = o.params.filter((p) => p.role === "param");
  return {
    params: o.params,
    paramCount: trained.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
    tensors: trained.length,
    forwardMacs: o.macs,
    trainFlops: 3 * 2 * o.macs,
  };
}

/** Initial values (runtime/init.ts, seeded by name: the same as our trainer's with this seed),
 * in the network's layout ([out, in, k, k] for conv weights, [units, in] for dense). */
export function initialValues(params: ParamSpec[], seed: number): Map<string, Float32Array> {
  return new Map(params.map((p) => [p.name, Float32Array.from(initTensor({ name: p.name, size: p.shape.reduce((a, b) => a * b, 1), init: p.init }, seed))]));
}

/** Synthetic data: inputs per modality [N, 3, size, size] (NCHW) and integer labels per head. */
export function syntheticBatch(cfg: NetConfig = BENCH_CONFIG, seed = 1): { inputs: Float32Array[]; labels: number[][] } {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const n = cfg.batch * 3 * cfg.size * cfg.size;
  return {
    inputs: cfg.modalities.map(() => Float32Array.from({ length: n }, () => 2 * rand() - 1)),
    labels: cfg.heads.map((h) => Array.from({ length: cfg.batch }, (_, i) => i % h.classes)),
  };
}

/** NCHW to NHWC, for TensorFlow.js. */
export function toNHWC(x: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let a = 0; a < n; a++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) out[((a * h + y) * w + z) * c + ch] = x[((a * c + ch) * h + y) * w + z]!;
  return out;
}
