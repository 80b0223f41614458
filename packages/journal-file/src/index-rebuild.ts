import * as path from 'node:path';
import type { Reporter } from '@cairn/actor-core';
import type { RepairEntry } from './index-file';
import { entryOf, type IdIndex } from './log-index';
import { parseSegmentFileName, segmentFileName } from './record-codec';
import { applyRepair } from './repair';
import type { Segment } from './segment';
import type { SegmentContents, SegmentScan } from './segment-scan';

/** A segment whose scan on open found corrupt records. */
export interface CorruptSegment {
  readonly file: string;
  readonly scan: SegmentScan;
}

/** What an open found in the directory, from which the index is rebuilt. */
export interface FoundOnOpen {
  /** The low-water marks the checkpoint saved. */
  readonly marks: ReadonlyArray<readonly [string, number]>;
  /** The repairs the checkpoint lists. */
  readonly repairs: readonly RepairEntry[];
  /** What each segment holds, in log order (from its sidecar index or a scan). */
  readonly contents: readonly SegmentContents[];
  /** The segments whose scan found corrupt records, reported here. */
  readonly problemsFound: readonly CorruptSegment[];
}

/**
 * Rebuilds the in-memory index on open: every id's low-water mark, runs, repairs and corruption
 * points, and every segment's count of ids with live events in it.
 */
export function rebuildIndex(
  index: Map<string, IdIndex>,
  segments: ReadonlyMap<number, Segment>,
  found: FoundOnOpen,
  dir: string,
  reporter: Reporter,
): void {
  const { contents, repairs, problemsFound } = found;
  const marks = new Map(found.marks);
  // Marks first (the newest of each id wins), so that runs wholly below them are skipped as they load.
  for (const c of contents) {
    for (let m = 0; m < c.marks.length; m += 2) {
      const id = c.ids[c.marks[m]!]!;
      marks.set(id, Math.max(marks.get(id) ?? 1, c.marks[m + 1]!));
    }
  }
  for (const [id, mark] of marks) entryOf(index, id).lowWater = mark;
  // Repairs take effect in log order: each when the runs reach the segment it began.
  const pendingRepairs = [...repairs].sort((a, b) => a.since - b.since);
  const applyRepairsBefore = (segment: number) => {
    while (pendingRepairs.length > 0 && pendingRepairs[0]!.since <= segment) {
      const repair = pendingRepairs.shift()!;
      applyRepair(entryOf(index, repair.id), repair, dir);
    }
  };
  for (const c of contents) {
    applyRepairsBefore(c.segment);
    const file = path.join(dir, segmentFileName(c.segment));
    for (let r = 0; r < c.runs.length; r += 5) {
      const id = c.ids[c.runs[r]!]!;
      const entry = entryOf(index, id);
      const [offset, byteLength, first, count] = [
        c.runs[r + 1]!,
        c.runs[r + 2]!,
        c.runs[r + 3]!,
        c.runs[r + 4]!,
      ];
      const wrong = entry.add(c.segment, offset, byteLength, first, count);
      if (wrong !== undefined) {
        entry.markCorrupt({
          sequenceNr: wrong,
          file,
          offset,
          reason:
            wrong < first
              ? `sequenceNr ${wrong} is missing: the next record of the id on file is sequenceNr ${first}`
              : `sequenceNr ${first} is stored twice`,
        });
      }
    }
  }
  applyRepairsBefore(Number.POSITIVE_INFINITY);
  // Records that failed verification: a hole they leave is reported as them, not as a gap (they win
  // ties). Marked after the runs so that those a repair cut off (quarantined) no longer count.
  for (const { file, scan } of problemsFound) {
    const segment = parseSegmentFileName(path.basename(file))!;
    for (const problem of scan.problems) {
      const { persistenceId, sequenceNr } = problem;
      const cutBy =
        persistenceId !== undefined && sequenceNr !== undefined
          ? repairs.filter((r) => r.id === persistenceId && segment < r.since && sequenceNr >= r.first)
          : [];
      const repaired = cutBy.length > 0;
      if (persistenceId !== undefined && sequenceNr !== undefined && !repaired) {
        const entry = entryOf(index, persistenceId);
        if (sequenceNr >= entry.lowWater) {
          entry.markCorrupt({ sequenceNr, file, offset: problem.offset, reason: problem.reason }, true);
        }
      }
      // A cut an operator acknowledged is history, not news: nothing to report on every open.
      if (repaired && cutBy.every((r) => r.acknowledged !== undefined)) continue;
      reporter({
        kind: 'corruption-found',
        message:
          `${file}: corrupt data at offset ${problem.offset} (${problem.reason})` +
          (persistenceId === undefined
            ? ''
            : `, probably "${persistenceId}" sequenceNr ${sequenceNr ?? '?'}`) +
          (repaired
            ? '; a repair already cut it off (its bytes are in the quarantine file); nothing was deleted. ' +
              `Once checked, \`cairn repair --acknowledge ${persistenceId}\` records the cut as history and ends this report`
            : '; reads of the affected ids stop there; nothing was deleted'),
        ...(persistenceId === undefined ? {} : { persistenceId }),
      });
    }
  }
  for (const entry of index.values()) {
    for (const s of entry.segments()) segments.get(s)!.liveIds++;
  }
}
