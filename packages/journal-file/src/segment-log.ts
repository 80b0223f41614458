import { close as closeFd } from 'node:fs';
import * as path from 'node:path';
import { type JournalWrite, type Reporter, StorageError } from '@cairn/actor-core';
import type { DirectoryLock } from '@cairn/snapshot';
import { CHECKPOINT_FILE, encodeCheckpoint, type RepairEntry } from './index-file';
import type { JournalIo } from './journal-io';
import { LegacyPositions } from './legacy-positions';
import { entryOf, type IdIndex } from './log-index';
import { LogMaintenance } from './log-maintenance';
import { LogReader } from './log-reader';
import { OrderedIndex } from './ordered-index';
import {
  type EncodedFrame,
  encodeFrame,
  encodeSegmentHeader,
  indexFileName,
  SEGMENT_HEADER_SIZE,
  segmentFileName,
} from './record-codec';
import { newSegment, type Segment } from './segment';

/** Where the log lives and how it is written: fixed for the life of one open journal. */
export interface SegmentLogSettings {
  /** The journal directory, absolute. */
  readonly dir: string;
  readonly io: JournalIo;
  /** fdatasync every commit (see FileMessageJournalOptions.fsync). */
  readonly fsync: boolean;
  /** A segment rolls over before a frame would take it past this many bytes. */
  readonly segmentSize: number;
  readonly reporter: Reporter;
  /** True once the journal is closing: background compaction stops early. */
  readonly closed: () => boolean;
}

/**
 * The log of one open file journal: its segments, the per-id index and the global order it serves
 * reads from, the positions it gives out, and the one queue every change of the log goes through in
 * order (commits, repairs, acknowledgements), each frame written and synced before the next. Opening
 * fills it (log-open.ts), background work keeps it small (log-maintenance.ts), and FileMessageJournal
 * keeps the SPI surface and delegates here.
 */
export class SegmentLog {
  readonly dir: string;
  readonly io: JournalIo;
  readonly fsync: boolean;
  readonly segmentSize: number;
  readonly reporter: Reporter;
  readonly index = new Map<string, IdIndex>();
  readonly segments = new Map<number, Segment>();
  /** The segment appends go to. */
  active!: Segment;
  /** Log writes, one at a time, in order. */
  writing: Promise<unknown> = Promise.resolve();
  /** Set when the log can no longer be written safely (lock lost, a failed write not undone). */
  failure: StorageError | undefined;
  /** Every repair whose dead records may still be on disk (kept in the checkpoint). */
  repairs: RepairEntry[] = [];
  /** The global order: every event by position (see ordered-index.ts). */
  readonly order = new OrderedIndex();
  /** Positions of events written before events had them. */
  legacy = new LegacyPositions([], 0);
  /** The next position to give out (positions of a failed commit are not given again). */
  nextPosition = 1;
  /** The position of the last committed event: everything at or below it is committed. */
  head = 0;
  /** The directory's lock (writable opens only), from open until close. */
  lock: DirectoryLock | undefined;
  /** Serves reads from `index` and `segments`, which it shares. */
  readonly reader: LogReader;
  /** Sealing, compaction and segment deletion, in the background, one at a time. */
  readonly maintenance: LogMaintenance;

  constructor(settings: SegmentLogSettings) {
    this.dir = settings.dir;
    this.io = settings.io;
    this.fsync = settings.fsync;
    this.segmentSize = settings.segmentSize;
    this.reporter = settings.reporter;
    this.reader = new LogReader(this.io, this.dir, this.index, this.segments, (id, seq) =>
      this.legacy.positionOf(id, seq),
    );
    this.maintenance = new LogMaintenance(this, settings.closed);
  }

  entry(persistenceId: string): IdIndex {
    return entryOf(this.index, persistenceId);
  }

  addSegment(number: number, file: string): Segment {
    const segment = newSegment(number, file);
    this.segments.set(number, segment);
    return segment;
  }

  async createActive(number: number): Promise<Segment> {
    const file = path.join(this.dir, segmentFileName(number));
    const fd = await this.io.run('createSegment', {
      dir: this.dir,
      file,
      header: encodeSegmentHeader(number),
      sync: true, // always: see FileMessageJournalOptions.fsync
    });
    const segment = this.addSegment(number, file);
    segment.fd = fd;
    segment.end = SEGMENT_HEADER_SIZE;
    this.active = segment;
    return segment;
  }

  /** Runs `change` in the log's queue, after every change queued before it; a failure does not stop the queue. */
  enqueue<T>(change: () => Promise<T>): Promise<T> {
    const done = this.writing.then(change);
    this.writing = done.catch(() => undefined);
    return done;
  }

  /** Commits the writes as one frame: their events get the next positions, in call order. */
  append(writes: readonly JournalWrite[]): Promise<void> {
    // Positions are given out here, in call order, which is the order frames go to the log; those of a
    // commit that fails are not given again.
    const firstPosition = this.nextPosition;
    for (const w of writes) this.nextPosition += w.events.length;
    const frame = encodeFrame(writes, firstPosition);
    return this.commitFrame(frame, (segment, position) => {
      let n = 0;
      frame.parts.forEach((part, i) => {
        const { events } = writes[i]!;
        const entry = this.entry(part.persistenceId);
        const before = entry.runCount > 0 ? entry.segmentOf(entry.runCount - 1) : -1;
        entry.add(segment, position + part.offset, part.byteLength, events[0]!.sequenceNr, events.length);
        if (before !== segment) this.segments.get(segment)!.liveIds++;
        let offset = position + part.offset;
        for (const e of events) {
          const length = frame.eventLengths[n]!;
          this.order.add({
            position: firstPosition + n,
            segment,
            offset,
            length,
            persistenceId: part.persistenceId,
            sequenceNr: e.sequenceNr,
            ...(e.tags ? { tags: e.tags } : {}),
          });
          offset += length;
          n++;
        }
      });
      this.head = firstPosition + n - 1;
    });
  }

