// The jax-js peer: DRIFA-Net (bench/net-spec.ts) in jax-js on its WebGPU backend, the whole
// training step (forward, backward with valueAndGrad, Adam) under one jit, as a JAX user writes
// it. Run as a child process by bench/run.ts: `tsx bench/jax.ts --steps 10 --warmup 2` prints
// one JSON line (PeerResult) on stdout.
//
// Layout NCHW (lax.convGeneralDilated's). Deviations from our compile, documented in
// bench/README.md: batchnorm running statistics are not updated (training-mode batch statistics
// are used, as ours; the update is a few [C]-sized ops); dropout masks come from jax-js's
// threefry PRNG instead of our PCG hash (same rate); Adam's epsilon 1e-7 (ours reads the model's
// train section).
import { countDispatches, emit, installNavigatorGpu, log, median, peerArgs, preparePeerAdapter, timeSteps, waitNote } from "./peer-env.ts";
import { BENCH_CONFIG, type NetConfig, type Ops, type Segment, describeNet, forward, initialValues, segmentParamNames, segments, syntheticBatch } from "./net-spec.ts";

const gpu = installNavigatorGpu();
const dispatches = countDispatches();
const jax = await import("@jax-js/jax");
const { numpy: np, lax, nn, random } = jax;
type A = InstanceType<typeof jax.Array>;

const EPS = 1e-5;

/** Ops over jax-js tracers: every operation takes `.ref`s, so nothing is consumed (the tracers
 * live only while jit traces; the compiled program manages the real buffers). */
class JaxOps implements Ops<A> {
  private drop = 0;
  constructor(
    private readonly p: Record<string, A>,
    private readonly keys: A,
  ) {}
  private w(name: string): A {
    const v = this.p[name];
    if (!v) throw new Error(`jax: no parameter ${name}`);
    return v.ref;
  }
  conv(x: A, name: string, _out: number, k: number, stride: number): A {
    const p = Math.floor(k / 2);
    const y = lax.convGeneralDilated(x.ref, this.w(`${name}.weight`), [stride, stride], [
      [p, p],
      [p, p],
    ]);
    return y.add(this.w(`${name}.bias`).reshape([1, -1, 1, 1]));
  }
  dense(x: A, name: string): A {
    return np.matmul(x.ref, this.w(`${name}.weight`).transpose()).add(this.w(`${name}.bias`));
  }
  batchnorm(x: A, name: string): A {
    const mean = x.ref.mean([0, 2, 3], { keepdims: true });
    const xc = x.ref.sub(mean);
    const v = np.square(xc.ref).mean([0, 2, 3], { keepdims: true });
    const g = this.w(`${name}.weight`).reshape([1, -1, 1, 1]);
    const b = this.w(`${name}.bias`).reshape([1, -1, 1, 1]);
    return xc.mul(g.mul(np.reciprocal(np.sqrt(v.add(EPS))))).add(b);
  }
  param(name: string): A {
    return this.w(name);
  }
  row(m: A, i: number): A {
    return m.ref.slice(i);
  }
  relu = (x: A) => nn.relu(x.ref);
  sigmoid = (x: A) => nn.sigmoid(x.ref);
  add = (a: A, b: A) => a.ref.add(b.ref);
  mul = (a: A, b: A) => a.ref.mul(b.ref);
  scale(x: A, s: A): A {
    return x.ref.mul(s.ndim === 2 ? s.ref.reshape([s.shape[0]!, s.shape[1]!, 1, 1]) : s.ref.reshape([-1, 1, 1]));
  }
  gap = (x: A) => x.ref.mean([2, 3]);
  gmp = (x: A) => x.ref.max([2, 3]);
  gminp = (x: A) => x.ref.min([2, 3]);
  concatVec = (a: A, b: A) => np.concatenate([a.ref, b.ref], 1);
  concatMaps = (xs: A[]) => np.concatenate(xs.map((x) => x.ref), 1);
  maxpool(x: A): A {
    // Zero padding equals -inf padding here: the input is a ReLU output.
    const padded = np.pad(x.ref, [
      [0, 0],
      [0, 0],
      [1, 1],
      [1, 1],
    ]);
    return lax.reduceWindow(padded, (t: A) => np.max(t), [3, 3], [2, 2]);
  }
  dropout(x: A, p: number): A {
    const key = this.keys.ref.slice(this.drop++);
    const keep = random.bernoulli(key, 1 - p, x.shape);
    return np.where(keep, x.ref.mul(1 / (1 - p)), 0);
  }
  channels = (x: A) => x.shape[1]!;
}

