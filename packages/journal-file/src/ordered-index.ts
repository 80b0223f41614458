/**
 * The journal's global order in memory: for every event (by ascending position) where its record is
 * (segment, offset, length) and whose it is (id, sequenceNr), plus the positions of each tag. Built on
 * open from the segments' contents (sidecar indexes or scans), extended by every commit, moved by
 * compaction. Truncated events stay in it until a sweep and are skipped by the reader (it checks each
 * id's low-water mark), so truncation costs nothing here.
 *
 * About 40 bytes per event (typed arrays, no object per event).
 */

/** Grows a typed array to hold at least `needed` elements. */
function grow<T extends Float64Array | Uint32Array>(array: T, needed: number): T {
  if (needed <= array.length) return array;
  const grown = new (array.constructor as new (n: number) => T)(Math.max(needed, array.length * 2, 1024));
  grown.set(array);
  return grown;
}

/** A list of positions (ascending), for one tag. */
class PositionList {
  positions = new Float64Array(16);
  count = 0;

  push(position: number): void {
    this.positions = grow(this.positions, this.count + 1);
    this.positions[this.count++] = position;
  }

  /** Index of the first position > after. */
  firstAfter(after: number): number {
    return upperBound(this.positions, this.count, after);
  }
}

/** One event of the order, as the reader gets it. */
export interface OrderedSlot {
  readonly position: number;
  readonly segment: number;
  readonly offset: number;
  readonly length: number;
  readonly persistenceId: string;
  readonly sequenceNr: number;
}

/** An event to add: its place and its record. */
export interface OrderedEvent extends OrderedSlot {
  readonly tags?: readonly string[];
}

export class OrderedIndex {
  private positions = new Float64Array(1024);
  private segments = new Uint32Array(1024);
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private sequenceNrs = new Float64Array(1024);
  private idRefs = new Uint32Array(1024);
  private count = 0;
  private readonly ids: string[] = [];
  private readonly idNumbers = new Map<string, number>();
  private readonly byTag = new Map<string, PositionList>();
  /** Events made unreachable by a repair (their sequenceNrs are given out again): never served. */
  private readonly dead = new Set<number>();

  /** Events in the index (truncated ones included until a sweep). */
  get size(): number {
    return this.count;
  }

  /** The highest position in the index (0 when empty). */
  get last(): number {
    return this.count === 0 ? 0 : this.positions[this.count - 1]!;
  }

  /**
   * Adds events, which must come after every event already in it (a commit's, or an open's sorted
   * list). Throws when they do not: that would break the order every reader relies on.
   */
  add(event: OrderedEvent): void {
    if (event.position <= this.last) {
      throw new Error(`position ${event.position} added after ${this.last}: the global order would break`);
    }
    const n = this.count + 1;
    this.positions = grow(this.positions, n);
    this.segments = grow(this.segments, n);
    this.offsets = grow(this.offsets, n);
    this.lengths = grow(this.lengths, n);
    this.sequenceNrs = grow(this.sequenceNrs, n);
    this.idRefs = grow(this.idRefs, n);
    const i = this.count;
    this.positions[i] = event.position;
    this.segments[i] = event.segment;
    this.offsets[i] = event.offset;
    this.lengths[i] = event.length;
    this.sequenceNrs[i] = event.sequenceNr;
    this.idRefs[i] = this.idNumber(event.persistenceId);
    this.count = n;
    if (event.tags) {
      for (const tag of event.tags) {
        let list = this.byTag.get(tag);
        if (!list) {
          list = new PositionList();
          this.byTag.set(tag, list);
        }
        list.push(event.position);
      }
    }
  }

  /** The record of the event at `position` moved (compaction); false when it is not in the index. */
  move(position: number, offset: number, length: number): boolean {
    const i = this.indexOf(position);
    if (i < 0) return false;
    this.offsets[i] = offset;
    this.lengths[i] = length;
    return true;
  }

  /** A repair made the id's events from `first` on unreachable (their numbers are reused). */
  kill(persistenceId: string, first: number, beforeSegment: number): void {
    const ref = this.idNumbers.get(persistenceId);
    if (ref === undefined) return;
    for (let i = 0; i < this.count; i++) {
      if (this.idRefs[i] === ref && this.sequenceNrs[i]! >= first && this.segments[i]! < beforeSegment) {
        this.dead.add(this.positions[i]!);
      }
    }
  }

  /**
   * Up to `max` events with after < position <= upTo, ascending, of every id (`tag` undefined) or of
   * one tag, leaving out those `skip` says are gone (truncated) and those killed by a repair.
   */
  page(
    after: number,
    upTo: number,
    tag: string | undefined,
    max: number,
    skip: (persistenceId: string, sequenceNr: number) => boolean,
  ): OrderedSlot[] {
    const out: OrderedSlot[] = [];
    if (tag === undefined) {
      for (let i = upperBound(this.positions, this.count, after); i < this.count && out.length < max; i++) {
        if (this.positions[i]! > upTo) break;
        this.collect(i, out, skip);
      }
      return out;
    }
    const list = this.byTag.get(tag);
    if (!list) return out;
    for (let t = list.firstAfter(after); t < list.count && out.length < max; t++) {
      const position = list.positions[t]!;
      if (position > upTo) break;
      const i = this.indexOf(position);
      if (i >= 0) this.collect(i, out, skip);
    }
    return out;
  }

  private collect(
    i: number,
    out: OrderedSlot[],
    skip: (persistenceId: string, sequenceNr: number) => boolean,
  ): void {
    const persistenceId = this.ids[this.idRefs[i]!]!;
    const sequenceNr = this.sequenceNrs[i]!;
    const position = this.positions[i]!;
    if (skip(persistenceId, sequenceNr) || (this.dead.size > 0 && this.dead.has(position))) return;
    out.push({
      position,
      segment: this.segments[i]!,
      offset: this.offsets[i]!,
      length: this.lengths[i]!,
      persistenceId,
      sequenceNr,
    });
  }

  private indexOf(position: number): number {
    const i = upperBound(this.positions, this.count, position - 1);
    return i < this.count && this.positions[i] === position ? i : -1;
  }

  private idNumber(persistenceId: string): number {
    let n = this.idNumbers.get(persistenceId);
    if (n === undefined) {
      n = this.ids.length;
      this.ids.push(persistenceId);
      this.idNumbers.set(persistenceId, n);
    }
    return n;
  }
}

/** Index of the first element of `values[0, count)` (ascending) that is > target. */
function upperBound(values: Float64Array, count: number, target: number): number {
  let lo = 0;
  let hi = count;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= target) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
