// Figures and the HTML report. colormap.ts and overlay.ts are browser-safe; charts.ts (resvg,
// a native addon) and html.ts (writes files) need Node.
export { colormap, colormapTable, type ColormapName } from "./colormap.ts";
export {
  decodePngRgb,
  encodePngRgb,
  heatmapToRgb,
  overlayHeatmap,
  overlayHeatmapPng,
  resizeBilinear,
  type OverlayOptions,
  type RgbImage,
} from "./overlay.ts";
export {
  confusionSpec,
  curvesSpec,
  renderConfusionPng,
  renderCurvesPng,
  tasksInLog,
  vegaLiteToPng,
  vegaLiteToSvg,
  type EpochLog,
  type Png,
} from "./charts.ts";
export {
  escapeHtml,
  imageSources,
  renderReportHtml,
  slug,
  writeReport,
  type ReportFigures,
  type ReportInput,
  type UncertainSection,
} from "./html.ts";
export { renderGradcamHtml, writeGradcamPage, type GradcamFigure, type GradcamPage, type GradcamSection } from "./gradcam.ts";
