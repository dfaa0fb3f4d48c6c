// `--set name=value,name=value` (repeatable) into the compile-time settings of a model.
export class UsageError extends Error {}

export function collectSettings(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const out = { ...previous };
  for (const pair of value.split(",")) {
    if (!pair.trim()) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set expects name=value pairs separated by commas, got '${pair}'`);
    const name = pair.slice(0, eq).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UsageError(`--set: '${name}' is not a parameter name`);
    out[name] = pair.slice(eq + 1).trim();
  }
  return out;
}
