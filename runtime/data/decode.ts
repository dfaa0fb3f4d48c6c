// Decoding of the file formats the medical sets come in: JPEG (HAM10000, brain MRI, lung CT), PNG,
// BMP (SIPaKMeD) and NIfTI-1 (BraTS, .nii and .nii.gz). All decoders are pure JavaScript
// libraries (jpeg-js, fast-png, bmp-ts, nifti-reader-js), so nothing native has to build. The
// format is told by the file's first bytes, not its name, because data sets in the wild carry
// misnamed files; a name/content mismatch that cannot be decoded is reported as such.
import { readFile } from "node:fs/promises";
import { gunzip as gunzipCb, gunzipSync } from "node:zlib";
import { promisify } from "node:util";
import jpeg from "jpeg-js";
import { decode as decodePngLib, convertIndexedToRgb } from "fast-png";
import { decode as decodeBmpLib } from "bmp-ts";
import * as nifti from "nifti-reader-js";
import { DataError, asDataError } from "./errors.ts";

const gunzip = promisify(gunzipCb);

/** A decoded 2D image: `channels` (1 grey, 3 RGB) interleaved, row-major, values in [0, 1]. */
export interface Raster {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Float32Array;
}

/** A decoded 3D volume in NIfTI voxel order (x fastest, then y, then z), values as stored. */
export interface Volume {
  dims: [number, number, number];
  data: Float32Array;
}

export type ImageFormat = "jpeg" | "png" | "bmp" | "nifti" | "gzip";

/** Tells the format from magic bytes; undefined when unknown. Gzip is only NIfTI here. */
export function sniffFormat(b: Uint8Array): ImageFormat | undefined {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "png";
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return "bmp";
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b.length >= 348) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    if (dv.getInt32(0, true) === 348 || dv.getInt32(0, false) === 348) return "nifti";
  }
  return undefined;
}

// Real scans and photos are at most a few thousand pixels a side; anything larger in a header is
// corruption, and trusting it would allocate gigabytes before failing.
const MAX_SIDE = 1 << 15;

function checkSize(file: string, w: number, h: number): void {
  if (!(w > 0 && h > 0 && w <= MAX_SIDE && h <= MAX_SIDE)) throw new DataError(file, `corrupt image: implausible size ${w}x${h}`);
}

/** 8-bit interleaved pixels with `stride` bytes per pixel -> Raster (first 1 or 3 channels). */
function fromBytes(w: number, h: number, src: ArrayLike<number>, stride: number, channels: 1 | 3, scale = 255): Raster {
  const n = w * h;
  const data = new Float32Array(n * channels);
  const inv = 1 / scale;
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = src[i * stride + c]! * inv;
  return { width: w, height: h, channels, data };
}

function decodeJpeg(file: string, b: Uint8Array): Raster {
  // jpeg-js reports truncation itself ("marker was not found"); an image whose end-of-image
  // marker is missing but decodes anyway is still accepted, as browsers and PIL do.
  const r = jpeg.decode(b, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  checkSize(file, r.width, r.height);
  return fromBytes(r.width, r.height, r.data, 3, 3);
}

function decodePng(file: string, b: Uint8Array): Raster {
  const p = decodePngLib(b);
  checkSize(file, p.width, p.height);
  if (p.palette) return fromBytes(p.width, p.height, convertIndexedToRgb(p), p.transparency ? 4 : 3, 3);
  const scale = p.depth === 16 ? 65535 : (1 << p.depth) - 1;
  // channels: 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA; alpha is dropped (medical images are opaque).
  return fromBytes(p.width, p.height, p.data, p.channels, p.channels >= 3 ? 3 : 1, scale);
}

function decodeBmp(file: string, b: Uint8Array): Raster {
  // bmp-ts trusts the header; check it first so a truncated file is named as truncated instead of
  // failing with a bare RangeError deep in the pixel loop.
  if (b.length < 54) throw new DataError(file, `truncated BMP: ${b.length} bytes, header needs 54`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const offset = dv.getUint32(10, true);
  const w = dv.getInt32(18, true);
  const h = Math.abs(dv.getInt32(22, true));
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  checkSize(file, w, h);
  if (![1, 4, 8, 16, 24, 32].includes(bpp)) throw new DataError(file, `corrupt BMP: ${bpp} bits per pixel`);
  if (compression === 0) {
    const need = offset + Math.ceil((w * bpp) / 32) * 4 * h;
    if (b.length < need) throw new DataError(file, `truncated BMP: ${b.length} bytes, pixel data needs ${need}`);
  }
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const img = decodeBmpLib(buf, { toRGBA: true });
  return fromBytes(img.width, Math.abs(img.height), img.data, 4, 3);
}

/** Decodes a JPEG, PNG or BMP held in memory. `file` is only used in errors. */
export function decodeImage(bytes: Uint8Array, file: string): Raster {
  const fmt = sniffFormat(bytes);
  try {
    if (fmt === "jpeg") return decodeJpeg(file, bytes);
    if (fmt === "png") return decodePng(file, bytes);
    if (fmt === "bmp") return decodeBmp(file, bytes);
  } catch (err) {
    throw asDataError(file, err, `corrupt or truncated ${fmt?.toUpperCase()}`);
  }
  if (bytes.length === 0) throw new DataError(file, "empty file");
  if (fmt === "nifti" || fmt === "gzip") throw new DataError(file, "is a volume (NIfTI), not a 2D image");
  const head = Array.from(bytes.subarray(0, 4), (x) => x.toString(16).padStart(2, "0")).join(" ");
  throw new DataError(file, `not a JPEG, PNG or BMP image (starts with ${head})`);
}

/** Reads and decodes an image file. */
export async function readImage(file: string): Promise<Raster> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw asDataError(file, err);
  }
  return decodeImage(bytes, file);
}

