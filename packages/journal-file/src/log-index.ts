/**
 * The in-memory index: for every persistence id, where its events are in the shared log. It is rebuilt
 * on open from the sidecar indexes of sealed segments plus a scan of the rest, and kept current by
 * every commit.
 */

/** A record that failed verification, or a hole in an id's sequence: reads stop there. */
export interface CorruptPoint {
  readonly sequenceNr: number;
  readonly file: string;
  readonly offset: number;
  readonly reason: string;
}

/** Runs are stored 4 numbers each: segment, byte offset, byte length, first sequenceNr. */
const STRIDE = 4;

export class IdIndex {
  /** Runs in sequence order; a run's last sequenceNr is the next run's first minus one (or `top`). */
  private runs = new Float64Array(STRIDE * 2);
  private count = 0;
  /** Highest sequenceNr held by a run (0 when none). */
  top = 0;
  /** Entries below it are truncated (1 = none). */
  lowWater = 1;
  corrupt: CorruptPoint | undefined;

  get runCount(): number {
    return this.count;
  }

  /** Highest sequenceNr ever committed: survives truncation of everything (the mark remembers it). */
  get highest(): number {
    return Math.max(this.top, this.lowWater - 1);
  }

  segmentOf(run: number): number {
    return this.runs[run * STRIDE]!;
  }
  offsetOf(run: number): number {
    return this.runs[run * STRIDE + 1]!;
  }
  byteLengthOf(run: number): number {
    return this.runs[run * STRIDE + 2]!;
  }
  firstOf(run: number): number {
    return this.runs[run * STRIDE + 3]!;
  }
  lastOf(run: number): number {
    return run + 1 < this.count ? this.runs[(run + 1) * STRIDE + 3]! - 1 : this.top;
  }

  /**
   * Adds a run after the existing ones (a run wholly below the low-water mark only advances `top`).
   * Returns the sequenceNr that is missing or repeated when the run does not continue the id (a hole
   * left by corruption), or undefined.
   */
  add(segment: number, offset: number, byteLength: number, first: number, count: number): number | undefined {
    const last = first + count - 1;
    // Runs follow one another exactly, except that records below the low-water mark may be missing:
    // deleted with their segment, or left out when a segment was compacted.
    if (first <= this.top) return first;
    const highestAllowed = Math.max(this.top + 1, this.lowWater);
    const wrong = first > highestAllowed ? highestAllowed : undefined;
    this.top = last;
    if (last < this.lowWater) return wrong;
    if (this.count * STRIDE === this.runs.length) {
      const grown = new Float64Array(this.runs.length * 2);
      grown.set(this.runs);
      this.runs = grown;
    }
    const at = this.count * STRIDE;
    this.runs[at] = segment;
    this.runs[at + 1] = offset;
    this.runs[at + 2] = byteLength;
    this.runs[at + 3] = first;
    this.count++;
    return wrong;
  }

