import { close as closeFd, readSync } from 'node:fs';
import * as path from 'node:path';
import {
  type CorruptionLocation,
  JournalCorruptedError,
  PositionedEventInBuffer,
  type StoredEvent,
} from '@cairn/actor-core';
import type { JournalIo } from './journal-io';
import type { CorruptPoint, IdIndex } from './log-index';
import {
  type ChunkBytes,
  planRead,
  type ReadChunk,
  type RunsToVerify,
  runsToVerify,
  sameChunk,
} from './read-plan';
import {
  intactEventLength,
  payloadStart,
  RECORD_HEADER_SIZE,
  recordPosition,
  recordTags,
  segmentFileName,
  whyNotIntact,
} from './record-codec';
import { closeWhenUnread, type Segment } from './segment';

const PAGE_EVENTS = 1024;

/** Where the records of a page being served are: offsets[i] is sequenceNr first + i. */
interface ServedPage {
  readonly file: string;
  readonly first: number;
  readonly offsets: readonly number[];
}

/**
 * Serves the journal's reads out of the shared log: plans which runs of an id to read together, reads
 * them (the next chunk while the current one is consumed), verifies every record and yields pages. It
 * shares the journal's index and segments, and never changes them except to note corruption it finds.
 */
export class LogReader {
  /** Per id, the page last handed to the base class, for exact offsets in decode failures (locate). */
  private readonly served = new Map<string, ServedPage>();
  /** Segment reads in flight (prefetches included): close() waits for them before closing descriptors. */
  private readonly reads = new Set<Promise<unknown>>();

  constructor(
    private readonly io: JournalIo,
    private readonly dir: string,
    private readonly index: ReadonlyMap<string, IdIndex>,
    private readonly segments: ReadonlyMap<number, Segment>,
    /** The position of a format-1 event (which does not hold one): see LegacyPositions. */
    private readonly legacyPosition: (persistenceId: string, sequenceNr: number) => number,
  ) {}