const DROPOUT_SITES = 13;

/** Softmax cross-entropy of each head against one-hot labels, weighted and summed. */
function headsLoss(cfg: NetConfig, logits: A[], labels: A[]): A {
  let loss: A | null = null;
  cfg.heads.forEach((h, i) => {
    const lp = nn.logSoftmax(logits[i]!.ref, -1);
    const ce = lp.mul(labels[i]!.ref).sum(-1).mean().mul(-h.weight);
    loss = loss ? loss.add(ce) : ce;
  });
  return loss!;
}

function lossFn(cfg: NetConfig) {
  return (params: Record<string, A>, inputs: A[], labels: A[], key: A): A => {
    const keys = random.split(key, DROPOUT_SITES);
    return headsLoss(cfg, forward(new JaxOps(params, keys), inputs, cfg), labels);
  };
}

/** Dropout keys per segment (a residual unit has two dropout sites, the heads one). */
const KEYS_PER_SEGMENT = 2;

/**
 * The training step differentiated segment by segment (`--segments`): jax-js runs out of memory
 * tracing the gradient of the whole network (bench/README.md), so each segment of
 * `segments(cfg)` gets two jitted functions, its forward and its backward (the gradient of
 * <segment(p, x), dy> with respect to p and x, which recomputes the segment's forward inside),
 * and the host chains the cotangents from the loss back to the stems. The last segment (heads
 * and loss) is one jitted valueAndGrad. Costs one extra forward per segment against a
 * whole-network gradient: what a jax-js user has to pay for a network this size.
 */
function segmentedGradient(cfg: NetConfig) {
  const segs = segments(cfg);
  const names = segmentParamNames(cfg, segs);
  const run = (seg: Segment, p: Record<string, A>, xs: A[], key: A): A[] => seg.run(new JaxOps(p, random.split(key, KEYS_PER_SEGMENT)), xs);
  const inner = (ys: A[], dys: A[]): A => ys.map((y, j) => y.mul(dys[j]!.ref).sum()).reduce((a, b) => a.add(b));
  const fwd = segs.slice(0, -1).map((seg) => jax.jit((p: Record<string, A>, xs: A[], key: A) => run(seg, p, xs, key)));
  const bwd = segs.slice(0, -1).map((seg, i) =>
    jax.jit((p: Record<string, A>, xs: A[], key: A, dys: A[]) =>
      // The stems' inputs are data: no cotangent for them.
      i === 0
        ? [jax.grad((p: Record<string, A>, xs: A[], key: A, dys: A[]) => inner(run(seg, p, xs, key), dys))(p, xs, key, dys)]
        : (jax.grad((p: Record<string, A>, xs: A[], key: A, dys: A[]) => inner(run(seg, p, xs, key), dys), { argnums: [0, 1] })(p, xs, key, dys) as unknown as A[]),
    ),
  );
  const last = segs[segs.length - 1]!;
  const head = jax.jit((p: Record<string, A>, xs: A[], key: A, labels: A[]) =>
    jax.valueAndGrad((p: Record<string, A>, xs: A[], key: A, labels: A[]) => headsLoss(cfg, run(last, p, xs, key), labels), { argnums: [0, 1] })(p, xs, key, labels) as unknown as A[],
  );
  const pick = (p: Record<string, A>, i: number): Record<string, A> => Object.fromEntries(names[i]!.map((n) => [n, p[n]!.ref]));
  /** Loss and gradients of every parameter; consumes nothing it is given. Each piece is waited
   * for before the next is queued (see `settle`). */
  return async (p: Record<string, A>, inputs: A[], labels: A[], key: A): Promise<[A, Record<string, A>]> => {
    const keys = random.split(key.ref, segs.length);
    const saved: A[][] = [];
    let xs = inputs.map((x) => x.ref);
    for (let i = 0; i < fwd.length; i++) {
      saved.push(xs.map((x) => x.ref));
      xs = await settle(`forward ${segs[i]!.name}`, fwd[i]!(pick(p, i), xs, keys.ref.slice(i)) as unknown as A[]);
    }
    const [loss, [gLast, dxs]] = await settle("heads and loss", head(pick(p, segs.length - 1), xs, keys.ref.slice(segs.length - 1), labels.map((y) => y.ref)) as unknown as [A, [Record<string, A>, A[]]]);
    const grads: Record<string, A> = { ...gLast };
    let d = dxs;
    for (let i = fwd.length - 1; i >= 0; i--) {
      const out = await settle(`backward ${segs[i]!.name}`, bwd[i]!(pick(p, i), saved[i]!, keys.ref.slice(i), d) as unknown as [Record<string, A>, A[]?]);
      Object.assign(grads, out[0]);
      d = out[1] ?? [];
    }
    keys.dispose();
    return [loss, grads];
  };
}

