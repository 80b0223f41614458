import * as path from 'node:path';
import {
  claimStoreDirectory,
  isJournalId,
  JournalCorruptedError,
  newJournalId,
  StorageError,
} from '@cairn/actor-core';
import { DirectoryLock } from '@cairn/snapshot';
import { CHECKPOINT_FILE, type Checkpoint, decodeCheckpoint, decodeIndex } from './index-file';
import { type CorruptSegment, rebuildIndex } from './index-rebuild';
import { LegacyPositions } from './legacy-positions';
import type { OrderedIndex } from './ordered-index';
import { indexFileName, parseSegmentFileName, SEGMENT_HEADER_SIZE, segmentFileName } from './record-codec';
import { QUARANTINE_DIR } from './repair';
import { emptyContents, type Segment } from './segment';
import type { SegmentLog } from './segment-log';
import type { SegmentContents, SegmentScan } from './segment-scan';

/** The file holding the journal's id (which offsets carry), created with the journal. */
export const JOURNAL_ID_FILE = 'journal-id';

export interface LogOpenOptions {
  /** Open for inspection beside a live writer: no lock, nothing written (see FileMessageJournalOptions.readOnly). */
  readonly readOnly: boolean;
  /** How long a dead holder's lock is honoured (see FileMessageJournalOptions.lockStaleMs). */
  readonly lockStaleMs: number;
}

/**
 * Opens the log in `log.dir`: takes the directory's lock (writable), removes what interrupted work left
 * behind, checks no segment is missing, loads sealed segments from their sidecar indexes (scanning and
 * sealing those without), scans the last segment and cuts a torn tail back, rebuilds the index and the
 * global order, and upgrades an old format once. Resolves to the journal's id. Only what was written
 * since the last sealed segment is scanned.
 */
export function openLog(log: SegmentLog, options: LogOpenOptions): Promise<string> {
  return new LogOpening(log, options).open();
}

function corruptFile(file: string, offset: number, reason: string): JournalCorruptedError {
  return new JournalCorruptedError({ file, offset, reason });
}

/** One open of the log: the steps of openLog and what they share. */
class LogOpening {
  private readonly dir: string;
  private readonly readOnly: boolean;
  /** The last segment's format version when it was opened (1: written by a build before positions). */
  private activeVersion = 2;

  constructor(
    private readonly log: SegmentLog,
    private readonly options: LogOpenOptions,
  ) {
    this.dir = log.dir;
    this.readOnly = options.readOnly;
  }

