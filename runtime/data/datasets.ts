// Loaders for the on-disk layouts of the DRIFA-Net data sets (paper, "Data and training"). A loader
// only lists files and labels (fast, even for 10,000 images); pixels are decoded later by the batch
// loader, or at once with `verify`. Layout problems are DataErrors naming the file or folder.
import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { BadData, DataError, asDataError, type Skipped } from "./errors.ts";
import { readImage, readVolume } from "./decode.ts";

/** One training example: a file per view plus its class. */
export interface Sample {
  /** One file per view: one for 2D sets, the four sequences for BraTS (see DataSet.views). */
  files: string[];
  /** Index into DataSet.classes. */
  label: number;
  /** Samples of one group (BraTS patient, HAM10000 lesion) always land in the same split. */
  group?: string;
  /** Axial slice index, for volume views. */
  slice?: number;
}

export interface DataSet {
  name: string;
  root: string;
  classes: string[];
  /** Names of the views every sample carries, e.g. ["image"] or ["t1", "t1ce", "t2", "flair"]. */
  views: string[];
  kind: "image" | "volume";
  samples: Sample[];
  /** The set's own held-out test split, when it ships one (Training/ + Testing/). */
  test?: Sample[];
  /** Files left out under skipBad, with reasons (empty otherwise). */
  skipped: Skipped[];
}

export interface LoadOptions {
  /** Leave bad files out and record them in DataSet.skipped instead of throwing. */
  skipBad?: boolean;
  /** Decode every file now, so corrupt or truncated files fail (or are skipped) at load time. */
  verify?: boolean;
}

export const IMAGE_EXTENSIONS = [".jpg", ".jpeg", ".png", ".bmp"];
const isImage = (f: string) => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isDirectory() ?? false;
}

async function requireDir(p: string, what = "folder"): Promise<void> {
  if (!(await isDir(p))) throw new DataError(p, `missing ${what}`);
}

/** Sub-folder names, sorted by code point so class indices never depend on the locale. */
async function subdirs(dir: string): Promise<string[]> {
  const ents = await readdir(dir, { withFileTypes: true });
  return ents.filter((e) => e.isDirectory() && !e.name.startsWith(".")).map((e) => e.name).sort();
}

async function imageFiles(dir: string): Promise<string[]> {
  const ents = await readdir(dir, { withFileTypes: true });
  return ents.filter((e) => e.isFile() && isImage(e.name)).map((e) => path.join(dir, e.name)).sort();
}

/** Parses a CSV with a header row; missing required columns are a DataError naming the CSV. */
export async function readCsv(file: string, required: string[]): Promise<{ line: number; row: Record<string, string> }[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw asDataError(file, err);
  }
  let recs: { info: { lines: number }; record: Record<string, string> }[];
  try {
    recs = parse(text, { columns: true, bom: true, trim: true, skip_empty_lines: true, info: true });
  } catch (err) {
    throw asDataError(file, err, "malformed CSV");
  }
  const header = parse(text, { bom: true, trim: true, to_line: 1 })[0] as string[] | undefined;
  const missing = required.filter((c) => !header?.includes(c));
  if (missing.length) {
    throw new DataError(file, `CSV lacks column(s) ${missing.join(", ")} (has: ${header?.join(", ") || "nothing"})`);
  }
  return recs.map((r) => ({ line: r.info.lines, row: r.record }));
}

/** Decodes every view of every sample; a failure is thrown or, with skipBad, drops the sample. */
async function verifySamples(samples: Sample[], volume: boolean, bad: BadData): Promise<Sample[]> {
  const ok: Sample[] = [];
  const seen = new Map<string, boolean>();
  for (const s of samples) {
    let good = true;
    for (const f of s.files) {
      if (!seen.has(f)) {
        try {
          await (volume ? readVolume(f) : readImage(f));
          seen.set(f, true);
        } catch (err) {
          seen.set(f, false);
          bad.report(asDataError(f, err));
        }
      }
      good &&= seen.get(f)!;
    }
    if (good) ok.push(s);
  }
  return ok;
}

