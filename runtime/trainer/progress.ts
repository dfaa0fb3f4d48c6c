// The per-epoch progress bar of the Node trainer (Node only: cli-progress writes to a TTY
// stream). One bar per epoch: steps, the latest loss read back, throughput and the epoch's ETA.
// The CLI only creates it on a TTY without --json, so logs and piped output stay clean.

import cliProgress from "cli-progress";
import type { StepInfo } from "./loop.ts";

/** Samples per second for people: whole numbers from 10 up, two significant digits below (a
 * first epoch that compiles its shaders runs at 0.19 samples/s, not "0"). */
export function formatRate(samplesPerSecond: number): string {
  return samplesPerSecond >= 10 ? String(Math.round(samplesPerSecond)) : samplesPerSecond > 0 ? samplesPerSecond.toPrecision(2) : "0";
}

export class EpochProgress {
  private bar: cliProgress.SingleBar | undefined;
  private readonly stream: NodeJS.WritableStream;
  private readonly epochs: number;

  constructor(stream: NodeJS.WritableStream, epochs: number) {
    this.stream = stream;
    this.epochs = epochs;
  }

  start(epoch: number, steps: number | undefined): void {
    this.stop();
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `epoch {epoch}/${this.epochs} [{bar}] {value}/{total} | loss {loss} | {speed} samples/s | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        // Redraws are cheap but not free; the default 10 fps is plenty for a training bar.
        fps: 10,
        etaBuffer: 20,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(steps ?? 0, 0, { epoch, loss: "-", speed: "-" });
  }

  step(info: StepInfo): void {
    if (!this.bar) return;
    if (info.steps !== undefined && this.bar.getTotal() !== info.steps) this.bar.setTotal(info.steps);
    this.bar.update(info.step, {
      loss: info.loss === undefined ? "-" : info.loss.toFixed(4),
      speed: info.seconds > 0 ? formatRate(info.samples / info.seconds) : "-",
    });
  }

  /** Removes the bar (before an epoch summary line is printed). */
  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
