// Set-up shared by the README's commands (`npm run example`, `npm test`) and CI: installs the
// npm dependencies when they are missing or older than package-lock.json, then makes sure a
// WebGPU adapter exists for the GPU tests. Plain Node, no deps.
//
// The adapter check: a child process tries `create([]).requestAdapter()` from the `webgpu`
// package (Dawn), with a timeout (a broken driver can hang, and a native crash must not take
// this script down). Without an adapter, on Debian bookworm as root, Mesa's CPU Vulkan driver
// (lavapipe) is installed from bookworm-backports and the check is repeated; anywhere else the
// script prints what to install and carries on: the tests that need no GPU still run, the GPU
// tests skip themselves (and Chromium, for the browser test: DRIFA_SKIP_BROWSER_SETUP=1 skips it).
// DRIFA_SKIP_GPU_SETUP=1 skips the adapter check; DRIFA_SETUP_DRY_RUN=1 prints
// the system commands instead of running them. Everything it prints goes to stderr (with what
// the commands it runs print), so `npm run -s bench -- --json` keeps stdout to the JSON. Keep the instructions in step with
// runtime/setup-hint.ts (this file cannot import TypeScript).
import { execSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const marker = path.join(root, "node_modules", ".package-lock.json");
const lock = path.join(root, "package-lock.json");
const stale = !fs.existsSync(marker) || fs.statSync(marker).mtimeMs < fs.statSync(lock).mtimeMs;
if (stale) {
  console.error("drifa setup: installing npm dependencies (npm ci)");
  execSync("npm ci --no-audit --no-fund", { cwd: root, stdio: ["inherit", 2, 2] });
}

const skipGpu = process.env.DRIFA_SKIP_GPU_SETUP === "1";

const BACKPORTS_FILE = "/etc/apt/sources.list.d/drifa-bookworm-backports.sources";
const BACKPORTS_SOURCE = `Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;
const PACKAGES = ["mesa-vulkan-drivers", "libvulkan1"];
const dryRun = process.env.DRIFA_SETUP_DRY_RUN === "1";

const PROBE = `
import { create } from "webgpu";
const adapter = await create([]).requestAdapter();
if (!adapter) { console.log("none"); process.exit(3); }
const i = adapter.info ?? {};
console.log([i.vendor, i.architecture, i.description].filter(Boolean).join(" ") || "unnamed adapter");
process.exit(0);
`;

/** { ok, detail }: whether Dawn finds an adapter, and what it said. */
function probeAdapter() {
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", PROBE], { cwd: root, encoding: "utf8", timeout: 30_000 });
  const out = `${r.stdout ?? ""}`.trim();
  if (r.status === 0) return { ok: true, detail: out.split("\n").pop() };
  if (r.error?.code === "ETIMEDOUT") return { ok: false, detail: "requestAdapter() did not answer within 30 s" };
  if (r.status === 3) return { ok: false, detail: "requestAdapter() returned null" };
  const err = `${r.stderr ?? ""}`.trim().split("\n").filter((l) => !l.startsWith("Warning:"));
  // A missing npm package is not a driver problem: installing Mesa would not help.
  if (/Cannot find package 'webgpu'|ERR_MODULE_NOT_FOUND/.test(r.stderr ?? "")) return { ok: false, noPackage: true, detail: "the npm package webgpu is not installed (run `npm ci`)" };
  return { ok: false, detail: `the probe failed (exit ${r.status ?? r.signal}): ${err.slice(-3).join(" / ") || "no output"}` };
}

function osRelease() {
  try {
    const text = fs.readFileSync("/etc/os-release", "utf8");
    const field = (k) => new RegExp(`^${k}="?([^"\\n]*)"?$`, "m").exec(text)?.[1];
    return { id: field("ID"), codename: field("VERSION_CODENAME") };
  } catch {
    return {};
  }
}

