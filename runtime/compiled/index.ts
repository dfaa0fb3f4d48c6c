// The runtime a compiled model folder carries (bundled into runtime.js by `drifac compile`):
// the browser-safe runner plus the Node trainer entry.
export * from "./browser.ts";
export { nodeDevice, readFrom, recompileWithBatch, trainMain } from "./node.ts";