export const HAM10000_CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"];

export interface Ham10000Options extends LoadOptions {
  /** Metadata CSV; default ROOT/HAM10000_metadata.csv. */
  csv?: string;
  /** Image folders; default whichever of HAM10000_images_part_1/_part_2/HAM10000_images exist. */
  imageDirs?: string[];
  /**
   * Group images of one lesion (CSV column lesion_id) so they share a split: HAM10000 has several
   * photos of many lesions, and splitting them apart leaks test lesions into training. Default on.
   */
  groupByLesion?: boolean;
}

/** HAM10000: CSV (image_id, dx) + JPEGs <image_id>.jpg in one or two folders. */
export async function loadHam10000(root: string, opts: Ham10000Options = {}): Promise<DataSet> {
  await requireDir(root);
  const bad = new BadData(!!opts.skipBad);
  const csv = opts.csv ?? path.join(root, "HAM10000_metadata.csv");
  let dirs = opts.imageDirs;
  if (dirs) for (const d of dirs) await requireDir(d, "image folder");
  else {
    const cands = ["HAM10000_images_part_1", "HAM10000_images_part_2", "HAM10000_images"].map((d) => path.join(root, d));
    dirs = [];
    for (const d of cands) if (await isDir(d)) dirs.push(d);
    if (!dirs.length) throw new DataError(path.join(root, "HAM10000_images_part_1"), "missing folder (no HAM10000_images_part_1/, _part_2/ or HAM10000_images/)");
  }
  const byId = new Map<string, string>();
  for (const d of dirs) for (const f of await imageFiles(d)) byId.set(path.basename(f, path.extname(f)), f);
  const rows = await readCsv(csv, ["image_id", "dx"]);
  const samples: Sample[] = [];
  for (const { line, row } of rows) {
    const id = row.image_id ?? "";
    const dx = row.dx ?? "";
    const label = HAM10000_CLASSES.indexOf(dx);
    if (label < 0) {
      bad.report(new DataError(csv, `line ${line}: unknown dx label "${dx}" for ${id || "(no image_id)"} (expected one of ${HAM10000_CLASSES.join(", ")})`));
      continue;
    }
    const file = byId.get(id);
    if (!file) {
      bad.report(new DataError(path.join(dirs[0]!, `${id}.jpg`), `image listed in ${path.basename(csv)} line ${line} not found in ${dirs.join(", ")}`));
      continue;
    }
    const group = opts.groupByLesion !== false && row.lesion_id ? row.lesion_id : undefined;
    samples.push({ files: [file], label, ...(group ? { group } : {}) });
  }
  if (!samples.length) throw new DataError(csv, "no usable rows");
  const ds: DataSet = { name: "HAM10000", root, classes: [...HAM10000_CLASSES], views: ["image"], kind: "image", samples, skipped: bad.skipped };
  if (opts.verify) ds.samples = await verifySamples(samples, false, bad);
  return ds;
}

export interface ClassFolderOptions extends LoadOptions {
  /** Class folder names in label order; default: all sub-folders, sorted. */
  classes?: string[];
  /** Display name of a class from its folder name (e.g. drop SIPaKMeD's "im_"). */
  className?: (folder: string) => string;
  /** If a class folder holds this sub-folder, take images from there (SIPaKMeD's CROPPED/). */
  prefer?: string;
  name?: string;
}

async function listClassFolders(root: string, classes: string[], opts: ClassFolderOptions, bad: BadData): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const [label, cls] of classes.entries()) {
    let dir = path.join(root, cls);
    await requireDir(dir, "class folder");
    // Some archives nest a class folder in a folder of the same name (im_X/im_X/CROPPED/).
    if (!(await imageFiles(dir)).length && (await isDir(path.join(dir, cls)))) dir = path.join(dir, cls);
    if (opts.prefer && (await isDir(path.join(dir, opts.prefer)))) dir = path.join(dir, opts.prefer);
    const files = await imageFiles(dir);
    if (!files.length) bad.report(new DataError(dir, `empty class "${cls}": no images (${IMAGE_EXTENSIONS.join(" ")})`));
    for (const f of files) samples.push({ files: [f], label });
  }
  return samples;
}

