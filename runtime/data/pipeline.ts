// From a Sample to pictures at the model's input size. Decoding is the slow part (a 600x450 JPEG
// takes ~15 ms in pure JS; a gzipped BraTS volume far more), so resized pictures are cached as
// 8-bit (quantising [0,1] to 1/255 steps, what the source JPEGs/BMPs hold anyway) and grey ones
// with a single channel: later epochs then cost only augmentation and normalisation.
import type { DataSet, Sample } from "./datasets.ts";
import { axialSlice, mriToImage, readImage, readVolume, type Raster } from "./decode.ts";
import { DataError } from "./errors.ts";
import { resize, type Normalize } from "./transform.ts";

export interface ReaderOptions {
  /** Side of the square model input (the paper: 128). */
  size: number;
  /** Memory for cached resized pictures, bytes (default 1 GiB); 0 turns caching off. */
  cacheBytes?: number;
}

interface Cached {
  channels: 1 | 3;
  data: Uint8Array;
}

// Colour pictures whose channels agree to within a grey level are stored as grey (MRI and CT
// JPEGs are often saved as RGB), a third of the memory and no visible difference.
function pack(img: Raster): Cached {
  let grey = img.channels === 1;
  if (!grey) {
    grey = true;
    for (let i = 0; i < img.data.length && grey; i += 3) {
      const r = img.data[i]!;
      if (Math.abs(r - img.data[i + 1]!) > 1 / 255 || Math.abs(r - img.data[i + 2]!) > 1 / 255) grey = false;
    }
  }
  const C = grey ? 1 : 3;
  const n = img.width * img.height;
  const data = new Uint8Array(n * C);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++) data[i * C + c] = Math.round(Math.min(1, Math.max(0, img.data[i * img.channels + c]!)) * 255);
  }
  return { channels: C, data };
}

function unpack(c: Cached, size: number): Raster {
  const data = new Float32Array(c.data.length);
  for (let i = 0; i < data.length; i++) data[i] = c.data[i]! / 255;
  return { width: size, height: size, channels: c.channels, data };
}

/**
 * Reads the views of samples of one data set as [0,1] pictures of size x size. For volume sets
 * every needed slice of a file is cut when the file is first decoded, so each NIfTI file is
 * gunzipped once per run rather than once per slice.
 */
export class SampleReader {
  readonly size: number;
  private readonly cache = new Map<string, Cached>();
  private readonly inflight = new Map<string, Promise<Map<number, Cached>>>();
  private cacheLeft: number;
  /** For volume sets: file -> the slices samples use. */
  private readonly slicesOf = new Map<string, Set<number>>();

  constructor(readonly dataset: DataSet, opts: ReaderOptions) {
    this.size = opts.size;
    this.cacheLeft = opts.cacheBytes ?? 1 << 30;
    if (dataset.kind === "volume") {
      for (const s of [...dataset.samples, ...(dataset.test ?? [])]) {
        for (const f of s.files) {
          const set = this.slicesOf.get(f) ?? this.slicesOf.set(f, new Set()).get(f)!;
          if (s.slice !== undefined) set.add(s.slice);
        }
      }
    }
  }

  private key(file: string, slice?: number): string {
    return slice === undefined ? file : `${file}#${slice}`;
  }

  private store(key: string, img: Raster): Cached {
    const c = pack(img);
    if (this.cacheLeft >= c.data.length) {
      this.cache.set(key, c);
      this.cacheLeft -= c.data.length;
    }
    return c;
  }

  private async readSlice(file: string, slice: number): Promise<Raster> {
    const hit = this.cache.get(this.key(file, slice));
    if (hit) return unpack(hit, this.size);
    // One decode per file even when several samples ask for its slices at once; the job cuts
    // every slice any sample needs, so later requests hit the cache.
    let job = this.inflight.get(file);
    if (!job || !(await job).has(slice)) {
      job = this.decodeSlices(file, slice);
      this.inflight.set(file, job);
      job.then(
        () => this.inflight.delete(file),
        () => this.inflight.delete(file),
      );
    }
    return unpack((await job).get(slice)!, this.size);
  }

  private async decodeSlices(file: string, slice: number): Promise<Map<number, Cached>> {
    const vol = await readVolume(file);
    const [nx, ny, nz] = vol.dims;
    const wanted = new Set(this.slicesOf.get(file) ?? []).add(slice);
    const out = new Map<number, Cached>();
    for (const z of wanted) {
      if (z < 0 || z >= nz) throw new DataError(file, `slice ${z} outside 0..${nz - 1}`);
      out.set(z, this.store(this.key(file, z), resize(mriToImage(axialSlice(vol, z), nx, ny), this.size, this.size)));
    }
    return out;
  }

  private async readPicture(file: string): Promise<Raster> {
    const hit = this.cache.get(file);
    if (hit) return unpack(hit, this.size);
    const img = resize(await readImage(file), this.size, this.size);
    return unpack(this.store(file, img), this.size);
  }

  /** The sample's views, in DataSet.views order, each size x size in [0, 1]. */
  async read(sample: Sample): Promise<Raster[]> {
    if (this.dataset.kind === "volume") {
      const z = sample.slice ?? 0;
      return Promise.all(sample.files.map((f) => this.readSlice(f, z)));
    }
    return Promise.all(sample.files.map((f) => this.readPicture(f)));
  }
}

/**
 * Per-set mean and std of each channel (grey counts for all three), from up to `limit` samples
 * spread evenly over the list: for `Normalize` when ImageNet statistics do not fit (MRI, CT).
 */
export async function computeStats(reader: SampleReader, samples: Sample[], limit = 500): Promise<Normalize> {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  let n = 0;
  const step = Math.max(1, samples.length / limit);
  for (let k = 0; k < samples.length; k += step) {
    for (const img of await reader.read(samples[Math.floor(k)]!)) {
      const C = img.channels;
      const px = img.width * img.height;
      for (let i = 0; i < px; i++) {
        for (let c = 0; c < 3; c++) {
          const v = img.data[i * C + (C === 1 ? 0 : c)]!;
          sum[c]! += v;
          sq[c]! += v * v;
        }
      }
      n += px;
    }
  }
  if (n === 0) throw new Error("computeStats: no samples");
  const mean = sum.map((s) => s / n) as [number, number, number];
  const std = sq.map((s, c) => Math.sqrt(Math.max(1e-12, s / n - mean[c]! ** 2))) as [number, number, number];
  return { mean, std };
}
