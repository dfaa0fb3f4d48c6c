// Set-up shared by the README's commands (`npm run example`, `npm test`) and CI: installs the
// npm dependencies when they are missing or older than package-lock.json. Plain Node, no deps.
import { execSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const marker = path.join(root, "node_modules", ".package-lock.json");
const lock = path.join(root, "package-lock.json");
const stale = !fs.existsSync(marker) || fs.statSync(marker).mtimeMs < fs.statSync(lock).mtimeMs;
if (stale) {
  console.log("drifa setup: installing npm dependencies (npm ci)");
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: "inherit" });
}
