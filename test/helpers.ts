// Shared test helpers: run the CLI in-process with captured output, and write scratch files.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "uvu";
import { main } from "../compiler/cli/main.ts";
import { type Gpu, tryAcquireDevice } from "../runtime/device.ts";

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

export async function drifac(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

/** A fresh folder with the given files, plus a copy of models/lib as lib/. */
export function scratch(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "drifa-test-"));
  fs.cpSync(path.join(root, "models/lib"), path.join(dir, "lib"), { recursive: true });
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

export function modelFiles(): string[] {
  return fs.readdirSync(path.join(root, "models")).filter((f) => f.endsWith(".drifa")).map((f) => path.join(root, "models", f));
}

export function libraryFiles(): string[] {
  return fs.readdirSync(path.join(root, "models/lib")).filter((f) => f.endsWith(".drifa")).map((f) => path.join(root, "models/lib", f));
}

export { modulationGraph } from "../bench/modulation-graph.ts";

/** A small two-modality model (a conv per modality, MIFA, a conv, global pooling, two heads)
 * that learns `drifac synth` images in a few epochs; write it with scratch() (it imports lib/). */
export const TINY_MODEL = `import { MIFA } from "./lib/mifa.drifa"

model Tiny(width: int = 4, size: int = 16) {
  input skin: [N, C: 3, H: size, W: size]
  input cervix: [N, C: 3, H: size, W: size]
  names = ["skin", "cervix"]
  xs = [
    relu(batchnorm(conv(x, width, k: 3, stride: 2) as "{m}.conv1") as "{m}.bn1")
    for m, x in zip(names, [skin, cervix])
  ]
  xs = MIFA(xs) as "mifa"
  xs = [relu(conv(x, width, k: 3) as "{m}.conv2") for m, x in zip(names, xs)]
  features = gap(concat(xs))
  task skin_dx: classify(
    dense(features, 7) as "skin_head",
    classes: ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"],
    weight: 0.5,
    data: skin,
  )
  task cervix_dx: classify(
    dense(features, 5) as "cervix_head",
    classes: ["Dyskeratotic", "Koilocytotic", "Metaplastic", "Parabasal", "Superficial-Intermediate"],
    weight: 0.5,
    data: cervix,
  )
  train {
    optimizer: adam(lr: 1e-2)
    batch: 4
    epochs: 1
  }
}
`;

/** The WebGPU device for a test file's GPU tests. Without an adapter `gpu` is null, the reason
 * is printed once under the file's name, and the tests registered with `gpuTest` are skipped
 * (setup installs lavapipe where it can, so a skip means the machine could not have one). */
export async function gpuForTests(file: string): Promise<{ gpu: Gpu | null; gpuTest: (name: string, fn: () => Promise<void> | void) => void }> {
  const acquired = await tryAcquireDevice();
  if (!acquired.gpu) console.log(`\n[${file}] SKIPPED (the tests that need an adapter): no WebGPU adapter.\n${acquired.reason}\n`);
  const available = acquired.gpu !== null;
  return { gpu: acquired.gpu, gpuTest: (name, fn) => (available ? test(name, fn) : test.skip(name, fn)) };
}
