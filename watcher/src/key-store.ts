// The watcher's object keys packed into bytes: each `namespace/name` as an interned namespace id and the name's bytes in an arena, found through an open-addressed table of row numbers — instead of a Map of strings.
//
// Why: a Map from key strings to rows costs, per object on 64-bit V8, the key (a cons string over a
// `namespace/` string and the name, about 90 B) and the Map's own entry (about 45 B): more than
// everything else the watcher keeps. Here a key costs its name's bytes, 8 bytes of row data (the
// name's place in the arena, its length and its namespace's id) and about 7 bytes of hash table —
// about 25 B for a typical name. Namespaces are few and shared, so each is kept once.
//
// Rows are numbered densely from 0 and reused after `remove`; the table that owns the rows keeps its
// columns by the same numbers. Keys the packing does not fit (a name of more than 255 bytes or with a
// character above U+00FF) go to a plain Map beside it, with rows from the same numbering.

const ARENA_CHUNK = 1 << 16;
const ROW_CHUNK_BITS = 10;
const ROW_CHUNK = 1 << ROW_CHUNK_BITS;
const ROW_MASK = ROW_CHUNK - 1;
/** The id a key without a `/` carries: the whole key is its "name". */
const NO_NAMESPACE = 0;
const MAX_NAME_BYTES = 255;
/** Namespace ids fit 24 bits, and the highest is never given so that no packed key's meta equals FREE_META or WIDE_META. */
const MAX_NAMESPACES = (1 << 24) - 1;
const EMPTY = 0;
const FREE_META = 0xffffffff;
const WIDE_META = 0xfffffffe;

export class KeyStore {
  /** Name bytes, in chunks of 64 KiB that a name never spans. */
  private arena: Uint8Array[] = [new Uint8Array(1024)];
  private arenaUsed = 0;
  /** Bytes in the arena that belong to removed keys; the arena is compacted when they outweigh the live ones. */
  private garbage = 0;
  private liveBytes = 0;
  /** Per row, in chunks of 1,024 rows: where its name starts in the arena (chunk × 64 Ki + offset). */
  private offsets: Uint32Array[] = [];
  /** Per row: namespace id << 8 | name length; FREE_META for a free row, WIDE_META for a key in `wide`. */
  private metas: Uint32Array[] = [];
  /** Open addressing with linear probing: row + 1, or EMPTY. */
  private slots = new Uint32Array(64);
  private readonly namespaceIds = new Map<string, number>();
  private readonly namespaces: string[] = [''];
  private readonly wide = new Map<string, number>();
  private readonly wideByRow = new Map<number, string>();
  private readonly free: number[] = [];
  private nextRow = 0;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** One past the highest row ever handed out: every live row is below it. */
  get rowLimit(): number {
    return this.nextRow;
  }

  /** The row of `key`, or undefined. */
  find(key: string): number | undefined {
    const split = this.split(key);
    if (split === undefined) return this.wide.get(key);
    const { namespaceId, nameStart } = split;
    // A namespace never interned: the key is absent, or (past MAX_NAMESPACES namespaces) kept beside the packed ones.
    if (namespaceId < 0) return this.wide.get(key);
    const slot = this.probe(key, namespaceId, nameStart, hashKey(key, namespaceId, nameStart));
    const row = (this.slots[slot] as number) - 1;
    return row < 0 ? undefined : row;
  }

