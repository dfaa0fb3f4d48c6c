// Splits (stratified, seeded, patient-wise), oversampling, pairing by index, and the batch loader
// (shapes, labels, determinism, prefetching).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BatchLoader,
  PAPER_AUGMENT,
  Rng,
  SampleReader,
  UNIT_RANGE,
  classCounts,
  computeStats,
  loadBrats,
  loadClassFolders,
  loadHam10000,
  oversampleIndices,
  pairByIndex,
  splitDataSet,
  stratifiedSplit,
  synth,
  type Batch,
  type DataSet,
  type Sample,
} from "../runtime/data/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-data-split-"));
let skin: DataSet;
let cervix: DataSet;
let brats: DataSet;

test.before(async () => {
  const r = await synth(tmp, { perClass: 5, size: 24, seed: 3, patientsPerGrade: 5, depth: 8 });
  skin = await loadHam10000(r.skin);
  cervix = await loadClassFolders(r.cervix);
  brats = await loadBrats(r.brats, { slicesPerPatient: 2 });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const fakes = (counts: number[]): Sample[] => counts.flatMap((n, label) => Array.from({ length: n }, (_, i) => ({ files: [`c${label}/${i}.png`], label })));
const key = (s: Sample) => s.files.join("|") + `#${s.slice ?? ""}`;

test("stratified split: 80/10/10 per class, every class in every split, nothing lost", () => {
  const samples = fakes([100, 30, 3, 50]);
  const sp = stratifiedSplit(samples, { seed: 1 });
  assert.equal(classCounts(sp.train, 4), [80, 24, 1, 40]);
  assert.equal(classCounts(sp.val, 4), [10, 3, 1, 5]);
  assert.equal(classCounts(sp.test, 4), [10, 3, 1, 5]);
  const all = [...sp.train, ...sp.val, ...sp.test].map(key).sort();
  assert.equal(all, samples.map(key).sort());
});

test("split is seeded: same seed same split, another seed another", () => {
  const samples = fakes([40, 40]);
  const a = stratifiedSplit(samples, { seed: 5 });
  const b = stratifiedSplit(samples, { seed: 5 });
  const c = stratifiedSplit(samples, { seed: 6 });
  assert.equal(a.test.map(key), b.test.map(key));
  assert.not.equal(a.test.map(key), c.test.map(key));
});

test("BraTS splits by patient, never by slice; HAM10000 by lesion", () => {
  for (const seed of [0, 1, 2]) {
    const sp = splitDataSet(brats, { seed });
    const pats = [sp.train, sp.val, sp.test].map((part) => new Set(part.map((s) => s.group)));
    for (const p of pats[0]!) assert.ok(!pats[1]!.has(p) && !pats[2]!.has(p), `patient ${p} leaks`);
    for (const p of pats[1]!) assert.ok(!pats[2]!.has(p));
    // 5 patients per grade: 3 train, 1 val, 1 test per grade, 2 slices each.
    assert.equal([sp.train.length, sp.val.length, sp.test.length], [12, 4, 4]);
    assert.equal(classCounts(sp.test, 2), [2, 2]);
    const hs = splitDataSet(skin, { seed });
    const train = new Set(hs.train.map((s) => s.group));
    assert.ok([...hs.val, ...hs.test].every((s) => !train.has(s.group)), "a lesion is on both sides");
  }
});

test("a set's own test folder is kept; train/val split from the rest", () => {
  const ds: DataSet = { name: "t", root: "/", classes: ["a", "b"], views: ["image"], kind: "image", samples: fakes([18, 9]), test: fakes([2, 2]), skipped: [] };
  const sp = splitDataSet(ds, { seed: 0 });
  assert.is(sp.test, ds.test);
  assert.equal(classCounts(sp.val, 2), [2, 1]);
  assert.is(sp.train.length + sp.val.length, 27);
});

test("oversampling equalises lengths and spreads repeats evenly", () => {
  const idx = oversampleIndices(4, 10, new Rng(1));
  assert.is(idx.length, 10);
  const counts = classCounts(idx.map((label) => ({ files: [], label })), 4);
  assert.ok(counts.every((c) => c === 2 || c === 3), String(counts));
  const p = pairByIndex([10, 3, 7], { seed: 2, epoch: 0 });
  assert.is(p.length, 10);
  assert.equal(p.index.map((a) => a.length), [10, 10, 10]);
  assert.equal([...p.index[0]!].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const [s, n] of [[1, 3], [2, 7]] as const) for (let i = 0; i < n; i++) assert.ok(p.index[s]!.includes(i));
  // Seeded per epoch.
  assert.equal(pairByIndex([10, 3], { seed: 2, epoch: 1 }).index, pairByIndex([10, 3], { seed: 2, epoch: 1 }).index);
  assert.not.equal(pairByIndex([10, 3], { seed: 2, epoch: 1 }).index[0], p.index[0]);
  // Evaluation: wrap around in order; `valid` marks each real sample once.
  const e = pairByIndex([5, 2], { mode: "cycle" });
  assert.equal([...e.index[1]!], [0, 1, 0, 1, 0]);
  assert.equal([...e.valid[1]!], [1, 1, 0, 0, 0]);
});

test("batches: one [B,3,S,S] input per view, labels per task, paired and equal length", async () => {
  const S = 16;
  const sources = [
    { dataset: skin, samples: skin.samples, augment: PAPER_AUGMENT },
    { dataset: cervix, samples: cervix.samples.slice(0, 7) },
    { dataset: brats, samples: brats.samples },
  ];
  const loader = new BatchLoader(sources, { size: S, batchSize: 8, seed: 4 });
  assert.equal(loader.inputs.map((i) => i.view), ["image", "image", "t1", "t1ce", "t2", "flair"]);
  assert.is(loader.length, 35);
  assert.is(loader.batchesPerEpoch, 4);
  const seen: number[][] = [[], [], []];
  const batches: Batch[] = [];
  for await (const b of loader.epoch(0)) {
    batches.push(b);
    assert.is(b.size, 8);
    assert.is(b.inputs.length, 6);
    for (const t of b.inputs) {
      assert.is(t.length, 8 * 3 * S * S);
      assert.ok(t.every(Number.isFinite));
    }
    b.labels.forEach((l, s) => seen[s]!.push(...l));
  }
  assert.is(batches.length, 4);
  // The short source (7 cervix images) is oversampled: every class it holds shows up.
  assert.equal([...new Set(seen[1])].sort(), [...new Set(cervix.samples.slice(0, 7).map((s) => s.label))].sort());
  assert.ok(seen[2]!.every((l) => l === 0 || l === 1));
  // Deterministic for a seed: a second loader gives identical tensors.
  const again = new BatchLoader(sources, { size: S, batchSize: 8, seed: 4 });
  const first = (await again.epoch(0).next()).value as Batch;
  assert.equal(Array.from(first.inputs[0]!.subarray(0, 64)), Array.from(batches[0]!.inputs[0]!.subarray(0, 64)));
  assert.equal(first.labels, batches[0]!.labels);
});

test("eval batches: no augmentation, last batch padded with valid = 0", async () => {
  const loader = new BatchLoader([{ dataset: cervix, samples: cervix.samples, normalize: UNIT_RANGE, augment: PAPER_AUGMENT }], { size: 8, batchSize: 10, mode: "eval" });
  const bs: Batch[] = [];
  for await (const b of loader.epoch(3)) bs.push(b);
  assert.is(bs.length, 3);
  assert.equal(Array.from(bs[2]!.valid[0]!), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
  // In order, unaugmented: the first item equals the reader's own picture.
  const pic = (await new SampleReader(cervix, { size: 8 }).read(cervix.samples[0]!))[0]!;
  assert.ok(Math.abs(bs[0]!.inputs[0]![0]! - pic.data[0]!) < 1e-6);
  assert.is(bs[0]!.labels[0]![0], cervix.samples[0]!.label);
});

test("the next batch is decoded while the current one is in use", async () => {
  class Counting extends SampleReader {
    reads = 0;
    override async read(s: Sample) {
      this.reads++;
      return super.read(s);
    }
  }
  const reader = new Counting(cervix, { size: 8, cacheBytes: 0 });
  const loader = new BatchLoader([{ dataset: cervix, samples: cervix.samples, reader }], { size: 8, batchSize: 4, prefetch: 1 });
  const it = loader.epoch(0);
  await it.next();
  // The consumer "works" (awaits, as on the GPU) without asking for the next batch.
  await new Promise((r) => setTimeout(r, 50));
  assert.is(reader.reads, 8, "batch 1 read before it was asked for; batch 2 not yet");
  await it.return(undefined);
});

test("per-set statistics", async () => {
  const st = await computeStats(new SampleReader(cervix, { size: 8 }), cervix.samples, 10);
  for (let c = 0; c < 3; c++) {
    assert.ok(st.mean[c] > 0.3 && st.mean[c] < 1, String(st.mean));
    assert.ok(st.std[c] > 0.01 && st.std[c] < 0.5, String(st.std));
  }
});

test.run();
