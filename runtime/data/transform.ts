// Pixel work between decoding and the batch tensor: resizing to the model's input size,
// augmentation (rotation, translation, brightness, optional flip) and normalisation into CHW
// float32. Written by hand rather than with an image library because each step is a few loops
// over a 128x128 picture, and a library would add a native build or a second image type.
import type { Raster } from "./decode.ts";
import type { Rng } from "./rng.ts";

/** Per-channel normalisation applied after scaling pixels to [0, 1]: (x - mean) / std. */
export interface Normalize {
  mean: [number, number, number];
  std: [number, number, number];
}

/**
 * The default. ImageNet statistics, because they need no pass over the data, keep inputs centred
 * near 0 with unit-ish spread for any natural-looking image, and match what Keras/PyTorch
 * pipelines for these sets (including DRIFA-Net's backbones) commonly use. Grey images replicated
 * to three channels get slightly different per-channel shifts, which a first conv absorbs.
 * Use `computeStats` (pipeline.ts) for per-set statistics or UNIT_RANGE for plain [0, 1].
 */
export const IMAGENET: Normalize = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
/** No shift or scale: pixels stay in [0, 1]. */
export const UNIT_RANGE: Normalize = { mean: [0, 0, 0], std: [1, 1, 1] };

/** Resampling weights for one axis: for each output index, source indices and weights. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  w: Float32Array;
  taps: number;
}

// A triangle (bilinear) filter whose support widens by the reduction factor when shrinking, as
// PIL's BILINEAR does: plain 2-tap bilinear from 600 px to 128 px would skip most pixels and
// alias fine texture (dermoscopy hair, cell chromatin) into noise.
function axisWeights(src: number, dst: number): AxisWeights {
  const scale = src / dst;
  const support = Math.max(scale, 1);
  const taps = Math.ceil(support) * 2 + 2;
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  const w = new Float32Array(dst * taps);
  for (let i = 0; i < dst; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(src, Math.ceil(center + support));
    let sum = 0;
    let k = 0;
    for (let j = lo; j < hi && k < taps; j++, k++) {
      const t = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
      w[i * taps + k] = t;
      sum += t;
    }
    start[i] = lo;
    count[i] = k;
    if (sum > 0) for (let m = 0; m < k; m++) w[i * taps + m]! /= sum;
    else {
      // Degenerate only when src is 1 pixel wide: copy it.
      w[i * taps] = 1;
      count[i] = 1;
    }
  }
  return { start, count, w, taps };
}

/** Resizes to width x height with an antialiased bilinear filter (separable, two passes). */
export function resize(img: Raster, width: number, height: number): Raster {
  if (img.width === width && img.height === height) return img;
  const C = img.channels;
  const wx = axisWeights(img.width, width);
  const wy = axisWeights(img.height, height);
  // Horizontal pass: [img.height, width, C].
  const tmp = new Float32Array(img.height * width * C);
  for (let y = 0; y < img.height; y++) {
    const row = y * img.width;
    for (let x = 0; x < width; x++) {
      const s = wx.start[x]!;
      const n = wx.count[x]!;
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += img.data[(row + s + k) * C + c]! * wx.w[x * wx.taps + k]!;
        tmp[(y * width + x) * C + c] = acc;
      }
    }
  }
  // Vertical pass.
  const out = new Float32Array(height * width * C);
  for (let y = 0; y < height; y++) {
    const s = wy.start[y]!;
    const n = wy.count[y]!;
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += tmp[((s + k) * width + x) * C + c]! * wy.w[y * wy.taps + k]!;
        out[(y * width + x) * C + c] = acc;
      }
    }
  }
  return { width, height, channels: C, data: out };
}

/** Augmentation ranges; each draw is uniform in [-max, +max]. Zero or absent = off. */
export interface AugmentOptions {
  /** Largest rotation, degrees. */
  rotate?: number;
  /** Largest shift, as a fraction of the side. */
  translate?: number;
  /** Largest relative brightness change (0.2 = gain in [0.8, 1.2]). */
  brightness?: number;
  /** Mirror left-right with probability 1/2. */
  flip?: boolean;
}

