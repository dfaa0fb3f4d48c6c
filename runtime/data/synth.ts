// A synthetic stand-in for the real data sets, in their real on-disk layouts, so the whole
// pipeline (loaders, decoders, splits, trainer) can be exercised without downloading gigabytes of
// patient data. Classes must be learnable by a small CNN in a few steps: each class has its own
// shape (disc, ring, striped disc), hue and stripe orientation, drawn at a random place and size
// with noise, so colour alone already separates them and shape separates them in grey.
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { encodeBmp, encodeJpeg, encodeNifti, type Rgb8 } from "./encode.ts";
import { HAM10000_CLASSES } from "./datasets.ts";
import { Rng } from "./rng.ts";

export interface SynthOptions {
  /** Images per class for skin and cervix (default 20). */
  perClass?: number;
  /** Side of the 2D images and of the MRI slices (default 64). */
  size?: number;
  seed?: number;
  /** BraTS patients per grade (default 3) and slices per volume (default 16). */
  patientsPerGrade?: number;
  depth?: number;
}

export interface SynthResult {
  skin: string;
  cervix: string;
  brats: string;
  counts: { skin: number; cervix: number; bratsPatients: number };
}

export const SIPAKMED_FOLDERS = ["im_Dyskeratotic", "im_Koilocytotic", "im_Metaplastic", "im_Parabasal", "im_Superficial-Intermediate"];

/** HSV (h in degrees) to RGB in [0, 1]. */
function hsv(h: number, s: number, v: number): [number, number, number] {
  const f = (n: number) => {
    const k = (n + h / 60) % 6;
    return v - v * s * Math.max(0, Math.min(k, 4 - k, 1));
  };
  return [f(5), f(3), f(1)];
}

/**
 * Paints class `cls` of `k` classes: a background of `bg` with a soft gradient, then the class
 * shape in the class hue, then Gaussian noise. Shapes: 0 disc, 1 ring, 2 striped disc (stripe
 * angle per class); the hue is evenly spread over classes.
 */
export function paintClass(rng: Rng, size: number, cls: number, k: number, bg: [number, number, number]): Rgb8 {
  const shape = cls % 3;
  const fg = hsv((360 * cls) / k, 0.75, 0.85);
  const r = size * rng.uniform(0.2, 0.3);
  const cx = size * rng.uniform(0.35, 0.65);
  const cy = size * rng.uniform(0.35, 0.65);
  const theta = (Math.PI * cls) / k + rng.uniform(-0.1, 0.1);
  const period = Math.max(3, size / 10);
  const gx = rng.uniform(-0.1, 0.1);
  const gy = rng.uniform(-0.1, 0.1);
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const d = Math.hypot(x - cx, y - cy);
      let a = Math.max(0, Math.min(1, r - d + 0.5)); // antialiased disc edge
      if (shape === 1) a *= Math.max(0, Math.min(1, d - r * 0.55 + 0.5)); // hollow centre
      if (shape === 2) {
        const t = (x - cx) * Math.cos(theta) + (y - cy) * Math.sin(theta);
        a *= 0.5 + 0.5 * Math.cos((2 * Math.PI * t) / period) > 0.4 ? 1 : 0.15;
      }
      const shade = 1 + gx * (x / size - 0.5) + gy * (y / size - 0.5);
      for (let c = 0; c < 3; c++) {
        const v = (bg[c]! * shade * (1 - a) + fg[c]! * a + 0.05 * rng.normal()) * 255;
        data[(y * size + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width: size, height: size, data };
}

async function put(file: string, bytes: Uint8Array): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
}

/** DIR/skin: HAM10000_metadata.csv + JPEGs split over HAM10000_images_part_1/ and _part_2/. */
async function synthSkin(dir: string, perClass: number, size: number, seed: number): Promise<number> {
  const lines = ["lesion_id,image_id,dx,dx_type,age,sex,localization"];
  let n = 0;
  let lesion = 0;
  for (const [cls, dx] of HAM10000_CLASSES.entries()) {
    for (let j = 0; j < perClass; j++, n++) {
      const rng = Rng.of(seed, "skin", cls, j);
      // Like the real set, some lesions have two photos (every third image repeats a lesion).
      if (j % 3 !== 2) lesion++;
      const id = `ISIC_${String(24306 + n).padStart(7, "0")}`;
      const bg: [number, number, number] = [rng.uniform(0.75, 0.85), rng.uniform(0.55, 0.65), rng.uniform(0.45, 0.55)];
      const part = n % 2 === 0 ? "HAM10000_images_part_1" : "HAM10000_images_part_2";
      await put(path.join(dir, part, `${id}.jpg`), encodeJpeg(paintClass(rng, size, cls, HAM10000_CLASSES.length, bg)));
      const sex = rng.next() < 0.5 ? "male" : "female";
      lines.push(`HAM_${String(lesion).padStart(7, "0")},${id},${dx},histo,${30 + rng.int(50)},${sex},back`);
    }
  }
  await put(path.join(dir, "HAM10000_metadata.csv"), new TextEncoder().encode(lines.join("\n") + "\n"));
  return n;
}

/** DIR/cervix: SIPaKMeD's im_<Class>/ folders of 24-bit BMPs. */
async function synthCervix(dir: string, perClass: number, size: number, seed: number): Promise<number> {
  let n = 0;
  for (const [cls, folder] of SIPAKMED_FOLDERS.entries()) {
    for (let j = 0; j < perClass; j++, n++) {
      const rng = Rng.of(seed, "cervix", cls, j);
      const bg: [number, number, number] = [rng.uniform(0.8, 0.9), rng.uniform(0.7, 0.8), rng.uniform(0.85, 0.95)];
      await put(path.join(dir, folder, `${String(j + 1).padStart(3, "0")}_01.bmp`), encodeBmp(paintClass(rng, size, cls, SIPAKMED_FOLDERS.length, bg)));
    }
  }
  return n;
}

/**
 * One synthetic patient: a brain ellipsoid and a spherical tumour. HGG: enhancing rim in T1ce
 * around a dark necrotic core, large oedema bright in T2/FLAIR. LGG: a smaller homogeneous lesion
 * bright in T2/FLAIR, no enhancement. The segmentation uses BraTS labels (1 core, 2 oedema, 4 rim).
 */
function patient(rng: Rng, n: number, depth: number, hgg: boolean): { seq: Record<string, Float32Array>; seg: Uint8Array } {
  const vox = n * n * depth;
  const seq: Record<string, Float32Array> = { t1: new Float32Array(vox), t1ce: new Float32Array(vox), t2: new Float32Array(vox), flair: new Float32Array(vox) };
  const seg = new Uint8Array(vox);
  const base: Record<string, number> = { t1: 500, t1ce: 450, t2: 350, flair: 400 };
  const r = (hgg ? 0.22 : 0.15) * n * rng.uniform(0.85, 1.15);
  const tc = [n * rng.uniform(0.35, 0.65), n * rng.uniform(0.35, 0.65), depth * rng.uniform(0.3, 0.7)] as const;
  const zScale = n / depth / 2; // the tumour spans fewer slices than pixels in-plane
  for (let z = 0; z < depth; z++) {
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const i = x + n * (y + n * z);
        const bx = (x - n / 2) / (0.42 * n);
        const by = (y - n / 2) / (0.46 * n);
        const bz = (z - depth / 2) / (0.5 * depth);
        if (bx * bx + by * by + bz * bz > 1) continue; // background stays 0, as in BraTS
        const d = Math.hypot(x - tc[0], y - tc[1], (z - tc[2]) * zScale) / r;
        let label = 0;
        if (hgg) label = d < 0.55 ? 1 : d < 0.8 ? 4 : d < 1.5 ? 2 : 0;
        else label = d < 1 ? 1 : d < 1.2 ? 2 : 0;
        seg[i] = label;
        for (const s of Object.keys(seq)) {
          let v = base[s]!;
          if (label === 1) v *= s === "t1" ? 0.6 : s === "t1ce" ? (hgg ? 0.5 : 0.9) : 2.0;
          if (label === 4) v *= s === "t1ce" ? 2.6 : s === "t1" ? 0.8 : 1.6;
          if (label === 2) v *= s === "t2" || s === "flair" ? 1.7 : 0.9;
          seq[s]![i] = v * (1 + 0.08 * rng.normal());
        }
      }
    }
  }
  return { seq, seg };
}