  /** Pages of the id's events from..to, at most `max` in all: AbstractMessageJournal._read. */
  async *read(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr: number,
    max: number,
  ): AsyncGenerator<StoredEvent[]> {
    const entry = this.index.get(persistenceId);
    if (!entry) return;
    const idBytes = Buffer.from(persistenceId, 'utf8');
    let next = fromSequenceNr;
    let left = max;
    // The chunk after the one being served is read while the consumer works through the current one.
    let prefetched: { chunk: ReadChunk; bytes: Promise<ChunkBytes> } | undefined;
    let located: ServedPage | undefined;
    try {
      while (left > 0 && next <= toSequenceNr) {
        next = Math.max(next, entry.lowWater);
        if (entry.corrupt && next >= entry.corrupt.sequenceNr) throw corruptAt(persistenceId, entry.corrupt);
        const chunk = planRead(entry, next, toSequenceNr, this.segments, this.dir);
        if (!chunk) return;
        let read: ChunkBytes;
        if (prefetched && sameChunk(prefetched.chunk, chunk)) {
          read = await prefetched.bytes;
        } else {
          prefetched?.bytes.catch(() => undefined);
          read = await this.readChunk(chunk, persistenceId, next);
        }
        prefetched = undefined;
        const { bytes, verifiedTo } = read;
        if (bytes.length === 0 && chunk.stop > chunk.start) {
          // The segment went before it was ever opened. Deleted as dead: every record in it is below
          // its id's mark now. Replaced by its compacted copy: plan again, the index points there now.
          if (!chunk.segment?.replaced) next = Math.max(next, chunk.lastSeq + 1);
          continue;
        }
        const following = planRead(entry, chunk.lastSeq + 1, toSequenceNr, this.segments, this.dir);
        if (following && left > chunk.events) {
          const read = this.readChunk(following, persistenceId, following.firsts[0]!);
          read.catch(() => undefined); // awaited (and its error seen) only if used
          prefetched = { chunk: following, bytes: read };
        }

        let page: StoredEvent[] = [];
        let offsets: number[] = [];
        let failure: JournalCorruptedError | undefined;
        let served = false;
        runs: for (let r = chunk.firstRun; r <= chunk.lastRun; r++) {
          let at = chunk.offsets[r - chunk.firstRun]! - chunk.start;
          const end = at + chunk.lengths[r - chunk.firstRun]!;
          let expected = chunk.firsts[r - chunk.firstRun]!;
          while (at < end) {
            const sequenceNr = expected;
            // Past what was asked for, or at a record already known bad: not even looked at (a damaged
            // record after `toSequenceNr` in the same batch does not fail this read).
            if (sequenceNr > toSequenceNr || left === 0) break runs;
            if (entry.corrupt && sequenceNr >= entry.corrupt.sequenceNr) break runs;
            // Records below verifiedTo were checked by the IO thread that read them: step over them by
            // their length (bounds still checked, so a bug cannot run the loop off the run).
            const stated = at < verifiedTo ? bytes.readUInt32LE(at) : 0;
            const length =
              at < verifiedTo && stated >= RECORD_HEADER_SIZE + idBytes.length && at + stated <= end
                ? stated
                : intactEventLength(bytes, at, end, idBytes, sequenceNr);
            if (length < 0) {
              const point = {
                sequenceNr,
                file: chunk.file,
                offset: chunk.start + at,
                reason: whyNotIntact(bytes, at, end, idBytes, sequenceNr),
              };
              // Remembered, as if the open had found it: later reads from beyond it are refused too.
              entry.markCorrupt(point);
              failure = corruptAt(persistenceId, point);
              break runs;
            }
            const start = at;
            at += length;
            expected++;
            // Re-checked per record: a truncation may land while the consumer holds a page.
            if (sequenceNr < next || sequenceNr < entry.lowWater) continue;
            const position = recordPosition(bytes, start, idBytes.length);
            page.push(
              new PositionedEventInBuffer(
                persistenceId,
                position || this.legacyPosition(persistenceId, sequenceNr),
                sequenceNr,
                bytes.readDoubleLE(start + 24),
                bytes[start + 10]! | (bytes[start + 11]! << 8),
                bytes,
                payloadStart(bytes, start, idBytes.length),
                at,
                recordTags(bytes, start, idBytes.length),
              ),
            );
            offsets.push(chunk.start + start);
            left--;
            next = sequenceNr + 1;
            if (page.length === PAGE_EVENTS) {
              served = true;
              located = this.locatePage(persistenceId, chunk.file, page, offsets);
              yield page;
              page = [];
              offsets = [];
            }
          }
        }
        if (page.length > 0) {
          served = true;
          located = this.locatePage(persistenceId, chunk.file, page, offsets);
          yield page;
        }
        if (failure) throw failure;
        // Nothing servable in these runs (all below `next`): move past them.
        if (!served) next = Math.max(next, chunk.lastSeq + 1);
      }
    } finally {
      prefetched?.bytes.catch(() => undefined);
      if (located && this.served.get(persistenceId) === located) this.served.delete(persistenceId);
    }
  }

  /** Remembers where a page's records are, so a payload that fails to decode is named exactly. */
  private locatePage(
    persistenceId: string,
    file: string,
    page: StoredEvent[],
    offsets: number[],
  ): ServedPage {
    const served = { file, first: page[0]!.sequenceNr, offsets };
    this.served.set(persistenceId, served);
    return served;
  }

  /**
   * Reads a chunk's bytes. A large one (a replay's) is read by an IO thread that also checks its records
   * (`readRuns`), so the checksums run beside the main thread's decoding of the chunk before; a small one
   * (a recovery's few events) is read here and checked record by record as it is served.
   */
  private readChunk(chunk: ReadChunk, persistenceId: string, sequenceNr: number): Promise<ChunkBytes> {
    if (!chunk.segment) {
      return Promise.reject(
        corruptAt(persistenceId, {
          sequenceNr,
          file: chunk.file,
          offset: chunk.start,
          reason: 'the segment holding it is gone',
        }),
      );
    }
    const read = this.readBytes(
      chunk.segment,
      chunk.start,
      chunk.stop - chunk.start,
      persistenceId,
      sequenceNr,
      runsToVerify(chunk, persistenceId),
    );
    this.reads.add(read);
    const forget = () => this.reads.delete(read);
    read.then(forget, forget);
    return read;
  }

