// Figures as PNG: a Vega-Lite spec is compiled to Vega, rendered headlessly to SVG (Vega's
// "none" renderer needs no canvas or browser), and rasterised by resvg (Rust, shipped as a
// prebuilt npm package). Specs are plain data, so the same charts can be embedded live in a
// page with vega-embed later. Node only (resvg is a native addon).

import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** One task's training or validation figures for one epoch, as the trainer logs them. */
export interface EpochLog {
  epoch: number;
  task: string;
  split: "train" | "val";
  loss?: number;
  accuracy?: number;
}

export interface Png {
  png: Uint8Array;
  width: number;
  height: number;
}

/** Fonts most Linux, macOS and Windows machines have; resvg takes the first one installed. */
const FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";
const CONFIG = { font: FONT, background: "white", view: { stroke: "#ccc" } };

/** Renders a Vega-Lite spec to PNG. `scale` > 1 gives a sharper image for high-DPI screens. */
export async function vegaLiteToPng(spec: TopLevelSpec, scale = 2): Promise<Png> {
  const svg = await vegaLiteToSvg(spec);
  const rendered = new Resvg(svg, {
    background: "white",
    fitTo: { mode: "zoom", value: scale },
    font: { loadSystemFonts: true, sansSerifFamily: "DejaVu Sans" },
    logLevel: "off",
  }).render();
  return { png: new Uint8Array(rendered.asPng()), width: rendered.width, height: rendered.height };
}

export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize(); // releases timers and listeners so the process can exit
  }
}

const finite = (v: number | undefined) => v !== undefined && Number.isFinite(v);

/** Tasks with at least one finite value in a training log, in first-seen order (a run that
 * diverged from epoch 1 has nothing to draw, and must not stop the rest of the report). */
export function tasksInLog(log: readonly EpochLog[]): string[] {
  return [...new Set(log.filter((r) => finite(r.loss) || finite(r.accuracy)).map((r) => r.task))];
}

/**
 * Loss and accuracy over epochs for one task, train and validation as two colours, side by side
 * with independent y axes. Non-finite values (a diverged epoch) are dropped rather than drawn.
 */
export function curvesSpec(log: readonly EpochLog[], task: string): TopLevelSpec {
  const values: { epoch: number; split: string; metric: string; value: number }[] = [];
  for (const r of log) {
    if (r.task !== task) continue;
    const split = r.split === "train" ? "training" : "validation";
    if (finite(r.loss)) values.push({ epoch: r.epoch, split, metric: "loss", value: r.loss! });
    if (finite(r.accuracy)) values.push({ epoch: r.epoch, split, metric: "accuracy", value: r.accuracy! });
  }
  if (values.length === 0) throw new Error(`curvesSpec: no finite loss or accuracy logged for task "${task}"`);
  // Epochs are integers: ticks at least 1 apart, printed as integers. With one epoch the domain
  // is a single point, whose tick Vega prints with six decimals ("1.000000") and whose point
  // sits on the axis' edge, so the domain is widened by half an epoch each side.
  const epochs = values.map((v) => v.epoch);
  const first = Math.min(...epochs);
  const single = epochs.every((e) => e === first);
  const epochX = { axis: { format: "d", tickMinStep: 1 }, ...(single ? { scale: { domain: [first - 0.5, first + 0.5] } } : {}) };
  const panel = (metric: string, title: string, extraY: object = {}) => ({
    title,
    width: 320,
    height: 220,
    transform: [{ filter: `datum.metric === '${metric}'` }],
    mark: { type: "line" as const, point: { size: 20 } },
    encoding: {
      x: { field: "epoch", type: "quantitative" as const, title: "epoch", ...epochX },
      y: { field: "value", type: "quantitative" as const, title: metric, ...extraY },
      color: {
        field: "split",
        type: "nominal" as const,
        title: null,
        scale: { domain: ["training", "validation"], range: ["#1f77b4", "#ff7f0e"] },
      },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `${task}: training curves`, anchor: "start" },
    data: { values },
    hconcat: [panel("loss", "Loss"), panel("accuracy", "Accuracy", { scale: { domain: [0, 1] } })],
    config: CONFIG,
  } as TopLevelSpec;
}

/**
 * Confusion-matrix heat map: rows = true class, columns = predicted class. Colour is the row
 * fraction (per-class recall on the diagonal), so rare classes are as readable as common ones
 * on imbalanced data like HAM10000; the text in each cell is the raw count.
 */
export function confusionSpec(confusion: readonly (readonly number[])[], classNames: readonly string[], title: string): TopLevelSpec {
  const k = classNames.length;
  if (confusion.length !== k || confusion.some((row) => row.length !== k)) throw new Error(`confusionSpec: matrix is not ${k}x${k}`);
  // Cells are keyed by class name, so two classes with one name would be drawn on top of each other.
  if (new Set(classNames).size !== k) throw new Error(`confusionSpec: class names are not unique: ${classNames.join(", ")}`);
  const values: { truth: string; predicted: string; count: number; fraction: number }[] = [];
  confusion.forEach((row, t) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, p) => values.push({ truth: classNames[t]!, predicted: classNames[p]!, count, fraction: total ? count / total : 0 }));
  });
  const cell = Math.max(28, Math.min(64, Math.floor(420 / k)));
  const axis = (field: string, axisTitle: string) => ({ field, type: "ordinal" as const, title: axisTitle, sort: [...classNames] });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, anchor: "start" },
    data: { values },
    width: cell * k,
    height: cell * k,
    encoding: { x: { ...axis("predicted", "predicted class"), axis: { labelAngle: -40 } }, y: axis("truth", "true class") },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: { field: "fraction", type: "quantitative", title: "row fraction", scale: { domain: [0, 1], range: ["#ffffff", "#08519c"] } }, // empty cells white
        },
      },
      {
        mark: { type: "text", fontSize: k > 8 ? 9 : 12 },
        encoding: {
          text: { field: "count", type: "quantitative" },
          color: { condition: { test: "datum.fraction > 0.5", value: "white" }, value: "black" },
        },
      },
    ],
    config: CONFIG,
  } as TopLevelSpec;
}

export function renderCurvesPng(log: readonly EpochLog[], task: string, scale = 2): Promise<Png> {
  return vegaLiteToPng(curvesSpec(log, task), scale);
}

export function renderConfusionPng(confusion: readonly (readonly number[])[], classNames: readonly string[], title: string, scale = 2): Promise<Png> {
  return vegaLiteToPng(confusionSpec(confusion, classNames, title), scale);
}
