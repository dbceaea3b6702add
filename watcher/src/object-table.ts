// The watcher's compact per-object state: packed keys (KeyStore) plus typed-array columns of hashes and numbers, never the object.
//
// Rows are numbered by the KeyStore and hold one Float64 per column, row after row, in chunks of
// 1,024 rows (the first chunk grows to that size), a byte of flags, and the requested-at hash in a
// Map for the few rows that have one. Per object this costs the key's packed bytes (about 25 B) and
// 8 bytes per column — about 75 B with the base columns —
// instead of the kilobytes a cached object (managedFields and all) would take. Chunks, rather than one
// array per column doubled as it fills, keep the unused tail under 1,024 rows and never copy the table.

import { KeyStore } from './key-store.ts';

/** The fields every row has; user projections add columns after these. */
export const COLUMNS = {
  uid: 0,
  generation: 1,
  /** resourceVersion as a number; NaN when the server's resourceVersion is not a decimal integer. */
  rv: 2,
  labels: 3,
  annotations: 4,
  finalizers: 5,
  /** Kept only for rows that carry the annotation (most never do); 0 for the others. */
  requestedAt: 6,
  /** Bit 0: deletionTimestamp set. Bit 1: finalizers present. Bit 2: seen in the current relist. Kept in a byte. */
  flags: 7,
} as const;
export const BASE_COLUMNS = 8;

export const FLAG_DELETING = 1;
export const FLAG_HAS_FINALIZERS = 2;
export const FLAG_SEEN = 4;

const CHUNK_BITS = 10;
const CHUNK_ROWS = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK_ROWS - 1;
/** The column kept in a byte rather than a double. */
const FLAGS = COLUMNS.flags;
/** The column kept by row in a Map, for the rows where it is not 0. */
const SPARSE = COLUMNS.requestedAt;
/** The doubles' index of a column: flags and the sparse column have none. */
const doubleIndex = (column: number) => (column < SPARSE ? column : column - 2);

export class ObjectTable {
  readonly width: number;
  private readonly keyStore = new KeyStore();
  /** Doubles of every column but flags and the sparse one, row-major, `stride` per row. */
  private readonly numbers: Float64Array[] = [];
  private readonly flags: Uint8Array[] = [];
  private readonly stride: number;
  /** The sparse column's values that are not 0, by row. */
  private readonly sparse = new Map<number, number>();
  /** resourceVersions that are not decimal integers, by row (rare: only non-etcd servers). */
  private readonly textRv = new Map<number, string>();
  /** A string per row for triggers that need one (the owner name of a child); absent when unused. */
  private readonly tags: (string | undefined)[] | undefined;

  constructor(options: { extraColumns?: number; tags?: boolean } = {}) {
    this.width = BASE_COLUMNS + (options.extraColumns ?? 0);
    this.stride = this.width - 2;
    this.tags = options.tags ? [] : undefined;
  }

  get size(): number {
    return this.keyStore.size;
  }

  row(key: string): number | undefined {
    return this.keyStore.find(key);
  }

  /** The row of `key`, created (zeroed) when absent; `created` says which. */
  upsert(key: string): { row: number; created: boolean } {
    const existing = this.keyStore.find(key);
    if (existing !== undefined) return { row: existing, created: false };
    const row = this.keyStore.add(key);
    this.ensure(row);
    const numbers = this.numbers[row >>> CHUNK_BITS] as Float64Array;
    const at = (row & CHUNK_MASK) * this.stride;
    numbers.fill(0, at, at + this.stride);
    (this.flags[row >>> CHUNK_BITS] as Uint8Array)[row & CHUNK_MASK] = 0;
    this.sparse.delete(row);
    return { row, created: true };
  }

  delete(key: string): boolean {
    const row = this.keyStore.find(key);
    if (row === undefined) return false;
    this.keyStore.remove(row);
    this.textRv.delete(row);
    this.sparse.delete(row);
    if (this.tags !== undefined) this.tags[row] = undefined;
    return true;
  }

  get(row: number, column: number): number {
    if (column === FLAGS) return (this.flags[row >>> CHUNK_BITS] as Uint8Array)[row & CHUNK_MASK] as number;
    if (column === SPARSE) return this.sparse.get(row) ?? 0;
    return (this.numbers[row >>> CHUNK_BITS] as Float64Array)[(row & CHUNK_MASK) * this.stride + doubleIndex(column)] as number;
  }

  set(row: number, column: number, value: number): void {
    if (column === FLAGS) {
      (this.flags[row >>> CHUNK_BITS] as Uint8Array)[row & CHUNK_MASK] = value;
    } else if (column === SPARSE) {
      if (value === 0) this.sparse.delete(row);
      else this.sparse.set(row, value);
    } else {
      (this.numbers[row >>> CHUNK_BITS] as Float64Array)[(row & CHUNK_MASK) * this.stride + doubleIndex(column)] = value;
    }
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

  /** The key stored at `row`. */
  keyAt(row: number): string | undefined {
    return this.keyStore.keyAt(row);
  }

  tag(row: number): string | undefined {
    return this.tags?.[row];
  }

  setTag(row: number, value: string | undefined): void {
    if (this.tags !== undefined) this.tags[row] = value;
  }

  *keys(): Generator<string> {
    for (const row of this.keyStore.rows()) yield this.keyStore.keyAt(row) as string;
  }

  *entries(): Generator<[string, number]> {
    for (const row of this.keyStore.rows()) yield [this.keyStore.keyAt(row) as string, row];
  }

  /** Clears the seen mark of every row, at the start of a relist. */
  clearSeen(): void {
    for (const chunk of this.flags) for (let i = 0; i < chunk.length; i++) chunk[i] = (chunk[i] as number) & ~FLAG_SEEN;
  }

  /** Keys whose row was not marked seen since `clearSeen`. */
  unseenKeys(): string[] {
    const out: string[] = [];
    for (const row of this.keyStore.rows()) if ((this.get(row, FLAGS) & FLAG_SEEN) === 0) out.push(this.keyStore.keyAt(row) as string);
    return out;
  }

  /** Makes room for `row`: a new chunk, or the first chunk grown (it starts small, for streams of a few objects). */
  private ensure(row: number): void {
    const index = row >>> CHUNK_BITS;
    const inChunk = (row & CHUNK_MASK) + 1;
    const flags = this.flags[index];
    if (flags !== undefined && flags.length >= inChunk) return;
    const rows = index > 0 ? CHUNK_ROWS : Math.min(CHUNK_ROWS, Math.max(64, inChunk, (flags?.length ?? 0) * 2));
    const grownFlags = new Uint8Array(rows);
    const grownNumbers = new Float64Array(rows * this.stride);
    if (flags !== undefined) {
      grownFlags.set(flags);
      grownNumbers.set(this.numbers[index] as Float64Array);
    }
    this.flags[index] = grownFlags;
    this.numbers[index] = grownNumbers;
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