  async open(): Promise<string> {
    const log = this.log;
    const entries = this.readOnly ? await this.listReadOnly() : await this.lockDirectory();
    // Refuses another backend's directory (an LMDB environment, say) before anything is created in it.
    await claimStoreDirectory(this.dir, 'file', { readOnly: this.readOnly });
    const leftovers = entries.filter((name) => name.startsWith('.') && name.endsWith('.tmp'));
    if (leftovers.length > 0 && !this.readOnly) {
      await log.io.run('removeFiles', {
        dir: this.dir,
        files: leftovers.map((n) => path.join(this.dir, n)),
        sync: log.fsync,
      });
    }
    if (entries.includes(QUARANTINE_DIR) && !this.readOnly) {
      await log.io.run('removeTempFiles', { dir: path.join(this.dir, QUARANTINE_DIR), sync: log.fsync });
    }
    const numbers = entries
      .map(parseSegmentFileName)
      .filter((n): n is number => n !== undefined)
      .sort((a, b) => a - b);
    const indexed = new Set(entries.filter((n) => n.endsWith('.idx')));

    // Listed before the checkpoint is read: a live writer writes the checkpoint before deleting.
    const checkpoint = await this.loadCheckpoint();
    this.checkSegmentsPresent(numbers, checkpoint);
    log.repairs = [...(checkpoint?.repairs ?? [])];
    const contents: SegmentContents[] = [];
    const problemsFound: CorruptSegment[] = [];
    for (const [i, number] of numbers.entries()) {
      const file = path.join(this.dir, segmentFileName(number));
      const last = i === numbers.length - 1;
      const segment = log.addSegment(number, file);
      if (!last) {
        segment.sealed = true;
        // Read-only beside a live writer: hold the version of the file that is read now, so a
        // compaction replacing it later cannot move records under the index.
        if (this.readOnly) segment.fd = await log.io.run('openFile', { file, flags: 'r' });
        const loaded = indexed.has(indexFileName(number)) ? await this.loadIndex(segment) : undefined;
        if (loaded) {
          contents.push(loaded);
          segment.end = loaded.end;
          continue;
        }
        const { scan } = this.readOnly
          ? { scan: await log.io.run('scanSegmentFd', { fd: segment.fd!, segment: number }) }
          : await log.io.run('sealSegment', {
              dir: this.dir,
              file,
              indexFile: path.join(this.dir, indexFileName(number)),
              segment: number,
              sync: log.fsync,
            });
        if (scan.badHeader) throw corruptFile(file, 0, scan.badHeader);
        segment.end = scan.end;
        // Bad bytes at the end of a sealed segment were followed by the next segment: not a torn write.
        if (scan.torn) scan.problems.push({ offset: scan.torn.offset, reason: scan.torn.reason });
        if (scan.problems.length > 0) {
          segment.problems = true;
          problemsFound.push({ file, scan });
        }
        contents.push(scan);
        continue;
      }
      contents.push(await this.openActive(segment, problemsFound));
    }
    if (!this.readOnly && (log.segments.size === 0 || log.active === undefined))
      await log.createActive(1 + (numbers.at(-1) ?? 0));

    rebuildIndex(
      log.index,
      log.segments,
      { marks: checkpoint?.marks ?? [], repairs: log.repairs, contents, problemsFound },
      this.dir,
      log.reporter,
    );
    const journalId = await this.loadOrder(checkpoint, contents);
    if (this.readOnly) return journalId;
    log.maintenance.removeDeadSegments();
    log.maintenance.scheduleCompaction();
    return journalId;
  }

  /**
   * Builds the global order from what the open found, and, opened for writing, upgrades the journal
   * to format 2 once: the positions of events written before (format 1) are fixed by physical order and
   * saved in the checkpoint, and appends move to a new format-2 segment, which an older build refuses
   * to open (so it cannot add events without positions behind this build's back). Resolves to the
   * journal's id.
   */
  private async loadOrder(
    checkpoint: Checkpoint | undefined,
    contents: readonly SegmentContents[],
  ): Promise<string> {
    const log = this.log;
    const journalId = await this.loadJournalId();
    let numbered = false;
    if (checkpoint?.legacy) {
      log.legacy = new LegacyPositions(checkpoint.legacy, checkpoint.legacyCount ?? 0);
    } else if (contents.some((c) => hasUnpositioned(c))) {
      log.legacy = LegacyPositions.number(contents);
      numbered = true;
    }
    const repairs = log.repairs;
    const events: Array<Parameters<OrderedIndex['add']>[0]> = [];
    let givenOut = 0;
    for (const c of contents) {
      const tagsOf = new Map<number, string[]>();
      for (let t = 0; t < c.tagged.length; t += 2) {
        const event = c.tagged[t]!;
        const list = tagsOf.get(event) ?? [];
        list.push(c.tags[c.tagged[t + 1]!]!);
        tagsOf.set(event, list);
      }
      for (let e = 0; e < c.events.length; e += 5) {
        const persistenceId = c.ids[c.events[e]!]!;
        const sequenceNr = c.events[e + 3]!;
        // A truncated or cut event's position was given out all the same: the head never goes below it.
        if (c.events[e + 4]! > givenOut) givenOut = c.events[e + 4]!;
        const entry = log.index.get(persistenceId);
        if (!entry || sequenceNr < entry.lowWater) continue;
        const dead = repairs.some(
          (r) =>
            r.id === persistenceId && c.segment < r.since && sequenceNr >= r.first && sequenceNr <= r.last,
        );
        if (dead) continue;
        const position = c.events[e + 4]! || log.legacy.positionOf(persistenceId, sequenceNr);
        if (position === 0) {
          log.reporter({
            kind: 'corruption-found',
            message: `${segmentFileName(c.segment)}: "${persistenceId}" sequenceNr ${sequenceNr} is a format-1 record the position numbering does not know (written by an older build after this one upgraded the journal?); queries leave it out, readFrom serves it`,
            persistenceId,
          });
          continue;
        }
        const tags = tagsOf.get(e / 5);
        events.push({
          position,
          segment: c.segment,
          offset: c.events[e + 1]!,
          length: c.events[e + 2]!,
          persistenceId,
          sequenceNr,
          ...(tags ? { tags } : {}),
        });
      }
    }
    events.sort((a, b) => a.position - b.position);
    for (const event of events) log.order.add(event);
    log.head = Math.max(log.order.last, checkpoint?.lastPosition ?? 0, log.legacy.count, givenOut);
    log.nextPosition = log.head + 1;
    if (this.readOnly) return journalId;
    if (this.activeVersion < 2) await log.roll();
    if (numbered) await log.writeCheckpoint();
    return journalId;
  }

