// The runtime a compiled folder carries: runtime/ bundled with esbuild into runtime.js (Node:
// the trainer entry included) and runtime.browser.js (a page: no Node built-ins), so the folder
// runs without drifa's sources. Native packages (webgpu) are not bundled: runtime/compiled/node.ts
// finds them in the compiling drifa's installation.
import { build } from "esbuild";
import path from "node:path";
import { fileURLToPath } from "node:url";

const runtimeDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../runtime/compiled");

export async function bundleRuntime(target: "node" | "browser"): Promise<string> {
  const result = await build({
    entryPoints: [path.join(runtimeDir, target === "node" ? "index.ts" : "browser.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: target === "node" ? "node" : "browser",
    target: target === "node" ? "node20" : "es2022",
    external: ["webgpu"],
    legalComments: "none",
    logLevel: "silent",
    // CommonJS dependencies (commander, cli-progress) call require() for Node built-ins.
    banner: target === "node" ? { js: 'import { createRequire as __drifaCreateRequire } from "node:module";\nconst require = __drifaCreateRequire(import.meta.url);' } : undefined,
  });
  return result.outputFiles[0]!.text;
}