async function classList(root: string, given?: string[]): Promise<string[]> {
  await requireDir(root);
  const classes = given ?? (await subdirs(root));
  if (!classes.length) throw new DataError(root, "no class folders");
  return classes;
}

/** One folder per class (SIPaKMeD, IQ-OTHNCCD); class names = sorted folder names unless given. */
export async function loadClassFolders(root: string, opts: ClassFolderOptions = {}): Promise<DataSet> {
  const bad = new BadData(!!opts.skipBad);
  const folders = await classList(root, opts.classes);
  let samples = await listClassFolders(root, folders, opts, bad);
  if (opts.verify) samples = await verifySamples(samples, false, bad);
  const classes = folders.map(opts.className ?? ((f) => f));
  return { name: opts.name ?? path.basename(root), root, classes, views: ["image"], kind: "image", samples, skipped: bad.skipped };
}

/** SIPaKMeD: im_<Class>/ folders of BMPs, using each folder's CROPPED/ cells when present. */
export function loadSipakmed(root: string, opts: ClassFolderOptions = {}): Promise<DataSet> {
  return loadClassFolders(root, { name: "SIPaKMeD", prefer: "CROPPED", className: (f) => f.replace(/^im_/, ""), ...opts });
}

/** Training/ + Testing/ class folders (Nickparvar brain MRI): keeps the set's own test split. */
export async function loadTrainTest(root: string, opts: ClassFolderOptions & { train?: string; test?: string } = {}): Promise<DataSet> {
  const bad = new BadData(!!opts.skipBad);
  const trainDir = path.join(root, opts.train ?? "Training");
  const testDir = path.join(root, opts.test ?? "Testing");
  await requireDir(root);
  const folders = await classList(trainDir, opts.classes);
  await requireDir(testDir);
  for (const t of await subdirs(testDir)) {
    if (!folders.includes(t)) bad.report(new DataError(path.join(testDir, t), `test class "${t}" not among training classes ${folders.join(", ")}`));
  }
  let samples = await listClassFolders(trainDir, folders, opts, bad);
  let test = await listClassFolders(testDir, folders, opts, bad);
  if (opts.verify) {
    samples = await verifySamples(samples, false, bad);
    test = await verifySamples(test, false, bad);
  }
  const classes = folders.map(opts.className ?? ((f) => f));
  return { name: opts.name ?? path.basename(root), root, classes, views: ["image"], kind: "image", samples, test, skipped: bad.skipped };
}

export const BRATS_SEQUENCES = ["t1", "t1ce", "t2", "flair"];
export const BRATS_GRADES = ["HGG", "LGG"];

export interface BratsOptions extends LoadOptions {
  /** Axial slices per patient (default 5). */
  slicesPerPatient?: number;
  /** Grade CSV; default ROOT/name_mapping.csv. */
  mapping?: string;
  /** Pick slices from the segmentation (default true); without one, central slices are used. */
  useSeg?: boolean;
}

/** Finds PATIENT_<suffix>.nii or .nii.gz in a patient folder (case-insensitive). */
function findNifti(files: string[], id: string, suffix: string): string | undefined {
  const want = [`${id}_${suffix}.nii`, `${id}_${suffix}.nii.gz`].map((s) => s.toLowerCase());
  return files.find((f) => want.includes(f.toLowerCase()));
}