/** DIR/brats: BraTS20_Training_XXX/ with the 4 sequences + seg, grades in name_mapping.csv. */
async function synthBrats(dir: string, perGrade: number, size: number, depth: number, seed: number): Promise<number> {
  const lines = ["Grade,BraTS_2019_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2020_subject_ID"];
  let k = 0;
  for (let j = 0; j < perGrade; j++) {
    for (const grade of ["HGG", "LGG"]) {
      k++;
      const id = `BraTS20_Training_${String(k).padStart(3, "0")}`;
      const { seq, seg } = patient(Rng.of(seed, "brats", k), size, depth, grade === "HGG");
      // Alternate .nii.gz and .nii: both occur in the wild.
      const gz = k % 2 === 1;
      const ext = gz ? ".nii.gz" : ".nii";
      const dims: [number, number, number] = [size, size, depth];
      for (const [s, data] of Object.entries(seq)) {
        await put(path.join(dir, id, `${id}_${s}${ext}`), encodeNifti(dims, data, "int16", { gzip: gz }));
      }
      await put(path.join(dir, id, `${id}_seg${ext}`), encodeNifti(dims, seg, "uint8", { gzip: gz }));
      lines.push(`${grade},NA,NA,NA,${id}`);
    }
  }
  await put(path.join(dir, "name_mapping.csv"), new TextEncoder().encode(lines.join("\n") + "\n"));
  return k;
}

/**
 * Writes OUT/skin (HAM10000 layout, 7 classes), OUT/cervix (SIPaKMeD layout, 5 classes) and
 * OUT/brats (BraTS2020 layout, HGG/LGG). Deterministic for a given seed and options.
 */
export async function synth(outDir: string, opts: SynthOptions = {}): Promise<SynthResult> {
  const perClass = opts.perClass ?? 20;
  const size = opts.size ?? 64;
  const seed = opts.seed ?? 0;
  const skin = path.join(outDir, "skin");
  const cervix = path.join(outDir, "cervix");
  const brats = path.join(outDir, "brats");
  const counts = {
    skin: await synthSkin(skin, perClass, size, seed),
    cervix: await synthCervix(cervix, perClass, size, seed),
    bratsPatients: await synthBrats(brats, opts.patientsPerGrade ?? 3, size, opts.depth ?? 16, seed),
  };
  return { skin, cervix, brats, counts };
}
