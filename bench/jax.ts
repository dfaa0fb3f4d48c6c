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
import { adapterName, countDispatches, emit, installNavigatorGpu, log, median, peerArgs, timeSteps } from "./peer-env.ts";
import { BENCH_CONFIG, type NetConfig, type Ops, describeNet, forward, initialValues, syntheticBatch } from "./net-spec.ts";

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

function lossFn(cfg: NetConfig) {
  return (params: Record<string, A>, inputs: A[], labels: A[], key: A): A => {
    const keys = random.split(key, DROPOUT_SITES);
    const logits = forward(new JaxOps(params, keys), inputs, cfg);
    let loss: A | null = null;
    cfg.heads.forEach((h, i) => {
      const lp = nn.logSoftmax(logits[i]!.ref, -1);
      const ce = lp.mul(labels[i]!.ref).sum(-1).mean().mul(-h.weight);
      loss = loss ? loss.add(ce) : ce;
    });
    return loss!;
  };
}

const B1 = 0.9;
const B2 = 0.999;
const ADAM_EPS = 1e-7;

async function main(): Promise<void> {
  const args = peerArgs();
  log(`jax: ${process.argv.includes("--eager") ? "eager" : "jit"} mode; JS heap limit ${Math.round((await import("node:v8")).getHeapStatistics().heap_size_limit / 2 ** 20)} MiB`);
  const cfg = BENCH_CONFIG;
  const net = describeNet(cfg);
  const adapter = await adapterName(gpu);
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
  // Two jitted functions, loss and gradients, then Adam over every tensor (one jit over the
  // whole step fails the same way, see bench/README.md). `--eager`: no jit at all.
  const gradStep = jax.jit((p: Record<string, A>, xs: A[], ys: A[], key: A) => vg(p, xs, ys, key) as unknown as A[]);
  const adamStep = jax.jit(adamUpdate as unknown as (...a: unknown[]) => A[]);
  const eager = process.argv.includes("--eager");
  const vgEager = vg as unknown as (...a: unknown[]) => [A, Record<string, A>];
  const step = eager
    ? (p: Record<string, A>, m: Record<string, A>, v: Record<string, A>, lr: A, xs: A[], ys: A[], key: A) => {
        const [loss, g] = vgEager(jax.tree.ref(p), xs, ys, key);
        const [np2, nm, nv] = adamUpdate(p, m, v, g, lr);
        return [np2, nm, nv, loss];
      }
    : (p: Record<string, A>, m: Record<string, A>, v: Record<string, A>, lr: A, xs: A[], ys: A[], key: A) => {
    const [loss, g] = gradStep(jax.tree.ref(p), xs, ys, key) as unknown as [A, Record<string, A>];
    const [np2, nm, nv] = adamStep(p, m, v, g, lr) as unknown as Record<string, A>[];
    return [np2, nm, nv, loss];
  };
  let p = params;
  const { losses, times, firstStepMs, dispatchesPerStep } = await timeSteps("jax", args, dispatches, async (t) => {
    const lr = 1e-3 * Math.sqrt(1 - B2 ** t) / (1 - B1 ** t);
    const out = step(p, m, v, np.array([lr]).reshape([]), inputs.map((x) => x.ref), labels.map((y) => y.ref), random.key(t)) as unknown as [Record<string, A>, Record<string, A>, Record<string, A>, A];
    [p, m, v] = out;
    await jax.blockUntilReady(out);
    const loss = (await out[3].data())[0]!;
    out[3].dispose();
    return loss;
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
    notes: [eager ? "NCHW; eager (no jit)" : "NCHW; jit(valueAndGrad(loss)) then jit(Adam)", "batchnorm running statistics not updated", "dropout masks from jax-js's PRNG"],
  });
}

try {
  await main();
  process.exit(0);
} catch (e) {
  log(`jax: ${(e as Error).stack ?? e}`);
  process.exit(1);
}
