// "Did you mean ...?": the closest known name by edit distance, if it is close enough to help.
import { distance } from "fastest-levenshtein";

export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    if (c === name) continue;
    // Case-only differences (MIFa vs MIFA) count as the closest possible match.
    const score = c.toLowerCase() === lower ? 0.5 : distance(name, c);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return best !== null && bestScore <= limit ? best : null;
}
