// FNV-1a hashes: 32-bit for shard and queue-partition assignment, 53-bit (the top of FNV-1a 64) for the compact change-detection state.

const FNV32_OFFSET = 0x811c9dc5;
const FNV64_OFFSET_HI = 0xcbf29ce4;
const FNV64_OFFSET_LO = 0x84222325;

/**
 * FNV-1a 32 over the string's UTF-16 code units. For the ASCII names Kubernetes allows this equals
 * FNV-1a over UTF-8 bytes, so other implementations (Go's hash/fnv) assign the same shards.
 */
export function fnv1a32(text: string): number {
  let hash = FNV32_OFFSET;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Continues an FNV-1a 64 hash held as two 32-bit halves; returns the new halves in `state`. */
function fnv64Step(state: [number, number], text: string): void {
  let [hi, lo] = state;
  for (let i = 0; i < text.length; i++) {
    lo ^= text.charCodeAt(i);
    // h * 0x100000001b3 mod 2^64 = h * 0x1b3 + (h << 40); every product stays below 2^53, so it is exact.
    const loProduct = (lo >>> 0) * 0x1b3;
    const carry = Math.floor(loProduct / 0x100000000);
    hi = ((hi >>> 0) * 0x1b3 + carry + (lo >>> 0) * 0x100) >>> 0;
    lo = loProduct >>> 0;
  }
  state[0] = hi;
  state[1] = lo;
}

function fold53(state: readonly [number, number]): number {
  return (state[0] & 0x1fffff) * 0x100000000 + (state[1] >>> 0);
}

/** FNV-1a 64 of a string, reduced to 53 bits so it fits a double exactly. */
export function hash53(text: string): number {
  const state: [number, number] = [FNV64_OFFSET_HI, FNV64_OFFSET_LO];
  fnv64Step(state, text);
  return fold53(state);
}

/**
 * A 53-bit hash of a string map that does not depend on key order: entries sorted by key, each
 * key and value terminated by a NUL (which neither may contain) so `a=bc` and `ab=c` differ.
 * An absent and an empty map hash alike: Kubernetes treats them the same.
 */
export function hashStringMap(map: Readonly<Record<string, string>> | undefined, skip: readonly string[] = []): number {
  const state: [number, number] = [FNV64_OFFSET_HI, FNV64_OFFSET_LO];
  if (map !== undefined) {
    const keys = Object.keys(map).sort();
    for (const key of keys) {
      if (skip.includes(key)) continue;
      fnv64Step(state, key);
      fnv64Step(state, '\0');
      fnv64Step(state, String(map[key]));
      fnv64Step(state, '\0');
    }
  }
  return fold53(state);
}

/** A 53-bit hash of a list whose order matters (finalizers are processed in order by some controllers). */
export function hashStringList(list: readonly string[] | undefined): number {
  const state: [number, number] = [FNV64_OFFSET_HI, FNV64_OFFSET_LO];
  for (const item of list ?? []) {
    fnv64Step(state, item);
    fnv64Step(state, '\0');
  }
  return fold53(state);
}

/** A 53-bit hash of any JSON value, keys sorted, for user projections (`changed`). */
export function hashValue(value: unknown): number {
  return hash53(stableJson(value));
}

function stableJson(value: unknown): string {
  if (value === undefined) return 'u';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'u';
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(record[k])}`)
    .join(',')}}`;
}