  /** Commits a low-water mark record for the id; `applied` updates the index once it is on disk. */
  commitLowWater(persistenceId: string, lowWater: number, applied: () => void): Promise<void> {
    return this.commitFrame(encodeFrame([{ persistenceId, lowWater }], 0), applied);
  }

  /** Appends one frame to the log (rolling to a new segment first when it would overflow), one at a time. */
  private commitFrame(
    frame: EncodedFrame,
    applied: (segment: number, position: number) => void,
  ): Promise<void> {
    return this.enqueue(async () => {
      if (this.failure) throw this.failure;
      const length = frame.bytes.byteLength;
      let segment = this.active;
      if (segment.end > SEGMENT_HEADER_SIZE && segment.end + length > this.segmentSize)
        segment = await this.roll();
      const position = segment.end;
      const fd = segment.fd!;
      try {
        // Handed over, not copied: the frame owns its ArrayBuffer (encodeFrame allocates it unpooled).
        await this.io.run('appendFrame', { fd, bytes: frame.bytes, position, sync: this.fsync }, true);
      } catch (e) {
        await this.undoWrite(fd, position, e);
        throw e;
      }
      segment.end = position + length;
      applied(segment.number, position);
    });
  }

  /**
   * A failed write or sync leaves an unknown part of the frame on disk: cut it off before anything is
   * written after it, or stop writing (a later frame behind half a frame would read as corruption).
   */
  private async undoWrite(fd: number, position: number, error: unknown): Promise<void> {
    try {
      await this.io.run('truncateFile', { fd, length: position, sync: this.fsync });
    } catch (e) {
      this.failure = new StorageError(
        `a failed commit (${(error as Error)?.message ?? error}) could not be undone ` +
          `(${(e as Error)?.message ?? e}); the journal accepts no more writes: reopen it`,
        { cause: e },
      );
    }
  }

  /** Starts the next segment for appends and seals the full one in the background. */
  async roll(): Promise<Segment> {
    const sealed = this.active;
    const next = await this.createActive(sealed.number + 1);
    sealed.sealed = true;
    this.maintenance.inBackground(async () => {
      const { indexed, scan } = await this.io.run('sealSegment', {
        dir: this.dir,
        file: sealed.file,
        indexFile: path.join(this.dir, indexFileName(sealed.number)),
        segment: sealed.number,
        sync: this.fsync,
      });
      if (!indexed && !sealed.deleted) {
        sealed.problems = true;
        const where = scan.badHeader ?? scan.torn?.reason ?? scan.problems[0]?.reason;
        this.reporter({
          kind: 'corruption-found',
          message: `${sealed.file}: sealing found corrupt data (${where}); the segment is kept and rescanned on open`,
        });
      }
      // Everything in it may have been truncated before it was sealed.
      this.maintenance.removeDeadSegments();
    });
    return next;
  }

  /**
   * Saves every low-water mark and the segments that will exist, before segments (which may hold mark
   * records) are deleted (`deleting`) or rewritten.
   */
  async writeCheckpoint(deleting: readonly Segment[] = []): Promise<void> {
    const marks: Array<[string, number]> = [];
    for (const [id, entry] of this.index) if (entry.lowWater > 1) marks.push([id, entry.lowWater]);
    const segments = [...this.segments.keys()].filter((n) => !deleting.some((d) => d.number === n));
    // A repair matters while a segment older than the one it began may hold the records it cut.
    const oldest = Math.min(...segments);
    this.repairs = this.repairs.filter((r) => r.since > oldest);
    await this.io.run('replaceFile', {
      dir: this.dir,
      file: path.join(this.dir, CHECKPOINT_FILE),
      bytes: encodeCheckpoint({
        marks,
        segments: segments.sort((a, b) => a - b),
        through: this.active.number,
        ...(this.repairs.length > 0 ? { repairs: this.repairs } : {}),
        lastPosition: this.nextPosition - 1,
        ...(this.legacy.count > 0 ? { legacy: this.legacy.runs, legacyCount: this.legacy.count } : {}),
      }),
      sync: true, // always: see FileMessageJournalOptions.fsync
    });
  }

  /** The bytes the live segments hold (what maxDiskBytes counts). */
  bytesUsed(): number {
    let bytes = 0;
    for (const segment of this.segments.values()) bytes += segment.end;
    return bytes;
  }

  /**
   * Waits for queued writes, background work and reads, then closes every descriptor, the IO threads
   * and the lock; the first error is thrown once everything was tried.
   */
  async close(): Promise<void> {
    await this.writing;
    await this.maintenance.settled();
    await this.reader.settled();
    const errors: unknown[] = [];
    for (const segment of this.segments.values()) {
      const fd = segment.opening ? await segment.opening.catch(() => undefined) : undefined;
      for (const d of new Set([segment.fd, fd])) {
        if (d === undefined) continue;
        await new Promise<void>((resolve) =>
          closeFd(d, (e) => {
            if (e) errors.push(e);
            resolve();
          }),
        );
      }
      segment.fd = undefined;
    }
    this.segments.clear();
    await this.io.close().catch((e: unknown) => errors.push(e));
    // A lock already lost (reported then, and writes refused since) has nothing left to release.
    await this.lock?.release().catch((e: unknown) => errors.push(e));
    this.lock = undefined;
    if (errors.length > 0) {
      throw new StorageError(`closing the journal in ${this.dir} failed: ${String(errors[0])}`, {
        cause: errors[0],
      });
    }
  }
}