/**
 * Waits until `x` is computed. jax-js queues work lazily and compiles what is queued when it is
 * needed: left to the end of the step, the whole step's queue is compiled at once and exhausts
 * a 4 GB heap (measured), so the segmented step and Adam's groups settle piece by piece.
 * DRIFA_JAX_TRACE=1 logs each piece with the heap in use.
 */
async function settle<X>(what: string, x: X): Promise<X> {
  const t0 = performance.now();
  await jax.blockUntilReady(x as never);
  if (process.env.DRIFA_JAX_TRACE) log(`jax: ${what}: ${(performance.now() - t0).toFixed(0)} ms, heap ${Math.round(process.memoryUsage().heapUsed / 2 ** 20)} MiB`);
  return x;
}

/** `--check`: loss and every gradient of the segmented step against one jitted valueAndGrad of
 * the whole network, same parameters, inputs and key. Prints one JSON line; exits 1 when the
 * gradients differ by more than 1e-5 (relative, all gradients as one vector). */
async function checkSegmented(cfg: NetConfig, vg: (...a: never[]) => unknown, params: Record<string, A>, inputs: A[], labels: A[]): Promise<void> {
  const whole = jax.jit((p: Record<string, A>, xs: A[], ys: A[], key: A) => (vg as (...a: unknown[]) => A[])(p, xs, ys, key));
  const [l1, g1] = await settle("whole gradient", whole(jax.tree.ref(params), inputs.map((x) => x.ref), labels.map((y) => y.ref), random.key(5)) as unknown as [A, Record<string, A>]);
  const [l2, g2] = await segmentedGradient(cfg)(params, inputs, labels, random.key(5));
  let diff = 0;
  let norm = 0;
  for (const name of Object.keys(params)) {
    const a = await g1[name]!.data();
    const b = await g2[name]!.data();
    for (let i = 0; i < a.length; i++) {
      diff += (a[i]! - b[i]!) ** 2;
      norm += a[i]! ** 2;
    }
  }
  const result = { lossWhole: (await l1.data())[0]!, lossSegmented: (await l2.data())[0]!, gradientNorm: Math.sqrt(norm), relativeDifference: Math.sqrt(diff / norm), tensors: Object.keys(params).length };
  log(`jax: --check: loss ${result.lossWhole} whole, ${result.lossSegmented} segmented; gradients (${result.tensors} tensors, norm ${result.gradientNorm.toFixed(1)}) differ by ${result.relativeDifference.toExponential(2)} relative`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!(result.relativeDifference <= 1e-5) || Math.abs(result.lossWhole - result.lossSegmented) > 1e-5 * Math.abs(result.lossWhole)) process.exit(1);
}

