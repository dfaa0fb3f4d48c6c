// Decoding and pixel transforms of the data layer: each format written then read back, resizing,
// augmentation and normalisation into CHW tensors.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  DataError,
  IMAGENET,
  UNIT_RANGE,
  Rng,
  augment,
  decodeImage,
  decodeVolumeBytes,
  drawAugment,
  encodeBmp,
  encodeJpeg,
  encodeNifti,
  encodePng,
  paintClass,
  readVolume,
  resize,
  toTensor,
  type Raster,
  type Rgb8,
} from "../runtime/data/index.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-data-decode-"));
test.after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A deterministic RGB picture with every byte value pattern we care about. */
function picture(w: number, h: number): Rgb8 {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    data[i * 3] = (i * 37) % 256;
    data[i * 3 + 1] = (i * 11 + 50) % 256;
    data[i * 3 + 2] = 255 - ((i * 5) % 256);
  }
  return { width: w, height: h, data };
}

function meanAbs(img: Raster, ref: Rgb8): number {
  let s = 0;
  for (let i = 0; i < ref.data.length; i++) s += Math.abs(img.data[i]! - ref.data[i]! / 255);
  return s / ref.data.length;
}

test("PNG and BMP round-trip exactly (odd widths exercise BMP row padding)", () => {
  for (const [w, h] of [[7, 5], [8, 3], [13, 11]] as const) {
    const ref = picture(w, h);
    for (const [name, bytes] of [["png", encodePng(ref)], ["bmp", encodeBmp(ref)]] as const) {
      const img = decodeImage(bytes, `x.${name}`);
      assert.is(img.width, w, name);
      assert.is(img.height, h, name);
      assert.is(img.channels, 3);
      const bytes8 = Array.from(img.data, (x) => Math.round(x * 255));
      assert.equal(bytes8, Array.from(ref.data), `${name} ${w}x${h} differs`);
    }
  }
});

test("JPEG round-trips within compression error, at the right size", () => {
  const ref = paintClass(new Rng(5), 48, 2, 7, [0.8, 0.6, 0.5]);
  const img = decodeImage(encodeJpeg(ref, 95), "x.jpg");
  assert.is(img.width, 48);
  assert.is(img.height, 48);
  assert.ok(meanAbs(img, ref) < 0.03, `mean error ${meanAbs(img, ref)}`);
});

test("grey PNG decodes as one channel and becomes three identical channels", () => {
  const grey = new Uint8Array(16).map((_, i) => i * 16);
  const bytes = encodePngLibGrey(4, 4, grey);
  const img = decodeImage(bytes, "g.png");
  assert.is(img.channels, 1);
  const t = toTensor(img, 4, UNIT_RANGE);
  assert.is(t.length, 3 * 16);
  for (let i = 0; i < 16; i++) {
    assert.ok(Math.abs(t[i]! - grey[i]! / 255) < 1e-6);
    assert.is(t[16 + i], t[i]);
    assert.is(t[32 + i], t[i]);
  }
});

// fast-png writes grey when given one channel; kept local so the public API stays RGB-only.
import { encode as pngEncode } from "fast-png";
function encodePngLibGrey(w: number, h: number, data: Uint8Array): Uint8Array {
  return pngEncode({ width: w, height: h, data, channels: 1, depth: 8 });
}

test("NIfTI .nii and .nii.gz round-trip every stored type", async () => {
  const dims: [number, number, number] = [5, 4, 3];
  const n = 60;
  const cases = [
    ["int16", Array.from({ length: n }, (_, i) => i * 100 - 3000)],
    ["uint8", Array.from({ length: n }, (_, i) => (i * 7) % 256)],
    ["float32", Array.from({ length: n }, (_, i) => i / 8 - 2)],
  ] as const;
  for (const [type, data] of cases) {
    for (const gzip of [false, true]) {
      const file = path.join(tmp, `v_${type}.nii${gzip ? ".gz" : ""}`);
      fs.writeFileSync(file, encodeNifti(dims, data, type, { gzip }));
      const v = await readVolume(file);
      assert.equal(v.dims, dims);
      assert.equal(Array.from(v.data), data, `${type} gzip=${gzip}`);
    }
  }
  // x varies fastest: voxel (x=1, y=2, z=1) is index 1 + 5 * (2 + 4 * 1) = 31.
  const v = decodeVolumeBytes(encodeNifti(dims, cases[0][1], "int16"), "v.nii");
  assert.is(v.data[31], 31 * 100 - 3000);
});

