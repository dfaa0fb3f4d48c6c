// The safetensors format, encoder and decoder, with no Node imports (browser-safe):
//
//   [8 bytes] N, unsigned little-endian 64-bit: length of the header
//   [N bytes] JSON header, UTF-8, padded with spaces (0x20) so that 8 + N is a multiple of 8:
//             {"__metadata__":{"k":"v"},"name":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},...}
//   [rest]    raw little-endian tensor data; data_offsets are [begin, end) relative to this part
//
// Files written here are readable by the reference implementation (and so by PyTorch, JAX, ...),
// and the decoder applies the reference's checks: offsets must tile the data part exactly, with
// no holes or overlaps, and each tensor's byte length must match dtype x shape.

export type DType = "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "I16" | "U16" | "F16" | "BF16" | "I32" | "U32" | "F32" | "F64" | "I64" | "U64";

/** Declaration order of the reference implementation's dtype enum, used to order tensors like it. */
const DTYPE_ORDER: readonly DType[] = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];

type TypedArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array | BigInt64Array | BigUint64Array;

/** Element size and the typed array that holds it (F16, BF16: raw bits in a Uint16Array). */
const DTYPES: Record<DType, { size: number; array: new (buf: ArrayBuffer) => TypedArray }> = {
  BOOL: { size: 1, array: Uint8Array },
  U8: { size: 1, array: Uint8Array },
  I8: { size: 1, array: Int8Array },
  F8_E5M2: { size: 1, array: Uint8Array },
  F8_E4M3: { size: 1, array: Uint8Array },
  I16: { size: 2, array: Int16Array },
  U16: { size: 2, array: Uint16Array },
  F16: { size: 2, array: Uint16Array },
  BF16: { size: 2, array: Uint16Array },
  I32: { size: 4, array: Int32Array },
  U32: { size: 4, array: Uint32Array },
  F32: { size: 4, array: Float32Array },
  F64: { size: 8, array: Float64Array },
  I64: { size: 8, array: BigInt64Array },
  U64: { size: 8, array: BigUint64Array },
};

export interface Tensor {
  dtype: DType;
  shape: readonly number[];
  /** The elements, row-major: the dtype's typed array, or raw little-endian bytes as a Uint8Array. */
  data: TypedArray;
}

export type TensorMap = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

export interface Safetensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** The reference implementation refuses headers over 100 MB; so do we (a corrupt length field). */
const MAX_HEADER = 100_000_000;
const METADATA_KEY = "__metadata__";

function assertLittleEndianHost(): void {
  // Typed arrays use host byte order and the format is little-endian; every platform Node and
  // browsers ship on is little-endian, so rather than byte-swap we refuse the exotic case.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("safetensors: big-endian hosts are not supported");
}

function elementCount(shape: readonly number[], what: string): number {
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`safetensors: ${what} has invalid dimension ${d} in shape [${shape}]`);
    count *= d;
  }
  return count;
}

function entries(tensors: TensorMap): [string, Tensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>);
}

/**
 * The header bytes (length prefix included) and the tensor data in file order. Splitting these
 * lets the file writer stream tensors to disk without first copying a whole model into one buffer.
 */