const B1 = 0.9;
const B2 = 0.999;
const ADAM_EPS = 1e-7;

async function main(): Promise<void> {
  const args = peerArgs();
  log(`jax: ${process.argv.includes("--eager") ? "eager" : process.argv.includes("--segments") ? "jit per segment" : "jit"} mode; JS heap limit ${Math.round((await import("node:v8")).getHeapStatistics().heap_size_limit / 2 ** 20)} MiB`);
  // --check: the segmented gradient against the whole-network one, at a size where both run
  // quickly and without dropout (whose masks differ between the two by construction).
  const check = process.argv.includes("--check");
  const cfg: NetConfig = check ? { ...BENCH_CONFIG, width: 4, size: 32, batch: 2, p: 0 } : BENCH_CONFIG;
  const net = describeNet(cfg);
  const { name: adapter, quietWait } = await preparePeerAdapter(gpu);
  log(`jax: jax-js on ${adapter}`);
  const devices = await jax.init("webgpu");
  if (!devices.includes("webgpu")) throw new Error("jax: the WebGPU backend did not start");
  jax.defaultDevice("webgpu");

  const trained = net.params.filter((p) => p.role === "param");
  const init = initialValues(trained, 1);
  const params: Record<string, A> = {};
  let m: Record<string, A> = {};
  let v: Record<string, A> = {};
  for (const p of trained) {
    params[p.name] = np.array(init.get(p.name)! as Float32Array<ArrayBuffer>).reshape(p.shape);
    m[p.name] = np.zeros(p.shape);
    v[p.name] = np.zeros(p.shape);
  }
  const count = Object.values(params).reduce((n, a) => n + a.size, 0);
  log(`jax: ${count.toLocaleString("en-US")} parameters in ${Object.keys(params).length} tensors (ours: ${net.paramCount.toLocaleString("en-US")})`);

  const data = syntheticBatch(cfg);
  const inputs = data.inputs.map((x) => np.array(x as Float32Array<ArrayBuffer>).reshape([cfg.batch, 3, cfg.size, cfg.size]));
  const labels = data.labels.map((l, i) => {
    const oh = new Float32Array(cfg.batch * cfg.heads[i]!.classes);
    l.forEach((c, n) => (oh[n * cfg.heads[i]!.classes + c] = 1));
    return np.array(oh).reshape([cfg.batch, cfg.heads[i]!.classes]);
  });

  const vg = jax.valueAndGrad(lossFn(cfg));
  if (check) return checkSegmented(cfg, vg, params, inputs, labels);
  const adamUpdate = (p: Record<string, A>, m: Record<string, A>, v: Record<string, A>, g: Record<string, A>, lr: A) => {
    const np2: Record<string, A> = {};
    const nm: Record<string, A> = {};
    const nv: Record<string, A> = {};
    for (const name of Object.keys(p)) {
      const gi = g[name]!;
      nm[name] = m[name]!.mul(B1).add(gi.ref.mul(1 - B1));
      nv[name] = v[name]!.mul(B2).add(np.square(gi).mul(1 - B2));
      // lr is the bias-corrected rate lr * sqrt(1 - b2^t) / (1 - b1^t), from the host.
      np2[name] = p[name]!.sub(nm[name]!.ref.mul(lr.ref).div(np.sqrt(nv[name]!.ref).add(ADAM_EPS)));
    }
    lr.dispose();
    return [np2, nm, nv];
  };
  // Default: one jitted valueAndGrad over the whole network. `--segments`: the gradient segment
  // by segment (segmentedGradient). `--eager`: no jit at all. Then Adam, jitted over groups of
  // at most DRIFA_JAX_ADAM_GROUP (16) tensors of one segment, settled group by group: one jit
  // over all 1,052 tensors is one queue too many, and a call's cost in jax-js grows faster than
  // its tensor count (measured at width 4: 4.4 s a step with groups of 32, 4.2 s with 8, 5.9 s
  // with one tensor a call).
  const mode = process.argv.includes("--eager") ? "eager" : process.argv.includes("--segments") ? "segments" : "whole";
  const wholeGradient = jax.jit((p: Record<string, A>, xs: A[], ys: A[], key: A) => vg(p, xs, ys, key) as unknown as A[]);
  const segmented = mode === "segments" ? segmentedGradient(cfg) : null;
  const gradient = async (p: Record<string, A>, xs: A[], ys: A[], key: A): Promise<[A, Record<string, A>]> => {
    if (mode === "eager") return vg(jax.tree.ref(p), xs, ys, key) as unknown as [A, Record<string, A>];
    if (!segmented) return settle("gradient", wholeGradient(jax.tree.ref(p), xs, ys, key) as unknown as [A, Record<string, A>]);
    const out = await segmented(p, xs, ys, key);
    [...xs, ...ys, key].forEach((a) => a.dispose());
    return out;
  };
  const adamJit = jax.jit(adamUpdate as unknown as (...a: unknown[]) => A[]);
  const groupSize = Number(process.env.DRIFA_JAX_ADAM_GROUP ?? 16);
  const groups = segmentParamNames(cfg).flatMap((names) => Array.from({ length: Math.ceil(names.length / groupSize) }, (_, k) => names.slice(k * groupSize, (k + 1) * groupSize)));
  const adam = async (p: Record<string, A>, m: Record<string, A>, v: Record<string, A>, g: Record<string, A>, lr: number): Promise<Record<string, A>[]> => {
    const out: Record<string, A>[] = [{}, {}, {}];
    const sub = (r: Record<string, A>, names: string[]) => Object.fromEntries(names.map((n) => [n, r[n]!]));
    for (const [i, names] of groups.entries()) {
      const args = [sub(p, names), sub(m, names), sub(v, names), sub(g, names), np.array([lr]).reshape([])] as const;
      const parts = mode === "eager" ? adamUpdate(...args) : await settle(`Adam, group ${i + 1} (${names.length} tensors)`, adamJit(...args) as unknown as Record<string, A>[]);
      parts.forEach((r, k) => Object.assign(out[k]!, r));
    }
    return out;
  };
  let p = params;
  const { losses, times, firstStepMs, dispatchesPerStep } = await timeSteps("jax", args, dispatches, async (t) => {
    const lr = 1e-3 * Math.sqrt(1 - B2 ** t) / (1 - B1 ** t);
    const [loss, g] = await gradient(p, inputs.map((x) => x.ref), labels.map((y) => y.ref), random.key(t));
    [p, m, v] = (await adam(p, m, v, g, lr)) as [Record<string, A>, Record<string, A>, Record<string, A>];
    return (await loss.data())[0]!; // data() consumes the array
  });
  emit({
    peer: "jax-js",
    version: "0.1.25",
    adapter,
    params: count,
    tensors: Object.keys(params).length,
    firstStepMs,
    stepMs: median(times),
    stepsMs: times,
    losses,
    ...(dispatchesPerStep ? { dispatchesPerStep } : {}),
    notes: [
      waitNote(quietWait),
      mode === "eager" ? "NCHW; eager (no jit)" : mode === "segments" ? "NCHW; jit per segment: forward, then backward (recomputing the segment's forward) chained by hand from jit(valueAndGrad) of heads and loss" : "NCHW; jit(valueAndGrad(loss))",
      "Adam jitted in groups of at most 16 tensors of one segment", "batchnorm running statistics not updated", "dropout masks from jax-js's PRNG"],
  });
}

try {
  await main();
  process.exit(0);
} catch (e) {
  log(`jax: ${(e as Error).stack ?? e}`);
  process.exit(1);
}
