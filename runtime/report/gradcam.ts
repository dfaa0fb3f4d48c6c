// The Grad-CAM page: per modality, the overlays `drifac gradcam` wrote, each captioned with its
// file, the class explained and the prediction against the label (wrong ones flagged), as the
// Grad-CAM figures of DRIFA-Net's supplement. Self-contained like the report (inline CSS, no
// scripts); images are referenced by relative paths and must exist when the page is written.
import fs from "node:fs";
import path from "node:path";
import { escapeHtml, imageSources } from "./html.ts";

export interface GradcamFigure {
  /** PNG path relative to the page's folder. */
  image: string;
  /** The sample's file, as shown. */
  file: string;
  explained: string;
  predicted: string;
  /** Softmax probability of the prediction. */
  confidence: number;
  label?: string;
}

export interface GradcamSection {
  input: string;
  /** Where the explained activation is in the program (e.g. skin.stage4.block2) and its size. */
  scope: string;
  size: [number, number];
  task: string;
  figures: GradcamFigure[];
}

export interface GradcamPage {
  title: string;
  notes?: readonly string[];
  sections: GradcamSection[];
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2rem}
figure{display:inline-block;margin:.4rem .6rem .4rem 0;vertical-align:top;width:136px;font-size:.75rem}
figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #eee}
figcaption{overflow-wrap:anywhere}.flag{color:#b35900}.note{color:#555;font-size:.9rem}
`;

const src = (p: string) => p.split(/[\\/]/).map(encodeURIComponent).join("/");

export function renderGradcamHtml(page: GradcamPage): string {
  const sections = page.sections.map((s) => {
    const figs = s.figures.map((f) => {
      const wrong = f.label !== undefined && f.label !== f.predicted;
      const truth = f.label === undefined ? "" : `<br>label ${escapeHtml(f.label)}`;
      const explained = f.explained === f.predicted ? "" : `<br>explains ${escapeHtml(f.explained)}`;
      return `<figure><img src="${escapeHtml(src(f.image))}" alt="Grad-CAM of ${escapeHtml(f.file)}"><figcaption>${escapeHtml(f.file)}<br><span${wrong ? ' class="flag"' : ""}>${escapeHtml(f.predicted)} ${(100 * f.confidence).toFixed(1)}%</span>${truth}${explained}</figcaption></figure>`;
    });
    const head = `<h2>${escapeHtml(s.input)}</h2><p class="note">task ${escapeHtml(s.task)}; activation ${escapeHtml(s.scope || "(unnamed)")}, ${s.size[0]}x${s.size[1]} per sample; ${s.figures.length} image(s)</p>`;
    return `<section>${head}${figs.join("")}</section>`;
  });
  const notes = (page.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join("");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(page.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(page.title)}</h1>
${notes}
<p class="note">Heat maps: Grad-CAM of the explained class (by default the predicted one), normalised per image, jet colour map over the input as the model sees it. Predictions in orange are wrong.</p>
${sections.join("\n")}
</body>
</html>
`;
}

/** Writes `dir/index.html`; refuses a page whose images are missing. Returns its path. */
export function writeGradcamPage(dir: string, page: GradcamPage): string {
  const html = renderGradcamHtml(page);
  const missing = imageSources(html).filter((p) => !fs.existsSync(path.join(dir, p)));
  if (missing.length) throw new Error(`writeGradcamPage: the page references missing files: ${missing.slice(0, 5).join(", ")}`);
  const file = path.join(dir, "index.html");
  fs.writeFileSync(file, html);
  return file;
}
