// The training loop, evaluation and the synthetic data set, driven by CPU runners.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { LinearRunner, SyntheticData, evaluate, fromLoaderBatch, trainLoop, type Batch, type EpochRecord, type ModelRunner, type RunnerTask } from "../runtime/trainer/index.ts";

const inputs = [
  { name: "skin", shape: [3, 16, 16] },
  { name: "cells", shape: [3, 16, 16] },
];
const tasks: RunnerTask[] = [
  { name: "skin_dx", classes: ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"], weight: 1, data: "skin" },
  { name: "cells_dx", classes: ["dys", "koi", "met", "par", "sup"], weight: 0.5, data: "cells" },
];

const losses = (h: EpochRecord[]) => h.map((r) => [r.train_loss, r.val_loss, r.acc, r.lr]);

async function run(seed: number, epochs = 3, extra: Partial<Parameters<typeof trainLoop>[2]> = {}) {
  const runner = new LinearRunner({ inputs, tasks, seed });
  const data = new SyntheticData(runner, { batch: 16, seed, trainSize: 256, valSize: 72 });
  return { runner, data, result: await trainLoop(runner, data, { epochs, lr: 0.05, logEvery: 1, seed, ...extra }) };
}

test("synthetic data: deterministic per seed, balanced labels, padded validation", async () => {
  const a = new SyntheticData({ inputs, tasks }, { batch: 16, seed: 3, trainSize: 64, valSize: 20 });
  const b = new SyntheticData({ inputs, tasks }, { batch: 16, seed: 3, trainSize: 64, valSize: 20 });
  const c = new SyntheticData({ inputs, tasks }, { batch: 16, seed: 4, trainSize: 64, valSize: 20 });
  const first = async (d: SyntheticData, e: number) => (await d.train(e)[Symbol.asyncIterator]().next()).value as Batch;
  const [x, y, z] = [await first(a, 1), await first(b, 1), await first(c, 1)];
  assert.equal(x.inputs.skin, y.inputs.skin);
  assert.equal(x.labels, y.labels);
  assert.not.equal(x.inputs.skin, z.inputs.skin);
  assert.not.equal((await first(a, 2)).labels, x.labels, "another epoch, another order");
  assert.is(x.inputs.skin!.length, 16 * 3 * 16 * 16);
  assert.is(a.trainSteps, 4);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 64; i++) counts[a.label("train", "skin_dx", i)]++;
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `balanced: ${counts}`);
  const val: Batch[] = [];
  for await (const v of a.val()) val.push(v);
  assert.equal(
    val.map((v) => v.size),
    [16, 16],
  );
  assert.is(val[1]!.valid!.skin_dx!.reduce((s, v) => s + v, 0), 4, "20 samples: 4 valid in the padded last batch");
  assert.is(val[0]!.valid, undefined);
});

test("the loop: the loss falls over 3 epochs, validation beats chance, and the same seed repeats exactly", async () => {
  const one = await run(1);
  const h = one.result.history;
  assert.is(h.length, 3);
  assert.ok(h[2]!.train_loss < h[0]!.train_loss, `train loss ${h.map((r) => r.train_loss)}`);
  assert.ok(h[2]!.val_loss! < h[0]!.val_loss!, `val loss ${h.map((r) => r.val_loss)}`);
  assert.ok(h[2]!.acc.skin_dx! > 2 / 7, `skin accuracy ${h[2]!.acc.skin_dx}`);
  assert.ok(h[2]!.acc.cells_dx! > 2 / 5, `cells accuracy ${h[2]!.acc.cells_dx}`);
  assert.ok(h.every((r) => r.samples_per_s > 0 && r.seconds > 0 && r.lr === 0.05));
  assert.equal(Object.keys(h[0]!.task_loss).sort(), ["cells_dx", "skin_dx"]);
  // val_loss is Σ weight · task loss
  assert.ok(Math.abs(h[0]!.val_loss! - (h[0]!.task_loss.skin_dx! + 0.5 * h[0]!.task_loss.cells_dx!)) < 1e-9);
  const two = await run(1);
  assert.equal(losses(two.result.history), losses(h));
  assert.equal(await two.runner.state(), await one.runner.state());
  const other = await run(2);
  assert.not.equal(losses(other.result.history), losses(h));
});