test("non-images are named DataErrors", () => {
  try {
    decodeImage(new TextEncoder().encode("hello, not an image"), "notes.jpg");
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DataError);
    assert.is((e as DataError).file, "notes.jpg");
    assert.match((e as DataError).cause, /not a JPEG, PNG or BMP/);
  }
});

test("resize keeps constants, averages when shrinking and hits the asked size", () => {
  const flat: Raster = { width: 37, height: 23, channels: 3, data: new Float32Array(37 * 23 * 3).fill(0.25) };
  const r = resize(flat, 16, 16);
  assert.is(r.width, 16);
  assert.is(r.height, 16);
  assert.ok(r.data.every((x) => Math.abs(x - 0.25) < 1e-6));
  // A 1-pixel checkerboard shrunk 4x is grey everywhere: the filter is antialiased.
  const checker: Raster = { width: 64, height: 64, channels: 1, data: new Float32Array(64 * 64).map((_, i) => ((i % 64) + Math.floor(i / 64)) % 2) };
  const g = resize(checker, 16, 16);
  assert.ok(g.data.every((x) => Math.abs(x - 0.5) < 0.05), `max ${Math.max(...g.data)} min ${Math.min(...g.data)}`);
  // Growing is plain bilinear: a two-pixel ramp becomes monotone.
  const up = resize({ width: 2, height: 1, channels: 1, data: Float32Array.of(0, 1) }, 8, 1);
  for (let i = 1; i < 8; i++) assert.ok(up.data[i]! >= up.data[i - 1]!);
});

test("augmentation: identity when off, seeded, shifts and brightens as asked", () => {
  const img: Raster = { width: 16, height: 16, channels: 1, data: new Float32Array(256) };
  img.data[8 * 16 + 8] = 0.5;
  const off = drawAugment(new Rng(1), {});
  assert.equal(Array.from(augment(img, off).data), Array.from(img.data));
  const a = drawAugment(new Rng(9), { rotate: 15, translate: 0.1, brightness: 0.2 });
  const b = drawAugment(new Rng(9), { rotate: 15, translate: 0.1, brightness: 0.2 });
  assert.equal(a, b);
  assert.ok(Math.abs(a.angle) <= (15 * Math.PI) / 180 && Math.abs(a.tx) <= 0.1 && a.gain >= 0.8 && a.gain <= 1.2);
  // A pure shift of 2 pixels right moves the bright pixel from x=8 to x=10, and gain scales it.
  const shifted = augment(img, { angle: 0, tx: 2 / 16, ty: 0, gain: 1.5, flip: false });
  assert.ok(Math.abs(shifted.data[8 * 16 + 10]! - 0.75) < 1e-6);
  assert.is(shifted.data[8 * 16 + 8], 0);
  // Rotating by 90 degrees about the centre maps a row to a column.
  const row: Raster = { width: 5, height: 5, channels: 1, data: new Float32Array(25) };
  for (let x = 0; x < 5; x++) row.data[2 * 5 + x] = 1;
  const rot = augment(row, { angle: Math.PI / 2, tx: 0, ty: 0, gain: 1, flip: false });
  for (let y = 0; y < 5; y++) assert.ok(Math.abs(rot.data[y * 5 + 2]! - 1) < 1e-5);
});

test("toTensor writes normalised CHW of the model size", () => {
  const img: Raster = { width: 10, height: 6, channels: 3, data: new Float32Array(180).fill(0.5) };
  const t = toTensor(img, 8);
  assert.is(t.length, 3 * 8 * 8);
  for (let c = 0; c < 3; c++) {
    const want = (0.5 - IMAGENET.mean[c]) / IMAGENET.std[c];
    assert.ok(Math.abs(t[c * 64 + 17]! - want) < 1e-5);
  }
});

test("the data layer never imports the compiler or the grammar", () => {
  const dir = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "runtime", "data");
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const src = fs.readFileSync(path.join(dir, f), "utf8");
    assert.not.match(src, /from\s+["'][^"']*\/(compiler|grammar)\//, f);
  }
});

test.run();
