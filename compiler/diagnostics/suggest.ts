// "Did you mean ...?": the closest known name by edit distance, if it is close enough to help.
import { distance } from "fastest-levenshtein";

export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestScore = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    if (c === name) continue;
    // Case-only differences (MIFa vs MIFA) rank first, the fewest changed letters first.
    const score = c.toLowerCase() === lower ? 0.1 * distance(name, c) : distance(name, c);
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  // Two edits (a transposition such as widht/width) for names of four letters or more.
  const limit = name.length <= 3 ? 1 : Math.max(2, Math.floor(name.length / 3));
  return best !== null && bestScore <= limit ? best : null;
}