  /** The journal's id, created (and made durable) with the journal; a read-only open of a journal without one gets one for this open only. */
  private async loadJournalId(): Promise<string> {
    const file = path.join(this.dir, JOURNAL_ID_FILE);
    const bytes = await this.log.io.run('readFileIfExists', { file });
    if (bytes !== undefined) {
      const id = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8').trim();
      if (!isJournalId(id)) throw corruptFile(file, 0, `${JOURNAL_ID_FILE} does not hold a journal id`);
      return id;
    }
    const id = newJournalId();
    if (!this.readOnly) {
      await this.log.io.run('replaceFile', {
        dir: this.dir,
        file,
        bytes: Buffer.from(`${id}\n`),
        sync: true,
      });
    }
    return id;
  }

  /** The directory's entries for a read-only open, which never creates it. */
  private async listReadOnly(): Promise<string[]> {
    try {
      return await this.log.io.run('listDirectory', { dir: this.dir });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new StorageError(
        `no journal at ${this.dir}: the directory does not exist (a read-only open creates nothing)`,
        {
          cause: e,
        },
      );
    }
  }

  /** Creates the directory when missing and takes its lock (kept in `log.lock`); returns its entries. */
  private async lockDirectory(): Promise<string[]> {
    const log = this.log;
    await log.io.run('prepareDirectory', { dir: this.dir });
    log.lock = await DirectoryLock.acquire(
      this.dir,
      'journal',
      this.options.lockStaleMs,
      log.reporter,
      (error) => {
        log.failure = new StorageError(
          `lost the lock of ${this.dir} (another process may have taken it): ${error.message}; reopen the journal`,
          { cause: error },
        );
        log.reporter({ kind: 'lock-lost', message: log.failure.message, error: log.failure });
      },
    );
    return log.io.run('prepareDirectory', { dir: this.dir });
  }

