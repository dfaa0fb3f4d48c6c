// Checkpoint files on disk (Node only). Writes are atomic: the bytes go to a temporary file in
// the same folder (same file system, so the rename cannot degrade into a copy), which is fsynced
// and then renamed over the target. rename(2) replaces the name in one step, so a crash at any
// point leaves either the old checkpoint or the new one, whole, never a torn mix. The folder is
// fsynced after the rename so the new name itself survives a power loss.

import fs from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { decodeSafetensors, safetensorsParts, type Safetensors, type TensorMap } from "./safetensors.ts";

export interface AtomicWriteOptions {
  /**
   * Testing seam: called with the temporary file's path after its data is written and fsynced,
   * just before the rename. Throwing here simulates a failure at the last moment.
   */
  beforeRename?: (tempPath: string) => void;
}

/** The temporary-file name used for `target`; dot-prefixed so folder listings skip it. */
function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes `chunks` to `target` atomically (see the file comment). Synchronous on purpose: a
 * training loop saves between epochs and must not mutate weights while a write is pending. */
export function writeFileAtomic(target: string, chunks: Iterable<Uint8Array>, options: AtomicWriteOptions = {}): void {
  const temp = tempPathFor(target);
  let fd: number | undefined = fs.openSync(temp, "wx");
  try {
    for (const chunk of chunks) {
      let done = 0;
      while (done < chunk.length) done += fs.writeSync(fd, chunk, done, chunk.length - done);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    options.beforeRename?.(temp);
    fs.renameSync(temp, target);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw e;
  }
  syncDirectory(path.dirname(target));
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or fsync a folder; the rename is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Saves tensors and string metadata as a safetensors file, atomically. */
export function saveSafetensors(
  target: string,
  tensors: TensorMap,
  metadata: Readonly<Record<string, string>> = {},
  options: AtomicWriteOptions = {},
): void {
  const { header, chunks } = safetensorsParts(tensors, metadata);
  writeFileAtomic(target, [header, ...chunks], options);
}

/** Reads and validates a safetensors file. */
export function loadSafetensors(file: string): Safetensors {
  return decodeSafetensors(fs.readFileSync(file));
}
