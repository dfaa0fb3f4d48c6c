// The evaluation report: one self-contained HTML page (inline CSS, no scripts, no network) with
// per-task metric tables, training curves, confusion matrices and the most uncertain cases.
// Figures are PNG files beside it, referenced by relative paths, so the folder can be zipped,
// moved or served as it is. renderReportHtml is pure; writeReport renders the figures too.

import fs from "node:fs";
import path from "node:path";
import type { TaskMetrics } from "../metrics/index.ts";
import type { UncertainCase } from "../uncertainty/index.ts";
import { renderConfusionPng, renderCurvesPng, tasksInLog, type EpochLog } from "./charts.ts";

export interface UncertainSection {
  task: string;
  cases: UncertainCase[];
  /** Which score ranked the cases, for the heading. */
  rankedBy?: string;
  /** Class names for the predicted/true columns; default: the task's from `tasks`. */
  classNames?: readonly string[];
  /** Optional per-case image (e.g. a Grad-CAM overlay), a path relative to the report folder. */
  imageFor?: (c: UncertainCase) => string | undefined;
  /** Optional per-case identifier (file name, patient-free id) shown instead of the index. */
  idFor?: (c: UncertainCase) => string;
}

export interface ReportInput {
  title: string;
  tasks: TaskMetrics[];
  history?: readonly EpochLog[];
  uncertain?: UncertainSection[];
  /** Free-text lines shown under the title (model, data split, checkpoint, MC settings). */
  notes?: readonly string[];
}

/** Relative figure paths per task, filled in by writeReport. */
export interface ReportFigures {
  curves: Record<string, string>;
  confusion: Record<string, string>;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!);
}

/** A file-name-safe slug for a task name; the index keeps two tasks that slug alike apart. */
export function slug(name: string, index: number): string {
  const s = name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  return `${index}-${s || "task"}`;
}

