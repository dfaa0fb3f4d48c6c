// Errors of the data layer. Every failure names the file (or folder) at fault and says why, so a
// user with 10,000 images can find the one that broke the run. Loaders given `skipBad` collect
// the same information as `Skipped` records instead of throwing.

/** A data problem tied to one file or folder. `file` is the path at fault; `cause` says why. */
export class DataError extends Error {
  readonly file: string;
  override readonly cause: string;
  constructor(file: string, cause: string) {
    super(`${file}: ${cause}`);
    this.name = "DataError";
    this.file = file;
    this.cause = cause;
  }
}

/** A file left out under `skipBad`, with the reason. */
export interface Skipped {
  file: string;
  cause: string;
}

/** Turns any thrown value into a DataError about `file` (keeps an existing DataError as is). */
export function asDataError(file: string, err: unknown, what = "cannot be read"): DataError {
  if (err instanceof DataError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new DataError(file, `${what}: ${msg}`);
}

/**
 * Collects bad-data findings for one load: throws at once when skipBad is off, otherwise records
 * the problem so the caller can go on and report a count with the reasons at the end.
 */
export class BadData {
  readonly skipped: Skipped[] = [];
  constructor(readonly skipBad: boolean) {}
  report(e: DataError): void {
    if (!this.skipBad) throw e;
    this.skipped.push({ file: e.file, cause: e.cause });
  }
  /** Runs fn; a failure is reported (thrown or recorded) and gives undefined. */
  try<T>(file: string, fn: () => T, what?: string): T | undefined {
    try {
      return fn();
    } catch (err) {
      this.report(asDataError(file, err, what));
      return undefined;
    }
  }
}
