// Bad data: every case is a DataError naming the file or folder and the cause, and with skipBad
// the loader goes on and reports what it left out.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  BatchLoader,
  DataError,
  SIPAKMED_FOLDERS,
  loadBrats,
  loadClassFolders,
  loadHam10000,
  loadTrainTest,
  readImage,
  synth,
  type SynthResult,
} from "../runtime/data/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-data-bad-"));
let syn: SynthResult;
let n = 0;

test.before(async () => {
  syn = await synth(path.join(tmp, "orig"), { perClass: 3, size: 16, seed: 1, patientsPerGrade: 2, depth: 6 });
});
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A fresh copy of one synthetic set to damage. */
function copy(dir: string): string {
  const to = path.join(tmp, `case${n++}`);
  fs.cpSync(dir, to, { recursive: true });
  return to;
}

/** Asserts that fn rejects with a DataError about `file` whose cause matches `cause`. */
async function rejects(fn: () => Promise<unknown>, file: string, cause: RegExp): Promise<DataError> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, DataError, String(e));
    const de = e as DataError;
    assert.is(de.file, file);
    assert.match(de.cause, cause);
    assert.ok(de.message.includes(file));
    return de;
  }
  assert.unreachable(`no DataError for ${file}`);
  throw new Error("unreachable");
}

const firstFile = (dir: string) => path.join(dir, fs.readdirSync(dir).sort()[0]!);

test("truncated JPEG and corrupt/truncated BMP: named errors; skipBad counts them", async () => {
  const root = copy(syn.cervix);
  const bmp1 = firstFile(path.join(root, SIPAKMED_FOLDERS[0]!));
  const bmp2 = firstFile(path.join(root, SIPAKMED_FOLDERS[1]!));
  const jpgSrc = firstFile(path.join(syn.skin, "HAM10000_images_part_1"));
  const jpg = path.join(root, SIPAKMED_FOLDERS[2]!, "cut.jpg");
  fs.writeFileSync(jpg, fs.readFileSync(jpgSrc).subarray(0, 300));
  const b1 = fs.readFileSync(bmp1);
  b1.fill(0xff, 18, 26); // width and height garbage
  fs.writeFileSync(bmp1, b1);
  fs.writeFileSync(bmp2, fs.readFileSync(bmp2).subarray(0, 200));
  await rejects(() => readImage(jpg), jpg, /JPEG/);
  await rejects(() => readImage(bmp1), bmp1, /corrupt/);
  await rejects(() => readImage(bmp2), bmp2, /truncated BMP/);
  await rejects(() => loadClassFolders(root, { verify: true }), bmp1, /corrupt/);
  const ds = await loadClassFolders(root, { verify: true, skipBad: true });
  assert.is(ds.skipped.length, 3);
  assert.equal(ds.skipped.map((s) => s.file).sort(), [bmp1, bmp2, jpg].sort());
  assert.is(ds.samples.length, 5 * 3 - 2);
});

test("HAM10000: CSV missing dx, unknown dx label, image not on disk", async () => {
  const root = copy(syn.skin);
  const csv = path.join(root, "HAM10000_metadata.csv");
  const text = fs.readFileSync(csv, "utf8");
  fs.writeFileSync(csv, text.replace(",dx,", ",diagnosis,"));
  await rejects(() => loadHam10000(root), csv, /lacks column\(s\) dx/);
  const lines = text.split("\n");
  lines[3] = lines[3]!.replace(/,akiec,/, ",melanoma?,");
  fs.writeFileSync(csv, lines.join("\n"));
  await rejects(() => loadHam10000(root), csv, /line 4: unknown dx label "melanoma\?"/);
  const gone = path.join(root, "HAM10000_images_part_2", `${lines[2]!.split(",")[1]}.jpg`);
  fs.rmSync(gone);
  const ds = await loadHam10000(root, { skipBad: true });
  assert.is(ds.skipped.length, 2);
  assert.is(ds.samples.length, 7 * 3 - 2);
  assert.match(ds.skipped[0]!.cause, /line 3 not found/);
  assert.is(path.basename(ds.skipped[0]!.file), path.basename(gone));
  assert.match(ds.skipped[1]!.cause, /unknown dx label/);
  await rejects(() => loadHam10000(path.join(root, "nope")), path.join(root, "nope"), /missing folder/);
});

