// safetensors checkpoints: exact bytes of a known file, round trips, validation, atomic writes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  writeFileAtomic,
  type Tensor,
} from "../runtime/checkpoint/index.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "drifa-ckpt-"));
const bytesOf = (s: string) => [...new TextEncoder().encode(s)];

test("exact bytes of a small file, built by hand from the format description", () => {
  const file = encodeSafetensors(
    { b: { dtype: "I32", shape: [1], data: new Int32Array([7]) }, a: { dtype: "F32", shape: [2], data: new Float32Array([1, -2]) } },
    { format: "pt" },
  );
  // __metadata__ first, then tensors by descending dtype (F32 before I32), compact JSON
  const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}';
  assert.is(json.length, 139); // 8 + 139 = 147 -> 5 spaces of padding to reach 152 = 19 * 8
  const expected = [
    ...[144, 0, 0, 0, 0, 0, 0, 0], // header length 144, u64 little-endian
    ...bytesOf(json),
    ...[0x20, 0x20, 0x20, 0x20, 0x20],
    ...[0x00, 0x00, 0x80, 0x3f], // 1.0f
    ...[0x00, 0x00, 0x00, 0xc0], // -2.0f
    ...[0x07, 0x00, 0x00, 0x00], // 7
  ];
  assert.equal([...file], expected);
});

test("round trip of every common dtype, scalars, empty tensors and metadata", () => {
  const f16 = new Uint16Array([0x3c00, 0xc000]); // 1.0, -2.0 as IEEE half bits
  const tensors: Record<string, Tensor> = {
    "stem.conv.weight": { dtype: "F32", shape: [2, 3], data: new Float32Array([0.5, -1, 2, 3.25, -0, 1e-20]) },
    "stem.bn.num_batches": { dtype: "I64", shape: [], data: new BigInt64Array([123456789012n]) },
    "head.bias": { dtype: "F64", shape: [3], data: new Float64Array([Math.PI, -Math.E, 1e300]) },
    labels: { dtype: "I32", shape: [4], data: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
    mask: { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) },
    "half.weight": { dtype: "F16", shape: [2], data: f16 },
    empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
  };
  const meta = { epoch: "12", model: "drifa-net", "note ünicode": "ß ✓" };
  const back = decodeSafetensors(encodeSafetensors(tensors, meta));
  assert.equal(back.metadata, meta);
  assert.equal([...back.tensors.keys()].sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    const r = back.tensors.get(name)!;
    assert.is(r.dtype, t.dtype, name);
    assert.equal(r.shape, t.shape, name);
    assert.is(r.data.constructor, t.data.constructor, name);
    assert.equal([...(r.data as ArrayLike<number | bigint> & Iterable<number | bigint>)], [...(t.data as Iterable<number | bigint>)], name);
  }
  assert.ok(Object.is((back.tensors.get("stem.conv.weight")!.data as Float32Array)[4], -0));
});

test("every tensor starts aligned to its element size, and integer-like names keep data order", () => {
  const file = encodeSafetensors({
    "0": { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
    "10": { dtype: "F64", shape: [1], data: new Float64Array([1]) },
    "2": { dtype: "F32", shape: [1], data: new Float32Array([1]) },
  });
  const n = Number(new DataView(file.buffer).getBigUint64(0, true));
  assert.is((8 + n) % 8, 0);
  const text = new TextDecoder().decode(file.subarray(8, 8 + n));
  assert.ok(text.indexOf('"10"') < text.indexOf('"2"') && text.indexOf('"2"') < text.indexOf('"0"'), text);
  const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  for (const t of Object.values(header)) assert.is(t.data_offsets[0] % { U8: 1, F32: 4, F64: 8 }[t.dtype as "U8"]!, 0);
});

test("corrupt files are refused", () => {
  const good = encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
  assert.throws(() => decodeSafetensors(good.subarray(0, 5)), /too short/);
  assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 1)), /truncated/);
  const huge = good.slice();
  new DataView(huge.buffer).setBigUint64(0, 1n << 40n, true);
  assert.throws(() => decodeSafetensors(huge), /exceeds/);
  const edit = (from: string, to: string) => {
    const f = good.slice();
    const text = new TextDecoder().decode(f).replace(from, to);
    return new Uint8Array(new TextEncoder().encode(text));
  };
  assert.throws(() => decodeSafetensors(edit('"F32"', '"F33"')), /unknown dtype/);
  assert.throws(() => decodeSafetensors(edit("[0,8]", "[1,9]")), /hole or overlap/);
  assert.throws(() => decodeSafetensors(edit('"shape":[2]', '"shape":[3]')), /needs 12 bytes/);
  assert.throws(() => encodeSafetensors({ w: { dtype: "F32", shape: [3], data: new Float32Array(2) } }), /needs 12 bytes/);
  assert.throws(() => encodeSafetensors({ w: { dtype: "F32", shape: [2], data: new Int32Array(2) } }), /Int32Array/);
  assert.throws(() => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }), /reserved/);
});

test("save and load through the file system", () => {
  const dir = tmp();
  const file = path.join(dir, "model.safetensors");
  const w = new Float32Array(1000).map((_, i) => Math.sin(i));
  saveSafetensors(file, new Map([["w", { dtype: "F32", shape: [10, 100], data: w } as Tensor]]), { epoch: "3" });
  const back = loadSafetensors(file);
  assert.equal([...(back.tensors.get("w")!.data as Float32Array)], [...w]);
  assert.equal(back.metadata, { epoch: "3" });
  assert.equal(fs.readdirSync(dir), ["model.safetensors"]);
  fs.rmSync(dir, { recursive: true });
});

test("a failed write leaves the previous checkpoint whole and no temporary file behind", () => {
  const dir = tmp();
  const file = path.join(dir, "ckpt.safetensors");
  const v1 = { w: { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) } } as const;
  saveSafetensors(file, v1, { epoch: "1" });
  const before = fs.readFileSync(file);
  const v2 = { w: { dtype: "F32", shape: [4], data: new Float32Array([5, 6, 7, 8]) } } as const;

  // failure after the data is on disk, just before the rename (the temp file exists then)
  let sawTemp = "";
  assert.throws(
    () =>
      saveSafetensors(file, v2, { epoch: "2" }, {
        beforeRename: (temp) => {
          sawTemp = temp;
          assert.ok(fs.existsSync(temp) && path.dirname(temp) === dir);
          throw new Error("simulated crash");
        },
      }),
    /simulated crash/,
  );
  assert.ok(sawTemp !== "");
  assert.equal(fs.readFileSync(file), before);
  assert.equal(fs.readdirSync(dir), ["ckpt.safetensors"]);

  // failure in the middle of writing the data (disk full, killed producer)
  function* halfThenFail() {
    yield new Uint8Array(100).fill(0xab);
    throw new Error("ENOSPC simulated");
  }
  assert.throws(() => writeFileAtomic(file, halfThenFail()), /ENOSPC/);
  assert.equal(fs.readFileSync(file), before);
  assert.equal(fs.readdirSync(dir), ["ckpt.safetensors"]);
  assert.equal(loadSafetensors(file).metadata, { epoch: "1" });

  // and a successful write replaces it
  saveSafetensors(file, v2, { epoch: "2" });
  assert.equal([...(loadSafetensors(file).tensors.get("w")!.data as Float32Array)], [5, 6, 7, 8]);
  assert.equal(fs.readdirSync(dir), ["ckpt.safetensors"]);
  fs.rmSync(dir, { recursive: true });
});

test.run();
