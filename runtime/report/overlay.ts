// Pixel-level images: PNG decode/encode (fast-png: pure JavaScript, so this file also runs in a
// browser) and the heat-map overlay that Grad-CAM figures need: a [h, w] map in [0, 1], usually
// at feature-map resolution (4x4 .. 16x16 for a 128x128 input), resized bilinearly to the image,
// colour-mapped and alpha-blended over it.

import { convertIndexedToRgb, decode, encode } from "fast-png";
import { colormapTable, type ColormapName } from "./colormap.ts";

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes a PNG of any colour type (grey, grey+alpha, RGB, RGBA, palette; 8 or 16 bits) to RGB.
 * Alpha is composited over white, which is how the image looks on a report page. */
export function decodePngRgb(bytes: Uint8Array): RgbImage {
  const png = decode(bytes);
  const { width, height } = png;
  let data = png.data;
  let channels = png.channels;
  let depth: number = png.depth;
  if (png.palette) {
    data = convertIndexedToRgb(png);
    channels = png.palette[0]?.length ?? 3;
    depth = 8;
  }
  if (depth !== 8 && depth !== 16) throw new Error(`decodePngRgb: ${depth}-bit greyscale PNGs are not supported`);
  const max = depth === 16 ? 65535 : 255;
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const at = p * channels;
    const grey = channels <= 2;
    const alpha = channels === 2 || channels === 4 ? data[at + channels - 1]! / max : 1;
    for (let c = 0; c < 3; c++) {
      const v = data[at + (grey ? 0 : c)]! / max;
      out[p * 3 + c] = Math.round((v * alpha + (1 - alpha)) * 255);
    }
  }
  return { width, height, data: out };
}

/** Encodes 8-bit RGB pixels as a PNG. */
export function encodePngRgb(image: RgbImage): Uint8Array {
  if (image.data.length !== image.width * image.height * 3) throw new Error(`encodePngRgb: ${image.data.length} bytes for ${image.width}x${image.height} RGB`);
  return encode({ width: image.width, height: image.height, data: image.data, channels: 3, depth: 8 });
}

/**
 * Bilinear resize of a [h, w] map to [outH, outW] with half-pixel centres (the convention of
 * OpenCV's resize and tf.image.resize), so a coarse Grad-CAM map stays centred on the image.
 */
export function resizeBilinear(src: Float32Array, w: number, h: number, outW: number, outH: number): Float32Array {
  if (src.length !== w * h) throw new Error(`resizeBilinear: ${src.length} values for ${w}x${h}`);
  const out = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(Math.max((y + 0.5) * (h / outH) - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const fy = sy - y0;
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(Math.max((x + 0.5) * (w / outW) - 0.5, 0), w - 1);
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, w - 1);
      const fx = sx - x0;
      const top = src[y0 * w + x0]! * (1 - fx) + src[y0 * w + x1]! * fx;
      const bottom = src[y1 * w + x0]! * (1 - fx) + src[y1 * w + x1]! * fx;
      out[y * outW + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

export interface OverlayOptions {
  colormap?: ColormapName;
  /** Opacity of the heat map, 0..1; default 0.5. */
  alpha?: number;
  /** "heat": opacity scales with the heat value, so cold regions show the image untouched. */
  alphaMode?: "constant" | "heat";
}

function checkHeat(heat: Float32Array, w: number, h: number): void {
  if (!Number.isInteger(w) || !Number.isInteger(h) || w < 1 || h < 1) throw new Error(`heat map size ${w}x${h} is invalid`);
  if (heat.length !== w * h) throw new Error(`heat map has ${heat.length} values, expected ${w}x${h} = ${w * h}`);
  // NaN in a Grad-CAM map means a bug upstream (a 0/0 normalisation); showing it as cold would hide it.
  for (let i = 0; i < heat.length; i++) if (Number.isNaN(heat[i]!)) throw new Error(`heat map value ${i} is NaN`);
}

const toIndex = (v: number) => Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255);

/** A heat map [h, w] (values clamped to [0, 1]) rendered through a colour map, as RGB pixels. */
export function heatmapToRgb(heat: Float32Array, width: number, height: number, colormap: ColormapName = "turbo"): RgbImage {
  checkHeat(heat, width, height);
  const lut = colormapTable(colormap);
  const data = new Uint8Array(width * height * 3);
  for (let p = 0; p < heat.length; p++) {
    const i = toIndex(heat[p]!) * 3;
    data[p * 3] = lut[i]!;
    data[p * 3 + 1] = lut[i + 1]!;
    data[p * 3 + 2] = lut[i + 2]!;
  }
  return { width, height, data };
}

/** Blends a colour-mapped heat map [heatH, heatW] over an RGB image, resizing it if needed. */
export function overlayHeatmap(image: RgbImage, heat: Float32Array, heatW: number, heatH: number, options: OverlayOptions = {}): RgbImage {
  checkHeat(heat, heatW, heatH);
  const { width, height } = image;
  if (image.data.length !== width * height * 3) throw new Error(`overlayHeatmap: image has ${image.data.length} bytes for ${width}x${height} RGB`);
  const alpha = options.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new Error(`overlayHeatmap: alpha ${alpha} is outside [0, 1]`);
  const map = heatW === width && heatH === height ? heat : resizeBilinear(heat, heatW, heatH, width, height);
  const lut = colormapTable(options.colormap ?? "turbo");
  const out = new Uint8Array(image.data.length);
  for (let p = 0; p < width * height; p++) {
    const v = map[p]!;
    const i = toIndex(v) * 3;
    const a = options.alphaMode === "heat" ? alpha * (v < 0 ? 0 : v > 1 ? 1 : v) : alpha;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round(image.data[p * 3 + c]! * (1 - a) + lut[i + c]! * a);
  }
  return { width, height, data: out };
}

/** PNG in, PNG out: the overlay for a stored input image. */
export function overlayHeatmapPng(png: Uint8Array, heat: Float32Array, heatW: number, heatH: number, options: OverlayOptions = {}): Uint8Array {
  return encodePngRgb(overlayHeatmap(decodePngRgb(png), heat, heatW, heatH, options));
}
