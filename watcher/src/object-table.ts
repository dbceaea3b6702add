// The watcher's compact per-object state: a key index plus typed-array columns of hashes and numbers, never the object.
//
// A Map from `namespace/name` to a row number, and one Float64Array per field. Rows of deleted
// objects go to a free list. Per object this costs the key string, one Map slot and 8 bytes per
// column, instead of the kilobytes a cached object (managedFields and all) would take.

/** The fields every row has; user projections add columns after these. */
export const COLUMNS = {
  uid: 0,
  generation: 1,
  /** resourceVersion as a number; NaN when the server's resourceVersion is not a decimal integer. */
  rv: 2,
  labels: 3,
  annotations: 4,
  finalizers: 5,
  requestedAt: 6,
  /** Bit 0: deletionTimestamp set. Bit 1: finalizers present. Bit 2: seen in the current relist. */
  flags: 7,
} as const;
export const BASE_COLUMNS = 8;

export const FLAG_DELETING = 1;
export const FLAG_HAS_FINALIZERS = 2;
export const FLAG_SEEN = 4;

export class ObjectTable {
  readonly width: number;
  private readonly index = new Map<string, number>();
  private columns: Float64Array[];
  private capacity: number;
  private nextRow = 0;
  private readonly free: number[] = [];
  /** resourceVersions that are not decimal integers, by row (rare: only non-etcd servers). */
  private readonly textRv = new Map<number, string>();
  /** A string per row for triggers that need one (the owner name of a child); absent when unused. */
  private readonly tags: (string | undefined)[] | undefined;
  /** The key of each row, for an index that finds rows (the same strings as the Map's keys); absent when unused. */
  private readonly rowKeys: (string | undefined)[] | undefined;

  constructor(options: { extraColumns?: number; tags?: boolean; keysByRow?: boolean; initialCapacity?: number } = {}) {
    this.width = BASE_COLUMNS + (options.extraColumns ?? 0);
    this.capacity = Math.max(16, options.initialCapacity ?? 1024);
    this.columns = Array.from({ length: this.width }, () => new Float64Array(this.capacity));
    this.tags = options.tags ? [] : undefined;
    this.rowKeys = options.keysByRow ? [] : undefined;
  }

  get size(): number {
    return this.index.size;
  }

  row(key: string): number | undefined {
    return this.index.get(key);
  }

  /** The row of `key`, created (zeroed) when absent; `created` says which. */
  upsert(key: string): { row: number; created: boolean } {
    const existing = this.index.get(key);
    if (existing !== undefined) return { row: existing, created: false };
    let row = this.free.pop();
    if (row === undefined) {
      if (this.nextRow === this.capacity) this.grow();
      row = this.nextRow++;
    }
    for (const column of this.columns) column[row] = 0;
    this.index.set(key, row);
    if (this.rowKeys !== undefined) this.rowKeys[row] = key;
    return { row, created: true };
  }

  delete(key: string): boolean {
    const row = this.index.get(key);
    if (row === undefined) return false;
    this.index.delete(key);
    this.textRv.delete(row);
    if (this.tags !== undefined) this.tags[row] = undefined;
    if (this.rowKeys !== undefined) this.rowKeys[row] = undefined;
    this.free.push(row);
    return true;
  }

  get(row: number, column: number): number {
    return (this.columns[column] as Float64Array)[row] as number;
  }

  set(row: number, column: number, value: number): void {
    (this.columns[column] as Float64Array)[row] = value;
  }

  setResourceVersion(row: number, rv: string): void {
    const numeric = parseResourceVersion(rv);
    this.set(row, COLUMNS.rv, numeric);
    if (Number.isNaN(numeric)) this.textRv.set(row, rv);
    else this.textRv.delete(row);
  }

  resourceVersion(row: number): string {
    const numeric = this.get(row, COLUMNS.rv);
    return Number.isNaN(numeric) ? (this.textRv.get(row) ?? '') : String(numeric);
  }

  /** The key stored at `row` (tables made with `keysByRow` only). */
  keyAt(row: number): string | undefined {
    return this.rowKeys?.[row];
  }

  tag(row: number): string | undefined {
    return this.tags?.[row];
  }

  setTag(row: number, value: string | undefined): void {
    if (this.tags !== undefined) this.tags[row] = value;
  }

  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  entries(): IterableIterator<[string, number]> {
    return this.index.entries();
  }

  /** Clears the seen mark of every row, at the start of a relist. */
  clearSeen(): void {
    const flags = this.columns[COLUMNS.flags] as Float64Array;
    for (const row of this.index.values()) flags[row] = (flags[row] as number) & ~FLAG_SEEN;
  }

  /** Keys whose row was not marked seen since `clearSeen`. */
  unseenKeys(): string[] {
    const flags = this.columns[COLUMNS.flags] as Float64Array;
    const out: string[] = [];
    for (const [key, row] of this.index) if (((flags[row] as number) & FLAG_SEEN) === 0) out.push(key);
    return out;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    this.columns = this.columns.map((old) => {
      const next = new Float64Array(capacity);
      next.set(old);
      return next;
    });
    this.capacity = capacity;
  }
}

/**
 * resourceVersion as a number when it is a decimal integer below 2^53 (etcd's revisions are), else
 * NaN. Kubernetes calls resourceVersions opaque; comparing them is only ever used to skip replays
 * and to find changes since a stored cursor, and a non-numeric one makes both fall back to "changed".
 */
export function parseResourceVersion(rv: string | undefined): number {
  if (rv === undefined || !/^[0-9]{1,15}$/.test(rv)) return Number.NaN;
  return Number(rv);
}