  async readSegment(
    segment: Segment,
    position: number,
    length: number,
    persistenceId: string,
    sequenceNr: number,
  ): Promise<Buffer> {
    return (await this.readBytes(segment, position, length, persistenceId, sequenceNr, undefined)).bytes;
  }

  /** Reads bytes of a segment; with `verify`, on an IO thread that checks those runs' records too. */
  private async readBytes(
    segment: Segment,
    position: number,
    length: number,
    persistenceId: string,
    sequenceNr: number,
    verify: RunsToVerify | undefined,
  ): Promise<ChunkBytes> {
    // A segment deleted before its first read was never opened: the caller skips it (see read).
    if (segment.deleted && segment.fd === undefined) return { bytes: Buffer.alloc(0), verifiedTo: 0 };
    segment.readers++;
    try {
      if (segment.fd === undefined) {
        segment.opening ??= this.io.run('openFile', { file: segment.file, flags: 'r' });
        const fd = await segment.opening;
        segment.opening = undefined;
        segment.fd ??= fd;
        if (segment.fd !== fd) closeFd(fd, () => undefined);
      }
      const fd = segment.fd;
      let buffer: Buffer;
      let bytesRead: number;
      let verifiedTo = 0;
      if (verify) {
        // Allocated here and handed over both ways: buffers made on an IO thread and freed here were
        // measured to linger (RSS +78 MiB over a 500,000-event replay, against +8 MiB).
        const into = Buffer.allocUnsafeSlow(length);
        const read = await this.io.run('readRuns', { fd, position, length, ...verify, into }, true);
        buffer = Buffer.from(read.bytes.buffer, read.bytes.byteOffset, read.bytes.byteLength);
        bytesRead = read.bytesRead;
        verifiedTo = read.verifiedTo;
      } else {
        // A small read (under VERIFY_OFF_THREAD_BYTES: a recovery's few events) is served synchronously,
        // as a hand-written reader would: from the page cache that costs a few microseconds, where a
        // round trip through libuv's threadpool costs tens (W4b: four such reads per id).
        buffer = Buffer.allocUnsafe(length);
        bytesRead = readFullySync(fd, buffer, position);
      }
      if (bytesRead < length) {
        throw corruptAt(persistenceId, {
          sequenceNr,
          file: segment.file,
          offset: position + bytesRead,
          reason: `the segment ends ${length - bytesRead} bytes short of what the index holds`,
        });
      }
      return { bytes: buffer, verifiedTo };
    } finally {
      segment.readers--;
      if (segment.deleted) closeWhenUnread(segment);
    }
  }

  /** Where a record is, for an error about it: AbstractMessageJournal._locate. */
  locate(persistenceId: string, sequenceNr: number): Pick<CorruptionLocation, 'file' | 'offset' | 'key'> {
    const page = this.served.get(persistenceId);
    const offset = page?.offsets[sequenceNr - page.first];
    if (page && offset !== undefined) return { file: page.file, offset };
    const entry = this.index.get(persistenceId);
    if (!entry || entry.runCount === 0) return { key: `${persistenceId}#${sequenceNr}` };
    const run = Math.min(entry.findRun(sequenceNr), entry.runCount - 1);
    // Not in a page being served: the offset of the run (the atomic write) holding the record.
    return {
      file: path.join(this.dir, segmentFileName(entry.segmentOf(run))),
      offset: entry.offsetOf(run),
    };
  }

  /** Forgets the page last served of the id (its records were cut). */
  forget(persistenceId: string): void {
    this.served.delete(persistenceId);
  }

  /** Resolves once every segment read in flight has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.reads]);
  }
}

function corruptAt(persistenceId: string, point: CorruptPoint): JournalCorruptedError {
  return new JournalCorruptedError({
    persistenceId,
    sequenceNr: point.sequenceNr,
    file: point.file,
    offset: point.offset,
    reason: point.reason,
  });
}

/** Reads into all of `buffer` from `position`, fewer bytes only at the end of the file; the count read. */
function readFullySync(fd: number, buffer: Buffer, position: number): number {
  let done = 0;
  while (done < buffer.length) {
    const n = readSync(fd, buffer, done, buffer.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
