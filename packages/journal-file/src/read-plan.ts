import * as path from 'node:path';
import type { IdIndex } from './log-index';
import { segmentFileName } from './record-codec';
import type { Segment } from './segment';

/** A read fetches up to this much of a segment at once (neighbouring runs of an id in one go). */
const READ_CHUNK = 256 * 1024;
/** Runs this close together are read together; the bytes between them (other ids) are skipped. */
const READ_GAP = 64 * 1024;
/**
 * Chunks at least this big are read and checked by an IO thread (see LogReader.readChunk): the hop costs
 * about as much as checking a few hundred records here, so small reads stay on the main thread.
 */
const VERIFY_OFF_THREAD_BYTES = 64 * 1024;

/** A planned read: runs [firstRun, lastRun] of one id, at [start, stop) of one segment. */
export interface ReadChunk {
  /** Undefined when the segment the index names is gone (reads reject, naming `file`). */
  readonly segment: Segment | undefined;
  readonly file: string;
  readonly start: number;
  readonly stop: number;
  readonly firstRun: number;
  readonly lastRun: number;
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly firsts: readonly number[];
  /** The last sequenceNr of the last run. */
  readonly lastSeq: number;
  /** Events the runs hold. */
  readonly events: number;
}

/** A chunk's bytes, and how far (from its start) an IO thread already verified its records. */
export interface ChunkBytes {
  readonly bytes: Buffer;
  readonly verifiedTo: number;
}

/** The runs of a chunk for the IO thread to verify (offsets relative to the chunk). */
export interface RunsToVerify {
  readonly offsets: readonly number[];
  readonly lengths: readonly number[];
  readonly firsts: readonly number[];
  readonly id: Buffer;
}

export function sameChunk(a: ReadChunk, b: ReadChunk): boolean {
  return a.segment === b.segment && a.start === b.start && a.stop === b.stop;
}

/**
 * The runs to read next for an id, from the one holding `from`: neighbouring runs of one segment
 * (gaps under READ_GAP, at most READ_CHUNK bytes), copied out of the index so a truncation meanwhile
 * cannot shift them.
 */
export function planRead(
  entry: IdIndex,
  from: number,
  to: number,
  segments: ReadonlyMap<number, Segment>,
  dir: string,
): ReadChunk | undefined {
  if (from > to || from > entry.top) return undefined;
  const firstRun = entry.findRun(Math.max(from, entry.lowWater));
  if (firstRun >= entry.runCount) return undefined;
  const number = entry.segmentOf(firstRun);
  const segment = segments.get(number);
  const start = entry.offsetOf(firstRun);
  const offsets = [start];
  const lengths = [entry.byteLengthOf(firstRun)];
  const firsts = [entry.firstOf(firstRun)];
  let stop = start + lengths[0]!;
  let lastRun = firstRun;
  while (lastRun + 1 < entry.runCount && entry.segmentOf(lastRun + 1) === number) {
    const offset = entry.offsetOf(lastRun + 1);
    const end = offset + entry.byteLengthOf(lastRun + 1);
    if (offset < stop || offset - stop > READ_GAP || end - start > READ_CHUNK) break;
    if (entry.firstOf(lastRun + 1) > to) break;
    lastRun++;
    stop = end;
    offsets.push(offset);
    lengths.push(end - offset);
    firsts.push(entry.firstOf(lastRun));
  }
  const lastSeq = entry.lastOf(lastRun);
  return {
    segment,
    file: segment?.file ?? path.join(dir, segmentFileName(number)),
    start,
    stop,
    firstRun,
    lastRun,
    offsets,
    lengths,
    firsts,
    lastSeq,
    events: lastSeq - firsts[0]! + 1,
  };
}

/** The runs for the IO thread reading the chunk to verify, or undefined when the chunk is checked here. */
export function runsToVerify(chunk: ReadChunk, persistenceId: string): RunsToVerify | undefined {
  return chunk.stop - chunk.start >= VERIFY_OFF_THREAD_BYTES
    ? {
        offsets: chunk.offsets.map((o) => o - chunk.start),
        lengths: chunk.lengths,
        firsts: chunk.firsts,
        id: Buffer.from(persistenceId, 'utf8'),
      }
    : undefined;
}