  /** Index of the run holding sequenceNr (or the first one after it), or runCount when none. */
  findRun(sequenceNr: number): number {
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.lastOf(mid) < sequenceNr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Keeps the lowest corrupt point of the id; `winsTies`: replaces one at the same sequenceNr. */
  markCorrupt(point: CorruptPoint, winsTies = false): void {
    if (point.sequenceNr < this.lowWater) return; // truncated: never read
    const current = this.corrupt?.sequenceNr;
    if (current === undefined || point.sequenceNr < current || (winsTies && point.sequenceNr === current))
      this.corrupt = point;
  }

  /**
   * Raises the low-water mark and drops the runs wholly below it. Returns the segments this id no
   * longer has live events in.
   */
  raiseLowWater(mark: number): number[] {
    if (mark <= this.lowWater) return [];
    this.lowWater = mark;
    // A bad record now below the mark is truncated like the rest: reads no longer reach it.
    if (this.corrupt && this.corrupt.sequenceNr < mark) this.corrupt = undefined;
    let drop = 0;
    while (drop < this.count && this.lastOf(drop) < mark) drop++;
    if (drop === 0) return [];
    const keptSegment = drop < this.count ? this.segmentOf(drop) : -1;
    const left: number[] = [];
    for (let r = 0; r < drop; r++) {
      const s = this.segmentOf(r);
      if (s !== keptSegment && left[left.length - 1] !== s) left.push(s);
    }
    const top = this.top;
    this.runs.copyWithin(0, drop * STRIDE, this.count * STRIDE);
    this.count -= drop;
    this.top = top;
    return left;
  }

  /**
   * A repair: forgets every event from `first` on, so `first` is the next sequenceNr. A run holding
   * records on both sides of `first` is cut at `cut` (where record `first` starts; the run's end when a
   * hole follows the run, which then only seems to reach `first`). Returns false,
   * cutting nothing inside it, when such a run exists and `cut` does not fall inside it: the caller then
   * marks the id corrupt at `first` rather than serve the dead records.
   */
  cutBack(first: number, cut: { readonly segment: number; readonly offset: number } | undefined): boolean {
    let keep = this.findRun(first);
    let cutInside = true;
    if (keep < this.count && this.firstOf(keep) < first) {
      const offset = this.offsetOf(keep);
      const inside =
        cut !== undefined &&
        cut.segment === this.segmentOf(keep) &&
        cut.offset > offset &&
        cut.offset <= offset + this.byteLengthOf(keep);
      if (inside) this.runs[keep * STRIDE + 2] = cut.offset - offset;
      cutInside = inside;
      keep++;
    }
    this.count = keep;
    this.top = Math.min(this.top, first - 1);
    if (this.corrupt && this.corrupt.sequenceNr >= first) this.corrupt = undefined;
    return cutInside;
  }

  /**
   * Replaces this id's runs in `segment` (a compacted segment, rewritten at other offsets) with
   * `replacement` ([offset, byteLength, first] each, ascending). Runs wholly below the mark are left out.
   * Returns the number of runs now in the segment, or -1 when the id had none there any more (truncated
   * meanwhile).
   */
  replaceSegmentRuns(segment: number, replacement: ReadonlyArray<readonly [number, number, number]>): number {
    let from = 0;
    while (from < this.count && this.segmentOf(from) !== segment) from++;
    if (from === this.count) return -1;
    let to = from;
    while (to < this.count && this.segmentOf(to) === segment) to++;
    const lastInSegment = this.lastOf(to - 1);
    const kept = replacement.filter((_, i) => {
      const last = i + 1 < replacement.length ? replacement[i + 1]![2] - 1 : lastInSegment;
      return last >= this.lowWater;
    });
    const tail = this.runs.slice(to * STRIDE, this.count * STRIDE);
    const needed = (from + kept.length) * STRIDE + tail.length;
    if (needed > this.runs.length) {
      const grown = new Float64Array(Math.max(needed, this.runs.length * 2));
      grown.set(this.runs.subarray(0, from * STRIDE));
      this.runs = grown;
    }
    let at = from * STRIDE;
    for (const [offset, byteLength, first] of kept) {
      this.runs[at++] = segment;
      this.runs[at++] = offset;
      this.runs[at++] = byteLength;
      this.runs[at++] = first;
    }
    this.runs.set(tail, at);
    this.count = from + kept.length + tail.length / STRIDE;
    return kept.length;
  }

  /** Bytes of this id's runs in each segment that are not wholly below the mark. */
  liveBytes(into: Map<number, number>): void {
    for (let r = 0; r < this.count; r++) {
      if (this.lastOf(r) < this.lowWater) continue;
      const s = this.segmentOf(r);
      into.set(s, (into.get(s) ?? 0) + this.byteLengthOf(r));
    }
  }

  /** The distinct segments holding this id's live runs, ascending. */
  segments(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.count; r++) {
      const s = this.segmentOf(r);
      if (out[out.length - 1] !== s) out.push(s);
    }
    return out;
  }
}

/** The id's entry in `index`, added empty when the id has none yet. */
export function entryOf(index: Map<string, IdIndex>, persistenceId: string): IdIndex {
  let entry = index.get(persistenceId);
  if (!entry) {
    entry = new IdIndex();
    index.set(persistenceId, entry);
  }
  return entry;
}
