import {
  checkSegmentHeader,
  decodeFrameHeader,
  decodeRecord,
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  isBadRecord,
  isEventKind,
  recordTags,
  SEGMENT_HEADER_SIZE,
  segmentVersion,
} from './record-codec';

/**
 * What one segment holds, in the compact form the sidecar index stores and the IO worker sends back:
 * ids in a table, runs and marks in flat number arrays.
 */
export interface SegmentContents {
  readonly segment: number;
  /** Persistence ids referenced by `runs` and `marks`, by position. */
  readonly ids: string[];
  /**
   * Runs of consecutive events of one id stored back to back, 5 numbers each:
   * id index, byte offset in the segment, byte length, first sequenceNr, event count. In log order.
   */
  readonly runs: Float64Array;
  /** Low-water marks, 2 numbers each: id index, mark. In log order. */
  readonly marks: Float64Array;
  /**
   * Every event record, 5 numbers each: id index, byte offset, byte length, sequenceNr, position (0 for
   * a format-1 record, which has none). In log order. What the journal's global-order index is built from.
   */
  readonly events: Float64Array;
  /** Tags referenced by `tagged`. */
  readonly tags: string[];
  /** The tags of events, 2 numbers each: event number (in `events`), tag index. */
  readonly tagged: Float64Array;
  /** End of the last whole frame: where the next frame goes. */
  readonly end: number;
}

/** A stretch of the segment that does not verify but is followed by frames that do: corruption. */
export interface ScanProblem {
  readonly offset: number;
  readonly reason: string;
  /** Read from the bad record's unverified header, when it could be. */
  readonly persistenceId?: string;
  readonly sequenceNr?: number;
}

export interface SegmentScan extends SegmentContents {
  readonly size: number;
  readonly problems: ScanProblem[];
  /** Set when the segment ends in bytes that do not form a whole frame (a torn write): cut back to `end`. */
  readonly torn?: { readonly offset: number; readonly reason: string };
  /** Set when the segment header itself is unusable. */
  readonly badHeader?: string;
  /** The segment header's format version (when the header is good). */
  readonly version?: number;
}

class RunCollector {
  readonly ids: string[] = [];
  private readonly idIndex = new Map<string, number>();
  private runs: number[] = [];
  private marks: number[] = [];
  private events: number[] = [];
  readonly tags: string[] = [];
  private readonly tagIndex = new Map<string, number>();
  private tagged: number[] = [];
  // The run being extended: a record continues it when it is the same id, the next sequenceNr, adjacent.
  private open = -1;
  private openEnd = 0;
  private openNext = 0;

  private indexOf(id: string): number {
    let i = this.idIndex.get(id);
    if (i === undefined) {
      i = this.ids.length;
      this.ids.push(id);
      this.idIndex.set(id, i);
    }
    return i;
  }

  event(
    id: string,
    offset: number,
    length: number,
    sequenceNr: number,
    position: number,
    tags: readonly string[] | undefined,
  ): void {
    const index = this.indexOf(id);
    if (tags) {
      const event = this.events.length / 5;
      for (const tag of tags) {
        let t = this.tagIndex.get(tag);
        if (t === undefined) {
          t = this.tags.length;
          this.tags.push(tag);
          this.tagIndex.set(tag, t);
        }
        this.tagged.push(event, t);
      }
    }
    this.events.push(index, offset, length, sequenceNr, position);
    const r = this.open;
    if (r >= 0 && this.runs[r] === index && this.openEnd === offset && this.openNext === sequenceNr) {
      this.runs[r + 2]! += length;
      this.runs[r + 4]! += 1;
    } else {
      this.open = this.runs.length;
      this.runs.push(index, offset, length, sequenceNr, 1);
    }
    this.openEnd = offset + length;
    this.openNext = sequenceNr + 1;
  }

  mark(id: string, lowWater: number): void {
    this.marks.push(this.indexOf(id), lowWater);
    this.open = -1;
  }

  /** Frame boundaries end runs: a run never spans two frames, so a cut frame never halves one. */
  endFrame(): void {
    this.open = -1;
  }

  /** Remembers where the collected data stood, to roll back a frame that turns out bad. */
  checkpoint(): { runs: number; marks: number; events: number; tagged: number } {
    return {
      runs: this.runs.length,
      marks: this.marks.length,
      events: this.events.length,
      tagged: this.tagged.length,
    };
  }

  rollback(to: { runs: number; marks: number; events: number; tagged: number }): void {
    this.runs.length = to.runs;
    this.marks.length = to.marks;
    this.events.length = to.events;
    this.tagged.length = to.tagged;
    this.open = -1;
  }