/** Is a bookworm-backports suite configured already (one-line or deb822 sources)? */
function hasBackportsSource() {
  const files = ["/etc/apt/sources.list"];
  try {
    for (const f of fs.readdirSync("/etc/apt/sources.list.d")) files.push(path.join("/etc/apt/sources.list.d", f));
  } catch {
    // no sources.list.d
  }
  return files.some((f) => {
    if (!/\.(list|sources)$|sources\.list$/.test(f)) return false;
    try {
      return fs
        .readFileSync(f, "utf8")
        .split("\n")
        .some((l) => !l.trim().startsWith("#") && /\bbookworm-backports\b/.test(l));
    } catch {
      return false;
    }
  });
}

function run(cmd) {
  console.error(`drifa setup: ${dryRun ? "(dry run) would run" : "running"}: ${cmd}`);
  if (dryRun) return true;
  try {
    execSync(cmd, { stdio: ["inherit", 2, 2], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
    return true;
  } catch (e) {
    console.error(`drifa setup: \`${cmd}\` failed: ${e.message.split("\n")[0]}`);
    return false;
  }
}

function hint() {
  return [
    "drifa setup: no WebGPU adapter, so the GPU tests will be skipped. To run them, install a Vulkan driver:",
    "  Debian 12 (bookworm), as root: add the bookworm-backports suite, e.g. as",
    `  ${BACKPORTS_FILE}:`,
    ...BACKPORTS_SOURCE.trim().split("\n").map((l) => `      ${l}`),
    `  then: apt-get update && apt-get install -t bookworm-backports ${PACKAGES.join(" ")}`,
    `  Other Debian/Ubuntu: apt-get install ${PACKAGES.join(" ")}; Fedora: dnf install mesa-vulkan-drivers vulkan-loader;`,
    "  Arch: pacman -S vulkan-swrast vulkan-icd-loader; or the vendor's Vulkan driver for a real GPU.",
    "  (Set DRIFA_SKIP_GPU_SETUP=1 to skip this check.)",
  ].join("\n");
}

function installLavapipe() {
  if (hasBackportsSource()) {
    console.error("drifa setup: a bookworm-backports apt source exists already");
  } else {
    console.error(`drifa setup: ${dryRun ? "(dry run) would write" : "writing"} ${BACKPORTS_FILE}`);
    if (!dryRun) fs.writeFileSync(BACKPORTS_FILE, BACKPORTS_SOURCE);
  }
  return run("apt-get update") && run(`apt-get install -y -t bookworm-backports ${PACKAGES.join(" ")}`);
}

function ensureAdapter() {
  const first = probeAdapter();
  if (first.ok) {
    console.error(`drifa setup: WebGPU adapter: ${first.detail}`);
  } else {
    console.error(`drifa setup: no WebGPU adapter (${first.detail})`);
    if (first.noPackage) return;
    const os = osRelease();
    const root_ = typeof process.getuid === "function" && process.getuid() === 0;
    if (os.id === "debian" && os.codename === "bookworm" && root_) {
      console.error("drifa setup: Debian bookworm as root: installing Mesa's lavapipe from bookworm-backports");
      const installed = installLavapipe();
      const again = installed && !dryRun ? probeAdapter() : { ok: false, detail: dryRun ? "dry run" : "installation failed" };
      if (again.ok) console.error(`drifa setup: WebGPU adapter: ${again.detail}`);
      else console.error(`drifa setup: still no WebGPU adapter (${again.detail})\n${hint()}`);
    } else {
      console.error(hint());
    }
  }
}

if (!skipGpu) ensureAdapter();

// The browser test runs a compiled model in Debian's Chromium (WebGPU through SwiftShader).
const CHROMIUM = "/usr/bin/chromium";
if (!fs.existsSync(CHROMIUM)) {
  const os = osRelease();
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (os.id === "debian" && isRoot && process.env.DRIFA_SKIP_BROWSER_SETUP !== "1") {
    console.error("drifa setup: installing Debian's chromium for the browser test");
    if (!(run("apt-get update") && run("apt-get install -y chromium"))) console.error("drifa setup: chromium could not be installed; the browser test will be skipped");
  } else {
    console.error("drifa setup: no Chromium at /usr/bin/chromium; the browser test will be skipped (Debian: apt-get install chromium)");
  }
}