const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
const num = (v: number, digits = 3) => v.toFixed(digits);
/** Paths in src attributes: URL-escape each segment, keep the slashes. */
const src = (p: string) => p.split(/[\\/]/).map(encodeURIComponent).join("/");

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.5rem}h3{font-size:1.05rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f4f6f8}
.summary td{font-variant-numeric:tabular-nums}.flag{color:#b35900}.note{color:#555;font-size:.9rem}
figure{display:inline-block;margin:.5rem 1rem .5rem 0;vertical-align:top}figure img{max-width:100%;border:1px solid #eee}
td img{width:96px;height:auto}
`;

function summaryTable(t: TaskMetrics): string {
  const rows: [string, string][] = [
    ["samples", String(t.n)],
    ["accuracy", pct(t.accuracy)],
    ["balanced accuracy", pct(t.balancedAccuracy)],
    ["macro precision", pct(t.macroPrecision)],
    ["macro recall", pct(t.macroRecall)],
    ["macro F1", pct(t.macroF1)],
    ["macro ROC-AUC (one-vs-rest)", t.auc.macro === null ? "n/a" : num(t.auc.macro, 4)],
  ];
  return `<table class="summary"><tbody>${rows.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join("")}</tbody></table>`;
}

function perClassTable(t: TaskMetrics): string {
  const body = t.perClass
    .map((c) => {
      const prec = c.noPredictions ? `<span class="flag" title="no sample was predicted as this class">0.000*</span>` : num(c.precision);
      const rec = c.noSupport ? `<span class="flag" title="no sample of this class in the data">0.000†</span>` : num(c.recall);
      const auc = c.auc === null ? `<span class="flag">n/a</span>` : num(c.auc, 4);
      return `<tr><td>${escapeHtml(c.name)}</td><td>${prec}</td><td>${rec}</td><td>${num(c.f1)}</td><td>${auc}</td><td>${c.support}</td><td>${c.predicted}</td></tr>`;
    })
    .join("");
  const notes: string[] = [];
  if (t.perClass.some((c) => c.noPredictions)) notes.push("* no sample was predicted as this class; precision set to 0.");
  if (t.perClass.some((c) => c.noSupport)) notes.push("† no sample of this class in the evaluated data; recall set to 0, left out of balanced accuracy.");
  for (const s of t.auc.skipped) {
    const why = s.reason === "absent-from-labels" ? "absent from the labels" : "every sample has this label";
    notes.push(`ROC-AUC of ${escapeHtml(t.classNames[s.classIndex]!)} not computed (${why}); left out of the macro AUC.`);
  }
  return (
    `<table><thead><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>ROC-AUC</th><th>support</th><th>predicted</th></tr></thead><tbody>${body}</tbody></table>` +
    notes.map((n) => `<p class="note">${n}</p>`).join("")
  );
}

function uncertainTable(sec: UncertainSection, classNames: readonly string[] | undefined): string {
  const name = (i: number | undefined) => (i === undefined ? "" : escapeHtml(classNames?.[i] ?? String(i)));
  const withImages = sec.imageFor !== undefined && sec.cases.some((c) => sec.imageFor!(c) !== undefined);
  const head = `<tr><th>#</th><th>case</th>${withImages ? "<th>image</th>" : ""}<th>predicted</th><th>true</th><th>confidence</th><th>entropy</th><th>mutual info.</th><th>mean variance</th></tr>`;
  const body = sec.cases
    .map((c, r) => {
      const img = withImages ? `<td>${sec.imageFor!(c) ? `<img src="${escapeHtml(src(sec.imageFor!(c)!))}" alt="case ${c.index}">` : ""}</td>` : "";
      const id = sec.idFor ? escapeHtml(sec.idFor(c)) : String(c.index);
      const wrong = c.label !== undefined && c.label !== c.predicted ? ` class="flag"` : "";
      return `<tr><td>${r + 1}</td><td>${id}</td>${img}<td${wrong}>${name(c.predicted)}</td><td>${name(c.label)}</td><td>${pct(c.confidence)}</td><td>${num(c.predictiveEntropy)}</td><td>${num(c.mutualInformation)}</td><td>${num(c.meanVariance, 4)}</td></tr>`;
    })
    .join("");
  return `<table><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

/** The report page; figure paths must be relative to the folder the page will be written to. */
export function renderReportHtml(input: ReportInput, figures: ReportFigures = { curves: {}, confusion: {} }): string {
  const sections = input.tasks.map((t) => {
    const figs: string[] = [];
    const curves = figures.curves[t.task];
    const confusion = figures.confusion[t.task];
    if (curves) figs.push(`<figure><img src="${escapeHtml(src(curves))}" alt="training curves for ${escapeHtml(t.task)}"><figcaption>Loss and accuracy per epoch</figcaption></figure>`);
    if (confusion) figs.push(`<figure><img src="${escapeHtml(src(confusion))}" alt="confusion matrix for ${escapeHtml(t.task)}"><figcaption>Confusion matrix (rows: true, columns: predicted)</figcaption></figure>`);
    return `<section><h2>${escapeHtml(t.task)}</h2>${summaryTable(t)}<h3>Per class</h3>${perClassTable(t)}${figs.join("")}</section>`;
  });
  const uncertain = (input.uncertain ?? []).map((sec) => {
    const classNames = sec.classNames ?? input.tasks.find((t) => t.task === sec.task)?.classNames;
    const by = sec.rankedBy ? ` (ranked by ${escapeHtml(sec.rankedBy)})` : "";
    return `<h3>${escapeHtml(sec.task)}${by}</h3>${uncertainTable(sec, classNames)}`;
  });
  const notes = (input.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join("");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(input.title)}</h1>
${notes}
${sections.join("\n")}
${uncertain.length ? `<section><h2>Most uncertain cases</h2><p class="note">Monte Carlo dropout over the ensemble; entropy and mutual information in nats. Predictions in orange are wrong.</p>${uncertain.join("\n")}</section>` : ""}
</body>
</html>
`;
}

/** Every relative src in a page, for checking that a report's references resolve. */
export function imageSources(html: string): string[] {
  return [...html.matchAll(/<img[^>]*\ssrc="([^"]+)"/g)].map((m) => decodeURIComponent(m[1]!.replace(/&amp;/g, "&")));
}

/**
 * Renders the figures into `outDir/figures/` and writes `outDir/index.html`. Returns the page's
 * path and every file written. Refuses to write a page whose case images do not exist, since a
 * broken image in a clinical review report is worse than an error now.
 */
export async function writeReport(outDir: string, input: ReportInput, options: { scale?: number } = {}): Promise<{ html: string; files: string[] }> {
  const figDir = path.join(outDir, "figures");
  fs.mkdirSync(figDir, { recursive: true });
  const figures: ReportFigures = { curves: {}, confusion: {} };
  const files: string[] = [];
  const logged = new Set(tasksInLog(input.history ?? []));
  for (const [i, t] of input.tasks.entries()) {
    const base = slug(t.task, i);
    if (logged.has(t.task)) {
      const { png } = await renderCurvesPng(input.history!, t.task, options.scale);
      figures.curves[t.task] = `figures/curves-${base}.png`;
      fs.writeFileSync(path.join(outDir, figures.curves[t.task]!), png);
      files.push(path.join(outDir, figures.curves[t.task]!));
    }
    const { png } = await renderConfusionPng(t.confusion, t.classNames, `${t.task}: confusion matrix`, options.scale);
    figures.confusion[t.task] = `figures/confusion-${base}.png`;
    fs.writeFileSync(path.join(outDir, figures.confusion[t.task]!), png);
    files.push(path.join(outDir, figures.confusion[t.task]!));
  }
  const html = renderReportHtml(input, figures);
  const missing = imageSources(html).filter((p) => !fs.existsSync(path.join(outDir, p)));
  if (missing.length) throw new Error(`writeReport: the page references missing files: ${missing.join(", ")}`);
  const page = path.join(outDir, "index.html");
  fs.writeFileSync(page, html);
  files.push(page);
  return { html: page, files };
}
