// The TensorFlow.js peer: DRIFA-Net (bench/net-spec.ts) with tf ops on the WebGPU backend
// (tfjs 4.22 + tfjs-backend-webgpu), trained as a TensorFlow.js user does: tf.train.adam and
// optimizer.minimize (tf.variableGrads underneath). Run as a child process by bench/run.ts:
// `tsx bench/tfjs.ts --steps 10 --warmup 2` prints one JSON line (PeerResult) on stdout.
//
// Layout NHWC (TensorFlow.js's native one); weights are ours transposed ([k, k, in, out] for
// convolutions, [in, units] for dense), same initial values. Convolutions and dense layers are
// tf.fused ops with their bias (what tf.layers emits). Deviations, in bench/README.md:
// batchnorm running statistics are not updated; dropout masks from tf.dropout; Adam's epsilon
// 1e-7 (TensorFlow.js's default).
import { countDispatches, emit, installNavigatorGpu, log, median, peerArgs, preparePeerAdapter, timeSteps, waitNote } from "./peer-env.ts";
import { BENCH_CONFIG, type Ops, describeNet, forward, initialValues, syntheticBatch, toNHWC } from "./net-spec.ts";

const gpu = installNavigatorGpu();
const dispatches = countDispatches();
const tf = await import("@tensorflow/tfjs");
await import("@tensorflow/tfjs-backend-webgpu");
type T = import("@tensorflow/tfjs").Tensor;

const EPS = 1e-5;

class TfOps implements Ops<T> {
  constructor(private readonly vars: Map<string, import("@tensorflow/tfjs").Variable>) {}
  private w(name: string): T {
    const v = this.vars.get(name);
    if (!v) throw new Error(`tfjs: no variable ${name}`);
    return v;
  }
  conv(x: T, name: string, _out: number, k: number, stride: number): T {
    const p = Math.floor(k / 2);
    return tf.fused.conv2d({ x: x as import("@tensorflow/tfjs").Tensor4D, filter: this.w(`${name}.weight`) as import("@tensorflow/tfjs").Tensor4D, strides: stride, pad: p === 0 ? "valid" : p, bias: this.w(`${name}.bias`) });
  }
  dense(x: T, name: string): T {
    return tf.fused.matMul({ a: x as import("@tensorflow/tfjs").Tensor2D, b: this.w(`${name}.weight`) as import("@tensorflow/tfjs").Tensor2D, bias: this.w(`${name}.bias`) });
  }
  batchnorm(x: T, name: string): T {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    return tf.batchNorm(x, mean, variance, this.w(`${name}.bias`), this.w(`${name}.weight`), EPS);
  }
  param(name: string): T {
    return this.w(name);
  }
  row(m: T, i: number): T {
    return tf.slice(m, [i, 0], [1, m.shape[1]!]).reshape([m.shape[1]!]);
  }
  relu = (x: T) => tf.relu(x);
  sigmoid = (x: T) => tf.sigmoid(x);
  add = (a: T, b: T) => tf.add(a, b);
  mul = (a: T, b: T) => tf.mul(a, b);
  scale = (x: T, s: T) => tf.mul(x, s.rank === 2 ? s.reshape([s.shape[0]!, 1, 1, s.shape[1]!]) : s);
  gap = (x: T) => tf.mean(x, [1, 2]);
  gmp = (x: T) => tf.max(x, [1, 2]);
  gminp = (x: T) => tf.min(x, [1, 2]);
  concatVec = (a: T, b: T) => tf.concat([a, b], 1);
  concatMaps = (xs: T[]) => tf.concat(xs, 3);
  maxpool = (x: T) => tf.maxPool(x as import("@tensorflow/tfjs").Tensor4D, 3, 2, 1);
  dropout = (x: T, p: number) => tf.dropout(x, p);
  channels = (x: T) => x.shape[x.rank === 4 ? 3 : 1]!;
}

