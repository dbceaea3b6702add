// Parses and formats the human durations used in config and CLI flags ("500ms", "30s", "5m", "10h", "1h30m").
import { InvalidArgumentError } from './errors.ts';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
type Unit = keyof typeof UNIT_MS;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Milliseconds in a duration string; throws InvalidArgumentError naming the problem. */
export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '') throw new InvalidArgumentError('duration is empty; use a number with a unit, such as 500ms, 30s, 5m or 10h');
  if (/^\d+(\.\d+)?$/.test(input)) {
    throw new InvalidArgumentError(`duration "${text}" has no unit; write ${input}ms, ${input}s, ${input}m or ${input}h`);
  }
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const at = PART.lastIndex;
    const match = PART.exec(input);
    if (!match) {
      throw new InvalidArgumentError(
        `duration "${text}" is not valid at "${input.slice(at)}"; use a number with a unit (ms, s, m, h), such as 500ms, 30s, 5m or 1h30m`,
      );
    }
    total += Number(match[1]) * UNIT_MS[match[2] as Unit];
  }
  return Math.round(total);
}

/** The shortest exact rendering of a millisecond count ("1h30m", "250ms", "0s"). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new InvalidArgumentError(`cannot format duration ${ms}`);
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}
