// The synthetic data set is written in the real layouts, and each loader reads it back with the
// right labels, counts and views.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BRATS_SEQUENCES,
  HAM10000_CLASSES,
  SIPAKMED_FOLDERS,
  chooseSlices,
  classCounts,
  loadBrats,
  loadClassFolders,
  loadHam10000,
  loadSipakmed,
  loadTrainTest,
  readCsv,
  readImage,
  readVolume,
  synth,
  splitDataSet,
  BatchLoader,
  type DataSet,
  type Sample,
  type SynthResult,
} from "../runtime/data/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-data-loaders-"));
const PER = 4;
let syn: SynthResult;

test.before(async () => {
  syn = await synth(path.join(tmp, "a"), { perClass: PER, size: 32, seed: 7, patientsPerGrade: 2, depth: 12 });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("synth writes the real layouts", () => {
  assert.ok(fs.existsSync(path.join(syn.skin, "HAM10000_metadata.csv")));
  const jpgs = ["HAM10000_images_part_1", "HAM10000_images_part_2"].flatMap((d) => fs.readdirSync(path.join(syn.skin, d)));
  assert.is(jpgs.length, 7 * PER);
  assert.ok(jpgs.every((f) => /^ISIC_\d{7}\.jpg$/.test(f)));
  assert.equal(fs.readdirSync(syn.cervix).sort(), SIPAKMED_FOLDERS);
  const p = path.join(syn.brats, "BraTS20_Training_001");
  assert.equal(fs.readdirSync(p).sort(), ["flair", "seg", "t1", "t1ce", "t2"].map((s) => `BraTS20_Training_001_${s}.nii.gz`));
  assert.ok(fs.existsSync(path.join(syn.brats, "BraTS20_Training_002", "BraTS20_Training_002_t1.nii")));
  assert.is(syn.counts.bratsPatients, 4);
});

test("synth is deterministic for a seed and differs across seeds", async () => {
  const again = await synth(path.join(tmp, "b"), { perClass: 1, size: 32, seed: 7, patientsPerGrade: 1, depth: 12 });
  const other = await synth(path.join(tmp, "c"), { perClass: 1, size: 32, seed: 8, patientsPerGrade: 1, depth: 12 });
  const f = (r: SynthResult, rel: string) => fs.readFileSync(path.join(r.cervix, rel));
  const rel = `${SIPAKMED_FOLDERS[2]}/001_01.bmp`;
  assert.ok(f(again, rel).equals(f(syn, rel)));
  assert.not.ok(f(other, rel).equals(f(syn, rel)));
  const b = (r: SynthResult) => fs.readFileSync(path.join(r.brats, "BraTS20_Training_001", "BraTS20_Training_001_flair.nii.gz"));
  assert.ok(b(again).equals(b(syn)));
});

test("HAM10000: labels follow the CSV's dx, images found in both folders, lesions grouped", async () => {
  const ds = await loadHam10000(syn.skin, { verify: true });
  assert.equal(ds.classes, HAM10000_CLASSES);
  assert.is(ds.samples.length, 7 * PER);
  assert.equal(classCounts(ds.samples, 7), new Array(7).fill(PER));
  const rows = await readCsv(path.join(syn.skin, "HAM10000_metadata.csv"), ["image_id", "dx"]);
  const dxOf = new Map(rows.map((r) => [r.row.image_id, r.row.dx]));
  for (const s of ds.samples) assert.is(ds.classes[s.label], dxOf.get(path.basename(s.files[0]!, ".jpg")));
  assert.ok(ds.samples.some((s) => s.files[0]!.includes("part_2")));
  const groups = new Set(ds.samples.map((s) => s.group));
  assert.ok(groups.size < ds.samples.length, "some lesions have two images");
  const img = await readImage(ds.samples[0]!.files[0]!);
  assert.is(img.width, 32);
  assert.equal(ds.skipped, []);
});

test("class folders: SIPaKMeD BMPs, sorted folder names, given class order", async () => {
  const ds = await loadClassFolders(syn.cervix, { verify: true });
  assert.equal(ds.classes, SIPAKMED_FOLDERS);
  assert.equal(classCounts(ds.samples, 5), new Array(5).fill(PER));
  for (const s of ds.samples) assert.ok(s.files[0]!.includes(`${SIPAKMED_FOLDERS[s.label]}${path.sep}`));
  const sip = await loadSipakmed(syn.cervix);
  assert.is(sip.classes[0], "Dyskeratotic");
  const given = [...SIPAKMED_FOLDERS].reverse();
  const rev = await loadClassFolders(syn.cervix, { classes: given });
  for (const s of rev.samples) assert.ok(s.files[0]!.includes(`${given[s.label]}${path.sep}`));
});

test("SIPaKMeD prefers each class's CROPPED/ cells over whole slides", async () => {
  const root = path.join(tmp, "sip");
  for (const [k, cls] of ["im_A", "im_B"].entries()) {
    fs.mkdirSync(path.join(root, cls, "CROPPED"), { recursive: true });
    const src = path.join(syn.cervix, SIPAKMED_FOLDERS[k]!, "001_01.bmp");
    fs.copyFileSync(src, path.join(root, cls, "slide.bmp"));
    fs.copyFileSync(src, path.join(root, cls, "CROPPED", "001_01.bmp"));
    fs.copyFileSync(src, path.join(root, cls, "CROPPED", "001_02.bmp"));
  }
  const ds = await loadSipakmed(root);
  assert.equal(ds.classes, ["A", "B"]);
  assert.is(ds.samples.length, 4);
  assert.ok(ds.samples.every((s) => s.files[0]!.includes("CROPPED")));
  // Archives that nest im_X/im_X/CROPPED/ read the same.
  const nested = path.join(tmp, "sip-nested");
  for (const cls of ["im_A", "im_B"]) fs.cpSync(path.join(root, cls), path.join(nested, cls, cls), { recursive: true });
  assert.is((await loadSipakmed(nested)).samples.length, 4);
});

test("Training/ + Testing/ keeps the set's own test split", async () => {
  const root = path.join(tmp, "mri");
  const classes = ["glioma", "meningioma", "notumor", "pituitary"];
  for (const [k, cls] of classes.entries()) {
    const src = path.join(syn.cervix, SIPAKMED_FOLDERS[k]!);
    for (const [part, n] of [["Training", 3], ["Testing", 1]] as const) {
      fs.mkdirSync(path.join(root, part, cls), { recursive: true });
      for (let i = 0; i < n; i++) fs.copyFileSync(path.join(src, fs.readdirSync(src)[i]!), path.join(root, part, cls, `${part[1]}r-${i}.bmp`));
    }
  }
  const ds = await loadTrainTest(root);
  assert.equal(ds.classes, classes);
  assert.is(ds.samples.length, 12);
  assert.is(ds.test?.length, 4);
  assert.equal(classCounts(ds.test!, 4), [1, 1, 1, 1]);
  assert.ok(ds.test!.every((s) => s.files[0]!.includes(`Testing${path.sep}${classes[s.label]}`)));
});

test("BraTS: grades from name_mapping.csv, four sequences per slice, slices where the tumour is", async () => {
  const ds = await loadBrats(syn.brats, { slicesPerPatient: 3, verify: true });
  assert.equal(ds.views, BRATS_SEQUENCES);
  assert.equal(ds.classes, ["HGG", "LGG"]);
  assert.is(ds.samples.length, 4 * 3);
  const patients = new Set(ds.samples.map((s) => s.group));
  assert.is(patients.size, 4);
  for (const s of ds.samples) {
    assert.is(s.files.length, 4);
    s.files.forEach((f, i) => assert.ok(f.includes(`_${BRATS_SEQUENCES[i]}.nii`)));
    // Synth alternates grades HGG, LGG, ... by patient number.
    assert.is(s.label, Number(s.group!.slice(-3)) % 2 === 1 ? 0 : 1);
  }
  // The chosen slices are the three with the most tumour voxels in the segmentation.
  const id = "BraTS20_Training_001";
  const seg = await readVolume(path.join(syn.brats, id, `${id}_seg.nii.gz`));
  const [nx, ny, nz] = seg.dims;
  const counts = Array.from({ length: nz }, (_, z) => seg.data.subarray(z * nx * ny, (z + 1) * nx * ny).filter((v) => v > 0).length);
  const chosen = ds.samples.filter((s) => s.group === id).map((s) => s.slice!);
  const best = [...counts].sort((a, b) => b - a)[2]!;
  assert.ok(chosen.every((z) => counts[z]! >= best && counts[z]! > 0), `chosen ${chosen} counts ${counts}`);
  // Without the segmentation: central slices.
  const central = await loadBrats(syn.brats, { slicesPerPatient: 3, useSeg: false });
  assert.equal([...new Set(central.samples.map((s) => s.slice))], [5, 6, 7]);
});

/** Nearest-class-mean accuracy on the test split of 8x8 pictures: the classes are learnable. */
async function centroidAccuracy(ds: DataSet): Promise<number> {
  const { train, test: held } = splitDataSet(ds, { seed: 1, fractions: [0.5, 0, 0.5] });
  const feats = async (samples: Sample[]) => {
    const out: { x: Float32Array; y: number }[] = [];
    for await (const b of new BatchLoader([{ dataset: ds, samples }], { size: 8, batchSize: 1, mode: "eval" }).epoch()) {
      const x = new Float32Array(b.inputs.reduce((n, t) => n + t.length, 0));
      let o = 0;
      for (const t of b.inputs) x.set(t, (o += t.length) - t.length);
      out.push({ x, y: b.labels[0]![0]! });
    }
    return out;
  };
  const tr = await feats(train);
  const dim = tr[0]!.x.length;
  const mean = ds.classes.map((_, c) => {
    const m = new Float32Array(dim);
    const mine = tr.filter((t) => t.y === c);
    for (const t of mine) for (let i = 0; i < dim; i++) m[i]! += t.x[i]! / mine.length;
    return m;
  });
  const te = await feats(held);
  let ok = 0;
  for (const t of te) {
    const d = mean.map((m) => m.reduce((s, v, i) => s + (v - t.x[i]!) ** 2, 0));
    if (d.indexOf(Math.min(...d)) === t.y) ok++;
  }
  return ok / te.length;
}

test("synthetic classes are learnable: nearest class mean beats chance by far", async () => {
  const skin = await centroidAccuracy(await loadHam10000(syn.skin, { groupByLesion: false }));
  const cervix = await centroidAccuracy(await loadClassFolders(syn.cervix));
  const brats = await centroidAccuracy(await loadBrats(syn.brats, { slicesPerPatient: 2 }));
  assert.ok(skin > 0.6, `skin ${skin} (chance 1/7)`);
  assert.ok(cervix > 0.6, `cervix ${cervix} (chance 1/5)`);
  assert.ok(brats > 0.7, `brats ${brats} (chance 1/2)`);
});

test("chooseSlices: top tumour slices, centre ties, centre without tumour", () => {
  assert.equal(chooseSlices(10, 3, [0, 0, 5, 9, 9, 1, 0, 0, 0, 0]), [2, 3, 4]);
  assert.equal(chooseSlices(10, 2, new Array(10).fill(0)), [4, 5]);
  assert.equal(chooseSlices(9, 3), [3, 4, 5]);
  assert.equal(chooseSlices(2, 5), [0, 1]);
});

test.run();