export function safetensorsParts(tensors: TensorMap, metadata: Readonly<Record<string, string>> = {}): { header: Uint8Array; chunks: Uint8Array[] } {
  assertLittleEndianHost();
  const list = entries(tensors);
  // Largest dtype first (then by name), as the reference implementation does: with the header
  // padded to 8 bytes this keeps every tensor aligned to its element size inside the file, so a
  // reader can map it without copying.
  list.sort(([an, a], [bn, b]) => DTYPE_ORDER.indexOf(b.dtype) - DTYPE_ORDER.indexOf(a.dtype) || (an < bn ? -1 : an > bn ? 1 : 0));

  // The header JSON is assembled entry by entry: a JS object would move integer-like tensor names
  // ("0", "1") ahead of the others, and this keeps __metadata__ first and tensors in data order,
  // byte for byte what the reference implementation writes.
  const fields: string[] = [];
  const metaEntries = Object.entries(metadata);
  if (metaEntries.length) {
    for (const [k, v] of metaEntries) if (typeof v !== "string") throw new Error(`safetensors: metadata "${k}" must be a string, got ${typeof v}`);
    fields.push(`${JSON.stringify(METADATA_KEY)}:{${metaEntries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of list) {
    if (name === METADATA_KEY) throw new Error(`safetensors: "${METADATA_KEY}" is reserved and cannot name a tensor`);
    const spec = DTYPES[t.dtype];
    if (!spec) throw new Error(`safetensors: tensor "${name}" has unknown dtype ${String(t.dtype)}`);
    if (!(t.data instanceof spec.array) && !(t.data instanceof Uint8Array)) {
      throw new Error(`safetensors: tensor "${name}" is ${t.dtype} but its data is a ${t.data.constructor.name}`);
    }
    const bytes = elementCount(t.shape, `tensor "${name}"`) * spec.size;
    if (t.data.byteLength !== bytes) throw new Error(`safetensors: tensor "${name}" ${t.dtype}[${t.shape}] needs ${bytes} bytes, data has ${t.data.byteLength}`);
    fields.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] })}`);
    chunks.push(new Uint8Array(t.data.buffer, t.data.byteOffset, bytes));
    offset += bytes;
  }
  const json = new TextEncoder().encode(`{${fields.join(",")}}`);
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return { header: out, chunks };
}

/** The whole file in memory. */
export function encodeSafetensors(tensors: TensorMap, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const { header, chunks } = safetensorsParts(tensors, metadata);
  const out = new Uint8Array(header.length + chunks.reduce((s, c) => s + c.length, 0));
  out.set(header, 0);
  let at = header.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Parses and validates a safetensors file; tensor data is copied, so `bytes` may be reused. */
export function decodeSafetensors(bytes: Uint8Array): Safetensors {
  assertLittleEndianHost();
  if (bytes.length < 8) throw new Error(`safetensors: file of ${bytes.length} bytes is too short for the header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER)) throw new Error(`safetensors: header length ${n64} exceeds ${MAX_HEADER}`);
  const n = Number(n64);
  if (8 + n > bytes.length) throw new Error(`safetensors: header length ${n} runs past the end of a ${bytes.length}-byte file`);
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
    if (!text.startsWith("{")) throw new Error("header does not start with '{'");
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`safetensors: invalid header: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw new Error("safetensors: header is not a JSON object");

  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const found: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("safetensors: __metadata__ is not an object");
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== "string") throw new Error(`safetensors: metadata "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info?.dtype as DType;
    if (typeof dtype !== "string" || !(dtype in DTYPES)) throw new Error(`safetensors: tensor "${name}" has unknown dtype ${JSON.stringify(info?.dtype)}`);
    if (!Array.isArray(info.shape)) throw new Error(`safetensors: tensor "${name}" has no shape`);
    const shape = info.shape as number[];
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw new Error(`safetensors: tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    const expected = elementCount(shape, `tensor "${name}"`) * DTYPES[dtype].size;
    if (end < begin || end - begin !== expected) throw new Error(`safetensors: tensor "${name}" ${dtype}[${shape}] needs ${expected} bytes, offsets [${begin}, ${end}] give ${end - begin}`);
    found.push({ name, dtype, shape, begin, end });
  }
  // The data part must be tiled exactly: a hole or overlap means a corrupt or truncated file.
  let cursor = 0;
  for (const t of [...found].sort((a, b) => a.begin - b.begin || a.end - b.end)) {
    if (t.begin !== cursor) throw new Error(`safetensors: tensor "${t.name}" starts at ${t.begin}, expected ${cursor} (hole or overlap in the data)`);
    cursor = t.end;
  }
  if (cursor !== dataLength) throw new Error(`safetensors: tensors cover ${cursor} bytes but the data part has ${dataLength} (truncated or trailing bytes)`);

  const tensors = new Map<string, Tensor>();
  for (const t of found) {
    // Copy into a fresh buffer: it is aligned for the typed array and independent of `bytes`.
    const buf = bytes.buffer.slice(bytes.byteOffset + dataStart + t.begin, bytes.byteOffset + dataStart + t.end) as ArrayBuffer;
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: new DTYPES[t.dtype].array(buf) });
  }
  return { tensors, metadata };
}