/** Wraps a runner and records the wantLoss flags. */
function spy(inner: ModelRunner, flags: boolean[]): ModelRunner {
  return {
    inputs: inner.inputs,
    tasks: inner.tasks,
    trainStep: (b, lr, want) => (flags.push(want), inner.trainStep(b, lr, want)),
    predict: (b, o) => inner.predict(b, o),
    evalLoss: (b) => inner.evalLoss(b),
    state: () => inner.state(),
    load: (s) => inner.load(s),
  };
}

test("the loss is read every k steps (global count) and always on an epoch's last step", async () => {
  const flags: boolean[] = [];
  const runner = new LinearRunner({ inputs, tasks });
  const data = new SyntheticData(runner, { batch: 16, trainSize: 112, valSize: 16 }); // 7 steps
  await trainLoop(spy(runner, flags), data, { epochs: 2, lr: 0.05, logEvery: 3 });
  const read = flags.flatMap((f, i) => (f ? [i + 1] : []));
  assert.equal(read, [3, 6, 7, 9, 12, 14]);
  // A source that does not declare its length (a plain array): the last step is found by looking ahead.
  const batches: Batch[] = [];
  for await (const b of data.train(0)) batches.push(b);
  flags.length = 0;
  const r = await trainLoop(spy(runner, flags), { train: () => batches }, { epochs: 1, lr: 0.05, logEvery: 5 });
  assert.equal(flags, [false, false, false, false, true, false, true]);
  assert.is(r.history[0]!.val_loss, null);
  assert.equal(r.history[0]!.acc, {});
});

test("resume: stopping after 2 epochs and continuing gives the uninterrupted run", async () => {
  const schedule = { kind: "plateau" as const, factor: 0.5, patience: 1 };
  const whole = await run(5, 4, { schedule });
  const first = await run(5, 2, { schedule, restoreBest: false });
  const saved = JSON.parse(JSON.stringify(first.result.state));
  const weights = await first.runner.state();
  const runner = new LinearRunner({ inputs, tasks, seed: 99 }); // other init: load() must replace it
  await runner.load(weights);
  const data = new SyntheticData(runner, { batch: 16, seed: saved.seed, trainSize: 256, valSize: 72 });
  const rest = await trainLoop(runner, data, { epochs: 4, lr: 0.05, logEvery: 1, schedule, resume: saved });
  assert.equal(losses(rest.history), losses(whole.result.history));
  assert.is(rest.state.step, whole.result.state.step);
  assert.equal(rest.state.schedule, whole.result.state.schedule);
  assert.equal(await runner.state(), await whole.runner.state());
});

/** A runner whose validation loss follows a script; its "weights" count the steps taken. */
function scripted(valLosses: number[]): ModelRunner & { loaded: number[]; epoch: number } {
  let steps = 0;
  const task = { name: "t", classes: ["a", "b"], weight: 1, data: "x" };
  const r = {
    inputs: [{ name: "x", shape: [1] }],
    tasks: [task],
    loaded: [] as number[],
    epoch: 0,
    trainStep: async (_b: Batch, _lr: number, want: boolean) => (steps++, want ? { loss: 1 } : {}),
    predict: async (b: Batch) => ({ t: new Float32Array(b.size * 2).fill(0.5) }),
    evalLoss: async () => ({ loss: valLosses[r.epoch]!, taskLosses: { t: valLosses[r.epoch++]! } }),
    state: async () => new Map([["steps", new Float32Array([steps])]]),
    load: async (s: Map<string, Float32Array>) => void r.loaded.push(s.get("steps")![0]!),
  };
  return r;
}

