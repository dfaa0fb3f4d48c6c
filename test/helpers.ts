// Shared test helpers: run the CLI in-process with captured output, and write scratch files.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { main } from "../compiler/cli/main.ts";
import { differentiate } from "../compiler/ir/autodiff.ts";
import { add, broadcastTo, mul, sumTo } from "../compiler/ir/emit.ts";
import { Graph } from "../compiler/ir/graph.ts";

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

/** x * sigmoid(wd * d + wl * l) * wc, as models/lib/mfa.drifa writes it: d and l per sample
 * and channel ([N, C], "model") or per element ("full"); wd a scalar, wl and wc per channel. */
export function modulationGraph(variant: "model" | "full", [N, C, H, W]: number[]) {
  const g = new Graph();
  const big = [N!, C!, H!, W!];
  const small = variant === "full" ? big : [N!, C!];
  const x = g.input("x", big);
  const d = g.input("d", small);
  const l = g.input("l", small);
  const dy = g.input("dy", big);
  const wd = g.param("wd", []);
  const wl = g.param("wl", [C!]);
  const wc = g.param("wc", [C!]);
  const a = add(g, mul(g, broadcastTo(g, wd, small, []), d), mul(g, broadcastTo(g, wl, small, [1]), l));
  const s = g.emit("sigmoid", [variant === "full" ? a : broadcastTo(g, a, big, [0, 1])], {});
  const y = mul(g, mul(g, x, s), broadcastTo(g, wc, big, [1]));
  // Backward from an upstream gradient dy: the loss <y, dy>.
  const loss = sumTo(g, mul(g, y, dy), [], []);
  const wrt = [x, d, l, wd, wl, wc];
  const grads = differentiate(g, loss, wrt);
  return { g, y, grads: wrt.map((v) => grads.byValue.get(v)!) };
}


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
