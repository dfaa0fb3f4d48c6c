// Learning-rate schedules and early stopping of the generated trainer.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { EarlyStopping, LrSchedule, type ScheduleConfig } from "../runtime/trainer/index.ts";

const close = (a: number, b: number, what = "") => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: ${a} != ${b}`);

/** Feeds losses one epoch at a time; returns the lr used in each epoch. */
function rates(s: LrSchedule, losses: (number | null)[]): number[] {
  const out: number[] = [];
  for (const l of losses) {
    out.push(s.lr);
    s.endEpoch(l);
  }
  return out;
}

test("constant keeps the rate", () => {
  const s = new LrSchedule({ kind: "constant" }, 0.01, 5);
  assert.equal(rates(s, [1, 2, 3, 4, 5]), [0.01, 0.01, 0.01, 0.01, 0.01]);
});

test("step multiplies by gamma every `every` epochs", () => {
  const s = new LrSchedule({ kind: "step", every: 2, gamma: 0.5 }, 0.1, 6);
  const r = rates(s, [1, 1, 1, 1, 1, 1]);
  [0.1, 0.1, 0.05, 0.05, 0.025, 0.025].forEach((want, i) => close(r[i]!, want, `epoch ${i}`));
});

test("cosine starts at lr and decays towards min_lr over the run (CosineAnnealingLR, T_max = epochs)", () => {
  const s = new LrSchedule({ kind: "cosine", min_lr: 0.001 }, 0.1, 4);
  const r = rates(s, [1, 1, 1, 1]);
  for (let e = 0; e < 4; e++) close(r[e]!, 0.001 + (0.099 * (1 + Math.cos((Math.PI * e) / 4))) / 2, `epoch ${e}`);
  close(s.lr, 0.001, "after the last epoch");
  for (let i = 1; i < 4; i++) assert.ok(r[i]! < r[i - 1]!);
});

test("plateau reduces after `patience` epochs without improvement (Keras: wait >= patience)", () => {
  const s = new LrSchedule({ kind: "plateau", factor: 0.2, patience: 2, min_lr: 0 }, 1e-3, 100);
  // epoch 0 sets best = 1; epochs 1, 2 do not improve -> reduction after epoch 2.
  const r = rates(s, [1, 1, 1.5, 1, 1]);
  close(r[0]!, 1e-3);
  close(r[1]!, 1e-3);
  close(r[2]!, 1e-3);
  close(r[3]!, 2e-4, "reduced after two bad epochs");
  close(r[4]!, 2e-4, "counter restarted");
  close(s.lr, 4e-5, "second reduction after two more bad epochs");
  assert.is(s.state().reductions, 2);
});

test("plateau: an improvement resets the counter; improvement must beat best - threshold (abs, Keras min_delta)", () => {
  const s = new LrSchedule({ kind: "plateau", factor: 0.5, patience: 2 }, 1, 100);
  s.endEpoch(1);
  s.endEpoch(1.1); // bad 1
  s.endEpoch(0.9); // better: reset
  s.endEpoch(0.95); // bad 1
  assert.is(s.lr, 1);
  s.endEpoch(0.89995); // within 1e-4 of best: not an improvement -> bad 2 -> reduce
  assert.is(s.lr, 0.5);
  const rel = new LrSchedule({ kind: "plateau", factor: 0.5, patience: 1, threshold: 0.1, threshold_mode: "rel" }, 1, 100);
  rel.endEpoch(1);
  rel.endEpoch(0.95); // not below 1 * 0.9
  assert.is(rel.lr, 0.5);
});

test("plateau respects min_lr and stops reducing there", () => {
  const s = new LrSchedule({ kind: "plateau", factor: 0.2, patience: 1, min_lr: 1e-5 }, 1e-3, 100);
  const r = rates(s, [1, 2, 2, 2, 2, 2, 2]);
  assert.ok(r.every((x) => x >= 1e-5));
  close(r[1]!, 1e-3);
  close(r[2]!, 2e-4);
  close(r[3]!, 4e-5);
  close(r[4]!, 1e-5, "clamped to min_lr");
  close(s.lr, 1e-5);
  assert.is(s.state().reductions, 3);
});

test("plateau: NaN and missing losses never count as improvements; cooldown holds the counter", () => {
  const s = new LrSchedule({ kind: "plateau", factor: 0.5, patience: 1 }, 1, 100);
  s.endEpoch(NaN);
  assert.is(s.lr, 0.5);
  s.endEpoch(null);
  assert.is(s.lr, 0.25);
  const c = new LrSchedule({ kind: "plateau", factor: 0.5, patience: 1, cooldown: 2 }, 1, 100);
  const r = rates(c, [1, 2, 2, 2, 2]);
  assert.equal(r, [1, 1, 0.5, 0.5, 0.5]);
  assert.is(c.lr, 0.25, "reduced again only after the 2 cooldown epochs plus patience");
});

test("schedule state round-trips through JSON and continues identically", () => {
  const losses = [1, 0.9, 0.95, 0.97, 0.99, 0.8, 0.85, 0.86, 0.87, 0.9];
  const configs: ScheduleConfig[] = [
    { kind: "plateau", factor: 0.2, patience: 2, min_lr: 1e-5 },
    { kind: "cosine", min_lr: 1e-4 },
    { kind: "step", every: 3 },
  ];
  for (const config of configs) {
    const whole = new LrSchedule(config, 1e-3, losses.length);
    const full = rates(whole, losses);
    const first = new LrSchedule(config, 1e-3, losses.length);
    const a = rates(first, losses.slice(0, 4));
    const resumed = new LrSchedule(config, 1e-3, losses.length);
    resumed.load(JSON.parse(JSON.stringify(first.state())));
    const b = rates(resumed, losses.slice(4));
    assert.equal([...a, ...b], full, config.kind);
    assert.equal(resumed.state(), whole.state(), config.kind);
  }
  const other = new LrSchedule({ kind: "constant" }, 1e-3, 10);
  assert.throws(() => other.load(new LrSchedule({ kind: "cosine" }, 1e-3, 10).state()), /cosine/);
});

test("schedules reject bad options", () => {
  assert.throws(() => new LrSchedule({ kind: "plateau", factor: 1.5 }, 1e-3, 10), /factor/);
  assert.throws(() => new LrSchedule({ kind: "plateau" }, 1e-3, 10), /factor.*missing/);
  assert.throws(() => new LrSchedule({ kind: "step", every: 0 }, 1e-3, 10), /every/);
  assert.throws(() => new LrSchedule({ kind: "constant" }, 0, 10), /lr/);
});

test("early stopping stops after `patience` epochs without improvement and remembers the best", () => {
  const e = new EarlyStopping(3);
  const losses = [1, 0.8, 0.85, 0.8, 0.9, 0.7, 0.75, 0.71, 0.72];
  const out = losses.map((l, i) => e.update(i + 1, l));
  assert.equal(
    out.map((o) => o.improved),
    [true, true, false, false, false, true, false, false, false],
  );
  assert.ok(out[4]!.stop, "three bad epochs after epoch 2: stop at epoch 5");
  // stop is sticky even though epoch 6 improved (the loop has ended by then)
  assert.is(e.bestEpoch, 6);
  assert.is(e.best, 0.7);
  const copy = new EarlyStopping(3);
  copy.load(JSON.parse(JSON.stringify(e.state())));
  assert.equal(copy.state(), e.state());
});

test("early stopping with patience 0/null never stops but still tracks the best; NaN never improves", () => {
  for (const p of [0, null]) {
    const e = new EarlyStopping(p);
    for (let i = 1; i <= 20; i++) assert.not.ok(e.update(i, i === 3 ? 0.1 : 1 + i).stop);
    assert.is(e.bestEpoch, 3);
  }
  const e = new EarlyStopping(2);
  assert.not.ok(e.update(1, NaN).improved);
  assert.ok(e.update(2, NaN).stop);
  assert.is(e.best, null);
});

test.run();
