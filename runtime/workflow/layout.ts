// Which loader a data folder needs. `drifac train --data skin=PATH` takes any folder in one of the
// supported layouts, so the user never has to name the layout; detection looks only at names
// (never file contents), so a broken file still reaches its loader and gets the loader's error,
// which names the file and the cause. Node only.
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { DataError, loadBrats, loadClassFolders, loadHam10000, loadSipakmed, loadTrainTest, type DataSet } from "../data/index.ts";

export type Layout = "ham10000" | "brats" | "train-test" | "sipakmed" | "class-folders";

export interface LoadFolderOptions {
  skipBad?: boolean;
  /** Decode every file at load time (so bad files are found, or skipped, before the split). */
  verify?: boolean;
}

async function entries(dir: string): Promise<{ dirs: string[]; files: string[] }> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new DataError(dir, "missing folder");
  if (!st.isDirectory()) throw new DataError(dir, "not a folder (give the data set's root folder)");
  const ents = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith("."));
  return { dirs: ents.filter((e) => e.isDirectory()).map((e) => e.name), files: ents.filter((e) => e.isFile()).map((e) => e.name) };
}

/** The layout of a data folder, from its file and folder names (see runtime/data/README.md). */
export async function detectLayout(root: string): Promise<Layout> {
  const { dirs, files } = await entries(root);
  const lower = (xs: string[]) => xs.map((x) => x.toLowerCase());
  // HAM10000 first: its metadata CSV decides even when the image folders are missing, so that
  // the loader can say which folder is missing instead of "unknown layout".
  if (lower(files).includes("ham10000_metadata.csv") || dirs.some((d) => /^HAM10000_images/i.test(d))) return "ham10000";
  if (lower(files).includes("name_mapping.csv") || dirs.some((d) => /^BraTS20_/i.test(d))) return "brats";
  if (dirs.includes("Training") && dirs.includes("Testing")) return "train-test";
  if (dirs.length && dirs.every((d) => d.startsWith("im_"))) return "sipakmed";
  if (dirs.length) return "class-folders";
  const csv = files.find((f) => f.toLowerCase().endsWith(".csv"));
  throw new DataError(
    root,
    csv
      ? `cannot tell the layout: ${csv} is not HAM10000_metadata.csv or name_mapping.csv`
      : "cannot tell the layout: expected HAM10000_metadata.csv, BraTS20_* patient folders, Training/ + Testing/, or one folder per class",
  );
}

/** Loads a data folder with the loader its layout needs. */
export async function loadDataFolder(root: string, opts: LoadFolderOptions = {}): Promise<DataSet & { layout: Layout }> {
  const layout = await detectLayout(root);
  const o = { skipBad: !!opts.skipBad, verify: !!opts.verify };
  const ds =
    layout === "ham10000"
      ? await loadHam10000(root, o)
      : layout === "brats"
        ? await loadBrats(root, o)
        : layout === "train-test"
          ? await loadTrainTest(root, o)
          : layout === "sipakmed"
            ? await loadSipakmed(root, o)
            : await loadClassFolders(root, o);
  return Object.assign(ds, { layout });
}

/** Parses `NAME=PATH` arguments (repeatable --data) into a map, rejecting duplicates. */
export function parseDataArgs(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq <= 0 || eq === a.length - 1) throw new Error(`--data ${a}: expected NAME=PATH (NAME: a model input)`);
    const name = a.slice(0, eq);
    if (out.has(name)) throw new Error(`--data ${name} given twice`);
    out.set(name, path.resolve(a.slice(eq + 1)));
  }
  return out;
}

/** Loads every `--data NAME=PATH` folder; `skipped` lists files left out under skipBad. */
export async function loadDataArgs(args: readonly string[], opts: LoadFolderOptions = {}): Promise<{ data: Map<string, DataSet>; skipped: { file: string; cause: string }[] }> {
  const data = new Map<string, DataSet>();
  const skipped: { file: string; cause: string }[] = [];
  for (const [name, root] of parseDataArgs(args)) {
    const ds = await loadDataFolder(root, opts);
    data.set(name, ds);
    skipped.push(...ds.skipped);
  }
  if (!data.size) throw new Error("no data: give --data NAME=PATH for each model input");
  return { data, skipped };
}
