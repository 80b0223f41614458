import type { Reporter } from '@cairn/actor-core';
import type { IdIndex } from './log-index';
import {
  decodeRecord,
  encodeRawFrame,
  encodeSegmentHeader,
  FRAME_HEADER_SIZE,
  isBadRecord,
  SEGMENT_HEADER_SIZE,
} from './record-codec';
import type { Segment } from './segment';
import type { SegmentContents } from './segment-scan';

/** A sealed segment whose live bytes fall below this share of its size is compacted. */
const COMPACT_BELOW = 0.5;
/** Truncations look for sparse segments at most this often (compact() looks at once). */
export const COMPACTION_INTERVAL_MS = 5000;
/** Compacted segments are written in frames of about this size. */
const COMPACT_FRAME_BYTES = 1024 * 1024;

/** The sealed segments worth compacting; walks the whole index on the main thread. */
export function sparseSegments(
  index: ReadonlyMap<string, IdIndex>,
  segments: ReadonlyMap<number, Segment>,
  active: Segment,
): Segment[] {
  const live = new Map<number, number>();
  for (const entry of index.values()) entry.liveBytes(live);
  return [...segments.values()].filter(
    (s) =>
      s.sealed &&
      s !== active &&
      !s.problems &&
      !s.deleted &&
      s.liveIds > 0 &&
      (live.get(s.number) ?? 0) < COMPACT_BELOW * (s.end - SEGMENT_HEADER_SIZE),
  );
}

/**
 * Of `candidates`, the segments holding a record that is not live (a truncated or deleted event, a
 * low-water mark record, commit framing the compacted form does without): what an explicit compaction
 * rewrites, so that a deleted id's bytes leave the disk. An id's run that begins below its low-water mark
 * marks its segment (part of it is dead); otherwise a segment whose bytes exceed its live bytes in
 * compacted frames holds dead records too, so a segment rewritten before, with nothing dead since, is
 * left alone. Walks the whole index on the main thread.
 */
export function withDeadRecords(
  index: ReadonlyMap<string, IdIndex>,
  candidates: readonly Segment[],
): Segment[] {
  const live = new Map<number, number>();
  const partlyDead = new Set<number>();
  for (const entry of index.values()) {
    entry.liveBytes(live);
    for (let r = 0; r < entry.runCount; r++) {
      if (entry.firstOf(r) < entry.lowWater && entry.lastOf(r) >= entry.lowWater) {
        partlyDead.add(entry.segmentOf(r));
      }
    }
  }
  return candidates.filter((s) => {
    if (s.end <= SEGMENT_HEADER_SIZE) return false;
    if (partlyDead.has(s.number)) return true;
    const liveBytes = live.get(s.number) ?? 0;
    const frames = liveBytes === 0 ? 0 : Math.floor(liveBytes / COMPACT_FRAME_BYTES) + 1;
    return s.end > SEGMENT_HEADER_SIZE + liveBytes + frames * FRAME_HEADER_SIZE;
  });
}

/**
 * A sealed segment's compacted form (`old` is its whole content): its header, then frames of only its
 * live records, copied as they are, checksums included. Undefined when one of them is bad: the segment
 * is then marked as holding problems and kept as it is.
 */
export function compactedFrames(
  segment: Segment,
  old: Buffer,
  index: ReadonlyMap<string, IdIndex>,
  reporter: Reporter,
): Buffer[] | undefined {
  const frames: Buffer[] = [encodeSegmentHeader(segment.number)];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for (const [id, entry] of index) {
    const idBytes = Buffer.from(id, 'utf8');
    for (let r = 0; r < entry.runCount; r++) {
      if (entry.segmentOf(r) !== segment.number || entry.lastOf(r) < entry.lowWater) continue;
      let at = entry.offsetOf(r);
      const end = at + entry.byteLengthOf(r);
      while (at < end) {
        const record = decodeRecord(old, at, end, idBytes);
        if (isBadRecord(record)) {
          segment.problems = true;
          reporter({
            kind: 'corruption-found',
            message: `${segment.file}: compaction found a bad record at offset ${at} (${record.reason}); the segment is kept as it is`,
            persistenceId: id,
          });
          return undefined;
        }
        if (record.sequenceNr >= entry.lowWater) {
          pending.push(old.subarray(at, at + record.length));
          pendingBytes += record.length;
          if (pendingBytes >= COMPACT_FRAME_BYTES) {
            frames.push(encodeRawFrame(pending));
            pending = [];
            pendingBytes = 0;
          }
        }
        at += record.length;
      }
    }
  }
  if (pending.length > 0) frames.push(encodeRawFrame(pending));
  return frames;
}

/** A compacted segment's runs, per id: [offset, byteLength, first] each, in log order. */
export function runsById(scan: SegmentContents): Map<string, Array<[number, number, number]>> {
  const byId = new Map<string, Array<[number, number, number]>>();
  for (let r = 0; r < scan.runs.length; r += 5) {
    const id = scan.ids[scan.runs[r]!]!;
    const runs = byId.get(id) ?? [];
    runs.push([scan.runs[r + 1]!, scan.runs[r + 2]!, scan.runs[r + 3]!]);
    byId.set(id, runs);
  }
  return byId;
}