/** Decodes an uncompressed NIfTI-1/2 file held in memory (gunzip first; see readVolume). */
export function decodeNifti(bytes: Uint8Array, file: string): Volume {
  // nifti-reader-js wants an ArrayBuffer that starts at the header.
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  if (!nifti.isNIFTI(ab)) throw new DataError(file, "not a NIfTI file (bad header size or magic)");
  let hdr: nifti.NIFTI1 | nifti.NIFTI2;
  try {
    hdr = nifti.readHeader(ab);
  } catch (err) {
    throw asDataError(file, err, "corrupt NIfTI header");
  }
  const [nd = 0, nx = 0, ny = 1, nz = 1] = hdr.dims;
  if (nd < 2 || nx < 1 || ny < 1 || nz < 1) throw new DataError(file, `corrupt NIfTI: dims ${hdr.dims.join(",")}`);
  const n = nx * ny * nz;
  const bytesPer = hdr.numBitsPerVoxel / 8;
  const start = Math.trunc(hdr.vox_offset);
  if (ab.byteLength < start + n * bytesPer) {
    throw new DataError(file, `truncated NIfTI: ${ab.byteLength} bytes, ${nx}x${ny}x${nz} voxels need ${start + n * bytesPer}`);
  }
  const dv = new DataView(ab, start, n * bytesPer);
  const le = hdr.littleEndian;
  const T = nifti.NIFTI1;
  const get: Record<number, (i: number) => number> = {
    [T.TYPE_UINT8]: (i) => dv.getUint8(i),
    [T.TYPE_INT8]: (i) => dv.getInt8(i),
    [T.TYPE_INT16]: (i) => dv.getInt16(i * 2, le),
    [T.TYPE_UINT16]: (i) => dv.getUint16(i * 2, le),
    [T.TYPE_INT32]: (i) => dv.getInt32(i * 4, le),
    [T.TYPE_UINT32]: (i) => dv.getUint32(i * 4, le),
    [T.TYPE_FLOAT32]: (i) => dv.getFloat32(i * 4, le),
    [T.TYPE_FLOAT64]: (i) => dv.getFloat64(i * 8, le),
  };
  const read = get[hdr.datatypeCode];
  if (!read) throw new DataError(file, `unsupported NIfTI datatype code ${hdr.datatypeCode}`);
  // Only the first 3D volume is used (BraTS files are 3D; a 4D file's later frames are ignored).
  const data = new Float32Array(n);
  const slope = hdr.scl_slope && Number.isFinite(hdr.scl_slope) ? hdr.scl_slope : 1;
  const inter = Number.isFinite(hdr.scl_inter) ? hdr.scl_inter : 0;
  for (let i = 0; i < n; i++) data[i] = read(i) * slope + inter;
  return { dims: [nx, ny, nz], data };
}

/** Reads a .nii or .nii.gz file (gunzip runs on libuv's thread pool, off the main thread). */
export async function readVolume(file: string): Promise<Volume> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw asDataError(file, err);
  }
  if (sniffFormat(bytes) === "gzip") {
    try {
      bytes = await gunzip(bytes);
    } catch (err) {
      throw asDataError(file, err, "corrupt or truncated gzip");
    }
  }
  return decodeNifti(bytes, file);
}

/** Synchronous readVolume for the bytes already in memory (used by tests and tools). */
export function decodeVolumeBytes(bytes: Uint8Array, file: string): Volume {
  if (sniffFormat(bytes) === "gzip") {
    try {
      bytes = gunzipSync(bytes);
    } catch (err) {
      throw asDataError(file, err, "corrupt or truncated gzip");
    }
  }
  return decodeNifti(bytes, file);
}

/** The axial slice z of a volume as an [ny, nx] grey image, intensities unscaled. */
export function axialSlice(v: Volume, z: number): Float32Array {
  const [nx, ny] = v.dims;
  return v.data.slice(z * nx * ny, (z + 1) * nx * ny);
}

/**
 * Scales an MRI slice to [0, 1]: MRI intensities have no absolute unit and vary per scanner, so
 * each slice is divided by its 99.5th percentile of non-zero voxels (robust to a few hot voxels)
 * and clipped; the zero background stays 0.
 */
export function mriToImage(slice: Float32Array, width: number, height: number): Raster {
  const nz: number[] = [];
  let lo = Infinity;
  for (const x of slice) {
    if (x !== 0) nz.push(x);
    if (x < lo) lo = x;
  }
  const data = new Float32Array(slice.length);
  if (nz.length > 0) {
    nz.sort((a, b) => a - b);
    const base = Math.min(0, lo);
    const hi = nz[Math.min(nz.length - 1, Math.floor(nz.length * 0.995))]! - base;
    const inv = hi > 0 ? 1 / hi : 0;
    for (let i = 0; i < slice.length; i++) data[i] = Math.min(1, Math.max(0, (slice[i]! - base) * inv));
  }
  return { width, height, channels: 1, data };
}