const tiny: Batch = { size: 1, inputs: { x: new Float32Array(1) }, labels: { t: new Int32Array(1) } };
const tinySource = { train: () => [tiny, tiny], val: () => [tiny], trainSteps: 2 };

test("early stopping ends the run after `patience` bad epochs and restores the best epoch's state", async () => {
  const runner = scripted([1, 0.5, 0.6, 0.55, 0.4, 0.3]);
  const bests: number[] = [];
  const r = await trainLoop(runner, tinySource, { epochs: 10, lr: 0.1, earlyStop: 2, onBest: (_s, rec) => void bests.push(rec.epoch) });
  assert.is(r.history.length, 4, "epochs 3 and 4 are not better than epoch 2");
  assert.ok(r.stoppedEarly);
  assert.is(r.bestEpoch, 2);
  assert.is(r.bestLoss, 0.5);
  assert.equal(bests, [1, 2]);
  assert.equal(
    r.history.map((h) => h.best),
    [true, true, false, false],
  );
  assert.ok(r.restored);
  assert.equal(runner.loaded, [4], "the state after epoch 2 (4 steps)");
  // Without restoreBest the final weights stay.
  const keep = scripted([1, 0.5, 0.6, 0.7]);
  const k = await trainLoop(keep, tinySource, { epochs: 10, lr: 0.1, earlyStop: 2, restoreBest: false });
  assert.not.ok(k.restored);
  assert.equal(keep.loaded, []);
});

test("a diverging loss stops the run with a clear error", async () => {
  const runner = scripted([1]);
  runner.trainStep = async () => ({ loss: NaN });
  try {
    await trainLoop(runner, tinySource, { epochs: 2, lr: 10, logEvery: 1 });
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /diverged.*lower learning rate/);
  }
});

test("evaluate counts only valid items (padding, wrapped-around samples)", async () => {
  const task = { name: "t", classes: ["a", "b"], weight: 2, data: "x" };
  const runner: ModelRunner = {
    inputs: [{ name: "x", shape: [1] }],
    tasks: [task],
    trainStep: async () => ({}),
    // always predicts class 0
    predict: async (b) => ({ t: new Float32Array(b.size * 2).map((_, i) => (i % 2 === 0 ? 0.9 : 0.1)) }),
    evalLoss: async (b) => ({ loss: 2 * b.size, taskLosses: { t: b.size } }),
    state: async () => new Map(),
    load: async () => {},
  };
  const batch = (labels: number[], valid?: number[]): Batch => ({
    size: labels.length,
    inputs: { x: new Float32Array(labels.length) },
    labels: { t: Int32Array.from(labels) },
    ...(valid ? { valid: { t: Uint8Array.from(valid) } } : {}),
  });
  const ev = await evaluate(runner, [batch([0, 0, 1]), batch([0, 1, 1, 1], [1, 0, 0, 0])]);
  assert.is(ev.counts.t, 4);
  assert.is(ev.metrics.t!.accuracy, 3 / 4, "the three invalid class-1 items do not count");
  assert.is(ev.taskLosses.t, (3 * 3 + 4 * 1) / 4, "batch losses weighted by valid items");
  assert.is(ev.loss, 2 * ev.taskLosses.t!);
});

test("fromLoaderBatch names the data layer's arrays after the model's inputs and tasks", () => {
  const b = { index: 0, size: 2, inputs: [new Float32Array(2), new Float32Array(2), new Float32Array(2)], labels: [Int32Array.of(1, 2), Int32Array.of(0, 0)], valid: [Uint8Array.of(1, 1), Uint8Array.of(1, 0)] };
  const out = fromLoaderBatch(b, { inputs: ["skin", "t1", "t2"], tasks: ["skin_dx", "grade"] });
  assert.is(out.inputs.t2, b.inputs[2]);
  assert.is(out.labels.grade, b.labels[1]);
  assert.is(out.valid!.grade, b.valid[1]);
  assert.throws(() => fromLoaderBatch(b, { inputs: ["skin"], tasks: ["skin_dx", "grade"] }), /3 inputs/);
});

test.run();