  finish(): Omit<SegmentContents, 'segment' | 'end'> {
    return {
      ids: this.ids,
      runs: Float64Array.from(this.runs),
      marks: Float64Array.from(this.marks),
      events: Float64Array.from(this.events),
      tags: this.tags,
      tagged: Float64Array.from(this.tagged),
    };
  }
}

/** Parses one frame fully; collects its records into `into` only when every record verifies. */
function readFrame(
  bytes: Buffer,
  at: number,
  into: RunCollector,
): { ok: true; end: number } | { ok: false; problem: ScanProblem; salvage: () => void } {
  const header = decodeFrameHeader(bytes, at, bytes.length);
  if ('reason' in header)
    return { ok: false, problem: { offset: at, reason: header.reason }, salvage: () => {} };
  const end = at + FRAME_HEADER_SIZE + header.bodyLength;
  const mark = into.checkpoint();
  let pos = at + FRAME_HEADER_SIZE;
  let count = 0;
  let firstBad: ScanProblem | undefined;
  // Records that verify in a frame that does not are collected only by `salvage` (mid-log corruption:
  // the frame was acknowledged, its good records are served; a torn frame is cut whole instead).
  const good: Array<() => void> = [];
  while (pos < end) {
    const record = decodeRecord(bytes, pos, end);
    if (isBadRecord(record)) {
      firstBad ??= {
        offset: pos,
        reason: record.reason,
        ...(record.persistenceId === undefined ? {} : { persistenceId: record.persistenceId }),
        ...(record.sequenceNr === undefined ? {} : { sequenceNr: record.sequenceNr }),
      };
      if (record.length === undefined) break;
      pos += record.length;
      count++;
      continue;
    }
    const at0 = pos;
    if (isEventKind(record.kind)) {
      const tags = recordTags(bytes, at0, idLengthAt(bytes, at0));
      good.push(() =>
        into.event(record.persistenceId, at0, record.length, record.sequenceNr, record.position, tags),
      );
    } else {
      good.push(() => into.mark(record.persistenceId, record.sequenceNr));
    }
    pos += record.length;
    count++;
  }
  if (!firstBad && count !== header.count) {
    firstBad = { offset: at, reason: `frame holds ${count} records, its header says ${header.count}` };
  }
  const collect = () => {
    for (const add of good) add();
    into.endFrame();
  };
  if (firstBad) {
    into.rollback(mark);
    return { ok: false, problem: firstBad, salvage: collect };
  }
  collect();
  return { ok: true, end };
}

/** The offset of the next frame at or after `from` that verifies whole, or -1. */
function nextGoodFrame(bytes: Buffer, from: number): number {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(FRAME_MAGIC, 0);
  let at = bytes.indexOf(magic, from);
  while (at >= 0) {
    if (readFrame(bytes, at, new RunCollector()).ok) return at;
    at = bytes.indexOf(magic, at + 1);
  }
  return -1;
}

/**
 * Reads a whole segment and sorts it into whole frames, a torn tail (bad bytes with nothing good after
 * them: a write cut by a crash) and problems (bad bytes followed by good frames: corruption). Pure: the
 * caller decides what to repair.
 */
export function scanSegment(segment: number, bytes: Buffer): SegmentScan {
  const collector = new RunCollector();
  const problems: ScanProblem[] = [];
  const headerProblem = checkSegmentHeader(bytes.subarray(0, SEGMENT_HEADER_SIZE), segment);
  if (headerProblem) {
    return { segment, ...collector.finish(), end: 0, size: bytes.length, problems, badHeader: headerProblem };
  }
  const version = segmentVersion(bytes.subarray(0, SEGMENT_HEADER_SIZE));
  let pos = SEGMENT_HEADER_SIZE;
  let end = pos;
  let torn: SegmentScan['torn'];
  while (pos < bytes.length) {
    const frame = readFrame(bytes, pos, collector);
    if (frame.ok) {
      pos = frame.end;
      end = pos;
      continue;
    }
    const next = nextGoodFrame(bytes, pos + 1);
    if (next < 0) {
      torn = { offset: pos, reason: frame.problem.reason };
      break;
    }
    frame.salvage();
    problems.push(frame.problem);
    pos = next;
  }
  return {
    segment,
    ...collector.finish(),
    end,
    size: bytes.length,
    problems,
    version,
    ...(torn ? { torn } : {}),
  };
}

function idLengthAt(bytes: Buffer, at: number): number {
  return bytes.readUInt16LE(at + 12);
}
