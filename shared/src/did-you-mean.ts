// "Did you mean …?": the known word closest to a mistyped one, for unknown options, commands and settings.

/**
 * The candidate closest to `word` — within two edits (case aside), or one that starts with it — or
 * undefined when none is that close.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  const typed = word.toLowerCase();
  for (const candidate of candidates) {
    const lower = candidate.toLowerCase();
    const distance = typed.length >= 3 && lower.startsWith(typed) ? 1 : editDistance(typed, lower);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