test("empty class folder and missing folders", async () => {
  const root = copy(syn.cervix);
  const empty = path.join(root, SIPAKMED_FOLDERS[3]!);
  for (const f of fs.readdirSync(empty)) fs.rmSync(path.join(empty, f));
  await rejects(() => loadClassFolders(root), empty, /empty class/);
  const ds = await loadClassFolders(root, { skipBad: true });
  assert.is(ds.skipped.length, 1);
  assert.is(ds.classes.length, 5, "label indices stay stable");
  const missing = path.join(tmp, "no-such-set");
  await rejects(() => loadClassFolders(missing), missing, /missing folder/);
  await rejects(() => loadClassFolders(root, { classes: ["im_Nope"] }), path.join(root, "im_Nope"), /missing class folder/);
  const tt = path.join(tmp, `case${n++}`);
  fs.mkdirSync(path.join(tt, "Training", "a"), { recursive: true });
  fs.mkdirSync(path.join(tt, "Testing", "a"), { recursive: true });
  await rejects(() => loadTrainTest(tt), path.join(tt, "Training", "a"), /empty class/);
  fs.rmSync(path.join(tt, "Testing"), { recursive: true });
  await rejects(() => loadTrainTest(tt, { skipBad: true }), path.join(tt, "Testing"), /missing folder/);
});

test("BraTS: missing sequence, truncated volume, missing columns, patient without grade", async () => {
  const root = copy(syn.brats);
  const p1 = path.join(root, "BraTS20_Training_001");
  const p2 = path.join(root, "BraTS20_Training_002");
  fs.rmSync(path.join(p1, "BraTS20_Training_001_t2.nii.gz"));
  await rejects(() => loadBrats(root), p1, /missing sequence\(s\) t2/);
  const seg2 = path.join(p2, "BraTS20_Training_002_seg.nii");
  fs.writeFileSync(seg2, fs.readFileSync(seg2).subarray(0, 400));
  const ds = await loadBrats(root, { skipBad: true });
  assert.is(ds.skipped.length, 2);
  assert.equal(ds.skipped.map((s) => s.file), [p1, seg2]);
  assert.match(ds.skipped[1]!.cause, /truncated NIfTI/);
  assert.equal([...new Set(ds.samples.map((s) => s.group))], ["BraTS20_Training_003", "BraTS20_Training_004"]);
  const r2 = copy(syn.brats);
  const gz = path.join(r2, "BraTS20_Training_001", "BraTS20_Training_001_flair.nii.gz");
  fs.writeFileSync(gz, fs.readFileSync(gz).subarray(0, 50));
  await rejects(() => loadBrats(r2, { verify: true }), gz, /corrupt or truncated gzip/);
  const csv = path.join(r2, "name_mapping.csv");
  fs.writeFileSync(csv, "Grade,ID\nHGG,BraTS20_Training_001\n");
  await rejects(() => loadBrats(r2), csv, /lacks column\(s\) BraTS_2020_subject_ID/);
  fs.writeFileSync(csv, "Grade,BraTS_2020_subject_ID\nHGG,BraTS20_Training_001\n");
  await rejects(() => loadBrats(r2), path.join(r2, "BraTS20_Training_002"), /no Grade/);
});

test("a file that breaks at batch time: DataError from the loader, or skipped with skipBad", async () => {
  const root = copy(syn.cervix);
  const ds = await loadClassFolders(root);
  const bad = ds.samples[4]!.files[0]!;
  fs.writeFileSync(bad, Buffer.from("BM not really"));
  const mk = (skipBad: boolean) => new BatchLoader([{ dataset: ds, samples: ds.samples }], { size: 8, batchSize: 5, mode: "eval", skipBad });
  await rejects(async () => {
    for await (const _ of mk(false).epoch(0));
  }, bad, /corrupt|truncated/);
  const loader = mk(true);
  let items = 0;
  for await (const b of loader.epoch(0)) items += b.size;
  assert.is(items, 15);
  assert.equal(loader.skipped.map((s) => s.file), [bad]);
});

test.run();
