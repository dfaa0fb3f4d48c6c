// Writers for the formats the loaders read, used by `synth` and the tests (a file written here and
// decoded by decode.ts must come back the same). JPEG/PNG/BMP go through the same libraries as
// decoding; NIfTI-1 is written by hand because nifti-reader-js only reads, and the single-file
// (.nii) header is a fixed 348-byte struct.
import { gzipSync } from "node:zlib";
import jpeg from "jpeg-js";
import { encode as encodePngLib } from "fast-png";
import { encode as encodeBmpLib } from "bmp-ts";

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface Rgb8 {
  width: number;
  height: number;
  data: Uint8Array;
}

export function encodeJpeg(img: Rgb8, quality = 92): Uint8Array {
  const n = img.width * img.height;
  const rgba = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = img.data[i * 3]!;
    rgba[i * 4 + 1] = img.data[i * 3 + 1]!;
    rgba[i * 4 + 2] = img.data[i * 3 + 2]!;
    rgba[i * 4 + 3] = 255;
  }
  return jpeg.encode({ width: img.width, height: img.height, data: rgba }, quality).data;
}

export function encodePng(img: Rgb8): Uint8Array {
  return encodePngLib({ width: img.width, height: img.height, data: img.data, channels: 3, depth: 8 });
}

/** 24-bit uncompressed BMP, as SIPaKMeD's files are. */
export function encodeBmp(img: Rgb8): Uint8Array {
  const n = img.width * img.height;
  // bmp-ts takes ABGR byte order.
  const abgr = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    abgr[i * 4] = 255;
    abgr[i * 4 + 1] = img.data[i * 3 + 2]!;
    abgr[i * 4 + 2] = img.data[i * 3 + 1]!;
    abgr[i * 4 + 3] = img.data[i * 3]!;
  }
  return encodeBmpLib({ width: img.width, height: img.height, data: abgr, bitPP: 24 }).data;
}

export type NiftiType = "uint8" | "int16" | "float32";
const NIFTI_CODE: Record<NiftiType, [code: number, bits: number]> = { uint8: [2, 8], int16: [4, 16], float32: [16, 32] };

/**
 * A single-file NIfTI-1 (.nii), little-endian, voxels in x-fastest order; `gzip` gives .nii.gz
 * bytes. The sform is the voxel size on the diagonal, enough for any reader to place the volume.
 */
export function encodeNifti(dims: [number, number, number], data: ArrayLike<number>, type: NiftiType = "int16", opts: { voxel?: [number, number, number]; gzip?: boolean } = {}): Uint8Array {
  const [nx, ny, nz] = dims;
  const n = nx * ny * nz;
  if (data.length !== n) throw new Error(`encodeNifti: ${data.length} values for ${nx}x${ny}x${nz}`);
  const [code, bits] = NIFTI_CODE[type];
  const vox = opts.voxel ?? [1, 1, 1];
  const buf = new ArrayBuffer(352 + (n * bits) / 8);
  const dv = new DataView(buf);
  dv.setInt32(0, 348, true); // sizeof_hdr
  dv.setUint8(38, "r".charCodeAt(0)); // regular
  [3, nx, ny, nz, 1, 1, 1, 1].forEach((d, i) => dv.setInt16(40 + i * 2, d, true)); // dim
  dv.setInt16(70, code, true); // datatype
  dv.setInt16(72, bits, true); // bitpix
  [1, vox[0], vox[1], vox[2], 0, 0, 0, 0].forEach((p, i) => dv.setFloat32(76 + i * 4, p, true)); // pixdim
  dv.setFloat32(108, 352, true); // vox_offset
  dv.setFloat32(112, 1, true); // scl_slope
  dv.setUint8(123, 2); // xyzt_units: millimetres
  dv.setInt16(254, 1, true); // sform_code: scanner
  [vox[0], 0, 0, 0].forEach((v, i) => dv.setFloat32(280 + i * 4, v, true)); // srow_x
  [0, vox[1], 0, 0].forEach((v, i) => dv.setFloat32(296 + i * 4, v, true)); // srow_y
  [0, 0, vox[2], 0].forEach((v, i) => dv.setFloat32(312 + i * 4, v, true)); // srow_z
  "n+1\0".split("").forEach((c, i) => dv.setUint8(344 + i, c.charCodeAt(0))); // magic
  // Bytes 348..351 stay 0: no extensions.
  for (let i = 0; i < n; i++) {
    const v = data[i]!;
    if (type === "uint8") dv.setUint8(352 + i, Math.max(0, Math.min(255, Math.round(v))));
    else if (type === "int16") dv.setInt16(352 + i * 2, Math.max(-32768, Math.min(32767, Math.round(v))), true);
    else dv.setFloat32(352 + i * 4, v, true);
  }
  const bytes = new Uint8Array(buf);
  return opts.gzip ? gzipSync(bytes) : bytes;
}
