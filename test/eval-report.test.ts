// Figures and the HTML report: PNGs decode back at the stated size and are not blank, the
// overlay blends as specified, and every image the page references exists.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { encode } from "fast-png";
import { evaluateTask } from "../runtime/metrics/index.ts";
import { mcUncertainty, rankUncertain } from "../runtime/uncertainty/index.ts";
import {
  colormap,
  decodePngRgb,
  encodePngRgb,
  heatmapToRgb,
  imageSources,
  overlayHeatmap,
  overlayHeatmapPng,
  renderConfusionPng,
  renderCurvesPng,
  renderReportHtml,
  resizeBilinear,
  writeReport,
  type EpochLog,
  type RgbImage,
} from "../runtime/report/index.ts";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "drifa-report-"));

function history(tasks: string[], epochs: number): EpochLog[] {
  const log: EpochLog[] = [];
  for (const task of tasks)
    for (let e = 1; e <= epochs; e++) {
      log.push({ epoch: e, task, split: "train", loss: 2 / e, accuracy: 1 - 0.6 / e });
      log.push({ epoch: e, task, split: "val", loss: 2.2 / e + 0.05, accuracy: 0.95 - 0.6 / e });
    }
  return log;
}

/** Pixels that differ clearly from white, and those close to an RGB colour. */
function census(img: RgbImage, colour: [number, number, number]): { ink: number; matching: number } {
  let ink = 0;
  let matching = 0;
  for (let p = 0; p < img.width * img.height; p++) {
    const [r, g, b] = [img.data[p * 3]!, img.data[p * 3 + 1]!, img.data[p * 3 + 2]!];
    if (r < 230 || g < 230 || b < 230) ink++;
    if (Math.abs(r - colour[0]) < 40 && Math.abs(g - colour[1]) < 40 && Math.abs(b - colour[2]) < 40) matching++;
  }
  return { ink, matching };
}

test("colour maps: known end points and clamping", () => {
  const v0 = colormap("viridis", 0); // matplotlib viridis starts at #440154
  assert.ok(Math.abs(v0[0] - 0x44 / 255) < 0.02 && Math.abs(v0[2] - 0x54 / 255) < 0.02, String(v0));
  const v1 = colormap("viridis", 1); // ... and ends at #fde725
  assert.ok(v1[0] > 0.95 && v1[1] > 0.85 && v1[2] < 0.2, String(v1));
  assert.equal(colormap("jet", 0.5), [0.5, 1, 0.5]);
  assert.equal(colormap("jet", -3), colormap("jet", 0));
  const [r, g, b] = colormap("turbo", 1); // turbo ends dark red
  assert.ok(r > 0.4 && g < 0.1 && b < 0.1);
  for (let t = 0; t <= 1; t += 0.05) for (const v of colormap("turbo", t)) assert.ok(v >= 0 && v <= 1);
});

test("PNG encode/decode round trip, including RGBA composited over white and greyscale", () => {
  const rgb: RgbImage = { width: 3, height: 2, data: new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90]) };
  assert.equal(decodePngRgb(encodePngRgb(rgb)), rgb);
  const rgba = encode({ width: 1, height: 1, channels: 4, data: new Uint8Array([0, 0, 0, 0]) });
  assert.equal([...decodePngRgb(rgba).data], [255, 255, 255]); // transparent -> white page
  const grey = encode({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 200]) });
  assert.equal([...decodePngRgb(grey).data], [0, 0, 0, 200, 200, 200]);
});

test("heat-map overlay: resizing, constant and heat-weighted alpha", () => {
  const image: RgbImage = { width: 8, height: 6, data: new Uint8Array(8 * 6 * 3).fill(100) };
  const heat = new Float32Array([0, 1, 1, 0]); // 2x2
  const big = resizeBilinear(heat, 2, 2, 8, 6);
  assert.is(big.length, 48);
  assert.is(big[0], 0); // corners keep the corner values (half-pixel centres, clamped)
  assert.is(big[7], 1);
  assert.equal(overlayHeatmap(image, heat, 2, 2, { alpha: 0 }), image);
  const full = overlayHeatmap(image, new Float32Array(48).fill(0.5), 8, 6, { alpha: 1, colormap: "jet" });
  // jet(0.5) = (0.5, 1, 0.5), up to the 256-entry table's quantisation
  [128, 255, 128].forEach((v, c) => assert.ok(Math.abs(full.data[c]! - v) <= 3, `channel ${c}: ${full.data[c]}`));
  const cold = overlayHeatmap(image, new Float32Array(4), 2, 2, { alphaMode: "heat", alpha: 0.8 });
  assert.equal(cold, image); // zero heat leaves the image untouched in "heat" mode
  const png = overlayHeatmapPng(encodePngRgb(image), heat, 2, 2);
  const back = decodePngRgb(png);
  assert.is(back.width, 8);
  assert.is(back.height, 6);
  assert.not.equal(back.data, image.data);
  const hm = heatmapToRgb(heat, 2, 2, "viridis");
  assert.is(hm.data.length, 12);
  assert.throws(() => overlayHeatmap(image, new Float32Array([Number.NaN, 0, 0, 0]), 2, 2), /NaN/);
  assert.throws(() => overlayHeatmap(image, heat, 3, 2), /expected 3x2/);
});

