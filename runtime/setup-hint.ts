// What to tell a user whose machine offers no WebGPU adapter. Kept apart from device.ts so the
// text can be shown by tools (CLI, tests) without acquiring anything. .ci/setup.mjs (plain Node,
// it cannot import TypeScript) prints the same Debian instructions: keep the two in step.

/** The apt source that provides a Mesa new enough for Dawn's Vulkan backend on Debian 12. */
export const BOOKWORM_BACKPORTS_SOURCE = [
  "Types: deb",
  "URIs: http://deb.debian.org/debian",
  "Suites: bookworm-backports",
  "Components: main",
  "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
].join("\n");

export interface HostInfo {
  /** "node" or "browser". */
  host: "node" | "browser";
  /** process.platform in Node. */
  platform?: string;
  /** Contents of /etc/os-release on Linux, when it could be read. */
  osRelease?: string;
}

function osField(osRelease: string | undefined, key: string): string | undefined {
  const m = osRelease ? new RegExp(`^${key}="?([^"\\n]*)"?$`, "m").exec(osRelease) : null;
  return m?.[1];
}

/** Instructions to get a WebGPU adapter on this host; the first lines fit the host best. */
export function setupHint(info: HostInfo): string {
  if (info.host === "browser") {
    return [
      "This browser exposes no WebGPU adapter (navigator.gpu is missing or requestAdapter() returned null).",
      "Use a browser with WebGPU enabled (a recent Chrome or Edge; Safari and Firefox where WebGPU is switched on),",
      "and check that hardware acceleration is not disabled in its settings.",
    ].join("\n");
  }
  const debianBookworm = osField(info.osRelease, "ID") === "debian" && osField(info.osRelease, "VERSION_CODENAME") === "bookworm";
  const debian = [
    "On Debian 12 (bookworm), install the CPU Vulkan driver (Mesa's lavapipe) from bookworm-backports",
    "(drifa is tested with Mesa 25 from there, not with bookworm's own Mesa 22), as root:",
    "  cat > /etc/apt/sources.list.d/drifa-bookworm-backports.sources <<'EOF'",
    ...BOOKWORM_BACKPORTS_SOURCE.split("\n").map((l) => `  ${l}`),
    "  EOF",
    "  apt-get update",
    "  apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1",
    "(skip the first step when a bookworm-backports source is already configured; `npm run setup` does all of this when run as root).",
  ];
  const other = [
    "On other Linux distributions, install Mesa's Vulkan drivers and the Vulkan loader",
    "(Debian/Ubuntu: mesa-vulkan-drivers libvulkan1; Fedora: mesa-vulkan-drivers vulkan-loader; Arch: vulkan-swrast vulkan-icd-loader),",
    "or the vendor's Vulkan driver for a real GPU.",
  ];
  const lines = ["No WebGPU adapter was found. In Node, drifa runs WebGPU through the `webgpu` package (Dawn), which needs a Vulkan driver on Linux."];
  if (info.platform === undefined || info.platform === "linux") lines.push(...(debianBookworm ? [...debian, ...other] : [...other, ...debian]));
  else if (info.platform === "darwin") lines.push("On macOS Dawn uses Metal, which every supported Mac has: check that the `webgpu` package installed its darwin binary.");
  else if (info.platform === "win32") lines.push("On Windows Dawn uses Direct3D 12: update the graphics driver.");
  lines.push("Set DRIFA_SKIP_GPU_SETUP=1 to skip this check in `npm run setup`; the tests that need a GPU are then skipped.");
  return lines.join("\n");
}