/** The paper: rotation and translation for all sets, brightness as well for MRI. */
export const PAPER_AUGMENT: AugmentOptions = { rotate: 15, translate: 0.1 };
export const PAPER_AUGMENT_MRI: AugmentOptions = { rotate: 15, translate: 0.1, brightness: 0.2 };

/** One drawn transform, shared by all views of a sample (BraTS sequences stay aligned). */
export interface AugmentDraw {
  angle: number;
  tx: number;
  ty: number;
  gain: number;
  flip: boolean;
}

export function drawAugment(rng: Rng, o: AugmentOptions): AugmentDraw {
  // Always draw the same count of numbers so enabling one option does not reshuffle the others.
  const a = rng.uniform(-1, 1);
  const tx = rng.uniform(-1, 1);
  const ty = rng.uniform(-1, 1);
  const g = rng.uniform(-1, 1);
  const f = rng.next() < 0.5;
  return {
    angle: ((o.rotate ?? 0) * a * Math.PI) / 180,
    tx: (o.translate ?? 0) * tx,
    ty: (o.translate ?? 0) * ty,
    gain: 1 + (o.brightness ?? 0) * g,
    flip: !!o.flip && f,
  };
}

/**
 * Applies a drawn transform: inverse-maps every output pixel and samples bilinearly. Pixels from
 * outside the picture repeat the nearest edge (Keras' fill_mode "nearest", the authors' setting),
 * which keeps dermoscopy backgrounds plausible and MRI backgrounds at zero.
 */
export function augment(img: Raster, d: AugmentDraw): Raster {
  const { width: W, height: H, channels: C } = img;
  const out = new Float32Array(img.data.length);
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  const cos = Math.cos(d.angle);
  const sin = Math.sin(d.angle);
  const sx = d.tx * W;
  const sy = d.ty * H;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const ox = (d.flip ? W - 1 - x : x) - cx - sx;
      const oy = y - cy - sy;
      // Inverse rotation of the output offset gives the source position.
      const u = Math.min(W - 1, Math.max(0, cos * ox + sin * oy + cx));
      const v = Math.min(H - 1, Math.max(0, -sin * ox + cos * oy + cy));
      const x0 = Math.floor(u);
      const y0 = Math.floor(v);
      const x1 = Math.min(W - 1, x0 + 1);
      const y1 = Math.min(H - 1, y0 + 1);
      const fx = u - x0;
      const fy = v - y0;
      for (let c = 0; c < C; c++) {
        const p00 = img.data[(y0 * W + x0) * C + c]!;
        const p01 = img.data[(y0 * W + x1) * C + c]!;
        const p10 = img.data[(y1 * W + x0) * C + c]!;
        const p11 = img.data[(y1 * W + x1) * C + c]!;
        const top = p00 + (p01 - p00) * fx;
        const bot = p10 + (p11 - p10) * fx;
        out[(y * W + x) * C + c] = Math.min(1, Math.max(0, (top + (bot - top) * fy) * d.gain));
      }
    }
  }
  return { width: W, height: H, channels: C, data: out };
}

/**
 * Writes an image as normalised CHW float32 into out at offset (3 * W * H values). Grey images are
 * copied to all three channels, so every modality feeds the same 3-channel stem.
 */
export function writeCHW(img: Raster, out: Float32Array, offset: number, norm: Normalize): void {
  const n = img.width * img.height;
  const C = img.channels;
  for (let c = 0; c < 3; c++) {
    const src = C === 1 ? 0 : c;
    const m = norm.mean[c];
    const inv = 1 / norm.std[c];
    const base = offset + c * n;
    for (let i = 0; i < n; i++) out[base + i] = (img.data[i * C + src]! - m) * inv;
  }
}

/** Resize + optional augmentation + normalisation into a fresh [3, S, S] tensor. */
export function toTensor(img: Raster, size: number, norm: Normalize = IMAGENET, aug?: AugmentDraw): Float32Array {
  let r = resize(img, size, size);
  if (aug) r = augment(r, aug);
  const out = new Float32Array(3 * size * size);
  writeCHW(r, out, 0, norm);
  return out;
}