/** Chooses k axial slices: most tumour voxels when a segmentation has any, else the centre. */
export function chooseSlices(nz: number, k: number, tumourPerSlice?: ArrayLike<number>): number[] {
  k = Math.min(k, nz);
  const mid = (nz - 1) / 2;
  let total = 0;
  if (tumourPerSlice) for (let z = 0; z < nz; z++) total += tumourPerSlice[z]!;
  if (tumourPerSlice && total > 0) {
    const zs = Array.from({ length: nz }, (_, z) => z);
    // Ties go to the slice nearer the centre, where the brain (and context) is largest.
    zs.sort((a, b) => tumourPerSlice[b]! - tumourPerSlice[a]! || Math.abs(a - mid) - Math.abs(b - mid) || a - b);
    return zs.slice(0, k).sort((a, b) => a - b);
  }
  const first = Math.max(0, Math.min(nz - k, Math.round(mid - (k - 1) / 2)));
  return Array.from({ length: k }, (_, i) => first + i);
}

/**
 * BraTS2020: BraTS20_Training_XXX/ folders with the four sequences (+ _seg) as NIfTI, grades in
 * name_mapping.csv. Each sample is one axial slice of one patient with the four sequences as four
 * views; `group` is the patient, so splits never put one patient's slices on both sides.
 */
export async function loadBrats(root: string, opts: BratsOptions = {}): Promise<DataSet> {
  await requireDir(root);
  const bad = new BadData(!!opts.skipBad);
  const k = opts.slicesPerPatient ?? 5;
  const csv = opts.mapping ?? path.join(root, "name_mapping.csv");
  const grade = new Map<string, number>();
  for (const { line, row } of await readCsv(csv, ["Grade", "BraTS_2020_subject_ID"])) {
    const g = BRATS_GRADES.indexOf(row.Grade ?? "");
    const id = row.BraTS_2020_subject_ID ?? "";
    if (g < 0) bad.report(new DataError(csv, `line ${line}: unknown Grade "${row.Grade}" for ${id} (expected HGG or LGG)`));
    else grade.set(id, g);
  }
  const samples: Sample[] = [];
  const patients = (await subdirs(root)).filter((d) => grade.has(d) || /^BraTS20_\w+_\d+$/.test(d));
  if (!patients.length) throw new DataError(root, "no patient folders (BraTS20_Training_XXX/)");
  for (const id of patients) {
    const dir = path.join(root, id);
    const label = grade.get(id);
    if (label === undefined) {
      bad.report(new DataError(dir, `patient ${id} has no Grade in ${path.basename(csv)}`));
      continue;
    }
    const names = (await readdir(dir)).sort();
    const files = BRATS_SEQUENCES.map((s) => findNifti(names, id, s));
    const missing = BRATS_SEQUENCES.filter((_, i) => !files[i]);
    if (missing.length) {
      bad.report(new DataError(dir, `missing sequence(s) ${missing.join(", ")} (${id}_<seq>.nii[.gz])`));
      continue;
    }
    const paths = files.map((f) => path.join(dir, f!));
    // Some releases misname a segmentation (BraTS20_Training_355): accept any NIfTI called *seg*.
    const segName = findNifti(names, id, "seg") ?? names.find((n) => /seg/i.test(n) && /\.nii(\.gz)?$/i.test(n));
    let counts: Float64Array | undefined;
    let nz: number;
    try {
      const ref = await readVolume(segName && opts.useSeg !== false ? path.join(dir, segName) : paths[0]!);
      const [nx, ny, z] = ref.dims;
      nz = z;
      if (segName && opts.useSeg !== false) {
        counts = new Float64Array(nz);
        for (let i = 0; i < ref.data.length; i++) if (ref.data[i]! > 0) counts[Math.floor(i / (nx * ny))]! += 1;
      }
    } catch (err) {
      bad.report(asDataError(segName ? path.join(dir, segName) : paths[0]!, err));
      continue;
    }
    for (const z of chooseSlices(nz, k, counts)) samples.push({ files: paths, label, group: id, slice: z });
  }
  const ds: DataSet = { name: "BraTS2020", root, classes: [...BRATS_GRADES], views: [...BRATS_SEQUENCES], kind: "volume", samples, skipped: bad.skipped };
  if (opts.verify) ds.samples = await verifySamples(samples, true, bad);
  if (!ds.samples.length) throw new DataError(root, "no usable patients");
  return ds;
}
