// An inverted index over the controller's own objects: from a value one of their labels or annotations holds (the name of another object) to the rows that hold it, in typed arrays.
//
// What a `watches` entry with `index` maps through: a palette ConfigMap's event finds the Widgets
// whose `example.com/palette` label names it, from metadata the watcher already watches, with
// nothing written on the palette. Per object it costs 12 bytes (the value's id and a doubly linked
// list through the rows that share it, so a row moves between values in constant time), plus one
// interned string per distinct value — not a Set per value, nor a string per object.

const NONE = -1;

export class TargetIndex {
  /** Per row: the id of its value, or NONE. */
  private idByRow: Int32Array;
  /** Per row: the previous and next row with the same value, or NONE. */
  private prev: Int32Array;
  private next: Int32Array;
  /** Per value id: the first row holding it (NONE when the id is free), and how many rows hold it. */
  private head: Int32Array;
  private count: Int32Array;
  private readonly ids = new Map<string, number>();
  private readonly values: (string | undefined)[] = [];
  private readonly freeIds: number[] = [];

  constructor(initialRows = 1024) {
    this.idByRow = new Int32Array(initialRows).fill(NONE);
    this.prev = new Int32Array(initialRows).fill(NONE);
    this.next = new Int32Array(initialRows).fill(NONE);
    this.head = new Int32Array(64).fill(NONE);
    this.count = new Int32Array(64);
  }

  /** Distinct values held. */
  get size(): number {
    return this.ids.size;
  }

  /** Sets what `row` holds (undefined: nothing), moving it out of the list of its previous value. */
  set(row: number, value: string | undefined): void {
    this.ensureRow(row);
    const current = this.idByRow[row] as number;
    const wanted = value === undefined ? NONE : this.idOf(value);
    if (current === wanted) return;
    if (current !== NONE) this.unlink(row, current);
    if (wanted !== NONE) this.link(row, wanted);
  }

  /** Forgets `row` (its object was deleted); the row may be reused. */
  remove(row: number): void {
    if (row >= this.idByRow.length) return;
    const current = this.idByRow[row] as number;
    if (current !== NONE) this.unlink(row, current);
  }

  /** The rows holding `value`. */
  *rows(value: string): Generator<number> {
    const id = this.ids.get(value);
    if (id === undefined) return;
    for (let row = this.head[id] as number; row !== NONE; row = this.next[row] as number) yield row;
  }

  /** How many rows hold `value`. */
  countOf(value: string): number {
    const id = this.ids.get(value);
    return id === undefined ? 0 : (this.count[id] as number);
  }

  private idOf(value: string): number {
    const known = this.ids.get(value);
    if (known !== undefined) return known;
    const id = this.freeIds.pop() ?? this.values.length;
    if (id >= this.head.length) {
      this.head = grown(this.head, id + 1, NONE);
      this.count = grown(this.count, id + 1, 0);
    }
    this.values[id] = value;
    this.ids.set(value, id);
    return id;
  }

  private link(row: number, id: number): void {
    const first = this.head[id] as number;
    this.idByRow[row] = id;
    this.prev[row] = NONE;
    this.next[row] = first;
    if (first !== NONE) this.prev[first] = row;
    this.head[id] = row;
    this.count[id] = (this.count[id] as number) + 1;
  }

  private unlink(row: number, id: number): void {
    const before = this.prev[row] as number;
    const after = this.next[row] as number;
    if (before === NONE) this.head[id] = after;
    else this.next[before] = after;
    if (after !== NONE) this.prev[after] = before;
    this.idByRow[row] = NONE;
    this.prev[row] = NONE;
    this.next[row] = NONE;
    this.count[id] = (this.count[id] as number) - 1;
    if (this.count[id] === 0) {
      // The last holder went: the value's string and id are free again.
      this.ids.delete(this.values[id] as string);
      this.values[id] = undefined;
      this.freeIds.push(id);
    }
  }

  private ensureRow(row: number): void {
    if (row < this.idByRow.length) return;
    this.idByRow = grown(this.idByRow, row + 1, NONE);
    this.prev = grown(this.prev, row + 1, NONE);
    this.next = grown(this.next, row + 1, NONE);
  }
}

/** A copy of `array` at least `atLeast` long (doubling), the new part filled with `fill`. */
function grown(array: Int32Array, atLeast: number, fill: number): Int32Array {
  let length = Math.max(16, array.length);
  while (length < atLeast) length *= 2;
  const out = new Int32Array(length).fill(fill);
  out.set(array);
  return out;
}
