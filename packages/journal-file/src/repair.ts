import * as path from 'node:path';
import {
  crc32,
  isPersistenceError,
  type JournalCorruptedError,
  type MessageJournal,
  StorageError,
} from '@cairn/actor-core';
import type { RepairEntry } from './index-file';
import type { JournalIo } from './journal-io';
import type { IdIndex } from './log-index';
import type { LogReader } from './log-reader';
import {
  decodeRecord,
  isBadRecord,
  parseSegmentFileName,
  RECORD_HEADER_SIZE,
  SEGMENT_HEADER_SIZE,
  segmentFileName,
} from './record-codec';
import type { Segment } from './segment';

/** What `repairAfterCorruption` cut, and where the cut bytes went. */
export interface CorruptionRepair {
  /** The last good sequenceNr kept: highestSequenceNr afterwards, and the next append is this + 1. */
  readonly keptThrough: number;
  /** The sequenceNrs cut (the first unreadable one through the old highest), first..last. */
  readonly removed: { readonly first: number; readonly last: number } | undefined;
  /** The quarantine file holding the cut records byte for byte (absolute path). */
  readonly quarantine: string;
  /** Bytes copied into the quarantine file (the records, without its header). */
  readonly bytes: number;
  /** Why the first cut record was unreadable, as the read reported it. */
  readonly reason: string;
}

/** The directory, inside the journal's, of the files holding records cut by repairs. */
export const QUARANTINE_DIR = 'quarantine';
/** Damaged bytes whose extent is unknown are quarantined up to this much. */
const QUARANTINE_UNKNOWN_EXTENT = 64 * 1024;

/** A stretch of one segment that a repair copies into the quarantine file. */
interface DeadRange {
  readonly segment: Segment;
  readonly offset: number;
  readonly length: number;
  readonly first: number;
  readonly last: number;
  readonly note?: string;
}

/** The parts of the journal a repair reads the log and writes its quarantine file through. */
export interface RepairLog {
  readonly dir: string;
  readonly io: JournalIo;
  readonly segments: ReadonlyMap<number, Segment>;
  readonly reader: Pick<LogReader, 'readSegment'>;
}

/** The records a repair is about to cut, once copied into their quarantine file. */
export interface Quarantined {
  /** The first sequenceNr cut (the first unreadable one). */
  readonly first: number;
  /** The last sequenceNr cut (the id's old highest, or `first`). */
  readonly last: number;
  /** Where record `first` starts inside the run holding good records before it (see RepairEntry.cut). */
  readonly cut: { segment: number; offset: number } | undefined;
  /** When the repair began (ms since the epoch). */
  readonly at: number;
  /** The quarantine file, relative to the journal directory (as the checkpoint names it). */
  readonly file: string;
  /** The quarantine file (absolute path). */
  readonly quarantine: string;
  /** Bytes copied into the quarantine file (the records, without its header). */
  readonly bytes: number;
}

/** The read failure that stops the id, or undefined when every event reads back (and decodes). */
export async function firstUnreadable(
  journal: Pick<MessageJournal, 'readFrom'>,
  persistenceId: string,
): Promise<(JournalCorruptedError & { sequenceNr: number }) | undefined> {
  try {
    for await (const _ of journal.readFrom(persistenceId, 1)) {
      // Read to the end: every record verified and decoded.
    }
    return undefined;
  } catch (e) {
    if (
      isPersistenceError(e, 'ERR_JOURNAL_CORRUPTED') &&
      (e as JournalCorruptedError).persistenceId === persistenceId &&
      (e as JournalCorruptedError).sequenceNr !== undefined
    ) {
      return e as JournalCorruptedError & { sequenceNr: number };
    }
    throw e;
  }
}

/**
 * Copies the id's records from the first unreadable one (`failure`) on into a new quarantine file,
 * complete and synced before it resolves; the log itself is not changed yet.
 */
export async function quarantineDeadRecords(
  log: RepairLog,
  persistenceId: string,
  entry: IdIndex,
  failure: JournalCorruptedError & { sequenceNr: number },
): Promise<Quarantined> {
  const first = failure.sequenceNr;
  const { ranges, cut } = await deadRanges(log, persistenceId, entry, first, failure);
  const last = Math.max(entry.top, first);
  const at = Date.now();
  const name = `${new Date(at).toISOString().replace(/[:.]/g, '-')}-${quarantineName(persistenceId)}.records`;
  const quarantine = path.join(log.dir, QUARANTINE_DIR, name);
  const parts: Buffer[] = [];
  for (const range of ranges) {
    parts.push(
      await log.reader.readSegment(range.segment, range.offset, range.length, persistenceId, range.first),
    );
  }
  const bytes = parts.reduce((n, p) => n + p.length, 0);
  const header = {
    format: 'cairn-quarantine/1',
    what:
      `records of "${persistenceId}" that repairAfterCorruption cut off (sequenceNr ${first}..${last}), ` +
      'copied byte for byte from the journal segments, in the record layout of src/record-codec.ts; ' +
      'the ranges follow this line back to back, in the order listed',
    persistenceId,
    journal: log.dir,
    keptThrough: first - 1,
    removed: { first, last },
    reason: failure.message,
    repairedAt: new Date(at).toISOString(),
    ranges: ranges.map((r) => ({
      file: r.segment.file,
      offset: r.offset,
      length: r.length,
      sequenceNrs: r.first === r.last ? `${r.first}` : `${r.first}..${r.last}`,
      ...(r.note ? { note: r.note } : {}),
    })),
    bytes,
  };
  await log.io.run('writeQuarantine', {
    dir: log.dir,
    file: quarantine,
    bytes: Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, 'utf8'), ...parts]),
  });
  return { first, last, cut, at, file: path.join(QUARANTINE_DIR, name), quarantine, bytes };
}