/** Our layout to TensorFlow.js's: conv [out, in, k, k] -> [k, k, in, out], dense [units, in] -> [in, units]. */
function tfValue(shape: number[], v: Float32Array): { shape: number[]; data: Float32Array } {
  if (shape.length === 4) {
    const [o, i, kh, kw] = shape as [number, number, number, number];
    const out = new Float32Array(v.length);
    for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = v[((a * i + b) * kh + y) * kw + x]!;
    return { shape: [kh, kw, i, o], data: out };
  }
  if (shape.length === 2) {
    const [u, i] = shape as [number, number];
    const out = new Float32Array(v.length);
    for (let a = 0; a < u; a++) for (let b = 0; b < i; b++) out[b * u + a] = v[a * i + b]!;
    return { shape: [i, u], data: out };
  }
  return { shape, data: v };
}

async function main(): Promise<void> {
  const args = peerArgs();
  const cfg = BENCH_CONFIG;
  const net = describeNet(cfg);
  const { name: adapter, quietWait } = await preparePeerAdapter(gpu);
  log(`tfjs: TensorFlow.js ${tf.version.tfjs} on ${adapter}`);
  if (!(await tf.setBackend("webgpu"))) throw new Error("tfjs: the WebGPU backend did not start");
  await tf.ready();

  const trained = net.params.filter((p) => p.role === "param");
  const init = initialValues(trained, 1);
  const vars = new Map<string, import("@tensorflow/tfjs").Variable>();
  for (const p of trained) {
    // MIFA's wc is [modalities, C], not a dense weight: kept as is.
    const { shape, data } = p.name.endsWith(".wc") ? { shape: p.shape, data: init.get(p.name)! } : tfValue(p.shape, init.get(p.name)!);
    vars.set(p.name, tf.variable(tf.tensor(data, shape), true, p.name));
  }
  const count = [...vars.values()].reduce((n, v) => n + v.size, 0);
  log(`tfjs: ${count.toLocaleString("en-US")} parameters in ${vars.size} variables (ours: ${net.paramCount.toLocaleString("en-US")})`);

  const data = syntheticBatch(cfg);
  const inputs = data.inputs.map((x) => tf.tensor4d(toNHWC(x, cfg.batch, 3, cfg.size, cfg.size), [cfg.batch, cfg.size, cfg.size, 3]));
  const labels = data.labels.map((l, i) => tf.oneHot(tf.tensor1d(l, "int32"), cfg.heads[i]!.classes));
  const optimizer = tf.train.adam(1e-3);
  const ops = new TfOps(vars);
  const varList = [...vars.values()];
  const lossFn = () => {
    const logits = forward(ops, inputs, cfg);
    return cfg.heads.map((h, i) => tf.losses.softmaxCrossEntropy(labels[i]!, logits[i]!).mul(h.weight)).reduce((a, b) => a.add(b)) as import("@tensorflow/tfjs").Scalar;
  };

  const { losses, times, firstStepMs, dispatchesPerStep } = await timeSteps("tfjs", args, dispatches, async () => {
    const lossT = tf.tidy(() => optimizer.minimize(lossFn, true, varList)!);
    // data() submits everything recorded (the Adam updates included) and maps after it ran.
    const loss = (await lossT.data())[0]!;
    lossT.dispose();
    return loss;
  });
  emit({
    peer: "tfjs",
    version: tf.version.tfjs,
    adapter,
    params: count,
    tensors: vars.size,
    firstStepMs,
    stepMs: median(times),
    stepsMs: times,
    losses,
    ...(dispatchesPerStep ? { dispatchesPerStep } : {}),
    notes: [waitNote(quietWait), "NHWC; tf.fused conv2d/matMul with bias; optimizer.minimize with tf.train.adam", "batchnorm running statistics not updated"],
  });
}

try {
  await main();
  process.exit(0);
} catch (e) {
  log(`tfjs: ${(e as Error).stack ?? e}`);
  process.exit(1);
}