test("training curves PNG is valid, of the stated size, and has the two line colours", async () => {
  const { png, width, height } = await renderCurvesPng(history(["skin"], 12), "skin", 1);
  assert.equal([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]); // PNG signature
  const img = decodePngRgb(png);
  assert.is(img.width, width);
  assert.is(img.height, height);
  assert.ok(width > 500 && height > 200, `${width}x${height}`);
  const train = census(img, [0x1f, 0x77, 0xb4]);
  const val = census(img, [0xff, 0x7f, 0x0e]);
  assert.ok(train.ink > 0.01 * width * height, `only ${train.ink} non-white pixels`);
  assert.ok(train.matching > 100 && val.matching > 100, `line pixels: train ${train.matching}, val ${val.matching}`);
});

test("confusion-matrix PNG renders at the requested scale", async () => {
  const m = [
    [50, 3, 1],
    [4, 20, 2],
    [0, 1, 9],
  ];
  const one = await renderConfusionPng(m, ["glioma", "meningioma", "pituitary"], "mri", 1);
  const two = await renderConfusionPng(m, ["glioma", "meningioma", "pituitary"], "mri", 2);
  const img = decodePngRgb(two.png);
  assert.is(img.width, two.width);
  assert.ok(Math.abs(two.width - 2 * one.width) <= 1);
  assert.ok(census(img, [0x08, 0x30, 0x6b]).ink > 0.05 * img.width * img.height); // filled cells
  assert.throws(() => renderConfusionPng(m, ["a", "a", "b"], "dup", 1), /not unique/);
});

test("HTML report: metrics, figures and uncertain cases; every referenced file exists", async () => {
  const dir = tmp();
  const classNames = ["akiec", "bcc", "mel <rare>"];
  const probs = [
    [0.7, 0.2, 0.1],
    [0.2, 0.5, 0.3],
    [0.6, 0.3, 0.1],
    [0.1, 0.8, 0.1],
  ];
  const labels = [0, 1, 0, 1];
  const skin = evaluateTask(probs, labels, { task: "HAM10000 skin", classNames });
  const mri = evaluateTask(probs, [0, 1, 2, 1], { task: "brain MRI", classNames: ["g", "m", "p"] });
  const u = mcUncertainty({ kind: "nested", samples: [[probs.flat()], [[0.2, 0.7, 0.1, 0.2, 0.5, 0.3, 0.1, 0.3, 0.6, 0.1, 0.8, 0.1]]], numClasses: 3 });
  const cases = rankUncertain(u, { top: 3, labels });
  // a Grad-CAM style overlay for the first case, referenced relatively from the page
  fs.mkdirSync(path.join(dir, "cases"));
  const gray: RgbImage = { width: 16, height: 16, data: new Uint8Array(16 * 16 * 3).fill(90) };
  fs.writeFileSync(path.join(dir, "cases", "case 0.png"), encodePngRgb(overlayHeatmap(gray, new Float32Array([0, 0.5, 0.5, 1]), 2, 2)));

  const { html, files } = await writeReport(
    dir,
    {
      title: "DRIFA-Net evaluation",
      tasks: [skin, mri],
      // "brain MRI" diverged from the first epoch: nothing to draw, and the report still comes out
      history: [...history(["HAM10000 skin"], 5), { epoch: 1, task: "brain MRI", split: "train", loss: Number.NaN }],
      uncertain: [{ task: "HAM10000 skin", cases, rankedBy: "mutual information", imageFor: (c) => (c.index === 0 ? "cases/case 0.png" : undefined) }],
      notes: ["5 members x 30 MC-dropout passes"],
    },
    { scale: 1 },
  );
  const page = fs.readFileSync(html, "utf8");
  const sources = imageSources(page);
  assert.is(sources.filter((s) => s.startsWith("figures/")).length, 3); // 1 curves + 2 confusion
  assert.ok(sources.includes("cases/case 0.png"));
  for (const s of sources) {
    assert.not.ok(path.isAbsolute(s), s);
    assert.ok(fs.existsSync(path.join(dir, s)), `missing ${s}`);
  }
  for (const f of files) assert.ok(fs.existsSync(f), f);
  assert.ok(page.includes("mel &lt;rare&gt;") && !page.includes("mel <rare>"), "class names are escaped");
  assert.ok(page.includes("Most uncertain cases") && page.includes("HAM10000 skin") && page.includes("brain MRI"));
  assert.ok(page.includes(`${(skin.accuracy * 100).toFixed(2)}%`));
  assert.ok(page.includes("not computed (absent from the labels)"), "the skipped AUC class is reported");
  assert.not.match(page, /<script|https?:\/\//); // self-contained: no scripts, no remote resources
  for (const f of files.filter((f) => f.endsWith(".png"))) assert.ok(decodePngRgb(fs.readFileSync(f)).width > 0);

  // a case image that does not exist is an error, not a broken page
  assert.not.throws(() => renderReportHtml({ title: "t", tasks: [skin] }));
  let failed = false;
  try {
    await writeReport(dir, { title: "t", tasks: [skin], uncertain: [{ task: "HAM10000 skin", cases, imageFor: () => "cases/nope.png" }] }, { scale: 1 });
  } catch (e) {
    failed = /missing files: cases\/nope.png/.test((e as Error).message);
  }
  assert.ok(failed);
  fs.rmSync(dir, { recursive: true });
});

test.run();