/**
 * The bytes of the id from record `first` on: the rest of the run holding it (found by stepping over
 * the good records before it), every later run, and the damaged record itself when the index does not
 * hold it (a scan left it out).
 */
async function deadRanges(
  log: RepairLog,
  persistenceId: string,
  entry: IdIndex,
  first: number,
  failure: JournalCorruptedError,
): Promise<{ ranges: DeadRange[]; cut: { segment: number; offset: number } | undefined }> {
  const ranges: DeadRange[] = [];
  let cut: { segment: number; offset: number } | undefined;
  const idBytes = Buffer.from(persistenceId, 'utf8');
  let r = entry.findRun(first);
  if (r < entry.runCount && entry.firstOf(r) < first) {
    const segment = log.segments.get(entry.segmentOf(r))!;
    const offset = entry.offsetOf(r);
    const length = entry.byteLengthOf(r);
    const bytes = await log.reader.readSegment(segment, offset, length, persistenceId, entry.firstOf(r));
    let at = 0;
    for (let seq = entry.firstOf(r); seq < first; seq++) {
      const record = decodeRecord(bytes, at, length, idBytes);
      if (isBadRecord(record)) {
        throw new StorageError(
          `${segment.file}: record ${seq} of "${persistenceId}" at offset ${offset + at} read back good a moment ago and is now bad (${record.reason}); nothing was changed`,
        );
      }
      at += record.length;
    }
    cut = { segment: segment.number, offset: offset + at };
    // at === length: record `first` is not in this run (a hole follows it); nothing of it is cut.
    if (at < length) {
      ranges.push({ segment, offset: offset + at, length: length - at, first, last: entry.lastOf(r) });
    }
    r++;
  }
  for (; r < entry.runCount; r++) {
    const segment = log.segments.get(entry.segmentOf(r));
    if (!segment) continue; // a segment that is gone: nothing of it to keep (reads named it)
    const runFirst = entry.firstOf(r);
    ranges.push({
      segment,
      offset: entry.offsetOf(r),
      length: entry.byteLengthOf(r),
      first: runFirst,
      last: entry.lastOf(r),
    });
  }
  // A record the scan could not verify is not in any run: keep its bytes too, as far as they go.
  const number = failure.file ? parseSegmentFileName(path.basename(failure.file)) : undefined;
  const damaged = number === undefined ? undefined : log.segments.get(number);
  const offset = failure.offset;
  if (
    damaged &&
    offset !== undefined &&
    offset >= SEGMENT_HEADER_SIZE &&
    offset < damaged.end &&
    !ranges.some((g) => g.segment === damaged && offset >= g.offset && offset < g.offset + g.length)
  ) {
    const header = await log.reader.readSegment(
      damaged,
      offset,
      Math.min(RECORD_HEADER_SIZE, damaged.end - offset),
      persistenceId,
      first,
    );
    const next = ranges.find((g) => g.segment === damaged && g.offset > offset)?.offset ?? damaged.end;
    const stated = header.length >= 4 ? header.readUInt32LE(0) : 0;
    const known = stated >= RECORD_HEADER_SIZE && offset + stated <= next;
    const length = known ? stated : Math.min(next - offset, QUARANTINE_UNKNOWN_EXTENT);
    ranges.push({
      segment: damaged,
      offset,
      length,
      first,
      last: first,
      note: known
        ? 'the damaged record, by the length its header states'
        : 'damaged bytes whose extent is unknown: up to the next record of the id, at most 64 KiB; may hold bytes of other ids',
    });
    ranges.sort((a, b) => a.segment.number - b.segment.number || a.offset - b.offset);
  }
  return { ranges, cut };
}

/**
 * Applies one repair to the in-memory index: the id's events from `first` on are forgotten. On open
 * it runs when the runs reach segment `since`, so events appended after the repair are added after it.
 */
export function applyRepair(entry: IdIndex, repair: RepairEntry, dir: string): void {
  if (entry.cutBack(repair.first, repair.cut)) return;
  // A run holds records on both sides of the cut, but not where the repair recorded: serve nothing
  // past the last good record rather than dead records.
  entry.markCorrupt({
    sequenceNr: repair.first,
    file: path.join(dir, segmentFileName(repair.cut?.segment ?? repair.since)),
    offset: repair.cut?.offset ?? 0,
    reason: `a repair cut the id back before sequenceNr ${repair.first}, but the record that starts the cut is not where the repair found it`,
  });
}

/**
 * An id as part of a file name: percent-encoded (so "/" and ".." cannot escape the directory), cut to
 * 80 characters, with a CRC32 of the whole id so two long ids sharing a prefix stay apart.
 */
function quarantineName(persistenceId: string): string {
  const escaped = encodeURIComponent(persistenceId).replace(
    /[!'()*~.]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  const crc = crc32(Buffer.from(persistenceId, 'utf8')).toString(16).padStart(8, '0');
  return `${escaped.slice(0, 80)}-${crc}`;
}
