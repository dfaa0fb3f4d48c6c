// `drifac fmt`: the canonical layout of a .drifa file, printed by Prettier with our plugin.
import * as prettier from "prettier";
import plugin from "./plugin.ts";

export { FormatError, parseDrifa } from "./plugin.ts";
export { default as drifaPlugin } from "./plugin.ts";

/** Formats one file. Rejects with a FormatError (message `path:line:col: message`) when the
 * text does not parse. */
export async function formatDrifa(text: string, path: string): Promise<string> {
  return prettier.format(text, {
    parser: "drifa",
    plugins: [plugin],
    filepath: path,
    printWidth: 100,
    tabWidth: 2,
    useTabs: false,
    endOfLine: "lf",
  });
}