  private async loadCheckpoint(): Promise<Checkpoint | undefined> {
    const file = path.join(this.dir, CHECKPOINT_FILE);
    const bytes = await this.log.io.run('readFileIfExists', { file });
    if (bytes === undefined) return undefined;
    const decoded = decodeCheckpoint(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if ('reason' in decoded) throw corruptFile(file, 0, decoded.reason);
    return decoded;
  }

  /**
   * Every segment the log should have: those the checkpoint lists and every later number (segments are
   * numbered consecutively and only this journal deletes them, after saying so in the checkpoint). One
   * missing was lost outside the journal: its events cannot be served, and which ids they belong to is
   * unknown, so the journal refuses to open rather than serve histories with holes.
   */
  private checkSegmentsPresent(numbers: readonly number[], checkpoint: Checkpoint | undefined): void {
    const present = new Set(numbers);
    const newest = numbers.at(-1) ?? 0;
    const expected = checkpoint ? [...checkpoint.segments] : [];
    for (let n = (checkpoint?.through ?? 0) + 1; n <= newest; n++) expected.push(n);
    const missing = expected.filter((n) => !present.has(n) && n <= newest);
    if (missing.length > 0) {
      const file = path.join(this.dir, segmentFileName(missing[0]!));
      throw corruptFile(
        file,
        0,
        `segment ${missing.map(segmentFileName).join(', ')} is missing, but this journal never deleted it; ` +
          'restore it from a backup (the events in it cannot be served)',
      );
    }
  }

  /** The sealed segment's sidecar index, or undefined when it is missing, bad or stale (then it is rescanned). */
  private async loadIndex(segment: Segment): Promise<SegmentContents | undefined> {
    const indexFile = path.join(this.dir, indexFileName(segment.number));
    const { bytes, size } =
      segment.fd !== undefined
        ? await this.log.io.run('readIndexFd', { indexFile, fd: segment.fd })
        : await this.log.io.run('readIndex', { indexFile, file: segment.file });
    if (!bytes) return undefined;
    const decoded = decodeIndex(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      segment.number,
    );
    // An index of another version of the segment (a crash mid-compaction) does not match its size.
    return 'reason' in decoded || decoded.end !== size ? undefined : decoded;
  }

  /** Opens the last segment for appending: scans it and cuts a torn tail back to the last whole frame. */
  private async openActive(segment: Segment, problemsFound: CorruptSegment[]): Promise<SegmentContents> {
    if (this.readOnly) return this.openActiveReadOnly(segment, problemsFound);
    const log = this.log;
    const scan = await log.io.run('scanSegment', { file: segment.file, segment: segment.number });
    if (scan.badHeader) {
      if (scan.size >= SEGMENT_HEADER_SIZE) throw corruptFile(segment.file, 0, scan.badHeader);
      // A crash while the segment was being created: nothing was ever written to it.
      await log.io.run('removeFiles', { dir: this.dir, files: [segment.file], sync: log.fsync });
      log.segments.delete(segment.number);
      await log.createActive(segment.number);
      return emptyContents(segment.number);
    }
    segment.fd = await log.io.run('openFile', { file: segment.file, flags: 'r+' });
    if (scan.torn) {
      await log.io.run('truncateFile', { fd: segment.fd, length: scan.end, sync: log.fsync });
      log.reporter({
        kind: 'torn-tail-repaired',
        message:
          `${segment.file}: cut back ${scan.size - scan.end} bytes from offset ${scan.end} ` +
          `(${scan.torn.reason} at offset ${scan.torn.offset}): a commit torn by a crash, never acknowledged ` +
          'with fsync on; every whole commit before it is kept',
      });
    }
    this.activeVersion = scan.version ?? 2;
    return this.adoptActive(segment, scan, problemsFound);
  }

  /**
   * The last segment, read as it is now, changing nothing: a partial last frame (a live writer's commit
   * in progress, or one torn by a crash) is left out and reported, never cut.
   */
  private async openActiveReadOnly(
    segment: Segment,
    problemsFound: CorruptSegment[],
  ): Promise<SegmentContents> {
    const log = this.log;
    segment.fd = await log.io.run('openFile', { file: segment.file, flags: 'r' });
    const scan = await log.io.run('scanSegmentFd', { fd: segment.fd, segment: segment.number });
    if (scan.badHeader) {
      if (scan.size >= SEGMENT_HEADER_SIZE) throw corruptFile(segment.file, 0, scan.badHeader);
      // Being created by a writer (or left empty by a crash while it was): nothing is in it yet.
      return emptyContents(segment.number);
    }
    if (scan.torn) {
      log.reporter({
        kind: 'torn-tail-ignored',
        message:
          `${segment.file}: the last ${scan.size - scan.end} bytes from offset ${scan.end} are not a whole commit ` +
          `(${scan.torn.reason} at offset ${scan.torn.offset}): a commit being written, or torn by a crash; ` +
          'not read, and left as it is (read-only)',
      });
    }
    return this.adoptActive(segment, scan, problemsFound);
  }

  /** Makes the scanned last segment the one appends go to, noting any corruption the scan found in it. */
  private adoptActive(segment: Segment, scan: SegmentScan, problemsFound: CorruptSegment[]): SegmentContents {
    if (scan.problems.length > 0) {
      segment.problems = true;
      problemsFound.push({ file: segment.file, scan });
    }
    segment.end = scan.end;
    this.log.active = segment;
    return scan;
  }
}

/** True when the segment holds events written before events had positions (format 1). */
function hasUnpositioned(contents: SegmentContents): boolean {
  for (let e = 4; e < contents.events.length; e += 5) if (contents.events[e] === 0) return true;
  return false;
}