  /** Adds `key`, which must not be present, and returns its row. */
  add(key: string): number {
    const row = this.takeRow();
    const split = this.split(key, true);
    if (split === undefined) {
      this.wide.set(key, row);
      this.wideByRow.set(row, key);
      this.setMeta(row, WIDE_META);
      this.count++;
      return row;
    }
    const { namespaceId, nameStart } = split;
    const length = key.length - nameStart;
    if ((this.arenaUsed % ARENA_CHUNK) + length > ARENA_CHUNK) this.arenaUsed = Math.ceil(this.arenaUsed / ARENA_CHUNK) * ARENA_CHUNK;
    const at = this.arenaUsed;
    const bytes = this.arenaBytes(at, length);
    const base = at % ARENA_CHUNK;
    for (let i = 0; i < length; i++) bytes[base + i] = key.charCodeAt(nameStart + i);
    this.arenaUsed += length;
    this.liveBytes += length;
    (this.offsets[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] = at;
    this.setMeta(row, ((namespaceId << 8) | length) >>> 0);
    if ((this.count + 1) * 10 > this.slots.length * 7) this.rehash(Math.ceil((this.slots.length * 3) / 2));
    const slot = this.probe(key, namespaceId, nameStart, hashKey(key, namespaceId, nameStart));
    this.slots[slot] = row + 1;
    this.count++;
    return row;
  }

  /** Removes the key held at `row`; the row is free for a later `add`. */
  remove(row: number): void {
    const meta = this.metaOf(row);
    if (meta === FREE_META) return;
    if (meta === WIDE_META) {
      const key = this.wideByRow.get(row);
      if (key !== undefined) this.wide.delete(key);
      this.wideByRow.delete(row);
    } else {
      this.deleteSlot(row);
      this.garbage += meta & 0xff;
      this.liveBytes -= meta & 0xff;
    }
    this.setMeta(row, FREE_META);
    this.free.push(row);
    this.count--;
    if (this.garbage > ARENA_CHUNK && this.garbage > this.liveBytes) this.compact();
  }

  /** The key held at `row`, or undefined for a free row. */
  keyAt(row: number): string | undefined {
    if (row < 0 || row >= this.nextRow) return undefined;
    const meta = this.metaOf(row);
    if (meta === FREE_META) return undefined;
    if (meta === WIDE_META) return this.wideByRow.get(row);
    const at = (this.offsets[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] as number;
    const bytes = this.arena[Math.floor(at / ARENA_CHUNK)] as Uint8Array;
    const base = at % ARENA_CHUNK;
    const name = String.fromCharCode.apply(null, bytes.subarray(base, base + (meta & 0xff)) as unknown as number[]);
    const namespaceId = meta >>> 8;
    return namespaceId === NO_NAMESPACE ? name : `${this.namespaces[namespaceId]}/${name}`;
  }

  /** Whether `row` holds a key. */
  has(row: number): boolean {
    return row >= 0 && row < this.nextRow && this.metaOf(row) !== FREE_META;
  }

  /** Every live row, in row order. */
  *rows(): Generator<number> {
    for (let row = 0; row < this.nextRow; row++) if (this.metaOf(row) !== FREE_META) yield row;
  }

  /**
   * The namespace id and where the name starts; a namespace id of -1 when `intern` is false and the namespace
   * was never seen (so the key cannot be present); undefined for a key the packing does not fit.
   */
  private split(key: string, intern = false): { namespaceId: number; nameStart: number } | undefined {
    const slash = key.indexOf('/');
    const nameStart = slash + 1;
    const length = key.length - nameStart;
    if (length === 0 || length > MAX_NAME_BYTES) return undefined;
    for (let i = nameStart; i < key.length; i++) if (key.charCodeAt(i) > 0xff) return undefined;
    if (slash < 0) return { namespaceId: NO_NAMESPACE, nameStart };
    const namespace = key.slice(0, slash);
    let namespaceId = this.namespaceIds.get(namespace);
    if (namespaceId === undefined) {
      if (!intern) return { namespaceId: -1, nameStart };
      if (this.namespaces.length >= MAX_NAMESPACES) return undefined;
      namespaceId = this.namespaces.length;
      this.namespaces.push(namespace);
      this.namespaceIds.set(namespace, namespaceId);
    }
    return { namespaceId, nameStart };
  }

  /** The slot holding the key (namespace id, name from `nameStart` of `key`), or the empty slot where it would go. */
  private probe(key: string, namespaceId: number, nameStart: number, hash: number): number {
    const capacity = this.slots.length;
    const length = key.length - nameStart;
    for (let slot = hash % capacity; ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const row = (this.slots[slot] as number) - 1;
      if (row < 0) return slot;
      const meta = this.metaOf(row);
      if (meta >>> 8 !== namespaceId || (meta & 0xff) !== length) continue;
      const at = (this.offsets[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] as number;
      const bytes = this.arena[Math.floor(at / ARENA_CHUNK)] as Uint8Array;
      const base = at % ARENA_CHUNK;
      let same = true;
      for (let i = 0; i < length && same; i++) same = bytes[base + i] === key.charCodeAt(nameStart + i);
      if (same) return slot;
    }
  }

  /** The hash of the key stored at `row`, computed from its bytes (for rehashing and deletion). */
  private hashOfRow(row: number): number {
    const meta = this.metaOf(row);
    const at = (this.offsets[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] as number;
    const bytes = this.arena[Math.floor(at / ARENA_CHUNK)] as Uint8Array;
    const base = at % ARENA_CHUNK;
    let hash = mixNamespace(meta >>> 8);
    for (let i = 0; i < (meta & 0xff); i++) hash = Math.imul(hash ^ (bytes[base + i] as number), 0x01000193);
    return hash >>> 0;
  }

  /** Empties `row`'s slot, moving later slots of the same run back (backward-shift deletion: no tombstones). */
  private deleteSlot(row: number): void {
    const capacity = this.slots.length;
    let hole = this.hashOfRow(row) % capacity;
    while (this.slots[hole] !== row + 1) hole = hole + 1 === capacity ? 0 : hole + 1;
    for (let slot = hole + 1 === capacity ? 0 : hole + 1; ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const held = this.slots[slot] as number;
      if (held === EMPTY) break;
      const home = this.hashOfRow(held - 1) % capacity;
      // Move it back unless its home lies cyclically in (hole, slot].
      const stays = hole <= slot ? home > hole && home <= slot : home > hole || home <= slot;
      if (!stays) {
        this.slots[hole] = held;
        hole = slot;
      }
    }
    this.slots[hole] = EMPTY;
  }

  private rehash(capacity: number): void {
    const old = this.slots;
    this.slots = new Uint32Array(capacity);
    for (const held of old) {
      if (held === EMPTY) continue;
      let slot = this.hashOfRow(held - 1) % capacity;
      while (this.slots[slot] !== EMPTY) slot = slot + 1 === capacity ? 0 : slot + 1;
      this.slots[slot] = held;
    }
  }

  /** Rewrites the arena with only the live names, in row order. */
  private compact(): void {
    const old = this.arena;
    this.arena = [new Uint8Array(Math.min(ARENA_CHUNK, Math.max(1024, this.liveBytes)))];
    this.arenaUsed = 0;
    for (let row = 0; row < this.nextRow; row++) {
      const meta = this.metaOf(row);
      if (meta === FREE_META || meta === WIDE_META) continue;
      const length = meta & 0xff;
      const offsets = this.offsets[row >>> ROW_CHUNK_BITS] as Uint32Array;
      const from = offsets[row & ROW_MASK] as number;
      if ((this.arenaUsed % ARENA_CHUNK) + length > ARENA_CHUNK) this.arenaUsed = Math.ceil(this.arenaUsed / ARENA_CHUNK) * ARENA_CHUNK;
      const to = this.arenaUsed;
      const source = old[Math.floor(from / ARENA_CHUNK)] as Uint8Array;
      this.arenaBytes(to, length).set(source.subarray(from % ARENA_CHUNK, (from % ARENA_CHUNK) + length), to % ARENA_CHUNK);
      offsets[row & ROW_MASK] = to;
      this.arenaUsed += length;
    }
    this.garbage = 0;
  }

  /** The arena chunk that bytes [at, at + length) fall in, grown or added as needed. */
  private arenaBytes(at: number, length: number): Uint8Array {
    const index = Math.floor(at / ARENA_CHUNK);
    while (this.arena.length <= index) this.arena.push(new Uint8Array(ARENA_CHUNK));
    let chunk = this.arena[index] as Uint8Array;
    const end = (at % ARENA_CHUNK) + length;
    if (end > chunk.length) {
      const grown = new Uint8Array(Math.min(ARENA_CHUNK, Math.max(end, chunk.length * 2)));
      grown.set(chunk);
      this.arena[index] = grown;
      chunk = grown;
    }
    return chunk;
  }

  private takeRow(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const row = this.nextRow++;
    if (row >>> ROW_CHUNK_BITS >= this.metas.length) {
      this.offsets.push(new Uint32Array(ROW_CHUNK));
      this.metas.push(new Uint32Array(ROW_CHUNK).fill(FREE_META));
    }
    return row;
  }

  private metaOf(row: number): number {
    return (this.metas[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] as number;
  }

  private setMeta(row: number, meta: number): void {
    (this.metas[row >>> ROW_CHUNK_BITS] as Uint32Array)[row & ROW_MASK] = meta;
  }
}

/** FNV-1a 32 seeded with the namespace id, over the name's character codes (bytes, for names the packing takes). */
function hashKey(key: string, namespaceId: number, nameStart: number): number {
  let hash = mixNamespace(namespaceId);
  for (let i = nameStart; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

function mixNamespace(namespaceId: number): number {
  return Math.imul(0x811c9dc5 ^ namespaceId, 0x01000193);
}
